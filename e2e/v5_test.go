package e2e

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-3.3.1-5] [MQTT-3.3.1-6] a retained message is stored and sent to
// new subscribers with RETAIN=1; [MQTT-3.3.1-10] [MQTT-3.3.1-11] (3.1.1
// numbering -10/-11, v5 -6/-7) an empty retained payload deletes it and is
// not stored itself.
func TestRetainedStoredAndCleared_MQTT_3_3_1_5(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ret-pub"))
	pub.Publish(&packet.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("old")})
	pub.Publish(&packet.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("new")}) // replaces
	pub.Publish(&packet.Publish{Topic: "ret/b", QoS: 0, Retain: true, Payload: []byte("b")})
	// QoS 0 has no acknowledgement: a PINGREQ round trip on the same
	// connection proves the broker has handled the PUBLISH before it.
	pub.Send(&packet.Pingreq{})
	mqtttest.Expect[*packet.Pingresp](pub)
	for _, v := range []byte{packet.Version311, packet.Version5} {
		s, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: "ret-sub", CleanStart: true})
		s.SubscribeOne("ret/+", 1)
		got := map[string]string{}
		for range 2 {
			p := s.RecvPublish()
			if !p.Retain {
				t.Fatalf("v%d: retained message sent with RETAIN=0", v)
			}
			got[p.Topic] = string(p.Payload)
		}
		if got["ret/a"] != "new" || got["ret/b"] != "b" {
			t.Fatalf("v%d: retained %v", v, got)
		}
		s.ExpectNothing()
		s.Disconnect()
	}
	pub.Publish(&packet.Publish{Topic: "ret/a", QoS: 1, Retain: true}) // empty: delete
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("ret-sub2"))
	s.SubscribeOne("ret/+", 1)
	if p := s.RecvPublish(); p.Topic != "ret/b" {
		t.Fatalf("got %q after ret/a was cleared", p.Topic)
	}
	s.ExpectNothing()
}

// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] Retain Handling 0 sends
// retained messages at every subscribe, 1 only when the subscription is
// new, 2 never.
func TestRetainHandling_MQTT_3_3_1_9_10_11(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("rh-pub"))
	pub.Publish(&packet.Publish{Topic: "rh/t", QoS: 1, Retain: true, Payload: []byte("r")})
	for _, tc := range []struct {
		rh          byte
		first, more bool
	}{{0, true, true}, {1, true, false}, {2, false, false}} {
		s, _ := connectRaw(t, b.Addr, mqtttest.V5("rh-sub"))
		for i, want := range []bool{tc.first, tc.more} {
			s.Subscribe(uint16(i+1), packet.Properties{}, packet.Subscription{Filter: "rh/t", QoS: 1, RetainHandling: tc.rh})
			if want {
				if p := s.RecvPublish(); !p.Retain || string(p.Payload) != "r" {
					t.Fatalf("RH %d subscribe %d: %+v", tc.rh, i+1, p)
				}
			} else {
				s.ExpectNothing()
			}
		}
		s.Disconnect()
	}
}

// [MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published: 0 clears RETAIN on
// live forwarded messages, 1 keeps it as published; [MQTT-3.3.1-9] (3.1.1)
// live messages always go with RETAIN=0.
func TestRetainAsPublished_MQTT_3_3_1_12_13(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	rap0, _ := connectRaw(t, b.Addr, mqtttest.V5("rap0"))
	rap0.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "rap/t", QoS: 1})
	rap1, _ := connectRaw(t, b.Addr, mqtttest.V5("rap1"))
	rap1.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "rap/t", QoS: 1, RetainAsPublished: true})
	old, _ := connectRaw(t, b.Addr, mqtttest.V311("rap311"))
	old.SubscribeOne("rap/t", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("rap-pub"))
	for _, retain := range []bool{true, false} {
		for _, qos := range []byte{0, 1} {
			pub.Publish(&packet.Publish{Topic: "rap/t", QoS: qos, Retain: retain, Payload: []byte("x")})
			if p := rap0.RecvPublish(); p.Retain {
				t.Fatalf("RAP 0, QoS %d: RETAIN=1 on a live message", qos)
			}
			if p := rap1.RecvPublish(); p.Retain != retain {
				t.Fatalf("RAP 1, QoS %d: RETAIN=%v, published %v", qos, p.Retain, retain)
			}
			if p := old.RecvPublish(); p.Retain {
				t.Fatalf("3.1.1, QoS %d: RETAIN=1 on a live message", qos)
			}
		}
	}
}

