package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-mqtt/herald/internal/testcert"
)

// startWS serves WebSocketHandler on /mqtt of a test HTTP server whose
// request contexts end with ctx, and returns the ws:// URL.
func startWS(t *testing.T, ctx context.Context, accept Accepter) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(WebSocketHandler("/mqtt", accept, WSOptions{}))
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/mqtt"
}

// startWSServer serves WebSocketServer on /mqtt with opts and returns the
// address to dial.
func startWSServer(t *testing.T, accept Accepter, opts WSOptions) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hs := WebSocketServer(ctx, "/mqtt", accept, opts)
	go hs.Serve(l)
	t.Cleanup(func() {
		cancel() // the upgraded connections, which Close does not track
		hs.Close()
	})
	return l.Addr().String()
}

func dialWS(t *testing.T, url string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{}
	}
	d.Subprotocols = []string{"mqtt"}
	d.HandshakeTimeout = 5 * time.Second
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "mqtt" {
		t.Errorf("Sec-WebSocket-Protocol = %q, want mqtt", got)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// readWS reads binary messages until n bytes have arrived and returns them
// with the number of messages they came in.
func readWS(t *testing.T, ws *websocket.Conn, n int) ([]byte, int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	msgs := 0
	for len(got) < n {
		typ, p, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), n, err)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", typ)
		}
		got = append(got, p...)
		msgs++
	}
	return got, msgs
}

func TestWebSocketCarriesAByteStreamAcrossMessages(t *testing.T) {
	rs := newRecorders(true)
	ws := dialWS(t, startWS(t, context.Background(), rs.accept), nil)
	r := rs.next(t)

	// One "packet" split over three messages, then two in one message, and
	// an empty message, which carries nothing.
	want := randomBytes(3000)
	for _, part := range [][]byte{want[:1], want[1:1000], want[1000:2000], {}, want[2000:]} {
		if err := ws.WriteMessage(websocket.BinaryMessage, part); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := readWS(t, ws, len(want))
	if !bytes.Equal(got, want) {
		t.Fatal("echoed bytes differ from those sent")
	}
	if !strings.HasPrefix(r.conn.RemoteAddr().String(), "127.0.0.1:") {
		t.Errorf("RemoteAddr = %s", r.conn.RemoteAddr())
	}
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	r.waitClosed(t, io.EOF) // a close frame reads as EOF, as a FIN does
}

func TestWebSocketCoalescesWritesIntoFewerMessages(t *testing.T) {
	const writes, size = 1000, 16
	rs := newRecorders(false)
	rs.onData = func(c Conn, p []byte) error {
		for range writes {
			c.Write(bytes.Repeat([]byte{'x'}, size))
		}
		return nil
	}
	ws := dialWS(t, startWS(t, context.Background(), rs.accept), nil)
	ws.WriteMessage(websocket.BinaryMessage, []byte{1})
	_, msgs := readWS(t, ws, writes*size)
	t.Logf("%d writes arrived in %d messages", writes, msgs)
	if msgs > writes/4 {
		t.Errorf("%d writes arrived in %d messages: not coalesced", writes, msgs)
	}
}

// TestWebSocketChoosesMQTTThenMQTTv31 proves the subprotocol choice: "mqtt"
// whenever it is offered, else "mqttv3.1" (MQTT 3.1 clients offer only
// that), and the upgraded connection carries bytes either way.
func TestWebSocketChoosesMQTTThenMQTTv31(t *testing.T) {
	rs := newRecorders(true)
	url := startWS(t, context.Background(), rs.accept)
	for _, tc := range []struct {
		offer []string
		want  string
	}{
		{[]string{"mqtt"}, "mqtt"},
		{[]string{"mqttv3.1"}, "mqttv3.1"},
		{[]string{"mqttv3.1", "mqtt"}, "mqtt"},
		{[]string{"chat", "mqttv3.1"}, "mqttv3.1"},
	} {
		t.Run(strings.Join(tc.offer, ","), func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tc.offer, HandshakeTimeout: 5 * time.Second}
			ws, resp, err := d.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != tc.want {
				t.Errorf("Sec-WebSocket-Protocol = %q, want %q", got, tc.want)
			}
			rs.next(t)
			ws.WriteMessage(websocket.BinaryMessage, []byte{0xc0, 0x00})
			if got, _ := readWS(t, ws, 2); !bytes.Equal(got, []byte{0xc0, 0x00}) {
				t.Errorf("echoed % x", got)
			}
		})
	}
}

