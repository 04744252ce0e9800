package decode

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Errors lists every rule a config breaks, each entry "key.path: what is
// wrong", so an operator fixes the file in one pass instead of one error
// at a time. It is the one error-list type of every config section.
type Errors struct {
	Problems []string
	// paths holds each problem's key path where it is known, so a merge
	// prefixes it exactly even when the path holds spaces (a map key).
	paths []string
}

func (e *Errors) Error() string {
	if len(e.Problems) == 1 {
		return "invalid config: " + e.Problems[0]
	}
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// Add records a problem at path.
func (e *Errors) Add(path, format string, args ...any) {
	e.add(path, fmt.Sprintf(format, args...))
}

func (e *Errors) add(path, msg string) {
	if len(e.paths) < len(e.Problems) {
		// Problems appended directly: their paths are unknown.
		e.paths = append(e.paths, make([]string, len(e.Problems)-len(e.paths))...)
	}
	e.Problems = append(e.Problems, path+": "+msg)
	e.paths = append(e.paths, path)
}

// Merge adds every problem err holds, each with prefix put in front of its
// key path. err may be an *Errors, an errors.Join of problems, a
// mapstructure decode error (whose field names become key paths), or any
// error whose text starts with a relative key path ("timeout: must be
// positive").
func (e *Errors) Merge(prefix string, err error) {
	if err == nil {
		return
	}
	var own *Errors
	if errors.As(err, &own) && own != nil && own == err {
		for i, p := range own.Problems {
			if i < len(own.paths) && own.paths[i] != "" {
				path := own.paths[i]
				e.add(JoinPath(prefix, path), strings.TrimPrefix(p, path+": "))
				continue
			}
			e.Problems = append(e.Problems, joinProblem(prefix, p))
		}
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, inner := range j.Unwrap() {
			e.Merge(prefix, inner)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) && de == err {
		path := JoinPath(prefix, de.Name())
		msg := oneLine(de.Unwrap())
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				e.add(JoinPath(path, k), "unknown key")
			}
			return
		}
		e.add(path, msg)
		return
	}
	if wrapped := errors.Unwrap(err); wrapped != nil && (isWrapperOnly(err, wrapped) || strings.HasPrefix(err.Error(), mapstructureWrap)) {
		e.Merge(prefix, wrapped)
		return
	}
	e.Problems = append(e.Problems, joinProblem(prefix, oneLine(err)))
}

// mapstructureWrap starts the text mapstructure wraps its joined errors in.
const mapstructureWrap = "decoding failed due to the following error(s):"

// isWrapperOnly reports whether err adds nothing to wrapped's text (a
// fmt.Errorf("%w") with no words of its own).
func isWrapperOnly(err, wrapped error) bool { return err.Error() == wrapped.Error() }

// Err returns e, or nil when it holds no problem.
func (e *Errors) Err() error {
	if e == nil || len(e.Problems) == 0 {
		return nil
	}
	return e
}

// Dedupe drops repeated problems (a built-in installed on every route
// reports a bad option once; a checker that validates and then builds
// reports a rule both steps check once), keeping the first of each.
func (e *Errors) Dedupe() {
	seen := make(map[string]bool, len(e.Problems))
	var problems, paths []string
	for i, p := range e.Problems {
		if seen[p] {
			continue
		}
		seen[p] = true
		problems = append(problems, p)
		path := ""
		if i < len(e.paths) {
			path = e.paths[i]
		}
		paths = append(paths, path)
	}
	e.Problems, e.paths = problems, paths
}

// Len is the number of problems.
func (e *Errors) Len() int { return len(e.Problems) }

// AsErrors returns the problem list of err, if err is one.
func AsErrors(err error) (*Errors, bool) {
	var e *Errors
	ok := errors.As(err, &e)
	return e, ok
}

// Prefix returns err with prefix put in front of every problem's key path,
// as an *Errors (nil when err is nil).
func Prefix(prefix string, err error) error {
	var e Errors
	e.Merge(prefix, err)
	return e.Err()
}

// JoinPath joins key paths: "routes[2]" + "filters[0]" is
// "routes[2].filters[0]", "origins.users" + "[1]" is "origins.users[1]".
func JoinPath(prefix, path string) string {
	switch {
	case prefix == "":
		return path
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	}
	return prefix + "." + path
}

// joinProblem prefixes a "path: message" line. A problem with no path of
// its own (no colon before a space) is about prefix itself.
func joinProblem(prefix, problem string) string {
	if prefix == "" {
		return problem
	}
	path, msg, ok := strings.Cut(problem, ": ")
	if !ok || strings.ContainsAny(path, " \"'") {
		return prefix + ": " + problem
	}
	return JoinPath(prefix, path) + ": " + msg
}

// oneLine flattens multi-line error text (mapstructure's joined errors).
func oneLine(err error) string {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	return strings.TrimPrefix(msg, mapstructureWrap+" ")
}
