package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

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
	return &Outputs{
		std:   map[string]*lineWriter{Stdout: {w: stdout}, Stderr: {w: stderr}},
		files: map[string]*lineWriter{},
	}
}

// lineWriter makes each Write (one log line) atomic with respect to the
// others and counts failures, which would otherwise vanish: a log line has
// nowhere to report its own loss.
type lineWriter struct {
	mu     sync.Mutex
	w      io.Writer
	f      *os.File
	path   string
	errors atomic.Uint64
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.w.Write(p)
	l.mu.Unlock()
	if err != nil {
		l.errors.Add(1)
	}
	return n, err
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
	w := &lineWriter{w: f, f: f, path: name}
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
		w.w, w.f = f, f
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
	defer o.mu.Unlock()
	o.closed = true
	var errs []error
	for _, w := range o.files {
		w.mu.Lock()
		if err := w.f.Close(); err != nil {
			errs = append(errs, err)
		}
		w.mu.Unlock()
	}
	return errors.Join(errs...)
}
