package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingListener counts Write calls on its connections; gate, if set,
// holds the first Write until it is closed.
type countingListener struct {
	net.Listener
	writes atomic.Int32
	gate   chan struct{}
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, l: l}, nil
}

type countingConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.l.writes.Add(1)
	c.once.Do(func() { <-c.l.gate })
	return c.Conn.Write(b)
}

func TestServeCoalescesSmallWrites(t *testing.T) {
	const writes, size = 1000, 10
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: l, gate: make(chan struct{})}
	rs := newRecorders(false)
	rs.onAcc = func(c Conn) {
		go func() {
			// The first Write is held at the socket, so the rest queue up
			// behind it and must go out together.
			for range writes {
				c.Write(make([]byte, size))
			}
			close(cl.gate)
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, cl, rs.accept)
	c := dial(t, l.Addr().String())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, writes*size)
	for n := 0; n < len(buf); {
		k, err := c.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	// net.Buffers falls back to one Write per buffer on a wrapped conn,
	// so this counts the chunks: a handful, not a thousand.
	if n := cl.writes.Load(); n > 10 {
		t.Errorf("%d Writes reached the socket for %d small Conn.Writes, want a few", n, writes)
	}
	t.Logf("%d Conn.Writes -> %d socket writes", writes, cl.writes.Load())
}

func TestServeStopsOnContextCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := newRecorders(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, rs.accept) }()
	dial(t, l.Addr().String())
	r := rs.next(t)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	// Serve waits for Closed before returning.
	if r.closes.Load() != 1 {
		t.Error("Serve returned before Handler.Closed")
	}
	if _, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		t.Error("listener still accepts after Serve returned")
	}
}

func TestServeReturnsListenerError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), l, newRecorders(true).accept) }()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve = %v, want net.ErrClosed", err)
	}
}

func TestServeConnSkipsHandlerOnHandshakeFailure(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	pc := &proxyConn{Conn: a, timeout: time.Second}
	go b.Write([]byte("GET / HTTP/1.1\r\n"))
	called := false
	ServeConn(pc, func(Conn) Handler { called = true; return nil })
	if called {
		t.Error("Accepter called after a failed PROXY handshake")
	}
}

// chunks counts the outbound chunks the connection holds.
func (g *gconn) chunks() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.out.chunks()
}

func TestServeTLSBehindProxyHeader(t *testing.T) {
	cert := selfSignedCert(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := tls.NewListener(ProxyListener(l, time.Second), &tls.Config{Certificates: []tls.Certificate{cert}})
	rs := newRecorders(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Serve(ctx, tl, rs.accept)

	raw := dial(t, l.Addr().String())
	raw.Write([]byte("PROXY TCP4 203.0.113.9 198.51.100.1 5555 8883\r\n"))
	c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true})
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	r := rs.next(t)
	if got := r.conn.RemoteAddr().String(); got != "203.0.113.9:5555" {
		t.Errorf("RemoteAddr = %s, want the PROXY source", got)
	}
	c.Close()
	r.waitClosed(t, io.EOF) // close_notify reads as EOF
}

func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

type quietHandler struct{}

func (quietHandler) Data([]byte) error { return nil }
func (quietHandler) Closed(error)      {}

// flakyListener fails its first Accept with an error accept(2) says to
// retry (EPROTO), then behaves.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EPROTO)}
	}
	return l.Listener.Accept()
}

// A network error passed on by accept(2) does not stop Serve (which would
// close every connection it serves); only closing the listener does.
func TestServeKeepsAcceptingAfterANetworkError(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &flakyListener{Listener: inner}
	accepted := make(chan struct{}, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- Serve(ctx, l, func(c Conn) Handler { accepted <- struct{}{}; return quietHandler{} })
	}()
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
	case err := <-done:
		t.Fatalf("Serve stopped on a retryable accept error: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after the error")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}
