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
}

func (e *Errors) Error() string {
	if len(e.Problems) == 1 {
		return "invalid config: " + e.Problems[0]
	}
	return "invalid config:\n  " + strings.Join(e.Problems, "\n  ")
}

// Add records a problem at path.
func (e *Errors) Add(path, format string, args ...any) {
	e.Problems = append(e.Problems, JoinPath(path, "")+": "+fmt.Sprintf(format, args...))
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
		for _, p := range own.Problems {
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
				e.Problems = append(e.Problems, JoinPath(path, k)+": unknown key")
			}
			return
		}
		e.Problems = append(e.Problems, path+": "+msg)
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
