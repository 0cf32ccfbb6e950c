package e2e

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// frame builds a control packet from its first byte and body, with a
// correct remaining length.
func frame(first byte, body ...[]byte) []byte {
	var all []byte
	for _, b := range body {
		all = append(all, b...)
	}
	out := []byte{first}
	n := len(all)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, all...)
}

// str is an MQTT UTF-8 string: two length bytes, then the raw bytes (which
// may be invalid on purpose).
func str(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// TestMalformedPacketsV5 sends one malformed or forbidden packet on a fresh
// v5 connection and checks the DISCONNECT reason code and the close
// [MQTT-4.13.1-1]; the same bytes on a 3.1.1 connection just close it
// [MQTT-4.8.0-1].
func TestMalformedPacketsCloseWithReasonCode_MQTT_4_13_1_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	noProps := []byte{0}
	cases := []struct {
		name  string
		spec  string
		bytes []byte
		code  packet.ReasonCode
		v311  bool // also send on 3.1.1 (bytes valid framing there too)
	}{
		{"remaining length of five bytes", "MQTT-1.5.5-1", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, packet.MalformedPacket, true},
		{"PUBACK shorter than its packet id", "MQTT-3.4.2", frame(0x40, []byte{0}), packet.MalformedPacket, true},
		{"PINGREQ remaining length in two bytes", "MQTT-1.5.5-1", []byte{0xC0, 0x80, 0x00}, packet.MalformedPacket, false},
		{"PUBLISH property length in two bytes", "MQTT-1.5.5-1", frame(0x30, str("a"), []byte{0x80, 0x00}), packet.MalformedPacket, false},
		{"SUBSCRIBE with reserved flags 0000", "MQTT-3.8.1-1", frame(0x80, []byte{0, 1}, noProps, str("a"), []byte{0}), packet.MalformedPacket, false},
		{"PUBREL with reserved flags 0000", "MQTT-3.6.1-1", frame(0x60, []byte{0, 1}), packet.MalformedPacket, true},
		{"UNSUBSCRIBE with reserved flags 0000", "MQTT-3.10.1-1", frame(0xA0, []byte{0, 1}, noProps, str("a")), packet.MalformedPacket, false},
		{"PINGREQ with flags 0001", "MQTT-2.2.2-2", []byte{0xC1, 0}, packet.MalformedPacket, true},
		{"PINGREQ with a body", "MQTT-3.12", []byte{0xC0, 1, 0}, packet.MalformedPacket, true},
		{"PUBLISH QoS 3", "MQTT-3.3.1-4", frame(0x36, str("a"), []byte{0, 1}, noProps), packet.MalformedPacket, false},
		{"PUBLISH DUP with QoS 0", "MQTT-3.3.1-2", frame(0x38, str("a"), noProps), packet.MalformedPacket, false},
		{"PUBLISH topic with '+'", "MQTT-3.3.2-2", frame(0x30, str("a/+"), noProps), packet.TopicNameInvalid, false},
		{"PUBLISH topic with '#'", "MQTT-3.3.2-2", frame(0x30, str("a/#"), noProps), packet.TopicNameInvalid, false},
		{"PUBLISH topic invalid UTF-8", "MQTT-1.5.4-1", frame(0x30, str("a\xC0\x80"), noProps), packet.MalformedPacket, false},
		{"PUBLISH topic with U+0000", "MQTT-1.5.4-2", frame(0x30, str("a\x00b"), noProps), packet.MalformedPacket, false},
		{"PUBLISH topic with a UTF-16 surrogate", "MQTT-1.5.4-1", frame(0x30, str("a\xED\xA0\x80"), noProps), packet.MalformedPacket, false},
		{"PUBLISH empty topic without alias", "MQTT-3.3.2-1", frame(0x30, str(""), noProps), packet.ProtocolError, false},
		{"PUBLISH topic alias 0", "MQTT-3.3.2-8", frame(0x30, str("a"), []byte{3, 0x23, 0, 0}), packet.TopicAliasInvalid, false},
		{"PUBLISH with a subscription identifier", "MQTT-3.3.4-6", frame(0x30, str("a"), []byte{2, 0x0B, 1}), packet.ProtocolError, false},
		{"PUBLISH property not allowed (Session Expiry)", "MQTT-2.2.2", frame(0x30, str("a"), []byte{5, 0x11, 0, 0, 0, 1}), packet.MalformedPacket, false},
		{"SUBSCRIBE without filters", "MQTT-3.8.3-2", frame(0x82, []byte{0, 1}, noProps), packet.ProtocolError, false},
		{"SUBSCRIBE retain handling 3", "MQTT-3.8.3.1", frame(0x82, []byte{0, 1}, noProps, str("a"), []byte{0x30}), packet.ProtocolError, false},
		{"SUBSCRIBE reserved option bits", "MQTT-3.8.3-5", frame(0x82, []byte{0, 1}, noProps, str("a"), []byte{0xC0}), packet.MalformedPacket, false},
		{"SUBSCRIBE subscription identifier 0", "MQTT-3.8.2", frame(0x82, []byte{0, 1}, []byte{2, 0x0B, 0}, str("a"), []byte{0}), packet.ProtocolError, false},
		{"SUBSCRIBE packet id 0", "MQTT-2.2.1-3", frame(0x82, []byte{0, 0}, noProps, str("a"), []byte{0}), packet.MalformedPacket, false},
		{"UNSUBSCRIBE without filters", "MQTT-3.10.3-2", frame(0xA2, []byte{0, 1}, noProps), packet.ProtocolError, false},
		{"second CONNECT", "MQTT-3.1.0-2", frame(0x10, str("MQTT"), []byte{5, 2, 0, 60}, noProps, str("again")), packet.ProtocolError, true},
		// Whatever is wrong inside a second CONNECT, it is a Protocol Error
		// first: not 0x84, a CONNACK-only code [MQTT-3.14.2-1], nor 0x90.
		{"second CONNECT with protocol level 6", "MQTT-3.1.0-2", frame(0x10, str("MQTT"), []byte{6, 2, 0, 60}, noProps, str("again")), packet.ProtocolError, false},
		{"second CONNECT with a wildcard will topic", "MQTT-3.1.0-2", frame(0x10, str("MQTT"), []byte{5, 0x06, 0, 60}, noProps, str("again"), noProps, str("w/+"), str("")), packet.ProtocolError, false},
		{"second CONNECT with the reserved flag set", "MQTT-3.1.0-2", frame(0x10, str("MQTT"), []byte{5, 0x03, 0, 60}, noProps, str("again")), packet.ProtocolError, false},
		{"reserved packet type 0", "MQTT-2.1.2", []byte{0x00, 0}, packet.MalformedPacket, true},
		{"CONNACK from a client", "MQTT-3.2", frame(0x20, []byte{0, 0}, noProps), packet.ProtocolError, false},
		{"SUBACK from a client", "MQTT-3.9", frame(0x90, []byte{0, 1}, noProps, []byte{0}), packet.ProtocolError, false},
		{"AUTH without an authentication method", "MQTT-4.12.0-1", frame(0xF0, []byte{0x18}, noProps), packet.ProtocolError, false},
		{"header announcing more than Maximum Packet Size", "v5 §3.2.2.3.6", []byte{0x30, 0x80, 0x80, 0x80, 0x01}, packet.PacketTooLarge, true},
	}
	// Where the spec names no code, another one is as right.
	alt := map[string]packet.ReasonCode{"SUBSCRIBE packet id 0": packet.ProtocolError}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, _ := connectRaw(t, b.Addr, mqtttest.V5("bad"+tc.name))
			r.Write(tc.bytes)
			r.ExpectDisconnect(tc.code, waitFor, alt[tc.name])
			if !tc.v311 {
				return
			}
			r3, _ := connectRaw(t, b.Addr, mqtttest.V311("bad3"+tc.name))
			bytes := tc.bytes
			if tc.name == "second CONNECT" {
				bytes = frame(0x10, str("MQTT"), []byte{4, 2, 0, 60}, str("again"))
			}
			r3.Write(bytes)
			if got := r3.ExpectClosed(waitFor); len(got) != 0 {
				t.Fatalf("3.1.1 connection got %v before close [MQTT-4.8.0-1]", got)
			}
		})
	}
}

