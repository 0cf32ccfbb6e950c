package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

const (
	// closeTimeout bounds how long Close waits for buffered bytes to reach
	// a peer that has stopped reading.
	closeTimeout = 2 * time.Second
	// handshakeTimeout bounds a TLS or PROXY handshake in ServeConn.
	handshakeTimeout = 10 * time.Second
	// readBufferSize is the per-connection read buffer of the goroutine
	// transport (TLS records are at most 16 KiB).
	readBufferSize = 16 << 10
	// maxBuffers caps the buffers passed to one writev.
	maxBuffers = 1024
)

// ErrServerClosed is the cause passed to Handler.Closed for connections that
// were still open when their server shut down.
var ErrServerClosed = errors.New("transport: server closed")

// Serve accepts connections on l until ctx is done or l is closed, and serves
// each with a reader goroutine and a writer goroutine (see ServeConn). When
// it stops it closes l and every connection it accepted, waits for their
// Handler.Closed calls to return, and returns nil if ctx ended it or the
// accept error otherwise.
func Serve(ctx context.Context, l net.Listener, accept Accepter) error {
	set := &connSet{conns: make(map[*gconn]struct{})}
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer set.wg.Wait()
	defer set.closeAll()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, net.ErrClosed) {
				// Out of file descriptors, a connection reset before we took
				// it, or one of the network errors accept(2) passes on and
				// says to retry (EPROTO, ENETDOWN, EHOSTUNREACH, EPERM from a
				// firewall...): back off like net/http instead of spinning,
				// and keep serving. Only a closed listener ends Serve.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-ctx.Done():
					return nil
				}
			}
			return fmt.Errorf("transport: accept: %w", err)
		}
		delay = 0
		g := newGconn(nc)
		if !set.add(g) {
			nc.Close()
			continue
		}
		set.wg.Add(1)
		go func() {
			defer set.wg.Done()
			defer set.remove(g)
			g.serve(accept)
		}()
	}
}

// ServeConn serves one already-accepted connection (TLS and WebSocket wrap
// theirs and call this) and returns when it is closed and Handler.Closed
// has returned. If c has a Handshake method (tls.Conn, ProxyListener's
// connections) it is called first, bounded by a 10s deadline; if it fails,
// or accept refuses the connection, c is closed and Closed is not called.
//
// The calling goroutine reads: it calls Handler.Data with each chunk read.
// A second goroutine writes: it drains the outbound queue, many Writes per
// writev.
func ServeConn(c net.Conn, accept Accepter) {
	newGconn(c).serve(accept)
}

// connSet tracks Serve's connections so shutdown can close them.
type connSet struct {
	mu     sync.Mutex
	closed bool
	conns  map[*gconn]struct{}
	wg     sync.WaitGroup
}

func (s *connSet) add(g *gconn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[g] = struct{}{}
	return true
}

func (s *connSet) remove(g *gconn) {
	s.mu.Lock()
	delete(s.conns, g)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*gconn, 0, len(s.conns))
	for g := range s.conns {
		conns = append(conns, g)
	}
	s.mu.Unlock()
	for _, g := range conns {
		g.closeWith(ErrServerClosed)
	}
}

// gconn is a Conn served by a reader and a writer goroutine.
type gconn struct {
	c    net.Conn
	wake chan struct{} // capacity 1: "the queue or the state changed"
	done chan struct{} // closed when the writer has exited

	mu       sync.Mutex
	resumed  sync.Cond // on mu: paused cleared or closing set
	out      outQueue
	ready    bool  // the handshake is done; before that, closing aborts it
	closing  bool  // no more Writes; the writer flushes, then closes c
	dead     bool  // the peer is gone; the writer discards and exits
	paused   bool  // the reader waits before its next Read (PauseRead)
	causeSet bool  // cause is final
	cause    error // passed to Handler.Closed
}

var _ Pauser = (*gconn)(nil)

func newGconn(c net.Conn) *gconn {
	g := &gconn{c: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
	g.resumed.L = &g.mu
	return g
}

func (g *gconn) signal() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// Write implements Conn.
func (g *gconn) Write(b []byte) (int, error) {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return 0, net.ErrClosed
	}
	g.out.write(b)
	pending := g.out.n
	g.mu.Unlock()
	g.signal()
	return pending, nil
}

// Close implements Conn. It returns at once; the writer flushes what is
// queued (for at most closeTimeout) and closes the socket.
func (g *gconn) Close() error { return g.closeWith(nil) }

// RemoteAddr implements Conn.
func (g *gconn) RemoteAddr() net.Addr { return g.c.RemoteAddr() }

// LocalAddr implements Conn.
func (g *gconn) LocalAddr() net.Addr { return g.c.LocalAddr() }

