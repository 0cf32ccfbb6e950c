package e2e

import (
	"fmt"
	"testing"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-3.1.2-24] [MQTT-3.2.2-19] a refusing CONNACK leaves its Reason
// String out rather than exceed the client's Maximum Packet Size: an
// Authentication Method the broker does not offer still gets 0x8C
// [MQTT-4.12.0-1], in 5 bytes instead of 43.
func TestRefusingConnackFitsMaximumPacketSize_MQTT_3_2_2_19(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	const limit = 20
	r := dialRaw(t, b.Addr, packet.Version5)
	cp := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "mps-refused", CleanStart: true}
	cp.Props.MaximumPacketSize = limit
	cp.Props.AuthMethod = "x"
	r.Send(cp)
	frame, err := r.ReadFrame(waitFor)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > limit {
		t.Fatalf("broker sent a %d-byte CONNACK to a client allowing %d", len(frame), limit)
	}
	p, err := packet.Decode(packet.Version5, frame)
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := p.(*packet.Connack); !ok || ack.ReasonCode != packet.BadAuthenticationMethod {
		t.Fatalf("got %+v, want CONNACK 0x8C", p)
	}
	r.ExpectClosed(waitFor)
}

// readWithin reads the next frame, which must be no larger than limit,
// and decodes it.
func readWithin(t *testing.T, r *mqtttest.Client, limit int) packet.Packet {
	t.Helper()
	frame, err := r.ReadFrame(waitFor)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) > limit {
		t.Fatalf("broker sent a %d-byte packet (% X...) to a client allowing %d", len(frame), frame[:2], limit)
	}
	p, err := packet.Decode(r.Version, frame)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// [MQTT-3.1.2-24] [MQTT-3.1.4-2] a CONNACK accepting the connection
// cannot leave out any of its properties (an empty client id must get its
// Assigned Client Identifier [MQTT-3.2.2-16]): if it exceeds the client's
// Maximum Packet Size the connection is refused with 0x83, and a session
// with that client id is not taken over. With room for it, the same
// CONNECT is accepted.
func TestAcceptingConnackAboveMaximumPacketSizeRefused_MQTT_3_1_2_24(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	held, _ := connectRaw(t, b.Addr, mqtttest.V5("mps-held"))
	for _, tc := range []struct {
		id    string
		limit uint32
	}{
		{"", 30}, // the assigned id alone is 34 bytes of properties
		{"mps-held", 10},
	} {
		r := dialRaw(t, b.Addr, packet.Version5)
		cp := mqtttest.V5(tc.id)
		cp.CleanStart = false
		cp.Props.MaximumPacketSize = tc.limit
		r.Send(cp)
		ack, ok := readWithin(t, r, int(tc.limit)).(*packet.Connack)
		if !ok || ack.ReasonCode != packet.ImplementationSpecific {
			t.Fatalf("id %q, limit %d: got %+v, want CONNACK 0x83", tc.id, tc.limit, ack)
		}
		r.ExpectClosed(waitFor)
		if tc.id != "" {
			held.ExpectNothing() // still connected: not taken over
		}

		cp.Props.MaximumPacketSize = 200
		if _, ack := connectRaw(t, b.Addr, cp); tc.id == "" && ack.Props.AssignedClientID == "" {
			t.Fatal("no Assigned Client Identifier with room for it")
		}
	}
	held.ExpectDisconnect(packet.SessionTakenOver, waitFor) // by the accepted CONNECT
}

// [MQTT-3.1.2-24] a SUBACK or UNSUBACK carries a reason code per filter
// and cannot be cut: one that would exceed the client's Maximum Packet
// Size is not sent; the client gets DISCONNECT 0x95 instead of waiting for
// it forever, and nothing of its request is done.
func TestAckAboveMaximumPacketSizeDisconnects_MQTT_3_1_2_24(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	const limit = 20
	subs := make([]packet.Subscription, 30)
	filters := make([]string, 30)
	for i := range subs {
		filters[i] = fmt.Sprintf("ack/%d", i)
		subs[i] = packet.Subscription{Filter: filters[i]}
	}
	cp := mqtttest.V5("ack-big")
	cp.CleanStart = false
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 60, true
	cp.Props.MaximumPacketSize = limit
	for i, req := range []packet.Packet{
		&packet.Subscribe{PacketID: 1, Subscriptions: subs},
		&packet.Unsubscribe{PacketID: 1, Filters: filters},
	} {
		r, _ := connectRaw(t, b.Addr, cp)
		if i == 0 {
			r.SubscribeOne("ack/0", 0)
		}
		r.Send(req)
		if d, ok := readWithin(t, r, limit).(*packet.Disconnect); !ok || d.ReasonCode != packet.PacketTooLarge {
			t.Fatalf("%T: got %+v, want DISCONNECT 0x95", req, d)
		}
		r.ExpectClosed(waitFor)
	}
	// The session kept ack/0 (not unsubscribed) and nothing else (not
	// subscribed): of a message on ack/1 and one on ack/0, it gets the second.
	cp.Props.MaximumPacketSize = 0
	r, _ := connectRaw(t, b.Addr, cp)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ack-pub"))
	pub.Publish(&packet.Publish{Topic: "ack/1", Payload: []byte("1")})
	pub.Publish(&packet.Publish{Topic: "ack/0", Payload: []byte("0")})
	if p := r.RecvPublish(); p.Topic != "ack/0" {
		t.Fatalf("got a message on %q, want only ack/0's", p.Topic)
	}
}
