package timeseries

import (
	"context"

	"github.com/floodgate-dev/floodgate/timeseries/storage"
)

// refIter yields refs in index order (storage.CompareRefs). Search composes them: a leaf reads
// one index partition, AND intersects and OR unions sorted streams, so a search streams
// through the index with bounded memory and stops as soon as a page is full.
type refIter interface {
	peek(ctx context.Context) (storage.Ref, bool, error)
	advance()
}

const leafChunk = 256

// leafIter pages through one index partition in chunks, resuming after the last ref seen.
type leafIter struct {
	engine storage.Engine
	ns     string
	ip     storage.IndexPartition
	m      storage.IndexMatch
	r      storage.TimeRange
	after  *storage.Ref
	buf    []storage.Ref
	pos    int
	eof    bool
}

func (l *leafIter) peek(ctx context.Context) (storage.Ref, bool, error) {
	for l.pos >= len(l.buf) {
		if l.eof {
			return storage.Ref{}, false, nil
		}
		l.buf, l.pos = l.buf[:0], 0
		err := l.engine.ScanIndex(ctx, l.ns, l.ip, l.m, l.r, l.after, func(ref storage.Ref) bool {
			l.buf = append(l.buf, ref)
			return len(l.buf) < leafChunk
		})
		if err != nil {
			return storage.Ref{}, false, err
		}
		if len(l.buf) < leafChunk {
			l.eof = true
		}
		if n := len(l.buf); n > 0 {
			last := l.buf[n-1]
			l.after = &last
		}
	}
	return l.buf[l.pos], true, nil
}

func (l *leafIter) advance() { l.pos++ }

// orIter merges children, emitting each ref once.
type orIter struct{ kids []refIter }

func (o *orIter) peek(ctx context.Context) (storage.Ref, bool, error) {
	var best storage.Ref
	found := false
	for _, k := range o.kids {
		r, ok, err := k.peek(ctx)
		if err != nil {
			return storage.Ref{}, false, err
		}
		if ok && (!found || storage.CompareRefs(r, best) < 0) {
			best, found = r, true
		}
	}
	return best, found, nil
}

func (o *orIter) advance() {
	// peek was just called, so every child's head is buffered; advancing with a background
	// context cannot trigger I/O.
	best, ok, _ := o.peek(context.Background())
	if !ok {
		return
	}
	for _, k := range o.kids {
		if r, ok, _ := k.peek(context.Background()); ok && storage.CompareRefs(r, best) == 0 {
			k.advance()
		}
	}
}

// andIter emits refs present in every child.
type andIter struct{ kids []refIter }

func (a *andIter) peek(ctx context.Context) (storage.Ref, bool, error) {
	for {
		var far storage.Ref
		for i, k := range a.kids {
			r, ok, err := k.peek(ctx)
			if err != nil || !ok {
				return storage.Ref{}, false, err
			}
			if i == 0 || storage.CompareRefs(r, far) > 0 {
				far = r
			}
		}
		aligned := true
		for _, k := range a.kids {
			for {
				r, ok, err := k.peek(ctx)
				if err != nil || !ok {
					return storage.Ref{}, false, err
				}
				c := storage.CompareRefs(r, far)
				if c >= 0 {
					if c > 0 {
						aligned = false
					}
					break
				}
				k.advance()
			}
		}
		if aligned {
			return far, true, nil
		}
		if err := ctx.Err(); err != nil {
			return storage.Ref{}, false, err
		}
	}
}

func (a *andIter) advance() {
	for _, k := range a.kids {
		k.advance()
	}
}

// buildIter turns a compiled query into iterators over one time bucket.
func (s *Service) buildIter(n *qnode, ns string, slice, bucket int64, r storage.TimeRange, after *storage.Ref) refIter {
	switch {
	case n.and != nil:
		a := &andIter{}
		for _, c := range n.and {
			a.kids = append(a.kids, s.buildIter(c, ns, slice, bucket, r, after))
		}
		return a
	case n.or != nil:
		o := &orIter{}
		for _, c := range n.or {
			o.kids = append(o.kids, s.buildIter(c, ns, slice, bucket, r, after))
		}
		return o
	}
	kind := n.kind
	if kind == storage.KindBoolean {
		kind = storage.KindKeyword // booleans are posted as keyword "true"/"false"
	}
	var a *storage.Ref
	if after != nil {
		c := *after
		a = &c
	}
	return &leafIter{engine: s.engine, ns: ns, ip: storage.IndexPartition{Slice: slice, Bucket: bucket, Field: n.field, Kind: kind}, m: n.match, r: r, after: a}
}
