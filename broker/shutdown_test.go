package broker

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// slowStore takes its time over the writes of a will (SaveRetained) and of
// a redelivered message (AppendMessages), and remembers how they ended.
type slowStore struct {
	*store.Memory
	mu     sync.Mutex
	writes []error
}

func (s *slowStore) wrote(err error) error {
	s.mu.Lock()
	s.writes = append(s.writes, err)
	s.mu.Unlock()
	return err
}

func (s *slowStore) SaveRetained(m *store.Message) error {
	time.Sleep(100 * time.Millisecond)
	return s.wrote(s.Memory.SaveRetained(m))
}

func (s *slowStore) AppendMessages(entries []store.Entry) error {
	time.Sleep(100 * time.Millisecond)
	return s.wrote(s.Memory.AppendMessages(entries))
}

// A session that ends publishes its pending will, and hands its queued
// shared-subscription messages to another member of the group, on
// goroutines of their own; Shutdown waits for them, so what they write
// reaches the store before it closes.
func TestShutdownWaitsForTheWorkOfAnEndedSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, srv *Server) *session // returns the session to end
	}{
		{"its will", func(t *testing.T, srv *Server) *session {
			c, _ := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w", CleanStart: true,
				WillFlag: true, WillTopic: "status/w", WillPayload: []byte("gone"), WillQoS: 1, WillRetain: true,
				WillProps: packet.Properties{WillDelay: 3600},
				Props:     packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}}, "", 0)
			c.Closed(nil) // the will waits for its delay or the session's end
			return c.sess
		}},
		{"its shared messages", func(t *testing.T, srv *Server) *session {
			member := func(id string) *client {
				c, _ := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: id, CleanStart: true,
					Props: packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}}, "$share/g/s/t", 1)
				c.Closed(nil)
				return c
			}
			a, b := member("a"), member("b")
			srv.Publish(&Message{Topic: "s/t", QoS: 1, Payload: []byte("m")})
			for _, c := range []*client{a, b} {
				c.sess.mu.Lock()
				queued := len(c.sess.out.queue)
				c.sess.mu.Unlock()
				if queued == 1 {
					return c.sess
				}
			}
			t.Fatal("no member has the message queued")
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &slowStore{Memory: store.NewMemory()}
			o := benchOptions()
			o.Store = st
			srv := New(o)
			sess := tc.setup(t, srv)
			st.mu.Lock()
			st.writes = nil
			st.mu.Unlock()
			sess.expire(sess.offline) // as its expiry timer would
			shutdown(t, srv)
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.writes) != 1 || st.writes[0] != nil {
				t.Fatalf("writes done when Shutdown returned: %v, want one, before the store closed", st.writes)
			}
		})
	}
}

// A session timer that fires once Shutdown has stopped starting tasks
// (stopping the timers cannot stop one already firing) does nothing: the
// session, saved by Shutdown, expires at the next start and its will
// [MQTT-3.1.3-9] is published then, instead of the session being deleted
// here and its will left to a goroutine nobody waits for.
func TestTimerFiringDuringShutdownLeavesTheSessionToTheNextStart(t *testing.T) {
	srv, st := storedServer(t, nil)
	c, _ := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w", CleanStart: true,
		WillFlag: true, WillTopic: "status/w", WillPayload: []byte("gone"), WillQoS: 1,
		WillProps: packet.Properties{WillDelay: 3600},
		Props:     packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}}, "", 0)
	c.Closed(nil)
	srv.mu.Lock()
	srv.tasksStopped = true // where Shutdown is once its clients are gone
	srv.mu.Unlock()
	c.sess.mu.Lock()
	will := c.sess.pendingWill()
	c.sess.mu.Unlock()
	c.sess.fireWill(will)
	c.sess.expire(c.sess.offline)
	if ss, _ := st.LoadSessions(); len(ss) != 1 || ss[0].Will == nil {
		t.Fatalf("stored sessions %+v, want the session with its pending will", ss)
	}
}

// closeWatchStore counts the session writes that come after its Close.
type closeWatchStore struct {
	*store.Memory
	closed atomic.Bool
	late   atomic.Int32
}

func (s *closeWatchStore) Close() error {
	s.closed.Store(true)
	return s.Memory.Close()
}

func (s *closeWatchStore) SaveSession(r *store.Session) error {
	if s.closed.Load() {
		s.late.Add(1)
	}
	return s.Memory.SaveSession(r)
}

func (s *closeWatchStore) DeleteSession(clientID string) error {
	if s.closed.Load() {
		s.late.Add(1)
	}
	return s.Memory.DeleteSession(clientID)
}

// Shutdown stops every offline session's expiry and will-delay timer
// before its last save and the store's close: none is left armed, and
// none fires into the closed store (a delayed will [MQTT-3.1.3-9] or an
// expiry due then is dealt with at the next start).
func TestShutdownStopsSessionTimersBeforeClosingTheStore(t *testing.T) {
	st := &closeWatchStore{Memory: store.NewMemory()}
	o := benchOptions()
	o.Store = st
	srv := New(o)
	var sessions []*session
	for _, p := range []*packet.Connect{
		{ProtocolVersion: packet.Version5, ClientID: "expires", CleanStart: true,
			Props: packet.Properties{SessionExpiry: 1, HasSessionExpiry: true}},
		{ProtocolVersion: packet.Version5, ClientID: "will", CleanStart: true,
			WillFlag: true, WillTopic: "status/will", WillPayload: []byte("gone"), WillQoS: 1,
			WillProps: packet.Properties{WillDelay: 1},
			Props:     packet.Properties{SessionExpiry: 3600, HasSessionExpiry: true}},
	} {
		c, _ := fakeClient(t, srv, p, "", 0)
		c.Closed(nil) // offline: its timer is armed, due in a second
		sessions = append(sessions, c.sess)
	}
	shutdown(t, srv)
	for _, sess := range sessions {
		sess.mu.Lock()
		off := sess.offline
		armed := off != nil && (off.expiryTimer != nil || off.willTimer != nil)
		sess.mu.Unlock()
		if armed {
			t.Errorf("session %q has a timer still armed after Shutdown", sess.id)
		}
	}
	time.Sleep(1200 * time.Millisecond) // past when the timers were due
	if n := st.late.Load(); n != 0 {
		t.Errorf("%d session writes after the store closed, want none", n)
	}
}
