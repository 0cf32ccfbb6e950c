package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// Each overload limit refuses with the reason code the spec gives it, and
// counts the refusal.

func TestMaxConnectionsRefusesWithQuotaExceeded(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.MaxConnections = 2 })
	connectRaw(t, b.Addr, mqtttest.V5("a"))
	connectRaw(t, b.Addr, mqtttest.V5("b"))
	ack := connectAny(t, b.Addr, mqtttest.V5("c"))
	if ack.ReasonCode != packet.QuotaExceeded {
		t.Fatalf("third connection: CONNACK 0x%02X, want 0x97 Quota exceeded", byte(ack.ReasonCode))
	}
	ack = connectAny(t, b.Addr, mqtttest.V311("d"))
	if ack.ReasonCode != packet.ConnRefusedServerUnavailable {
		t.Fatalf("3.1.1 over the limit: return code %d, want 3 server unavailable", ack.ReasonCode)
	}
	if n := b.Server.LimitStats().MaxConnections.Load(); n != 2 {
		t.Fatalf("max-connections refusals counted %d, want 2", n)
	}
}

func TestConnectRateRefusesWith0x9F(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) {
		o.Limits.ConnectRate = 1
		o.Limits.ConnectBurst = 2
	})
	connectRaw(t, b.Addr, mqtttest.V5("a"))
	connectRaw(t, b.Addr, mqtttest.V5("b"))
	ack := connectAny(t, b.Addr, mqtttest.V5("c"))
	if ack.ReasonCode != packet.ConnectionRateExceeded {
		t.Fatalf("burst exhausted: CONNACK 0x%02X, want 0x9F Connection rate exceeded", byte(ack.ReasonCode))
	}
	time.Sleep(1100 * time.Millisecond) // one token refills
	if ack = connectAny(t, b.Addr, mqtttest.V5("d")); ack.ReasonCode != packet.Success {
		t.Fatalf("after refill: CONNACK 0x%02X, want success", byte(ack.ReasonCode))
	}
}

func TestFlappingClientIsBanned(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) {
		o.Limits.FlapMaxConnects = 3
		o.Limits.FlapWindow = time.Minute
		o.Limits.FlapBan = time.Minute
	})
	for i := range 3 {
		r, ack := connectRaw(t, b.Addr, mqtttest.V5("flappy"))
		if ack.ReasonCode != packet.Success {
			t.Fatalf("connect %d: 0x%02X", i+1, byte(ack.ReasonCode))
		}
		r.Conn.Close()
	}
	ack := connectAny(t, b.Addr, mqtttest.V5("flappy"))
	if ack.ReasonCode != packet.Banned {
		t.Fatalf("fourth connect in the window: 0x%02X, want 0x8A Banned", byte(ack.ReasonCode))
	}
	if ack = connectAny(t, b.Addr, mqtttest.V5("steady")); ack.ReasonCode != packet.Success {
		t.Fatalf("another client id is not banned: 0x%02X", byte(ack.ReasonCode))
	}
}

func TestPublishRateDisconnectsWith0x96(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.PublishRate = 5 })
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("chatty"))
	for range 5 {
		r.Send(&packet.Publish{Topic: "t", Payload: []byte("x")})
	}
	r.Send(&packet.Publish{Topic: "t", Payload: []byte("x")})
	r.ExpectDisconnect(packet.MessageRateTooHigh, waitFor)
	if b.Server.LimitStats().PublishRate.Load() == 0 {
		t.Fatal("publish-rate refusal not counted")
	}
}

// The bandwidth limit counts whole PUBLISH packets: an empty payload with
// a 60 KB User Property is 60 KB, so the second such packet in a second
// overflows a 1000 B/s bucket (which holds one maximum-size packet).
func TestPublishBandwidthCountsTheWholePacket(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.PublishBandwidth = 1000; o.MaxPacketSize = 64 << 10 })
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("props"))
	big := strings.Repeat("x", 60000)
	for range 3 {
		r.Send(&packet.Publish{Topic: "t", Props: packet.Properties{User: []packet.UserProperty{{Key: "k", Value: big}}}})
	}
	r.ExpectDisconnect(packet.MessageRateTooHigh, waitFor)
}

