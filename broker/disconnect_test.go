package broker

import (
	"strings"
	"testing"
	"unicode/utf8"

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

// [MQTT-3.14.2-1] protocolFailure sends only DISCONNECT reason codes: an
// error carrying a code DISCONNECT does not have is answered with 0x82
// Protocol Error; one it has is passed on.
func TestProtocolFailureSendsOnlyDisconnectReasonCodes(t *testing.T) {
	for _, tc := range []struct {
		err, want packet.ReasonCode
	}{
		{packet.UnsupportedProtocolVersion, packet.ProtocolError}, // CONNACK only
		{packet.BadAuthenticationMethod, packet.ProtocolError},    // CONNACK only
		{packet.PacketIDInUse, packet.ProtocolError},              // acks only
		{packet.TopicNameInvalid, packet.TopicNameInvalid},
		{packet.MalformedPacket, packet.MalformedPacket},
	} {
		srv := New(benchOptions())
		c, cc := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "pf", CleanStart: true}, "", 0)
		c.protocolFailure(packet.Errorf(tc.err, "test"))
		got := cc.take(t)
		if len(got) != 1 {
			t.Fatalf("error 0x%02X: sent %v, want one DISCONNECT", byte(tc.err), got)
		}
		if d, ok := got[0].(*packet.Disconnect); !ok || d.ReasonCode != tc.want {
			t.Fatalf("error 0x%02X: sent %+v, want DISCONNECT 0x%02X", byte(tc.err), got[0], byte(tc.want))
		}
		srv.cancel()
	}
}

// reasonString caps a Reason String at maxReasonString bytes without
// cutting a character in two [MQTT-1.5.4-1].
func TestReasonStringCappedAtRuneBoundary(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int // length kept
	}{
		{"short", "keep alive timeout", 18},
		{"exactly the cap", strings.Repeat("a", maxReasonString), maxReasonString},
		{"ascii over the cap", strings.Repeat("a", 70000), maxReasonString},
		{"two-byte rune across the cap", strings.Repeat("a", maxReasonString-1) + "é", maxReasonString - 1},
		{"three-byte runes", strings.Repeat("€", 100), maxReasonString - maxReasonString%3},
	} {
		got := reasonString(tc.in)
		if len(got) != tc.want || !utf8.ValidString(got) || !strings.HasPrefix(tc.in, got) {
			t.Errorf("%s: kept %d bytes (valid UTF-8 %v), want %d", tc.name, len(got), utf8.ValidString(got), tc.want)
		}
	}
}
