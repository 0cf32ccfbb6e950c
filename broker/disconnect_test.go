package broker

import (
	"testing"

	"github.com/herald-mqtt/herald/packet"
)

// A DISCONNECT read on a connection that was taken over while it was
// being read no longer speaks for the session: its Session Expiry
// Interval leaves the expiry the new connection's CONNECT set.
// (The transport would deliver it that late only in a race; the test
// hands it to the old client's read side after the takeover.)
func TestDisconnectAfterTakeoverLeavesSessionExpiry(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	p := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "x",
		Props: packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
	old, _ := fakeClient(t, srv, p, "", 0)
	again := *p
	again.Props.SessionExpiry = 30
	taker, _ := fakeClient(t, srv, &again, "", 0)
	if old.sess != taker.sess {
		t.Fatal("the second connection did not resume the session")
	}
	d, err := packet.Encode(nil, packet.Version5, &packet.Disconnect{
		Props: packet.Properties{SessionExpiry: 0, HasSessionExpiry: true}})
	if err != nil {
		t.Fatal(err)
	}
	old.Data(d) // ends the old connection, which is closed already
	if got := taker.sess.expiryInterval(); got != 30 {
		t.Fatalf("session expiry %d after the old connection's DISCONNECT, want the new CONNECT's 30", got)
	}
}
