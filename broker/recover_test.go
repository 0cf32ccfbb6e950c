package broker

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// A session that expired while the broker was down still owes its
// delayed will [MQTT-3.1.3-9]: recovery publishes it (to the sessions
// recovered with it) before deleting the session.
func TestRecoverPublishesTheWillOfASessionThatExpiredWhileDown(t *testing.T) {
	srv, st := storedServer(t, nil)
	long := time.Now().Add(-time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.SaveSession(&store.Session{ClientID: "listener", Username: "u", ExpiryInterval: store.NeverExpires,
		DisconnectedAt: long, Subscriptions: []store.Subscription{{Filter: "status/#", QoS: 1}}}))
	must(st.SaveSession(&store.Session{ClientID: "dev", ExpiryInterval: 60, DisconnectedAt: long,
		Will: &store.Message{Topic: "status/dev", Payload: []byte("gone"), QoS: 1}, WillDelay: 3600}))
	must(srv.Recover())
	srv.mu.Lock()
	listener, dev := srv.sessions.get("listener"), srv.sessions.get("dev")
	srv.mu.Unlock()
	if dev != nil {
		t.Fatal("the expired session was recovered")
	}
	if listener == nil {
		t.Fatal("the live session was not recovered")
	}
	listener.mu.Lock()
	queued := len(listener.out.queue)
	listener.mu.Unlock()
	if queued != 1 {
		t.Fatalf("the subscriber has %d queued messages, want the will", queued)
	}
	if sessions, _ := st.LoadSessions(); len(sessions) != 1 {
		t.Fatalf("%d stored sessions, want the expired one deleted", len(sessions))
	}
}