// [MQTT-3.1.0-1] the first packet must be CONNECT: anything else closes
// the connection without an answer.
func TestPacketBeforeConnectClosed_MQTT_3_1_0_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, bytes := range [][]byte{
		{0xC0, 0},                          // PINGREQ
		frame(0x30, str("a"), []byte("x")), // PUBLISH
		frame(0x82, []byte{0, 1}, str("a"), []byte{0}), // SUBSCRIBE
		{0xE0, 0}, // DISCONNECT
	} {
		r := dialRaw(t, b.Addr, packet.Version311)
		r.Write(bytes)
		if got := r.ExpectClosed(waitFor); len(got) != 0 {
			t.Fatalf("% x: got %v before close", bytes, got)
		}
	}
}

// Malformed CONNECT packets: [MQTT-3.1.2-3] reserved flag set,
// [MQTT-3.1.2-14] will QoS 3, [MQTT-3.1.2-11] will QoS without will flag,
// [MQTT-3.1.2-22] (3.1.1) password without user name, bad protocol name
// [MQTT-3.1.2-1]. v5 gets CONNACK with a reason code >= 0x80 (or just the
// close); 3.1.1 gets no CONNACK except for a protocol version refusal.
func TestMalformedConnectRefused_MQTT_3_1_2_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, tc := range []struct {
		name  string
		bytes []byte
		v5    bool
	}{
		{"v5 reserved flag", frame(0x10, str("MQTT"), []byte{5, 0x03, 0, 60}, []byte{0}, str("x")), true},
		{"v5 will QoS 3", frame(0x10, str("MQTT"), []byte{5, 0x1E, 0, 60}, []byte{0}, str("x"), []byte{0}, str("w"), str("p")), true},
		{"v5 will QoS without will flag", frame(0x10, str("MQTT"), []byte{5, 0x0A, 0, 60}, []byte{0}, str("x")), true},
		{"v5 client id invalid UTF-8", frame(0x10, str("MQTT"), []byte{5, 0x02, 0, 60}, []byte{0}, str("\xFF")), true},
		{"v5 truncated properties", frame(0x10, str("MQTT"), []byte{5, 0x02, 0, 60}, []byte{5, 0x11}), true},
		{"v5 bad protocol name", frame(0x10, str("MQTX"), []byte{5, 0x02, 0, 60}, []byte{0}, str("x")), true},
		{"3.1.1 reserved flag", frame(0x10, str("MQTT"), []byte{4, 0x03, 0, 60}, str("x")), false},
		{"3.1.1 password without username", frame(0x10, str("MQTT"), []byte{4, 0x42, 0, 60}, str("x"), str("pw")), false},
		{"3.1.1 truncated", frame(0x10, str("MQTT"), []byte{4, 0x02}), false},
		{"3.1.1 bad protocol name", frame(0x10, str("MQTX"), []byte{4, 0x02, 0, 60}, str("x")), false},
	} {
		v := packet.Version311
		if tc.v5 {
			v = packet.Version5
		}
		r := dialRaw(t, b.Addr, v)
		r.Write(tc.bytes)
		got := r.ExpectClosed(waitFor)
		for _, p := range got {
			ack, ok := p.(*packet.Connack)
			if !ok {
				t.Fatalf("%s: got %T", tc.name, p)
			}
			if ack.ReasonCode == packet.Success {
				t.Fatalf("%s: CONNACK accepted a malformed CONNECT", tc.name)
			}
			// [MQTT-3.1.2-1] with a wrong protocol name the server MAY
			// disconnect or process the CONNECT by another specification:
			// a refusing CONNACK is allowed there.
			if !tc.v5 && !strings.HasSuffix(tc.name, "bad protocol name") {
				t.Fatalf("%s: 3.1.1 CONNACK 0x%02X for a malformed CONNECT [MQTT-4.8.0-1]", tc.name, byte(ack.ReasonCode))
			}
		}
	}
}

