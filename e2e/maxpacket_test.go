package e2e

import (
	"testing"

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
