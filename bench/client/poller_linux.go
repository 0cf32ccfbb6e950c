//go:build linux

package client

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herald-mqtt/herald/internal/epollset"
	"github.com/herald-mqtt/herald/packet"
)

// Poller runs the read side of many plain-TCP clients from a few event
// loops (epoll), instead of a goroutine per client. A goroutine per client
// costs, per message received, a wake-up through the runtime's poller, a
// switch to the client's goroutine, the read, and a second read that
// finds the socket empty before the goroutine parks again: in a 10,000
// subscriber fan-out that made the bench spend as much CPU per delivery as
// the broker it measures, on a machine the two share. A loop reads each
// ready socket once per epoll_wait and handles every complete frame read.
//
// The loops are level-triggered: a socket with more bytes than one read
// took is reported again. A loop never blocks on a write: it writes the
// acknowledgements it owes (PUBACK, PUBREC, PUBREL, PUBCOMP) without
// waiting, and when the socket is full or a publisher holds the client's
// write lock, a goroutine of that client's own writes the rest, in order.
// Publishes and pings are written by their callers as before. The sockets
// stay in the Go runtime's poller too (they are net.Conns, for the
// callers' writes), which costs a runtime poll event per arrival but no
// goroutine wake-up.
type Poller struct {
	loops []*pollLoop
	next  atomic.Uint32
	wg    sync.WaitGroup
	once  sync.Once
}

// pollState is what a Client served by a Poller keeps.
type pollState struct {
	loop  atomic.Pointer[pollLoop]
	raw   syscall.RawConn
	fd    int32
	h     Handler
	onEnd func(error)
	ended bool // the loop's

	// Acknowledgements the loop could not write at once, written by a
	// goroutine of this client's (see pollFlush).
	pmu      sync.Mutex
	pending  []byte
	flushing bool                  // that goroutine runs
	writeErr atomic.Pointer[error] // its write failed
}

// unpoll tells the loop serving c, if any, that its connection is closed.
func (c *Client) unpoll() {
	if l := c.loop.Load(); l != nil {
		l.closed(c)
	}
}

// pollLoop is one event loop: an epoll set (whose eventfd other goroutines
// wake it through) and the clients it serves.
type pollLoop struct {
	set *epollset.Set // parks the loop, not its thread, while nothing is ready

	mu       sync.Mutex // guards the lists below
	incoming []*Client  // to register
	ended    []*Client  // closed by Close or Disconnect
	stopping bool
	exited   bool // the loop ended its clients and returned

	// The rest belongs to the loop goroutine.
	clients map[int32]*Client // by descriptor
	events  []unix.EpollEvent
	pub     *packet.Publish // every PUBLISH is decoded into it
}

// errPollerClosed ends the clients of a closed Poller (Cause: "closed").
var errPollerClosed = fmt.Errorf("poller closed: %w", net.ErrClosed)

// NewPoller starts n event loops (n >= 1).
func NewPoller(n int) (*Poller, error) {
	p := &Poller{}
	for range max(n, 1) {
		l, err := newPollLoop()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.loops = append(p.loops, l)
		p.wg.Add(1)
		go func() { defer p.wg.Done(); l.run() }()
	}
	return p, nil
}

func newPollLoop() (*pollLoop, error) {
	set, err := epollset.New()
	if err != nil {
		return nil, err
	}
	return &pollLoop{
		set:     set,
		clients: make(map[int32]*Client),
		events:  make([]unix.EpollEvent, 64),
		pub:     new(packet.Publish),
	}, nil
}

// Close stops the loops. Clients still served end with an error (their
// end functions are called) and are closed.
func (p *Poller) Close() {
	p.once.Do(func() {
		for _, l := range p.loops {
			l.mu.Lock()
			l.stopping = true
			l.wake()
			l.mu.Unlock()
		}
	})
	p.wg.Wait()
}

