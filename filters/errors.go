package filters

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is how a filter fails a request with a specific HTTP status and
// category. A plain error from Apply becomes a 500 with CategoryFilterError.
type Error struct {
	Status   int
	Category Category
	Reason   string
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Category, e.Reason, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Category, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Fail builds an *Error.
func Fail(status int, category Category, reason string, err error) *Error {
	return &Error{Status: status, Category: category, Reason: reason, Err: err}
}

// asError normalises any error returned by a filter into an *Error.
func asError(filterName string, err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		if fe.Status != 0 && fe.Category != "" {
			return fe
		}
		// Fill the defaults on a copy: a filter may return one shared
		// *Error value from every request, and writing to it would race.
		cp := *fe
		if cp.Status == 0 {
			cp.Status = http.StatusInternalServerError
		}
		if cp.Category == "" {
			cp.Category = CategoryFilterError
		}
		return &cp
	}
	return &Error{
		Status:   http.StatusInternalServerError,
		Category: CategoryFilterError,
		Reason:   "filter " + filterName + " failed",
		Err:      err,
	}
}
