package decode

import (
	"reflect"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes a generic tree (YAML as parsed, or options from config)
// into out with the schema's rules: unit hooks, strings accepted for
// scalars (environment overrides are strings), and unknown keys rejected
// so a typo fails loudly instead of silently doing nothing. Fields of out
// that the tree omits keep their values, so decoding over defaults keeps
// the defaults. Errors are an *Errors with paths relative to the tree.
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
	if err := dec.Decode(input); err != nil {
		return Prefix("", err)
	}
	return nil
}

// Validator is implemented by option and section types that check
// themselves after decoding. Problems name their key path relative to the
// section ("timeouts.connect: must be positive").
type Validator interface{ Validate() error }

// Section decodes raw over defaults() and validates the result; every
// problem's key path starts with at. A nil raw (the section is absent)
// yields the defaults, validated.
func Section[T any](at string, raw any, defaults func() T) (T, error) {
	v := defaults()
	if raw != nil {
		if err := Decode(raw, &v); err != nil {
			return v, Prefix(at, err)
		}
	}
	if err := Validate(&v); err != nil {
		return v, Prefix(at, err)
	}
	return v, nil
}

// Validate runs v's Validate method, whether it is declared on the value
// or on the pointer, or v is itself a non-nil pointer to a Validator.
func Validate[T any](v *T) error {
	if val, ok := any(v).(Validator); ok {
		return val.Validate()
	}
	if val, ok := any(*v).(Validator); ok && !isNilPointer(*v) {
		return val.Validate()
	}
	return nil
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