// ServeOn serves c's read side on p instead of Serve: the loop answers the
// broker's QoS flows and calls h's methods (never concurrently for one
// client, and never after end), and calls end once when the connection
// ends: nil after Close or Disconnect, the cause otherwise. It reports
// false, doing nothing, for a connection p cannot serve (TLS, WebSocket):
// run Serve for it.
func (c *Client) ServeOn(p *Poller, h Handler, end func(error)) bool {
	tc, ok := c.conn.(*net.TCPConn)
	if !ok || p == nil {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	raw.Control(func(s uintptr) { fd = int(s) })
	if fd < 0 {
		return false
	}
	l := p.loops[int(p.next.Add(1))%len(p.loops)]
	c.raw, c.fd, c.h, c.onEnd = raw, int32(fd), h, end
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		c.conn.Close()
		end(errPollerClosed)
		return true
	}
	c.loop.Store(l)
	l.incoming = append(l.incoming, c)
	l.wake()
	l.mu.Unlock()
	return true
}

// closed tells c's loop that its connection was closed (by Close,
// Disconnect or a failed write): the kernel has dropped it from the epoll
// set, so no event will. A loop that has exited ended its clients.
func (l *pollLoop) closed(c *Client) {
	l.mu.Lock()
	if !l.exited {
		l.ended = append(l.ended, c)
		l.wake()
	}
	l.mu.Unlock()
}

// wake makes the loop look at its lists.
func (l *pollLoop) wake() { l.set.Wake() }

func (l *pollLoop) run() {
	defer func() {
		l.mu.Lock()
		l.exited = true
		l.mu.Unlock()
		l.set.Close()
	}()
	for {
		n, err := l.wait()
		if err != nil {
			l.stop(err)
			return
		}
		for _, ev := range l.events[:n] {
			if l.set.Woken(ev) {
				continue
			}
			// A stale event (its descriptor closed and reused since) is
			// harmless: the read goes through the client now owning it.
			if c := l.clients[ev.Fd]; c != nil {
				if err := c.readable(l.pub); err != nil {
					l.drop(c, err)
				}
			}
		}
		l.mu.Lock()
		incoming, ended, stopping := l.incoming, l.ended, l.stopping
		l.incoming, l.ended = nil, nil
		l.mu.Unlock()
		for _, c := range ended {
			l.drop(c, nil)
		}
		for _, c := range incoming {
			l.register(c)
		}
		if stopping {
			l.stop(errPollerClosed)
			return
		}
	}
}

// register adds c to the set, after handling what Connect read beyond
// the CONNACK.
func (l *pollLoop) register(c *Client) {
	if c.ended {
		return // closed, and ended, in this same pass
	}
	if err := c.frames(l.pub); err != nil {
		l.drop(c, err)
		return
	}
	// A client closed before its registration has a descriptor that is
	// closed, or already someone else's: Control fails, or the closing
	// client's entry in ended (handled first) ends it.
	var err error
	cerr := c.raw.Control(func(fd uintptr) {
		err = l.set.Ctl(unix.EPOLL_CTL_ADD, int(fd), unix.EPOLLIN|unix.EPOLLRDHUP)
	})
	if cerr != nil {
		err = cerr
	}
	if err != nil {
		l.drop(c, err)
		return
	}
	l.clients[c.fd] = c
}

// drop ends c: removes it from the set (closing its connection does) and
// calls its end function, once.
func (l *pollLoop) drop(c *Client, err error) {
	if c.ended {
		return
	}
	c.ended = true
	if l.clients[c.fd] == c {
		delete(l.clients, c.fd)
	}
	c.conn.Close()
	if c.closing.Load() {
		err = nil
	} else if werr := c.writeErr.Load(); werr != nil {
		err = *werr
	}
	c.onEnd(err)
}

// stop ends every client of the loop.
func (l *pollLoop) stop(cause error) {
	l.mu.Lock()
	l.stopping = true
	rest := append(l.incoming, l.ended...)
	l.incoming, l.ended = nil, nil
	l.mu.Unlock()
	for _, c := range rest {
		l.drop(c, cause)
	}
	for _, c := range l.clients {
		l.drop(c, cause)
	}
}

