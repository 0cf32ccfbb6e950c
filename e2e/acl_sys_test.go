package e2e

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

func withDenyACL(o *broker.Options) {
	o.ACL = &auth.ACL{Default: true, Rules: []auth.Rule{
		{Action: auth.All, Allow: true, Topic: "secret/%u/#"},
		{Action: auth.All, Allow: false, Topic: "secret/#"},
	}}
}

// (v5 §3.4.2.1) (v5 §3.3.5) an ACL-denied publish is not delivered;
// v5 PUBACK / PUBREC carry 0x87 Not authorized; 3.1.1, which has no
// negative acknowledgement, gets a plain PUBACK. %u rules let a user reach
// its own subtree.
func TestACLDeniedPublish0x87(t *testing.T) {
	t.Parallel()
	b := startBroker(t, withDenyACL)
	// A deny rule refuses every overlapping filter ("#" too), so the
	// subscriber watches its own subtree and the hook sees all routing.
	all, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "acl-all", CleanStart: true, UsernameFlag: true, Username: "ann"})
	all.SubscribeOne("secret/ann/#", 2)
	pub, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "acl-pub", CleanStart: true, UsernameFlag: true, Username: "ann"})
	if rc := pub.Publish(&packet.Publish{Topic: "secret/x", QoS: 1, Payload: []byte("no")}); rc != packet.NotAuthorized {
		t.Fatalf("PUBACK 0x%02X, want 0x87", byte(rc))
	}
	if rc := pub.Publish(&packet.Publish{Topic: "secret/x", QoS: 2, Payload: []byte("no")}); rc != packet.NotAuthorized {
		t.Fatalf("PUBREC 0x%02X, want 0x87", byte(rc))
	}
	pub.Publish(&packet.Publish{Topic: "secret/x", QoS: 0, Payload: []byte("no")})
	pub3, _ := connectRaw(t, b.Addr, mqtttest.V311("acl-pub3"))
	if rc := pub3.Publish(&packet.Publish{Topic: "secret/x", QoS: 1, Payload: []byte("no")}); rc != packet.Success {
		t.Fatalf("3.1.1 PUBACK 0x%02X", byte(rc))
	}
	all.ExpectNothing()
	if n := b.hooks.count("secret/x"); n != 0 {
		t.Fatalf("%d denied publishes were routed", n)
	}

	pub.Publish(&packet.Publish{Topic: "secret/ann/x", QoS: 1, Payload: []byte("own")})
	if p := all.RecvPublish(); p.Topic != "secret/ann/x" {
		t.Fatalf("got %q", p.Topic)
	}
	if n := b.Server.Stats().DroppedACL.Load(); n != 4 {
		t.Fatalf("DroppedACL = %d, want 4", n)
	}
}

// (v5 §3.9.3) an ACL-denied subscription is refused per filter: v5
// SUBACK 0x87, 3.1.1 SUBACK 0x80; allowed filters in the same SUBSCRIBE
// are granted. A will on a denied topic refuses the CONNECT with 0x87.
func TestACLDeniedSubscribe0x87And0x80(t *testing.T) {
	t.Parallel()
	b := startBroker(t, withDenyACL)
	for _, v := range []byte{packet.Version311, packet.Version5} {
		r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: v, ClientID: "acl-sub", CleanStart: true})
		codes := r.Subscribe(1, packet.Properties{},
			packet.Subscription{Filter: "secret/x", QoS: 1},
			packet.Subscription{Filter: "secret/+", QoS: 1},
			packet.Subscription{Filter: "public/x", QoS: 1})
		deny := packet.NotAuthorized
		if v != packet.Version5 {
			deny = packet.SubackFailure311
		}
		if want := []packet.ReasonCode{deny, deny, packet.GrantedQoS1}; !slices.Equal(codes, want) {
			t.Fatalf("v%d SUBACK %v, want %v", v, codes, want)
		}
		r.Disconnect()
	}
	r := dialRaw(t, b.Addr, packet.Version5)
	r.Send(&packet.Connect{ProtocolVersion: packet.Version5, ClientID: "acl-will", CleanStart: true,
		WillFlag: true, WillTopic: "secret/w", WillPayload: []byte("x")})
	if ack := mqtttest.Expect[*packet.Connack](r); ack.ReasonCode != packet.NotAuthorized {
		t.Fatalf("CONNACK 0x%02X for a will on a denied topic, want 0x87", byte(ack.ReasonCode))
	}
}

