package fuzz

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// seeds are the request shapes the fuzzer starts from: ordinary requests
// and the classic smuggling and conformance probes (issue 10). The same
// shapes are checked in as corpus files under testdata/fuzz, so plain
// `go test` replays them.
var seeds = []struct{ head, body string }{
	{"GET / HTTP/1.1\r\nHost: h", ""},
	{"GET /a/b?x=1 HTTP/1.0\r\nHost: h", ""},
	{"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5", "hello"},
	{"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n"},
	{"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", "5;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked", "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity", "GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer Encoding: chunked\r\nContent-Length: 3", "abc"},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4", "abcd"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity", "0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked", "0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked", "0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked", "0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nX: y\r\n Transfer-Encoding: chunked", "0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5", "hello"},
	{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5", "hello"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", "ffffffffffffffff1\r\nz\r\n0\r\n\r\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", "5\nhello\n0\n\n"},
	{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked", "1\r\nz\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"},
	{"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked", "0\r\n\r\n"},
	{"GET / HTTP/1.0", ""},
	{"GET / HTTP/1.1", ""},
	{"GET / HTTP/2.0\r\nHost: h", ""},
	{"GET http://public.test/x HTTP/1.1\r\nHost: secret.test", ""},
	{"GET http://u@h/x HTTP/1.1\r\nHost: h", ""},
	{"GET /admin;x HTTP/1.1\r\nHost: h", ""},
	{"GET /a/..;/admin HTTP/1.1\r\nHost: h", ""},
	{"GET /%2e%2e/admin HTTP/1.1\r\nHost: h", ""},
	{"GET /a%2Fb HTTP/1.1\r\nHost: h", ""},
	{"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h", ""},
	{"GET / HTTP/1.1\r\nHost: a@b", ""},
	{"GET / HTTP/1.1\r\nHost: h\r\nHost: h2", ""},
	{"OPTIONS * HTTP/1.1\r\nHost: h", ""},
	{"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3", "abc"},
	{"GET / HTTP/1.1\r\nHost: h\r\nConnection: x-drop, keep-alive\r\nX-Drop: 1\r\nUpgrade: websocket", ""},
	{"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\nForwarded: for=1.2.3.4\r\nx-request-id: a b", ""},
	{"GET /\x00 HTTP/1.1\r\nHost: h", ""},
	{"GET / HTTP/1.1\r\nHost: h\r\nX-Bad: a\x00b", ""},
}

// TestWriteSeedCorpus regenerates testdata/fuzz/FuzzRequestFraming from
// seeds when FLOODGATE_WRITE_CORPUS=1 (the files are checked in; plain
// `go test` replays them).
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("FLOODGATE_WRITE_CORPUS") != "1" {
		t.Skip("set FLOODGATE_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzRequestFraming")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range seeds {
		content := fmt.Sprintf("go test fuzz v1\nstring(%s)\n[]byte(%s)\n", strconv.Quote(s.head), strconv.Quote(s.body))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
