package crashtest

import (
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// SIGTERM is a graceful shutdown: every v5 client is told DISCONNECT 0x8B
// Server shutting down before its connection closes, the will of a client
// is published, the process exits 0, and its persistent session is back
// after a restart.
func TestSIGTERMDisconnectsWith0x8BAndKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)
	c := dialRaw(t, h.addr, packet.Version5)
	c.connect("graceful", true, sessionExpiry)
	c.subscribe(1, 1, "shutdown/t")

	h.cmd.Process.Signal(syscall.SIGTERM)
	c.ExpectDisconnect(packet.ServerShuttingDown, 5*time.Second)
	select {
	case <-h.exit:
	case <-time.After(10 * time.Second):
		t.Fatal("herald still running 10 s after SIGTERM")
	}
	if h.err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", h.err, h.log())
	}

	h = startHerald(t, dir)
	c = dialRaw(t, h.addr, packet.Version5)
	if ack := c.connect("graceful", false, sessionExpiry); !ack.SessionPresent {
		t.Fatal("session not present after a graceful restart")
	}
}

// The command line's limits reach the broker: --acl-deny refuses a
// subscription (v5 SUBACK 0x87) and a publish (PUBACK 0x87), and
// --max-packet-size is announced in CONNACK and enforced.
func TestServeFlagsReachTheBroker(t *testing.T) {
	h := startHerald(t, t.TempDir(), "--acl-deny", "secret/#", "--max-packet-size", "2KiB")
	c := dialRaw(t, h.addr, packet.Version5)
	ack := c.connect("flags", true, 0)
	if ack.Props.MaximumPacketSize != 2048 {
		t.Fatalf("CONNACK Maximum Packet Size %d, want 2048", ack.Props.MaximumPacketSize)
	}
	codes := c.Subscribe(1, packet.Properties{}, packet.Subscription{Filter: "secret/plans", QoS: 1}, packet.Subscription{Filter: "public/news", QoS: 1})
	if codes[0] != packet.NotAuthorized || codes[1] != packet.GrantedQoS1 {
		t.Fatalf("SUBACK %v, want [0x87 1]", codes)
	}
	if code := c.Publish(&packet.Publish{Topic: "secret/plans", QoS: 1, PacketID: 2, Payload: []byte("x")}); code != packet.NotAuthorized {
		t.Fatalf("PUBACK 0x%02X for a denied topic, want 0x87", byte(code))
	}
	c.Send(&packet.Publish{Topic: "public/news", Payload: make([]byte, 4096)})
	c.ExpectDisconnect(packet.PacketTooLarge, 5*time.Second)
}
