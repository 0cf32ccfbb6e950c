package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// [MQTT-4.7.1-1] [MQTT-4.7.1-2] [MQTT-4.7.1-3] the multi-level wildcard
// '#' matches its parent and any number of levels; the single-level
// wildcard '+' matches exactly one level, including an empty one.
func TestWildcards_MQTT_4_7_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cases := []struct {
		filter string
		match  []string
		miss   []string
	}{
		{"sport/tennis/player1/#", []string{"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"}, []string{"sport/tennis/player2", "sport/tennis"}},
		{"sport/#", []string{"sport", "sport/x", "sport/x/y"}, []string{"sports", "other/sport"}},
		{"#", []string{"a", "a/b", "/a", "a/"}, nil},
		{"sport/tennis/+", []string{"sport/tennis/player1", "sport/tennis/player2", "sport/tennis/"}, []string{"sport/tennis/player1/ranking", "sport/tennis"}},
		{"sport/+", []string{"sport/", "sport/x"}, []string{"sport", "sport/x/y"}},
		{"+/+", []string{"/finance", "a/b", "/"}, []string{"a", "a/b/c"}},
		{"/+", []string{"/finance"}, []string{"finance", "a/b"}},
		{"+", []string{"finance", "x"}, []string{"/finance", "a/b"}},
		{"+/tennis/#", []string{"sport/tennis", "sport/tennis/x/y"}, []string{"sport/tennisx", "tennis"}},
		{"a/+/c", []string{"a/b/c", "a//c"}, []string{"a/b/c/d", "a/c"}},
	}
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("wc-pub"))
	for i, tc := range cases {
		s, _ := connectRaw(t, b.Addr, mqtttest.V5(fmt.Sprintf("wc-sub-%d", i)))
		s.SubscribeOne(tc.filter, 0)
		for _, name := range append(slices.Clone(tc.miss), tc.match...) {
			pub.Publish(&packet.Publish{Topic: name, Payload: []byte(name)})
		}
		for _, name := range tc.match {
			p := mqtttest.Expect[*packet.Publish](s)
			if p.Topic != name {
				t.Fatalf("filter %q: got %q, want %q (a miss delivered or order lost)", tc.filter, p.Topic, name)
			}
		}
		s.ExpectNothing()
		s.Disconnect()
	}
}

// [MQTT-4.7.2-1] topics starting with '$' are not matched by filters
// starting with a wildcard; "$SYS/#" and "$x/+" match them.
func TestDollarTopicsNotMatchedByLeadingWildcards_MQTT_4_7_2_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	hash := watcher(t, b.Addr, "d-hash", "#")
	plus := watcher(t, b.Addr, "d-plus", "+/info")
	dollar := watcher(t, b.Addr, "d-dollar", "$app/#")
	dplus := watcher(t, b.Addr, "d-dplus", "$app/+")
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("d-pub"))
	pub.Publish(&packet.Publish{Topic: "$app/info", QoS: 1, Payload: []byte("x")})
	for _, w := range []*mqtttest.Client{dollar, dplus} {
		if p := w.RecvPublish(); p.Topic != "$app/info" {
			t.Fatalf("got %q", p.Topic)
		}
	}
	hash.ExpectNothing()
	plus.ExpectNothing()
	pub.Publish(&packet.Publish{Topic: "app/info", QoS: 1, Payload: []byte("x")})
	hash.RecvPublish()
	plus.RecvPublish()
}

