package cassandraengine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/timeseries/cassandraengine"
	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// Each namespace's consistency levels reach the cluster, and a reconfiguration changes them
// in place: on one node, TWO cannot be met, ONE can.
func TestPerNamespaceConsistencyAndReconfigure(t *testing.T) {
	hostPort := cassandra.Require(t)
	ks := fmt.Sprintf("cl_%d_%d", runID, keyspace.Add(1))
	ns := func(write string) map[string]cassandraengine.Namespace {
		return map[string]cassandraengine.Namespace{"strict": {
			Options: cassandraengine.NamespaceOptions{Keyspace: ks, WriteConsistency: write, ReadConsistency: "ONE"},
			SliceMs: 86_400_000, BucketMs: 3_600_000, EventBuckets: 2,
		}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := cassandraengine.Open(ctx, singleNode(hostPort), ns("TWO"), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	day := int64(20_000) * 86_400_000
	b := &storage.Batch{Namespace: "strict", Writes: []storage.Write{{
		Partition: storage.Partition{Slice: day, TimeSeriesID: "s", Bucket: day, EventBucket: 1},
		Event:     storage.Event{TimeSeriesID: "s", Time: day + 1, ID: "e", Items: []storage.Item{{Key: []byte("k"), Value: []byte("v")}}},
	}}}
	if err := e.Apply(ctx, b, storage.Durable); err == nil || !strings.Contains(strings.ToLower(err.Error()), "consistency") {
		t.Fatalf("write at TWO on a one-node cluster: %v, want an unavailable error", err)
	}
	if err := e.Configure(ctx, ns("ONE")); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, b, storage.Durable); err != nil {
		t.Fatalf("write at ONE after reconfigure: %v", err)
	}
	if _, ok, err := e.GetEvent(ctx, "strict", b.Writes[0].Partition, day+1, "e"); !ok || err != nil {
		t.Fatalf("read back: ok=%v err=%v", ok, err)
	}
	bad := ns("ONE")
	n := bad["strict"]
	n.EventBuckets = 3
	bad["strict"] = n
	if err := e.Configure(ctx, bad); err == nil || !strings.Contains(err.Error(), "partitioning cannot change") {
		t.Fatalf("changing partitioning in place: %v", err)
	}
	if _, err := e.Slices(ctx, "nope"); err == nil {
		t.Fatal("a namespace the engine does not serve must be an error")
	}
}
