// Package e2e proves Herald's broker core end to end: an in-process broker
// on a real TCP listener, driven by third-party MQTT clients (paho.golang,
// paho.mqtt.golang, mosquitto_pub/sub) and by raw sockets speaking the
// project's own codec where exact bytes or malformed input matter. Each test
// names the spec statement it proves.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// Timeouts: long enough for a loaded CI machine under -race, short enough
// that a missing packet fails fast.
const (
	waitFor  = 3 * time.Second        // a packet that must arrive
	quietFor = 300 * time.Millisecond // a packet that must not arrive
)

// testBroker is one in-process broker on 127.0.0.1:0.
type testBroker struct {
	srv   *broker.Server
	addr  string
	store *store.Memory
	hooks *hookRecorder

	shutdownOnce sync.Once
	cancel       context.CancelFunc
	served       chan struct{}
}

// startBroker starts a broker with DefaultOptions, a memory store and a
// publish recorder, modified by mod. It shuts down in t.Cleanup.
func startBroker(t testing.TB, mod func(*broker.Options)) *testBroker {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.Store = store.NewMemory()
	opts.SysInterval = 0 // $SYS is tested explicitly
	rec := &hookRecorder{}
	opts.Hooks = []broker.Hook{rec}
	if mod != nil {
		mod(&opts)
	}
	srv := broker.New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb := &testBroker{srv: srv, addr: l.Addr().String(), hooks: rec, cancel: cancel, served: make(chan struct{})}
	if ms, ok := opts.Store.(*store.Memory); ok {
		tb.store = ms
	}
	go func() {
		defer close(tb.served)
		transport.Serve(ctx, l, srv.Accept("test"))
	}()
	t.Cleanup(func() { tb.shutdown(t) })
	return tb
}

// shutdown stops the broker (once) and its listener.
func (b *testBroker) shutdown(t testing.TB) {
	b.shutdownOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if err := b.srv.Shutdown(ctx); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Logf("shutdown: %v", err)
		}
		b.cancel()
		select {
		case <-b.served:
		case <-time.After(3 * time.Second):
			t.Errorf("transport.Serve did not return after shutdown")
		}
	})
}

// waitConnected waits until the broker counts n connected clients.
func (b *testBroker) waitConnected(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for b.srv.Stats().Connected.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients connected, want %d", b.srv.Stats().Connected.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hookRecorder is a broker.Hook that records every routed message.
type hookRecorder struct {
	mu   sync.Mutex
	msgs []*broker.Message
}

func (h *hookRecorder) OnPublish(_ *broker.ClientInfo, m *broker.Message) {
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
}

// waitTopic waits until a message on topic has been routed.
func (h *hookRecorder) waitTopic(t testing.TB, topic string, d time.Duration) *broker.Message {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		h.mu.Lock()
		for _, m := range h.msgs {
			if m.Topic == topic {
				h.mu.Unlock()
				return m
			}
		}
		h.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no message routed on %q within %v", topic, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *hookRecorder) count(topic string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

// rawClient speaks MQTT over a plain socket with the project's codec, for
// exact control of every packet.
type rawClient struct {
	t       testing.TB
	c       net.Conn
	version byte
	buf     []byte
}

func dialRaw(t testing.TB, addr string, version byte) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, c: c, version: version}
}

// send encodes and writes p.
func (r *rawClient) send(p packet.Packet) {
	r.t.Helper()
	b, err := packet.Encode(nil, r.version, p)
	if err != nil {
		r.t.Fatalf("encode %T: %v", p, err)
	}
	r.write(b)
}

// write writes raw bytes.
func (r *rawClient) write(b []byte) {
	r.t.Helper()
	r.c.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// recvFrame returns the next complete frame, or an error on timeout or EOF.
func (r *rawClient) recvFrame(d time.Duration) ([]byte, error) {
	deadline := time.Now().Add(d)
	for {
		n, err := packet.SplitFrame(r.buf, 0)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			f := append([]byte(nil), r.buf[:n]...)
			r.buf = r.buf[n:]
			return f, nil
		}
		r.c.SetReadDeadline(deadline)
		var tmp [64 << 10]byte
		m, err := r.c.Read(tmp[:])
		r.buf = append(r.buf, tmp[:m]...)
		if err != nil && m == 0 {
			return nil, err
		}
	}
}

