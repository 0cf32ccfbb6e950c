package e2e

import (
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-3.1.2-1] [MQTT-3.1.2-2] MQTT 3.1 (MQIsdp, level 3), 3.1.1 (level 4)
// and 5.0 (level 5) are accepted on the same listener, each answered in its
// own version, and a message crosses between them.
func TestProtocolVersions_31_311_5_OnOneListenerInteroperate(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	var subs []*mqtttest.Client
	for _, v := range []byte{packet.Version31, packet.Version311, packet.Version5} {
		r, ack := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: "ver-" + string('0'+v), CleanStart: true})
		if ack.SessionPresent {
			t.Fatalf("level %d: session present on a clean session", v)
		}
		r.SubscribeOne("versions/x", 1)
		subs = append(subs, r)
	}
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ver-pub"))
	pub.Publish(&packet.Publish{Topic: "versions/x", QoS: 1, Payload: []byte("hello")})
	for i, r := range subs {
		p := r.RecvPublish()
		if p.Topic != "versions/x" || string(p.Payload) != "hello" || p.QoS != 1 {
			t.Fatalf("subscriber %d got %+v", i, p)
		}
	}
}

// [MQTT-4.12.0-1] the broker offers no enhanced authentication: a CONNECT
// with an Authentication Method, even an empty one (a zero-length string
// is a method, not its absence), gets CONNACK 0x8C and is closed.
func TestAuthenticationMethodRefused_MQTT_4_12_0_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, method := range []string{"SCRAM-SHA-1", ""} {
		r := dialRaw(t, b.Addr, packet.Version5)
		r.Write(frame(0x10, str("MQTT"), []byte{5, 0x02, 0, 60}, []byte{byte(3 + len(method)), 0x15}, str(method), str("am")))
		ack := mqtttest.Expect[*packet.Connack](r)
		if ack.ReasonCode != packet.BadAuthenticationMethod {
			t.Fatalf("method %q: CONNACK 0x%02X, want 0x8C", method, byte(ack.ReasonCode))
		}
		r.ExpectClosed(waitFor)
	}
}

// [MQTT-3.1.2-2] an unsupported protocol level is answered with CONNACK
// 0x01 (3.1.1 form) or 0x84 (v5 form) and the connection is closed.
func TestUnsupportedProtocolLevelRefused_MQTT_3_1_2_2(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, tc := range []struct {
		level byte
		frame []byte
		code  byte
	}{
		// CONNECT "MQTT" level 6: a future version gets the v5 refusal.
		{6, []byte{0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 6, 0x02, 0, 60, 0, 0}, 0x84},
		// CONNECT "MQTT" level 2: an old one gets the 3.1.1 return code 1.
		{2, []byte{0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 2, 0x02, 0, 60, 0, 0}, 0x01},
	} {
		r := dialRaw(t, b.Addr, packet.Version311)
		r.Write(tc.frame)
		frame, err := r.ReadFrame(waitFor)
		if err != nil {
			t.Fatalf("level %d: no CONNACK: %v", tc.level, err)
		}
		if frame[0] != 0x20 || len(frame) < 4 || frame[3] != tc.code {
			t.Fatalf("level %d: got % x, want CONNACK code 0x%02X", tc.level, frame, tc.code)
		}
		r.ExpectClosed(waitFor)
	}
}

