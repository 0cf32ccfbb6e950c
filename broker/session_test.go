package broker

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// captureConn is a transport.Conn that keeps what the broker writes, cut
// into packets, so the session state machine can be driven and observed
// without a network.
type captureConn struct {
	mu      sync.Mutex
	version byte
	buf     []byte
	closed  bool
	held    []packet.Packet // read by fakeClient past its CONNACK, returned by the next take
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, b...)
	return 0, nil
}
func (c *captureConn) Close() error         { c.mu.Lock(); c.closed = true; c.mu.Unlock(); return nil }
func (c *captureConn) RemoteAddr() net.Addr { return &net.TCPAddr{} }
func (c *captureConn) LocalAddr() net.Addr  { return &net.TCPAddr{} }

// take returns the packets written since the last call.
func (c *captureConn) take(t *testing.T) []packet.Packet {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.held
	c.held = nil
	for len(c.buf) > 0 {
		n, err := packet.SplitFrame(c.buf, 0)
		if err != nil || n == 0 {
			t.Fatalf("broker wrote a broken frame: %v (%d bytes left)", err, len(c.buf))
		}
		p, err := packet.Decode(c.version, c.buf[:n])
		if err != nil {
			t.Fatalf("broker wrote an undecodable packet: %v", err)
		}
		out = append(out, p)
		c.buf = c.buf[n:]
	}
	return out
}

// fakeClient is a connected client on a captureConn, accepted, and
// CONNECT and SUBSCRIBE done, through the real path. (Its Closed is the
// test's to call: Shutdown waits for it.)
func fakeClient(t *testing.T, srv *Server, p *packet.Connect, filter string, qos byte) (*client, *captureConn) {
	t.Helper()
	cc := &captureConn{version: p.ProtocolVersion}
	c := srv.Accept("unit")(cc).(*client)
	feed(t, c, p.ProtocolVersion, p)
	got := cc.take(t)
	if ack, ok := got[0].(*packet.Connack); !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK %+v", got[0])
	}
	cc.held = got[1:] // resent on resume, for the test to see
	if filter != "" {
		feed(t, c, p.ProtocolVersion, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
		cc.take(t)
	}
	return c, cc
}

// feed hands packets to the client's read side as the transport would.
func feed(t *testing.T, c *client, version byte, ps ...packet.Packet) {
	t.Helper()
	var b []byte
	for _, p := range ps {
		var err error
		if b, err = packet.Encode(b, version, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Data(b); err != nil {
		t.Fatalf("Data: %v", err)
	}
}

func publishes(t *testing.T, ps []packet.Packet) []*packet.Publish {
	t.Helper()
	var out []*packet.Publish
	for _, p := range ps {
		if pub, ok := p.(*packet.Publish); ok {
			out = append(out, pub)
		}
	}
	return out
}

// serverOn is a server with the default test options on st, stopped with
// the test.
func serverOn(t *testing.T, st store.Store) *Server {
	t.Helper()
	o := benchOptions()
	o.Store = st
	srv := New(o)
	t.Cleanup(srv.cancel)
	return srv
}

// storedServer is a server on a fresh memory store, stopped with the test.
func storedServer(t *testing.T, mod func(*Options)) (*Server, *store.Memory) {
	t.Helper()
	o := benchOptions()
	st := store.NewMemory()
	o.Store = st
	if mod != nil {
		mod(&o)
	}
	srv := New(o)
	t.Cleanup(srv.cancel)
	return srv, st
}

// awaitPublishes waits (5 s at most) for cc to receive PUBLISHes, which
// with a store come from the committer's goroutine, and returns them.
func awaitPublishes(t *testing.T, cc *captureConn) []*packet.Publish {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got := publishes(t, cc.take(t)); len(got) > 0 {
			return got
		}
	}
	return nil
}

// The outbound window: no more than the client's Receive Maximum in
// flight [MQTT-3.3.4-9]; each PUBACK lets exactly one queued message out,
// in order; packet ids of messages in flight are distinct [MQTT-2.2.1-3].
func TestOutboundWindowQueuesAndReleasesInOrder(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "sub", CleanStart: true,
		Props: packet.Properties{ReceiveMaximum: 2}}
	c, cc := fakeClient(t, srv, p, "w/t", 1)
	for i := range 5 {
		srv.Publish(&Message{Topic: "w/t", QoS: 1, Payload: []byte{byte('a' + i)}})
	}
	sent := publishes(t, cc.take(t))
	if len(sent) != 2 || string(sent[0].Payload) != "a" || string(sent[1].Payload) != "b" {
		t.Fatalf("sent %d publishes before any ack, want a and b", len(sent))
	}
	if sent[0].PacketID == sent[1].PacketID {
		t.Fatalf("two messages in flight share packet id %d", sent[0].PacketID)
	}
	if got := len(c.sess.out.queue); got != 3 {
		t.Fatalf("queue holds %d, want 3", got)
	}
	feed(t, c, packet.Version5, &packet.Ack{Kind: packet.PUBACK, PacketID: sent[0].PacketID})
	next := publishes(t, cc.take(t))
	if len(next) != 1 || string(next[0].Payload) != "c" {
		t.Fatalf("after one PUBACK sent %v, want c alone", next)
	}
	// A duplicate or unknown PUBACK changes nothing.
	feed(t, c, packet.Version5, &packet.Ack{Kind: packet.PUBACK, PacketID: sent[0].PacketID})
	if extra := publishes(t, cc.take(t)); len(extra) != 0 {
		t.Fatalf("a duplicate PUBACK released %d more", len(extra))
	}
}

