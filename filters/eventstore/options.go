package eventstore

import (
	"errors"
	"fmt"

	"github.com/floodgate-dev/floodgate/decode"
)

// DefaultMaxBodySize is the request body limit when Options.MaxBodySize is
// zero; it matches the store's own default so neither side is surprised.
const DefaultMaxBodySize int64 = 16 << 20

// Options configure a "timeseries" endpoint.
type Options struct {
	// Namespaces is an optional allowlist: when non-empty, only these
	// namespaces are served through this route and any other gets 403.
	// Empty serves every namespace the service has.
	Namespaces []string `mapstructure:"namespaces" json:"namespaces,omitempty"`
	// MaxBodySize is the largest request body read, in bytes; 0 means
	// DefaultMaxBodySize.
	MaxBodySize decode.ByteSize `mapstructure:"max_body_size"`
}

// Validate reports every problem, each naming its field.
func (o Options) Validate() error {
	var errs []error
	if o.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("max_body_size: must not be negative, got %d", o.MaxBodySize))
	}
	seen := make(map[string]bool, len(o.Namespaces))
	for i, ns := range o.Namespaces {
		switch {
		case ns == "":
			errs = append(errs, fmt.Errorf("namespaces[%d]: must not be empty", i))
		case seen[ns]:
			errs = append(errs, fmt.Errorf("namespaces[%d]: %q is listed twice", i, ns))
		}
		seen[ns] = true
	}
	return errors.Join(errs...)
}

func (o Options) maxBody() int64 {
	if o.MaxBodySize <= 0 {
		return DefaultMaxBodySize
	}
	return int64(o.MaxBodySize)
}
