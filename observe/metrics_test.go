package observe

import (
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// Every documented family is exposed with HELP text, from the first scrape,
// next to the Go runtime and process collectors.
func TestMetricsExposeEveryDocumentedFamily(t *testing.T) {
	st, err := store.OpenPebble(t.TempDir(), store.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, rigOptions{store: st})
	mqtttest.Connect(t, r.mqtt, mqtttest.V5("one"))
	_, help := r.scrape(t)
	for _, name := range []string{
		"herald_build_info", "herald_start_time_seconds",
		"herald_clients_connected", "herald_connections_accepted_total",
		"herald_listener_clients_connected", "herald_sessions",
		"herald_messages_received_total", "herald_messages_sent_total", "herald_messages_routed_total",
		"herald_bytes_received_total", "herald_bytes_sent_total",
		"herald_messages_dropped_total",
		"herald_queued_messages", "herald_queued_bytes", "herald_queued_messages_max",
		"herald_inflight_messages", "herald_incoming_qos2_pending",
		"herald_subscriptions", "herald_retained_messages",
		"herald_limit_refusals_total", "herald_publishers_paused_total",
		"herald_messages_sent_by_qos_total", "herald_disconnects_total",
		"herald_memory_budget_used_bytes", "herald_memory_budget_bytes",
		"herald_store_commit_duration_seconds", "herald_store_sync_commits_total", "herald_store_wal_sync_duration_seconds",
		"go_goroutines", "go_memstats_heap_alloc_bytes", "process_open_fds",
	} {
		if help[name] == "" {
			t.Errorf("family %s missing or without HELP", name)
		}
	}
}

// A real publish through the broker moves the message, byte, routing,
// retained and subscription metrics; the drop counters name every cause.
func TestMetricsChangeAfterPublish(t *testing.T) {
	r := startRig(t, rigOptions{})
	sub := connectPaho(t, r.mqtt, "sub")
	pub := connectPaho(t, r.mqtt, "pub")
	before, _ := r.scrape(t)

	if _, err := sub.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "room/1", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctxT(t), &paho.Publish{Topic: "room/1", QoS: 1, Retain: true, Payload: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if m := sub.next(t); string(m.Payload) != "hello" {
		t.Fatalf("received %q", m.Payload)
	}
	grew := []string{
		"herald_messages_received_total",
		"herald_messages_sent_total",
		"herald_bytes_received_total",
		"herald_bytes_sent_total",
		series("herald_messages_routed_total", "origin", "client", "qos", "1"),
	}
	// The broker counts a sent message just after writing it, so the
	// subscriber may see it a moment before the counter moves.
	var after map[string]float64
	eventually(t, "the counters to grow after a publish", func() bool {
		after, _ = r.scrape(t)
		for _, s := range grew {
			if after[s] <= before[s] {
				return false
			}
		}
		return true
	})
	want := map[string]float64{
		"herald_clients_connected":                                             2,
		"herald_connections_accepted_total":                                    2,
		series("herald_sessions", "state", "online"):                           2,
		series("herald_sessions", "state", "offline"):                          0,
		series("herald_listener_clients_connected", "listener", "tcp-test"):    2,
		"herald_subscriptions":                                                 1,
		"herald_retained_messages":                                             1,
		series("herald_messages_routed_total", "origin", "client", "qos", "1"): 1,
		series("herald_messages_routed_total", "origin", "client", "qos", "0"): 0,
		"herald_build_info{version=\"" + broker.Version + "\"}":                1,
	}
	for s, v := range want {
		if got, ok := after[s]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", s, got, ok, v)
		}
	}
	for _, cause := range []string{"qos0", "queue_full", "too_large", "expired", "acl"} {
		if _, ok := after[series("herald_messages_dropped_total", "cause", cause)]; !ok {
			t.Errorf("no herald_messages_dropped_total for cause %s", cause)
		}
	}
	for _, limit := range []string{"max_connections", "connect_rate", "flapping", "publish_rate"} {
		if _, ok := after[series("herald_limit_refusals_total", "limit", limit)]; !ok {
			t.Errorf("no herald_limit_refusals_total for limit %s", limit)
		}
	}
}

// Messages for an offline persistent session show in the queue gauges and
// the session counts as offline; a QoS 0 message to it counts as a drop.
func TestMetricsQueueDepthOfOfflineSession(t *testing.T) {
	r := startRig(t, rigOptions{})
	c, _ := mqtttest.Connect(t, r.mqtt, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "away", CleanStart: true,
		Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}})
	c.SubscribeOne("inbox/away", 1)
	c.Send(&packet.Disconnect{})
	eventually(t, "the session to go offline", func() bool {
		s, _ := r.scrape(t)
		return s[series("herald_sessions", "state", "offline")] == 1
	})

	pub, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("pub"))
	for range 3 {
		pub.Publish(&packet.Publish{Topic: "inbox/away", QoS: 1, Payload: []byte("12345")})
	}
	pub.Publish(&packet.Publish{Topic: "inbox/away", QoS: 0, Payload: []byte("lost")})

	var s map[string]float64
	// QoS 0 has no acknowledgement: wait for its drop to be counted too.
	eventually(t, "three queued messages and one QoS 0 drop", func() bool {
		s, _ = r.scrape(t)
		return s["herald_queued_messages"] == 3 && s[series("herald_messages_dropped_total", "cause", "qos0")] == 1
	})
	// Each queued copy counts its topic and payload: 10 + 5 bytes. So
	// does the memory budget, and its HELP says so.
	if s["herald_queued_bytes"] != 45 || s["herald_queued_messages_max"] != 3 || s["herald_memory_budget_used_bytes"] != 45 {
		t.Errorf("queued bytes %v, max %v, budget used %v; want 45, 3 and 45",
			s["herald_queued_bytes"], s["herald_queued_messages_max"], s["herald_memory_budget_used_bytes"])
	}
	if _, help := r.scrape(t); !strings.Contains(help["herald_memory_budget_used_bytes"], "topic, payload, properties") {
		t.Errorf("HELP of herald_memory_budget_used_bytes %q does not say what it counts", help["herald_memory_budget_used_bytes"])
	}
}

