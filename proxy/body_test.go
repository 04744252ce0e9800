package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRequestBodyEnforcesLimit(t *testing.T) {
	b := acquireRequestBody(strings.NewReader(strings.Repeat("a", 100)), 64)
	defer releaseRequestBody(b)
	_, err := io.ReadAll(b)
	if !errors.Is(err, errBodyTooLarge) || !errors.Is(b.clientErr, errBodyTooLarge) {
		t.Fatalf("want errBodyTooLarge, got %v / %v", err, b.clientErr)
	}
}

func TestRequestBodyReplaysPrefix(t *testing.T) {
	src := bytes.Repeat([]byte("0123456789"), 1000)
	b := acquireRequestBody(bytes.NewReader(src), 1<<20)
	defer releaseRequestBody(b)
	first := make([]byte, 4096)
	n, _ := io.ReadFull(b, first)
	if !b.rewind() {
		t.Fatal("a prefix within the replay limit must be replayable")
	}
	all, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(all, src) {
		t.Fatalf("replayed body differs (read %d first): %d bytes, err %v", n, len(all), err)
	}
}

func TestRequestBodyNotReplayableBeyondLimit(t *testing.T) {
	b := acquireRequestBody(bytes.NewReader(make([]byte, replayLimit*2)), 1<<30)
	defer releaseRequestBody(b)
	io.CopyN(io.Discard, b, replayLimit+1)
	if b.rewind() {
		t.Fatal("rewind must refuse once more than the replay limit was consumed")
	}
}
