// Package broker is Herald's MQTT core: sessions, the router and the server
// lifecycle. It is driven by the transport package through the
// transport.Handler events and imports none of cluster, bridge or observe:
// those plug in through the small interfaces in options.go.
package broker

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
	"github.com/herald-mqtt/herald/transport"
)

// Version is reported in $SYS/broker/version.
var Version = "0.1.0-dev"

// Server is one broker node. Create it with New, call Recover if it has a
// store, attach listeners with Accept (or the transport helpers), and stop
// it with Shutdown.
type Server struct {
	opts Options
	log  *slog.Logger

	subs     *topic.Trie[*session, *subscription]
	retained *topic.Retained[*Message]

	mu       sync.Mutex
	sessions sessionTable // by client id; a connected client is its session's out.c

	// recordsMu orders the writes of session records against their
	// deletion: the committer holds it from choosing which records to
	// write (only those of sessions that still keep records) until they
	// are written, and a session's records are deleted under it. So a
	// record is never written after its session's records were deleted,
	// to be loaded for the next session of that client id after a restart.
	recordsMu sync.Mutex
	// retainWritten is, per topic, the retainSeq of the last retained
	// update written to the store (guarded by recordsMu): an update that
	// reaches the store after a newer one for its topic (a will written at
	// once while a client's publish waits in the committer) is skipped, so
	// the store keeps what the index holds.
	retainWritten map[string]uint64
	// retainMu orders retained updates: their retainSeq follows the order
	// in which they change the index.
	retainMu  sync.Mutex
	retainSeq uint64
	// unattached are the clients not reachable through a session: before
	// their CONNECT completes (or refused, closing). Few at any time; a
	// set of every client would cost each idle connection 20-30 bytes.
	unattached map[*client]struct{}
	live       atomic.Int64 // clients whose Closed has not run
	closing    bool
	// listeners are the names Accept was called with, so that gauges by
	// listener have a value for a listener without clients.
	listeners []string

	// tasks are the goroutines that carry on the work of a session that
	// ended (its will, its shared-subscription messages) and fired will
	// timers: Shutdown waits for them before its last save and the
	// store's close. One is added only under mu and while !tasksStopped,
	// which Shutdown sets (under mu) before it waits, so none starts after.
	tasks        sync.WaitGroup
	tasksStopped bool

	commit *committer

	admission  admission
	budget     budget
	limitStats LimitStats
	stats      Stats
	started    time.Time
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// Stats are the broker's counters, read with atomic loads.
type Stats struct {
	Connected        atomic.Int64 // clients connected now
	Connections      atomic.Int64 // connections accepted since start
	MessagesIn       atomic.Int64 // PUBLISH packets received
	MessagesOut      atomic.Int64 // PUBLISH packets sent
	BytesIn          atomic.Int64
	BytesOut         atomic.Int64
	DroppedQoS0      atomic.Int64    // QoS 0 deliveries dropped: slow consumer or offline
	DroppedQueueFull atomic.Int64    // QoS 1/2 deliveries refused: session queue full
	DroppedTooLarge  atomic.Int64    // deliveries larger than the client's maximum packet size
	DroppedExpired   atomic.Int64    // messages expired before delivery
	DroppedACL       atomic.Int64    // publishes refused by ACL, and client publishes to $SYS
	MessagesOutQoS   [3]atomic.Int64 // PUBLISH packets sent, by QoS

	ConnectsRefused     [256]atomic.Int64 // CONNACK refusals by v5 reason code
	DisconnectsByBroker [256]atomic.Int64 // connections the broker ended, by v5 reason code (also for 3.1.1 clients)
	DisconnectsByClient atomic.Int64      // clients that sent DISCONNECT
	ConnectionsLost     atomic.Int64      // connections closed with no DISCONNECT either way

	QueuedBytes      atomic.Int64 // payload bytes queued for sessions, node-wide
	PausedPublishers atomic.Int64 // times a publisher was paused by the memory budget
}

// Drop is one cause of messages and deliveries not made, and its count.
type Drop struct {
	Cause string // qos0, queue_full, too_large, expired, acl
	N     int64
}

// Drops reads the Dropped counters, one per cause, in a fixed order: the
// one list of causes the metrics and $SYS both use.
func (st *Stats) Drops() [5]Drop {
	return [5]Drop{
		{"qos0", st.DroppedQoS0.Load()},
		{"queue_full", st.DroppedQueueFull.Load()},
		{"too_large", st.DroppedTooLarge.Load()},
		{"expired", st.DroppedExpired.Load()},
		{"acl", st.DroppedACL.Load()},
	}
}

// Dropped is the sum of the Dropped counters: the messages and deliveries
// not made, whatever the cause.
func (st *Stats) Dropped() int64 {
	var n int64
	for _, d := range st.Drops() {
		n += d.N
	}
	return n
}

// New returns a Server with opts. Start from DefaultOptions: numeric limits
// left at zero take their defaults, but switches and MaximumQoS are taken
// as given.
func New(opts Options) *Server {
	def := DefaultOptions()
	fill(&opts.MaxPacketSize, def.MaxPacketSize)
	fill(&opts.ReceiveMaximum, def.ReceiveMaximum)
	fill(&opts.MaxInflight, def.MaxInflight)
	fill(&opts.MaxQueuedMessages, def.MaxQueuedMessages)
	fill(&opts.MaxQueuedBytes, def.MaxQueuedBytes)
	fill(&opts.MaxPendingBytes, def.MaxPendingBytes)
	fill(&opts.MaxClientIDLength, def.MaxClientIDLength)
	fill(&opts.ConnectTimeout, def.ConnectTimeout)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:       opts,
		log:        opts.Logger,
		subs:       topic.NewTrie[*session, *subscription](),
		retained:   topic.NewRetained[*Message](),
		sessions:   newSessionTable(),
		unattached: make(map[*client]struct{}),
		started:    time.Now(),
		ctx:        ctx,
		cancel:     cancel,
	}
	s.admission.connect = newBucket(opts.Limits.ConnectRate, opts.Limits.ConnectBurst)
	s.commit = newCommitter(s)
	s.wg.Add(2)
	go s.sweep()
	go s.commit.run()
	s.startSys()
	return s
}

