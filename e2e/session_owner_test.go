package e2e

import (
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// A session belongs to the user whose client created it. Another user
// naming the same client id is refused (0x87): resuming would hand over
// subscriptions granted under the owner's ACL and the owner's queued
// messages, and taking it over would disconnect the owner. The owner
// still resumes it.
func TestAnotherUserCannotResumeOrTakeOverASession(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Auth = allowAll{} })
	alice := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "dev1", UsernameFlag: true, Username: "alice", PasswordFlag: true, Password: []byte("a"),
		Props: packet.Properties{SessionExpiry: 600, HasSessionExpiry: true}}
	a, _ := connectRaw(t, b.Addr, alice)
	a.SubscribeOne("users/alice/#", 1)

	mallory := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "dev1", UsernameFlag: true, Username: "mallory", PasswordFlag: true, Password: []byte("m"),
		Props: packet.Properties{SessionExpiry: 600, HasSessionExpiry: true}}
	if ack := connectAny(t, b.Addr, mallory); ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("another user's CONNECT for a connected session: 0x%02X, want 0x87", byte(ack.ReasonCode))
	}
	if _, err := a.Recv(200 * time.Millisecond); err == nil {
		t.Fatal("the owner's connection got a packet (taken over?)")
	}
	a.Send(&packet.Disconnect{})
	time.Sleep(50 * time.Millisecond)

	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("pub"))
	pub.Publish(&packet.Publish{Topic: "users/alice/inbox", QoS: 1, PacketID: 1, Payload: []byte("secret")})
	if ack := connectAny(t, b.Addr, mallory); ack.ReasonCode != packet.NotAuthorized || ack.SessionPresent {
		t.Fatalf("another user's CONNECT for an offline session: 0x%02X present=%v, want 0x87", byte(ack.ReasonCode), ack.SessionPresent)
	}
	mallory.CleanStart = true
	if ack := connectAny(t, b.Addr, mallory); ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("another user's Clean Start CONNECT: 0x%02X, want 0x87 (it would discard the owner's session)", byte(ack.ReasonCode))
	}

	a2 := dialRaw(t, b.Addr, packet.Version5)
	a2.Send(alice)
	if ack := mqtttest.Expect[*packet.Connack](a2); ack.ReasonCode != packet.Success || !ack.SessionPresent {
		t.Fatalf("the owner's reconnect: 0x%02X present=%v, want success with the session", byte(ack.ReasonCode), ack.SessionPresent)
	}
	if p := mqtttest.Expect[*packet.Publish](a2); string(p.Payload) != "secret" {
		t.Fatalf("the owner got %q, want the queued message", p.Payload)
	}
}