// QoS 2 outbound: PUBREC is answered with PUBREL [MQTT-4.3.3-4], the id
// stays in flight until PUBCOMP, and a PUBREC with a failure code ends the
// flow without PUBREL.
func TestOutboundQoS2Flow(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "q2", CleanStart: true}
	c, cc := fakeClient(t, srv, p, "q/t", 2)
	srv.Publish(&Message{Topic: "q/t", QoS: 2, Payload: []byte("x")})
	srv.Publish(&Message{Topic: "q/t", QoS: 2, Payload: []byte("y")})
	sent := publishes(t, cc.take(t))
	if len(sent) != 2 {
		t.Fatalf("%d publishes, want 2", len(sent))
	}
	feed(t, c, packet.Version5, &packet.Ack{Kind: packet.PUBREC, PacketID: sent[0].PacketID})
	got := cc.take(t)
	if len(got) != 1 || got[0].Type() != packet.PUBREL || got[0].(*packet.Ack).PacketID != sent[0].PacketID {
		t.Fatalf("after PUBREC: %v, want PUBREL %d", got, sent[0].PacketID)
	}
	if len(c.sess.out.inflight) != 2 {
		t.Fatalf("%d in flight after PUBREC, want 2 (released until PUBCOMP)", len(c.sess.out.inflight))
	}
	feed(t, c, packet.Version5, &packet.Ack{Kind: packet.PUBCOMP, PacketID: sent[0].PacketID})
	feed(t, c, packet.Version5, &packet.Ack{Kind: packet.PUBREC, PacketID: sent[1].PacketID, ReasonCode: packet.UnspecifiedError})
	if got := cc.take(t); len(got) != 0 {
		t.Fatalf("PUBREC 0x80 answered with %v, want nothing", got)
	}
	if len(c.sess.out.inflight) != 0 {
		t.Fatalf("%d still in flight, want 0", len(c.sess.out.inflight))
	}
}

// Inbound QoS 2: a PUBLISH retransmitted before PUBREL is acknowledged
// again but not delivered again [MQTT-4.3.3-10]; PUBREL frees the id.
func TestInboundQoS2ExactlyOnce(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	_, subConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "s", CleanStart: true}, "in/t", 2)
	pub, pubConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: true}, "", 0)
	msg := &packet.Publish{Topic: "in/t", QoS: 2, PacketID: 9, Payload: []byte("once")}
	feed(t, pub, packet.Version311, msg)
	dup := *msg
	dup.Dup = true
	feed(t, pub, packet.Version311, &dup)
	acks := pubConn.take(t)
	if len(acks) != 2 || acks[0].Type() != packet.PUBREC || acks[1].Type() != packet.PUBREC {
		t.Fatalf("publisher got %v, want two PUBRECs", acks)
	}
	if n := len(publishes(t, subConn.take(t))); n != 1 {
		t.Fatalf("subscriber got the message %d times, want once", n)
	}
	feed(t, pub, packet.Version311, &packet.Ack{Kind: packet.PUBREL, PacketID: 9})
	if got := pubConn.take(t); len(got) != 1 || got[0].Type() != packet.PUBCOMP {
		t.Fatalf("PUBREL answered with %v, want PUBCOMP", got)
	}
	if pub.sess.hasIncoming(9) {
		t.Fatal("packet id 9 still held after PUBREL")
	}
}

