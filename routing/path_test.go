package routing

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		slashes EscapedSlashes
		want    string
		err     error
	}{
		{name: "root", in: "/", want: "/"},
		{name: "clean", in: "/a/b/c", want: "/a/b/c"},
		{name: "dot segment", in: "/a/./b", want: "/a/b"},
		{name: "dotdot segment", in: "/a/../b", want: "/b"},
		{name: "dotdot above root clamps", in: "/../../etc/passwd", want: "/etc/passwd"},
		{name: "dotdot only", in: "/..", want: "/"},
		{name: "dot only", in: "/.", want: "/"},
		{name: "trailing dotdot keeps directory form", in: "/a/b/..", want: "/a/"},
		{name: "trailing dot keeps directory form", in: "/a/b/.", want: "/a/b/"},
		{name: "duplicate slashes", in: "//a///b//", want: "/a/b/"},
		{name: "only slashes", in: "////", want: "/"},
		{name: "trailing slash preserved", in: "/a/b/", want: "/a/b/"},
		{name: "trailing slash preserved on slow path", in: "/a/%7Eb/", want: "/a/~b/"},
		{name: "dots inside names are data", in: "/a/..b/c../.d/...", want: "/a/..b/c../.d/..."},
		{name: "encoded dotdot lower", in: "/public/%2e%2e/admin", want: "/admin"},
		{name: "encoded dotdot mixed case", in: "/public/%2E%2e/admin", want: "/admin"},
		{name: "half encoded dotdot", in: "/public/.%2E/admin", want: "/admin"},
		{name: "encoded dot", in: "/a/%2e/b", want: "/a/b"},
		{name: "unreserved tilde decoded", in: "/%7Euser", want: "/~user"},
		{name: "unreserved letters decoded", in: "/%61%62%2D%5F%2E%30", want: "/ab-_.0"},
		{name: "reserved colon kept upper-cased", in: "/a%3ab", want: "/a%3Ab"},
		{name: "reserved kept", in: "/a%3Fb%23c%25d", want: "/a%3Fb%23c%25d"},
		{name: "space escape kept", in: "/a%20b", want: "/a%20b"},
		{name: "non-ascii escape upper-cased", in: "/caf%c3%a9", want: "/caf%C3%A9"},
		{name: "encoded percent is not decoded twice", in: "/%252e%252e/admin", want: "/%252e%252e/admin"},

		{name: "empty", in: "", err: ErrBadPath},
		{name: "relative", in: "a/b", err: ErrBadPath},
		{name: "asterisk form", in: "*", err: ErrBadPath},
		{name: "malformed escape", in: "/a%zz", err: ErrBadEscape},
		{name: "half hex escape", in: "/a%2g", err: ErrBadEscape},
		{name: "trailing percent", in: "/a%", err: ErrBadEscape},
		{name: "truncated escape", in: "/a%2", err: ErrBadEscape},
		{name: "NUL escape", in: "/a%00b", err: ErrNulInPath},
		{name: "raw NUL", in: "/a\x00b", err: ErrControlInPath},
		{name: "raw CR", in: "/a\rb", err: ErrControlInPath},
		{name: "raw LF", in: "/a\nb", err: ErrControlInPath},
		{name: "raw tab", in: "/a\tb", err: ErrControlInPath},
		{name: "raw DEL", in: "/a\x7fb", err: ErrControlInPath},

		{name: "%2F rejected by default", in: "/a%2Fb", err: ErrEscapedSlash},
		{name: "%2f rejected explicitly", in: "/a%2fb", slashes: RejectEscapedSlashes, err: ErrEscapedSlash},
		{name: "%5C rejected", in: "/a%5Cb", slashes: RejectEscapedSlashes, err: ErrEscapedSlash},
		{name: "encoded slash bypass rejected", in: "/public%2F..%2Fadmin", slashes: RejectEscapedSlashes, err: ErrEscapedSlash},
		{name: "backslash rejected", in: "/a\\b", slashes: RejectEscapedSlashes, err: ErrBackslash},
		{name: "backslash dotdot rejected", in: "/public\\..\\admin", err: ErrBackslash},

		{name: "%2f kept upper-cased", in: "/a%2fb", slashes: KeepEscapedSlashes, want: "/a%2Fb"},
		{name: "%5c kept upper-cased", in: "/a%5cb", slashes: KeepEscapedSlashes, want: "/a%5Cb"},
		{name: "backslash kept encoded", in: "/a\\b", slashes: KeepEscapedSlashes, want: "/a%5Cb"},
		{name: "kept slash is not a separator", in: "/public%2F..%2Fadmin", slashes: KeepEscapedSlashes, want: "/public%2F..%2Fadmin"},

		{name: "%2F decoded", in: "/a%2Fb", slashes: DecodeEscapedSlashes, want: "/a/b"},
		{name: "%5C decoded", in: "/a%5cb", slashes: DecodeEscapedSlashes, want: "/a/b"},
		{name: "backslash decoded", in: "/a\\b", slashes: DecodeEscapedSlashes, want: "/a/b"},
		{name: "decoded slash bypass resolved", in: "/public%2F..%2Fadmin", slashes: DecodeEscapedSlashes, want: "/admin"},
		{name: "decoded backslash bypass resolved", in: "/public\\..\\admin", slashes: DecodeEscapedSlashes, want: "/admin"},
		{name: "decoded duplicate slashes merged", in: "/a%2F%2Fb", slashes: DecodeEscapedSlashes, want: "/a/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slashes := tt.slashes
			if slashes == "" {
				slashes = RejectEscapedSlashes
			}
			got, err := NormalizePath(tt.in, slashes)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("NormalizePath(%q) = %q, %v; want error %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestNormalizePathFastPathReturnsInput(t *testing.T) {
	in := "/api/v1/users/42/"
	got, err := NormalizePath(in, RejectEscapedSlashes)
	if err != nil || got != in {
		t.Fatalf("got %q, %v", got, err)
	}
	// The fast path must not copy: the gateway normalizes every request.
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := NormalizePath(in, RejectEscapedSlashes); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("clean path allocated %v times", allocs)
	}
}

func TestNormalizePathBoundsSegments(t *testing.T) {
	in := strings.Repeat("/a/.", maxSegments)
	if _, err := NormalizePath(in, RejectEscapedSlashes); !errors.Is(err, ErrPathTooComplex) {
		t.Fatalf("err = %v, want ErrPathTooComplex", err)
	}
	ok := strings.Repeat("/a", maxSegments-1) + "/."
	got, err := NormalizePath(ok, RejectEscapedSlashes)
	if err != nil || got != strings.Repeat("/a", maxSegments-1)+"/" {
		t.Fatalf("got %q, %v", got, err)
	}
}

var fuzzSeeds = []string{
	"/", "/a/b", "/a/./b", "/a/../b", "/../../etc", "//a//b//", "/public/%2e%2e/admin",
	"/public/%2E%2e/admin", "/a%2Fb", "/a%5Cb", "/a\\b", "/a%00", "/a%zz", "/a%", "/%7E",
	"/a%3ab", "/a/b/", "/a/b/..", "/.", "/..", "/%2e", "/a/.%2e/", "/a%2F..%2F..%2Fb",
	"/\\..\\..\\x", "/%252e%252e/", "/a%c3%a9/./%2E/",
}

// FuzzNormalizePath checks the invariants routing relies on: whatever the
// input, an accepted path is absolute, has no empty or dot segments, and is
// a fixed point, so matching on it and forwarding it can't disagree.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range fuzzSeeds {
		for _, mode := range []uint8{0, 1, 2} {
			f.Add(s, mode)
		}
	}
	modes := []EscapedSlashes{RejectEscapedSlashes, KeepEscapedSlashes, DecodeEscapedSlashes}
	f.Fuzz(func(t *testing.T, in string, mode uint8) {
		slashes := modes[int(mode)%len(modes)]
		out, err := NormalizePath(in, slashes)
		if err != nil {
			if out != "" {
				t.Fatalf("error %v with non-empty output %q", err, out)
			}
			return
		}
		if !strings.HasPrefix(out, "/") {
			t.Fatalf("%q -> %q: not absolute", in, out)
		}
		if strings.Contains(out, "//") {
			t.Fatalf("%q -> %q: contains //", in, out)
		}
		for _, seg := range []string{"/./", "/../"} {
			if strings.Contains(out+"/", seg) {
				t.Fatalf("%q -> %q: contains dot segment %q", in, out, seg)
			}
		}
		if slashes != KeepEscapedSlashes && strings.ContainsAny(out, "\\") {
			t.Fatalf("%q -> %q: backslash survived", in, out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("%q -> %q: control byte %#x", in, out, c)
			}
		}
		again, err := NormalizePath(out, slashes)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}

func BenchmarkNormalizePath(b *testing.B) {
	for _, in := range []string{"/api/v1/users/42", "/api/./v1//users/%7Ejo/../42"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NormalizePath(in, RejectEscapedSlashes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestDotSegmentWithPathParametersRejected(t *testing.T) {
	for _, p := range []string{"/public/..;/admin", "/a/.;x/b", "/%2e%2e;jsessionid=1/admin", "/..;"} {
		if _, err := NormalizePath(p, RejectEscapedSlashes); err != ErrDotSegmentParams {
			t.Errorf("%s: err %v, want ErrDotSegmentParams", p, err)
		}
	}
	for p, want := range map[string]string{"/a;v=1/b": "/a;v=1/b", "/x/...;/y": "/x/...;/y"} {
		if got, err := NormalizePath(p, RejectEscapedSlashes); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", p, got, err, want)
		}
	}
}
