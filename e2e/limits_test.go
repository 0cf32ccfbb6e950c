package e2e

import (
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// Each overload limit refuses with the reason code the spec gives it, and
// counts the refusal.

func TestMaxConnectionsRefusesWithQuotaExceeded(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.MaxConnections = 2 })
	connectRaw(t, b.addr, v5("a"))
	connectRaw(t, b.addr, v5("b"))
	ack := connectAny(t, b.addr, v5("c"))
	if ack.ReasonCode != packet.QuotaExceeded {
		t.Fatalf("third connection: CONNACK 0x%02X, want 0x97 Quota exceeded", byte(ack.ReasonCode))
	}
	ack = connectAny(t, b.addr, v311("d"))
	if ack.ReasonCode != packet.ConnRefusedServerUnavailable {
		t.Fatalf("3.1.1 over the limit: return code %d, want 3 server unavailable", ack.ReasonCode)
	}
	if n := b.srv.LimitStats().MaxConnections.Load(); n != 2 {
		t.Fatalf("max-connections refusals counted %d, want 2", n)
	}
}

func TestConnectRateRefusesWith0x9F(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) {
		o.Limits.ConnectRate = 1
		o.Limits.ConnectBurst = 2
	})
	connectRaw(t, b.addr, v5("a"))
	connectRaw(t, b.addr, v5("b"))
	ack := connectAny(t, b.addr, v5("c"))
	if ack.ReasonCode != packet.ConnectionRateExceeded {
		t.Fatalf("burst exhausted: CONNACK 0x%02X, want 0x9F Connection rate exceeded", byte(ack.ReasonCode))
	}
	time.Sleep(1100 * time.Millisecond) // one token refills
	if ack = connectAny(t, b.addr, v5("d")); ack.ReasonCode != packet.Success {
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
		r, ack := connectRaw(t, b.addr, v5("flappy"))
		if ack.ReasonCode != packet.Success {
			t.Fatalf("connect %d: 0x%02X", i+1, byte(ack.ReasonCode))
		}
		r.c.Close()
	}
	ack := connectAny(t, b.addr, v5("flappy"))
	if ack.ReasonCode != packet.Banned {
		t.Fatalf("fourth connect in the window: 0x%02X, want 0x8A Banned", byte(ack.ReasonCode))
	}
	if ack = connectAny(t, b.addr, v5("steady")); ack.ReasonCode != packet.Success {
		t.Fatalf("another client id is not banned: 0x%02X", byte(ack.ReasonCode))
	}
}

func TestPublishRateDisconnectsWith0x96(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.Limits.PublishRate = 5 })
	r, _ := connectRaw(t, b.addr, v5("chatty"))
	for range 5 {
		r.send(&packet.Publish{Topic: "t", Payload: []byte("x")})
	}
	r.send(&packet.Publish{Topic: "t", Payload: []byte("x")})
	r.expectDisconnect(packet.MessageRateTooHigh, waitFor)
	if b.srv.LimitStats().PublishRate.Load() == 0 {
		t.Fatal("publish-rate refusal not counted")
	}
}

// connectAny sends CONNECT and returns the CONNACK, accepted or not.
func connectAny(t *testing.T, addr string, p *packet.Connect) *packet.Connack {
	t.Helper()
	r := dialRaw(t, addr, p.ProtocolVersion)
	r.send(p)
	return expect[*packet.Connack](r)
}
