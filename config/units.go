package config

import (
	"fmt"
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
	if err != nil || n < 0 {
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
		return data, nil
	}
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
