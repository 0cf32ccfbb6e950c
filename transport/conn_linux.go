//go:build linux

package transport

import (
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"
)

// econn is one connection of an EpollServer. It is the whole per-connection
// cost in the Go heap while idle (96 bytes on 64-bit, plus the loop's map
// entry), so fields are chosen and ordered with care: no read buffer (the
// loop has one), no outbound buffer until there is something to send, no
// deadline or cause (the loop keeps those, in maps, for the few connections
// that are closing or awaiting a PROXY header).
type econn struct {
	mu     sync.Mutex
	state  uint8    // conn* bits; guarded by mu
	lstate uint8    // l* bits; loop goroutine only
	rport  uint16   // remote port; with rip, immutable once the Accepter sees the conn
	fd     int32    // loop goroutine only
	out    outQueue // guarded by mu
	loop   *loop    // immutable
	// handler is set by the loop before any Data; loop goroutine only.
	handler Handler
	// rip is the remote address, IPv4 as IPv4-mapped IPv6. Not a
	// netip.AddrPort, which is twice the size: an econn exists per
	// connection. (An IPv6 zone is not kept.)
	rip [16]byte
}

// setRemote records the peer address.
func (c *econn) setRemote(ap netip.AddrPort) {
	c.rip = ap.Addr().As16()
	c.rport = ap.Port()
}

// remote is the peer address.
func (c *econn) remote() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(c.rip).Unmap(), c.rport)
}

// state bits, guarded by econn.mu.
const (
	// connQueued: a flush is scheduled, either on the loop's flush list or
	// by an armed EPOLLOUT, so Write need not schedule another.
	connQueued = 1 << iota
	// connClosing: Close was called (or the loop began closing); Write fails.
	connClosing
	// connPaused: reading should be paused (PauseRead). The loop applies
	// it to the epoll interest set and mirrors it in lPaused.
	connPaused
	// connRetune: the conn is on the flush list for the loop to apply a
	// change of connPaused, so PauseRead and ResumeRead need not queue it
	// again. Separate from connQueued, which an armed EPOLLOUT also sets.
	connRetune
)

// lstate bits, owned by the loop goroutine.
const (
	lWaitOut   = 1 << iota // EPOLLOUT is armed: the socket buffer was full
	lProxyWait             // waiting for the PROXY header; no Handler yet
	lClosing               // the loop is flushing the last bytes (see loop.lingering)
	lClosed                // the descriptor is closed and Handler.Closed called
	lPaused                // EPOLLIN is off the interest set (see connPaused)
)

var _ Pauser = (*econn)(nil)

// Write implements Conn: it appends to the outbound queue and, unless a
// flush is already scheduled, puts the conn on its loop's flush list.
func (c *econn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.state&connClosing != 0 {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.out.write(b)
	pending := c.out.n
	schedule := c.state&connQueued == 0 && pending > 0
	if schedule {
		c.state |= connQueued
	}
	c.mu.Unlock()
	if schedule {
		c.loop.enqueue(c)
	}
	return pending, nil
}

// closeRequested reports whether Close was called (by any goroutine).
func (c *econn) closeRequested() bool {
	c.mu.Lock()
	closing := c.state&connClosing != 0
	c.mu.Unlock()
	return closing
}

// Close implements Conn. It returns at once; the loop flushes what is
// queued (for at most CloseTimeout), closes the socket and calls
// Handler.Closed(nil).
func (c *econn) Close() error {
	c.mu.Lock()
	if c.state&connClosing != 0 {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.state |= connClosing | connQueued
	c.mu.Unlock()
	// Always enqueue, even if a flush is pending behind EPOLLOUT: the loop
	// must start the close deadline now.
	c.loop.enqueue(c)
	return nil
}

// PauseRead implements Pauser. Only the loop may change the interest set,
// so this records the wish and queues the conn; the loop drops EPOLLIN
// before its next epoll_wait. From inside Data (on the loop) that means no
// further Data; from another goroutine, at most the read of the current
// round.
func (c *econn) PauseRead() { c.setPaused(true) }

// ResumeRead implements Pauser: the loop restores EPOLLIN, and being
// level-triggered it reports at once what piled up in the meantime.
func (c *econn) ResumeRead() { c.setPaused(false) }

func (c *econn) setPaused(pause bool) {
	c.mu.Lock()
	if c.state&connClosing != 0 || (c.state&connPaused != 0) == pause {
		c.mu.Unlock()
		return
	}
	c.state ^= connPaused
	schedule := c.state&connRetune == 0
	c.state |= connRetune
	c.mu.Unlock()
	if schedule {
		c.loop.enqueue(c)
	}
}

// events is the epoll interest set c needs now. While paused it is
// EPOLLRDHUP alone, so that a peer's close is still reported (EPOLLHUP and
// EPOLLERR always are) but unread bytes are not.
func (c *econn) events() uint32 {
	ev := uint32(unix.EPOLLIN)
	if c.lstate&lPaused != 0 {
		ev = unix.EPOLLRDHUP
	}
	if c.lstate&lWaitOut != 0 {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// RemoteAddr implements Conn.
func (c *econn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.remote()) }

// LocalAddr implements Conn.
func (c *econn) LocalAddr() net.Addr { return c.loop.srv.addr }

// appendIovecs appends the queue's unsent ranges, at most limit of them,
// and returns their total length. Call with the conn's mutex held; the
// memory stays valid without it until the loop consumes it.
func appendIovecs(dst []unix.Iovec, q *outQueue, limit int) ([]unix.Iovec, int) {
	total := 0
	for ch := q.head; ch != nil && len(dst) < limit; ch = ch.next {
		p := ch.b[ch.off:]
		v := unix.Iovec{Base: &p[0]}
		v.SetLen(len(p))
		dst = append(dst, v)
		total += len(p)
	}
	return dst, total
}