func TestWebSocketRefusesWithoutMQTTSubprotocol(t *testing.T) {
	var accepts atomic.Int32
	url := startWS(t, context.Background(), func(c Conn) Handler {
		accepts.Add(1)
		return newRecorder(c, false)
	})
	for _, tc := range []struct {
		name         string
		path         string
		subprotocols []string
		want         int
	}{
		{"none", "/mqtt", nil, http.StatusBadRequest},
		{"other", "/mqtt", []string{"chat", "wamp"}, http.StatusBadRequest},
		{"near misses", "/mqtt", []string{"MQTT", "mqttv3.1.1", "mqttv5"}, http.StatusBadRequest},
		{"wrong path", "/other", []string{"mqtt"}, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tc.subprotocols, HandshakeTimeout: 5 * time.Second}
			ws, resp, err := d.Dial(strings.TrimSuffix(url, "/mqtt")+tc.path, nil)
			if err == nil {
				ws.Close()
				t.Fatal("upgrade succeeded")
			}
			if resp == nil || resp.StatusCode != tc.want {
				t.Fatalf("response %v, err %v; want status %d", resp, err, tc.want)
			}
		})
	}
	// A plain HTTP request is not an upgrade.
	resp, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain GET: status %d, want 400", resp.StatusCode)
	}
	if n := accepts.Load(); n != 0 {
		t.Errorf("Accepter called %d times for refused upgrades", n)
	}
}

func TestWebSocketTextMessageClosesConnection(t *testing.T) {
	rs := newRecorders(false)
	ws := dialWS(t, startWS(t, context.Background(), rs.accept), nil)
	r := rs.next(t)
	ws.WriteMessage(websocket.TextMessage, []byte{0xc0, 0x00}) // PINGREQ, as text
	r.waitClosed(t, errWSNotBinary)
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("client read %v, want a close frame", err)
	}
}

func TestWebSocketCloseFlushesThenSendsCloseFrame(t *testing.T) {
	want := randomBytes(100 << 10)
	rs := newRecorders(false)
	rs.onData = func(c Conn, p []byte) error {
		c.Write(want)
		c.Close()
		return nil
	}
	ws := dialWS(t, startWS(t, context.Background(), rs.accept), nil)
	ws.WriteMessage(websocket.BinaryMessage, []byte{1})
	r := rs.next(t)
	got, _ := readWS(t, ws, len(want))
	if !bytes.Equal(got, want) {
		t.Fatal("bytes written before Close were not all delivered")
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("client read %v, want close 1000", err)
	}
	r.waitClosed(t, nil)
}

func TestWebSocketCloseGivesUpOnAPeerThatStoppedReading(t *testing.T) {
	rs := newRecorders(false)
	rs.onData = func(c Conn, p []byte) error {
		chunk := make([]byte, 64<<10)
		for range 256 { // 16 MiB: far beyond the socket buffers
			c.Write(chunk)
		}
		c.Close()
		return nil
	}
	ws := dialWS(t, startWS(t, context.Background(), rs.accept), nil)
	ws.WriteMessage(websocket.BinaryMessage, []byte{1})
	r := rs.next(t)
	start := time.Now()
	select {
	case <-r.closed:
	case <-time.After(closeTimeout + 5*time.Second):
		t.Fatal("Close did not give up on a peer that reads nothing")
	}
	if d := time.Since(start); d < closeTimeout/2 {
		t.Errorf("closed after %v: did it wait for the flush at all?", d)
	}
}

func TestWebSocketServerShutdownClosesConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rs := newRecorders(false)
	ws := dialWS(t, startWS(t, ctx, rs.accept), nil)
	r := rs.next(t)
	cancel()
	r.waitClosed(t, ErrServerClosed)
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Error("connection still open after shutdown")
	}
}

