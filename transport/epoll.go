package transport

import (
	"errors"
	"time"
)

// ErrEpollUnsupported is returned by ListenEpoll on systems without epoll.
var ErrEpollUnsupported = errors.New("transport: epoll is only available on Linux; use Serve")

// EpollOptions configures ListenEpoll. The zero value works.
type EpollOptions struct {
	// Loops is the number of event loops, each with its own epoll
	// instance and goroutine. Default runtime.GOMAXPROCS(0).
	Loops int
	// ReadBufferSize is the size of each loop's one read buffer, shared by
	// all its connections. Default 64 KiB.
	ReadBufferSize int
	// Backlog is the listen(2) backlog. Default 65535: the kernel caps it at
	// net.core.somaxconn, so raising that sysctl is all a storm needs.
	Backlog int
	// CloseTimeout bounds how long a closing connection may take to flush
	// what is buffered. Default 2s.
	CloseTimeout time.Duration
	// ProxyProtocol requires a PROXY protocol v1 or v2 header at the start
	// of every connection. The Accepter is called once the header is read,
	// so RemoteAddr already reports the client; a connection with a
	// malformed header, or none within ProxyTimeout, is closed without
	// reaching the Accepter.
	ProxyProtocol bool
	// ProxyTimeout bounds the wait for the PROXY header. Default 5s.
	ProxyTimeout time.Duration
}

func (o EpollOptions) withDefaults(gomaxprocs int) EpollOptions {
	if o.Loops <= 0 {
		o.Loops = gomaxprocs
	}
	if o.ReadBufferSize <= 0 {
		o.ReadBufferSize = 64 << 10
	}
	if o.Backlog <= 0 {
		o.Backlog = 65535
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = closeTimeout
	}
	if o.ProxyTimeout <= 0 {
		o.ProxyTimeout = 5 * time.Second
	}
	return o
}

// EpollStats is a snapshot of an EpollServer's counters, summed over its
// loops.
type EpollStats struct {
	// Open is the number of connections the server holds now, including
	// those still waiting for their PROXY header.
	Open int64
	// Accepted counts connections taken from the listen queue.
	Accepted uint64
	// Refused counts connections the Accepter refused, whose PROXY
	// header was malformed or late, or whose descriptor was beyond the
	// table of connections (fdTableMax).
	Refused uint64
	// BytesIn and BytesOut count payload bytes read and written.
	BytesIn, BytesOut uint64
	// Reads and Writes count read(2) and writev(2) system calls that moved
	// data; BytesOut/Writes shows how well writes are coalesced.
	Reads, Writes uint64
	// WriteBlocked counts writes that filled the socket buffer and had to
	// wait for EPOLLOUT.
	WriteBlocked uint64
	// Wakeups counts eventfd wake-ups of sleeping loops by Conn.Write,
	// Conn.Close or a hand-off from the accepting loop.
	Wakeups uint64
}