// [MQTT-3.3.1-12] [MQTT-3.3.1-13] Retain As Published holds on a shared
// subscription as on any other, at QoS 0 and QoS 1.
func TestRetainAsPublishedOnSharedSubscription_MQTT_3_3_1_13(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	rap1, _ := connectRaw(t, b.Addr, mqtttest.V5("raps1"))
	rap1.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "$share/g1/raps/t", QoS: 1, RetainAsPublished: true})
	rap0, _ := connectRaw(t, b.Addr, mqtttest.V5("raps0"))
	rap0.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "$share/g0/raps/t", QoS: 1})
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("raps-pub"))
	for _, retain := range []bool{true, false} {
		for _, qos := range []byte{0, 1} {
			pub.Publish(&packet.Publish{Topic: "raps/t", QoS: qos, Retain: retain, Payload: []byte("x")})
			if p := rap1.RecvPublish(); p.Retain != retain {
				t.Fatalf("shared, RAP 1, QoS %d: RETAIN=%v, published %v", qos, p.Retain, retain)
			}
			if p := rap0.RecvPublish(); p.Retain {
				t.Fatalf("shared, RAP 0, QoS %d: RETAIN=1 on a live message", qos)
			}
		}
	}
}

// [MQTT-3.8.3-3] No Local: a client's own messages are not sent back to
// it on that subscription; without No Local they are.
func TestNoLocal_MQTT_3_8_3_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	nl, _ := connectRaw(t, b.Addr, mqtttest.V5("nl"))
	nl.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "nl/t", QoS: 1, NoLocal: true})
	echo, _ := connectRaw(t, b.Addr, mqtttest.V5("echo"))
	echo.SubscribeOne("nl/t", 1)
	nl.Publish(&packet.Publish{Topic: "nl/t", QoS: 1, Payload: []byte("from-nl")}) // only its PUBACK comes back
	if p := echo.RecvPublish(); string(p.Payload) != "from-nl" {
		t.Fatalf("echo got %q", p.Payload)
	}
	echo.Publish(&packet.Publish{Topic: "nl/t", Payload: []byte("from-echo")})
	if p := echo.RecvPublish(); string(p.Payload) != "from-echo" {
		t.Fatalf("echo (no No Local) got %q, want its own message", p.Payload)
	}
	if p := nl.RecvPublish(); string(p.Payload) != "from-echo" {
		t.Fatalf("No Local subscriber got %q", p.Payload)
	}
	nl.ExpectNothing()
}