// Reconnecting to a session resends what was in flight with DUP and the
// same packet ids, PUBREL for released ones, in order [MQTT-4.4.0-1].
func TestResumeResendsInflightWithDup(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "r", CleanStart: false}
	c, cc := fakeClient(t, srv, p, "r/t", 2)
	srv.Publish(&Message{Topic: "r/t", QoS: 2, Payload: []byte("1")})
	srv.Publish(&Message{Topic: "r/t", QoS: 2, Payload: []byte("2")})
	sent := publishes(t, cc.take(t))
	feed(t, c, packet.Version311, &packet.Ack{Kind: packet.PUBREC, PacketID: sent[0].PacketID})
	cc.take(t)
	c.Closed(nil)

	_, cc2 := fakeClient(t, srv, p, "", 0)
	got := cc2.take(t)
	if len(got) != 2 {
		t.Fatalf("on resume got %v, want PUBREL then PUBLISH", got)
	}
	if rel, ok := got[0].(*packet.Ack); !ok || rel.Kind != packet.PUBREL || rel.PacketID != sent[0].PacketID {
		t.Fatalf("first resent %v, want PUBREL %d", got[0], sent[0].PacketID)
	}
	if pub, ok := got[1].(*packet.Publish); !ok || !pub.Dup || pub.PacketID != sent[1].PacketID || string(pub.Payload) != "2" {
		t.Fatalf("second resent %+v, want PUBLISH %d with DUP", got[1], sent[1].PacketID)
	}
}

// The keepalive sweep reads the clock once and then checks every client: a
// packet that arrives in between carries a timestamp after the sweep's.
// That is no silence at all, not (by unsigned wrap-around) 49 days of it
// ([MQTT-3.1.2-24] in 3.1.1, the client's version here). A client silent
// for longer than 1.5 x its keep alive is still closed.
func TestKeepaliveSweepAfterAFreshPacket(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	c, cc := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "ka", CleanStart: true, KeepAlive: 10}, "", 0)
	now := srv.millis()
	c.lastPacket.Store(now + 5) // a packet just after the sweep's clock reading
	c.checkTimeouts(time.Now(), now)
	if cc.closed {
		t.Fatal("closed for a packet newer than the sweep")
	}
	c.lastPacket.Store(now - 14_000) // 14 s of silence: under 15 s
	c.checkTimeouts(time.Now(), now)
	if cc.closed {
		t.Fatal("closed after 14 s of silence with keep alive 10 s")
	}
	c.lastPacket.Store(now - 16_000)
	c.checkTimeouts(time.Now(), now)
	if !cc.closed {
		t.Fatal("still open after 16 s of silence with keep alive 10 s")
	}
}

// gateConn is a captureConn whose first Write (the CONNACK) waits for
// open, so a test can act while a connection is attached to its session
// but not yet acknowledged.
type gateConn struct {
	captureConn
	gated   atomic.Bool
	entered chan struct{}
	open    chan struct{}
}

func (c *gateConn) Write(b []byte) (int, error) {
	if c.gated.CompareAndSwap(false, true) {
		close(c.entered)
		<-c.open
	}
	return c.captureConn.Write(b)
}