// [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error:
// the broker must not answer with a SUBACK reason code that SUBACK does not
// allow (0x82 is not one); it disconnects with 0x82 or refuses the filter
// with a valid code.
func TestNoLocalOnSharedSubscription_MQTT_3_8_3_4(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("nlshare"))
	r.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "$share/g/a", NoLocal: true}}})
	f, err := r.ReadFrame(waitFor)
	if err != nil {
		t.Fatal(err)
	}
	p, err := packet.Decode(packet.Version5, f)
	if err != nil {
		t.Fatalf("broker sent an invalid packet % x: %v", f, err)
	}
	switch p := p.(type) {
	case *packet.Disconnect:
		if p.ReasonCode != packet.ProtocolError {
			t.Fatalf("DISCONNECT 0x%02X", byte(p.ReasonCode))
		}
	case *packet.Suback:
		if len(p.ReasonCodes) != 1 || p.ReasonCodes[0] < 0x80 {
			t.Fatalf("SUBACK %v granted No Local on a shared subscription", p.ReasonCodes)
		}
	default:
		t.Fatalf("got %T", p)
	}
}

// (v5 §4.7.3) invalid topic filters are refused per filter: v5 SUBACK
// 0x8F, 3.1.1 SUBACK 0x80, and the valid filters of the same SUBSCRIBE are
// granted.
func TestInvalidTopicFilterRefused_MQTT_4_7_1_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	bad := []string{"a/#/b", "a/b#", "a+/b", "#/a", ""}
	for _, v := range []byte{packet.Version311, packet.Version5} {
		r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: "filters", CleanStart: true})
		for _, f := range bad {
			r.Write(frame(0x82, []byte{0, 7}, map[bool][]byte{true: {0}, false: nil}[v == packet.Version5], str(f), []byte{1}, str("ok/+"), []byte{1}))
			p, err := r.Recv(waitFor)
			if err != nil {
				t.Fatalf("v%d %q: %v (a disconnect is allowed by the spec, but Herald refuses per filter)", v, f, err)
			}
			ack, ok := p.(*packet.Suback)
			if !ok {
				t.Fatalf("v%d %q: got %T %+v", v, f, p, p)
			}
			want := packet.TopicFilterInvalid
			if v != packet.Version5 {
				want = packet.SubackFailure311
			}
			if len(ack.ReasonCodes) != 2 || ack.ReasonCodes[0] != want || ack.ReasonCodes[1] != packet.GrantedQoS1 {
				t.Fatalf("v%d %q: SUBACK %v", v, f, ack.ReasonCodes)
			}
		}
		r.Disconnect()
	}
}