func fill[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Accept is the transport.Accepter for every listener: it returns the
// Handler of a new connection, or nil while shutting down. The listener
// name labels the connections and, from this call on, has its place in
// Gauges.OnlineByListener even without clients.
func (s *Server) Accept(listener string) transport.Accepter {
	return s.AcceptWith(listener, ListenerOptions{})
}

// ListenerOptions are the limits of one listener that differ from the
// server's. Zero fields take the server's value.
type ListenerOptions struct {
	// MaxPacketSize caps the packets accepted from (and the Maximum Packet
	// Size announced to) this listener's clients, for example browsers on
	// a WebSocket listener. At most Options.MaxPacketSize.
	MaxPacketSize uint32
}

// AcceptWith is Accept for a listener with its own limits.
func (s *Server) AcceptWith(listener string, lo ListenerOptions) transport.Accepter {
	maxIn := s.opts.MaxPacketSize
	if lo.MaxPacketSize > 0 {
		maxIn = min(lo.MaxPacketSize, maxIn)
	}
	s.mu.Lock()
	if !slices.Contains(s.listeners, listener) {
		s.listeners = append(s.listeners, listener)
	}
	s.mu.Unlock()
	return func(c transport.Conn) transport.Handler {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closing {
			return nil
		}
		cl := newClient(s, c, listener)
		cl.maxPacketIn = maxIn
		s.unattached[cl] = struct{}{}
		s.live.Add(1)
		s.stats.Connections.Add(1)
		return cl
	}
}

// Shutdown stops the broker: every connection is closed (v5 clients are
// told 0x8B Server shutting down), wills are published as the spec says,
// and state is flushed to the store. It returns when done or when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("broker: already shut down")
	}
	s.closing = true
	clients := make([]*client, 0, len(s.unattached))
	for c := range s.unattached {
		clients = append(clients, c)
	}
	sessions := make([]*session, 0, s.sessions.len())
	for sess := range s.sessions.all() {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		if c := sess.client(); c != nil {
			clients = append(clients, c)
		}
	}
	for _, c := range clients {
		c.disconnect(packet.ServerShuttingDown, "server shutting down")
	}
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		for {
			if s.live.Load() == 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	// The clients are gone; what is left to wait for is the work of the
	// sessions that ended meanwhile, and no more of it may start: a timer
	// that fires now leaves its session and will as they are, to be saved
	// below and to expire or be published at the next start.
	s.mu.Lock()
	s.tasksStopped = true
	s.mu.Unlock()
	// No expiry or will timer may fire once the store is closing.
	for _, sess := range sessions {
		sess.mu.Lock()
		sess.stopTimers()
		sess.mu.Unlock()
	}
	tasksDone := make(chan struct{})
	go func() {
		s.tasks.Wait()
		close(tasksDone)
	}()
	select {
	case <-tasksDone:
	case <-ctx.Done():
	}
	s.flushSessions()
	if s.opts.Store != nil {
		return s.opts.Store.Close()
	}
	return ctx.Err()
}

