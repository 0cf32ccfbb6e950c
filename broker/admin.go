package broker

import (
	"cmp"
	"container/heap"
	"slices"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
)

// This file is the read side the admin API and the metrics need. Every
// method here copies what it reports, so callers hold no broker lock, and
// takes the locks in the documented order (Server.mu, then the trie, then
// session.mu), never holding session.mu while taking Server.mu. Methods
// that walk every session cost O(sessions) and are meant for scrapes and
// operators, not for the message path.

// ClientSnapshot is one session as the admin API shows it, at one instant.
// Connection fields are empty while the session is offline.
type ClientSnapshot struct {
	ClientID      string
	Online        bool
	Username      string
	Version       byte // protocol level: 3, 4 (3.1.1) or 5
	RemoteAddr    string
	Listener      string
	ConnectedAt   time.Time // zero while offline
	KeepAlive     time.Duration
	SessionExpiry uint32 // seconds after disconnect; 0xFFFFFFFF means never
	Persistent    bool   // kept in the store
	Subscriptions int
	Inflight      int // QoS 1/2 messages sent and not yet acknowledged
	Queued        int // QoS 1/2 messages waiting for the window or the client
	QueuedBytes   int // bytes (topic, payload, properties) of Queued
	IncomingQoS2  int // inbound QoS 2 packet ids awaiting PUBREL
}

// SubscriptionSnapshot is one subscription of a session.
type SubscriptionSnapshot struct {
	Filter            string // as subscribed, "$share/{group}/" included
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	SubscriptionID    uint32 // 0 = none
}

// SessionSnapshot is a ClientSnapshot with the session's subscriptions.
type SessionSnapshot struct {
	ClientSnapshot
	Filters []SubscriptionSnapshot // sorted by filter
}

// TopicCount is one subscribed filter with the number of sessions holding
// it. Group is the share name of a shared subscription, "" otherwise.
type TopicCount struct {
	Filter      string
	Group       string
	Subscribers int
}

// Gauges are the broker's levels at one instant, computed by visiting every
// session.
type Gauges struct {
	Sessions         int // sessions known, online and offline
	Online           int // sessions with a connection attached
	Subscriptions    int // subscriptions, ordinary and shared
	Retained         int // retained messages
	Inflight         int // sum over sessions
	Queued           int // sum over sessions
	QueuedBytes      int // sum over sessions
	MaxQueued        int // the longest session queue
	MaxQueuedClient  string
	IncomingQoS2     int            // sum over sessions
	OnlineByListener map[string]int // online sessions by listener name, 0 for every listener accepted for
}

// Started returns when the server was created.
func (s *Server) Started() time.Time { return s.started }

// Running reports whether the server accepts connections: false once
// Shutdown has begun.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing
}

// MemoryBudget returns the node-wide budget of queued bytes (topic,
// payload, properties) beyond which publishers are paused (Limits.MemoryBudget); 0 means none. The
// bytes in use are Stats().QueuedBytes.
func (s *Server) MemoryBudget() int64 { return s.opts.Limits.MemoryBudget }

// sessionList copies the sessions out of the table, so that each can be
// locked without holding Server.mu, and the names of the listeners.
func (s *Server) sessionList() (list []*session, listeners []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list = make([]*session, 0, s.sessions.len())
	for sess := range s.sessions.all() {
		list = append(list, sess)
	}
	return list, slices.Clone(s.listeners)
}

// Clients returns up to limit sessions whose client id sorts after after,
// in client id order, and the number of sessions in all. limit <= 0 means
// no limit. Server.mu is held only to copy the session pointers (no
// session is read under it: that is what made a page slow for the
// connects and disconnects waiting on the lock); filtering and the
// O(sessions · log limit) selection happen outside it. Paging with the
// last id of one page as the next after never skips or repeats a session
// that exists throughout.
func (s *Server) Clients(after string, limit int) (page []ClientSnapshot, total int) {
	list, _ := s.sessionList()
	total = len(list)
	keep := list[:0]
	for _, sess := range list {
		if sess.id > after {
			keep = append(keep, sess)
		}
	}
	keep = smallest(keep, limit, func(a, b *session) bool { return a.id < b.id })
	page = make([]ClientSnapshot, len(keep))
	for i, sess := range keep {
		page[i] = sess.snapshot()
	}
	return page, total
}

