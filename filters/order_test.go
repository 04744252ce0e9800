package filters

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestBuiltinOrdersRunInTableOrder(t *testing.T) {
	rows := BuiltinOrders()
	sorted := slices.IsSortedFunc(rows, func(a, b OrderEntry) int {
		if a.Stage != b.Stage {
			return int(a.Stage) - int(b.Stage)
		}
		return a.Order - b.Order
	})
	if !sorted {
		t.Errorf("the order table is not in run order: %v", rows)
	}
}

// TestArchitectureDocOrderTable keeps docs/ARCHITECTURE.md's copy of the
// order table equal to filters/order.go.
func TestArchitectureDocOrderTable(t *testing.T) {
	doc, err := os.ReadFile("../docs/ARCHITECTURE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "### Filter order table")
	if !ok {
		t.Fatal("docs/ARCHITECTURE.md has no filter order table")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var got []OrderEntry
	for _, line := range strings.Split(table, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) < 3 {
			continue
		}
		order, err := strconv.Atoi(strings.TrimSpace(cells[0]))
		if err != nil {
			continue // header and separator rows
		}
		stage := Inbound
		if strings.TrimSpace(cells[1]) == "outbound" {
			stage = Outbound
		}
		got = append(got, OrderEntry{Name: strings.TrimSpace(cells[2]), Stage: stage, Order: order})
	}
	if want := BuiltinOrders(); !slices.Equal(got, want) {
		t.Errorf("docs table %v\nfilters/order.go %v", got, want)
	}
}
