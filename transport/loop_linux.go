//go:build linux

package transport

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herald-mqtt/herald/internal/epollset"
)

// The loops are level-triggered. A loop reads each ready socket once per
// epoll_wait (at most one read buffer's worth), so a fast sender cannot
// starve the others, and the kernel reports the socket again if more is
// waiting; edge-triggered would need a per-connection "not drained" list to
// be fair. Level-triggered also makes stale events (for a descriptor closed
// earlier in the same batch) harmless: the read just returns EAGAIN or the
// conn is gone from the map. EPOLLOUT is armed only while a socket buffer
// is full, so level-triggering never spins on writable sockets.
//
// A loop does not block in epoll_wait: its set (package epollset) is
// itself registered with the runtime's poller, the loop polls it with a
// zero timeout, and parks like any goroutine waiting on a socket when
// nothing is ready (epollset says why).
//
// Other goroutines wake a parked loop through an eventfd in its epoll
// set. The runtime notices it when it next polls for ready descriptors:
// soon when a processor is idle and looking for work, but not while every
// running goroutine is a loop busy in raw system calls. Then the woken
// loop usually runs when the waker parks, on the waker's thread, which is
// cheap and right for short bursts. For a long flush that is wrong: a
// fan-out wave routed by one loop reached the other loop only after the
// first had written its own half (80 ms later for 5,000 subscribers).
// So a loop about to flush many conns first kicks the loops it has
// notified (see kickNotified, epollset.Set.Kick), which makes a parked
// loop runnable on the spot and starts an idle processor for it.
//
// Pauser.PauseRead swaps EPOLLIN for EPOLLRDHUP in a conn's interest set;
// the loop does it in service, the one place that sets interest, so a
// pause never races an EPOLLOUT change. A paused conn that reports a
// hangup is finished at once: its unread input stays unread (see Pauser).

const (
	// eventsPerWait bounds the events handled between two flushes of the
	// loop's pending writes. Small, so that a write made ready by an
	// event (a QoS 1 delivery released by the subscriber's PUBACKs) is not
	// held back behind hundreds of other sockets' reads: with 256, the
	// inflight window of a fan-in subscriber waited so long for its
	// PUBACK round trips that p99 went from 70 ms to 650 ms at 80k
	// messages/s. An epoll_wait that finds events ready costs little.
	eventsPerWait = 32
	acceptBatch   = 256                    // accepts per listener event, so one loop is not hogged
	acceptPause   = 100 * time.Millisecond // after EMFILE and the like
	timerTick     = 100 * time.Millisecond // resolution of close and PROXY deadlines
	// kickFlush is the flush list length (about a millisecond of writes)
	// from which a loop kicks the loops it has notified before writing.
	kickFlush = 128
)

var errProxyTimeout = errors.New("transport: no PROXY protocol header in time")

// loop is one event loop: an epoll instance, the goroutine that waits on
// it, and the connections it owns.
type loop struct {
	srv *EpollServer
	id  int
	set *epollset.Set // with the eventfd through which others wake the loop

	// polling is set while the loop is in, or about to enter, epoll_wait;
	// only then does a producer pay for an eventfd write. notified
	// collapses the wake-ups of many producers into one write.
	polling  atomic.Bool
	notified atomic.Bool

	mu       sync.Mutex // guards flushQ, incoming, dead
	flushQ   []*econn   // conns with bytes to write or a Close to act on
	incoming []*econn   // accepted conns dealt to this loop
	dead     bool       // the loop has exited; hand-offs close the socket

	// The rest belongs to the loop goroutine.
	nconns     int                  // conns of this loop in srv.fds
	lingering  map[*econn]linger    // closing, flushing their last bytes
	handshakes map[*econn]handshake // waiting for a PROXY header
	buf        []byte               // the one read buffer
	events     []unix.EpollEvent
	iov        []unix.Iovec
	spareQ     []*econn
	spareIn    []*econn
	stopping   bool
	nextLoop   int           // round-robin cursor (loops[0] only)
	pausedTill time.Duration // accept paused until then (loops[0] only); 0: not paused
	nextScan   time.Duration // next deadline scan

	stats struct {
		open                                 atomic.Int64
		accepted, refused, bytesIn, bytesOut atomic.Uint64
		reads, writes, blocked, wakeups      atomic.Uint64
	}
}