// [MQTT-3.3.2-6] the Message Expiry Interval forwarded is the time left;
// [MQTT-3.3.2-5] a message that expires before delivery is not delivered,
// neither from a session's queue nor as a retained message; a message
// without expiry is forwarded without the property.
func TestMessageExpiry_MQTT_3_3_2_5_6(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	conn := func(clean bool) *packet.Connect {
		c := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "mx", CleanStart: clean}
		c.Props.SessionExpiry, c.Props.HasSessionExpiry = 60, true
		return c
	}
	s, _ := connectRaw(t, b.Addr, conn(true))
	s.SubscribeOne("mx/#", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("mx-pub"))
	expiring := func(topic string, secs uint32, retain bool, qos byte) *packet.Publish {
		p := &packet.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(topic)}
		p.Props.MessageExpiry, p.Props.HasMessageExpiry = secs, true
		return p
	}
	// Online: forwarded at once with (nearly) the full interval, QoS 0 and 1.
	for _, qos := range []byte{0, 1} {
		pub.Publish(expiring("mx/now", 10, false, qos))
		p := s.RecvPublish()
		if !p.Props.HasMessageExpiry || p.Props.MessageExpiry < 9 || p.Props.MessageExpiry > 10 {
			t.Fatalf("QoS %d: forwarded expiry %v/%d, want 9..10", qos, p.Props.HasMessageExpiry, p.Props.MessageExpiry)
		}
	}
	pub.Publish(&packet.Publish{Topic: "mx/none", QoS: 1, Payload: []byte("x")})
	if p := s.RecvPublish(); p.Props.HasMessageExpiry {
		t.Fatalf("expiry %d forwarded for a message without one", p.Props.MessageExpiry)
	}

	// Offline: one message expires while queued, one survives with less left.
	s.Disconnect()
	b.waitConnected(t, 1) // only the publisher: the messages below are queued, not in flight
	pub.Publish(expiring("mx/short", 1, false, 1))
	pub.Publish(expiring("mx/long", 5, false, 1))
	pub.Publish(expiring("mx/retained", 1, true, 1))
	time.Sleep(2100 * time.Millisecond)
	s, _ = connectRaw(t, b.Addr, conn(false))
	p := s.RecvPublish()
	if p.Topic != "mx/long" {
		t.Fatalf("got %q: an expired message was delivered", p.Topic)
	}
	if !p.Props.HasMessageExpiry || p.Props.MessageExpiry > 3 || p.Props.MessageExpiry < 2 {
		t.Fatalf("after 2.1s queued, forwarded expiry %d, want 2..3 of 5", p.Props.MessageExpiry)
	}
	s.ExpectNothing()

	// The expired retained message is not sent to a new subscriber.
	n, _ := connectRaw(t, b.Addr, mqtttest.V5("mx-new"))
	n.SubscribeOne("mx/retained", 1)
	n.ExpectNothing()
}

// [MQTT-3.3.2-12] [MQTT-3.3.2-10] a client may set a Topic Alias with a
// topic and then publish with the alias alone; the broker resolves it.
// [MQTT-3.3.2-9] an alias above the broker's Topic Alias Maximum is 0x94;
// an unknown alias with an empty topic is a protocol error; aliases do not
// survive the connection [MQTT-3.3.2-7].
func TestTopicAliasClientToServer_MQTT_3_3_2_12(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.TopicAliasMaximum = 4 })
	s := watcher(t, b.Addr, "ta-sub", "ta/#")
	pub, ack := connectRaw(t, b.Addr, mqtttest.V5("ta-pub"))
	if ack.Props.TopicAliasMaximum != 4 {
		t.Fatalf("CONNACK Topic Alias Maximum %d", ack.Props.TopicAliasMaximum)
	}
	set := &packet.Publish{Topic: "ta/one", QoS: 1, Payload: []byte("1")}
	set.Props.TopicAlias = 4
	pub.Publish(set)
	use := &packet.Publish{QoS: 1, Payload: []byte("2")}
	use.Props.TopicAlias = 4
	pub.Publish(use)
	re := &packet.Publish{Topic: "ta/two", QoS: 1, Payload: []byte("3")} // remap
	re.Props.TopicAlias = 4
	pub.Publish(re)
	use2 := &packet.Publish{QoS: 1, PacketID: 5, Payload: []byte("4")}
	use2.Props.TopicAlias = 4
	pub.Publish(use2)
	for _, want := range []string{"ta/one", "ta/one", "ta/two", "ta/two"} {
		if p := s.RecvPublish(); p.Topic != want || p.Props.TopicAlias != 0 {
			t.Fatalf("got topic %q alias %d, want %q without the publisher's alias", p.Topic, p.Props.TopicAlias, want)
		}
	}

	tooBig := &packet.Publish{Topic: "ta/x", Payload: []byte("x")}
	tooBig.Props.TopicAlias = 5
	pub.Send(tooBig)
	pub.ExpectDisconnect(packet.TopicAliasInvalid, waitFor)

	// A new connection does not know the old connection's aliases.
	pub2, _ := connectRaw(t, b.Addr, mqtttest.V5("ta-pub"))
	stale := &packet.Publish{Payload: []byte("x")}
	stale.Props.TopicAlias = 4
	pub2.Send(stale)
	pub2.ExpectDisconnect(packet.ProtocolError, waitFor)
	s.ExpectNothing()
}

