package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// ByteSize is a size in bytes written in human units in YAML: "512", "64KiB",
// "4MiB", "1GiB", "10MB". Binary (KiB) and decimal (KB) suffixes are both
// accepted because operators write both; they mean what they say.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000}, {"tb", 1000 * 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// ParseByteSize parses a human size such as "4MiB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	// ParseFloat accepts "NaN", whose conversion to an integer is undefined.
	if err != nil || n < 0 || math.IsNaN(n) {
		return 0, fmt.Errorf("invalid size %q: want a number with an optional unit such as 64KiB or 4MiB", s)
	}
	v := n * float64(mult)
	if v > float64(1<<62) {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return ByteSize(v), nil
}

func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText renders the size in the units a person would write.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

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

// Decode decodes a generic YAML value into a typed struct with the schema's
// rules: unit hooks, and unknown keys rejected so typos fail loudly instead
// of silently doing nothing.
func Decode(input any, out any) error {
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(DecodeHook(), mapstructure.StringToSliceHookFunc(",")),
		ErrorUnused:      true,
		WeaklyTypedInput: false,
		Result:           out,
		TagName:          "mapstructure",
		Squash:           true,
	})
	if err != nil {
		return err
	}
	return dec.Decode(input)
}
