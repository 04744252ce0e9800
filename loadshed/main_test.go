package loadshed

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/floodgate-dev/floodgate/trust"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRequest is a plain Request for tests; pointers to it satisfy the
// interface without allocating, like the gateway's adapter will.
type fakeRequest struct {
	method, path, route string
	headers, query      map[string]string
	ip                  netip.Addr
	// certNames are the verified TLS client certificate's identities.
	certNames []string
}

func (r *fakeRequest) Method() string            { return r.method }
func (r *fakeRequest) Path() string              { return r.path }
func (r *fakeRequest) Route() string             { return r.route }
func (r *fakeRequest) Header(name string) string { return r.headers[name] }
func (r *fakeRequest) Query(name string) string  { return r.query[name] }
func (r *fakeRequest) Identity() trust.Identity {
	id := trust.Identity{Peer: r.ip, Client: r.ip}
	if r.certNames != nil {
		id.TLS = &trust.TLS{Names: r.certNames}
	}
	return id
}

func req(method, path string) *fakeRequest {
	return &fakeRequest{method: method, path: path, headers: map[string]string{}, query: map[string]string{}, ip: netip.MustParseAddr("203.0.113.7")}
}

func intp(v int) *int { return &v }
