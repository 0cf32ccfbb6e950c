// Package e2e proves Herald's broker core end to end: an in-process broker
// on a real TCP listener, driven by third-party MQTT clients (paho.golang,
// paho.mqtt.golang, mosquitto_pub/sub) and by raw sockets speaking the
// project's own codec where exact bytes or malformed input matter. Each test
// names the spec statement it proves.
package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// Timeouts: long enough for a loaded CI machine under -race, short enough
// that a missing packet fails fast.
const (
	waitFor  = 3 * time.Second        // a packet that must arrive
	quietFor = 300 * time.Millisecond // a packet that must not arrive
)

// testBroker is one in-process broker on 127.0.0.1:0.
type testBroker struct {
	*mqtttest.Broker
	hooks *hookRecorder
}

// startBroker starts a broker with DefaultOptions, a memory store and a
// publish recorder, modified by mod. It shuts down in t.Cleanup.
func startBroker(t testing.TB, mod func(*broker.Options)) *testBroker {
	t.Helper()
	opts := mqtttest.Options() // $SYS is tested explicitly
	rec := &hookRecorder{}
	opts.Hooks = []broker.Hook{rec}
	if mod != nil {
		mod(&opts)
	}
	srv := broker.New(opts)
	if err := srv.Recover(); err != nil { // as herald serve does; starts $SYS
		t.Fatal(err)
	}
	return &testBroker{Broker: mqtttest.Serve(t, srv, "test"), hooks: rec}
}

// waitConnected waits until the broker counts n connected clients.
func (b *testBroker) waitConnected(t testing.TB, n int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for b.Server.Stats().Connected.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients connected, want %d", b.Server.Stats().Connected.Load(), n)
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

// dialRaw is mqtttest.Dial with this package's timeouts.
func dialRaw(t testing.TB, addr string, version byte) *mqtttest.Client {
	t.Helper()
	r := mqtttest.Dial(t, addr, version)
	r.Wait, r.Quiet = waitFor, quietFor
	return r
}

// connectRaw is mqtttest.Connect with this package's timeouts: it dials
// and completes CONNECT/CONNACK with p (protocol level 4 if unset),
// failing unless accepted.
func connectRaw(t testing.TB, addr string, p *packet.Connect) (*mqtttest.Client, *packet.Connack) {
	t.Helper()
	if p.ProtocolVersion == 0 {
		p.ProtocolVersion = packet.Version311
	}
	r := dialRaw(t, addr, p.ProtocolVersion)
	return r, r.Connect(p)
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
		Conn:     packets.NewThreadSafeConn(conn), // paho writes a packet in several Writes, from more than one goroutine
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