// [MQTT-3.1.2-4] Clean Start discards an existing session; [MQTT-3.2.2-2]
// [MQTT-3.2.2-3] Session Present reports whether one was resumed, and a
// resumed session keeps its subscriptions. Both for v5 and 3.1.1.
func TestCleanStartAndSessionPresent_MQTT_3_1_2_4_MQTT_3_2_2_2(t *testing.T) {
	t.Parallel()
	for _, v := range []byte{packet.Version311, packet.Version5} {
		b := startBroker(t, nil)
		id := "clean-" + string('0'+v)
		persistent := func(clean bool) *packet.Connect {
			c := &packet.Connect{ProtocolVersion: v, ClientID: id, CleanStart: clean}
			if v == packet.Version5 {
				c.Props.SessionExpiry, c.Props.HasSessionExpiry = 60, true
			}
			return c
		}
		r, ack := connectRaw(t, b.Addr, persistent(false))
		if ack.SessionPresent {
			t.Fatalf("v%d: first connection reports a session present", v)
		}
		r.SubscribeOne("clean/t", 1)
		r.Disconnect()

		r, ack = connectRaw(t, b.Addr, persistent(false))
		if !ack.SessionPresent {
			t.Fatalf("v%d: resumed session not reported present", v)
		}
		pub, _ := connectRaw(t, b.Addr, mqtttest.V5(id+"-pub"))
		pub.Publish(&packet.Publish{Topic: "clean/t", QoS: 1, Payload: []byte("kept")})
		if p := r.RecvPublish(); string(p.Payload) != "kept" {
			t.Fatalf("v%d: got %q from the resumed subscription", v, p.Payload)
		}
		r.Disconnect()

		r, ack = connectRaw(t, b.Addr, persistent(true))
		if ack.SessionPresent {
			t.Fatalf("v%d: Clean Start reported a session present", v)
		}
		pub.Publish(&packet.Publish{Topic: "clean/t", QoS: 1, Payload: []byte("gone")})
		r.ExpectNothing()
	}
}

// [MQTT-3.1.2-6] (3.1.1) a Clean Session connection's session ends with
// the connection: messages published meanwhile are not kept for it.
func TestCleanSessionEndsAtDisconnect_MQTT_3_1_2_6(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V311("cs-sub"))
	r.SubscribeOne("cs/t", 1)
	r.Disconnect()
	b.waitConnected(t, 0)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("cs-pub"))
	if rc := pub.Publish(&packet.Publish{Topic: "cs/t", QoS: 1, Payload: []byte("x")}); rc != packet.NoMatchingSubscribers {
		t.Fatalf("PUBACK 0x%02X, want 0x10 no matching subscribers", byte(rc))
	}
	r, ack := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "cs-sub"})
	if ack.SessionPresent {
		t.Fatal("session present after a clean session ended")
	}
	r.ExpectNothing()
}

// [MQTT-3.1.2-23] [MQTT-4.1.0-2] a v5 session lives for its Session Expiry
// Interval after the connection closes, keeping the messages that arrive
// meanwhile, and is discarded once it has passed.
func TestSessionExpiry_MQTT_3_1_2_23(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	conn := func(clean bool) *packet.Connect {
		c := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "exp", CleanStart: clean}
		c.Props.SessionExpiry, c.Props.HasSessionExpiry = 1, true
		return c
	}
	r, _ := connectRaw(t, b.Addr, conn(true))
	r.SubscribeOne("exp/t", 1)
	r.Disconnect()

	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("exp-pub"))
	pub.Publish(&packet.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("queued")})

	time.Sleep(300 * time.Millisecond) // well inside the 1s expiry
	r, ack := connectRaw(t, b.Addr, conn(false))
	if !ack.SessionPresent {
		t.Fatal("session gone before its expiry interval")
	}
	if p := r.RecvPublish(); string(p.Payload) != "queued" {
		t.Fatalf("queued message: got %q", p.Payload)
	}
	r.Disconnect()

	time.Sleep(1800 * time.Millisecond) // past the 1s expiry
	if rc := pub.Publish(&packet.Publish{Topic: "exp/t", QoS: 1, Payload: []byte("late")}); rc != packet.NoMatchingSubscribers {
		t.Fatalf("PUBACK 0x%02X after expiry, want 0x10: the expired session still subscribes", byte(rc))
	}
	_, ack = connectRaw(t, b.Addr, conn(false))
	if ack.SessionPresent {
		t.Fatal("session present after its expiry interval")
	}
}

// [MQTT-3.1.2-23] absent Session Expiry Interval means 0: the v5 session
// ends when the connection closes.
func TestSessionExpiryZeroEndsAtClose_MQTT_3_1_2_23(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("exp0"))
	r.SubscribeOne("exp0/t", 1)
	r.Disconnect()
	b.waitConnected(t, 0)
	_, ack := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "exp0"})
	if ack.SessionPresent {
		t.Fatal("session present although its expiry was 0")
	}
}