type linger struct {
	deadline time.Duration
	cause    error // for Handler.Closed: nil after Conn.Close
}

type handshake struct {
	deadline time.Duration
	acc      []byte // header bytes so far, if it came in pieces
}

func newLoop(s *EpollServer, id int) (*loop, error) {
	set, err := epollset.New()
	if err != nil {
		return nil, err
	}
	return &loop{
		srv: s, id: id, set: set,
		lingering:  make(map[*econn]linger),
		handshakes: make(map[*econn]handshake),
		buf:        make([]byte, s.opts.ReadBufferSize),
		events:     make([]unix.EpollEvent, eventsPerWait),
	}, nil
}

func (l *loop) closeFDs() { l.set.Close() }

func (l *loop) watch(fd int, events uint32, op int) error {
	return l.set.Ctl(op, fd, events)
}

func (l *loop) now() time.Duration { return time.Since(l.srv.start) }

// wake makes a sleeping loop look at its lists. Producers append to a list
// under l.mu and then call wake; the loop sets polling and then checks the
// lists under l.mu, so either it sees the entry or the producer sees
// polling set.
func (l *loop) wake() {
	if !l.polling.Load() || l.notified.Swap(true) {
		return
	}
	if l.set.Wake() {
		l.stats.wakeups.Add(1)
	}
}

// kickNotified makes the other loops that have been sent a wake-up, and
// may not have run since, start now rather than when the runtime next
// polls (see the comment at the top of this file). A kick that lands
// before the loop parks either makes its next park return at once (one
// extra pass) or is overwritten by the deadline wait sets; either way the
// eventfd still wakes it, as it would have without the kick.
func (l *loop) kickNotified() {
	for _, o := range l.srv.loops {
		if o != l && o.polling.Load() && o.notified.Load() {
			o.set.Kick()
		}
	}
}

// enqueue puts c on the flush list.
func (l *loop) enqueue(c *econn) {
	l.mu.Lock()
	l.flushQ = append(l.flushQ, c)
	l.mu.Unlock()
	l.wake()
}

// handoff gives an accepted conn to this loop.
func (l *loop) handoff(c *econn) {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		unix.Close(int(c.fd))
		return
	}
	l.incoming = append(l.incoming, c)
	l.mu.Unlock()
	l.wake()
}

func (l *loop) hasWork() bool {
	l.mu.Lock()
	work := len(l.flushQ) > 0 || len(l.incoming) > 0
	l.mu.Unlock()
	return work || (l.srv.closing.Load() && !l.stopping)
}

func (l *loop) run() {
	defer l.srv.wg.Done()
	defer l.exit()
	for {
		timeout := -1
		if len(l.lingering) > 0 || len(l.handshakes) > 0 || l.pausedTill > 0 {
			timeout = int(timerTick / time.Millisecond)
		}
		l.polling.Store(true)
		if l.hasWork() {
			timeout = 0
		}
		n, err := l.wait(timeout)
		l.polling.Store(false)
		if err != nil {
			// Only a bug (a bad epoll descriptor) gets here; drop everything.
			l.eachConn(func(c *econn) { l.finish(c, err) })
			return
		}
		for _, ev := range l.events[:max(n, 0)] {
			l.dispatch(ev)
		}
		l.admitIncoming()
		l.flushQueued()
		l.expire()
		if l.srv.closing.Load() && !l.stopping {
			l.stop()
		}
		if l.stopping && l.nconns == 0 {
			return
		}
	}
}

// wait is epoll_wait with timeout in milliseconds (-1: none), without
// blocking the thread: see the comment at the top of this file.
func (l *loop) wait(timeout int) (int, error) {
	return l.set.Wait(l.events, time.Duration(timeout)*time.Millisecond)
}

func (l *loop) dispatch(ev unix.EpollEvent) {
	switch {
	case l.set.Woken(ev):
		l.notified.Store(false)
		return
	case l.id == 0 && ev.Fd == int32(l.srv.lfd):
		l.acceptConns()
		return
	}
	c := l.srv.fds.get(ev.Fd)
	if c == nil || c.loop != l {
		return // closed earlier in this batch
	}
	switch {
	case c.lstate&lPaused != 0:
		if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.pausedHangup(c, ev.Events)
		}
	case ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0:
		l.readable(c, ev.Events)
	}
	if ev.Events&unix.EPOLLOUT != 0 {
		l.service(c, true)
	}
}

