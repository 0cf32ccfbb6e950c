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