// (v5 §3.14.2.2.2) DISCONNECT may not set a non-zero Session Expiry after
// CONNECT set 0: protocol error 0x82. (The rule has no id; [MQTT-3.14.2-2]
// is that a server's DISCONNECT carries no Session Expiry.)
func TestDisconnectCannotRaiseZeroExpiry(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("dexp"))
	d := &packet.Disconnect{}
	d.Props.SessionExpiry, d.Props.HasSessionExpiry = 30, true
	r.Send(d)
	r.ExpectDisconnect(packet.ProtocolError, waitFor)
}

// [MQTT-3.1.4-3] a second connection with the same client id takes the
// session over: the old v5 connection gets DISCONNECT 0x8E and is closed;
// the new one sees the session present when it asks to resume.
func TestTakeoverDisconnectsOldWith0x8E_MQTT_3_1_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	conn := func() *packet.Connect {
		c := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "take"}
		c.Props.SessionExpiry, c.Props.HasSessionExpiry = 60, true
		return c
	}
	old, _ := connectRaw(t, b.Addr, conn())
	old.SubscribeOne("take/t", 1)
	fresh, ack := connectRaw(t, b.Addr, conn())
	if !ack.SessionPresent {
		t.Fatal("takeover did not resume the session")
	}
	old.ExpectDisconnect(packet.SessionTakenOver, waitFor)

	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("take-pub"))
	pub.Publish(&packet.Publish{Topic: "take/t", QoS: 1, Payload: []byte("to-new")})
	if p := fresh.RecvPublish(); string(p.Payload) != "to-new" {
		t.Fatalf("new connection got %q", p.Payload)
	}
}

// [MQTT-3.1.2-23] (v5 §3.1.2.11.2) a session with Session Expiry 0, and
// [MQTT-3.1.2-6] (3.1.1) a Clean Session one, lasts only as long as its
// network connection: a takeover ends it, so a new connection with Clean
// Start 0 gets no session [MQTT-3.2.2-3] and none of its subscriptions.
func TestTakeoverOfSessionEndingWithItsConnectionResumesNothing_MQTT_3_1_2_23(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("tk0-pub"))
	for _, v := range []byte{packet.Version311, packet.Version5} {
		id := "tk0-" + string('0'+v)
		old, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: id, CleanStart: true})
		old.SubscribeOne("tk0/"+id, 1)
		fresh, ack := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: id})
		if ack.SessionPresent {
			t.Fatalf("v%d: takeover resumed a session that ended with its connection", v)
		}
		old.ExpectClosed(waitFor)
		if rc := pub.Publish(&packet.Publish{Topic: "tk0/" + id, QoS: 1, Payload: []byte("x")}); rc != packet.NoMatchingSubscribers {
			t.Fatalf("v%d: PUBACK 0x%02X, want 0x10: the ended session's subscription was kept", v, byte(rc))
		}
		fresh.ExpectNothing()
	}
}

// [MQTT-3.1.4-3] takeover of a 3.1.1 connection just closes the old one.
func TestTakeover311ClosesOld_MQTT_3_1_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	old, _ := connectRaw(t, b.Addr, mqtttest.V311("take311"))
	connectRaw(t, b.Addr, mqtttest.V311("take311"))
	if got := old.ExpectClosed(waitFor); len(got) != 0 {
		t.Fatalf("3.1.1 connection got %v before close", got)
	}
}

