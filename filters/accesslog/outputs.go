package accesslog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// FlushInterval bounds how long a log line waits in its buffer. Buffering
// turns one write syscall per request into one per 64 KiB or per
// interval; the cost is that a crash loses at most this much of the log.
const FlushInterval = 200 * time.Millisecond

const bufferSize = 64 << 10

// Output names that are not file paths.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// Outputs owns the writers access logs go to. It outlives config
// snapshots: filter instances are rebuilt on every reload, and opening a
// file per instance would leak descriptors and interleave lines from two
// handles. Every writer serialises whole lines, so instances from an old
// and a new snapshot can share one file.
type Outputs struct {
	mu     sync.Mutex
	std    map[string]*lineWriter
	files  map[string]*lineWriter
	closed bool
	stop   chan struct{}
	done   chan struct{}
}

// NewOutputs returns Outputs writing "stdout" and "stderr" to the given
// writers (nil means os.Stdout and os.Stderr).
func NewOutputs(stdout, stderr io.Writer) *Outputs {
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	o := &Outputs{
		std:   map[string]*lineWriter{Stdout: newLineWriter(stdout, nil, ""), Stderr: newLineWriter(stderr, nil, "")},
		files: map[string]*lineWriter{},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go o.flushLoop()
	return o
}

func (o *Outputs) flushLoop() {
	defer close(o.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.Flush()
		}
	}
}

// Flush writes out every buffered line now.
func (o *Outputs) Flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, w := range o.std {
		w.flush()
	}
	for _, w := range o.files {
		w.flush()
	}
}

// lineWriter makes each Write (one log line) atomic with respect to the
// others and counts failures, which would otherwise vanish: a log line has
// nowhere to report its own loss.
type lineWriter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	f      *os.File
	path   string
	closed bool
	errors atomic.Uint64
}

var errClosed = errors.New("access log output is closed")

func newLineWriter(w io.Writer, f *os.File, path string) *lineWriter {
	return &lineWriter{w: bufio.NewWriterSize(w, bufferSize), f: f, path: path}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := 0, errClosed
	if !l.closed {
		n, err = l.w.Write(p)
	}
	l.mu.Unlock()
	if err != nil {
		l.errors.Add(1)
	}
	return n, err
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	err := l.w.Flush()
	l.mu.Unlock()
	if err != nil {
		l.errors.Add(1)
	}
}

// Open returns the writer for name: "stdout", "stderr" or a file path,
// opened for appending (created 0640 if missing). The same name always
// yields the same writer.
func (o *Outputs) Open(name string) (io.Writer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w, ok := o.std[name]; ok {
		return w, nil
	}
	if o.closed {
		return nil, errors.New("access log outputs are closed")
	}
	if w, ok := o.files[name]; ok {
		return w, nil
	}
	f, err := openFile(name)
	if err != nil {
		return nil, err
	}
	w := newLineWriter(f, f, name)
	o.files[name] = w
	return w, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening access log: %w", err)
	}
	return f, nil
}

// Reopen reopens every file at its path, for log rotation: after the
// rotator renames a file, lines go to a fresh one. A file that cannot be
// reopened keeps its old handle and the error is returned.
func (o *Outputs) Reopen() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for _, w := range o.files {
		f, err := openFile(w.path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		w.mu.Lock()
		old := w.f
		_ = w.w.Flush()
		w.w, w.f = bufio.NewWriterSize(f, bufferSize), f
		w.mu.Unlock()
		if err := old.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// WriteErrors counts lines lost to write errors across all outputs.
func (o *Outputs) WriteErrors() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n uint64
	for _, w := range o.std {
		n += w.errors.Load()
	}
	for _, w := range o.files {
		n += w.errors.Load()
	}
	return n
}

// Close closes the files. Lines written afterwards fail (and are counted);
// call it after the server has drained.
func (o *Outputs) Close() error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	close(o.stop)
	<-o.done
	o.Flush()
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for _, w := range o.std {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
	}
	for _, w := range o.files {
		w.mu.Lock()
		w.closed = true
		if err := w.f.Close(); err != nil {
			errs = append(errs, err)
		}
		w.mu.Unlock()
	}
	return errors.Join(errs...)
}
