package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/bench/internal/mosquitto"
	"github.com/herald-mqtt/herald/packet"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		forceTLS bool
		want     Target
	}{
		{"127.0.0.1:1883", false, Target{Scheme: "tcp", Addr: "127.0.0.1:1883"}},
		{"127.0.0.1", false, Target{Scheme: "tcp", Addr: "127.0.0.1:1883"}},
		{"127.0.0.1", true, Target{Scheme: "tls", Addr: "127.0.0.1:8883"}},
		{"mqtts://localhost", false, Target{Scheme: "tls", Addr: "localhost:8883"}},
		{"ws://127.0.0.1:9001", false, Target{Scheme: "ws", Addr: "127.0.0.1:9001", URL: "ws://127.0.0.1:9001/mqtt"}},
		{"ws://127.0.0.1:9001/x", true, Target{Scheme: "wss", Addr: "127.0.0.1:9001", URL: "wss://127.0.0.1:9001/x"}},
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.in, tc.forceTLS)
		if err != nil || got != tc.want {
			t.Errorf("ParseTarget(%q, %v) = %+v, %v; want %+v", tc.in, tc.forceTLS, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "http://x", "tcp://"} {
		if _, err := ParseTarget(bad, false); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
}

func TestCause(t *testing.T) {
	for err, want := range map[error]string{
		&ConnackError{Code: packet.NotAuthorized}:         "connack 0x87",
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED):      "refused",
		fmt.Errorf("read: %w", io.EOF):                    "closed",
		context.DeadlineExceeded:                          "timeout",
		fmt.Errorf("x: %w", errServerDisconnect):          "server disconnect",
		errors.New("tls: bad certificate"):                "tls",
		&net.OpError{Op: "dial", Err: syscall.EMFILE}:     "too many open files",
		&net.OpError{Op: "dial", Err: syscall.ECONNRESET}: "reset",
	} {
		if got := Cause(err); got != want {
			t.Errorf("Cause(%v) = %q, want %q", err, got, want)
		}
	}
}

type recorder struct {
	msgs chan *packet.Publish
	acks chan packet.Type
}

func (r *recorder) Message(p *packet.Publish, _ time.Time) {
	q := *p
	q.Payload = append([]byte(nil), p.Payload...)
	r.msgs <- &q
}

func (r *recorder) Acked(kind packet.Type, _ time.Duration, _ packet.Packet) { r.acks <- kind }

// readLoops runs f once with each way of running clients' read sides: a
// goroutine per client (Serve) and a Poller.
func readLoops(t *testing.T, f func(t *testing.T, serve func(*Client, Handler))) {
	t.Run("goroutine", func(t *testing.T) {
		f(t, func(c *Client, h Handler) { go c.Serve(h) })
	})
	t.Run("poller", func(t *testing.T) {
		p, err := NewPoller(2)
		if err != nil {
			t.Skip(err) // not Linux
		}
		defer p.Close()
		f(t, func(c *Client, h Handler) {
			if !c.ServeOn(p, h, func(error) {}) {
				t.Fatal("ServeOn refused a TCP client")
			}
		})
	})
}

func TestPublishSubscribeEachQoSBothVersions(t *testing.T) {
	target, err := ParseTarget(mosquitto.Start(t), false)
	if err != nil {
		t.Fatal(err)
	}
	readLoops(t, func(t *testing.T, serve func(*Client, Handler)) {
		testPublishSubscribe(t, target, serve)
	})
}