// [MQTT-3.3.4-2] [MQTT-3.3.4-3] (v5) a client whose subscriptions overlap
// gets one PUBLISH at the highest QoS of the matching subscriptions,
// carrying every matching Subscription Identifier.
func TestOverlappingSubscriptionsV5_OneMessageMaxQoSAllIDs_MQTT_3_3_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("ov"))
	s.Subscribe(1, packet.Properties{SubscriptionIDs: []uint32{11}}, packet.Subscription{Filter: "ov/+", QoS: 0})
	s.Subscribe(2, packet.Properties{SubscriptionIDs: []uint32{22}}, packet.Subscription{Filter: "ov/#", QoS: 2})
	s.Subscribe(3, packet.Properties{}, packet.Subscription{Filter: "ov/t", QoS: 1})
	s.Subscribe(4, packet.Properties{SubscriptionIDs: []uint32{44}}, packet.Subscription{Filter: "other/#", QoS: 1})
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ov-pub"))
	pub.Publish(&packet.Publish{Topic: "ov/t", QoS: 2, Payload: []byte("x")})
	p := s.RecvPublish()
	if p.QoS != 2 {
		t.Fatalf("QoS %d, want 2 (the maximum of the matches)", p.QoS)
	}
	ids := slices.Sorted(slices.Values(p.Props.SubscriptionIDs))
	if !slices.Equal(ids, []uint32{11, 22}) {
		t.Fatalf("subscription identifiers %v, want [11 22]", p.Props.SubscriptionIDs)
	}
	s.ExpectNothing()

	// The QoS is still capped by the message's own QoS.
	pub.Publish(&packet.Publish{Topic: "ov/t", QoS: 1, Payload: []byte("y")})
	if p := s.RecvPublish(); p.QoS != 1 {
		t.Fatalf("QoS %d, want 1", p.QoS)
	}
	s.ExpectNothing()
}

// [MQTT-3.3.5-1] (3.1.1) overlapping subscriptions: the message is
// delivered at the maximum QoS of the matches (Herald sends one copy).
func TestOverlappingSubscriptions311_MaxQoS_MQTT_3_3_5_1(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s, _ := connectRaw(t, b.Addr, mqtttest.V311("ov3"))
	s.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "ov3/#", QoS: 1}, packet.Subscription{Filter: "ov3/+", QoS: 0})
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("ov3-pub"))
	pub.Publish(&packet.Publish{Topic: "ov3/t", QoS: 2, Payload: []byte("x")})
	if p := s.RecvPublish(); p.QoS != 1 {
		t.Fatalf("QoS %d, want 1", p.QoS)
	}
	s.ExpectNothing()
}

// [MQTT-3.8.4-3] a SUBSCRIBE for an existing filter replaces the
// subscription (its QoS here) and does not add a second one.
func TestResubscribeReplaces_MQTT_3_8_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("resub"))
	s.SubscribeOne("resub/t", 2)
	s.SubscribeOne("resub/t", 0)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("resub-pub"))
	pub.Publish(&packet.Publish{Topic: "resub/t", QoS: 2, Payload: []byte("x")})
	if p := s.RecvPublish(); p.QoS != 0 {
		t.Fatalf("QoS %d after resubscribing at 0", p.QoS)
	}
	s.ExpectNothing()
}

// [MQTT-3.10.4-1] [MQTT-3.10.4-5] after UNSUBSCRIBE nothing more is sent
// for the filter; v5 UNSUBACK reports 0x11 for a filter not subscribed.
func TestUnsubscribe_MQTT_3_10_4(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("unsub"))
	s.SubscribeOne("unsub/t", 1)
	s.Send(&packet.Unsubscribe{PacketID: 9, Filters: []string{"unsub/t", "never/t"}})
	ack := mqtttest.Expect[*packet.Unsuback](s)
	if ack.PacketID != 9 || !slices.Equal(ack.ReasonCodes, []packet.ReasonCode{packet.Success, packet.NoSubscriptionExisted}) {
		t.Fatalf("UNSUBACK %+v", ack)
	}
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("unsub-pub"))
	pub.Publish(&packet.Publish{Topic: "unsub/t", QoS: 1, Payload: []byte("x")})
	s.ExpectNothing()
}