// [MQTT-3.2.0-1] the first packet the server sends is CONNACK, and
// [MQTT-4.6.0-2..3] the session's messages keep their order: a message
// published while a resumed session's connection is attached but its
// CONNACK not yet written waits for resume, behind what was in flight.
func TestNothingSentBeforeConnackOnResume(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "g", CleanStart: false}
	c, cc := fakeClient(t, srv, p, "g/t", 1)
	srv.Publish(&Message{Topic: "g/t", QoS: 1, Payload: []byte("1")})
	first := publishes(t, cc.take(t))
	c.Closed(nil)

	gc := &gateConn{captureConn: captureConn{version: p.ProtocolVersion}, entered: make(chan struct{}), open: make(chan struct{})}
	c2 := newClient(srv, gc, "unit")
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b []byte
		b, _ = packet.Encode(b, p.ProtocolVersion, p)
		c2.Data(b)
	}()
	<-gc.entered // attached; CONNACK being written
	srv.Publish(&Message{Topic: "g/t", QoS: 1, Payload: []byte("2")})
	srv.Publish(&Message{Topic: "g/t", QoS: 0, Payload: []byte("q0")})
	close(gc.open)
	<-done
	got := gc.take(t)
	if len(got) == 0 {
		t.Fatal("nothing written")
	}
	if _, ok := got[0].(*packet.Connack); !ok {
		t.Fatalf("first packet %T, want CONNACK [MQTT-3.2.0-1]", got[0])
	}
	pubs := publishes(t, got)
	if len(pubs) != 2 || string(pubs[0].Payload) != "1" || !pubs[0].Dup || pubs[0].PacketID != first[0].PacketID || string(pubs[1].Payload) != "2" || pubs[1].Dup {
		t.Fatalf("after CONNACK got %d publishes %+v, want 1 (resent, DUP) then 2", len(pubs), pubs)
	}
}

// A session resumed with a smaller Receive Maximum gets no more PUBLISHes
// in flight than the new maximum [MQTT-3.3.4-9]: the rest follow, with DUP
// and their original packet ids [MQTT-4.4.0-1], as PUBACKs make room.
func TestResumeHonoursTheNewReceiveMaximum(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "rm", CleanStart: false,
		Props: packet.Properties{ReceiveMaximum: 10, SessionExpiry: 60, HasSessionExpiry: true}}
	c, cc := fakeClient(t, srv, p, "rm/t", 1)
	for i := range 10 {
		srv.Publish(&Message{Topic: "rm/t", QoS: 1, Payload: []byte{byte('a' + i)}})
	}
	sent := publishes(t, cc.take(t))
	if len(sent) != 10 {
		t.Fatalf("sent %d before the reconnect, want 10", len(sent))
	}
	c.Closed(nil)

	p.Props.ReceiveMaximum = 2
	c2, cc2 := fakeClient(t, srv, p, "", 0)
	var got []*packet.Publish
	for round := 0; round < 20 && len(got) < 10; round++ {
		batch := publishes(t, cc2.take(t))
		if len(batch) > 2 {
			t.Fatalf("%d PUBLISHes in flight after a reconnect with Receive Maximum 2", len(batch))
		}
		got = append(got, batch...)
		if len(batch) > 0 {
			feed(t, c2, packet.Version5, &packet.Ack{Kind: packet.PUBACK, PacketID: batch[0].PacketID})
			if len(batch) == 2 {
				// The second stays in flight: one place frees per PUBACK.
				feed(t, c2, packet.Version5, &packet.Ack{Kind: packet.PUBACK, PacketID: batch[1].PacketID})
			}
		}
	}
	if len(got) != 10 {
		t.Fatalf("resent %d of 10", len(got))
	}
	for i, pub := range got {
		if string(pub.Payload) != string(rune('a'+i)) || !pub.Dup || pub.PacketID != sent[i].PacketID {
			t.Fatalf("resend %d: %q dup=%v id %d, want %q with DUP and id %d", i, pub.Payload, pub.Dup, pub.PacketID, string(rune('a'+i)), sent[i].PacketID)
		}
	}
}

// A session's queue limit counts what a message holds, not only its
// payload: an empty payload with a 6 KB User Property is 6 KB queued.
func TestQueueLimitCountsProperties(t *testing.T) {
	o := benchOptions()
	o.MaxQueuedBytes = 10000
	srv := New(o)
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "qw", CleanStart: true,
		Props: packet.Properties{ReceiveMaximum: 1}}
	c, cc := fakeClient(t, srv, p, "qw/t", 1)
	big := strings.Repeat("v", 6000)
	for range 3 {
		srv.Publish(&Message{Topic: "qw/t", QoS: 1, UserProps: []packet.UserProperty{{Key: "k", Value: big}}})
	}
	cc.take(t)
	c.sess.mu.Lock()
	queued, bytes := len(c.sess.out.queue), c.sess.out.queuedBytes
	c.sess.mu.Unlock()
	if queued != 1 || bytes < 6000 || srv.Stats().DroppedQueueFull.Load() != 1 {
		t.Fatalf("queue holds %d messages, %d bytes, %d refused; want 1 (the one in flight aside), at least 6000 bytes, 1 refused",
			queued, bytes, srv.Stats().DroppedQueueFull.Load())
	}
}

