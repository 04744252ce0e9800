package timeseries

import "testing"

func TestOperationFromPath(t *testing.T) {
	for _, c := range []struct {
		prefix, path, op string
		ok               bool
	}{
		{"/ts/", "/ts/ReadEventRecords", OpRead, true},
		{"/ts", "/ts/WriteEventRecordsSync", OpWriteSync, true},
		{"/ts/", "/ts/WriteEventRecords", OpWrite, true},
		{"/ts/", "/ts/SearchEventRecords", OpSearch, true},
		{"/ts/", "/ts/AggregateEventRecords", OpAggregate, true},
		{"/ts/", "/ts/Nope", "", false},
		{"/ts/", "/other/ReadEventRecords", "", false},
		{"/ts/", "/ts/ReadEventRecords/x", "", false},
	} {
		op, ok := OperationFromPath(c.prefix, c.path)
		if op != c.op || ok != c.ok {
			t.Errorf("OperationFromPath(%q, %q) = %q, %v; want %q, %v", c.prefix, c.path, op, ok, c.op, c.ok)
		}
	}
}