// acceptConns takes connections off the listen queue and deals them to
// the loops round-robin. The conns are registered (and the Accepter
// called) by their loop, not here.
func (l *loop) acceptConns() {
	s := l.srv
	for range acceptBatch {
		fd, remote, err := accept4(s.lfd)
		switch err {
		case nil:
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return
		default:
			// EMFILE, ENFILE, ENOBUFS, ENOMEM: the listener stays
			// readable, so stop watching it for a while rather than spin.
			l.watch(s.lfd, 0, unix.EPOLL_CTL_DEL)
			l.pausedTill = l.now() + acceptPause
			return
		}
		// TCP_NODELAY and keepalive are inherited from the listening
		// socket (see listenOn).
		l.stats.accepted.Add(1)
		target := s.loops[l.nextLoop]
		l.nextLoop = (l.nextLoop + 1) % len(s.loops)
		c := &econn{fd: int32(fd), loop: target}
		c.setRemote(remote)
		target.handoff(c)
	}
}

// TCP keepalive of accepted sockets: probe after 2 minutes of silence,
// every 30 s, and drop the connection after 4 unanswered probes.
const (
	tcpKeepIdle     = 120
	tcpKeepInterval = 30
	tcpKeepCount    = 4
)

// admitIncoming registers the conns dealt to this loop.
func (l *loop) admitIncoming() {
	l.mu.Lock()
	in := l.incoming
	l.incoming = l.spareIn
	l.mu.Unlock()
	for i, c := range in {
		in[i] = nil
		if l.stopping {
			unix.Close(int(c.fd))
			continue
		}
		if !l.srv.fds.set(c.fd, c) {
			unix.Close(int(c.fd)) // beyond fdTableMax descriptors
			l.stats.refused.Add(1)
			continue
		}
		if err := l.watch(int(c.fd), unix.EPOLLIN, unix.EPOLL_CTL_ADD); err != nil {
			l.srv.fds.clear(c.fd)
			unix.Close(int(c.fd))
			continue
		}
		l.nconns++
		l.stats.open.Add(1)
		if l.srv.opts.ProxyProtocol {
			c.lstate |= lProxyWait
			l.handshakes[c] = handshake{deadline: l.now() + l.srv.opts.ProxyTimeout}
			continue
		}
		l.admit(c)
	}
	l.spareIn = in[:0]
}

// admit asks the Accepter for a Handler.
func (l *loop) admit(c *econn) bool {
	h := l.srv.accept(c)
	if h == nil {
		l.stats.refused.Add(1)
		l.finish(c, nil)
		return false
	}
	c.handler = h
	return true
}

// readable reads once from c into the loop's buffer.
func (l *loop) readable(c *econn, events uint32) {
	n, err := read(c.fd, l.buf)
	switch {
	case n > 0:
		l.stats.reads.Add(1)
		l.stats.bytesIn.Add(uint64(n))
		p := l.buf[:n]
		switch {
		case c.lstate&lClosing != 0:
			// Closing: read only to notice a hangup; no more Data.
		case c.lstate&lProxyWait != 0:
			l.handshake(c, p)
		case c.closeRequested():
			// Closed from another goroutine; the loop acts on it when it
			// serves its flush list. No more Data meanwhile.
		default:
			if err := c.handler.Data(p); err != nil {
				l.closeConn(c, err)
			}
		}
	case err == nil: // n == 0: the peer closed
		l.finish(c, io.EOF)
	case err == unix.EAGAIN:
		if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.finish(c, socketError(c.fd))
		}
	default:
		l.finish(c, os.NewSyscallError("read", err))
	}
}

// pausedHangup finishes a paused conn whose peer closed or reset it,
// without reading: reading is what the pause forbids, and once the peer is
// gone its unread input only holds kernel memory. If a ResumeRead is
// already pending the loop leaves the conn to it instead, so the input is
// read, then the hangup.
func (l *loop) pausedHangup(c *econn, events uint32) {
	c.mu.Lock()
	resuming := c.state&connPaused == 0
	c.mu.Unlock()
	if resuming {
		return // on the flush list: service restores EPOLLIN this round
	}
	cause := io.EOF // EPOLLRDHUP alone: the peer's FIN
	if events&(unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		cause = socketError(c.fd)
	}
	l.finish(c, cause)
}

