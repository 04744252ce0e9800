package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
)

// The handshake and one frame are spoken by hand (RFC 6455), so the holder
// itself stays small next to what it measures.
const wsHandshake = "GET %s HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

var pingFrame = maskedText([]byte("ping"))

// openTunnel does the handshake, sends one text frame and reads its echo.
func openTunnel(addr, path string) (net.Conn, error) {
	return dialAndCheck(addr, fmt.Sprintf(wsHandshake, path), func(c net.Conn, br *bufio.Reader, resp *http.Response) error {
		if resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("handshake answered %d", resp.StatusCode)
		}
		if _, err := c.Write(pingFrame); err != nil {
			return err
		}
		echo := make([]byte, 6) // unmasked header (2) + "ping"
		if _, err := io.ReadFull(br, echo); err != nil {
			return err
		}
		if !bytes.Equal(echo[2:], []byte("ping")) {
			return fmt.Errorf("echo %q", echo)
		}
		return nil
	})
}

// maskedText is a client text frame (RFC 6455 5.2) with a payload under
// 126 bytes.
func maskedText(p []byte) []byte {
	key := [4]byte{7, 1, 2, 9}
	f := append([]byte{0x81, 0x80 | byte(len(p))}, key[:]...)
	for i, b := range p {
		f = append(f, b^key[i%4])
	}
	return f
}
