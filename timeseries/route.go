package timeseries

import "strings"

// OperationFromPath maps a request path under prefix to an operation name: with prefix
// "/ts/", "/ts/ReadEventRecords" gives ("ReadEventRecords", true). Callers should accept only
// POST. A prefix without a trailing slash is treated as if it had one.
func OperationFromPath(prefix, path string) (string, bool) {
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	op, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return "", false
	}
	switch op {
	case OpWriteSync, OpWrite, OpRead, OpSearch, OpAggregate:
		return op, true
	}
	return "", false
}