func socketError(fd int32) error {
	if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && v != 0 {
		return os.NewSyscallError("read", unix.Errno(v))
	}
	return io.EOF
}

// handshake consumes the PROXY header, then admits c and hands it the rest.
func (l *loop) handshake(c *econn, p []byte) {
	hs := l.handshakes[c]
	data := p
	if len(hs.acc) > 0 {
		hs.acc = append(hs.acc, p...)
		data = hs.acc
	}
	n, src, err := parseProxy(data)
	if errors.Is(err, errProxyIncomplete) {
		if len(hs.acc) == 0 {
			hs.acc = append([]byte(nil), p...) // p is the loop's buffer
		}
		l.handshakes[c] = hs
		return
	}
	delete(l.handshakes, c)
	c.lstate &^= lProxyWait
	if err != nil {
		l.stats.refused.Add(1)
		l.finish(c, err)
		return
	}
	if src.IsValid() {
		c.setRemote(src)
	}
	if !l.admit(c) {
		return
	}
	if rest := data[n:]; len(rest) > 0 && !c.closeRequested() {
		if err := c.handler.Data(rest); err != nil {
			l.closeConn(c, err)
		}
	}
}

// flushQueued serves every conn on the flush list.
func (l *loop) flushQueued() {
	l.mu.Lock()
	q := l.flushQ
	l.flushQ = l.spareQ
	l.mu.Unlock()
	if len(q) >= kickFlush && len(l.srv.loops) > 1 {
		l.kickNotified()
	}
	for i, c := range q {
		q[i] = nil
		l.service(c, false)
	}
	l.spareQ = q[:0]
}

// service acts on a queued or writable conn: it starts a requested close,
// writes what is queued, and arms or disarms EPOLLOUT.
func (l *loop) service(c *econn, writable bool) {
	if c.lstate&lClosed != 0 {
		return // closed while queued: the econn is detached from its fd
	}
	waiting := c.lstate&lWaitOut != 0
	c.mu.Lock()
	if writable || !waiting {
		c.state &^= connQueued
	}
	c.state &^= connRetune
	closing := c.state&connClosing != 0
	paused := c.state&connPaused != 0
	c.mu.Unlock()
	if closing && c.lstate&lClosing == 0 {
		l.beginClose(c, nil) // Conn.Close from a Handler or another goroutine
	}
	if paused != (c.lstate&lPaused != 0) {
		c.lstate ^= lPaused
		l.watch(int(c.fd), c.events(), unix.EPOLL_CTL_MOD)
	}
	if waiting && !writable {
		return // the socket is full; EPOLLOUT will call back
	}
	empty, blocked, err := l.write(c)
	switch {
	case err != nil:
		l.finish(c, err)
	case empty && c.lstate&lClosing != 0:
		l.finish(c, nil)
	case empty:
		if waiting {
			c.lstate &^= lWaitOut
			l.watch(int(c.fd), c.events(), unix.EPOLL_CTL_MOD)
		}
	case blocked:
		l.stats.blocked.Add(1)
		if !waiting {
			c.lstate |= lWaitOut
			l.watch(int(c.fd), c.events(), unix.EPOLL_CTL_MOD)
		}
		// EPOLLOUT is the scheduled flush: Writes need not queue c.
		c.mu.Lock()
		c.state |= connQueued
		c.mu.Unlock()
	default:
		l.requeue(c) // more arrived, or more than one writev's worth
	}
}

// write sends what c has queued with one writev, without holding c.mu
// across the system call. blocked reports a full socket buffer.
func (l *loop) write(c *econn) (empty, blocked bool, err error) {
	c.mu.Lock()
	iov, total := appendIovecs(l.iov[:0], &c.out, maxBuffers)
	c.mu.Unlock()
	l.iov = iov
	if total == 0 {
		return true, false, nil
	}
	n, err := writev(c.fd, iov)
	clear(iov) // do not pin pooled chunks
	if n > 0 {
		l.stats.writes.Add(1)
		l.stats.bytesOut.Add(uint64(n))
		c.mu.Lock()
		c.out.consume(n)
		empty = c.out.n == 0
		c.mu.Unlock()
	}
	switch {
	case err == unix.EAGAIN:
		return false, true, nil
	case err != nil:
		return false, false, os.NewSyscallError("writev", err)
	case n < total:
		return false, true, nil // the next writev would only get EAGAIN
	}
	return empty, false, nil
}