// connectAny sends CONNECT and returns the CONNACK, accepted or not.
func connectAny(t *testing.T, addr string, p *packet.Connect) *packet.Connack {
	t.Helper()
	r := dialRaw(t, addr, p.ProtocolVersion)
	r.Send(p)
	return mqtttest.Expect[*packet.Connack](r)
}

func TestMaxSubscriptionsPerClientRefusesWithQuotaExceeded(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.MaxSubsPerClient = 2 })
	r, _ := connectRaw(t, b.Addr, mqtttest.V5("greedy"))
	codes := r.Subscribe(1, packet.Properties{},
		packet.Subscription{Filter: "a"}, packet.Subscription{Filter: "b"}, packet.Subscription{Filter: "c"})
	if codes[0] != packet.Success || codes[1] != packet.Success || codes[2] != packet.QuotaExceeded {
		t.Fatalf("SUBACK codes %v, want [0 0 0x97]", codes)
	}
	// Replacing an existing subscription is not a new one.
	if codes = r.Subscribe(2, packet.Properties{}, packet.Subscription{Filter: "a", QoS: 1}); codes[0] != packet.GrantedQoS1 {
		t.Fatalf("resubscribe: %v, want granted QoS 1", codes)
	}
}

// Beyond the memory budget the broker stops reading from publishers (TCP
// backpressure) instead of dropping what it acknowledged, and resumes them
// once the queues drain.
func TestMemoryBudgetPausesPublishersAndResumes(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.Store = store.NewMemory()
	opts.Limits.MemoryBudget = 64 << 10
	opts.MaxQueuedBytes = 1 << 20
	addr := startEpollBroker(t, opts)

	// An offline persistent subscriber: everything published queues for it.
	sub := dialRaw(t, addr, packet.Version5)
	p := mqtttest.V5("slowpoke")
	p.CleanStart, p.Props.SessionExpiry, p.Props.HasSessionExpiry = true, 3600, true
	sub.Send(p)
	mqtttest.Expect[*packet.Connack](sub)
	sub.SubscribeOne("budget/t", 1)
	sub.Send(&packet.Disconnect{})
	sub.Conn.Close()

	pub, _ := connectRaw(t, addr, mqtttest.V5("firehose"))
	payload := make([]byte, 4096)
	acked := 0
	for i := range 40 { // 160 KiB: well past the 64 KiB budget
		pub.Send(&packet.Publish{Topic: "budget/t", QoS: 1, PacketID: uint16(i + 1), Payload: payload})
		pub.Conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := pub.Recv(300 * time.Millisecond); err != nil {
			break // no PUBACK: the broker stopped reading us
		}
		acked++
	}
	if acked >= 40 {
		t.Fatalf("all %d publishes acknowledged: the budget never paused the publisher", acked)
	}
	if acked*4096 < 64<<10 {
		t.Fatalf("paused after %d publishes (%d bytes), before the budget was reached", acked, acked*4096)
	}

	// Draining the queue (the subscriber comes back) resumes the publisher.
	sub = dialRaw(t, addr, packet.Version5)
	p.CleanStart = false
	sub.Send(p)
	mqtttest.Expect[*packet.Connack](sub)
	got := 0
	for {
		m, err := sub.Recv(2 * time.Second)
		if err != nil {
			break
		}
		if pm, ok := m.(*packet.Publish); ok {
			got++
			sub.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: pm.PacketID})
		}
	}
	if got < acked {
		t.Fatalf("subscriber got %d messages, %d were acknowledged to the publisher", got, acked)
	}
	if _, err := pub.Recv(2 * time.Second); err != nil {
		t.Fatalf("publisher not resumed after the queue drained: %v", err)
	}
}

