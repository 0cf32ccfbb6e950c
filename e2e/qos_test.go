package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-4.3.1-1] [MQTT-4.3.2-1] [MQTT-4.3.3-1] QoS 0, 1 and 2 in both
// directions, with exactly the acknowledgement flow of each, and
// [MQTT-3.8.4-8] the delivered QoS is the minimum of the published QoS and
// the granted QoS — for v5 and 3.1.1 subscribers.
func TestQoSFlowsBothDirections_MQTT_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, v := range []byte{packet.Version311, packet.Version5} {
		for subQoS := byte(0); subQoS <= 2; subQoS++ {
			id := fmt.Sprintf("q-sub-%d-%d", v, subQoS)
			s, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: id, CleanStart: true})
			filter := fmt.Sprintf("qos/%d/%d", v, subQoS)
			s.SubscribeOne(filter, subQoS)
			pub, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: id + "-pub", CleanStart: true})
			for pubQoS := byte(0); pubQoS <= 2; pubQoS++ {
				payload := fmt.Sprintf("p%d", pubQoS)
				// publish() checks the sender-side flow: PUBACK for 1,
				// PUBREC/PUBREL/PUBCOMP for 2.
				pub.Publish(&packet.Publish{Topic: filter, QoS: pubQoS, PacketID: uint16(10 + pubQoS), Payload: []byte(payload)})
				p := s.RecvPublish() // checks the receiver-side flow
				if want := min(pubQoS, subQoS); p.QoS != want || string(p.Payload) != payload {
					t.Fatalf("v%d sub QoS %d pub QoS %d: got QoS %d %q, want QoS %d", v, subQoS, pubQoS, p.QoS, p.Payload, want)
				}
				if p.QoS > 0 && p.PacketID == 0 {
					t.Fatal("QoS > 0 PUBLISH without packet id [MQTT-2.2.1-2]")
				}
				if p.Retain || p.Dup {
					t.Fatalf("first delivery with retain %v dup %v", p.Retain, p.Dup)
				}
			}
			s.ExpectNothing()
		}
	}
}

// [MQTT-3.3.4-9] (v5 §4.9) the broker never has more unacknowledged
// QoS 1/2 PUBLISH packets in flight to a client than its Receive Maximum;
// the rest wait and flow as acknowledgements come back, in order.
func TestReceiveMaximumRespectedTowardsClient_MQTT_3_3_4_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := mqtttest.V5("rm-sub")
	cp.Props.ReceiveMaximum = 2
	s, _ := connectRaw(t, b.Addr, cp)
	s.SubscribeOne("rm/#", 2)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("rm-pub"))
	const n = 7
	for i := range n {
		qos := byte(1 + i%2)
		pub.Publish(&packet.Publish{Topic: "rm/t", QoS: qos, PacketID: uint16(i + 1), Payload: []byte{byte(i)}})
	}
	var inflight []*packet.Publish
	next := byte(0)
	for next < n {
		// Read until the broker goes quiet; the window must hold.
		for {
			p, err := s.Recv(quietFor)
			if err != nil {
				if !mqtttest.IsTimeout(err) {
					t.Fatal(err)
				}
				break
			}
			pp, ok := p.(*packet.Publish)
			if !ok {
				t.Fatalf("got %T", p)
			}
			if pp.Payload[0] != next {
				t.Fatalf("got message %d, want %d (order)", pp.Payload[0], next)
			}
			next++
			inflight = append(inflight, pp)
			if len(inflight) > 2 {
				t.Fatalf("%d unacknowledged publishes in flight, Receive Maximum is 2", len(inflight))
			}
		}
		if len(inflight) == 0 {
			t.Fatalf("stalled after %d messages with nothing in flight", next)
		}
		// Complete the oldest; for QoS 2 the slot is freed only by PUBCOMP
		// (v5 §4.9), so check the window holds across PUBREC too.
		first := inflight[0]
		inflight = inflight[1:]
		if first.QoS == 2 {
			s.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: first.PacketID})
			s.ExpectAck(packet.PUBREL, first.PacketID)
			s.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: first.PacketID})
		} else {
			s.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: first.PacketID})
		}
	}
}