// [MQTT-3.3.4-7] a v5 client may have at most Receive Maximum QoS 1 and 2
// PUBLISHes unanswered (no PUBACK, no PUBCOMP): acknowledgements still in
// the committer count, a QoS 2 id waiting for PUBREL counts, and one that
// is both counts once. One more is answered with DISCONNECT 0x93.
func TestReceiveMaximumCountsQoS1AndQoS2(t *testing.T) {
	// With a store: acknowledgements wait in the committer only with one.
	srv, _ := storedServer(t, func(o *Options) { o.ReceiveMaximum = 2 })
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "rx", CleanStart: true}
	c, cc := fakeClient(t, srv, p, "", 0)
	// A QoS 2 id waiting for PUBREL whose PUBREC is still in the committer.
	feed(t, c, packet.Version5, &packet.Publish{Topic: "a", QoS: 2, PacketID: 7})
	cc.take(t)
	c.pendingAcks.Add(1)
	c.ext().pendingUncounted.Add(1)
	if n := c.unacknowledgedIn(1); n != 1 {
		t.Fatalf("unacknowledged = %d, want 1 (the QoS 2 message counted once)", n)
	}
	feed(t, c, packet.Version5, &packet.Publish{Topic: "a", QoS: 1, PacketID: 8}) // the second: allowed
	c.pendingAcks.Add(1)                                                          // as if its PUBACK waited for the store
	if err := c.Data(mustEncode(t, packet.Version5, &packet.Publish{Topic: "a", QoS: 1, PacketID: 9})); err == nil {
		t.Fatal("a third unanswered QoS 1 PUBLISH under Receive Maximum 2 was accepted")
	}
	var disc *packet.Disconnect
	for _, q := range cc.take(t) {
		if d, ok := q.(*packet.Disconnect); ok {
			disc = d
		}
	}
	if disc == nil || disc.ReasonCode != packet.ReceiveMaximumExceeded {
		t.Fatalf("got DISCONNECT %+v, want reason 0x93 Receive Maximum exceeded", disc)
	}
}

func mustEncode(t *testing.T, version byte, p packet.Packet) []byte {
	t.Helper()
	b, err := packet.Encode(nil, version, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The same flow for a persistent session, whose inbound QoS 2 ids are
// stored: every acknowledgement goes through the committer, in order, and
// once PUBCOMP is out the id's record is gone too (a stale one would make
// a later PUBLISH reusing the id look like a retransmission after a
// restart, and be acknowledged without being delivered [MQTT-4.3.3-9]).
func TestInboundQoS2ExactlyOnceStored(t *testing.T) {
	srv, st := storedServer(t, nil)
	_, subConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "s", CleanStart: true}, "in/t", 2)
	pub, pubConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: false}, "", 0)
	msg := &packet.Publish{Topic: "in/t", QoS: 2, PacketID: 9, Payload: []byte("once")}
	dup := *msg
	dup.Dup = true
	feed(t, pub, packet.Version311, msg, &dup, &packet.Ack{Kind: packet.PUBREL, PacketID: 9})
	var acks []packet.Packet
	for deadline := time.Now().Add(5 * time.Second); len(acks) < 3 && time.Now().Before(deadline); {
		acks = append(acks, pubConn.take(t)...)
		time.Sleep(time.Millisecond)
	}
	if len(acks) != 3 || acks[0].Type() != packet.PUBREC || acks[1].Type() != packet.PUBREC || acks[2].Type() != packet.PUBCOMP {
		t.Fatalf("publisher got %v, want PUBREC, PUBREC, PUBCOMP", acks)
	}
	if n := len(publishes(t, subConn.take(t))); n != 1 {
		t.Fatalf("subscriber got the message %d times, want once", n)
	}
	if ids, err := st.LoadIncoming("p"); err != nil || len(ids) != 0 {
		t.Fatalf("stored inbound ids after PUBCOMP: %v %v, want none", ids, err)
	}
}

