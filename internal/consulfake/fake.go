// Package consulfake is a FAKE Consul agent for tests: an in-process net/http server
// that implements only GET /v1/health/service/<service>, following Consul's documented
// API closely enough for github.com/hashicorp/consul/api clients. It is not Consul,
// holds everything in memory, and must never be used outside tests and experiments.
//
// Implemented: the X-Consul-Index, X-Consul-KnownLeader and X-Consul-LastContact
// headers; blocking queries (index and wait parameters; the call returns when the
// service's index moves past the given one or the wait expires, plus up to wait/16 of
// jitter as Consul does); the passing, tag (repeatable, all must match) and dc
// parameters; ACLs as Consul applies them to this endpoint (see RequireToken). Test
// controls add, remove and fail instances, move an index backwards, and simulate
// outages.
package consulfake

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Instance is one registered service instance.
type Instance struct {
	ID      string // unique within the service
	Node    string
	Address string // service address; empty means the node address is used
	NodeIP  string // node address
	Port    int
	Tags    []string
	Weight  int // passing weight; 0 means 1
	Passing bool
}

// Outage modes.
type Outage int

const (
	// OutageNone serves normally.
	OutageNone Outage = iota
	// OutageError answers every query with 500, as a Consul agent without a leader.
	OutageError
	// OutageHang accepts queries and never answers them until the outage ends.
	OutageHang
)

// Server is the fake agent.
type Server struct {
	dc  string
	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	index    uint64
	services map[string]*service
	changed  chan struct{} // closed and replaced on every change
	outage   Outage
	// acl is on once RequireToken was called: tokens maps each known token to
	// the services it may read ("*" for all).
	acl    bool
	tokens map[string][]string

	closing  chan struct{}
	closeOne sync.Once
	// handlersMu orders handlers.Add against Close's Wait: net/http can
	// still start a handler for a connection accepted just before Close,
	// and a WaitGroup must not be added to while it is waited on.
	handlersMu     sync.Mutex
	handlersClosed bool
	handlers       sync.WaitGroup
	queries        atomic.Int64
	blocked        atomic.Int64
}

type service struct {
	index     uint64
	instances []Instance
}

// New starts a fake agent for datacenter dc on 127.0.0.1 with a random port.
func New(dc string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{
		dc:       dc,
		ln:       ln,
		index:    1,
		services: map[string]*service{},
		changed:  make(chan struct{}),
		closing:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health/service/{service}", s.handleHealthService)
	s.srv = &http.Server{Handler: s.track(mux), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the agent's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Queries counts health queries answered or in progress since start.
func (s *Server) Queries() int64 { return s.queries.Load() }

// Blocked is the number of blocking queries waiting for a change right now.
// Once a client has received an answer, a positive count means it has
// re-armed its next blocking query, so a change made now reaches it at once.
func (s *Server) Blocked() int64 { return s.blocked.Load() }

// Close stops the server, releases blocked queries and waits for every handler.
func (s *Server) Close() {
	s.closeOne.Do(func() {
		close(s.closing)
		s.handlersMu.Lock()
		s.handlersClosed = true
		s.handlersMu.Unlock()
		_ = s.srv.Close()
		s.handlers.Wait()
	})
}

func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.handlersMu.Lock()
		if s.handlersClosed {
			s.handlersMu.Unlock()
			http.Error(w, "agent shutting down", http.StatusServiceUnavailable)
			return
		}
		s.handlers.Add(1)
		s.handlersMu.Unlock()
		defer s.handlers.Done()
		h.ServeHTTP(w, r)
	})
}

// bump records a change to svc under s.mu and wakes blocked queries.
func (s *Server) bump(svc *service) {
	s.index++
	svc.index = s.index
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) svc(name string) *service {
	v, ok := s.services[name]
	if !ok {
		v = &service{}
		s.services[name] = v
	}
	return v
}

// Register adds or replaces (by ID) an instance of service.
func (s *Server) Register(serviceName string, in Instance) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.svc(serviceName)
	in.Tags = slices.Clone(in.Tags)
	if i := slices.IndexFunc(v.instances, func(x Instance) bool { return x.ID == in.ID }); i >= 0 {
		v.instances[i] = in
	} else {
		v.instances = append(v.instances, in)
	}
	s.bump(v)
}

