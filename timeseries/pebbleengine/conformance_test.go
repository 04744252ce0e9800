package pebbleengine_test

import (
	"testing"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/pebbleengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
	"github.com/floodgate-dev/floodgate/timeseries/storage/enginetest"
)

// The embedded engine passes the conformance suite every engine must pass.
func TestConformance(t *testing.T) {
	enginetest.Run(t, func(t *testing.T, _ map[string]timeseries.NamespaceConfig) storage.Engine {
		e, err := pebbleengine.Open(t.TempDir(), pebbleengine.Options{CacheBytes: 8 << 20, MemTableBytes: 4 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return e
	})
}