// Issue 2: the usual broker statistics are published under $SYS/broker/
// (clients connected, messages in/out, subscriptions, uptime, version),
// and [MQTT-4.7.2-1] "#" does not receive them.
func TestSysTopicsPublished(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.SysInterval = 100 * time.Millisecond })
	hash := watcher(t, b.Addr, "sys-hash", "#")
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("sys"))
	s.SubscribeOne("$SYS/#", 0)
	want := []string{
		"$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
		"$SYS/broker/messages/received", "$SYS/broker/messages/sent", "$SYS/broker/subscriptions/count",
		"$SYS/broker/bytes/received", "$SYS/broker/bytes/sent",
	}
	got := map[string]string{}
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		missing := false
		for _, w := range want {
			if _, ok := got[w]; !ok {
				missing = true
			}
		}
		if !missing {
			break
		}
		p := s.RecvPublish()
		got[p.Topic] = string(p.Payload)
	}
	for _, w := range want {
		if _, ok := got[w]; !ok {
			t.Errorf("no %s within %v (got %v)", w, waitFor, got)
		}
	}
	if n, err := strconv.Atoi(got["$SYS/broker/clients/connected"]); err != nil || n < 2 {
		t.Errorf("clients/connected = %q, want >= 2", got["$SYS/broker/clients/connected"])
	}
	if n, err := strconv.Atoi(got["$SYS/broker/subscriptions/count"]); err != nil || n < 2 {
		t.Errorf("subscriptions/count = %q, want >= 2", got["$SYS/broker/subscriptions/count"])
	}
	if v := got["$SYS/broker/version"]; v == "" {
		t.Error("empty version")
	}
	hash.ExpectNothing()
}

// $SYS belongs to the broker: with no ACL at all, a client PUBLISH to
// $SYS (retained or not, any QoS) is refused like an ACL denial (v5
// PUBACK/PUBREC 0x87; 3.1.1 acknowledged, not delivered), so the broker's
// retained $SYS values can be neither replaced nor deleted.
func TestClientCannotPublishToSys(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) { o.SysInterval = time.Hour }) // the version only
	version := "herald " + broker.Version
	watch, _ := connectRaw(t, b.Addr, mqtttest.V5("sys-watch"))
	watch.SubscribeOne("$SYS/#", 1)
	if p := watch.RecvPublish(); p.Topic != "$SYS/broker/version" || string(p.Payload) != version {
		t.Fatalf("got %q %q, want the version", p.Topic, p.Payload)
	}
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("sys-pub"))
	for _, topic := range []string{"$SYS/broker/version", "$SYS"} {
		for qos := byte(1); qos <= 2; qos++ {
			if rc := pub.Publish(&packet.Publish{Topic: topic, QoS: qos, Retain: true, Payload: []byte("pwned")}); rc != packet.NotAuthorized {
				t.Fatalf("%s QoS %d: ack 0x%02X, want 0x87", topic, qos, byte(rc))
			}
		}
	}
	pub.Publish(&packet.Publish{Topic: "$SYS/broker/version", Retain: true}) // QoS 0 delete
	pub3, _ := connectRaw(t, b.Addr, mqtttest.V311("sys-pub3"))
	if rc := pub3.Publish(&packet.Publish{Topic: "$SYS/broker/version", QoS: 1, Retain: true, Payload: []byte("pwned")}); rc != packet.Success {
		t.Fatalf("3.1.1 PUBACK 0x%02X", byte(rc))
	}
	watch.ExpectNothing()
	if n := b.Server.Stats().DroppedACL.Load(); n != 6 {
		t.Fatalf("DroppedACL = %d, want 6", n)
	}
	late, _ := connectRaw(t, b.Addr, mqtttest.V5("sys-late"))
	late.SubscribeOne("$SYS/broker/version", 0)
	if p := late.RecvPublish(); string(p.Payload) != version {
		t.Fatalf("retained version %q, want %q", p.Payload, version)
	}
}

