package transport

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// WebSocketSubprotocol is the subprotocol MQTT over WebSocket negotiates
// (MQTT 5.0 section 6, MQTT 3.1.1 section 6).
const WebSocketSubprotocol = "mqtt"

// wsSubprotocols are the subprotocols served, in order of preference:
// "mqtt", then "mqttv3.1", which MQTT 3.1 clients that predate the
// standard name (Paho JavaScript at protocol level 3, for one) offer alone.
var wsSubprotocols = []string{WebSocketSubprotocol, "mqttv3.1"}

// The defaults of WSOptions.ReadTimeout and IdleTimeout.
const (
	wsReadTimeout = 10 * time.Second
	wsIdleTimeout = 30 * time.Second
)

// closeFrameTimeout bounds the wait to send a WebSocket close frame behind a
// write that is stuck on a slow peer.
const closeFrameTimeout = time.Second

// wsWriteBuffers is shared by every WebSocket connection: a connection holds
// a write buffer only while it writes a message, so idle ones cost none.
var wsWriteBuffers sync.Pool

// errWSNotBinary closes a connection that sent a text message.
var errWSNotBinary = errors.New("transport: websocket: MQTT must be sent in binary messages")

// WSOptions configures WebSocketHandler. The zero value is ready to use.
type WSOptions struct {
	// CheckOrigin decides whether a browser page served from another origin
	// may connect. Nil allows every origin: MQTT clients authenticate in
	// CONNECT, not with cookies, so cross-site requests carry no ambient
	// authority (the reason browsers check origins).
	CheckOrigin func(r *http.Request) bool
	// HandshakeTimeout bounds the WebSocket upgrade; 0 means 10s.
	HandshakeTimeout time.Duration
	// ReadBufferSize and WriteBufferSize size the upgrader's I/O buffers; 0
	// means 4 KiB. A message larger than the write buffer is written as a
	// frame header and the payload in one writev, not copied.
	ReadBufferSize, WriteBufferSize int
	// ReadTimeout and IdleTimeout are the timeouts of the http.Server that
	// WebSocketServer returns (WebSocketHandler ignores them); 0 means 10s
	// and 30s.
	ReadTimeout, IdleTimeout time.Duration
}

