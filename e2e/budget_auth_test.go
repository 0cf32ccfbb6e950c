package e2e

import (
	"bytes"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

type allowAll struct{}

func (allowAll) Authenticate(*broker.ClientInfo, []byte) packet.ReasonCode { return packet.Success }

// With an authenticator, the packets that come in the same write as the
// CONNECT are handled when authentication ends. If one of them puts the
// node over its memory budget, the client stays paused like any other
// publisher: the end of authentication must not resume its reading.
func TestMemoryBudgetPausesAPublishPipelinedWithConnect(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.MemoryBudget = 1000; o.Auth = allowAll{} })
	// An offline persistent session queues everything published on "t".
	s, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "offline", CleanStart: false})
	s.SubscribeOne("t", 1)
	s.Send(&packet.Disconnect{})
	time.Sleep(100 * time.Millisecond)
	payload := bytes.Repeat([]byte{'x'}, 3000)

	r := dialRaw(t, b.Addr, packet.Version311)
	con, _ := packet.Encode(nil, packet.Version311, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "piped", CleanStart: true})
	pub, _ := packet.Encode(nil, packet.Version311, &packet.Publish{Topic: "t", QoS: 1, PacketID: 1, Payload: payload})
	r.Write(append(con, pub...))
	mqtttest.Expect[*packet.Connack](r)
	r.ExpectAck(packet.PUBACK, 1)
	if q := b.Server.Stats().QueuedBytes.Load(); q <= 1000 {
		t.Fatalf("queued %d bytes: the first publish should have put the node over its 1000-byte budget", q)
	}
	r.Send(&packet.Publish{Topic: "t", QoS: 1, PacketID: 2, Payload: payload})
	if p, err := r.Recv(500 * time.Millisecond); err == nil {
		t.Fatalf("got %v: a client paused by the memory budget was read again after authentication", p)
	}
}