// [MQTT-4.7.3-1] [MQTT-4.8.0-1] 3.1.1 has no UNSUBACK code to refuse a
// filter with: an UNSUBSCRIBE holding an invalid one (here empty, and a
// '#' not last) closes the connection, with no UNSUBACK and before any of
// its filters is removed.
func TestUnsubscribeInvalidFilterClosesA311Connection(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, bad := range []string{"", "a/#/b"} {
		p := mqtttest.V311("unsub-bad")
		p.CleanStart = false
		s, _ := connectRaw(t, b.Addr, p)
		s.SubscribeOne("keep/t", 1)
		s.Send(&packet.Unsubscribe{PacketID: 3, Filters: []string{"keep/t", bad}})
		for _, got := range s.ExpectClosed(2 * time.Second) {
			t.Fatalf("filter %q: got %T before the close, want nothing", bad, got)
		}
		s, _ = connectRaw(t, b.Addr, p)
		pub, _ := connectRaw(t, b.Addr, mqtttest.V311("unsub-bad-pub"))
		pub.Publish(&packet.Publish{Topic: "keep/t", QoS: 1, PacketID: 1, Payload: []byte("still")})
		if m := s.RecvPublish(); string(m.Payload) != "still" {
			t.Fatalf("filter %q: got %q", bad, m.Payload)
		}
		s.Disconnect()
		pub.Disconnect()
	}
}

// [MQTT-4.8.2-2] (v5 §4.8.2) each message on a shared subscription
// goes to exactly one member of each group; the broker distributes them
// across members; non-shared subscribers still get every message; shared
// subscriptions receive no retained messages at subscribe time.
func TestSharedSubscriptions_OneMemberPerMessage_MQTT_4_8_2(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("sh-pub"))
	pub.Publish(&packet.Publish{Topic: "sh/t", QoS: 1, Retain: true, Payload: []byte("retained")})

	var g1, g2 []*mqtttest.Client
	for i := range 3 {
		r, _ := connectRaw(t, b.Addr, mqtttest.V5(fmt.Sprintf("sh-g1-%d", i)))
		r.SubscribeOne("$share/g1/sh/#", 1)
		g1 = append(g1, r)
	}
	for i := range 2 {
		r, _ := connectRaw(t, b.Addr, mqtttest.V5(fmt.Sprintf("sh-g2-%d", i)))
		r.SubscribeOne("$share/g2/sh/+", 1)
		g2 = append(g2, r)
	}
	plain, _ := connectRaw(t, b.Addr, mqtttest.V5("sh-plain"))
	plain.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "sh/#", QoS: 1, RetainHandling: 2})

	const n = 30
	for i := range n {
		pub.Publish(&packet.Publish{Topic: "sh/t", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))})
	}
	for i := range n {
		if p := plain.RecvPublish(); string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("plain subscriber: got %q, want %d", p.Payload, i)
		}
	}
	for name, group := range map[string][]*mqtttest.Client{"g1": g1, "g2": g2} {
		seen := map[string]int{}
		for mi, m := range group {
			got := 0
			for {
				p, err := m.Recv(quietFor)
				if err != nil {
					break
				}
				pp, ok := p.(*packet.Publish)
				if !ok {
					t.Fatalf("%s: got %T", name, p)
				}
				m.AckPublish(pp)
				if pp.Retain || string(pp.Payload) == "retained" {
					t.Fatalf("%s member %d got a retained message on a shared subscription", name, mi)
				}
				seen[string(pp.Payload)]++
				got++
			}
			if got == 0 {
				t.Fatalf("%s member %d got no messages out of %d: not distributed", name, mi, n)
			}
		}
		for i := range n {
			if c := seen[fmt.Sprint(i)]; c != 1 {
				t.Fatalf("%s: message %d delivered %d times, want exactly once per group", name, i, c)
			}
		}
	}
}

// Issue 2: a shared-subscription member that leaves does not take its
// queued messages with it — they go to another member of the group.
func TestSharedSubscriptionLeavingMemberReleasesQueue(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	slowCP := mqtttest.V5("shq-slow")
	slowCP.Props.ReceiveMaximum = 1 // one in flight, the rest queue
	slow, _ := connectRaw(t, b.Addr, slowCP)
	slow.SubscribeOne("$share/q/shq/t", 1)
	fast, _ := connectRaw(t, b.Addr, mqtttest.V5("shq-fast"))
	fast.SubscribeOne("$share/q/shq/t", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("shq-pub"))
	const n = 8
	for i := range n {
		pub.Publish(&packet.Publish{Topic: "shq/t", QoS: 1, PacketID: uint16(i + 1), Payload: []byte(fmt.Sprint(i))})
	}
	held := mqtttest.Expect[*packet.Publish](slow) // in flight, never acknowledged
	slow.ExpectNothing()                           // the rest of its share is queued
	slow.Conn.Close()                              // session expiry 0: the session ends

	seen := map[string]bool{string(held.Payload): true}
	for {
		p, err := fast.Recv(time.Second)
		if err != nil {
			break
		}
		pp := p.(*packet.Publish)
		fast.AckPublish(pp)
		seen[string(pp.Payload)] = true
	}
	for i := range n {
		if !seen[fmt.Sprint(i)] {
			t.Errorf("message %d was lost with the member that left", i)
		}
	}
}

