//go:build linux

package client

import (
	"bytes"
	"context"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// fakeBroker accepts one connection, reads its CONNECT, and writes what
// script returns after it (CONNACK first), then does what then says.
func fakeBroker(t *testing.T, script []byte, then func(net.Conn)) Target {
	t.Helper()
	return fakeBrokerOn(t, &net.ListenConfig{}, script, then)
}

func fakeBrokerOn(t *testing.T, lc *net.ListenConfig, script []byte, then func(net.Conn)) Target {
	t.Helper()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		if _, err := c.Read(buf); err != nil { // the CONNECT, small enough for one read
			return
		}
		if _, err := c.Write(script); err != nil {
			return
		}
		then(c)
	}()
	return Target{Scheme: "tcp", Addr: ln.Addr().String()}
}

func encode(t *testing.T, ps ...packet.Packet) []byte {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = packet.Encode(b, packet.Version311, p); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func pollerFor(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller(2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func connectTo(t *testing.T, target Target) *Client {
	t.Helper()
	c, _, err := Connect(context.Background(), &Config{Target: target, Version: packet.Version311, ClientID: "p", CleanStart: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// What Connect read beyond the CONNACK (here a PUBLISH written with it)
// is handled once the client is on the poller; a frame larger than the
// client's 256-byte read buffer arrives whole; the broker closing the
// connection ends the client with the cause.
func TestPollerBufferedBigFrameAndHangup(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 100<<10)
	first := encode(t, &packet.Connack{}, &packet.Publish{Topic: "a", Payload: []byte("early")})
	gotEarly := make(chan struct{})
	target := fakeBroker(t, first, func(c net.Conn) {
		select { // nothing more arrives to make the early message's bytes readable
		case <-gotEarly:
		case <-time.After(5 * time.Second):
		}
		c.Write(encode(t, &packet.Publish{Topic: "b", Payload: big}))
		time.Sleep(100 * time.Millisecond)
	})
	c := connectTo(t, target)
	r := &recorder{msgs: make(chan *packet.Publish, 10), acks: make(chan packet.Type, 10)}
	ended := make(chan error, 2)
	if !c.ServeOn(pollerFor(t), r, func(err error) { ended <- err }) {
		t.Fatal("ServeOn refused a TCP client")
	}
	if m := within(t, r.msgs); m.Topic != "a" || string(m.Payload) != "early" {
		t.Fatalf("first message %q %q", m.Topic, m.Payload)
	}
	close(gotEarly)
	if m := within(t, r.msgs); m.Topic != "b" || !bytes.Equal(m.Payload, big) {
		t.Fatalf("second message %q, %d bytes", m.Topic, len(m.Payload))
	}
	if err := within(t, ended); Cause(err) != "closed" {
		t.Fatalf("ended with %v (%q), want the broker's close", err, Cause(err))
	}
	select {
	case err := <-ended:
		t.Fatalf("ended twice (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
}

// Close and Disconnect end a client with nil, once; closing the poller
// ends the clients it still serves with an error.
func TestPollerEnds(t *testing.T) {
	hold := func(c net.Conn) { c.Read(make([]byte, 64)); c.Read(make([]byte, 64)) }
	p := pollerFor(t)
	r := &recorder{msgs: make(chan *packet.Publish, 10), acks: make(chan packet.Type, 10)}
	for _, how := range []string{"close", "disconnect"} {
		c := connectTo(t, fakeBroker(t, encode(t, &packet.Connack{}), func(c net.Conn) {
			c.Write(encode(t, &packet.Publish{Topic: "t"}))
			hold(c)
		}))
		ended := make(chan error, 2)
		c.ServeOn(p, r, func(err error) { ended <- err })
		within(t, r.msgs) // served: on the loop's list, or in its epoll set
		if how == "close" {
			c.Close()
		} else {
			c.Disconnect()
		}
		if err := within(t, ended); err != nil {
			t.Errorf("%s: ended with %v, want nil", how, err)
		}
		select {
		case err := <-ended:
			t.Fatalf("%s: ended twice (%v)", how, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c := connectTo(t, fakeBroker(t, encode(t, &packet.Connack{}), hold))
	ended := make(chan error, 2)
	c.ServeOn(p, r, func(err error) { ended <- err })
	time.Sleep(20 * time.Millisecond) // registered
	p.Close()
	if err := within(t, ended); err != errPollerClosed {
		t.Errorf("poller closed: ended with %v", err)
	}
	c2 := connectTo(t, fakeBroker(t, encode(t, &packet.Connack{}), hold))
	c2.ServeOn(p, r, func(err error) { ended <- err })
	if err := within(t, ended); err != errPollerClosed {
		t.Errorf("served after the poller closed: ended with %v", err)
	}
}

type counter struct{ n atomic.Int64 }

func (c *counter) Message(*packet.Publish, time.Time)              { c.n.Add(1) }
func (c *counter) Acked(packet.Type, time.Duration, packet.Packet) {}

// A loop never blocks on a write: a broker that floods a client with QoS 1
// messages and never reads its PUBACKs fills the client's socket, and the
// other client of the same (single) loop is still served.
func TestPollerLoopDoesNotBlockOnAWrite(t *testing.T) {
	p, err := NewPoller(1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var flood []byte
	for range 100_000 {
		flood, _ = packet.Encode(flood, packet.Version311, &packet.Publish{Topic: "f", QoS: 1, PacketID: 1})
	}
	flooded := &counter{}
	// The broker's receive buffer is as small as the kernel allows, from
	// the handshake on (accepted sockets inherit it), and it never reads:
	// the client's socket fills with PUBACKs after about 4 MB (tcp_wmem's
	// maximum here), a million of them.
	small := &net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	a := connectTo(t, fakeBrokerOn(t, small, encode(t, &packet.Connack{}), func(c net.Conn) {
		for range 20 {
			if _, err := c.Write(flood); err != nil {
				return
			}
		}
		time.Sleep(30 * time.Second)
	}))
	a.ServeOn(p, flooded, func(error) {})
	const enough = 1_500_000
	deadline := time.Now().Add(30 * time.Second)
	for flooded.n.Load() < enough && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := flooded.n.Load(); n < enough {
		t.Fatalf("the flooded client got only %d messages in 30s", n)
	}
	r := &recorder{msgs: make(chan *packet.Publish, 10), acks: make(chan packet.Type, 10)}
	b := connectTo(t, fakeBroker(t, encode(t, &packet.Connack{}, &packet.Publish{Topic: "b"}), func(c net.Conn) { c.Read(make([]byte, 64)) }))
	defer b.Close()
	b.ServeOn(p, r, func(error) {})
	if m := within(t, r.msgs); m.Topic != "b" {
		t.Fatalf("got %q", m.Topic)
	}
}
