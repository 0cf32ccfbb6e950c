package crashtest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

const (
	topicQoS1 = "crash/q1"
	topicQoS2 = "crash/q2"
)

// TestKillNineKeepsEveryAcknowledgedMessage is issue 4's crash test: two
// persistent subscribers (paho.golang with a session expiry, and
// paho.mqtt.golang 3.1.1 with clean session = false) go offline; a
// publisher streams QoS 1 and QoS 2 messages; herald is killed with SIGKILL
// mid-stream and restarted on the same data directory. Each subscriber
// resumes its session (session present = 1) and receives every message the
// broker acknowledged, QoS 1 at least once and QoS 2 exactly once, and the
// retained messages are back.
func TestKillNineKeepsEveryAcknowledgedMessage(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir, "--max-queued-messages", "100000")

	rec5, rec311 := newReceived(), newReceived()
	s5 := connectPaho5(t, h.addr, "sub-v5", true, rec5)
	s5.subscribe(t, paho.SubscribeOptions{Topic: topicQoS1, QoS: 1}, paho.SubscribeOptions{Topic: topicQoS2, QoS: 2})
	s5.leave()
	s311, _ := connectPaho311(t, h.addr, "sub-v311", true, rec311)
	s311.Disconnect(0) // start from a clean slate, then make it persistent
	s311, _ = connectPaho311(t, h.addr, "sub-v311", false, rec311)
	subscribe311(t, s311, map[string]byte{topicQoS1: 1, topicQoS2: 2})
	s311.Disconnect(100)

	// Retained: one kept, one set then cleared, both acknowledged.
	rp := dialRaw(t, h.addr, packet.Version5)
	rp.connect("retainer", true, 0)
	for i, p := range []*packet.Publish{
		{QoS: 1, Retain: true, Topic: "crash/retained", Payload: []byte("kept")},
		{QoS: 1, Retain: true, Topic: "crash/cleared", Payload: []byte("gone")},
		{QoS: 1, Retain: true, Topic: "crash/cleared"},
	} {
		p.PacketID = uint16(i + 1)
		rp.Send(p)
		rp.ExpectAck(packet.PUBACK, p.PacketID)
	}
	rp.hangUp()

	pub := newStreamPublisher(t, h.addr, 16, 400)
	go func() {
		defer close(pub.done)
		pub.run()
	}()
	select {
	case <-pub.reached:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d messages acknowledged in 20s", pub.nAcked)
	}
	h.kill()
	<-pub.done
	pub.mu.Lock()
	acked := pub.acked
	t.Logf("killed herald after %d messages sent, %d acknowledged (%d QoS 1, %d QoS 2)",
		pub.sent, pub.nAcked, len(acked[topicQoS1]), len(acked[topicQoS2]))
	pub.mu.Unlock()

	h = startHerald(t, dir, "--max-queued-messages", "100000")
	t.Logf("restarted in %v: %d sessions, %d retained recovered", h.ready, h.recoveredCount("sessions"), h.recoveredCount("retained"))

	s5 = connectPaho5(t, h.addr, "sub-v5", false, rec5)
	if !s5.connack.SessionPresent {
		t.Errorf("paho.golang: session present = 0 after restart")
	}
	_, present := connectPaho311(t, h.addr, "sub-v311", false, rec311)
	if !present {
		t.Errorf("paho.mqtt.golang: session present = 0 after restart")
	}
	for name, rec := range map[string]*received{"paho.golang v5": rec5, "paho.mqtt.golang 3.1.1": rec311} {
		if !rec.waitFor(acked, 15*time.Second) {
			t.Errorf("%s: not every acknowledged message arrived within 15s", name)
		}
	}
	time.Sleep(quietFor) // let duplicates, if any, arrive
	rec5.check(t, "paho.golang v5", acked)
	rec311.check(t, "paho.mqtt.golang 3.1.1", acked)

	// Retained messages are back; a cleared one stays cleared.
	rc := dialRaw(t, h.addr, packet.Version5)
	rc.connect("retained-reader", true, 0)
	rc.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "crash/retained", QoS: 1}, {Filter: "crash/cleared", QoS: 1}}})
	mqtttest.Expect[*packet.Suback](rc.Client)
	p := mqtttest.Expect[*packet.Publish](rc.Client)
	if p.Topic != "crash/retained" || !p.Retain || string(p.Payload) != "kept" {
		t.Errorf("retained after restart: %q retain=%v %q, want crash/retained retain=true \"kept\"", p.Topic, p.Retain, p.Payload)
	}
	rc.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	rc.ExpectNothing()
}

