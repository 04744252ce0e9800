package ratelimit

import (
	"github.com/floodgate-dev/floodgate/trust"

	"net/netip"
	"testing"

	"github.com/floodgate-dev/floodgate/filters"
	"github.com/floodgate-dev/floodgate/ratelimit"
)

// BenchmarkAllow measures the request path of "rate_limit" without HTTP:
// table lookup, key building and the bucket, over 1024 clients.
func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(ratelimit.Options{SweepInterval: -1})
	defer l.Close()
	if err := l.Update([]ratelimit.Policy{{Name: "p", Rate: 1e9, Burst: 1000}}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		c := filters.AcquireContext()
		defer c.Release()
		var buf [96]byte
		i := 0
		for pb.Next() {
			c.SetIdentity(trust.Identity{Peer: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), Client: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})})
			i = (i + 1) % 1024
			bk := l.Buckets("p")
			if !bk.Allow(appendKey(buf[:0], bk.KeySpec(), c)).Allowed {
				b.Fatal("rejected")
			}
		}
	})
}