// [MQTT-3.1.3-6] [MQTT-3.2.2-16] a v5 client with an empty client id gets
// an Assigned Client Identifier; [MQTT-3.1.3-7] [MQTT-3.1.3-8] a 3.1.1
// client may use an empty id only with Clean Session, else CONNACK 0x02.
func TestAssignedClientIdentifier_MQTT_3_2_2_16(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	_, ack := connectRaw(t, b.Addr, mqtttest.V5(""))
	id1 := ack.Props.AssignedClientID
	if id1 == "" {
		t.Fatal("no Assigned Client Identifier for an empty v5 client id")
	}
	_, ack = connectRaw(t, b.Addr, mqtttest.V5(""))
	if ack.Props.AssignedClientID == "" || ack.Props.AssignedClientID == id1 {
		t.Fatalf("assigned ids not unique: %q and %q", id1, ack.Props.AssignedClientID)
	}
	_, ack = connectRaw(t, b.Addr, mqtttest.V5("named"))
	if ack.Props.AssignedClientID != "" {
		t.Fatalf("assigned %q to a client that named itself", ack.Props.AssignedClientID)
	}
	connectRaw(t, b.Addr, mqtttest.V311("")) // clean session: accepted

	r := dialRaw(t, b.Addr, packet.Version311)
	r.Send(&packet.Connect{ProtocolVersion: packet.Version311, ClientID: ""})
	if ack := mqtttest.Expect[*packet.Connack](r); ack.ReasonCode != packet.ConnRefusedIdentifier {
		t.Fatalf("CONNACK 0x%02X for an empty id without clean session, want 0x02", byte(ack.ReasonCode))
	}
	r.ExpectClosed(waitFor)
}

// [MQTT-3.1.2-22] a client silent for 1.5 times its Keep Alive is
// disconnected (v5: DISCONNECT 0x8D) — not earlier. ([MQTT-3.1.2-24] in
// 3.1.1; in v5 that id is the Maximum Packet Size rule.)
func TestKeepAliveTimeoutAtOneAndAHalf_MQTT_3_1_2_22(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	start := time.Now()
	r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "ka", CleanStart: true, KeepAlive: 1})
	r.ExpectDisconnect(packet.KeepAliveTimeout, 4*time.Second)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("disconnected after %v, before 1.5 x keep alive", el)
	}
}

// [MQTT-3.1.2-24] (3.1.1) [MQTT-3.12.4-1] a client that keeps sending PINGREQ
// within its keep alive stays connected and gets PINGRESP each time.
func TestKeepAlivePingKeepsConnection_MQTT_3_12_4_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "ping", CleanStart: true, KeepAlive: 1})
	for range 4 {
		time.Sleep(700 * time.Millisecond)
		r.Send(&packet.Pingreq{})
		mqtttest.Expect[*packet.Pingresp](r)
	}
}

// [MQTT-3.2.2-21] [MQTT-3.2.2-22] with Server Keep Alive set, CONNACK
// carries it and the broker enforces it instead of the client's value.
func TestServerKeepAliveInConnackAndEnforced_MQTT_3_2_2_21(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.ServerKeepAlive = 1 })
	start := time.Now()
	r, ack := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "ska", CleanStart: true, KeepAlive: 60})
	if !ack.Props.HasServerKeepAlive || ack.Props.ServerKeepAlive != 1 {
		t.Fatalf("CONNACK Server Keep Alive = %v/%d, want 1", ack.Props.HasServerKeepAlive, ack.Props.ServerKeepAlive)
	}
	r.ExpectDisconnect(packet.KeepAliveTimeout, 4*time.Second)
	if el := time.Since(start); el < 1500*time.Millisecond {
		t.Fatalf("disconnected after %v", el)
	}
}

// A connection that never sends CONNECT is closed after ConnectTimeout
// (the broker's sweep runs once a second), with nothing written to it.
func TestConnectTimeoutClosesSilentConnection(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.ConnectTimeout = 200 * time.Millisecond })
	silent := dialRaw(t, b.Addr, packet.Version311)
	partial := dialRaw(t, b.Addr, packet.Version311)
	partial.Write([]byte{0x10, 0x10, 0, 4, 'M', 'Q'}) // half a CONNECT
	for _, r := range []*mqtttest.Client{silent, partial} {
		if got := r.ExpectClosed(2500 * time.Millisecond); len(got) != 0 {
			t.Fatalf("got %v before close", got)
		}
	}
}

