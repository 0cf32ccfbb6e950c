package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// PROXY protocol (HAProxy, "The PROXY protocol", versions 1 and 2): a load
// balancer that terminates TCP sends one header before the client's bytes,
// naming the real client address. Written by hand because it is a hundred
// lines and the maintained libraries wrap net.Conn, which the epoll path
// does not have.

const (
	proxyV1Prefix = "PROXY "
	proxyV1MaxLen = 107 // "the maximum line length is 107 bytes including the CRLF"
	proxyV2Sig    = "\r\n\r\n\x00\r\nQUIT\n"
	proxyV2Head   = 16
	// proxyV2MaxBody bounds the addresses and TLVs we are willing to buffer
	// (the format allows 65535). Real load balancers send a few hundred.
	proxyV2MaxBody = 4096
	// proxyMaxHeader is the longest PROXY header accepted.
	proxyMaxHeader = proxyV2Head + proxyV2MaxBody
)

var (
	// errProxyIncomplete means more bytes are needed to decide.
	errProxyIncomplete = errors.New("proxy header incomplete")
	// ErrProxyHeader is wrapped by every malformed PROXY header error.
	ErrProxyHeader = errors.New("transport: malformed PROXY protocol header")
)

func proxyErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrProxyHeader, fmt.Sprintf(format, a...))
}

// parseProxy parses a PROXY protocol v1 or v2 header at the start of b. It
// returns the header length and the client address; src is invalid when the
// header carries none (v1 UNKNOWN, v2 LOCAL, UNSPEC or UNIX), in which case
// the socket's own peer address stands. It returns errProxyIncomplete when b
// is a proper prefix of a header that may still be valid.
func parseProxy(b []byte) (n int, src netip.AddrPort, err error) {
	switch {
	case len(b) == 0:
		return 0, src, errProxyIncomplete
	case b[0] == 'P':
		return parseProxyV1(b)
	case b[0] == '\r':
		return parseProxyV2(b)
	}
	return 0, src, proxyErr("no PROXY signature")
}

func parseProxyV1(b []byte) (int, netip.AddrPort, error) {
	var none netip.AddrPort
	if k := min(len(b), len(proxyV1Prefix)); string(b[:k]) != proxyV1Prefix[:k] {
		return 0, none, proxyErr("no PROXY signature")
	}
	end := bytes.Index(b[:min(len(b), proxyV1MaxLen)], []byte("\r\n"))
	if end < 0 {
		if len(b) >= proxyV1MaxLen {
			return 0, none, proxyErr("v1 line longer than %d bytes", proxyV1MaxLen)
		}
		return 0, none, errProxyIncomplete
	}
	n := end + 2
	fields := bytes.Split(b[len(proxyV1Prefix):end], []byte(" "))
	switch string(fields[0]) {
	case "UNKNOWN":
		// The receiver must ignore anything after UNKNOWN.
		return n, none, nil
	case "TCP4", "TCP6":
	default:
		return 0, none, proxyErr("v1 protocol %q", fields[0])
	}
	if len(fields) != 5 {
		return 0, none, proxyErr("v1 wants 5 fields, got %d", len(fields))
	}
	srcIP, err1 := netip.ParseAddr(string(fields[1]))
	dstIP, err2 := netip.ParseAddr(string(fields[2]))
	srcPort, err3 := parsePort(fields[3])
	_, err4 := parsePort(fields[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return 0, none, proxyErr("v1 address: %v", err)
	}
	want4 := string(fields[0]) == "TCP4"
	if srcIP.Zone() != "" || srcIP.Is4() != want4 || dstIP.Is4() != want4 {
		return 0, none, proxyErr("v1 address family does not match %s", fields[0])
	}
	return n, netip.AddrPortFrom(srcIP, srcPort), nil
}

func parsePort(b []byte) (uint16, error) {
	if len(b) == 0 || len(b) > 5 || (len(b) > 1 && b[0] == '0') {
		return 0, fmt.Errorf("port %q", b)
	}
	p, err := strconv.ParseUint(string(b), 10, 16)
	return uint16(p), err
}

func parseProxyV2(b []byte) (int, netip.AddrPort, error) {
	var none netip.AddrPort
	if k := min(len(b), len(proxyV2Sig)); string(b[:k]) != proxyV2Sig[:k] {
		return 0, none, proxyErr("no PROXY signature")
	}
	if len(b) < proxyV2Head {
		return 0, none, errProxyIncomplete
	}
	verCmd, famProto := b[12], b[13]
	bodyLen := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return 0, none, proxyErr("v2 version %d", verCmd>>4)
	}
	if bodyLen > proxyV2MaxBody {
		return 0, none, proxyErr("v2 header of %d bytes is longer than %d", bodyLen, proxyV2MaxBody)
	}
	cmd, family, proto := verCmd&0xf, famProto>>4, famProto&0xf
	if cmd > 0x1 { // 0 LOCAL, 1 PROXY
		return 0, none, proxyErr("v2 command %d", cmd)
	}
	if cmd == 0x1 && family > 0x3 { // UNSPEC, INET, INET6, UNIX; LOCAL ignores the family
		return 0, none, proxyErr("v2 address family %d", family)
	}
	if cmd == 0x1 && proto != 0x0 && proto != 0x1 { // UNSPEC or STREAM
		return 0, none, proxyErr("v2 transport %d is not a stream", proto)
	}
	n := proxyV2Head + bodyLen
	if len(b) < n {
		return 0, none, errProxyIncomplete
	}
	body := b[proxyV2Head:n]
	if cmd == 0x0 {
		// LOCAL: a health check from the proxy itself; keep the socket address.
		return n, none, nil
	}
	switch family {
	case 0x1: // INET: src(4) dst(4) srcport(2) dstport(2)
		if len(body) < 12 {
			return 0, none, proxyErr("v2 INET body of %d bytes", len(body))
		}
		ip := netip.AddrFrom4([4]byte(body[0:4]))
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[8:10])), nil
	case 0x2: // INET6: src(16) dst(16) srcport(2) dstport(2)
		if len(body) < 36 {
			return 0, none, proxyErr("v2 INET6 body of %d bytes", len(body))
		}
		ip := netip.AddrFrom16([16]byte(body[0:16])).Unmap()
		return n, netip.AddrPortFrom(ip, binary.BigEndian.Uint16(body[32:34])), nil
	}
	return n, none, nil // UNSPEC, UNIX: no IP address to report
}