// The broker never panics or hangs on garbage: random bytes after CONNECT
// on many connections, then a normal client still works.
func TestRandomGarbageNeverBreaksBroker(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	rng := rand.New(rand.NewPCG(2, 42))
	for i := range 60 {
		v := []byte{packet.Version311, packet.Version5}[i%2]
		r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: "garbage", CleanStart: true})
		junk := make([]byte, 1+rng.IntN(300))
		for j := range junk {
			junk[j] = byte(rng.Uint32())
		}
		// Keep the first byte a real packet type most of the time.
		junk[0] = byte(rng.IntN(16))<<4 | junk[0]&0x0F
		r.Write(junk)
		// Either closed, or waiting for more bytes: both are fine; it must
		// not crash. Give it a moment, then move on.
		r.Conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var buf [1024]byte
		r.Conn.Read(buf[:])
		r.Conn.Close()
	}
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("after-garbage"))
	pub.SubscribeOne("g/t", 1)
	pub.Send(&packet.Publish{Topic: "g/t", QoS: 1, PacketID: 1, Payload: []byte("ok")})
	if p := mqtttest.Expect[*packet.Publish](pub); string(p.Payload) != "ok" {
		t.Fatalf("got %q", p.Payload)
	}
}

// A topic quoted in the reason for a refusal can be longer than a Reason
// String may be (%q writes a control character in 4 bytes): the DISCONNECT
// still goes out with its reason code [MQTT-4.13.1-1], the reason cut short.
func TestDisconnectReasonStringCappedForLongTopic(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("long-topic"))
	r.Write(frame(0x30, str("+"+strings.Repeat("\x01", 40000)), []byte{0}))
	got := r.ExpectClosed(waitFor)
	if len(got) != 1 {
		t.Fatalf("got %v, want one DISCONNECT", got)
	}
	d, ok := got[0].(*packet.Disconnect)
	if !ok || d.ReasonCode != packet.TopicNameInvalid {
		t.Fatalf("got %+v, want DISCONNECT 0x90", got[0])
	}
	if n := len(d.Props.ReasonString); n == 0 || n > 256 {
		t.Fatalf("reason string of %d bytes, want 1 to 256", n)
	}
}

// [MQTT-1.5.5-1] is MQTT 5's rule: a 3.1.1 client whose Remaining Length
// takes more bytes than it needs, which 3.1.1 (2.2.3) does not forbid, is
// answered as usual.
func TestRemainingLengthNotMinimalAcceptedFrom311(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V311("len311"))
	r.Write([]byte{0xC0, 0x80, 0x00})
	mqtttest.Expect[*packet.Pingresp](r)
}