// (v5 §3.2.2.3) CONNACK states the server's limits and capabilities:
// Receive Maximum, Maximum Packet Size, Topic Alias Maximum always; Maximum
// QoS, Retain / Wildcard / Subscription Identifier / Shared Subscription
// Available only when not the default (absent means supported).
func TestConnackCapabilityProperties(t *testing.T) {
	t.Parallel()
	t.Run("defaults", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t, nil)
		_, ack := connectRaw(t, b.Addr, mqtttest.V5("caps"))
		p := ack.Props
		if p.ReceiveMaximum != 128 || p.MaximumPacketSize != 1<<20 || p.TopicAliasMaximum != 64 {
			t.Fatalf("ReceiveMaximum %d MaximumPacketSize %d TopicAliasMaximum %d", p.ReceiveMaximum, p.MaximumPacketSize, p.TopicAliasMaximum)
		}
		if p.HasMaximumQoS || p.HasRetainAvailable || p.HasWildcardSub || p.HasSubIDAvailable || p.HasSharedSub {
			t.Fatalf("capabilities announced as restricted by default: %+v", p)
		}
	})
	t.Run("restricted", func(t *testing.T) {
		t.Parallel()
		b := startBroker(t, func(o *broker.Options) {
			o.MaximumQoS = 1
			o.RetainAvailable = false
			o.WildcardSubs = false
			o.SubIDs = false
			o.SharedSubs = false
			o.ReceiveMaximum = 10
			o.TopicAliasMaximum = 3
			o.MaxPacketSize = 4096
		})
		r, ack := connectRaw(t, b.Addr, mqtttest.V5("caps"))
		p := ack.Props
		if !p.HasMaximumQoS || p.MaximumQoS != 1 || !p.HasRetainAvailable || p.RetainAvailable != 0 ||
			!p.HasWildcardSub || p.WildcardSubAvailable != 0 || !p.HasSubIDAvailable || p.SubIDAvailable != 0 ||
			!p.HasSharedSub || p.SharedSubAvailable != 0 || p.ReceiveMaximum != 10 || p.TopicAliasMaximum != 3 ||
			p.MaximumPacketSize != 4096 {
			t.Fatalf("CONNACK properties %+v", p)
		}
		// The broker acts as it announced: (v5 §3.8.4) QoS downgraded to
		// the maximum. Wildcard and shared filters and subscription
		// identifiers end the connection: see
		// TestUnavailableFeatureSubscribeIsProtocolError_MQTT_4_13_1_1.
		codes := r.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "a/b", QoS: 2})
		if len(codes) != 1 || codes[0] != packet.GrantedQoS1 {
			t.Fatalf("SUBACK %v, want [%v]", codes, packet.GrantedQoS1)
		}
		// [MQTT-3.2.2-14] retain when not available: DISCONNECT 0x9A.
		r.Send(&packet.Publish{Topic: "a/b", Retain: true, Payload: []byte("x")})
		r.ExpectDisconnect(packet.RetainNotSupported, waitFor)

		// [MQTT-3.2.2-11] QoS above Maximum QoS: DISCONNECT 0x9B.
		r2, _ := connectRaw(t, b.Addr, mqtttest.V5("caps2"))
		r2.Send(&packet.Publish{Topic: "a/b", QoS: 2, PacketID: 1, Payload: []byte("x")})
		r2.ExpectDisconnect(packet.QoSNotSupported, waitFor)
	})
}

// (v5 §3.14.2.2.2) a Session Expiry Interval in DISCONNECT replaces the
// one from CONNECT: 0 ends the session when the connection closes.
func TestDisconnectSessionExpiryZeroEndsSession(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := mqtttest.V5("dexp0")
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 60, true
	r, _ := connectRaw(t, b.Addr, cp)
	r.SubscribeOne("dexp0/t", 1)
	d := &packet.Disconnect{}
	d.Props.HasSessionExpiry = true // value 0
	r.Send(d)
	r.ExpectClosed(waitFor)
	b.waitConnected(t, 0)
	cp = &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "dexp0"}
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 60, true
	if _, ack := connectRaw(t, b.Addr, cp); ack.SessionPresent {
		t.Fatal("session present after DISCONNECT set its expiry to 0")
	}
}