// Deregister removes an instance; it reports whether it existed.
func (s *Server) Deregister(serviceName, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.svc(serviceName)
	i := slices.IndexFunc(v.instances, func(x Instance) bool { return x.ID == id })
	if i < 0 {
		return false
	}
	v.instances = slices.Delete(v.instances, i, i+1)
	s.bump(v)
	return true
}

// SetPassing sets an instance's service check to passing or critical.
func (s *Server) SetPassing(serviceName, id string, passing bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.svc(serviceName)
	i := slices.IndexFunc(v.instances, func(x Instance) bool { return x.ID == id })
	if i < 0 {
		return false
	}
	v.instances[i].Passing = passing
	s.bump(v)
	return true
}

// SetAllPassing sets every instance's service check of serviceName at
// once, in one index change, as when a shared dependency of all the checks
// fails: a blocking query sees all of them change together.
func (s *Server) SetAllPassing(serviceName string, passing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.svc(serviceName)
	for i := range v.instances {
		v.instances[i].Passing = passing
	}
	s.bump(v)
}

// ResetIndex moves the whole agent's index back to idx (as after a snapshot restore)
// and marks service as changed at that index.
func (s *Server) ResetIndex(serviceName string, idx uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = idx - 1
	for _, v := range s.services {
		v.index = min(v.index, idx)
	}
	s.bump(s.svc(serviceName))
}

// SetOutage switches the outage mode; ending an outage releases hung queries.
func (s *Server) SetOutage(o Outage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = o
	close(s.changed)
	s.changed = make(chan struct{})
}

// RequireToken turns ACLs on with a default-deny policy, as Consul runs them, and
// makes tok a token that may read every service ("" turns ACLs off). Then, like
// Consul's /v1/health/service: a token Consul does not know gets 403 "ACL not
// found"; no token (the anonymous token) or a token without service:read gets 200
// with the service's instances filtered out (an empty list) and the header
// X-Consul-Results-Filtered-By-ACLs: true.
func (s *Server) RequireToken(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acl = tok != ""
	s.tokens = map[string][]string{}
	if tok != "" {
		s.tokens[tok] = []string{"*"}
	}
}

// AddToken makes tok a known token that may read only the named services.
func (s *Server) AddToken(tok string, services ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens == nil {
		s.tokens = map[string][]string{}
	}
	s.tokens[tok] = services
}

// aclLocked decides a query under ACLs: known is false for a token Consul would
// not find (403); readable is false when the results must be filtered out.
func (s *Server) aclLocked(tok, service string) (known, readable bool) {
	if !s.acl {
		return true, true
	}
	if tok == "" {
		return true, false // the anonymous token, denied by default
	}
	grants, ok := s.tokens[tok]
	if !ok {
		return false, false
	}
	return true, slices.Contains(grants, "*") || slices.Contains(grants, service)
}

const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

func (s *Server) handleHealthService(w http.ResponseWriter, r *http.Request) {
	s.queries.Add(1)
	q := r.URL.Query()
	name := r.PathValue("service")
	if dc := q.Get("dc"); dc != "" && dc != s.dc {
		http.Error(w, "No path to datacenter", http.StatusInternalServerError)
		return
	}
	var minIndex uint64
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "Invalid index", http.StatusBadRequest)
			return
		}
		minIndex = n
	}
	wait := defaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			http.Error(w, "Invalid wait time", http.StatusBadRequest)
			return
		}
		wait = min(d, maxWait)
	}
	_, passingOnly := q["passing"]
	if v := q.Get("passing"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			passingOnly = b
		}
	}
	tags := q["tag"]

	deadline := time.NewTimer(wait + rand.N(wait/16+1))
	defer deadline.Stop()
	for {
		s.mu.Lock()
		outage, changed := s.outage, s.changed
		tokenKnown, readable := s.aclLocked(r.Header.Get("X-Consul-Token"), name)
		var idx uint64
		if v, ok := s.services[name]; ok && v.index > 0 {
			idx = v.index
		} else {
			idx = s.index
		}
		switch {
		case outage == OutageError:
			s.mu.Unlock()
			http.Error(w, "No cluster leader", http.StatusInternalServerError)
			return
		case outage == OutageHang:
			s.mu.Unlock()
			if !s.await(r.Context(), changed, nil) {
				return
			}
			continue
		case !tokenKnown:
			s.mu.Unlock()
			http.Error(w, "ACL not found", http.StatusForbidden)
			return
		}
		// Blocking semantics: wait while the service index has not moved past the
		// caller's, including when it went backwards (Consul then answers at timeout).
		if minIndex > 0 && idx <= minIndex {
			s.mu.Unlock()
			s.blocked.Add(1)
			woken := s.await(r.Context(), changed, deadline.C)
			s.blocked.Add(-1)
			if !woken {
				if r.Context().Err() != nil || s.isClosing() {
					return
				}
				s.mu.Lock()
				if s.outage != OutageNone {
					s.mu.Unlock()
					continue
				}
				s.respondLocked(w, name, passingOnly, tags, readable)
				return
			}
			continue
		}
		s.respondLocked(w, name, passingOnly, tags, readable)
		return
	}
}

