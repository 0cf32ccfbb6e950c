//go:build linux

package transport

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// accept4 parses the peer address itself: it must agree with what the
// peer sees as its own address, for IPv4 and IPv6.
func TestRawAccept4PeerAddress(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v (skipped)", network, err)
			continue
		}
		f, err := ln.(*net.TCPListener).File() // a dup in blocking mode
		if err != nil {
			t.Fatal(err)
		}
		lfd := int(f.Fd())
		dialed, err := net.DialTimeout(network, ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fd, remote, err := accept4(lfd)
		if err != nil {
			t.Fatalf("%s: accept4: %v", network, err)
		}
		want := dialed.LocalAddr().(*net.TCPAddr).AddrPort()
		want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
		if remote != want {
			t.Errorf("%s: accept4 peer %s, the dialer is %s", network, remote, want)
		}
		// Non-blocking: a read with nothing sent is EAGAIN, not a hang.
		if _, err := read(int32(fd), make([]byte, 8)); err != unix.EAGAIN {
			t.Errorf("%s: read on the accepted socket: %v, want EAGAIN", network, err)
		}
		closeFD(fd)
		dialed.Close()
		f.Close()
		ln.Close()
	}
}