// PauseRead implements Pauser: the reader goroutine finishes the Read (and
// Data call) under way, if any, and then waits instead of reading again.
func (g *gconn) PauseRead() {
	g.mu.Lock()
	if !g.closing {
		g.paused = true
	}
	g.mu.Unlock()
}

// ResumeRead implements Pauser.
func (g *gconn) ResumeRead() {
	g.mu.Lock()
	resume := g.paused
	g.paused = false
	g.mu.Unlock()
	if resume {
		g.resumed.Broadcast()
	}
}

// waitResumed blocks the reader while reading is paused. Closing ends the
// wait: the reader then reads only to see the socket close (no more Data).
func (g *gconn) waitResumed() {
	g.mu.Lock()
	for g.paused && !g.closing {
		g.resumed.Wait()
	}
	g.mu.Unlock()
}

// closeWith starts a graceful close that reports cause to Handler.Closed
// unless a cause was already set.
func (g *gconn) closeWith(cause error) error {
	g.mu.Lock()
	if g.closing {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.closing = true
	if !g.causeSet {
		g.cause, g.causeSet = cause, true
	}
	ready := g.ready
	g.mu.Unlock()
	g.resumed.Broadcast() // a paused reader must read on to see the close
	if ready {
		// Applies to a write already blocked on a slow peer, too.
		g.c.SetWriteDeadline(time.Now().Add(closeTimeout))
	} else {
		g.c.Close() // abort the handshake
	}
	g.signal()
	return nil
}

// fail records err as the cause unless one is set, drops unsent bytes and
// closes the socket at once.
func (g *gconn) fail(err error) {
	g.mu.Lock()
	if !g.causeSet {
		g.cause, g.causeSet = err, true
	}
	g.closing, g.dead = true, true
	g.mu.Unlock()
	g.resumed.Broadcast()
	g.c.Close()
	g.signal()
}

func (g *gconn) serve(accept Accepter) {
	if hs, ok := g.c.(interface{ Handshake() error }); ok {
		g.c.SetDeadline(time.Now().Add(handshakeTimeout))
		err := hs.Handshake()
		g.c.SetDeadline(time.Time{})
		if err != nil {
			g.c.Close()
			return
		}
	}
	g.mu.Lock()
	g.ready = true
	g.mu.Unlock()
	h := accept(g)
	if h == nil {
		g.mu.Lock()
		g.closing = true
		g.out.release()
		g.mu.Unlock()
		g.c.Close()
		return
	}
	go g.writeLoop()

	buf := make([]byte, readBufferSize)
	for {
		// Checked before each Read, so a PauseRead from inside Data stops
		// reading at once and the kernel's receive buffer applies
		// backpressure; the socket stays unread until ResumeRead or close.
		g.waitResumed()
		n, err := g.c.Read(buf)
		if n > 0 && !g.isClosing() {
			if derr := h.Data(buf[:n]); derr != nil {
				// Flush what the handler queued (a reason code, say),
				// then close; the Read below ends when the writer does.
				g.closeWith(derr)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.EOF
			}
			g.fail(err)
			break
		}
	}
	<-g.done
	g.mu.Lock()
	cause := g.cause
	g.mu.Unlock()
	h.Closed(cause)
}

func (g *gconn) isClosing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// writeLoop drains the outbound queue until the connection closes. Each
// round takes every queued range under the lock and writes them with one
// writev (net.Buffers) without it, so Writes that arrive while a write is
// in flight are coalesced into the next one.
func (g *gconn) writeLoop() {
	defer close(g.done)
	var bufs [][]byte
	nb := new(net.Buffers) // reused: WriteTo takes a pointer, which escapes
	for range g.wake {
		for {
			g.mu.Lock()
			bufs = g.out.buffers(bufs[:0], maxBuffers)
			closing, dead := g.closing, g.dead
			g.mu.Unlock()
			if dead {
				g.exitWriter(nil)
				return
			}
			if len(bufs) == 0 {
				if closing {
					g.exitWriter(nil)
					return
				}
				break // idle: wait for the next signal
			}
			*nb = bufs
			n, err := nb.WriteTo(g.c)
			clear(bufs) // do not pin pooled chunks while idle
			g.mu.Lock()
			g.out.consume(int(n))
			g.mu.Unlock()
			if err != nil {
				g.exitWriter(err)
				return
			}
		}
	}
}

// exitWriter releases the outbound queue and closes the socket, which ends
// the reader's Read.
func (g *gconn) exitWriter(err error) {
	g.mu.Lock()
	if err != nil && !g.causeSet {
		g.cause, g.causeSet = err, true
	}
	g.closing = true
	g.out.release()
	g.mu.Unlock()
	g.resumed.Broadcast() // a write error ends a paused connection too
	g.c.Close()
}