// wait returns the number of ready events, parking the goroutine (not its
// thread) while there are none.
func (l *pollLoop) wait() (int, error) {
	if n, err := l.set.Poll(l.events); n != 0 || err != nil {
		return n, err
	}
	for {
		n, err := l.set.Wait(l.events, -1)
		if n != 0 || err != nil {
			return n, err
		}
	}
}

// readable reads once from c's socket and handles every complete frame.
func (c *Client) readable(pub *packet.Publish) error {
	if c.end == len(c.rbuf) {
		c.grow() // a frame larger than the buffer
	}
	var n int
	var rerr error
	if err := c.raw.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), c.rbuf[c.end:])
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	switch {
	case rerr == unix.EAGAIN:
		return nil
	case rerr != nil:
		return &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return io.EOF
	}
	c.end += n
	full := c.end == len(c.rbuf)
	if err := c.frames(pub); err != nil {
		return err
	}
	if full && len(c.rbuf) < 64<<10 {
		// A full read means the connection is busy: read more per
		// system call from now on.
		c.grow()
	}
	return nil
}

// frames handles every complete frame in the read buffer, keeps the
// partial one at its start, and writes the acknowledgements owed.
func (c *Client) frames(pub *packet.Publish) error {
	for c.start < c.end {
		n, err := packet.SplitFrame(c.rbuf[c.start:c.end], maxPacket)
		if err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
		if n == 0 {
			break
		}
		f := c.rbuf[c.start : c.start+n]
		c.start += n
		if err := c.handle(c.h, f, pub); err != nil {
			return err
		}
	}
	if c.start > 0 {
		c.end = copy(c.rbuf, c.rbuf[c.start:c.end])
		c.start = 0
	}
	return c.pollFlush()
}

// pollFlush writes the acknowledgements the loop owes without blocking
// the loop: at once when the write lock is free and the socket takes
// them; what is left goes to a goroutine of this client's, which writes
// it (and whatever the loop owes meanwhile, after it) under the lock.
func (c *Client) pollFlush() error {
	if len(c.acks) == 0 {
		return nil
	}
	c.pmu.Lock()
	behind := c.flushing
	if behind {
		c.pending = append(c.pending, c.acks...)
	}
	c.pmu.Unlock()
	if behind {
		c.acks = c.acks[:0]
		return nil
	}
	// No flusher runs (only the loop starts one), so nothing written
	// now can overtake older acknowledgements.
	rest := c.acks
	if c.wmu.TryLock() {
		n, err := c.writeNow(c.acks)
		c.wmu.Unlock()
		if err != nil {
			return err
		}
		c.lastWrite.Store(time.Now().UnixNano())
		rest = c.acks[n:]
	}
	if len(rest) > 0 {
		c.pmu.Lock()
		c.pending = append(c.pending[:0], rest...)
		c.flushing = true
		c.pmu.Unlock()
		go c.flushPending()
	}
	c.acks = c.acks[:0]
	return nil
}

// writeNow writes b without waiting: how much the socket took.
func (c *Client) writeNow(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Control(func(fd uintptr) {
		for n < len(b) {
			m, err := unix.Write(int(fd), b[n:])
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return
			}
			if err != nil {
				werr = &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", err)}
				return
			}
			n += m
		}
	})
	if err != nil {
		return n, err
	}
	return n, werr
}

// flushPending is the goroutine that writes what pollFlush could not. A
// failed write closes the connection; the loop then ends the client with
// the write's error.
func (c *Client) flushPending() {
	for {
		c.pmu.Lock()
		b := c.pending
		c.pending = nil
		if len(b) == 0 {
			c.flushing = false
			c.pmu.Unlock()
			return
		}
		c.pmu.Unlock()
		c.wmu.Lock()
		_, err := c.conn.Write(b)
		c.wmu.Unlock()
		c.lastWrite.Store(time.Now().UnixNano())
		if err != nil {
			c.writeErr.Store(&err)
			c.conn.Close()
			c.unpoll()
			c.pmu.Lock()
			c.pending, c.flushing = nil, false
			c.pmu.Unlock()
			return
		}
	}
}
