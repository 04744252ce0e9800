package decode

import (
	"encoding"
	"fmt"
	"reflect"
	"time"
)

// Tree renders a typed config value back into the generic tree its YAML
// would have: keys as written in YAML (mapstructure tags, snake_case),
// durations and sizes in human units, absent optional sections left out.
// The admin API shows the effective config with it.
func Tree(v any) any {
	return tree(reflect.ValueOf(v))
}

var durationKind = reflect.TypeFor[time.Duration]()

func tree(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Type() == durationKind {
		return time.Duration(v.Int()).String()
	}
	if tm, ok := v.Interface().(encoding.TextMarshaler); ok && v.Kind() != reflect.Struct {
		if b, err := tm.MarshalText(); err == nil {
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		out := map[string]any{}
		structTree(v, out)
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			out[fmt.Sprint(iter.Key().Interface())] = tree(iter.Value())
		}
		return out
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range v.Len() {
			out[i] = tree(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

func structTree(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts := fieldTag(f)
		fv := v.Field(i)
		switch {
		case !f.IsExported():
		case opts == "squash" || (f.Anonymous && name == ""):
			if fv.Kind() == reflect.Struct {
				structTree(fv, out)
			}
		case opts == "remain":
			if m, ok := tree(fv).(map[string]any); ok {
				for k, val := range m {
					out[k] = val
				}
			}
		case name != "":
			if val := tree(fv); val != nil {
				out[name] = val
			}
		}
	}
}
