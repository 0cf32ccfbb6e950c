package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testTransport starts one transport for a test and returns the address to
// dial. It stops the server with t.Cleanup unless the test stops it first
// through the returned function.
type testTransport struct {
	name  string
	start func(t testing.TB, accept Accepter, proxy bool) (addr string, stop func())
}

// transports lists every transport the shared tests run against; the
// epoll one is added on Linux.
var transports = []testTransport{{
	name: "goroutine",
	start: func(t testing.TB, accept Accepter, proxy bool) (string, func()) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var ln net.Listener = l
		if proxy {
			ln = ProxyListener(l, time.Second)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, ln, accept) }()
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			})
		}
		t.Cleanup(stop)
		return l.Addr().String(), stop
	},
}}

// recorder is a Handler that echoes (if echo is set) and records Closed.
type recorder struct {
	conn    Conn
	echo    bool
	onData  func(c Conn, p []byte) error
	mu      sync.Mutex
	data    bytes.Buffer
	closes  atomic.Int32
	cause   error
	closed  chan struct{}
	inData  atomic.Int32 // detects Data/Closed overlap
	overlap atomic.Bool
}

func newRecorder(c Conn, echo bool) *recorder {
	return &recorder{conn: c, echo: echo, closed: make(chan struct{})}
}

func (r *recorder) Data(p []byte) error {
	if r.inData.Add(1) != 1 {
		r.overlap.Store(true)
	}
	defer r.inData.Add(-1)
	r.mu.Lock()
	r.data.Write(p)
	onData := r.onData
	r.mu.Unlock()
	if onData != nil {
		return onData(r.conn, p)
	}
	if r.echo {
		_, err := r.conn.Write(p)
		return err
	}
	return nil
}

// setOnData replaces the Data hook of a live connection.
func (r *recorder) setOnData(f func(c Conn, p []byte) error) {
	r.mu.Lock()
	r.onData = f
	r.mu.Unlock()
}

func (r *recorder) Closed(err error) {
	if r.inData.Load() != 0 {
		r.overlap.Store(true)
	}
	r.mu.Lock()
	r.cause = err
	r.mu.Unlock()
	if r.closes.Add(1) == 1 {
		close(r.closed)
	}
}

// waitClosed waits for Closed, then checks it ran once with a cause that
// matches want (errors.Is; nil means nil).
func (r *recorder) waitClosed(t *testing.T, want error) {
	t.Helper()
	select {
	case <-r.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Handler.Closed not called")
	}
	time.Sleep(20 * time.Millisecond) // a second call would show up here
	if n := r.closes.Load(); n != 1 {
		t.Errorf("Closed called %d times, want 1", n)
	}
	if r.overlap.Load() {
		t.Error("Data and Closed overlapped")
	}
	r.mu.Lock()
	got := r.cause
	r.mu.Unlock()
	if (want == nil) != (got == nil) || (want != nil && !errors.Is(got, want)) {
		t.Errorf("Closed cause = %v, want %v", got, want)
	}
}

// recorders hands out one recorder per accepted connection.
type recorders struct {
	echo    bool
	onData  func(c Conn, p []byte) error
	onAcc   func(c Conn)
	ch      chan *recorder
	refuse  bool
	accepts atomic.Int32
}

func newRecorders(echo bool) *recorders {
	return &recorders{echo: echo, ch: make(chan *recorder, 1024)}
}

func (rs *recorders) accept(c Conn) Handler {
	rs.accepts.Add(1)
	if rs.refuse {
		return nil
	}
	r := newRecorder(c, rs.echo)
	r.onData = rs.onData
	if rs.onAcc != nil {
		rs.onAcc(c)
	}
	select {
	case rs.ch <- r:
	default:
	}
	return r
}

func (rs *recorders) next(t *testing.T) *recorder {
	t.Helper()
	select {
	case r := <-rs.ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// expectEOF reads until the peer closes, failing on a timeout.
func expectEOF(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("want EOF, got %v", err)
	}
	return b
}

// isReset reports whether err ends a connection (a reset), not a timeout.
func isReset(err error) bool {
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}