// A delayed will published after a restart, later than its delay ended
// (the broker was down then), keeps its whole Message Expiry Interval from
// that publication (v5 §3.1.3.2.4), whether its session expired while the
// broker was down or lives on: the record holds the expiry as counted from
// the end of the delay, and the will must not come out expired.
func TestRecoveredDelayedWillExpiryCountsFromPublication(t *testing.T) {
	srv, st := storedServer(t, nil)
	long := time.Now().Add(-time.Hour)
	will := func(topic string) *store.Message {
		// As detach stores it: 60 s delay, then a 10 s Message Expiry.
		return &store.Message{Topic: topic, Payload: []byte("gone"), QoS: 1, ExpiresAt: long.Add(70 * time.Second)}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.SaveSession(&store.Session{ClientID: "listener", ExpiryInterval: store.NeverExpires,
		DisconnectedAt: long, Subscriptions: []store.Subscription{{Filter: "status/#", QoS: 1}}}))
	must(st.SaveSession(&store.Session{ClientID: "expired", ExpiryInterval: 120, DisconnectedAt: long,
		Will: will("status/expired"), WillDelay: 60}))
	must(st.SaveSession(&store.Session{ClientID: "lives", ExpiryInterval: 7200, DisconnectedAt: long,
		Will: will("status/lives"), WillDelay: 60}))
	start := time.Now()
	must(srv.Recover())
	srv.mu.Lock()
	listener := srv.sessions.get("listener")
	srv.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		listener.mu.Lock()
		var got []*Message
		for _, d := range listener.out.queue {
			got = append(got, d.msg)
		}
		listener.mu.Unlock()
		if len(got) == 2 {
			for _, m := range got {
				if m.ExpiresAt.Before(start.Add(10*time.Second)) || m.ExpiresAt.After(time.Now().Add(10*time.Second)) {
					t.Errorf("will %q expires at %v, want 10 s after its publication (%v)", m.Topic, m.ExpiresAt, start)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber has %d queued wills, want 2", len(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A graceful stop saves every offline session again; the disconnect time
// it records stays the real one, so expiry and will delay do not restart
// with every restart.
func TestOfflineSessionKeepsItsDisconnectTimeWhenSavedAgain(t *testing.T) {
	srv, st := storedServer(t, nil)
	then := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	if err := st.SaveSession(&store.Session{ClientID: "s", ExpiryInterval: 3600, DisconnectedAt: then}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	sess := srv.sessions.get("s")
	srv.mu.Unlock()
	sess.persistState()
	sessions, err := st.LoadSessions()
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions %v %v", sessions, err)
	}
	if got := sessions[0].DisconnectedAt; !got.Equal(then) {
		t.Fatalf("saved again with DisconnectedAt %v, want the original %v", got, then)
	}
}

// A delayed will that has been published is gone from the stored session
// too: a crash afterwards must not publish it a second time on recovery.
func TestFiredWillLeavesTheStoredSession(t *testing.T) {
	srv, st := storedServer(t, nil)
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w", CleanStart: true,
		WillFlag: true, WillTopic: "status/w", WillPayload: []byte("gone"), WillQoS: 1,
		WillProps: packet.Properties{WillDelay: 1},
		Props:     packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
	c, _ := fakeClient(t, srv, p, "", 0)
	c.Closed(nil)
	if ss, _ := st.LoadSessions(); len(ss) != 1 || ss[0].Will == nil {
		t.Fatalf("stored before the delay: %+v, want the session with its will", ss)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss, _ := st.LoadSessions()
		if len(ss) == 1 && ss[0].Will == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stored after the will fired: %+v, want the session without its will", ss)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Retained updates reach the store in whatever order their writers run
// (a will at once, a client's publish after its group commit); the store
// must end with the update the index holds, the later one.
func TestRetainedStoreKeepsTheIndexOrder(t *testing.T) {
	srv, st := storedServer(t, nil)
	older := &Message{Topic: "status/x", Payload: []byte("online"), Retain: true}
	newer := &Message{Topic: "status/x", Payload: []byte("offline"), Retain: true}
	srv.retain(older)
	srv.retain(newer)
	if err := srv.storeRetained(newer); err != nil {
		t.Fatal(err)
	}
	if err := srv.storeRetained(older); err != nil {
		t.Fatal(err)
	}
	srv.commit.commit([]commitJob{{retained: older}}) // the committer's path, late too
	got, err := st.LoadRetained()
	if err != nil || len(got) != 1 || string(got[0].Payload) != "offline" {
		t.Fatalf("stored retained %v %v, want the newer update", got, err)
	}
}

// hookStore runs before once, the first time SaveSession is called.
type hookStore struct {
	*store.Memory
	before func()
}

func (h *hookStore) SaveSession(s *store.Session) error {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
	return h.Memory.SaveSession(s)
}

// A session that ends (its records deleted) while its record is being
// saved must not be left in the store by that save.
func TestSessionEndedDuringASaveIsNotResurrected(t *testing.T) {
	st := &hookStore{Memory: store.NewMemory()}
	srv := serverOn(t, st)
	sess := &session{srv: srv, id: "r", expiry: 60}
	st.before = func() { // the expiry timer ends it meanwhile
		sess.mu.Lock()
		sess.ended = true
		sess.mu.Unlock()
		srv.recordsMu.Lock()
		st.DeleteSession("r")
		srv.recordsMu.Unlock()
	}
	sess.persistState()
	if ss, _ := st.LoadSessions(); len(ss) != 0 {
		t.Fatalf("stored sessions %+v after the session ended, want none", ss)
	}
}

// A delivery recovered from the store holds the packet id derived from its
// sequence number; if a message in flight holds that id, it is sent with
// another, never two in flight sharing one [MQTT-2.2.1-3].
func TestRecoveredDeliveryDoesNotReuseAnIdInFlight(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "ids", CleanStart: false}
	c, cc := fakeClient(t, srv, p, "ids/t", 1)
	srv.Publish(&Message{Topic: "ids/t", QoS: 1, Payload: []byte("a")})
	first := publishes(t, cc.take(t))
	if len(first) != 1 {
		t.Fatal("the first message was not sent")
	}
	sess := c.sess
	sess.mu.Lock()
	clash := &delivery{msg: &Message{Topic: "ids/t", QoS: 1, Payload: []byte("b")}, qos: 1,
		pid: first[0].PacketID, ready: true, resend: true} // as recovered
	sess.out.queue = append(sess.out.queue, clash)
	sess.fill()
	sess.mu.Unlock()
	got := publishes(t, cc.take(t))
	if len(got) != 1 || got[0].PacketID == first[0].PacketID {
		t.Fatalf("sent %+v while id %d is in flight; want one PUBLISH with another id", got, first[0].PacketID)
	}
}

// failingStore fails every Commit.
type failingStore struct{ *store.Memory }

func (failingStore) Commit(*store.Batch) error { return errors.New("disk gone") }

// When the commit that should record an inbound QoS 2 id fails, the id is
// forgotten too: the client's retransmission on its next connection is a
// new PUBLISH to store and acknowledge, not a known id answered with a
// PUBREC for nothing stored.
func TestFailedCommitForgetsTheInboundQoS2Id(t *testing.T) {
	srv := serverOn(t, failingStore{store.NewMemory()})
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "f", CleanStart: false}
	c, _ := fakeClient(t, srv, p, "", 0)
	c.Data(mustEncode(t, packet.Version311, &packet.Publish{Topic: "t", QoS: 2, PacketID: 3, Payload: []byte("x")}))
	deadline := time.Now().Add(5 * time.Second)
	for c.sess.hasIncoming(3) {
		if time.Now().After(deadline) {
			t.Fatal("the id of a PUBLISH whose commit failed is still held")
		}
		time.Sleep(time.Millisecond)
	}
}

// [MQTT-3.3.2-5] A recovered message whose expiry interval passes before
// its onward delivery starts is deleted, with its record, and not sent
// when the subscriber comes back: the store says it was queued, not sent.
// The recovered delivery is resent with DUP in case a crash lost the
// record of its sending, but that must not exempt it from expiry. One that
// was in flight when the broker stopped has started onward delivery and is
// resent, expired or not.
func TestRecoveredQueuedMessageExpiresBeforeDelivery(t *testing.T) {
	srv, st := storedServer(t, nil)
	now := time.Now()
	soon := now.Add(200 * time.Millisecond)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.SaveSession(&store.Session{ClientID: "x", ExpiryInterval: store.NeverExpires, DisconnectedAt: now,
		Subscriptions: []store.Subscription{{Filter: "x/t", QoS: 1}}}))
	msg := func(seq uint64, payload string, expires time.Time, pid uint16, state store.State) store.Entry {
		return store.Entry{ClientID: "x", Msg: &store.Message{Seq: seq, Topic: "x/t", Payload: []byte(payload),
			QoS: 1, ExpiresAt: expires, Created: now, PacketID: pid, State: state}}
	}
	must(st.AppendMessages([]store.Entry{
		msg(1, "inflight", soon, 7, store.AwaitingAck),
		msg(2, "expired-while-down", now.Add(-time.Second), 0, store.Queued),
		msg(3, "expires-while-queued", soon, 0, store.Queued),
		msg(4, "kept", time.Time{}, 0, store.Queued),
	}))
	must(srv.Recover())
	time.Sleep(time.Until(soon) + 50*time.Millisecond)

	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "x", CleanStart: false,
		Props: packet.Properties{SessionExpiry: 0xFFFFFFFF, HasSessionExpiry: true}}
	_, cc := fakeClient(t, srv, p, "", 0)
	var got []string
	for _, pub := range publishes(t, cc.take(t)) {
		got = append(got, string(pub.Payload))
	}
	if want := []string{"inflight", "kept"}; !slices.Equal(got, want) {
		t.Fatalf("sent %q after the restart, want %q", got, want)
	}
	var stored []string
	msgs, err := st.LoadMessages("x")
	must(err)
	for _, m := range msgs {
		stored = append(stored, string(m.Payload))
	}
	if want := []string{"inflight", "kept"}; !slices.Equal(stored, want) {
		t.Fatalf("stored %q, want the expired queued messages' records deleted: %q", stored, want)
	}
}

// [MQTT-3.3.2-6] The Message Expiry Interval forwarded after a restart is
// the one received minus all the time the message waited, the time the
// broker was down included: the store keeps its deadline, not its interval.
func TestRecoveredMessageExpiryCountsTheDowntime(t *testing.T) {
	dir := t.TempDir()
	open := func() (*Server, *store.Pebble) {
		st, err := store.OpenPebble(dir, store.PebbleOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o := benchOptions()
		o.Store = st
		srv := New(o)
		if err := srv.Recover(); err != nil {
			t.Fatal(err)
		}
		return srv, st
	}
	sub := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "x", CleanStart: false,
		Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}}
	srv, _ := open()
	c, _ := fakeClient(t, srv, sub, "x/t", 1)
	c.Closed(nil)
	pub, pubConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "p", CleanStart: true}, "", 0)
	feed(t, pub, packet.Version5, &packet.Publish{Topic: "x/t", QoS: 1, PacketID: 1, Payload: []byte("m"),
		Props: packet.Properties{MessageExpiry: 3, HasMessageExpiry: true}})
	for deadline := time.Now().Add(5 * time.Second); len(pubConn.take(t)) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the publish was not acknowledged")
		}
	}
	pub.Closed(nil)
	shutdown(t, srv)
	time.Sleep(1100 * time.Millisecond) // down

	srv, _ = open()
	c, cc := fakeClient(t, srv, sub, "", 0)
	got := publishes(t, cc.take(t))
	c.Closed(nil)
	shutdown(t, srv)
	if len(got) != 1 || !got[0].Props.HasMessageExpiry {
		t.Fatalf("sent %+v after the restart, want the message with its expiry interval", got)
	}
	if left := got[0].Props.MessageExpiry; left < 1 || left > 2 {
		t.Fatalf("forwarded Message Expiry Interval %d after 1.1 s down, want 3 less the time waited (2, or 1 on a slow run)", left)
	}
}

