package origins

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkPickDone(b *testing.B) {
	for _, lb := range []LB{LBP2C, LBRoundRobin} {
		b.Run(string(lb), func(b *testing.B) {
			cfg := DefaultOriginConfig()
			for i := 0; i < 8; i++ {
				cfg.Instances = append(cfg.Instances, InstanceConfig{Address: fmt.Sprintf("10.0.0.%d:80", i+1)})
			}
			cfg.LB = lb
			o := newOrigin("bench", cfg, discardLogger(), Hooks{})
			o.SetInstances(cfg.Instances)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := o.Pick(nil)
					if err != nil {
						b.Fatal(err)
					}
					done(Result{Outcome: OutcomeSuccess, Latency: time.Millisecond})
				}
			})
		})
	}
}
