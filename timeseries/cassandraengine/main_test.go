package cassandraengine_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/floodgate-dev/floodgate/internal/leaktest"
	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine/cassandratest"
)

// cassandra is the node the package's tests share: started once here (or named by
// FLOODGATE_CASSANDRA), so the suite pays Cassandra's startup once.
var cassandra *cassandratest.Package

func TestMain(m *testing.M) {
	cassandra = cassandratest.StartPackage()
	code := m.Run()
	cassandra.Close()
	if code == 0 {
		if err := leaktest.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}
