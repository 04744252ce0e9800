package custom

import (
	"errors"

	"github.com/floodgate-dev/floodgate/filters"
)

// StampOptions configure the example "stamp" filter. The mapstructure tags
// are the YAML keys; unknown keys are rejected at config load.
type StampOptions struct {
	Header string `mapstructure:"header"`
	Value  string `mapstructure:"value"`
	Order  int    `mapstructure:"order"`
}

// Validate is called after decoding; errors start with the option's key so
// the gateway can report the full key path.
func (o *StampOptions) Validate() error {
	if o.Header == "" {
		return errors.New("header: required")
	}
	return nil
}

// stamp adds a fixed header to every response of the routes it is on. It
// is an inbound filter that asks for the header with SetResponseHeader, so
// the header appears on proxied responses and local rejections alike.
type stamp struct {
	filters.Base
	opts StampOptions
}

func (s *stamp) Apply(c *filters.Context) error {
	c.SetResponseHeader(s.opts.Header, s.opts.Value)
	return nil
}

func init() {
	filters.Register("stamp",
		func() StampOptions { return StampOptions{Header: "X-Stamp", Order: 500} },
		func(env *filters.Env, o StampOptions) (filters.Filter, error) {
			return &stamp{Base: filters.NewBase("stamp", filters.Inbound, o.Order), opts: o}, nil
		})
}

var _ filters.Filter = (*stamp)(nil)
