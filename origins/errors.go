package origins

import "errors"

// Errors returned by Pick. The proxy maps each to its own status category.
var (
	// ErrNoHealthyInstances: the origin has no instances, or none is eligible (all
	// excluded, or breakers open while above the panic threshold).
	ErrNoHealthyInstances = errors.New("origins: no healthy instances")
	// ErrOriginConcurrency: the origin's max_concurrency cap is reached.
	ErrOriginConcurrency = errors.New("origins: origin concurrency limit reached")
	// ErrUnknownOrigin: the registry has no origin with that name.
	ErrUnknownOrigin = errors.New("origins: unknown origin")
	// ErrClosed: the origin or registry was closed.
	ErrClosed = errors.New("origins: closed")
)
