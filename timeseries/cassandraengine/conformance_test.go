package cassandraengine_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries"
	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
	"github.com/floodgate-dev/floodgate/timeseries/storage/enginetest"
)

// runID keeps keyspaces of separate runs against one long-lived node apart.
var (
	runID    = time.Now().UnixMilli() % 1_000_000_000
	keyspace atomic.Int64
)

// singleNode is the engine configuration for the one-node test cluster: replication factor 1
// (so LOCAL_QUORUM is one replica) and no control loop (tests create slices by writing).
func singleNode(hostPort string) cassandraengine.Options {
	return cassandraengine.Options{
		Hosts:       []string{hostPort},
		SlicesAhead: -1,
		Defaults: cassandraengine.NamespaceOptions{
			Replication: map[string]string{"class": "SimpleStrategy", "replication_factor": "1"},
		},
	}
}

// openFresh opens an engine whose namespaces live in keyspaces no other test uses.
func openFresh(t testing.TB, hostPort string, namespaces map[string]timeseries.NamespaceConfig) *cassandraengine.Engine {
	t.Helper()
	ns := map[string]cassandraengine.Namespace{}
	for name, nc := range namespaces {
		tp := nc.TimePartition
		ns[name] = cassandraengine.Namespace{
			Options:      cassandraengine.NamespaceOptions{Keyspace: fmt.Sprintf("ct_%d_%d", runID, keyspace.Add(1))},
			SliceMs:      tp.SecondsPerTimeSlice * 1000,
			BucketMs:     tp.SecondsPerTimeBucket * 1000,
			EventBuckets: tp.EventBuckets,
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := cassandraengine.Open(ctx, singleNode(hostPort), ns, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// The Cassandra engine passes the conformance suite every engine must pass.
func TestConformance(t *testing.T) {
	hostPort := cassandra.Require(t)
	enginetest.Run(t, func(t *testing.T, namespaces map[string]timeseries.NamespaceConfig) storage.Engine {
		return openFresh(t, hostPort, namespaces)
	})
}
