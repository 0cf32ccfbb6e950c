package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// Many clients fighting over a few client ids (takeovers), with
// persistent sessions, shared and ordinary subscriptions, QoS 0-2 both
// ways, wills and abrupt closes, for a few seconds: the broker must not
// deadlock, race (-race) or panic, and must still serve a fresh client
// afterwards.
func TestTakeoverAndChurnStress(t *testing.T) {
	t.Run("goroutine transport", func(t *testing.T) {
		b := startBroker(t, func(o *broker.Options) {
			o.Store = store.NewMemory()
			o.MaxInflight = 4
		})
		stress(t, b.Addr)
	})
	t.Run("epoll transport", func(t *testing.T) {
		o := mqtttest.Options()
		o.MaxInflight = 4
		stress(t, startEpollBroker(t, o))
	})
}

func stress(t *testing.T, addr string) {
	deadline := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for w := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for time.Now().Before(deadline) {
				stressRound(addr, rng)
			}
		}()
	}
	wg.Wait()
	r, _ := connectRaw(t, addr, mqtttest.V5("after-the-storm"))
	r.SubscribeOne("stress/after", 1)
	pub, _ := connectRaw(t, addr, mqtttest.V5("after-the-storm-pub"))
	if code := pub.Publish(&packet.Publish{Topic: "stress/after", QoS: 1, PacketID: 1, Payload: []byte("ok")}); code >= 0x80 {
		t.Fatalf("publish after the storm: 0x%02X", byte(code))
	}
	if p := r.RecvPublish(); string(p.Payload) != "ok" {
		t.Fatalf("after the storm got %q", p.Payload)
	}
}

// stressRound is one short, possibly rude, client life. Errors are
// expected (takeovers close connections) and ignored.
func stressRound(addr string, rng *rand.Rand) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	version := []byte{packet.Version311, packet.Version5}[rng.IntN(2)]
	cp := &packet.Connect{ProtocolVersion: version, ClientID: fmt.Sprintf("fight-%d", rng.IntN(5)), UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("good"),
		CleanStart: rng.IntN(2) == 0, KeepAlive: 30,
		WillFlag: rng.IntN(3) == 0, WillTopic: "stress/will", WillPayload: []byte("gone"), WillQoS: byte(rng.IntN(3))}
	if version == packet.Version5 {
		cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = uint32(rng.IntN(3)), true
		cp.WillProps.WillDelay = uint32(rng.IntN(2))
	}
	var out []byte
	out, _ = packet.Encode(out, version, cp)
	filters := []string{"stress/+", "stress/#", "$share/g/stress/t", "stress/t"}
	out, _ = packet.Encode(out, version, &packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{
		{Filter: filters[rng.IntN(len(filters))], QoS: byte(rng.IntN(3))}}})
	for i := range rng.IntN(8) {
		qos := byte(rng.IntN(3))
		p := &packet.Publish{Topic: "stress/t", QoS: qos, Retain: rng.IntN(5) == 0, Payload: []byte("x")}
		if qos > 0 {
			p.PacketID = uint16(i + 2)
		}
		out, _ = packet.Encode(out, version, p)
	}
	if _, err := conn.Write(out); err != nil {
		return
	}
	// Acknowledge whatever arrives for a moment, then leave rudely or politely.
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	until := time.Now().Add(time.Duration(rng.IntN(100)) * time.Millisecond)
	for time.Now().Before(until) {
		conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		n, err := conn.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for {
			k, ferr := packet.SplitFrame(buf, 0)
			if ferr != nil || k == 0 {
				break
			}
			if pk, derr := packet.Decode(version, buf[:k]); derr == nil {
				if pub, ok := pk.(*packet.Publish); ok && pub.QoS > 0 {
					kind := packet.PUBACK
					if pub.QoS == 2 {
						kind = packet.PUBREC
					}
					ack, _ := packet.Encode(nil, version, &packet.Ack{Kind: kind, PacketID: pub.PacketID})
					conn.Write(ack)
				}
			}
			buf = buf[k:]
		}
		if err != nil && !mqtttest.IsTimeout(err) {
			return
		}
	}
	if rng.IntN(2) == 0 {
		d, _ := packet.Encode(nil, version, &packet.Disconnect{})
		conn.Write(d)
	}
}
