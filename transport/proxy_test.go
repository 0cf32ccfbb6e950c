package transport

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestParseProxy(t *testing.T) {
	v4 := netip.MustParseAddrPort("203.0.113.7:40001")
	dst := netip.MustParseAddrPort("198.51.100.1:1883")
	tests := []struct {
		name string
		in   string
		n    int    // header length; 0 with wantErr
		src  string // "" for no address
		err  error  // errProxyIncomplete, ErrProxyHeader or nil
	}{
		{"v1 tcp4", "PROXY TCP4 203.0.113.7 198.51.100.1 40001 1883\r\nMQTT", 48, "203.0.113.7:40001", nil},
		{"v1 tcp6", "PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n", 40, "[2001:db8::7]:1", nil},
		{"v1 unknown with addresses", "PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n", 35, "", nil},
		{"v1 empty", "", 0, "", errProxyIncomplete},
		{"v1 prefix", "PROX", 0, "", errProxyIncomplete},
		{"v1 no CRLF yet", "PROXY TCP4 1.2.3.4 5.6", 0, "", errProxyIncomplete},
		{"v1 lowercase", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", 0, "", ErrProxyHeader},
		{"v1 missing field", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0, "", ErrProxyHeader},
		{"v1 extra space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 0, "", ErrProxyHeader},
		{"v1 leading zero port", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", 0, "", ErrProxyHeader},
		{"v1 signed port", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", 0, "", ErrProxyHeader},
		{"v1 ipv6 in tcp4", "PROXY TCP4 ::1 ::1 1 2\r\n", 0, "", ErrProxyHeader},
		{"v1 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", 0, "", ErrProxyHeader},
		{"v2 inet", string(proxyV2(1, v4, dst)), 28, "203.0.113.7:40001", nil},
		{"v2 local", string(proxyV2(0, v4, dst)), 28, "", nil},
		{"v2 unspec family", proxyV2Sig + "\x21\x00\x00\x00", 16, "", nil},
		{"v2 unix", proxyV2Sig + "\x21\x31\x00\xd8" + string(make([]byte, 216)), 232, "", nil},
		{"v2 inet with TLV", proxyV2Sig + "\x21\x11\x00\x0f" + "\xcb\x00\x71\x07" + "\x01\x02\x03\x04" + "\x9c\x41\x07\x5b" + "\x04\x00\x00", 31, "203.0.113.7:40001", nil},
		{"v2 signature prefix", proxyV2Sig[:5], 0, "", errProxyIncomplete},
		{"v2 body pending", proxyV2Sig + "\x21\x11\x00\x0c\x01", 0, "", errProxyIncomplete},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIX\n", 0, "", ErrProxyHeader},
		{"v2 version 1", proxyV2Sig + "\x11\x11\x00\x0c", 0, "", ErrProxyHeader},
		{"v2 command 2", proxyV2Sig + "\x22\x11\x00\x0c", 0, "", ErrProxyHeader},
		{"v2 family 4", proxyV2Sig + "\x21\x41\x00\x00", 0, "", ErrProxyHeader},
		{"v2 local ignores the family", proxyV2Sig + "\x20\x41\x00\x00", 16, "", nil},
		{"v2 too long", proxyV2Sig + "\x21\x11\xff\xff", 0, "", ErrProxyHeader},
		{"v2 short inet6", proxyV2Sig + "\x21\x21\x00\x0c" + string(make([]byte, 12)), 0, "", ErrProxyHeader},
		{"mqtt connect", "\x10\x0c\x00\x04MQTT", 0, "", ErrProxyHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, src, err := parseProxy([]byte(tt.in))
			if !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if n != tt.n {
				t.Errorf("n = %d, want %d", n, tt.n)
			}
			got := ""
			if src.IsValid() {
				got = src.String()
			}
			if got != tt.src {
				t.Errorf("src = %q, want %q", got, tt.src)
			}
		})
	}
}

// FuzzParseProxy checks that the parser never panics, reports a length
// within its input, and is consistent under truncation: every proper prefix
// of an accepted header is incomplete, and the header alone parses the same.
func FuzzParseProxy(f *testing.F) {
	v4 := netip.MustParseAddrPort("203.0.113.7:40001")
	v6 := netip.MustParseAddrPort("[2001:db8::7]:40002")
	f.Add([]byte("PROXY TCP4 203.0.113.7 198.51.100.1 40001 1883\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 2001:db8::1 40002 1883\r\nrest"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, v4, netip.MustParseAddrPort("198.51.100.1:1883")))
	f.Add(proxyV2(1, v6, netip.MustParseAddrPort("[2001:db8::1]:1883")))
	f.Add(proxyV2(0, v4, v4))
	f.Add([]byte(proxyV2Sig + "\x21\x31\x00\xd8"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, src, err := parseProxy(b)
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with n=%d src=%v", err, n, src)
			}
			if !errors.Is(err, errProxyIncomplete) && !errors.Is(err, ErrProxyHeader) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if errors.Is(err, errProxyIncomplete) && len(b) >= proxyMaxHeader {
				t.Fatalf("incomplete after %d bytes", len(b))
			}
			return
		}
		if n <= 0 || n > len(b) || n > proxyMaxHeader {
			t.Fatalf("n = %d for %d bytes", n, len(b))
		}
		n2, src2, err2 := parseProxy(b[:n])
		if err2 != nil || n2 != n || src2 != src {
			t.Fatalf("header alone: %d %v %v, want %d %v", n2, src2, err2, n, src)
		}
		for k := range n {
			if _, _, err := parseProxy(b[:k]); !errors.Is(err, errProxyIncomplete) {
				t.Fatalf("prefix of %d/%d bytes: %v, want incomplete", k, n, err)
			}
		}
	})
}

// A PROXY listener always bounds the wait for the header: 0 means the
// default, not forever (a client sending half a header would otherwise
// hold its socket and, behind net/http, a goroutine for good).
func TestProxyListenerZeroTimeoutMeansTheDefault(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got := ProxyListener(l, 0).(*proxyListener).timeout; got != defaultProxyTimeout {
		t.Fatalf("timeout %v, want the default %v", got, defaultProxyTimeout)
	}
	pl := ProxyListener(l, 200*time.Millisecond)
	go func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err == nil {
			c.Write([]byte("PROXY TCP4 1.2.3.4 ")) // half a header, then silence
			time.Sleep(2 * time.Second)
			c.Close()
		}
	}()
	c, err := pl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	if err := c.(*proxyConn).Handshake(); err == nil {
		t.Fatal("half a PROXY header was accepted")
	}
	if d := time.Since(began); d > time.Second {
		t.Fatalf("the header wait took %v, bounded at 200ms", d)
	}
}