// A late PUBACK read on a connection whose session a Clean Start has ended
// must not delete a record of the new session that took the client id and,
// starting again from sequence 1, the same key.
func TestLateAckOnEndedSessionKeepsTheNewSessionsRecord(t *testing.T) {
	srv, st := storedServer(t, nil)
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "x", CleanStart: true,
		Props: packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
	old, oldConn := fakeClient(t, srv, p, "x/t", 1)
	srv.Publish(&Message{Topic: "x/t", QoS: 1, Payload: []byte("old")})
	sent := awaitPublishes(t, oldConn)
	if len(sent) != 1 {
		t.Fatal("the first session's message was not sent")
	}
	_, cc2 := fakeClient(t, srv, p, "x/t", 1) // Clean Start: the first session ends
	srv.Publish(&Message{Topic: "x/t", QoS: 1, Payload: []byte("new")})
	got := awaitPublishes(t, cc2)
	if len(got) != 1 || got[0].PacketID != sent[0].PacketID {
		t.Fatalf("new session sent %+v; the test needs it to reuse packet id %d", got, sent[0].PacketID)
	}
	old.handleAck(&packet.Ack{Kind: packet.PUBACK, PacketID: sent[0].PacketID}) // late, on the ended session
	msgs, err := st.LoadMessages("x")
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "new" {
		t.Fatalf("stored messages of x: %d %v, want the new session's one", len(msgs), err)
	}
}

// An outbound QoS 2 message of a persistent session whose PUBREC came
// but whose released state is not yet durable gets no PUBREL, not even
// from a resumed connection; once the state is durable the PUBREL goes to
// the connection of that moment. (Sending it earlier, a crash would
// resend the PUBLISH to a client that had completed the flow.)
func TestPubrelWaitsForTheReleasedStateAcrossAReconnect(t *testing.T) {
	srv, _ := storedServer(t, nil)
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "q2", CleanStart: false}
	c, cc := fakeClient(t, srv, p, "q2/t", 2)
	srv.Publish(&Message{Topic: "q2/t", QoS: 2, Payload: []byte("m")})
	sent := awaitPublishes(t, cc)
	if len(sent) != 1 {
		t.Fatal("the message was not sent")
	}
	sess := c.sess
	sess.mu.Lock()
	d := sess.out.inflight[0]
	d.state = stateReleasing // as if its PUBREC's commit were still running
	sess.mu.Unlock()
	c.Closed(nil)

	_, cc2 := fakeClient(t, srv, p, "", 0)
	if got := cc2.take(t); len(got) != 0 {
		t.Fatalf("resume sent %v while the released state was not durable, want nothing", got)
	}
	sess.releaseDurable(d, true)
	got := cc2.take(t)
	if len(got) != 1 {
		t.Fatalf("after the commit got %v, want one PUBREL", got)
	}
	if rel, ok := got[0].(*packet.Ack); !ok || rel.Kind != packet.PUBREL || rel.PacketID != sent[0].PacketID {
		t.Fatalf("after the commit got %v, want PUBREL %d", got[0], sent[0].PacketID)
	}
}

// The whole outbound QoS 2 flow of a persistent session, through the
// committer: PUBREC, then PUBREL once durable, PUBCOMP, record gone.
func TestOutboundQoS2FlowStored(t *testing.T) {
	srv, st := storedServer(t, nil)
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "q2s", CleanStart: false}
	c, cc := fakeClient(t, srv, p, "q2s/t", 2)
	srv.Publish(&Message{Topic: "q2s/t", QoS: 2, Payload: []byte("m")})
	wait := func() []packet.Packet {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if got := cc.take(t); len(got) > 0 {
				return got
			}
		}
		return nil
	}
	sent := publishes(t, wait())
	if len(sent) != 1 {
		t.Fatal("the message was not sent")
	}
	feed(t, c, packet.Version311, &packet.Ack{Kind: packet.PUBREC, PacketID: sent[0].PacketID})
	got := wait()
	if len(got) != 1 || got[0].Type() != packet.PUBREL {
		t.Fatalf("PUBREC answered with %v, want PUBREL", got)
	}
	feed(t, c, packet.Version311, &packet.Ack{Kind: packet.PUBCOMP, PacketID: sent[0].PacketID})
	if msgs, err := st.LoadMessages("q2s"); err != nil || len(msgs) != 0 {
		t.Fatalf("stored after PUBCOMP: %d %v, want none", len(msgs), err)
	}
}