// TestKillNineRedeliversInflightWithDup: a subscriber online with a
// persistent session receives QoS 1 and QoS 2 messages but does not
// acknowledge them (and for some QoS 2 ones answers PUBREC but never
// PUBCOMP); herald is killed and restarted. On reconnection the broker
// resends each unacknowledged PUBLISH with DUP = 1 and its original packet
// id, and PUBREL for those past PUBREC [MQTT-4.4.0-1], [MQTT-3.3.1-1];
// once everything is acknowledged nothing more arrives.
func TestKillNineRedeliversInflightWithDup(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)

	sub := dialRaw(t, h.addr, packet.Version5)
	sub.connect("inflight", true, sessionExpiry)
	sub.subscribe(1, 1, topicQoS1)
	sub.subscribe(2, 2, topicQoS2)

	pub := dialRaw(t, h.addr, packet.Version5)
	pub.connect("inflight-publisher", true, 0)
	const n = 10
	for i := 1; i <= n; i++ {
		pid := uint16(i)
		pub.Send(&packet.Publish{QoS: 1, Topic: topicQoS1, PacketID: pid, Payload: []byte{'a', byte(i)}})
		pub.ExpectAck(packet.PUBACK, pid)
		pid = uint16(100 + i)
		pub.Send(&packet.Publish{QoS: 2, Topic: topicQoS2, PacketID: pid, Payload: []byte{'b', byte(i)}})
		pub.ExpectAck(packet.PUBREC, pid)
		pub.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: pid})
		pub.ExpectAck(packet.PUBCOMP, pid)
	}

	// Receive all 2n without acknowledging; answer PUBREC for the first
	// half of the QoS 2 ones, and take their PUBREL without PUBCOMP.
	type sent struct {
		pid     uint16
		qos     byte
		payload []byte
	}
	var got []sent
	released := map[uint16]bool{}
	for len(got) < 2*n {
		p := mqtttest.Expect[*packet.Publish](sub.Client)
		if p.Dup {
			t.Errorf("first delivery of %q has DUP = 1", p.Payload)
		}
		got = append(got, sent{p.PacketID, p.QoS, bytes.Clone(p.Payload)})
	}
	for _, s := range got {
		if s.qos == 2 && len(released) < n/2 {
			released[s.pid] = true
			sub.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: s.pid})
			sub.ExpectAck(packet.PUBREL, s.pid)
		}
	}
	// The store writes delivery state (sent, released, deleted) lazily: it
	// is durable with the next durable write. Make one, as the next
	// acknowledged publish of a busy broker would, so that this test checks
	// the recovery of inflight state; TestKillNineQuietBrokerKeepsQoS2
	// ExactlyOnce covers a broker with no next write.
	flushLazyWrites(t, h)
	h.kill()
	h = startHerald(t, dir)

	sub = dialRaw(t, h.addr, packet.Version5)
	if ack := sub.connect("inflight", false, sessionExpiry); !ack.SessionPresent {
		t.Fatalf("session present = 0 after restart")
	}
	var order []uint16
	resent := map[uint16]*packet.Publish{}
	rels := map[uint16]bool{}
	for range got {
		switch p := sub.Next().(type) {
		case *packet.Publish:
			resent[p.PacketID] = p
			order = append(order, p.PacketID)
		case *packet.Ack:
			if p.Kind != packet.PUBREL {
				t.Fatalf("got %v %d, want PUBLISH or PUBREL", p.Kind, p.PacketID)
			}
			rels[p.PacketID] = true
			order = append(order, p.PacketID)
		default:
			t.Fatalf("got %T, want PUBLISH or PUBREL", p)
		}
	}
	for i, s := range got {
		if released[s.pid] {
			if !rels[s.pid] {
				t.Errorf("QoS 2 id %d past PUBREC: no PUBREL after restart", s.pid)
			}
			continue
		}
		p := resent[s.pid]
		switch {
		case p == nil:
			t.Errorf("%q (id %d, QoS %d): not resent with its packet id after restart", s.payload, s.pid, s.qos)
		case !p.Dup:
			t.Errorf("%q (id %d): resent with DUP = 0 [MQTT-3.3.1-1]", s.payload, s.pid)
		case !bytes.Equal(p.Payload, s.payload) || p.QoS != s.qos:
			t.Errorf("id %d: resent %q QoS %d, was %q QoS %d", s.pid, p.Payload, p.QoS, s.payload, s.qos)
		}
		if i < len(order) && order[i] != s.pid {
			t.Errorf("resend order: position %d is id %d, was %d [MQTT-4.4.0-1]", i, order[i], s.pid)
		}
	}
	if t.Failed() {
		return
	}
	// Complete every flow; nothing else may come.
	for _, s := range got {
		switch {
		case released[s.pid]:
			sub.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: s.pid})
		case s.qos == 1:
			sub.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: s.pid})
		default:
			sub.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: s.pid})
			sub.ExpectAck(packet.PUBREL, s.pid)
			sub.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: s.pid})
		}
	}
	sub.ExpectNothing()

	// And after one more restart nothing is left to redeliver.
	sub.hangUp()
	flushLazyWrites(t, h)
	h.kill()
	h = startHerald(t, dir)
	sub = dialRaw(t, h.addr, packet.Version5)
	sub.connect("inflight", false, sessionExpiry)
	sub.ExpectNothing()
}