// startTask counts one more task Shutdown waits for (see Server.tasks), or
// reports false once Shutdown waits; the task ends with s.tasks.Done().
// Caller holds s.mu.
func (s *Server) startTask() bool {
	if s.tasksStopped {
		return false
	}
	s.tasks.Add(1)
	return true
}

// goTask runs f on a goroutine that Shutdown waits for, or reports false,
// f not run, once Shutdown waits. Caller holds s.mu.
func (s *Server) goTask(f func()) bool {
	if !s.startTask() {
		return false
	}
	go func() {
		defer s.tasks.Done()
		f()
	}()
	return true
}

// removeClient forgets a closed connection. Closed counts it out of
// Server.live only when it is done, so that Shutdown does not close the
// store under its detach.
func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	delete(s.unattached, c)
	s.mu.Unlock()
}

// millis is the server's clock for per-connection timestamps: milliseconds
// since it started (monotonic), in 32 bits to keep the client struct small.
// It wraps after 49 days; compare two readings by unsigned subtraction.
func (s *Server) millis() uint32 { return s.millisAt(time.Now()) }

// millisAt is t on the server's clock (see millis).
func (s *Server) millisAt(t time.Time) uint32 { return uint32(t.Sub(s.started).Milliseconds()) }

// seconds is the server's clock in seconds since it started, for
// timestamps that must not wrap (136 years).
func (s *Server) seconds() uint32 { return uint32(time.Since(s.started) / time.Second) }

// sweep runs the once-a-second housekeeping: keepalive, CONNECT and
// credential timeouts. One pass over the clients replaces a timer per
// connection.
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var clients []*client
	var sessions []*session
	for tick := 1; ; tick++ {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			if tick%retainedSweepTicks == 0 {
				s.dropExpiredRetained(now)
			}
			ms := s.millis()
			s.mu.Lock()
			for c := range s.unattached {
				clients = append(clients, c)
			}
			s.mu.Unlock()
			for _, c := range clients {
				c.checkTimeouts(now, ms)
			}
			clear(clients)
			clients = clients[:0]
			// Connected clients through their sessions, a chunk at a time
			// so that the server lock is held briefly and no slice of
			// every client is kept. Only a resize between two chunks can
			// make the round skip a session (sessionTable.chunk); one
			// whose probe run wraps may be seen twice.
			for next := 0; ; {
				s.mu.Lock()
				sessions, next = s.sessions.chunk(sessions[:0], next, sweepChunk)
				s.mu.Unlock()
				for _, sess := range sessions {
					if c := sess.client(); c != nil {
						c.checkTimeouts(now, ms)
					}
				}
				clear(sessions)
				if next < 0 {
					break
				}
			}
		}
	}
}

// sweepChunk is how many sessions the sweep takes per hold of Server.mu.
const sweepChunk = 1024

// retainedSweepTicks is how often, in sweep ticks (seconds), expired
// retained messages are dropped from memory.
const retainedSweepTicks = 60

// dropExpiredRetained removes the retained messages whose expiry has passed
// from the index and the store, so that they stop taking memory and
// counting in the gauges; they were already never delivered
// [MQTT-3.3.2-5]. A message replaced meanwhile stays. The removal is
// sequenced like any retained update (retainSeq), so a newer one of the
// topic, written to the store in either order, wins.
func (s *Server) dropExpiredRetained(now time.Time) {
	var expired []*Message
	s.retained.Match("#", func(_ string, m *Message) bool {
		if m.expired(now) {
			expired = append(expired, m)
		}
		return true
	})
	for _, m := range expired {
		s.retainMu.Lock()
		var del *Message
		if s.retained.DeleteIf(m.Topic, func(cur *Message) bool { return cur == m }) && s.opts.Store != nil && !sysTopic(m.Topic) {
			s.retainSeq++
			del = &Message{Topic: m.Topic, Retain: true, retainSeq: s.retainSeq}
		}
		s.retainMu.Unlock()
		if err := s.storeRetained(del); err != nil {
			s.log.Error("store: delete expired retained", "topic", m.Topic, "err", err)
		}
	}
}