// A SUBSCRIBE read on a connection after a Clean Start takeover ended its
// session [MQTT-3.1.2-4] installs nothing: the ended session would stay in
// the trie, never delivered to, and as a member of a shared group (still
// marked online) take its turn of the group's messages and drop them.
// (The transport would hand it over that late only in a race; the test
// feeds it to the old client's read side after the takeover.)
func TestSubscribeAfterTakeoverEndedTheSessionInstallsNothing(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	_, mc := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "m", CleanStart: true}, "$share/g/s/t", 1)
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "x", CleanStart: true}
	old, _ := fakeClient(t, srv, p, "", 0)
	fakeClient(t, srv, p, "", 0) // Clean Start: old's session ends
	old.Data(mustEncode(t, packet.Version5, &packet.Subscribe{PacketID: 2,
		Subscriptions: []packet.Subscription{{Filter: "$share/g/s/t", QoS: 1}}}))
	for i := range 4 {
		srv.Publish(&Message{Topic: "s/t", QoS: 1, Payload: []byte{byte('a' + i)}})
	}
	if got := publishes(t, mc.take(t)); len(got) != 4 {
		t.Fatalf("the group's live member got %d of 4 messages", len(got))
	}
	if n := srv.subs.Len(); n != 1 {
		t.Fatalf("%d subscriptions in the trie, want the live member's alone", n)
	}
}

// An expiry timer that fired just as a reconnect stopped it (its callback
// waiting for Server.mu) must not end the session's next offline period,
// which has its own full interval [MQTT-3.1.2-23].
func TestStaleExpiryTimerLeavesTheNextOfflinePeriod(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "stale", CleanStart: false,
		Props: packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
	c, _ := fakeClient(t, srv, p, "stale/t", 1)
	c.Closed(nil)
	sess := c.sess
	sess.mu.Lock()
	first := sess.offline
	sess.mu.Unlock()
	c2, _ := fakeClient(t, srv, p, "", 0)
	if c2.sess != sess {
		t.Fatal("the session was not resumed")
	}
	c2.Closed(nil)
	sess.expire(first) // the first period's timer, late
	sess.mu.Lock()
	ended := sess.ended
	sess.mu.Unlock()
	if ended {
		t.Fatal("a stale expiry timer ended the session's next offline period")
	}
	sess.mu.Lock()
	second := sess.offline
	sess.mu.Unlock()
	sess.expire(second) // the current period's timer does end it
	sess.mu.Lock()
	ended = sess.ended
	sess.mu.Unlock()
	if !ended {
		t.Fatal("the current period's expiry did not end the session")
	}
}

// A shared group whose members are all offline: the member picked may be
// one whose session has just ended but not yet left the trie. It refuses
// the message and the next member gets it, so that no QoS 1 message the
// publisher was acknowledged for is dropped [MQTT-4.8.2-2].
func TestSharedMessageSkipsAMemberWhoseSessionEnded(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	member := func(id string) *session {
		c, _ := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: id, CleanStart: true,
			Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}}, "$share/g/sk/t", 1)
		c.Closed(nil) // offline: the group prefers none
		return c.sess
	}
	live, gone := member("live"), member("gone")
	gone.mu.Lock()
	gone.ended = true // as endSessionLocked leaves it just before it unsubscribes
	gone.mu.Unlock()
	const n = 10
	for i := range n {
		srv.Publish(&Message{Topic: "sk/t", QoS: 1, Payload: []byte{byte(i)}})
	}
	live.mu.Lock()
	queued := len(live.out.queue)
	live.mu.Unlock()
	if queued != n {
		t.Fatalf("the live member holds %d of %d messages; the rest went to the ended session", queued, n)
	}
}
