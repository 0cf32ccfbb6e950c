package e2e

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/transport"
)

// slowAuth admits password "good" after a delay, like bcrypt or an HTTP hook.
type slowAuth struct{ delay time.Duration }

func (a slowAuth) Authenticate(_ *broker.ClientInfo, pw []byte) packet.ReasonCode {
	time.Sleep(a.delay)
	if string(pw) == "good" {
		return packet.Success
	}
	return packet.BadUsernameOrPassword
}

// startEpollBroker serves a broker on the epoll transport, where one loop
// goroutine serves many connections.
func startEpollBroker(t *testing.T, opts broker.Options) string {
	t.Helper()
	return mqtttest.ServeEpoll(t, broker.New(opts), "epoll", transport.EpollOptions{Loops: 1}).Addr
}

// A slow authenticator must not stall the other connections served by the
// same epoll loop: authentication runs off the loop while the connection
// is not read.
func TestSlowAuthenticationDoesNotStallTheLoop(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.Auth = slowAuth{delay: 300 * time.Millisecond}
	addr := startEpollBroker(t, opts)

	good := mqtttest.V5("steady")
	good.PasswordFlag, good.Password, good.UsernameFlag, good.Username = true, []byte("good"), true, "u"
	steady, _ := connectRaw(t, addr, good)

	// 20 connections authenticating at once: 6 s if they ran on the loop.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			p := mqtttest.V5("slow" + string(rune('a'+i)))
			p.PasswordFlag, p.Password, p.UsernameFlag, p.Username = true, []byte("good"), true, "u"
			b, _ := packet.Encode(nil, packet.Version5, p)
			c.Write(b)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			c.Read(make([]byte, 64))
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	steady.Send(&packet.Pingreq{})
	mqtttest.Expect[*packet.Pingresp](steady)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("PINGRESP took %v while other clients authenticated: the loop was blocked", d)
	}
	wg.Wait()
}

// Packets sent right behind the CONNECT wait for the authentication and
// are then handled in order; a refused client gets its CONNACK code.
func TestPacketsBehindAnAuthenticatingConnect(t *testing.T) {
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.Auth = slowAuth{delay: 100 * time.Millisecond}
	addr := startEpollBroker(t, opts)

	p := mqtttest.V5("eager")
	p.PasswordFlag, p.Password, p.UsernameFlag, p.Username = true, []byte("good"), true, "u"
	r := dialRaw(t, addr, packet.Version5)
	var b []byte
	b, _ = packet.Encode(b, packet.Version5, p)
	b, _ = packet.Encode(b, packet.Version5, &packet.Subscribe{PacketID: 7, Subscriptions: []packet.Subscription{{Filter: "eager/#", QoS: 1}}})
	b, _ = packet.Encode(b, packet.Version5, &packet.Publish{Topic: "eager/x", QoS: 1, PacketID: 8, Payload: []byte("hi")})
	r.Write(b) // one write: CONNECT, SUBSCRIBE and PUBLISH arrive together
	if ack := mqtttest.Expect[*packet.Connack](r); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK 0x%02X", byte(ack.ReasonCode))
	}
	if sa := mqtttest.Expect[*packet.Suback](r); sa.PacketID != 7 {
		t.Fatalf("SUBACK for %d, want 7", sa.PacketID)
	}
	// Its own message comes back (no No Local) and the PUBACK follows, in some order.
	var gotPub, gotAck bool
	for !(gotPub && gotAck) {
		switch m := r.Next().(type) {
		case *packet.Publish:
			gotPub = string(m.Payload) == "hi"
			r.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
		case *packet.Ack:
			gotAck = m.Kind == packet.PUBACK && m.PacketID == 8
		}
	}

	bad := mqtttest.V5("intruder")
	bad.PasswordFlag, bad.Password, bad.UsernameFlag, bad.Username = true, []byte("wrong"), true, "u"
	if ack := connectAny(t, addr, bad); ack.ReasonCode != packet.BadUsernameOrPassword {
		t.Fatalf("wrong password: CONNACK 0x%02X, want 0x86", byte(ack.ReasonCode))
	}
}