// recv returns the next packet, or an error on timeout or EOF.
func (r *rawClient) recv(d time.Duration) (packet.Packet, error) {
	f, err := r.recvFrame(d)
	if err != nil {
		return nil, err
	}
	p, err := packet.Decode(r.version, f)
	if err != nil {
		return nil, fmt.Errorf("decode % x: %w", f, err)
	}
	return p, nil
}

// next returns the next packet or fails the test.
func (r *rawClient) next() packet.Packet {
	r.t.Helper()
	p, err := r.recv(waitFor)
	if err != nil {
		r.t.Fatalf("waiting for a packet: %v", err)
	}
	return p
}

// expect returns the next packet as a T or fails the test.
func expect[T packet.Packet](r *rawClient) T {
	r.t.Helper()
	p := r.next()
	v, ok := p.(T)
	if !ok {
		var zero T
		r.t.Fatalf("got %T %+v, want %T", p, p, zero)
	}
	return v
}

// expectAck returns the next packet, which must be an ack of kind.
func (r *rawClient) expectAck(kind packet.Type, pid uint16) *packet.Ack {
	r.t.Helper()
	a := expect[*packet.Ack](r)
	if a.Kind != kind || a.PacketID != pid {
		r.t.Fatalf("got %v id %d, want %v id %d", a.Kind, a.PacketID, kind, pid)
	}
	return a
}

// expectNothing asserts that no packet arrives for quietFor.
func (r *rawClient) expectNothing() {
	r.t.Helper()
	p, err := r.recv(quietFor)
	if err == nil {
		r.t.Fatalf("unexpected %T %+v", p, p)
	}
	if !isTimeout(err) {
		r.t.Fatalf("connection ended: %v", err)
	}
}

// expectClosed reads until the broker closes the connection and returns
// the packets that came before.
func (r *rawClient) expectClosed(d time.Duration) []packet.Packet {
	r.t.Helper()
	var got []packet.Packet
	deadline := time.Now().Add(d)
	for {
		p, err := r.recv(time.Until(deadline))
		if err == nil {
			got = append(got, p)
			continue
		}
		if isTimeout(err) {
			r.t.Fatalf("connection still open after %v (received %d packets)", d, len(got))
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			r.t.Fatalf("reading: %v", err)
		}
		return got
	}
}

// expectDisconnect asserts the broker sends a v5 DISCONNECT with code and
// closes the connection.
func (r *rawClient) expectDisconnect(code packet.ReasonCode, d time.Duration, alt ...packet.ReasonCode) {
	r.t.Helper()
	got := r.expectClosed(d)
	for _, p := range got {
		if dp, ok := p.(*packet.Disconnect); ok {
			if dp.ReasonCode != code && !slices.Contains(alt, dp.ReasonCode) {
				r.t.Fatalf("DISCONNECT reason 0x%02X, want 0x%02X", byte(dp.ReasonCode), byte(code))
			}
			return
		}
	}
	r.t.Fatalf("closed without DISCONNECT 0x%02X (got %v)", byte(code), got)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// connectRaw dials and completes CONNECT/CONNACK with p (version taken
// from p, protocol level 4 if unset), failing unless accepted.
func connectRaw(t testing.TB, addr string, p *packet.Connect) (*rawClient, *packet.Connack) {
	t.Helper()
	if p.ProtocolVersion == 0 {
		p.ProtocolVersion = packet.Version311
	}
	r := dialRaw(t, addr, p.ProtocolVersion)
	r.send(p)
	ack := expect[*packet.Connack](r)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK refused: 0x%02X %q", byte(ack.ReasonCode), ack.Props.ReasonString)
	}
	return r, ack
}

// v5 returns a clean-start v5 CONNECT for id.
func v5(id string) *packet.Connect {
	return &packet.Connect{ProtocolVersion: packet.Version5, ClientID: id, CleanStart: true}
}

// v311 returns a clean-session 3.1.1 CONNECT for id.
func v311(id string) *packet.Connect {
	return &packet.Connect{ProtocolVersion: packet.Version311, ClientID: id, CleanStart: true}
}

