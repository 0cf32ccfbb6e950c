package broker

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/store"
)

// publishCounter is a Hook that counts routed messages.
type publishCounter struct{ n atomic.Int64 }

func (h *publishCounter) OnPublish(*ClientInfo, *Message) { h.n.Add(1) }

// The $SYS publisher starts with Recover, not New: a $SYS value retained
// before Recover loads the previous run's retained messages could be
// replaced by a stale one (the previous version, for the whole run).
func TestSysPublishedOnlyAfterRecover(t *testing.T) {
	hook := &publishCounter{}
	srv, st := storedServer(t, func(o *Options) {
		o.SysInterval = time.Hour // the version only
		o.Hooks = []Hook{hook}
	})
	if err := st.SaveRetained(&store.Message{Topic: "$SYS/broker/version", Payload: []byte("herald 0.0.0-old")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // a recovery that takes time
	if n := hook.n.Load(); n != 0 {
		t.Fatalf("%d messages published before Recover", n)
	}
	if err := srv.Recover(); err != nil {
		t.Fatal(err)
	}
	want := "herald " + Version
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		msgs, _ := srv.Retained("$SYS/broker/version", 1)
		if len(msgs) == 1 && string(msgs[0].Payload) == want && hook.n.Load() > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retained version %v after Recover, want %q", msgs, want)
		}
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