// TestKillNineKeepsInboundQoS2ExactlyOnce: a publisher with a persistent
// session sends a QoS 2 PUBLISH and gets PUBREC, then herald is killed
// before the PUBREL. After the restart the publisher resumes its session,
// sends the PUBLISH again with DUP (it may not have seen the PUBREC) and
// then the PUBREL: the broker answers PUBREC and PUBCOMP (Success, not
// "packet identifier not found") and delivers the message once
// [MQTT-4.3.3-10], [MQTT-4.3.3-11].
func TestKillNineKeepsInboundQoS2ExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)

	sub := dialRaw(t, h.addr, packet.Version5)
	sub.connect("once-subscriber", true, sessionExpiry)
	sub.subscribe(1, 2, "crash/once")
	sub.hangUp()

	pub := dialRaw(t, h.addr, packet.Version5)
	pub.connect("once-publisher", true, sessionExpiry)
	pub.Send(&packet.Publish{QoS: 2, Topic: "crash/once", PacketID: 7, Payload: []byte("once")})
	pub.ExpectAck(packet.PUBREC, 7)
	h.kill()
	h = startHerald(t, dir)

	pub = dialRaw(t, h.addr, packet.Version5)
	if ack := pub.connect("once-publisher", false, sessionExpiry); !ack.SessionPresent {
		t.Errorf("publisher: session present = 0 after restart")
	}
	pub.Send(&packet.Publish{Dup: true, QoS: 2, Topic: "crash/once", PacketID: 7, Payload: []byte("once")})
	pub.ExpectAck(packet.PUBREC, 7)
	pub.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 7})
	if a := pub.ExpectAck(packet.PUBCOMP, 7); a.ReasonCode != packet.Success {
		t.Errorf("PUBCOMP reason 0x%02X after restart: the inbound packet id was not kept", byte(a.ReasonCode))
	}
	// The id is free again: a new message with it is a new message.
	pub.Send(&packet.Publish{QoS: 2, Topic: "crash/once", PacketID: 7, Payload: []byte("next")})
	pub.ExpectAck(packet.PUBREC, 7)
	pub.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 7})
	pub.ExpectAck(packet.PUBCOMP, 7)

	sub = dialRaw(t, h.addr, packet.Version5)
	if ack := sub.connect("once-subscriber", false, sessionExpiry); !ack.SessionPresent {
		t.Errorf("subscriber: session present = 0 after restart")
	}
	var payloads []string
	var got []*packet.Publish
	for {
		p, err := sub.Recv(quietFor)
		if err != nil {
			break
		}
		m, ok := p.(*packet.Publish)
		if !ok {
			t.Fatalf("got %T, want PUBLISH", p)
		}
		payloads = append(payloads, string(m.Payload))
		got = append(got, m)
	}
	for _, m := range got {
		sub.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: m.PacketID})
		sub.ExpectAck(packet.PUBREL, m.PacketID)
		sub.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: m.PacketID})
	}
	if len(payloads) != 2 || payloads[0] != "once" || payloads[1] != "next" {
		t.Errorf("subscriber got %q, want [once next]: exactly once across the restart", payloads)
	}
}

// flushLazyWrites makes a durable write, an acknowledged QoS 1 message
// queued for an offline persistent session of its own, so that every write
// the store made lazily before it is durable too.
func flushLazyWrites(t *testing.T, h *herald) {
	t.Helper()
	flushes++
	id := fmt.Sprintf("flusher-%d", flushes)
	s := dialRaw(t, h.addr, packet.Version5)
	s.connect(id, true, sessionExpiry)
	s.subscribe(1, 1, "crash/flush/"+id)
	s.hangUp()
	c := dialRaw(t, h.addr, packet.Version5)
	c.connect(id+"-publisher", true, 0)
	c.Send(&packet.Publish{QoS: 1, Topic: "crash/flush/" + id, PacketID: 1, Payload: []byte("x")})
	c.ExpectAck(packet.PUBACK, 1)
	c.hangUp()
}

var flushes int

