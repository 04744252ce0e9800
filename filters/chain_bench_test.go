package filters

import "testing"

type benchStep struct{ Base }

func (benchStep) Apply(*Context) error { return nil }

type benchEndpoint struct{ Base }

func (benchEndpoint) Apply(c *Context) error {
	c.MarkResponded(200, CategorySuccess)
	return nil
}

// BenchmarkChainRun is a request through ten inbound filters, an endpoint
// and two outbound filters that do nothing: what the chain itself costs,
// passport recording of every step included.
func BenchmarkChainRun(b *testing.B) {
	var fs []Filter
	for i, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		fs = append(fs, benchStep{NewBase(name, Inbound, i)})
	}
	fs = append(fs, benchStep{NewBase("x", Outbound, 1)}, benchStep{NewBase("y", Outbound, 2)}, benchEndpoint{EndpointBase("ep")})
	ch, err := NewChainBuilder().Build(fs)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c := AcquireContext()
		ch.Run(c)
		c.Release()
	}
}