func testPublishSubscribe(t *testing.T, target Target, serve func(*Client, Handler)) {
	for _, version := range []byte{packet.Version311, packet.Version5} {
		for qos := byte(0); qos <= 2; qos++ {
			t.Run(fmt.Sprintf("v%d qos%d", version, qos), func(t *testing.T) {
				ctx := context.Background()
				cfg := func(id string) *Config {
					return &Config{Target: target, Version: version, ClientID: id, CleanStart: true, KeepAlive: 30, Timeout: 5 * time.Second}
				}
				topic := fmt.Sprintf("client-test/%d/%d", version, qos)
				sub, _, err := Connect(ctx, cfg(fmt.Sprintf("sub-%d-%d", version, qos)))
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Disconnect()
				rs := &recorder{msgs: make(chan *packet.Publish, 10), acks: make(chan packet.Type, 10)}
				serve(sub, rs)
				if err := sub.Subscribe([]packet.Subscription{{Filter: topic, QoS: qos}}); err != nil {
					t.Fatal(err)
				}
				if k := within(t, rs.acks); k != packet.SUBACK {
					t.Fatalf("got %v, want SUBACK", k)
				}
				pub, _, err := Connect(ctx, cfg(fmt.Sprintf("pub-%d-%d", version, qos)))
				if err != nil {
					t.Fatal(err)
				}
				defer pub.Disconnect()
				rp := &recorder{msgs: make(chan *packet.Publish, 10), acks: make(chan packet.Type, 10)}
				serve(pub, rp)
				for i := 0; i < 3; i++ {
					if err := pub.Publish(ctx, topic, qos, []byte{byte(i)}); err != nil {
						t.Fatal(err)
					}
				}
				want := map[byte]packet.Type{1: packet.PUBACK, 2: packet.PUBCOMP}[qos]
				for i := 0; i < 3; i++ {
					m := within(t, rs.msgs)
					if m.Topic != topic || m.QoS != qos || len(m.Payload) != 1 || m.Payload[0] != byte(i) {
						t.Errorf("message %d: %+v", i, m)
					}
					if qos > 0 {
						if k := within(t, rp.acks); k != want {
							t.Errorf("publisher got %v, want %v", k, want)
						}
					}
				}
			})
		}
	}
}

// A batch stops at the inflight window (ErrWindowFull); written, its
// acknowledgements make room and an empty batch waits for them: every
// message arrives, in order, and is acknowledged.
func TestBatchThroughASmallWindow(t *testing.T) {
	target, err := ParseTarget(mosquitto.Start(t), false)
	if err != nil {
		t.Fatal(err)
	}
	readLoops(t, func(t *testing.T, serve func(*Client, Handler)) {
		testBatch(t, target, serve)
	})
}

func testBatch(t *testing.T, target Target, serve func(*Client, Handler)) {
	ctx := context.Background()
	cfg := func(id string) *Config {
		return &Config{Target: target, Version: packet.Version311, ClientID: id, CleanStart: true, KeepAlive: 30,
			Timeout: 5 * time.Second, Inflight: 4}
	}
	const n = 50
	sub, _, err := Connect(ctx, cfg("batch-sub"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect()
	rs := &recorder{msgs: make(chan *packet.Publish, n), acks: make(chan packet.Type, n)}
	serve(sub, rs)
	if err := sub.Subscribe([]packet.Subscription{{Filter: "batch/t", QoS: 1}}); err != nil {
		t.Fatal(err)
	}
	within(t, rs.acks)
	pub, _, err := Connect(ctx, cfg("batch-pub"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Disconnect()
	rp := &recorder{msgs: make(chan *packet.Publish, n), acks: make(chan packet.Type, n)}
	serve(pub, rp)
	b := pub.NewBatch()
	full := 0
	for i := 0; i < n; {
		err := b.Add(ctx, "batch/t", 1, []byte{byte(i)})
		if err == ErrWindowFull {
			full++
			if b.Len() < 1 || b.Len() > 4 {
				t.Fatalf("window full with %d in the batch, window 4", b.Len())
			}
			if err := b.Flush(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		i++
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if full == 0 {
		t.Error("the window never filled")
	}
	for i := range n {
		if m := within(t, rs.msgs); len(m.Payload) != 1 || m.Payload[0] != byte(i) {
			t.Fatalf("message %d: %+v", i, m)
		}
		if k := within(t, rp.acks); k != packet.PUBACK {
			t.Fatalf("publisher got %v, want PUBACK", k)
		}
	}
}

// within receives from ch or fails the test after five seconds.
func within[T any](t *testing.T, ch chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing arrived within 5s")
	}
	panic("unreachable")
}