// With a Pebble store, the store metrics count commits.
func TestMetricsStoreCommitsWithPebble(t *testing.T) {
	st, err := store.OpenPebble(t.TempDir(), store.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, rigOptions{store: st})
	before, _ := r.scrape(t)
	c, _ := mqtttest.Connect(t, r.mqtt, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "durable", CleanStart: true,
		Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}})
	c.Publish(&packet.Publish{Topic: "keep", QoS: 1, Retain: true, Payload: []byte("x")})
	var after map[string]float64
	eventually(t, "store commits to be counted", func() bool {
		after, _ = r.scrape(t)
		return after["herald_store_commit_duration_seconds_count"] > before["herald_store_commit_duration_seconds_count"]
	})
	if after["herald_store_commit_duration_seconds_sum"] <= 0 {
		t.Errorf("commit duration sum %v, want > 0", after["herald_store_commit_duration_seconds_sum"])
	}
}

// The RouteCounter tells messages from the broker itself from client ones.
func TestRouteCounterCountsBrokerMessagesApart(t *testing.T) {
	r := startRig(t, rigOptions{})
	r.srv.Publish(&broker.Message{Topic: "announce", QoS: 0, Payload: []byte("x")})
	s, _ := r.scrape(t)
	if got := s[series("herald_messages_routed_total", "origin", "broker", "qos", "0")]; got != 1 {
		t.Errorf("broker-origin QoS 0 = %v, want 1", got)
	}
	if got := s[series("herald_messages_routed_total", "origin", "client", "qos", "0")]; got != 0 {
		t.Errorf("client-origin QoS 0 = %v, want 0", got)
	}
}

