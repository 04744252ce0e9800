package decode

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
	}{
		{"0", 0},
		{"512", 512},
		{"512b", 512},
		{"512B", 512},
		{"64KiB", 64 << 10},
		{"64kib", 64 << 10},
		{"4MiB", 4 << 20},
		{"1GiB", 1 << 30},
		{"2TiB", 2 << 40},
		{"10KB", 10_000},
		{"10MB", 10_000_000},
		{"1GB", 1_000_000_000},
		{"1TB", 1_000_000_000_000},
		{"16k", 16 << 10},
		{"16K", 16 << 10},
		{"2m", 2 << 20},
		{"1g", 1 << 30},
		{" 4 MiB ", 4 << 20},
		{"1.5MiB", 3 << 19},
		{"0.5KiB", 512},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseByteSizeErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":           "empty size",
		"   ":        "empty size",
		"MiB":        "invalid size",
		"abc":        "invalid size",
		"-1":         "invalid size",
		"-4MiB":      "invalid size",
		"4 XB":       "invalid size",
		"4PB":        "invalid size",
		"1e30":       "too large",
		"8388608TiB": "too large",
		"Inf":        "too large",
		"NaN":        "invalid size",
		"nanKiB":     "invalid size",
	} {
		got, err := ParseByteSize(in)
		if err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want error", in, got)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ParseByteSize(%q) error %q, want it to contain %q", in, err, want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{
		0: "0", 512: "512", 1 << 10: "1KiB", 1536: "1536", 64 << 20: "64MiB", 3 << 30: "3GiB", (1 << 20) + 1: "1048577",
	} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
		text, _ := b.MarshalText()
		if string(text) != want {
			t.Errorf("%d.MarshalText() = %q", int64(b), text)
		}
		// What String prints must parse back to the same size.
		if back, err := ParseByteSize(want); err != nil || back != b {
			t.Errorf("round trip %q = %d, %v", want, back, err)
		}
	}
}

type unitsTarget struct {
	Timeout time.Duration `mapstructure:"timeout"`
	Size    ByteSize      `mapstructure:"size"`
	Count   int           `mapstructure:"count"`
	Ratio   float64       `mapstructure:"ratio"`
	Enabled bool          `mapstructure:"enabled"`
	Port    uint16        `mapstructure:"port"`
	Name    string        `mapstructure:"name"`
	Nested  struct {
		Inner time.Duration `mapstructure:"inner"`
	} `mapstructure:"nested"`
}

func TestDecodeUnits(t *testing.T) {
	var got unitsTarget
	err := Decode(map[string]any{
		"timeout": "250ms",
		"size":    "4MiB",
		"count":   7,
		"ratio":   0.5,
		"enabled": true,
		"port":    8080,
		"name":    "x",
		"nested":  map[string]any{"inner": " 1m30s "},
	}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.Timeout != 250*time.Millisecond || got.Size != 4<<20 || got.Count != 7 || got.Ratio != 0.5 ||
		!got.Enabled || got.Port != 8080 || got.Name != "x" || got.Nested.Inner != 90*time.Second {
		t.Fatalf("decoded %+v", got)
	}

	// Integers for sizes are bytes; zero durations need no unit.
	got = unitsTarget{}
	if err := Decode(map[string]any{"size": 1024, "timeout": 0}, &got); err != nil || got.Size != 1024 || got.Timeout != 0 {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}

// TestDecodeStringScalars covers environment overrides, which viper hands
// over as strings whatever the field's type.
func TestDecodeStringScalars(t *testing.T) {
	var got unitsTarget
	err := Decode(map[string]any{"count": "500", "ratio": "0.25", "enabled": "true", "port": "443", "size": "1MiB", "timeout": "5s"}, &got)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 500 || got.Ratio != 0.25 || !got.Enabled || got.Port != 443 || got.Size != 1<<20 || got.Timeout != 5*time.Second {
		t.Fatalf("decoded %+v", got)
	}
	for key, val := range map[string]string{"count": "many", "enabled": "yes please", "port": "70000", "ratio": "x"} {
		var u unitsTarget
		err := Decode(map[string]any{key: val}, &u)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), val) {
			t.Errorf("%s=%q: error %v, want one naming the key and the value", key, val, err)
		}
	}
}

func TestDecodeDurationErrors(t *testing.T) {
	for _, tt := range []struct {
		val  any
		want string
	}{
		{5, `duration 5 needs a unit, such as "5s" or "5ms"`},
		{int64(30), `needs a unit`},
		{1.5, `needs a unit`},
		{"5", `invalid duration "5"`},
		{"five seconds", `invalid duration "five seconds"`},
		{true, "timeout"},
	} {
		var got unitsTarget
		err := Decode(map[string]any{"timeout": tt.val}, &got)
		if err == nil {
			t.Errorf("%#v decoded to %v, want error", tt.val, got.Timeout)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "timeout") {
			t.Errorf("%#v: error %q, want it to name the key and contain %q", tt.val, err, tt.want)
		}
	}
}

func TestDecodeRejectsUnknownKeys(t *testing.T) {
	var got unitsTarget
	err := Decode(map[string]any{"timeout": "1s", "timeuot": "2s", "nested": map[string]any{"iner": "1s"}}, &got)
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, want := range []string{"timeuot", "nested.iner: unknown key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestDecodeHookPassesThroughOtherTypes(t *testing.T) {
	hook := DecodeHook().(func(from, to reflect.Type, data any) (any, error))
	v, err := hook(reflect.TypeOf(""), reflect.TypeOf(""), "x")
	if err != nil || v != "x" {
		t.Fatalf("string to string: %v, %v", v, err)
	}
	v, err = hook(reflect.TypeOf(time.Duration(0)), durationType, 3*time.Second)
	if err != nil || v != 3*time.Second {
		t.Fatalf("duration to duration: %v, %v", v, err)
	}
}

// FuzzParseByteSize checks that no input panics or yields a negative or
// absurd size; NaN once slipped through as math.MinInt64.
func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"0", "4MiB", "1.5GiB", "10kb", "NaN", "Inf", "-0", "1e18", "0x1p10", " 7 b "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("%q: error %v with size %d", s, err, n)
			}
			return
		}
		if n < 0 || n > 1<<62 {
			t.Fatalf("%q parsed to %d", s, n)
		}
	})
}