// shutdown stops srv, failing the test if that takes more than 5 s (its
// fake clients must have been closed: it waits for them).
func shutdown(t *testing.T, srv *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil || ctx.Err() != nil {
		t.Fatalf("shutdown: %v %v", err, ctx.Err())
	}
}

// onceFailingStore fails its first Commit.
type onceFailingStore struct {
	*store.Memory
	failed atomic.Bool
}

func (s *onceFailingStore) Commit(b *store.Batch) error {
	if s.failed.CompareAndSwap(false, true) {
		return errors.New("disk hiccup")
	}
	return s.Memory.Commit(b)
}

// A QoS 2 PUBLISH whose commit failed is not acknowledged, and its
// publisher, disconnected, sends it again on its next connection, where
// it is a new message (its id forgotten). The copies that the failed
// commit was to make durable are not sent meanwhile: with the resent one,
// the subscriber would receive the message twice [MQTT-4.3.3-10].
func TestFailedCommitSendsNothingItsPublisherResends(t *testing.T) {
	srv := serverOn(t, &onceFailingStore{Memory: store.NewMemory()})
	_, subConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "s", CleanStart: false}, "t", 2)
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: false}
	pub, pubConn := fakeClient(t, srv, p, "", 0)
	msg := &packet.Publish{Topic: "t", QoS: 2, PacketID: 3, Payload: []byte("once")}
	pub.Data(mustEncode(t, packet.Version311, msg))
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		pubConn.mu.Lock()
		closed := pubConn.closed
		pubConn.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the publisher of a failed commit was not disconnected")
		}
	}
	if got := pubConn.take(t); len(got) != 0 {
		t.Fatalf("publisher got %v for a failed commit, want nothing", got)
	}
	pub.Closed(nil)
	pub2, pubConn2 := fakeClient(t, srv, p, "", 0)
	msg.Dup = true
	feed(t, pub2, packet.Version311, msg)
	var acks []packet.Packet
	for deadline := time.Now().Add(5 * time.Second); len(acks) == 0 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		acks = pubConn2.take(t)
	}
	if len(acks) != 1 || acks[0].Type() != packet.PUBREC {
		t.Fatalf("publisher got %v for its resent PUBLISH, want PUBREC", acks)
	}
	if got := publishes(t, subConn.take(t)); len(got) != 1 {
		t.Fatalf("subscriber got the message %d times, want once", len(got))
	}
}