// aliasReader resolves server-to-client topic aliases like a client must,
// failing on an alias it was never told about or above its maximum.
type aliasReader struct {
	max     uint16
	aliases map[uint16]string
	used    int // publishes that arrived with an alias and no topic
}

func (a *aliasReader) resolve(t *testing.T, p *packet.Publish) string {
	t.Helper()
	al := p.Props.TopicAlias
	if al == 0 {
		if p.Topic == "" {
			t.Fatal("PUBLISH with neither topic nor alias")
		}
		return p.Topic
	}
	if al > a.max {
		t.Fatalf("broker used topic alias %d above the client's maximum %d [MQTT-3.3.2-8]", al, a.max)
	}
	if p.Topic != "" {
		a.aliases[al] = p.Topic
		return p.Topic
	}
	topic, ok := a.aliases[al]
	if !ok {
		t.Fatalf("broker used topic alias %d it never established", al)
	}
	a.used++
	return topic
}

// [MQTT-3.3.2-8] [MQTT-3.1.2-26] the broker assigns topic aliases on
// outgoing messages only when the client's Topic Alias Maximum allows,
// never above it, and never to a client that set none [MQTT-3.1.2-27].
func TestTopicAliasServerToClient_MQTT_3_3_2_8(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := mqtttest.V5("tas")
	cp.Props.TopicAliasMaximum = 2
	s, _ := connectRaw(t, b.Addr, cp)
	s.SubscribeOne("tas/#", 1)
	none, _ := connectRaw(t, b.Addr, mqtttest.V5("tas-none"))
	none.SubscribeOne("tas/#", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("tas-pub"))
	topics := []string{"tas/a", "tas/a", "tas/b", "tas/c", "tas/a", "tas/b", "tas/c", "tas/a"}
	ar := &aliasReader{max: 2, aliases: map[uint16]string{}}
	for i, topic := range topics {
		pub.Publish(&packet.Publish{Topic: topic, QoS: byte(i % 2), Payload: []byte(topic)})
		p := s.RecvPublish()
		if got := ar.resolve(t, p); got != topic || string(p.Payload) != topic {
			t.Fatalf("message %d: resolved %q, want %q", i, got, topic)
		}
		if p := none.RecvPublish(); p.Props.TopicAlias != 0 || p.Topic != topic {
			t.Fatalf("alias %d sent to a client with Topic Alias Maximum 0", p.Props.TopicAlias)
		}
	}
	if ar.used == 0 {
		t.Fatal("the broker never used a topic alias although the client allowed 2")
	}
}