func (l *loop) requeue(c *econn) {
	c.mu.Lock()
	queue := c.state&connQueued == 0
	c.state |= connQueued
	c.mu.Unlock()
	if queue {
		l.mu.Lock()
		l.flushQ = append(l.flushQ, c)
		l.mu.Unlock()
	}
}

// closeConn starts closing c for a reason found on the loop (a Handler
// error, shutdown): flush with a deadline, then finish with cause.
func (l *loop) closeConn(c *econn, cause error) {
	if c.lstate&(lClosing|lClosed) != 0 {
		return
	}
	c.mu.Lock()
	c.state |= connClosing
	c.mu.Unlock()
	l.beginClose(c, cause)
	l.service(c, false)
}

func (l *loop) beginClose(c *econn, cause error) {
	c.lstate |= lClosing
	l.lingering[c] = linger{deadline: l.now() + l.srv.opts.CloseTimeout, cause: cause}
}

// finish closes c's descriptor and reports Handler.Closed, once. A conn
// that was closing reports the cause recorded when the close began, so a
// local Close reports nil even if the peer hangs up during the flush.
func (l *loop) finish(c *econn, err error) {
	if c.lstate&lClosed != 0 {
		return
	}
	c.lstate |= lClosed
	if lg, ok := l.lingering[c]; ok {
		err = lg.cause
		delete(l.lingering, c)
	}
	delete(l.handshakes, c)
	c.mu.Lock()
	if c.state&connClosing != 0 && c.lstate&lClosing == 0 {
		err = nil // a Close the loop had not seen yet
	}
	c.state |= connClosing
	c.out.release()
	c.mu.Unlock()
	// The slot is cleared before the descriptor is closed: once closed, its
	// number may come back from accept for another loop's conn.
	l.srv.fds.clear(c.fd)
	l.nconns--
	closeFD(int(c.fd)) // also removes it from the epoll set
	l.stats.open.Add(-1)
	if c.handler != nil {
		c.handler.Closed(err)
	}
}

// expire enforces close and PROXY deadlines and resumes a paused accept.
func (l *loop) expire() {
	if len(l.lingering) == 0 && len(l.handshakes) == 0 && l.pausedTill == 0 {
		return
	}
	now := l.now()
	if now < l.nextScan {
		return
	}
	l.nextScan = now + timerTick
	for c, lg := range l.lingering {
		if now >= lg.deadline {
			l.finish(c, lg.cause)
		}
	}
	for c, hs := range l.handshakes {
		if now >= hs.deadline {
			l.stats.refused.Add(1)
			l.finish(c, errProxyTimeout)
		}
	}
	if l.pausedTill > 0 && now >= l.pausedTill {
		l.pausedTill = 0
		if err := l.watch(l.srv.lfd, unix.EPOLLIN, unix.EPOLL_CTL_ADD); err != nil && !errors.Is(err, unix.EEXIST) {
			// Out of kernel memory or epoll watches, as likely as not what
			// made accept fail: try again later rather than never accept.
			l.pausedTill = now + acceptPause
		}
	}
}

// stop begins shutdown: no more accepts, every conn closes.
func (l *loop) stop() {
	l.stopping = true
	if l.id == 0 && l.srv.lfd >= 0 {
		unix.Close(l.srv.lfd)
		l.srv.lfd = -1
		l.pausedTill = 0
	}
	l.eachConn(func(c *econn) { l.closeConn(c, ErrServerClosed) })
}

// eachConn calls f for every conn of this loop; f may close them.
func (l *loop) eachConn(f func(*econn)) {
	l.srv.fds.each(func(c *econn) {
		if c.loop == l {
			f(c)
		}
	})
}

func (l *loop) exit() {
	l.mu.Lock()
	l.dead = true
	in := l.incoming
	l.incoming = nil
	l.mu.Unlock()
	for _, c := range in {
		unix.Close(int(c.fd))
	}
	l.closeFDs()
}