// Client returns the session of a client id with up to maxFilters of its
// subscriptions, the first by filter (maxFilters <= 0 means all);
// Subscriptions counts them all.
func (s *Server) Client(id string, maxFilters int) (SessionSnapshot, bool) {
	s.mu.Lock()
	sess := s.sessions.get(id)
	s.mu.Unlock()
	if sess == nil {
		return SessionSnapshot{}, false
	}
	snap := SessionSnapshot{ClientSnapshot: sess.snapshot()}
	// Subscriptions are immutable: copy the pointers, choose outside the lock.
	sess.mu.Lock()
	subs := slices.Clone(sess.subs.all())
	sess.mu.Unlock()
	snap.Subscriptions = len(subs)
	subs = smallest(subs, maxFilters, func(a, b *subscription) bool { return a.full < b.full })
	snap.Filters = make([]SubscriptionSnapshot, len(subs))
	for i, sub := range subs {
		snap.Filters[i] = SubscriptionSnapshot{
			Filter:            sub.full,
			QoS:               sub.qos,
			NoLocal:           sub.noLocal,
			RetainAsPublished: sub.retainAsPublished,
			RetainHandling:    sub.retainHandling,
			SubscriptionID:    sub.id,
		}
	}
	return snap, true
}

// snapshot copies one session's state.
func (sess *session) snapshot() ClientSnapshot {
	sess.mu.Lock()
	c := sess.out.c
	snap := ClientSnapshot{
		ClientID:      sess.id,
		Online:        c != nil,
		SessionExpiry: sess.expiry,
		Persistent:    sess.persist,
		Subscriptions: sess.subs.len(),
		Inflight:      len(sess.out.inflight),
		Queued:        len(sess.out.queue),
		QueuedBytes:   sess.out.queuedBytes,
		IncomingQoS2:  len(sess.incoming),
	}
	sess.mu.Unlock()
	if c != nil {
		// These fields are written before attach publishes c under
		// sess.mu, and never after.
		snap.Username = c.info.Username
		snap.Version = c.version
		snap.Listener = c.info.Listener
		snap.KeepAlive = time.Duration(c.keepAlive) * time.Second
		if ra := c.conn.RemoteAddr(); ra != nil {
			snap.RemoteAddr = ra.String()
		}
		// connectedAt is written after attach but before connected is set.
		if c.is(fConnected) {
			snap.ConnectedAt = c.srv.started.Add(time.Duration(c.connectedAt) * time.Second)
		}
	}
	return snap
}

// Kick closes the connection of a client id, telling an MQTT 5 client
// 0x98 Administrative action; 3.1.1 clients are just closed. Its will is
// published as for any connection the broker closes, and its session stays
// for its expiry interval. Kick reports whether a connection was closed.
func (s *Server) Kick(id string) bool {
	s.mu.Lock()
	sess := s.sessions.get(id)
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	sess.mu.Lock()
	c := sess.out.c
	sess.mu.Unlock()
	if c == nil {
		return false
	}
	s.log.Info("client kicked", "client", id, "remote", c.conn.RemoteAddr())
	c.disconnect(packet.AdministrativeAction, "administrative action")
	return true
}