// [MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties, in order;
// [MQTT-3.3.2-4] payload format indicator; [MQTT-3.3.2-20] content type;
// [MQTT-3.3.2-15] [MQTT-3.3.2-16] response topic and correlation data —
// all passed through unchanged on every delivery path (shared encoded form,
// per-client form with a subscription id or alias, QoS 0/1/2).
func TestPropertiesPassedThrough_MQTT_3_3_2_15_to_20(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	plain, _ := connectRaw(t, b.Addr, mqtttest.V5("pp-plain"))
	plain.SubscribeOne("pp/t", 2)
	withID, _ := connectRaw(t, b.Addr, mqtttest.V5("pp-id"))
	withID.Subscribe(1, packet.Properties{SubscriptionIDs: []uint32{7}}, packet.Subscription{Filter: "pp/+", QoS: 2})
	acp := mqtttest.V5("pp-alias")
	acp.Props.TopicAliasMaximum = 10
	aliased, _ := connectRaw(t, b.Addr, acp)
	aliased.SubscribeOne("pp/#", 2)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("pp-pub"))
	user := []packet.UserProperty{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "b", Value: "3"}}
	for qos := byte(0); qos <= 2; qos++ {
		pub.Publish(&packet.Publish{Topic: "pp/t", QoS: qos, Payload: []byte("{}"), Props: packet.Properties{
			PayloadFormat: 1, ContentType: "application/json", ResponseTopic: "pp/reply",
			CorrelationData: []byte{0, 0xFF, 7}, User: user,
		}})
		for _, s := range []*mqtttest.Client{plain, withID, aliased} {
			p := s.RecvPublish()
			pp := p.Props
			if pp.PayloadFormat != 1 || pp.ContentType != "application/json" || pp.ResponseTopic != "pp/reply" ||
				!bytes.Equal(pp.CorrelationData, []byte{0, 0xFF, 7}) || !slices.Equal(pp.User, user) {
				t.Fatalf("QoS %d: properties changed: %+v", qos, pp)
			}
		}
	}
}

// (v5 §3.2.2.3) [MQTT-4.13.1-1] a packet larger than the broker's
// Maximum Packet Size closes the connection: v5 with DISCONNECT 0x95,
// 3.1.1 without a DISCONNECT.
func TestMaximumPacketSizeInbound0x95(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.MaxPacketSize = 1024 })
	r, ack := connectRaw(t, b.Addr, mqtttest.V5("mps-in"))
	if ack.Props.MaximumPacketSize != 1024 {
		t.Fatalf("CONNACK Maximum Packet Size %d", ack.Props.MaximumPacketSize)
	}
	r.Publish(&packet.Publish{Topic: "mps", QoS: 1, Payload: make([]byte, 900)}) // fits
	r.Send(&packet.Publish{Topic: "mps", QoS: 1, PacketID: 2, Payload: make([]byte, 2000)})
	r.ExpectDisconnect(packet.PacketTooLarge, waitFor)

	r3, _ := connectRaw(t, b.Addr, mqtttest.V311("mps-in3"))
	r3.Send(&packet.Publish{Topic: "mps", Payload: make([]byte, 2000)})
	if got := r3.ExpectClosed(waitFor); len(got) != 0 {
		t.Fatalf("3.1.1 got %v", got)
	}
}

// [MQTT-3.1.2-24] [MQTT-3.1.2-25] the broker never sends a client a packet
// larger than its Maximum Packet Size: such a message is discarded as if
// delivered (it does not block the QoS 1 window), smaller ones still flow,
// including retained messages at subscribe time.
func TestMaximumPacketSizeOutboundNeverExceeded_MQTT_3_1_2_24(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("mpo-pub"))
	pub.Publish(&packet.Publish{Topic: "mpo/big-retained", QoS: 1, Retain: true, Payload: make([]byte, 500)})
	pub.Publish(&packet.Publish{Topic: "mpo/small-retained", QoS: 1, Retain: true, Payload: []byte("s")})
	const limit = 200
	cp := mqtttest.V5("mpo")
	cp.Props.MaximumPacketSize = limit
	cp.Props.ReceiveMaximum = 1
	s, _ := connectRaw(t, b.Addr, cp)
	s.SubscribeOne("mpo/#", 1)
	if p := s.RecvPublish(); p.Topic != "mpo/small-retained" {
		t.Fatalf("got %q", p.Topic)
	}
	for _, qos := range []byte{0, 1, 1, 1} {
		pub.Publish(&packet.Publish{Topic: "mpo/big", QoS: qos, Payload: make([]byte, 500)})
	}
	pub.Publish(&packet.Publish{Topic: "mpo/small", QoS: 1, Payload: []byte("ok")})
	frame, err := s.ReadFrame(waitFor)
	if err != nil {
		t.Fatalf("small message after discarded large ones: %v", err)
	}
	if len(frame) > limit {
		t.Fatalf("broker sent a %d-byte packet to a client allowing %d", len(frame), limit)
	}
	p, err := packet.Decode(packet.Version5, frame)
	if err != nil {
		t.Fatal(err)
	}
	if pp, ok := p.(*packet.Publish); !ok || pp.Topic != "mpo/small" {
		t.Fatalf("got %+v, want the small message", p)
	}
}

