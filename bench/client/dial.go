package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// Target is one broker address: a transport and where to reach it.
type Target struct {
	Scheme string // "tcp", "tls", "ws" or "wss"
	Addr   string // host:port
	URL    string // the full URL, for ws and wss
}

// String returns the target as it was given, normalised.
func (t Target) String() string {
	if t.URL != "" {
		return t.URL
	}
	return t.Scheme + "://" + t.Addr
}

// ParseTarget parses "host:port", "tcp://host:port", "tls://" (also
// "ssl://", "mqtts://"), "ws://host:port/path" or "wss://...". A bare
// host:port is TLS when forceTLS is set. The port defaults to 1883 (8883
// for TLS); the WebSocket path defaults to "/mqtt".
func ParseTarget(s string, forceTLS bool) (Target, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Target{}, errors.New("empty target")
	}
	if !strings.Contains(s, "://") {
		s = "tcp://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", s, err)
	}
	t := Target{Scheme: u.Scheme}
	switch u.Scheme {
	case "tcp", "mqtt":
		t.Scheme = "tcp"
		if forceTLS {
			t.Scheme = "tls"
		}
	case "tls", "ssl", "mqtts":
		t.Scheme = "tls"
	case "ws", "wss":
		if forceTLS {
			t.Scheme = "wss"
		}
	default:
		return Target{}, fmt.Errorf("target %q: unknown scheme %q (want tcp, tls, ws or wss)", s, u.Scheme)
	}
	if u.Host == "" {
		return Target{}, fmt.Errorf("target %q: no host", s)
	}
	t.Addr = u.Host
	if u.Port() == "" {
		port := map[string]string{"tcp": "1883", "tls": "8883", "ws": "80", "wss": "443"}[t.Scheme]
		t.Addr = net.JoinHostPort(u.Hostname(), port)
	}
	if t.Scheme == "ws" || t.Scheme == "wss" {
		if u.Path == "" {
			u.Path = "/mqtt"
		}
		u.Scheme = t.Scheme
		u.Host = t.Addr
		t.URL = u.String()
	}
	return t, nil
}

// dial opens the byte stream to t: TCP, then TLS or the WebSocket
// handshake (subprotocol "mqtt") when the scheme asks for them.
func dial(ctx context.Context, t Target, localIP net.IP, tlsConf *tls.Config) (net.Conn, error) {
	d := &net.Dialer{}
	if localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: localIP}
	}
	switch t.Scheme {
	case "tcp":
		return d.DialContext(ctx, "tcp", t.Addr)
	case "tls":
		conn, err := d.DialContext(ctx, "tcp", t.Addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, tlsConfigFor(tlsConf, t.Addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls: %w", err)
		}
		return tc, nil
	case "ws", "wss":
		wd := websocket.Dialer{
			NetDialContext:  d.DialContext,
			TLSClientConfig: tlsConfigFor(tlsConf, t.Addr),
			Subprotocols:    []string{"mqtt"},
			// Small buffers: the bench holds thousands of these.
			ReadBufferSize:  512,
			WriteBufferSize: 512,
		}
		ws, resp, err := wd.DialContext(ctx, t.URL, nil)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("websocket: %w", err)
		}
		return &wsConn{Conn: ws}, nil
	}
	return nil, fmt.Errorf("unknown scheme %q", t.Scheme)
}

func tlsConfigFor(c *tls.Config, addr string) *tls.Config {
	if c == nil {
		c = &tls.Config{}
	}
	if c.ServerName == "" && !c.InsecureSkipVerify {
		c = c.Clone()
		c.ServerName, _, _ = net.SplitHostPort(addr)
	}
	return c
}

// wsConn presents a WebSocket as a byte stream: MQTT over WebSocket sends
// control packets in binary messages, and a packet may span messages.
type wsConn struct {
	*websocket.Conn
	r io.Reader
}

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Cause names the kind of a connection error in a few words, so that
// errors can be counted by cause: "refused", "timeout", "reset", "closed",
// "tls", "websocket", "connack 0x87", ...
func Cause(err error) string {
	var refused *ConnackError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &refused):
		return fmt.Sprintf("connack 0x%02X", byte(refused.Code))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no source address"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, errServerDisconnect):
		return "server disconnect"
	case strings.HasPrefix(err.Error(), "tls"):
		return "tls"
	case strings.HasPrefix(err.Error(), "websocket"):
		return "websocket"
	case strings.HasPrefix(err.Error(), "protocol"):
		return "protocol"
	}
	return "other"
}