// Topics returns the limit filters with the most subscribers, most first
// (ties by filter), and the number of distinct filters. Shared
// subscriptions count per group. limit <= 0 means all.
func (s *Server) Topics(limit int) (top []TopicCount, distinct int) {
	type key struct{ filter, group string }
	counts := make(map[key]int)
	s.subs.Walk(func(filter, group string, _ *session, _ *subscription) bool {
		counts[key{filter, group}]++
		return true
	})
	all := make([]TopicCount, 0, len(counts))
	for k, n := range counts {
		all = append(all, TopicCount{Filter: k.filter, Group: k.group, Subscribers: n})
	}
	top = smallest(all, limit, func(a, b TopicCount) bool {
		if a.Subscribers != b.Subscribers {
			return a.Subscribers > b.Subscribers
		}
		if a.Filter != b.Filter {
			return a.Filter < b.Filter
		}
		return a.Group < b.Group
	})
	return top, len(counts)
}

// Retained returns up to limit unexpired retained messages matching
// filter, sorted by topic (limit <= 0 means all). Which messages make the
// limit is unspecified when more match. The messages are the broker's own:
// callers must not modify them.
func (s *Server) Retained(filter string, limit int) ([]*Message, error) {
	if err := topic.ValidateFilter(filter); err != nil {
		return nil, err
	}
	now := time.Now()
	var out []*Message
	s.retained.Match(filter, func(_ string, m *Message) bool {
		if !m.expired(now) {
			out = append(out, m)
		}
		return limit <= 0 || len(out) < limit
	})
	slices.SortFunc(out, func(a, b *Message) int { return cmp.Compare(a.Topic, b.Topic) })
	return out, nil
}

// Gauges visits every session and returns the broker's levels.
func (s *Server) Gauges() Gauges {
	list, listeners := s.sessionList()
	g := Gauges{
		Sessions:         len(list),
		Subscriptions:    s.subs.Len(),
		Retained:         s.retained.Len(),
		OnlineByListener: make(map[string]int, len(listeners)),
	}
	for _, l := range listeners {
		g.OnlineByListener[l] = 0 // a series for an alert on == 0
	}
	for _, sess := range list {
		sess.mu.Lock()
		c := sess.out.c
		queued := len(sess.out.queue)
		g.Inflight += len(sess.out.inflight)
		g.QueuedBytes += sess.out.queuedBytes
		g.IncomingQoS2 += len(sess.incoming)
		sess.mu.Unlock()
		g.Queued += queued
		if queued > g.MaxQueued {
			g.MaxQueued, g.MaxQueuedClient = queued, sess.id
		}
		if c != nil {
			g.Online++
			g.OnlineByListener[c.info.Listener]++
		}
	}
	return g
}

// smallest returns the k smallest items by less, sorted; k <= 0 means all.
// A bounded heap keeps it O(n log k), so that a page of 100 out of a
// million sessions does not sort the million.
func smallest[T any](items []T, k int, less func(a, b T) bool) []T {
	if k <= 0 || len(items) <= k {
		slices.SortFunc(items, func(a, b T) int { return order(less, a, b) })
		return items
	}
	h := &boundedHeap[T]{less: less}
	for _, it := range items {
		if len(h.items) < k {
			heap.Push(h, it)
		} else if less(it, h.items[0]) {
			h.items[0] = it
			heap.Fix(h, 0)
		}
	}
	out := h.items
	slices.SortFunc(out, func(a, b T) int { return order(less, a, b) })
	return out
}

func order[T any](less func(a, b T) bool, a, b T) int {
	switch {
	case less(a, b):
		return -1
	case less(b, a):
		return 1
	}
	return 0
}

// boundedHeap is a max-heap by less: its root is the largest of the k
// smallest seen so far, the one to evict.
type boundedHeap[T any] struct {
	items []T
	less  func(a, b T) bool
}

func (h *boundedHeap[T]) Len() int           { return len(h.items) }
func (h *boundedHeap[T]) Less(i, j int) bool { return h.less(h.items[j], h.items[i]) }
func (h *boundedHeap[T]) Swap(i, j int)      { h.items[i], h.items[j] = h.items[j], h.items[i] }
func (h *boundedHeap[T]) Push(x any)         { h.items = append(h.items, x.(T)) }
func (h *boundedHeap[T]) Pop() any {
	n := len(h.items) - 1
	x := h.items[n]
	h.items = h.items[:n]
	return x
}