// (v5 §4.8.2) the in-flight (sent, unacknowledged) QoS 1 message of a
// shared-subscription member whose session ends SHOULD go to another
// member (v5 section 4.8.2).
func TestSharedSubscriptionInflightOfEndedMemberRedelivered(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	a, _ := connectRaw(t, b.Addr, mqtttest.V5("shi-a"))
	a.SubscribeOne("$share/i/shi/t", 1)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("shi-pub"))
	pub.Publish(&packet.Publish{Topic: "shi/t", QoS: 1, Payload: []byte("m")})
	mqtttest.Expect[*packet.Publish](a) // never acknowledged
	other, _ := connectRaw(t, b.Addr, mqtttest.V5("shi-b"))
	other.SubscribeOne("$share/i/shi/t", 1)
	a.Conn.Close() // session ends
	if p := other.RecvPublish(); string(p.Payload) != "m" {
		t.Fatalf("got %q", p.Payload)
	}
}

// [MQTT-4.8.2-5] a QoS 2 message whose delivery to a shared-subscription
// member had started (PUBLISH sent, no PUBREC) is not sent to another
// member when that member's session ends; one still queued, never sent,
// is (v5 section 4.8.2).
func TestSharedSubscriptionQoS2InflightOfEndedMemberNotRedelivered_MQTT_4_8_2_5(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := mqtttest.V5("shq2-a")
	cp.Props.ReceiveMaximum = 1 // the first in flight, the second queued
	a, _ := connectRaw(t, b.Addr, cp)
	a.SubscribeOne("$share/q2/shq2/t", 2)
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("shq2-pub"))
	pub.Publish(&packet.Publish{Topic: "shq2/t", QoS: 2, PacketID: 1, Payload: []byte("sent")})
	pub.Publish(&packet.Publish{Topic: "shq2/t", QoS: 2, PacketID: 2, Payload: []byte("queued")})
	if p := mqtttest.Expect[*packet.Publish](a); string(p.Payload) != "sent" { // no PUBREC
		t.Fatalf("member got %q first", p.Payload)
	}
	other, _ := connectRaw(t, b.Addr, mqtttest.V5("shq2-b"))
	other.SubscribeOne("$share/q2/shq2/t", 2)
	a.Conn.Close() // session expiry 0: the session ends
	var got []string
	for {
		p, err := other.Recv(quietFor)
		if err != nil {
			break
		}
		switch p := p.(type) {
		case *packet.Publish:
			got = append(got, string(p.Payload))
			other.Send(&packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID})
		case *packet.Ack: // PUBREL
			other.Send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p.PacketID})
		}
	}
	if !slices.Equal(got, []string{"queued"}) {
		t.Fatalf("other member got %q, want only the never-sent message", got)
	}
}

// (v5 §4.8.2) an invalid shared filter is refused per filter with 0x8F.
// (With SharedSubs or WildcardSubs disabled a v5 client is disconnected
// with 0x9E or 0xA2: see
// TestUnavailableFeatureSubscribeIsProtocolError_MQTT_4_13_1_1.)
func TestSharedFilterInvalid0x8F(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) {})
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("shbad"))
	codes := r.Subscribe(1, packet.Properties{},
		packet.Subscription{Filter: "$share/g+/x"},
		packet.Subscription{Filter: "$share/g"},
		packet.Subscription{Filter: "ok/x", QoS: 1})
	want := []packet.ReasonCode{packet.TopicFilterInvalid, packet.TopicFilterInvalid, packet.GrantedQoS1}
	if !slices.Equal(codes, want) {
		t.Fatalf("SUBACK %v, want %v", codes, want)
	}
}
