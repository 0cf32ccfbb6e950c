package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// TestRestartTimeWithStoredMessages measures how long herald serve takes,
// from exec to the "herald started" log line, to come back after kill -9
// with 100k QoS 1 messages stored for offline persistent sessions, in two
// shapes: many sessions with a few messages each, and a few sessions with
// many. It then checks that one session gets all of its messages. Slow (a
// minute or so): it runs only with HERALD_BIG=1.
//
//	HERALD_BIG=1 go test ./crashtest -run RestartTime -v
func TestRestartTimeWithStoredMessages(t *testing.T) {
	if os.Getenv("HERALD_BIG") == "" {
		t.Skip("set HERALD_BIG=1 to measure restart time with 100k stored messages")
	}
	for _, shape := range []struct{ sessions, perSession int }{{1000, 100}, {10, 10000}} {
		t.Run(fmt.Sprintf("%dx%d", shape.sessions, shape.perSession), func(t *testing.T) {
			measureRestart(t, shape.sessions, shape.perSession)
		})
	}
}

func measureRestart(t *testing.T, sessions, perSession int) {
	dir := t.TempDir()
	flags := []string{"--max-queued-messages", fmt.Sprint(perSession + 10)}
	h := startHerald(t, dir, flags...)

	// Offline persistent sessions, all subscribed to one topic.
	start := time.Now()
	var wg sync.WaitGroup
	ids := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range ids {
				c := dialRaw(t, h.addr, packet.Version5)
				c.connect(fmt.Sprintf("big-%04d", i), true, sessionExpiry)
				c.subscribe(1, 1, "big/all")
				c.hangUp()
			}
		})
	}
	for i := range sessions {
		ids <- i
	}
	close(ids)
	wg.Wait()
	t.Logf("%d persistent sessions created in %v", sessions, time.Since(start).Round(time.Millisecond))

	// perSession QoS 1 messages, each queued for every session.
	start = time.Now()
	publishQoS1(t, h.addr, "big/all", perSession, 100, 64)
	pubTime := time.Since(start)
	du, _ := dirSize(dir)
	t.Logf("%d messages × %d sessions = %d stored in %v (%.0f stored msg/s); data dir %.1f MiB",
		perSession, sessions, perSession*sessions, pubTime.Round(time.Millisecond),
		float64(perSession*sessions)/pubTime.Seconds(), float64(du)/(1<<20))

	for round := 1; round <= 3; round++ {
		h.kill()
		h = startHerald(t, dir, flags...)
		t.Logf("restart %d after kill -9: ready in %v (recovered %d sessions)", round, h.ready.Round(time.Millisecond), h.recoveredCount("sessions"))
		if got := h.recoveredCount("sessions"); got < sessions {
			t.Errorf("recovered %d sessions, want %d", got, sessions)
		}
	}

	// One session resumes and gets all its messages, in order.
	start = time.Now()
	c := dialRaw(t, h.addr, packet.Version5)
	if ack := c.connect("big-0000", false, sessionExpiry); !ack.SessionPresent {
		t.Fatal("session present = 0")
	}
	for i := 0; i < perSession; i++ {
		p := mqtttest.Expect[*packet.Publish](c.Client)
		if want := fmt.Sprintf("%08d", i); !bytes.HasPrefix(p.Payload, []byte(want)) {
			t.Fatalf("message %d: payload %.8q, want %s", i, p.Payload, want)
		}
		c.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	}
	t.Logf("one session drained %d messages in %v", perSession, time.Since(start).Round(time.Millisecond))
}

// publishQoS1 publishes n QoS 1 messages of size bytes (starting with an
// 8-digit sequence number) to topic, window of them in flight, and waits
// for every PUBACK.
func publishQoS1(t testing.TB, addr, topic string, n, size, window int) {
	t.Helper()
	c := dialRaw(t, addr, packet.Version5)
	c.connect(fmt.Sprintf("publisher-%d", time.Now().UnixNano()), true, 0)
	slots := make(chan struct{}, window)
	errc := make(chan error, 1)
	go func() {
		payload := bytes.Repeat([]byte{'x'}, max(size, 8))
		for i := 0; i < n; i++ {
			slots <- struct{}{}
			copy(payload, fmt.Sprintf("%08d", i))
			pid := uint16(i%65000) + 1
			if err := c.TrySend(&packet.Publish{QoS: 1, Topic: topic, PacketID: pid, Payload: payload}); err != nil {
				errc <- err
				return
			}
		}
	}()
	for acked := 0; acked < n; {
		p, err := c.Recv(30 * time.Second)
		if err != nil {
			t.Fatalf("after %d PUBACKs: %v", acked, err)
		}
		if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBACK {
			if a.ReasonCode >= 0x80 {
				t.Fatalf("PUBACK %v", a.ReasonCode)
			}
			acked++
			<-slots
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
	}
	c.hangUp()
}

func dirSize(dir string) (int64, error) {
	var n int64
	entries, err := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n, err
}
