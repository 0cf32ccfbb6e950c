package listenertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/transport"
)

// waitFor is long enough for a loaded CI machine under -race, short enough
// that a missing packet fails fast.
const waitFor = 5 * time.Second

func timeAfter() <-chan time.Time { return time.After(waitFor) }

// ctxT is a context that ends after waitFor or with the test.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// testBroker is an in-process broker; its listeners are added per test and
// stop in t.Cleanup.
type testBroker struct {
	srv *broker.Server
	ctx context.Context
}

// startBroker starts a broker with DefaultOptions and a memory store,
// modified by mod.
func startBroker(t testing.TB, mod func(*broker.Options)) *testBroker {
	t.Helper()
	opts := mqtttest.Options()
	if mod != nil {
		mod(&opts)
	}
	srv := broker.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
	})
	return &testBroker{srv: srv, ctx: ctx}
}

// accepter is the broker's Accepter for listener name, behind limit (nil
// for none).
func (b *testBroker) accepter(name string, limit *transport.ConnLimit) transport.Accepter {
	return limit.Accepter(b.srv.Accept(name))
}

// serveTCP adds a plain TCP listener on the epoll transport, as herald
// serve does, and returns its address.
func (b *testBroker) serveTCP(t testing.TB, name string, limit *transport.ConnLimit) string {
	t.Helper()
	es, err := transport.ListenEpoll(b.ctx, "127.0.0.1:0", transport.EpollOptions{}, b.accepter(name, limit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { es.Close() })
	return es.Addr().String()
}

// serveTLS adds a TLS listener with conf and returns its address.
func (b *testBroker) serveTLS(t testing.TB, name string, conf *tls.Config, limit *transport.ConnLimit) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		transport.Serve(b.ctx, tls.NewListener(l, conf), b.accepter(name, limit))
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return l.Addr().String()
}

// serveWS adds a WebSocket listener on /mqtt, served by
// transport.WebSocketServer as herald serve does, over TLS when conf is
// not nil, and returns its ws:// or wss:// URL.
func (b *testBroker) serveWS(t testing.TB, name string, conf *tls.Config, limit *transport.ConnLimit) string {
	t.Helper()
	return b.serveWSWith(t, name, conf, limit, transport.WSOptions{})
}

// serveWSWith is serveWS with opts.
func (b *testBroker) serveWSWith(t testing.TB, name string, conf *tls.Config, limit *transport.ConnLimit, opts transport.WSOptions) string {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	hs.Config = transport.WebSocketServer(b.ctx, "/mqtt", b.accepter(name, limit), opts)
	if conf != nil {
		hs.TLS = conf
		hs.StartTLS()
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + "/mqtt"
}

// v5Client is a connected paho.golang client whose received publishes
// arrive on msgs.
type v5Client struct {
	*paho.Client
	msgs chan *paho.Publish
}

// connectV5 runs MQTT 5 over conn. A refused CONNECT returns the CONNACK's
// reason code in the error.
func connectV5(t testing.TB, conn net.Conn, cp *paho.Connect) (*v5Client, error) {
	t.Helper()
	c := &v5Client{msgs: make(chan *paho.Publish, 16)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     packets.NewThreadSafeConn(conn), // paho writes a packet in several Writes, from more than one goroutine
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- pr.Packet
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		if ack != nil {
			return nil, fmt.Errorf("connect refused with 0x%02x: %w", ack.ReasonCode, err)
		}
		return nil, err
	}
	t.Cleanup(func() {
		c.Disconnect(&paho.Disconnect{})
		conn.Close()
	})
	return c, nil
}

// roundTrip subscribes to topic at QoS 1, publishes payload to it and
// waits for it to come back.
func (c *v5Client) roundTrip(t testing.TB, topic, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic, QoS: 1}}})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if len(sa.Reasons) != 1 || sa.Reasons[0] != 1 {
		t.Fatalf("SUBACK reasons %v, want [1]", sa.Reasons)
	}
	if _, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case m := <-c.msgs:
		if m.Topic != topic || string(m.Payload) != payload {
			t.Fatalf("received %q on %q, want %q on %q", m.Payload, m.Topic, payload, topic)
		}
	case <-time.After(waitFor):
		t.Fatal("own publish not received")
	}
}

// connect311 connects a paho.mqtt.golang client (MQTT 3.1.1, no automatic
// reconnection) to url: tcp://, ssl://, ws:// or wss://. mod may change
// its options.
func connect311(t testing.TB, url, clientID string, conf *tls.Config, mod ...func(*mqtt.ClientOptions)) (mqtt.Client, error) {
	t.Helper()
	opts := mqtt.NewClientOptions().
		AddBroker(url).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetConnectTimeout(waitFor).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetTLSConfig(conf)
	for _, m := range mod {
		m(opts)
	}
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, errors.New("paho.mqtt.golang: connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// roundTrip311 subscribes c to topic at QoS 1, publishes payload and waits
// for it to come back.
func roundTrip311(t testing.TB, c mqtt.Client, topic, payload string) {
	t.Helper()
	got := make(chan mqtt.Message, 1)
	tok := c.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m })
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if granted := tok.(*mqtt.SubscribeToken).Result()[topic]; granted != 1 {
		t.Fatalf("granted QoS %d, want 1", granted)
	}
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-got:
		if m.Topic() != topic || string(m.Payload()) != payload {
			t.Fatalf("received %q on %q, want %q on %q", m.Payload(), m.Topic(), payload, topic)
		}
	case <-time.After(waitFor):
		t.Fatal("own publish not received")
	}
}

// dialWS opens a WebSocket with the subprotocol "mqtt" and returns it as a
// net.Conn carrying the MQTT byte stream, for paho.golang, which has no
// WebSocket transport of its own.
func dialWS(t testing.TB, url string, conf *tls.Config) (net.Conn, error) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: waitFor, TLSClientConfig: conf}
	ws, resp, err := d.Dial(url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	if p := ws.Subprotocol(); p != "mqtt" {
		ws.Close()
		return nil, fmt.Errorf("server chose subprotocol %q", p)
	}
	return &wsStream{Conn: ws}, nil
}

// wsStream is the client side of MQTT over WebSocket as a net.Conn: each
// Write is one binary message, Read runs across message boundaries.
//
// paho.golang writes a packet with several Writes (header, then body) and
// from more than one goroutine (the pinger); it holds the connection's
// sync.Locker across one packet's Writes, as autopaho's own WebSocket
// connector provides. Without it a PINGREQ can land inside a SUBSCRIBE.
type wsStream struct {
	*websocket.Conn
	r          io.Reader
	sync.Mutex // paho.golang's per-packet lock
	wmu        sync.Mutex
}

func (s *wsStream) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			typ, r, err := s.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errors.New("non-binary message")
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if errors.Is(err, io.EOF) {
			s.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (s *wsStream) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *wsStream) SetDeadline(t time.Time) error {
	return s.NetConn().SetDeadline(t)
}

// httpStatus returns the status of a WebSocket upgrade of url offering
// subprotocols, or 101 if it succeeded.
func httpStatus(t testing.TB, url string, subprotocols []string) int {
	t.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: waitFor}
	ws, resp, err := d.Dial(url, nil)
	if err == nil {
		ws.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return resp.StatusCode
}

// dialTCP opens a plain TCP connection to addr.
func dialTCP(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, waitFor) }