// subscribe sends SUBSCRIBE with one or more subscriptions and returns the
// SUBACK codes.
func (r *rawClient) subscribe(pid uint16, props packet.Properties, subs ...packet.Subscription) []packet.ReasonCode {
	r.t.Helper()
	r.send(&packet.Subscribe{PacketID: pid, Props: props, Subscriptions: subs})
	ack := expect[*packet.Suback](r)
	if ack.PacketID != pid {
		r.t.Fatalf("SUBACK id %d, want %d", ack.PacketID, pid)
	}
	return ack.ReasonCodes
}

// sub subscribes to one filter at qos and requires it to be granted.
func (r *rawClient) sub(filter string, qos byte) {
	r.t.Helper()
	codes := r.subscribe(1, packet.Properties{}, packet.Subscription{Filter: filter, QoS: qos})
	if len(codes) != 1 || codes[0] != packet.ReasonCode(qos) {
		r.t.Fatalf("SUBACK %v for %q, want granted QoS %d", codes, filter, qos)
	}
}

// publish sends a PUBLISH and completes its QoS flow from the sender side,
// returning the PUBACK/PUBREC reason code (Success for QoS 0).
func (r *rawClient) publish(p *packet.Publish) packet.ReasonCode {
	r.t.Helper()
	if p.QoS > 0 && p.PacketID == 0 {
		p.PacketID = 100
	}
	r.send(p)
	switch p.QoS {
	case 1:
		return r.expectAck(packet.PUBACK, p.PacketID).ReasonCode
	case 2:
		rc := r.expectAck(packet.PUBREC, p.PacketID).ReasonCode
		if rc >= 0x80 {
			return rc
		}
		r.send(&packet.Ack{Kind: packet.PUBREL, PacketID: p.PacketID})
		r.expectAck(packet.PUBCOMP, p.PacketID)
		return rc
	}
	return packet.Success
}

// recvPublish returns the next PUBLISH and acknowledges it per its QoS
// (completing QoS 2 through PUBCOMP).
func (r *rawClient) recvPublish() *packet.Publish {
	r.t.Helper()
	p := expect[*packet.Publish](r)
	r.ackPublish(p)
	return p
}

func (r *rawClient) ackPublish(p *packet.Publish) {
	r.t.Helper()
	switch p.QoS {
	case 1:
		r.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	case 2:
		r.send(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
		r.expectAck(packet.PUBREL, p.PacketID)
		r.send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p.PacketID})
	}
}

// disconnect sends a normal DISCONNECT and waits for the broker to close
// the connection [MQTT-3.14.4-1].
func (r *rawClient) disconnect() {
	r.t.Helper()
	r.send(&packet.Disconnect{})
	r.expectClosed(waitFor)
}

// pahoClient is a connected paho.golang (MQTT 5) client whose received
// publishes arrive on msgs.
type pahoClient struct {
	*paho.Client
	msgs        chan *paho.Publish
	disconnects chan *paho.Disconnect
	connack     *paho.Connack
}

// connectPaho connects a paho.golang client with cp (ClientID and
// KeepAlive as given; CleanStart as given).
func connectPaho(t testing.TB, addr string, cp *paho.Connect) *pahoClient {
	t.Helper()
	pc, err := dialPaho(t, addr, cp)
	if err != nil {
		t.Fatal(err)
	}
	return pc
}

func dialPaho(t testing.TB, addr string, cp *paho.Connect) (*pahoClient, error) {
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		return nil, err
	}
	pc := &pahoClient{msgs: make(chan *paho.Publish, 100), disconnects: make(chan *paho.Disconnect, 1)}
	pc.Client = paho.NewClient(paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			pc.msgs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case pc.disconnects <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := pc.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("paho connect: %w (connack %+v)", err, ack)
	}
	pc.connack = ack
	t.Cleanup(func() {
		pc.Disconnect(&paho.Disconnect{ReasonCode: 0})
		conn.Close()
	})
	return pc, nil
}

func (pc *pahoClient) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case m := <-pc.msgs:
		return m
	case <-time.After(waitFor):
		t.Fatal("paho: no message received")
		return nil
	}
}

func (pc *pahoClient) nothing(t testing.TB) {
	t.Helper()
	select {
	case m := <-pc.msgs:
		t.Fatalf("paho: unexpected message on %q: %q", m.Topic, m.Payload)
	case <-time.After(quietFor):
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func u32(v uint32) *uint32 { return &v }
func u16(v uint16) *uint16 { return &v }