// await blocks until changed closes (true), or the deadline passes, the request ends
// or the server closes (false).
func (s *Server) await(ctx context.Context, changed chan struct{}, deadline <-chan time.Time) bool {
	select {
	case <-changed:
		return true
	case <-deadline:
	case <-ctx.Done():
	case <-s.closing:
	}
	return false
}

func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// respondLocked writes the current answer; it releases s.mu.
// Without read permission the list is empty and marked as filtered, with the
// same index a permitted reader gets (Consul filters after the query).
func (s *Server) respondLocked(w http.ResponseWriter, name string, passingOnly bool, tags []string, readable bool) {
	idx := s.index
	var list []Instance
	if v, ok := s.services[name]; ok {
		if v.index > 0 {
			idx = v.index
		}
		list = slices.Clone(v.instances)
	}
	dc := s.dc
	s.mu.Unlock()

	out := make([]serviceEntry, 0, len(list))
	filtered := !readable && len(list) > 0
	if !readable {
		list = nil
	}
	for _, in := range list {
		if passingOnly && !in.Passing {
			continue
		}
		if !hasAllTags(in.Tags, tags) {
			continue
		}
		out = append(out, toEntry(name, dc, in))
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Consul-Index", strconv.FormatUint(max(idx, 1), 10))
	h.Set("X-Consul-KnownLeader", "true")
	h.Set("X-Consul-LastContact", "0")
	if filtered {
		h.Set("X-Consul-Results-Filtered-By-ACLs", "true")
	}
	_ = json.NewEncoder(w).Encode(out) // a write error means the client left
}

func hasAllTags(have, want []string) bool {
	for _, t := range want {
		if !slices.Contains(have, t) {
			return false
		}
	}
	return true
}

// JSON shapes of Consul's /v1/health/service response, written out here rather than
// borrowed from the api package, so a client/fake mismatch would show up in tests.
type serviceEntry struct {
	Node    node
	Service agentService
	Checks  []check
}

type node struct {
	ID         string
	Node       string
	Address    string
	Datacenter string
}

type agentService struct {
	ID      string
	Service string
	Tags    []string
	Address string
	Port    int
	Weights weights
}

type weights struct {
	Passing int
	Warning int
}

type check struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	ServiceID   string
	ServiceName string
}

func toEntry(name, dc string, in Instance) serviceEntry {
	status := "passing"
	if !in.Passing {
		status = "critical"
	}
	w := in.Weight
	if w <= 0 {
		w = 1
	}
	tags := in.Tags
	if tags == nil {
		tags = []string{}
	}
	return serviceEntry{
		Node: node{ID: in.Node, Node: in.Node, Address: in.NodeIP, Datacenter: dc},
		Service: agentService{
			ID: in.ID, Service: name, Tags: tags, Address: in.Address, Port: in.Port,
			Weights: weights{Passing: w, Warning: 1},
		},
		Checks: []check{
			{Node: in.Node, CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing"},
			{Node: in.Node, CheckID: "service:" + in.ID, Name: "Service '" + name + "' check",
				Status: status, ServiceID: in.ID, ServiceName: name},
		},
	}
}