// TestKillNineQuietBrokerKeepsQoS2ExactlyOnce: a subscriber online with a
// persistent session completes one QoS 2 delivery (PUBREC, PUBREL,
// PUBCOMP) and receives a second without acknowledging it; then nothing
// happens for a while and herald is killed. After the restart the
// completed message must not come again (the client released its packet
// id, so it would be a second delivery) and the other must come with DUP
// = 1 and its packet id, so that the client recognises it.
func TestKillNineQuietBrokerKeepsQoS2ExactlyOnce(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)
	sub := dialRaw(t, h.addr, packet.Version5)
	sub.connect("quiet", true, sessionExpiry)
	sub.subscribe(1, 2, "crash/quiet")
	pub := dialRaw(t, h.addr, packet.Version5)
	pub.connect("quiet-publisher", true, 0)
	for i, payload := range []string{"completed", "unacknowledged"} {
		pid := uint16(i + 1)
		pub.Send(&packet.Publish{QoS: 2, Topic: "crash/quiet", PacketID: pid, Payload: []byte(payload)})
		pub.ExpectAck(packet.PUBREC, pid)
		pub.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: pid})
		pub.ExpectAck(packet.PUBCOMP, pid)
	}
	first := mqtttest.Expect[*packet.Publish](sub.Client)
	second := mqtttest.Expect[*packet.Publish](sub.Client)
	sub.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: first.PacketID})
	sub.ExpectAck(packet.PUBREL, first.PacketID)
	sub.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: first.PacketID})
	time.Sleep(300 * time.Millisecond) // a quiet broker: no write follows
	h.kill()
	h = startHerald(t, dir)

	sub = dialRaw(t, h.addr, packet.Version5)
	sub.connect("quiet", false, sessionExpiry)
	var problems []string
	var gotSecond bool
	for {
		p, err := sub.Recv(quietFor)
		if err != nil {
			break
		}
		if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBREL {
			// A PUBREL for the completed message, whose PUBCOMP the
			// store had not made durable, is harmless: the client
			// answers PUBCOMP for an id it no longer knows.
			sub.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: a.PacketID})
			continue
		}
		m, ok := p.(*packet.Publish)
		if !ok {
			t.Fatalf("got %T, want PUBLISH or PUBREL", p)
		}
		switch string(m.Payload) {
		case "completed":
			problems = append(problems, fmt.Sprintf("the completed QoS 2 message came again (id %d, DUP %v): delivered twice", m.PacketID, m.Dup))
		case "unacknowledged":
			gotSecond = true
			if !m.Dup || m.PacketID != second.PacketID {
				problems = append(problems, fmt.Sprintf("the unacknowledged QoS 2 message came back with id %d DUP %v, was id %d: a new message to the client, delivered twice", m.PacketID, m.Dup, second.PacketID))
			}
		}
	}
	if !gotSecond {
		t.Errorf("the unacknowledged QoS 2 message was not redelivered")
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestKillNineWithOnlineSubscriber: as TestKillNineKeepsEveryAcknowledged
// Message, but the paho.golang subscriber is online during the stream and
// acknowledges as it goes, so the crash catches deliveries in every state
// (sent, PUBREC received, PUBCOMP received). After the restart it resumes
// with its client session state: every acknowledged message has arrived,
// before or after the crash, and no QoS 2 message twice.
func TestKillNineWithOnlineSubscriber(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir, "--max-queued-messages", "100000")
	rec := newReceived()
	clientState := state.NewInMemory()
	s := connectPaho5Session(t, h.addr, "online-v5", true, rec, clientState)
	s.subscribe(t, paho.SubscribeOptions{Topic: topicQoS1, QoS: 1}, paho.SubscribeOptions{Topic: topicQoS2, QoS: 2})

	pub := newStreamPublisher(t, h.addr, 16, 400)
	go func() {
		defer close(pub.done)
		pub.run()
	}()
	select {
	case <-pub.reached:
	case <-time.After(20 * time.Second):
		t.Fatalf("only %d messages acknowledged in 20s", pub.nAcked)
	}
	h.kill()
	<-pub.done
	s.conn.Close()
	pub.mu.Lock()
	acked := pub.acked
	pub.mu.Unlock()

	h = startHerald(t, dir, "--max-queued-messages", "100000")
	s = connectPaho5Session(t, h.addr, "online-v5", false, rec, clientState)
	if !s.connack.SessionPresent {
		t.Errorf("session present = 0 after restart")
	}
	if !rec.waitFor(acked, 15*time.Second) {
		t.Errorf("not every acknowledged message arrived within 15s")
	}
	time.Sleep(quietFor)
	if dups := rec.checkDelivered(t, "paho.golang v5 online", acked); len(dups) > 0 {
		t.Errorf("%d QoS 2 messages delivered twice across kill -9 to an online subscriber: %v", len(dups), head(dups))
	}
}
