package broker

import (
	"testing"

	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-3.8.3-3] No Local: a will is an Application Message of the
// connection that set it, so it is not forwarded to a connection with that
// client id, whether the next connection resumed the session or a Clean
// Start replaced it with a new one.
func TestWillNotForwardedToItsOwnClientIDWithNoLocal(t *testing.T) {
	for _, clean := range []bool{false, true} {
		srv := New(benchOptions())
		p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "nl", CleanStart: true,
			WillFlag: true, WillTopic: "will/nl", WillQoS: 1, WillPayload: []byte("gone"),
			Props: packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
		noLocal := &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "will/nl", QoS: 1, NoLocal: true}}}
		old, _ := fakeClient(t, srv, p, "", 0)
		feed(t, old, packet.Version5, noLocal)
		_, other := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "other", CleanStart: true}, "will/nl", 1)
		again := *p
		again.CleanStart, again.WillFlag, again.WillQoS = clean, false, 0
		taker, cc := fakeClient(t, srv, &again, "", 0)
		feed(t, taker, packet.Version5, noLocal)
		cc.take(t)
		old.Closed(nil) // taken over: its will goes out now (no delay)
		if got := publishes(t, other.take(t)); len(got) != 1 || got[0].Topic != "will/nl" {
			t.Fatalf("clean start %v: other subscriber got %v, want the will", clean, got)
		}
		if got := publishes(t, cc.take(t)); len(got) != 0 {
			t.Fatalf("clean start %v: the will went to its own client id despite No Local: %+v", clean, got[0])
		}
		srv.cancel()
	}
}
