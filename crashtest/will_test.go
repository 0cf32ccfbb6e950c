package crashtest

import (
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// A will waiting for its Will Delay Interval survives kill -9: it is stored
// with the offline session and published after the restart when the rest
// of the delay has passed [MQTT-3.1.3-9].
func TestKillNineKeepsADelayedWill(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir)

	watcher := dialRaw(t, h.addr, packet.Version5)
	watcher.connect("will-watcher", true, sessionExpiry)
	watcher.subscribe(1, 1, "presence/+")
	watcher.hangUp()

	c := dialRaw(t, h.addr, packet.Version5)
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: packet.Version5, CleanStart: true, KeepAlive: 60,
		ClientID: "phone", WillFlag: true, WillQoS: 1, WillTopic: "presence/phone", WillPayload: []byte("offline"),
		WillProps: packet.Properties{WillDelay: 2}}
	cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = sessionExpiry, true
	c.Connect(cp)
	c.Conn.Close() // abnormal: the will is due after its 2 s delay
	time.Sleep(300 * time.Millisecond)
	h.kill()

	start := time.Now()
	h = startHerald(t, dir)
	watcher = dialRaw(t, h.addr, packet.Version5)
	watcher.connect("will-watcher", false, sessionExpiry)
	p, err := watcher.Recv(5 * time.Second)
	if err != nil {
		t.Fatalf("no will after the restart: %v", err)
	}
	m, ok := p.(*packet.Publish)
	if !ok || m.Topic != "presence/phone" || string(m.Payload) != "offline" {
		t.Fatalf("got %T %+v, want the will on presence/phone", p, p)
	}
	if waited := time.Since(start); waited > 4*time.Second {
		t.Errorf("will published %v after the restart, want about the 1.7 s left of its delay", waited)
	}
}
