package loadshed

import (
	"testing"
	"time"
)

// BenchmarkOriginAcquireRelease is the origin scope's per-request
// admission with the queue enabled (the default) and the gate open, from
// every core at once: what every proxied request pays when nothing sheds.
func BenchmarkOriginAcquireRelease(b *testing.B) {
	s, err := New(Default(), withManualTicks(time.Now))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	o := s.Origin("api")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, ok := o.Acquire(o.Decide(50))
			if !ok {
				b.Error("refused by an open gate")
				return
			}
			o.Release(d)
		}
	})
}