// [MQTT-3.3.4-7] [MQTT-3.3.4-8] a client exceeding the broker's Receive
// Maximum with unreleased QoS 2 publishes is disconnected with 0x93.
func TestReceiveMaximumExceededByClient_MQTT_3_3_4_8(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.ReceiveMaximum = 2 })
	r, ack := connectRaw(t, b.Addr, mqtttest.V5("rmx"))
	if ack.Props.ReceiveMaximum != 2 {
		t.Fatalf("CONNACK Receive Maximum %d", ack.Props.ReceiveMaximum)
	}
	for i := uint16(1); i <= 2; i++ {
		r.Send(&packet.Publish{Topic: "rmx", QoS: 2, PacketID: i, Payload: []byte("x")})
		r.ExpectAck(packet.PUBREC, i)
	}
	r.Send(&packet.Publish{Topic: "rmx", QoS: 2, PacketID: 3, Payload: []byte("x")})
	r.ExpectDisconnect(packet.ReceiveMaximumExceeded, waitFor)
}

// [MQTT-4.4.0-1] [MQTT-3.3.1-1] on reconnect with a resumed session the
// broker resends unacknowledged QoS 1/2 PUBLISH with DUP=1 and the same
// packet id, and unanswered PUBREL, in their original order — v5 and 3.1.1.
func TestRedeliveryWithDupAfterReconnect_MQTT_4_4_0_1(t *testing.T) {
	t.Parallel()
	for _, v := range []byte{packet.Version311, packet.Version5} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, nil)
			conn := func(clean bool) *packet.Connect {
				c := &packet.Connect{ProtocolVersion: v, ClientID: "redo", CleanStart: clean}
				if v == packet.Version5 {
					c.Props.SessionExpiry, c.Props.HasSessionExpiry = 60, true
				}
				return c
			}
			s, _ := connectRaw(t, b.Addr, conn(false)) // 3.1.1: Clean Session 0 to keep it
			s.SubscribeOne("redo/#", 2)
			pub, _ := connectRaw(t, b.Addr, mqtttest.V5("redo-pub"))
			pub.Publish(&packet.Publish{Topic: "redo/1", QoS: 1, Payload: []byte("one")})
			pub.Publish(&packet.Publish{Topic: "redo/2", QoS: 2, Payload: []byte("two")})
			pub.Publish(&packet.Publish{Topic: "redo/3", QoS: 2, Payload: []byte("three")})
			p1 := mqtttest.Expect[*packet.Publish](s) // not acknowledged
			p2 := mqtttest.Expect[*packet.Publish](s) // PUBREC sent, PUBREL not answered
			p3 := mqtttest.Expect[*packet.Publish](s) // not acknowledged
			s.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: p2.PacketID})
			s.ExpectAck(packet.PUBREL, p2.PacketID)
			s.Conn.Close() // network failure: no DISCONNECT

			time.Sleep(50 * time.Millisecond)
			s, ack := connectRaw(t, b.Addr, conn(false))
			if !ack.SessionPresent {
				t.Fatal("session not resumed")
			}
			r1 := mqtttest.Expect[*packet.Publish](s)
			if !r1.Dup || r1.PacketID != p1.PacketID || string(r1.Payload) != "one" || r1.QoS != 1 {
				t.Fatalf("resent QoS 1: %+v, want DUP with id %d", r1, p1.PacketID)
			}
			s.ExpectAck(packet.PUBREL, p2.PacketID) // [MQTT-4.4.0-1] PUBREL resent, not the PUBLISH
			r3 := mqtttest.Expect[*packet.Publish](s)
			if !r3.Dup || r3.PacketID != p3.PacketID || string(r3.Payload) != "three" || r3.QoS != 2 {
				t.Fatalf("resent QoS 2: %+v, want DUP with id %d", r3, p3.PacketID)
			}
			s.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: r1.PacketID})
			s.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p2.PacketID})
			s.AckPublish(r3)
			s.ExpectNothing()
			// Acknowledged now: a third connection gets nothing again.
			s.Conn.Close()
			time.Sleep(50 * time.Millisecond)
			s, _ = connectRaw(t, b.Addr, conn(false))
			s.ExpectNothing()
		})
	}
}