// A will on $SYS is refused at CONNECT (v5 0x87, 3.1.1 5), as a will the
// ACL denies: it would otherwise be published when the client goes.
func TestWillOnSysRefused(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	for _, v := range []byte{packet.Version311, packet.Version5} {
		for _, topic := range []string{"$SYS/broker/version", "$SYS"} {
			r := dialRaw(t, b.Addr, v)
			r.Send(&packet.Connect{ProtocolVersion: v, ClientID: "sys-will", CleanStart: true,
				WillFlag: true, WillTopic: topic, WillRetain: true, WillPayload: []byte("pwned")})
			want := packet.NotAuthorized
			if v != packet.Version5 {
				want = packet.ConnackCode311(want)
			}
			if ack := mqtttest.Expect[*packet.Connack](r); ack.ReasonCode != want {
				t.Fatalf("v%d will on %s: CONNACK 0x%02X, want 0x%02X", v, topic, byte(ack.ReasonCode), byte(want))
			}
		}
	}
	// Other $ topics are left to the ACL.
	r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "app-will", CleanStart: true,
		WillFlag: true, WillTopic: "$app/status", WillPayload: []byte("gone")})
	r.Disconnect()
}

// storedTopics returns the topics of st's retained messages.
func storedTopics(t *testing.T, st store.Store) []string {
	t.Helper()
	msgs, err := st.LoadRetained()
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, m := range msgs {
		topics = append(topics, m.Topic)
	}
	return topics
}

// $SYS values are retained in memory only: every tick would otherwise be a
// store commit per topic, delaying the acknowledgements waiting on the
// store, for values that are stale after a restart.
func TestSysRetainedNeverStored(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	b := startBroker(t, func(o *broker.Options) {
		o.Store = st
		o.SysInterval = 50 * time.Millisecond
	})
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("sys-mem"))
	s.SubscribeOne("$SYS/broker/uptime", 0)
	s.RecvPublish()
	b.hooks.waitTopic(t, "$SYS/broker/version", waitFor)
	if topics := storedTopics(t, st); len(topics) != 0 {
		t.Fatalf("retained in the store: %v, want no $SYS topic", topics)
	}
}

// Older versions stored $SYS values: recovery deletes them instead of
// serving them (frozen for good with sys_interval 0); other retained
// messages are recovered.
func TestStaleSysRetainedDeletedAtRecovery(t *testing.T) {
	t.Parallel()
	st := store.NewMemory()
	for _, m := range []*store.Message{
		{Topic: "$SYS/broker/uptime", Payload: []byte("999999")},
		{Topic: "$SYS/broker/version", Payload: []byte("herald 0.0.0-old")},
		{Topic: "app/kept", Payload: []byte("kept")},
	} {
		if err := st.SaveRetained(m); err != nil {
			t.Fatal(err)
		}
	}
	b := startBroker(t, func(o *broker.Options) { o.Store = st }) // no $SYS
	if topics := storedTopics(t, st); !slices.Equal(topics, []string{"app/kept"}) {
		t.Fatalf("retained in the store after recovery: %v, want [app/kept]", topics)
	}
	s, _ := connectRaw(t, b.Addr, mqtttest.V5("sys-stale"))
	s.SubscribeOne("$SYS/#", 0)
	s.ExpectNothing()
	s.SubscribeOne("app/kept", 0)
	if p := s.RecvPublish(); string(p.Payload) != "kept" {
		t.Fatalf("got %q on %s", p.Payload, p.Topic)
	}
}