// A CONNECT refused by an overload limit is counted under that limit, and
// the memory budget is reported as configured.
func TestMetricsCountLimitRefusals(t *testing.T) {
	r := startRig(t, rigOptions{mod: func(o *broker.Options) {
		o.Limits.MaxConnections = 1
		o.Limits.MemoryBudget = 64 << 20
	}})
	mqtttest.Connect(t, r.mqtt, mqtttest.V5("first"))
	second := mqtttest.Dial(t, r.mqtt, packet.Version5)
	second.Send(mqtttest.V5("second"))
	if ack, ok := second.Next().(*packet.Connack); !ok || ack.ReasonCode != packet.QuotaExceeded {
		t.Fatalf("second CONNECT: %+v, want CONNACK 0x97", ack)
	}
	s, _ := r.scrape(t)
	if got := s[series("herald_limit_refusals_total", "limit", "max_connections")]; got != 1 {
		t.Errorf("max_connections refusals = %v, want 1", got)
	}
	if got := s[series("herald_connects_refused_total", "reason", "quota_exceeded")]; got != 1 {
		t.Errorf("connects refused with quota_exceeded = %v, want 1", got)
	}
	if got := s["herald_memory_budget_bytes"]; got != 64<<20 {
		t.Errorf("memory budget = %v, want %v", got, 64<<20)
	}
}

// Disconnects are counted by who ended the connection, with the reason
// code when the broker did; messages sent are counted by QoS.
func TestMetricsCountDisconnectsByCause(t *testing.T) {
	r := startRig(t, rigOptions{})
	a, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("polite"))
	a.Send(&packet.Disconnect{})
	b, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("rude"))
	b.Send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "a/#/b"}}}) // invalid filter: SUBACK, not a disconnect
	b.Next()
	b.Send(&packet.Connect{ProtocolVersion: packet.Version5, ClientID: "rude"}) // second CONNECT: protocol error
	c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("gone"))
	c.Conn.Close()
	eventually(t, "the three disconnects to be counted", func() bool {
		s, _ := r.scrape(t)
		return s[series("herald_disconnects_total", "by", "client", "reason", "")] == 1 &&
			s[series("herald_disconnects_total", "by", "broker", "reason", "protocol_error")] == 1 &&
			s[series("herald_disconnects_total", "by", "lost", "reason", "")] == 1
	})
	s, _ := r.scrape(t)
	if _, ok := s[series("herald_messages_sent_by_qos_total", "qos", "0")]; !ok {
		t.Error("no herald_messages_sent_by_qos_total{qos=\"0\"}")
	}
}

// Every listener has a clients gauge, 0 while no client is on it, so that
// an alert on == 0 can fire; /api/stats lists it alike.
func TestMetricsListenerWithoutClients(t *testing.T) {
	r := startRig(t, rigOptions{})
	r.srv.Accept("idle") // a listener nobody connects to
	mqtttest.Connect(t, r.mqtt, mqtttest.V5("c"))
	s, _ := r.scrape(t)
	for listener, want := range map[string]float64{"tcp-test": 1, "idle": 0} {
		if got, ok := s[series("herald_listener_clients_connected", "listener", listener)]; !ok || got != want {
			t.Errorf("listener %s: %v (present %v), want %v", listener, got, ok, want)
		}
	}
	var st statsJSON
	r.getJSON(t, "/api/stats", "", &st)
	if n, ok := st.Connections.ByListener["idle"]; !ok || n != 0 {
		t.Errorf("by_listener %v, want idle: 0", st.Connections.ByListener)
	}
}

// A listener's max_connections refusals are exported by listener.
func TestMetricsListenerRefusals(t *testing.T) {
	r := startRig(t, rigOptions{listenerRefusals: func() map[string]uint64 {
		return map[string]uint64{"ws://127.0.0.1:8083": 7}
	}})
	s, help := r.scrape(t)
	if help["herald_listener_connections_refused_total"] == "" {
		t.Fatal("no herald_listener_connections_refused_total family")
	}
	if got := s[series("herald_listener_connections_refused_total", "listener", "ws://127.0.0.1:8083")]; got != 7 {
		t.Fatalf("refused = %v, want 7", got)
	}
}
