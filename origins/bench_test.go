package origins

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkPickDone(b *testing.B) {
	for _, tc := range []struct {
		name     string
		lb       LB
		outliers bool
	}{{"p2c", LBP2C, false}, {"round_robin", LBRoundRobin, false}, {"p2c+outlier_detection", LBP2C, true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := DefaultOriginConfig()
			for i := 0; i < 8; i++ {
				cfg.Instances = append(cfg.Instances, InstanceConfig{Address: fmt.Sprintf("10.0.0.%d:80", i+1)})
			}
			cfg.LB = tc.lb
			cfg.OutlierDetection.Enabled = tc.outliers
			o := newOrigin("bench", cfg, discardLogger(), Hooks{})
			o.SetInstances(cfg.Instances)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, err := o.Pick(nil)
					if err != nil {
						b.Fatal(err)
					}
					done.Done(Result{Outcome: OutcomeSuccess, Latency: time.Millisecond})
				}
			})
		})
	}
}