// slowLoadStore takes its time loading one client id's messages, as a
// large store would.
type slowLoadStore struct {
	*store.Memory
	slow string
}

func (s *slowLoadStore) LoadMessages(id string) ([]*store.Message, error) {
	if id == s.slow {
		time.Sleep(200 * time.Millisecond)
	}
	return s.Memory.LoadMessages(id)
}

// A live session whose will delay ended while the broker was down owes
// its will at once [MQTT-3.1.3-9]; it goes, like the wills of sessions
// that expired, once every session is recovered: not before a subscriber
// is loaded (missed), nor into one whose subscriptions are installed and
// whose stored messages are still loading (the will, stored for it, then
// loaded as well: delivered twice).
func TestRecoveredDueWillReachesSessionsRecoveredAfterIt(t *testing.T) {
	st := &slowLoadStore{Memory: store.NewMemory(), slow: "listener"}
	srv := serverOn(t, st)
	long := time.Now().Add(-time.Hour)
	if err := st.SaveSession(&store.Session{ClientID: "dev", ExpiryInterval: 7200, DisconnectedAt: long,
		Will: &store.Message{Topic: "status/dev", Payload: []byte("gone"), QoS: 1}, WillDelay: 60}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveSession(&store.Session{ClientID: "listener", ExpiryInterval: store.NeverExpires,
		DisconnectedAt: long, Subscriptions: []store.Subscription{{Filter: "status/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	listener := srv.sessions.get("listener")
	srv.mu.Unlock()
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		listener.mu.Lock()
		queued := len(listener.out.queue)
		listener.mu.Unlock()
		if queued == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber has %d queued messages, want the will", queued)
		}
	}
}

// A retained message that expired while stored is deleted at recovery
// [MQTT-3.3.2-5], not loaded and skipped at every start; one still valid
// stays.
func TestRecoverDeletesExpiredRetained(t *testing.T) {
	st := store.NewMemory()
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	for topic, exp := range map[string]time.Time{"r/expired": past, "r/valid": future} {
		if err := st.SaveRetained(&store.Message{Topic: topic, Payload: []byte("x"), Retain: true, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
	}
	srv := serverOn(t, st)
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	got, err := st.LoadRetained()
	if err != nil || len(got) != 1 || got[0].Topic != "r/valid" {
		t.Fatalf("stored retained after recovery: %+v, %v; want r/valid only", got, err)
	}
	if _, ok := srv.retained.Get("r/expired"); ok {
		t.Fatal("the expired retained message was loaded")
	}
}

// saveFailingStore fails SaveSession while fail is set.
type saveFailingStore struct {
	*store.Memory
	fail atomic.Bool
}

func (s *saveFailingStore) SaveSession(r *store.Session) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.Memory.SaveSession(r)
}

// A SUBACK or UNSUBACK promises that the change is durable: when the
// session record cannot be written, the client is disconnected without it,
// as a publisher is whose commit failed, instead of being told its
// subscription survives a restart that will not know it.
func TestSubscribeNotStoredIsNotAcknowledged(t *testing.T) {
	for _, unsub := range []bool{false, true} {
		st := &saveFailingStore{Memory: store.NewMemory()}
		o := benchOptions()
		o.Store = st
		srv := New(o)
		p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "s", CleanStart: false}
		var c *client
		var cc *captureConn
		if unsub {
			c, cc = fakeClient(t, srv, p, "t", 1)
		} else {
			c, cc = fakeClient(t, srv, p, "", 0)
		}
		st.fail.Store(true)
		var req packet.Packet = &packet.Subscribe{PacketID: 2, Subscriptions: []packet.Subscription{{Filter: "u", QoS: 1}}}
		if unsub {
			req = &packet.Unsubscribe{PacketID: 2, Filters: []string{"t"}}
		}
		b, err := packet.Encode(nil, packet.Version311, req)
		if err != nil {
			t.Fatal(err)
		}
		c.Data(b)
		cc.mu.Lock()
		closed := cc.closed
		cc.mu.Unlock()
		if got := cc.take(t); len(got) != 0 || !closed {
			t.Errorf("unsubscribe %v: a change the store refused got %v, closed %v; want no acknowledgement and the connection closed", unsub, got, closed)
		}
		srv.cancel()
	}
}

// releaseFailingStore fails the first Commit that forgets an inbound id.
type releaseFailingStore struct {
	*store.Memory
	failed atomic.Bool
}

func (s *releaseFailingStore) Commit(b *store.Batch) error {
	if len(b.DeleteIncoming) > 0 && s.failed.CompareAndSwap(false, true) {
		return errors.New("disk full")
	}
	return s.Memory.Commit(b)
}

// When the commit that forgets an inbound QoS 2 id (PUBREL) fails, the id
// stays known: the publisher, disconnected without PUBCOMP, resends PUBREL
// on its next connection, and that one deletes the stored id. Otherwise
// the record outlives the flow and, loaded after a restart, makes the
// client's next PUBLISH with that id look like a retransmission: never
// delivered [MQTT-4.3.3-10].
func TestFailedReleaseCommitKeepsTheInboundQoS2Id(t *testing.T) {
	st := &releaseFailingStore{Memory: store.NewMemory()}
	srv := serverOn(t, st)
	p := &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: false}
	await := func(cc *captureConn, what string) []packet.Packet {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if got := cc.take(t); len(got) > 0 {
				return got
			}
		}
		t.Fatalf("no %s", what)
		return nil
	}
	pub, pubConn := fakeClient(t, srv, p, "", 0)
	feed(t, pub, packet.Version311, &packet.Publish{Topic: "t", QoS: 2, PacketID: 3, Payload: []byte("x")})
	await(pubConn, "PUBREC")
	feed(t, pub, packet.Version311, &packet.Ack{Kind: packet.PUBREL, PacketID: 3})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		pubConn.mu.Lock()
		closed := pubConn.closed
		pubConn.mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the publisher of a failed commit was not disconnected")
		}
	}
	pub.Closed(nil)
	pub2, pubConn2 := fakeClient(t, srv, p, "", 0)
	feed(t, pub2, packet.Version311, &packet.Ack{Kind: packet.PUBREL, PacketID: 3})
	await(pubConn2, "PUBCOMP")
	if ids, err := st.LoadIncoming("p"); err != nil || len(ids) != 0 {
		t.Fatalf("stored inbound ids %v %v after the resent PUBREL was completed, want none", ids, err)
	}
}

// Expired retained messages leave the index (memory and the retained
// gauge) and the store at the sweep; valid ones stay in both.
func TestExpiredRetainedLeaveMemoryAndStore(t *testing.T) {
	srv, st := storedServer(t, nil)
	now := time.Now()
	for _, m := range []*Message{
		{Topic: "ex/gone", Payload: []byte("x"), Retain: true, ExpiresAt: now.Add(-time.Second)},
		{Topic: "ex/kept", Payload: []byte("x"), Retain: true, ExpiresAt: now.Add(time.Hour)},
		{Topic: "ex/forever", Payload: []byte("x"), Retain: true},
	} {
		if err := srv.storeRetained(srv.retain(m)); err != nil {
			t.Fatal(err)
		}
	}
	srv.dropExpiredRetained(now)
	if _, ok := srv.retained.Get("ex/gone"); ok || srv.retained.Len() != 2 {
		t.Fatalf("after the sweep: %d retained, expired one present %v", srv.retained.Len(), ok)
	}
	stored, err := st.LoadRetained()
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored after the sweep: %d, %v; want the 2 valid ones", len(stored), err)
	}
	for _, m := range stored {
		if m.Topic == "ex/gone" {
			t.Fatal("the expired record is still stored")
		}
	}
}
