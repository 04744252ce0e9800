package filters

import (
	"fmt"
	"testing"
	"unsafe"
)

func TestHostStringInternsBoundedly(t *testing.T) {
	a := hostString([]byte("api.example"))
	b := hostString([]byte("api.example"))
	if a != "api.example" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same host name must come back as one shared string")
	}
	if n := testing.AllocsPerRun(100, func() { _ = hostString([]byte("api.example")) }); n != 0 {
		t.Fatalf("an interned host allocates %.0f times", n)
	}
	for i := range 2 * maxInternedHosts {
		name := fmt.Sprintf("junk-%d.example", i)
		if got := hostString([]byte(name)); got != name {
			t.Fatalf("host %q came back as %q", name, got)
		}
	}
	if m := internedHosts.Load(); len(*m) > maxInternedHosts {
		t.Fatalf("table grew to %d names, bound %d", len(*m), maxInternedHosts)
	}
}

func TestMethodStringKeepsAnyMethod(t *testing.T) {
	for _, m := range []string{"GET", "POST", "PURGE", "get"} {
		if got := methodString([]byte(m)); got != m {
			t.Fatalf("%q came back as %q", m, got)
		}
	}
}
