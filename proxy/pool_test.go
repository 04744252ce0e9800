package proxy

import (
	"testing"
	"time"

	"github.com/floodgate-dev/floodgate/origins"
)

// An attempt's client is remembered per instance only under the settings
// it was made for: other settings get their own pool, and once an address
// is closed (its instance left discovery) its client is never handed out
// again.
func TestClientPoolRemembersClientPerInstance(t *testing.T) {
	p := newClientPool()
	defer p.closeAll()
	a, b := new(origins.Instance), new(origins.Instance)
	k := poolKey{addr: "127.0.0.1:1", connect: time.Second, response: time.Second, maxConns: 4}
	hc := p.forInstance(a, k)
	if p.forInstance(a, k) != hc || p.get(k) != hc {
		t.Fatal("the same instance and settings got another client")
	}
	if p.forInstance(b, k) != hc {
		t.Fatal("two instances of one address with the same settings do not share the pool")
	}
	slower := k
	slower.response = 2 * time.Second
	if p.forInstance(a, slower) == hc {
		t.Fatal("changed settings still got the client made for the old ones")
	}
	p.closeAddr(k.addr)
	if p.forInstance(a, k) == hc {
		t.Fatal("the client of a closed address was handed out again")
	}
}
