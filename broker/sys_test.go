package broker

import (
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/store"
)

// A $SYS value stored by an older version is not recovered over the live
// one: the version retained at start stays the current one.
func TestStaleStoredSysVersionDoesNotReplaceTheLiveOne(t *testing.T) {
	srv, st := storedServer(t, func(o *Options) {
		o.SysInterval = time.Hour // the version only
	})
	want := "herald " + Version
	version := func() string {
		msgs, _ := srv.Retained("$SYS/broker/version", 1)
		if len(msgs) != 1 {
			return ""
		}
		return string(msgs[0].Payload)
	}
	for deadline := time.Now().Add(5 * time.Second); version() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("retained version %q after New, want %q", version(), want)
		}
	}
	// The next $SYS tick is an hour away: only Recover could change it.
	if err := st.SaveRetained(&store.Message{Topic: "$SYS/broker/version", Payload: []byte("herald 0.0.0-old")}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	if got := version(); got != want {
		t.Fatalf("retained version %q after Recover, want %q", got, want)
	}
}

// $SYS/broker/messages/dropped counts every drop cause the metrics export
// (herald_messages_dropped_total{cause}), expired and acl included.
func TestSysDroppedCountsEveryCause(t *testing.T) {
	srv := New(benchOptions())
	t.Cleanup(srv.cancel)
	st := srv.Stats()
	st.DroppedQoS0.Add(1)
	st.DroppedQueueFull.Add(10)
	st.DroppedTooLarge.Add(100)
	st.DroppedExpired.Add(1000)
	st.DroppedACL.Add(10000)
	srv.publishSysOnce()
	msgs, _ := srv.Retained("$SYS/broker/messages/dropped", 1)
	if len(msgs) != 1 {
		t.Fatalf("$SYS/broker/messages/dropped: %d messages, want one of 11111", len(msgs))
	}
	if got := string(msgs[0].Payload); got != "11111" {
		t.Fatalf("$SYS/broker/messages/dropped = %s, want 11111", got)
	}
}

// sysCounter counts the $SYS messages the broker publishes, by topic.
type sysCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *sysCounter) OnPublish(_ *ClientInfo, m *Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[m.Topic]++
}

func (h *sysCounter) count(topic string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[topic]
}

// Recover after New leaves one $SYS publisher, not two: each value is
// published once per interval, and the version once.
func TestSysPublishedOncePerIntervalAfterRecover(t *testing.T) {
	h := &sysCounter{n: map[string]int{}}
	srv, _ := storedServer(t, func(o *Options) {
		o.SysInterval = 200 * time.Millisecond
		o.Hooks = append(o.Hooks, h)
	})
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // two ticks
	if n := h.count("$SYS/broker/version"); n != 1 {
		t.Errorf("$SYS/broker/version published %d times, want 1", n)
	}
	if n := h.count("$SYS/broker/uptime"); n > 3 {
		t.Errorf("$SYS/broker/uptime published %d times in 2.5 intervals, want 2", n)
	}
}