// [MQTT-3.1.2-24] [MQTT-3.3.2-8] a message discarded for being larger than
// the client's Maximum Packet Size must not leave behind a topic alias the
// client never saw: the next message on that topic must be resolvable.
func TestTopicAliasNotConsumedByDiscardedOversizeMessage(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := mqtttest.V5("tao")
	cp.Props.MaximumPacketSize = 200
	cp.Props.TopicAliasMaximum = 5
	s, _ := connectRaw(t, b.Addr, cp)
	s.SubscribeOne("tao/#", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("tao-pub"))
	ar := &aliasReader{max: 5, aliases: map[uint16]string{}}
	for _, qos := range []byte{0, 1} {
		pub.Publish(&packet.Publish{Topic: "tao/t", QoS: qos, Payload: make([]byte, 500)}) // discarded
		pub.Publish(&packet.Publish{Topic: "tao/t", QoS: qos, Payload: []byte("small")})
		if got := ar.resolve(t, s.RecvPublish()); got != "tao/t" {
			t.Fatalf("QoS %d: resolved %q", qos, got)
		}
	}
}

// [MQTT-3.3.4-3] (v5 §3.8.2) retained messages sent at subscribe time
// carry the subscription's identifier.
func TestRetainedCarrySubscriptionIdentifier(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("rsid-pub"))
	pub.Publish(&packet.Publish{Topic: "rsid/t", QoS: 1, Retain: true, Payload: []byte("r")})
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("rsid"))
	s.Subscribe(1, packet.Properties{SubscriptionIDs: []uint32{77}}, packet.Subscription{Filter: "rsid/#", QoS: 1})
	p := s.RecvPublish()
	if !p.Retain || !slices.Equal(p.Props.SubscriptionIDs, []uint32{77}) {
		t.Fatalf("retained: retain %v ids %v, want [77]", p.Retain, p.Props.SubscriptionIDs)
	}
}

// [MQTT-3.3.4-3] [MQTT-3.3.4-4] a PUBLISH carries the Subscription
// Identifiers of the receiver's own matching subscriptions, and none when
// those have none: another session's identifier never leaks into it (the
// router pools its per-message state between publishes).
func TestSubscriptionIdentifierNotLeakedToAnotherSession_MQTT_3_3_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	a, _ := connectRaw(t, b.Addr, mqtttest.V5("sidleak-a"))
	a.Subscribe(1, packet.Properties{SubscriptionIDs: []uint32{5}}, packet.Subscription{Filter: "sidleak/#"})
	// Two subscriptions without identifiers: its deliveries are merged.
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("sidleak-b"))
	s.SubscribeOne("sidleak/t", 0)
	s.SubscribeOne("sidleak/x", 0)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("sidleak-pub"))
	for i := range 10 {
		pub.Publish(&packet.Publish{Topic: "sidleak/t", Payload: []byte("m")})
		if p := a.RecvPublish(); !slices.Equal(p.Props.SubscriptionIDs, []uint32{5}) {
			t.Fatalf("publish %d: subscriber with id 5 got ids %v", i, p.Props.SubscriptionIDs)
		}
		if p := s.RecvPublish(); len(p.Props.SubscriptionIDs) != 0 {
			t.Fatalf("publish %d: subscriber without ids got ids %v", i, p.Props.SubscriptionIDs)
		}
	}
}