// ProxyListener wraps l so that every accepted connection starts with a
// PROXY protocol v1 or v2 header, which must arrive within timeout
// (0: the default of 5 s; there is always a bound, else a client that
// sends half a header holds its socket forever). The
// header is read on the connection's first Read, RemoteAddr or Handshake
// (ServeConn calls Handshake before the Accepter), never in Accept, so one
// slow client cannot stall the accept loop. RemoteAddr then reports the
// client address the header names. A connection whose header is missing or
// malformed fails with an error wrapping ErrProxyHeader.
func ProxyListener(l net.Listener, timeout time.Duration) net.Listener {
	if timeout <= 0 {
		timeout = defaultProxyTimeout
	}
	return &proxyListener{Listener: l, timeout: timeout}
}

// defaultProxyTimeout bounds the wait for a PROXY header (as
// EpollOptions.ProxyTimeout does by default).
const defaultProxyTimeout = 5 * time.Second

type proxyListener struct {
	net.Listener
	timeout time.Duration
}

func (pl *proxyListener) Accept() (net.Conn, error) {
	c, err := pl.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &proxyConn{Conn: c, timeout: pl.timeout}, nil
}

// proxyConn reads the PROXY header once, then passes everything through.
type proxyConn struct {
	net.Conn
	timeout time.Duration
	once    sync.Once
	err     error
	remote  net.Addr
	rest    []byte // bytes read past the header

	// The caller's read deadline, restored after the header is read, so
	// that a TLS handshake deadline set around us survives.
	mu           sync.Mutex
	readDeadline time.Time
}

// SetDeadline implements net.Conn.
func (p *proxyConn) SetDeadline(t time.Time) error {
	p.mu.Lock()
	p.readDeadline = t
	p.mu.Unlock()
	return p.Conn.SetDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (p *proxyConn) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	p.readDeadline = t
	p.mu.Unlock()
	return p.Conn.SetReadDeadline(t)
}

// Handshake reads and checks the PROXY header.
func (p *proxyConn) Handshake() error {
	p.once.Do(p.readHeader)
	return p.err
}

func (p *proxyConn) readHeader() {
	if p.timeout > 0 {
		p.mu.Lock()
		outer := p.readDeadline
		p.mu.Unlock()
		d := time.Now().Add(p.timeout)
		if !outer.IsZero() && outer.Before(d) {
			d = outer
		}
		p.Conn.SetReadDeadline(d)
		defer func() {
			p.mu.Lock()
			p.Conn.SetReadDeadline(p.readDeadline)
			p.mu.Unlock()
		}()
	}
	buf := make([]byte, 0, 256)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		k, err := p.Conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		n, src, perr := parseProxy(buf)
		switch {
		case perr == nil:
			if src.IsValid() {
				p.remote = net.TCPAddrFromAddrPort(src)
			}
			if n < len(buf) {
				p.rest = buf[n:]
			}
			return
		case !errors.Is(perr, errProxyIncomplete):
			p.err = perr
			return
		case err != nil:
			p.err = fmt.Errorf("read PROXY header: %w", err)
			return
		}
	}
}

func (p *proxyConn) Read(b []byte) (int, error) {
	if err := p.Handshake(); err != nil {
		return 0, err
	}
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		if p.rest = p.rest[n:]; len(p.rest) == 0 {
			p.rest = nil
		}
		return n, nil
	}
	return p.Conn.Read(b)
}

// RemoteAddr is the client address from the PROXY header, or the socket's
// peer when the header names none. It waits for the header.
func (p *proxyConn) RemoteAddr() net.Addr {
	if p.Handshake() == nil && p.remote != nil {
		return p.remote
	}
	return p.Conn.RemoteAddr()
}
