package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Issue 15 item 7: each cmd/timeseries process has a private store, so the docs must not
// present several of them behind the gateway as one fleet with hedged reads (every read
// would see only the writes its node took).
func TestReadmeDoesNotDescribeAFleetOfPrivateStores(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	start := strings.Index(doc, "## TimeSeries event store")
	if start < 0 {
		t.Fatal("README has no TimeSeries section")
	}
	section := doc[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	flat := strings.Join(strings.Fields(section), " ")
	if regexp.MustCompile(`(?i)fleet of (which|cmd/timeseries|nodes)|hedged reads`).MatchString(flat) {
		t.Fatalf("the TimeSeries section describes a fleet of private stores:\n%s", flat)
	}
	if !strings.Contains(flat, "One node, one store") {
		t.Fatal("the TimeSeries section lost its warning that each node has a private store")
	}
}
