package decode

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

var (
	byteSizeType = reflect.TypeOf(ByteSize(0))
	durationType = reflect.TypeOf(time.Duration(0))
)

// DecodeHook converts YAML scalars into the schema's unit types: durations
// from "250ms" and sizes from "4MiB". A bare number is rejected for
// durations because "timeout: 5" is ambiguous (seconds? nanoseconds?).
func DecodeHook() mapstructure.DecodeHookFunc {
	return func(from, to reflect.Type, data any) (any, error) {
		switch to {
		case durationType:
			switch v := data.(type) {
			case string:
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil {
					return nil, fmt.Errorf("invalid duration %q: want a number with a unit such as 250ms, 5s or 1m", v)
				}
				return d, nil
			case time.Duration:
				return v, nil
			case int, int64, float64, uint64, int32:
				if reflect.ValueOf(v).IsZero() {
					return time.Duration(0), nil
				}
				return nil, fmt.Errorf("duration %v needs a unit, such as \"%vs\" or \"%vms\"", v, v, v)
			}
		case byteSizeType:
			switch v := data.(type) {
			case string:
				return ParseByteSize(v)
			case int:
				return ByteSize(v), nil
			case int64:
				return ByteSize(v), nil
			case uint64:
				return ByteSize(v), nil
			case float64:
				return ByteSize(v), nil
			}
		}
		if s, ok := data.(string); ok {
			if to.Kind() == reflect.Slice && to.Elem().Kind() != reflect.Uint8 {
				// A list from one string (an environment override): "502,503".
				var items []any
				for _, item := range strings.Split(s, ",") {
					if item = strings.TrimSpace(item); item != "" {
						items = append(items, item)
					}
				}
				return items, nil
			}
			return scalarFromString(s, to)
		}
		return data, nil
	}
}

// scalarFromString converts a string to a numeric or boolean field.
// Environment overrides always arrive as strings, and without this
// FLOODGATE_SERVER_MAX_CONNECTIONS=500 fails to decode into an int.
func scalarFromString(s string, to reflect.Type) (any, error) {
	t := strings.TrimSpace(s)
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(t, 10, to.Bits())
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", s)
		}
		return reflect.ValueOf(n).Convert(to).Interface(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(t, 10, to.Bits())
		if err != nil {
			return nil, fmt.Errorf("invalid unsigned integer %q", s)
		}
		return reflect.ValueOf(n).Convert(to).Interface(), nil
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(t, to.Bits())
		if err != nil {
			return nil, fmt.Errorf("invalid number %q", s)
		}
		return reflect.ValueOf(n).Convert(to).Interface(), nil
	case reflect.Bool:
		b, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("invalid boolean %q: want true or false", s)
		}
		return reflect.ValueOf(b).Convert(to).Interface(), nil
	}
	return s, nil
}