// An offline session whose expiry passes is removed with its stored
// messages, not just forgotten in memory [MQTT-3.1.2-23].
func TestExpiredSessionIsRemovedFromTheStore(t *testing.T) {
	st := store.NewMemory()
	b := startBroker(t, func(o *broker.Options) { o.Store = st })
	p := mqtttest.V5("short-lived")
	p.Props.SessionExpiry, p.Props.HasSessionExpiry = 1, true
	r, _ := connectRaw(t, b.Addr, p)
	r.SubscribeOne("expiry/t", 1)
	r.Send(&packet.Disconnect{})
	pub, _ := connectRaw(t, b.Addr, mqtttest.V5("feeder"))
	pub.Publish(&packet.Publish{Topic: "expiry/t", QoS: 1, PacketID: 1, Payload: []byte("queued")})
	if msgs, _ := st.LoadMessages("short-lived"); len(msgs) != 1 {
		t.Fatalf("%d messages stored for the offline session, want 1", len(msgs))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sessions, _ := st.LoadSessions()
		msgs, _ := st.LoadMessages("short-lived")
		if len(sessions) == 0 && len(msgs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the 1 s expiry: %d sessions and %d messages still stored", len(sessions), len(msgs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A listener can lower the maximum packet size for its own clients: its
// CONNACK announces the lower value and a bigger packet is refused with
// 0x95, while the server's other listeners keep the server's limit.
func TestListenerMaxPacketSize(t *testing.T) {
	opts := mqtttest.Options()
	srv := broker.New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go transport.Serve(ctx, l, srv.AcceptWith("small", broker.ListenerOptions{MaxPacketSize: 1024}))
	t.Cleanup(func() {
		sctx, c2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer c2()
		srv.Shutdown(sctx)
		cancel()
	})
	r, ack := connectRaw(t, l.Addr().String(), mqtttest.V5("browser"))
	if ack.Props.MaximumPacketSize != 1024 {
		t.Fatalf("CONNACK Maximum Packet Size %d, want the listener's 1024", ack.Props.MaximumPacketSize)
	}
	r.Send(&packet.Publish{Topic: "big", Payload: make([]byte, 2048)})
	r.ExpectDisconnect(packet.PacketTooLarge, waitFor) // [MQTT-3.2.2-15] not more than we announced

	b := startBroker(t, nil) // a listener without its own limit
	r2, ack2 := connectRaw(t, b.Addr, mqtttest.V5("phone"))
	if ack2.Props.MaximumPacketSize != opts.MaxPacketSize {
		t.Fatalf("default listener announces %d, want %d", ack2.Props.MaximumPacketSize, opts.MaxPacketSize)
	}
	if code := r2.Publish(&packet.Publish{Topic: "big", QoS: 1, PacketID: 1, Payload: make([]byte, 2048)}); code >= 0x80 {
		t.Fatalf("2 KiB publish on the default listener: 0x%02X", byte(code))
	}
}

// Connections whose CONNECT is being authenticated count against
// MaxConnections: a slow authenticator (bcrypt, an HTTP hook) must not let
// every CONNECT arriving meanwhile past the limit.
func TestMaxConnectionsHoldsWhileAuthenticating(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.Auth = slowAuth{delay: 300 * time.Millisecond}
	opts.Limits.MaxConnections = 1
	addr := startEpollBroker(t, opts)
	var conns []*mqtttest.Client
	for i := range 3 {
		p := mqtttest.V5("auth" + string(rune('a'+i)))
		p.PasswordFlag, p.Password, p.UsernameFlag, p.Username = true, []byte("good"), true, "u"
		r := dialRaw(t, addr, packet.Version5)
		r.Send(p) // all three are authenticating at once
		conns = append(conns, r)
	}
	accepted := 0
	var holder *mqtttest.Client
	for _, r := range conns {
		switch ack := mqtttest.Expect[*packet.Connack](r); ack.ReasonCode {
		case packet.Success:
			accepted++
			holder = r
		case packet.QuotaExceeded:
		default:
			t.Fatalf("CONNACK 0x%02X, want success or 0x97 Quota exceeded", byte(ack.ReasonCode))
		}
	}
	if accepted != 1 {
		t.Fatalf("%d connections accepted with MaxConnections 1", accepted)
	}
	// The refused connections and the one that leaves give their places back.
	holder.Disconnect()
	p := mqtttest.V5("after")
	p.PasswordFlag, p.Password, p.UsernameFlag, p.Username = true, []byte("good"), true, "u"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ack := connectAny(t, addr, p)
		if ack.ReasonCode == packet.Success {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every connection closed: CONNACK 0x%02X, want success", byte(ack.ReasonCode))
		}
	}
}