// WebSocketServer returns an http.Server that serves WebSocketHandler(path,
// accept, opts) and nothing else, whose connections end with ctx. Its
// timeouts bound what comes before an upgrade, so that a client cannot hold
// a connection with a request it never finishes: opts.ReadTimeout the
// request's headers and body, opts.IdleTimeout a keep-alive connection left
// idle after a refused request. They do not bound an upgraded connection:
// the WebSocket library clears the deadlines when it takes the connection
// over, and MQTT's keepalive applies from then on.
func WebSocketServer(ctx context.Context, path string, accept Accepter, opts WSOptions) *http.Server {
	readTimeout := cmp.Or(opts.ReadTimeout, wsReadTimeout)
	return &http.Server{
		Handler:           WebSocketHandler(path, accept, opts),
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       cmp.Or(opts.IdleTimeout, wsIdleTimeout),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// WebSocketHandler returns an http.Handler that serves MQTT over WebSocket
// on path. The client must offer the subprotocol "mqtt" or "mqttv3.1"
// ("mqtt" is chosen when offered); a request that offers neither, or that
// is not a WebSocket upgrade, is answered 400, and any other path 404.
//
// Each accepted connection is served like ServeConn: the handler's
// goroutine reads and a writer goroutine writes. MQTT bytes travel in binary
// messages; a packet may span messages and a message may hold several
// packets ([MQTT-6.0.0-2], [MQTT-6.0.0-3]), since the Handler sees a byte
// stream. Writes that queue up while a message is being sent go out
// together, one message per pooled outbound chunk. A text message closes
// the connection [MQTT-6.0.0-1].
//
// When the request's context ends (set http.Server.BaseContext to the
// listener's context) the connection is closed and Handler.Closed gets
// ErrServerClosed, as with Serve.
func WebSocketHandler(path string, accept Accepter, opts WSOptions) http.Handler {
	checkOrigin := opts.CheckOrigin
	if checkOrigin == nil {
		checkOrigin = func(*http.Request) bool { return true }
	}
	up := &websocket.Upgrader{
		HandshakeTimeout: cmp.Or(opts.HandshakeTimeout, handshakeTimeout),
		ReadBufferSize:   opts.ReadBufferSize,
		WriteBufferSize:  opts.WriteBufferSize,
		WriteBufferPool:  &wsWriteBuffers,
		Subprotocols:     wsSubprotocols, // the upgrader picks by this order
		CheckOrigin:      checkOrigin,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		if !websocket.IsWebSocketUpgrade(r) {
			http.Error(w, "MQTT over WebSocket: expected a WebSocket upgrade", http.StatusBadRequest)
			return
		}
		// [MQTT-6.0.0-4] the server must select "mqtt" (or, for an MQTT
		// 3.1 client, "mqttv3.1"); refuse a client that offers neither
		// rather than upgrade without a subprotocol.
		if !slices.ContainsFunc(websocket.Subprotocols(r), func(p string) bool { return slices.Contains(wsSubprotocols, p) }) {
			http.Error(w, `MQTT over WebSocket: the subprotocol "mqtt" (or "mqttv3.1") is required`, http.StatusBadRequest)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // the upgrader has answered the client
		}
		g := newGconn(newWSNetConn(ws))
		stop := context.AfterFunc(r.Context(), func() { g.closeWith(ErrServerClosed) })
		defer stop()
		g.serve(accept)
	})
}

// wsNetConn adapts a WebSocket connection to the net.Conn that gconn
// serves: Read returns the bytes of consecutive binary messages, Write
// sends each call as one binary message. gconn reads from one goroutine and
// writes from another, which is the concurrency gorilla/websocket supports.
type wsNetConn struct {
	ws *websocket.Conn
	r  io.Reader // the message being read; nil between messages

	mu        sync.Mutex
	deadline  *time.Timer
	closed    bool
	closeErr  error
	closeOnce sync.Once
}

func newWSNetConn(ws *websocket.Conn) *wsNetConn {
	return &wsNetConn{ws: ws}
}

// Read implements net.Conn.
func (c *wsNetConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, wsReadError(err)
			}
			if typ != websocket.BinaryMessage {
				return 0, errWSNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue // an empty message, or the end of one
			}
			err = nil
		}
		if err != nil {
			return n, wsReadError(err)
		}
		return n, nil
	}
}

// wsReadError maps a normal WebSocket close to io.EOF, as a TCP FIN is.
func wsReadError(err error) error {
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return io.EOF
	}
	return err
}

// Write implements net.Conn: p goes out as one binary message.
func (c *wsNetConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a normal-closure close frame (bounded by closeFrameTimeout)
// and closes the socket.
func (c *wsNetConn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		if c.deadline != nil {
			c.deadline.Stop()
		}
		c.mu.Unlock()
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeFrameTimeout))
		c.closeErr = c.ws.Close()
	})
	return c.closeErr
}

// LocalAddr implements net.Conn.
func (c *wsNetConn) LocalAddr() net.Addr { return c.ws.LocalAddr() }

// RemoteAddr implements net.Conn. Behind a PROXY-protocol listener it is the
// address from the header.
func (c *wsNetConn) RemoteAddr() net.Addr { return c.ws.RemoteAddr() }

// SetDeadline implements net.Conn.
func (c *wsNetConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *wsNetConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// SetWriteDeadline implements net.Conn. gorilla/websocket keeps its write
// deadline in a plain field and re-applies it to the socket before every
// write, so it cannot be changed while the writer goroutine writes: the
// deadline here is a timer that closes the socket when it fires, which
// ends a write stuck on a peer that stopped reading.
func (c *wsNetConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	if t.IsZero() || c.closed {
		return nil
	}
	nc := c.ws.NetConn()
	c.deadline = time.AfterFunc(time.Until(t), func() { nc.Close() })
	return nil
}

// ConnectionState returns the TLS state of a wss connection (the zero
// value for ws), so that PeerCertificateCN works for both TLS paths.
func (c *wsNetConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.ws.NetConn().(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}