// [MQTT-4.3.3-10] [MQTT-4.3.3-3] exactly once: a QoS 2 PUBLISH resent
// with DUP before PUBREL is answered with PUBREC again but not delivered a
// second time, also after a reconnect; after PUBREL the packet id is free
// and a new PUBLISH with it is a new message.
func TestQoS2ExactlyOnceDuplicateBeforePubrel_MQTT_4_3_3_10(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s := watcher(t, b.Addr, "eo-sub", "eo/#")
	conn := func(clean bool) *packet.Connect {
		c := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "eo-pub", CleanStart: clean}
		c.Props.SessionExpiry, c.Props.HasSessionExpiry = 60, true
		return c
	}
	pub, _ := connectRaw(t, b.Addr, conn(true))
	msg := &packet.Publish{Topic: "eo/t", QoS: 2, PacketID: 7, Payload: []byte("once")}
	pub.Send(msg)
	pub.ExpectAck(packet.PUBREC, 7)
	dup := *msg
	dup.Dup = true
	pub.Send(&dup)
	pub.ExpectAck(packet.PUBREC, 7)

	// Reconnect (resumed session) and retransmit once more.
	pub.Conn.Close()
	time.Sleep(50 * time.Millisecond)
	pub, _ = connectRaw(t, b.Addr, conn(false))
	pub.Send(&dup)
	pub.ExpectAck(packet.PUBREC, 7)
	pub.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 7})
	pub.ExpectAck(packet.PUBCOMP, 7)

	if p := s.RecvPublish(); string(p.Payload) != "once" {
		t.Fatalf("got %q", p.Payload)
	}
	s.ExpectNothing()

	pub.Publish(&packet.Publish{Topic: "eo/t", QoS: 2, PacketID: 7, Payload: []byte("again")})
	if p := s.RecvPublish(); string(p.Payload) != "again" {
		t.Fatalf("new message with a released id: got %q", p.Payload)
	}
}

// [MQTT-4.3.3-11] PUBREL for an unknown packet id is answered with PUBCOMP
// (v5: reason 0x92 Packet Identifier not found).
func TestPubrelUnknownIDGetsPubcomp0x92(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("pubrel"))
	r.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 42})
	if a := r.ExpectAck(packet.PUBCOMP, 42); a.ReasonCode != packet.PacketIDNotFound {
		t.Fatalf("PUBCOMP reason 0x%02X", byte(a.ReasonCode))
	}
	r3, _ := connectRaw(t, b.Addr, mqtttest.V311("pubrel3"))
	r3.Send(&packet.Ack{Kind: packet.PUBREL, PacketID: 42})
	r3.ExpectAck(packet.PUBCOMP, 42)
}

// [MQTT-2.2.1-3] the broker never reuses a packet id still in flight to a
// client: many QoS 1 messages with the window full all carry distinct ids.
func TestOutboundPacketIDsUniqueWhileInflight_MQTT_2_2_1_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s := watcher(t, b.Addr, "ids-sub", "ids/#")
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ids-pub"))
	const n = 50
	for i := range n {
		pub.Publish(&packet.Publish{Topic: "ids/t", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
	}
	seen := map[uint16]bool{}
	for range n {
		p := mqtttest.Expect[*packet.Publish](s)
		if seen[p.PacketID] {
			t.Fatalf("packet id %d reused while unacknowledged", p.PacketID)
		}
		seen[p.PacketID] = true
	}
}
