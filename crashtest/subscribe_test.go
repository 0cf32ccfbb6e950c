package crashtest

import (
	"fmt"
	"testing"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// TestKillNineRightAfterSubackKeepsTheSubscription: a SUBACK promises a
// persistent session its subscription. herald is killed the moment the
// SUBACK arrives, several times over; after each restart the session is
// present and a message published to the filter reaches it.
func TestKillNineRightAfterSubackKeepsTheSubscription(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)
	const rounds = 8
	lost := 0
	for i := range rounds {
		id := fmt.Sprintf("suback-%d", i)
		filter := "crash/suback/" + id
		c := dialRaw(t, h.addr, packet.Version5)
		c.connect(id, true, sessionExpiry)
		c.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: 1}}})
		mqtttest.Expect[*packet.Suback](c.Client)
		h.kill()
		h = startHerald(t, dir)

		c = dialRaw(t, h.addr, packet.Version5)
		ack := c.connect(id, false, sessionExpiry)
		pub := dialRaw(t, h.addr, packet.Version5)
		pub.connect(id+"-publisher", true, 0)
		pub.Send(&packet.Publish{QoS: 1, Topic: filter, PacketID: 1, Payload: []byte("after restart")})
		pub.ExpectAck(packet.PUBACK, 1)
		pub.hangUp()
		p, err := c.Recv(quietFor)
		if _, ok := p.(*packet.Publish); err != nil || !ok || !ack.SessionPresent {
			lost++
			t.Logf("round %d: session present %v, delivery after restart: %T %v", i, ack.SessionPresent, p, err)
		}
		c.hangUp()
	}
	if lost > 0 {
		t.Errorf("%d of %d subscriptions acknowledged by SUBACK were lost by kill -9", lost, rounds)
	}
}
