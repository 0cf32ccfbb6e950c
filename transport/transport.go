// Package transport accepts connections and moves bytes. It knows nothing of
// MQTT beyond what the Handler tells it.
//
// Two implementations share one contract: a goroutine-per-connection one
// (Serve and ServeConn, for TLS, WebSocket and any net.Listener) and an
// epoll one for plain TCP (ListenEpoll, Linux only) that holds no goroutine
// and no read buffer per idle connection. Both coalesce writes, hold no
// outbound buffer while a connection is idle, and accept PROXY protocol v1
// and v2 headers when asked (ProxyListener, EpollOptions.ProxyProtocol).
package transport

import "net"

// Conn is one accepted connection as the broker sees it. All methods are
// safe for concurrent use.
type Conn interface {
	// Write copies b into the connection's outbound buffer and schedules a
	// flush. It never blocks on the network. Writes issued close together
	// are coalesced into one system call. It returns the number of bytes
	// now waiting to be written (so the caller can detect a slow consumer),
	// or an error once the connection is closed.
	Write(b []byte) (pending int, err error)
	// Close flushes what is already buffered (bounded by a short deadline)
	// and closes the connection. It does not wait for the flush: it
	// returns at once, and Handler.Closed(nil) is called once afterwards.
	// Writes fail from the moment Close is called; a second Close returns
	// net.ErrClosed.
	Close() error
	// RemoteAddr is the peer address (after PROXY protocol, if any).
	RemoteAddr() net.Addr
	// LocalAddr is the listener address the connection arrived on.
	LocalAddr() net.Addr
}

// Handler receives the events of one connection. The transport calls Data
// and Closed from one goroutine at a time per connection, never
// concurrently for the same connection. On the epoll transport that
// goroutine is an event loop shared by many connections, so a Handler must
// not block; Conn.Write never does.
type Handler interface {
	// Data is called with bytes read from the connection, in arbitrary
	// pieces (not frames). p is only valid during the call. A non-nil
	// error closes the connection as Close does (what is buffered is still
	// flushed) and becomes the cause passed to Closed.
	Data(p []byte) error
	// Closed is called exactly once when the connection is gone, with the
	// cause: nil after a local Close, io.EOF when the peer closed,
	// ErrServerClosed at shutdown, the error Data returned, or the read or
	// write error.
	Closed(err error)
}

// Accepter is called for each new connection, after any TLS or PROXY
// handshake, and returns its Handler. Returning nil refuses the connection
// (the transport closes it and calls no Handler). It may Write to c.
type Accepter func(c Conn) Handler

// Pauser is implemented by connections whose reading can be paused. While
// paused, Handler.Data is not called and the kernel's receive buffer fills,
// so TCP flow control slows the peer. Writes continue. Pause and Resume are
// safe for concurrent use and idempotent; they may be called from inside
// Handler.Data (on any transport) and from other goroutines.
//
// Called from inside Data, PauseRead takes effect when Data returns: no
// further Data until ResumeRead. Called from anywhere else (another
// goroutine, the Accepter), it takes effect at the connection's next read,
// so at most one more Data call may follow, with bytes whose read was
// already under way. Neither call blocks.
//
// A peer that closes while its connection is paused is noticed according
// to the transport. The epoll transport keeps watching for hangup (EPOLLRDHUP,
// EPOLLHUP, EPOLLERR): it closes the connection at once and calls Closed
// with io.EOF, or the socket error after a reset, discarding input still
// unread in the kernel buffer. That input was never delivered, so nothing
// the broker acknowledged is lost, but a DISCONNECT in it is never seen.
// The goroutine transport cannot see a hangup without reading: it notices
// on ResumeRead (after delivering the remaining input, in order), when a
// write fails, or on Close.
//
// Both calls have no effect once the connection is closing; Close works on
// a paused connection as on any other, and Closed is called once.
type Pauser interface {
	PauseRead()
	ResumeRead()
}
