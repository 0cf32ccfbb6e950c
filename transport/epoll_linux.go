//go:build linux

package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// EpollServer serves plain TCP from a few event loops instead of a
// goroutine per connection. An idle connection costs one small struct (see
// econn), a map entry and its socket: no goroutine, no read buffer, no
// outbound buffer.
//
// The listening socket belongs to the first loop, which accepts and deals
// connections round-robin to all loops. Each loop owns its connections:
// only it reads them, writes them, calls their Handler and closes their
// descriptors, so a Handler is never called concurrently for one
// connection, and Handlers must not block (they stall the loop's other
// connections).
type EpollServer struct {
	accept Accepter
	opts   EpollOptions
	addr   *net.TCPAddr
	lfd    int // listening socket; owned by loops[0], -1 once closed
	loops  []*loop
	fds    fdTable   // the loops' conns by descriptor
	start  time.Time // epoch of the loops' monotonic deadlines

	closing   atomic.Bool
	closeOnce sync.Once
	stopCtx   func() bool
	wg        sync.WaitGroup // one per running loop
}

// ListenEpoll listens on the TCP address addr (host:port, as for
// net.Listen; an empty host listens on all IPv4 and IPv6 addresses) and
// serves it until ctx is done or Close is called. It returns once the
// socket is listening.
func ListenEpoll(ctx context.Context, addr string, opts EpollOptions, accept Accepter) (*EpollServer, error) {
	if accept == nil {
		return nil, errors.New("transport: ListenEpoll needs an Accepter")
	}
	opts = opts.withDefaults(runtime.GOMAXPROCS(0))
	lfd, laddr, err := listenTCP(addr, opts.Backlog)
	if err != nil {
		return nil, fmt.Errorf("transport: listen %s: %w", addr, err)
	}
	s := &EpollServer{accept: accept, opts: opts, addr: laddr, lfd: lfd, start: time.Now()}
	for i := range opts.Loops {
		l, err := newLoop(s, i)
		if err != nil {
			for _, l := range s.loops {
				l.closeFDs()
			}
			unix.Close(lfd)
			return nil, fmt.Errorf("transport: epoll loop: %w", err)
		}
		s.loops = append(s.loops, l)
	}
	if err := s.loops[0].watch(lfd, unix.EPOLLIN, unix.EPOLL_CTL_ADD); err != nil {
		for _, l := range s.loops {
			l.closeFDs()
		}
		unix.Close(lfd)
		return nil, fmt.Errorf("transport: epoll listener: %w", err)
	}
	s.wg.Add(len(s.loops))
	for _, l := range s.loops {
		go l.run()
	}
	// shutdown, not Close: with ctx already done it runs before stopCtx is set.
	s.stopCtx = context.AfterFunc(ctx, func() { s.shutdown() })
	return s, nil
}

// Addr is the address the server listens on.
func (s *EpollServer) Addr() net.Addr { return s.addr }

// Close stops accepting, closes every connection (each flushes what it has
// buffered, for at most CloseTimeout, and its Handler.Closed gets
// ErrServerClosed), and returns when all loops have exited. Later calls
// wait too and return net.ErrClosed. It must not be called from a Handler:
// it waits for the loop that Handler runs on.
func (s *EpollServer) Close() error {
	if !s.shutdown() {
		return net.ErrClosed
	}
	s.stopCtx()
	return nil
}

// shutdown stops the loops and waits for them; it reports whether this
// call was the first.
func (s *EpollServer) shutdown() (first bool) {
	s.closeOnce.Do(func() {
		first = true
		s.closing.Store(true)
		for _, l := range s.loops {
			l.wake()
		}
	})
	s.wg.Wait()
	return first
}

// Stats returns the server's counters, summed over its loops.
func (s *EpollServer) Stats() EpollStats {
	var st EpollStats
	for _, l := range s.loops {
		st.Open += l.stats.open.Load()
		st.Accepted += l.stats.accepted.Load()
		st.Refused += l.stats.refused.Load()
		st.BytesIn += l.stats.bytesIn.Load()
		st.BytesOut += l.stats.bytesOut.Load()
		st.Reads += l.stats.reads.Load()
		st.Writes += l.stats.writes.Load()
		st.WriteBlocked += l.stats.blocked.Load()
		st.Wakeups += l.stats.wakeups.Load()
	}
	return st
}

// listenTCP opens a non-blocking listening socket.
func listenTCP(addr string, backlog int) (int, *net.TCPAddr, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, err
	}
	family, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: ta.Port})
	switch ip := ta.IP; {
	case ip == nil || ip.IsUnspecified() && ip.To4() == nil:
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: ta.Port} // dual stack
	case ip.To4() != nil:
		sa = &unix.SockaddrInet4{Port: ta.Port, Addr: [4]byte(ip.To4())}
	default:
		sa6 := &unix.SockaddrInet6{Port: ta.Port, Addr: [16]byte(ip.To16())}
		if ta.Zone != "" {
			ifi, err := net.InterfaceByName(ta.Zone)
			if err != nil {
				return -1, nil, err
			}
			sa6.ZoneId = uint32(ifi.Index)
		}
		family, sa = unix.AF_INET6, sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil && ta.IP == nil && family == unix.AF_INET6 {
		// No IPv6 on this host: fall back to all IPv4 addresses.
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: ta.Port}
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	}
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	if err := listenOn(fd, family, sa, backlog); err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("getsockname: %w", err)
	}
	return fd, net.TCPAddrFromAddrPort(addrPort(bound)), nil
}

func listenOn(fd, family int, sa unix.Sockaddr, backlog int) error {
	// Restart without waiting for TIME_WAIT sockets of the previous run.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if family == unix.AF_INET6 {
		if s6, ok := sa.(*unix.SockaddrInet6); ok && s6.Addr == [16]byte{} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fmt.Errorf("IPV6_V6ONLY: %w", err)
			}
		}
	}
	// Options set on the listening socket are inherited by every socket
	// accept(2) returns (Linux clones them), so a connect storm does not pay
	// five setsockopt calls per connection. TCP_NODELAY: MQTT packets are
	// small and latency matters more than segments. TCP keepalive finds
	// peers that vanished without a FIN even when the client chose MQTT keep
	// alive 0 (no broker-side timeout).
	for _, o := range []struct {
		level, opt, value int
		name              string
	}{
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, "TCP_NODELAY"},
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, tcpKeepIdle, "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, tcpKeepInterval, "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, tcpKeepCount, "TCP_KEEPCNT"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.value); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

// addrPort converts a socket address, unmapping IPv4-in-IPv6.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}