// TestWebSocketServerTimesOutUnfinishedAndIdleRequests proves that a client
// cannot hold a connection of the WebSocket server before upgrading it:
// not with headers it never finishes, nor with a body it never finishes
// (a slowloris), nor by leaving a keep-alive connection idle after a
// request.
func TestWebSocketServerTimesOutUnfinishedAndIdleRequests(t *testing.T) {
	const short = 300 * time.Millisecond
	for _, tc := range []struct {
		name      string
		opts      WSOptions
		request   string
		wantReply string // the start of what is answered before the close
	}{
		{"headers never finished", WSOptions{ReadTimeout: short},
			"GET /mqtt HTTP/1.1\r\nHost: herald\r\n", ""},
		{"body never finished", WSOptions{ReadTimeout: short},
			"POST /mqtt HTTP/1.1\r\nHost: herald\r\nContent-Length: 100\r\n\r\n0123456789", ""},
		{"idle after a refused request", WSOptions{IdleTimeout: short},
			"GET /mqtt HTTP/1.1\r\nHost: herald\r\n\r\n", "HTTP/1.1 400 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newRecorders(false)
			c := dial(t, startWSServer(t, rs.accept, tc.opts))
			start := time.Now()
			if _, err := io.WriteString(c, tc.request); err != nil {
				t.Fatal(err)
			}
			got := expectEOF(t, c)
			if d := time.Since(start); d < short/2 {
				t.Errorf("closed after %v, before the %v timeout", d, short)
			}
			if !strings.HasPrefix(string(got), tc.wantReply) {
				t.Errorf("answered %q, want %q first", got, tc.wantReply)
			}
		})
	}
}

// TestWebSocketServerTimeoutsSpareUpgradedConnections proves that the
// timeouts that bound a request do not apply once it is upgraded.
func TestWebSocketServerTimeoutsSpareUpgradedConnections(t *testing.T) {
	const short = 200 * time.Millisecond
	rs := newRecorders(true)
	ws := dialWS(t, "ws://"+startWSServer(t, rs.accept, WSOptions{ReadTimeout: short, IdleTimeout: short})+"/mqtt", nil)
	rs.next(t)
	for end := time.Now().Add(5 * short); time.Now().Before(end); time.Sleep(short / 4) {
		if err := ws.WriteMessage(websocket.BinaryMessage, []byte{0xc0, 0x00}); err != nil {
			t.Fatal(err)
		}
		readWS(t, ws, 2)
	}
}

// tlsListener serves accept over TLS with client certificates verified
// against ca when given.
func tlsListener(t *testing.T, ca *testcert.CA, accept Accepter) string {
	t.Helper()
	conf := &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Serve(ctx, tls.NewListener(l, conf), accept) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

type certCN interface{ PeerCertificateCN() string }

func TestTLSPeerCertificateCN(t *testing.T) {
	ca := testcert.NewCA(t, "herald test CA")
	other := testcert.NewCA(t, "someone else's CA")
	rs := newRecorders(false)
	addr := tlsListener(t, ca, rs.accept)
	for _, tc := range []struct {
		name   string
		certs  []tls.Certificate
		want   string
		refuse bool
	}{
		{"verified client certificate", []tls.Certificate{ca.Client(t, "alice")}, "alice", false},
		{"no client certificate", nil, "", false},
		{"certificate from an unknown CA", []tls.Certificate{other.Client(t, "mallory")}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
			if tc.certs != nil {
				// Send the certificate even when its issuer is not one
				// the server asks for (crypto/tls would send none).
				conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc.certs[0], nil }
			}
			c, err := tls.Dial("tcp", addr, conf)
			if err == nil {
				defer c.Close()
				// TLS 1.3 reports the server's refusal of a client
				// certificate on the first read.
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, err = c.Read(make([]byte, 1))
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					err = nil
				}
			}
			if tc.refuse {
				if err == nil {
					t.Fatal("handshake with an unverifiable certificate succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			r := rs.next(t)
			cc, ok := r.conn.(certCN)
			if !ok {
				t.Fatalf("%T does not implement PeerCertificateCN", r.conn)
			}
			if got := cc.PeerCertificateCN(); got != tc.want {
				t.Errorf("PeerCertificateCN = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestWebSocketOverTLSPeerCertificateCN(t *testing.T) {
	ca := testcert.NewCA(t, "herald test CA")
	rs := newRecorders(false)
	srv := httptest.NewUnstartedServer(WebSocketHandler("/mqtt", rs.accept, WSOptions{}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t)}, ClientCAs: ca.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := "wss" + strings.TrimPrefix(srv.URL, "https") + "/mqtt"

	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		want  string
	}{
		{"verified client certificate", []tls.Certificate{ca.Client(t, "bob")}, "bob"},
		{"no client certificate", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, Certificates: tc.certs, ServerName: "localhost"}}
			ws := dialWS(t, url, d)
			r := rs.next(t)
			if got := r.conn.(certCN).PeerCertificateCN(); got != tc.want {
				t.Errorf("PeerCertificateCN = %q, want %q", got, tc.want)
			}
			ws.Close()
			select {
			case <-r.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("Handler.Closed not called")
			}
		})
	}
}
