package broker

import (
	"sync"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
)

// route is one message on its way through the trie to its subscribers. It
// is pooled: routing a message allocates nothing once the pool is warm.
type route struct {
	srv *Server
	msg *Message
	now time.Time

	// Sessions holding several matching subscriptions are merged here so
	// they get one message [MQTT-3.3.4-2]; the rest are delivered at once.
	merged map[*session]*mergedDelivery
	order  []*mergedDelivery
	spare  []*mergedDelivery

	forms   [2][3][2][]byte // encoded once per wire form: [v5][qos][retain]
	scratch []byte          // per-delivery copy when the id or properties differ
	oneID   [1]uint32       // the subscription id of an unmerged delivery (idScratch)

	durable []pendingStore // QoS 1/2 deliveries to persistent sessions
	matched int
	refused int // deliveries refused by a full session queue

	sentQoS0  int // QoS 0 PUBLISH packets written, added to Stats by flushStats
	sentBytes int
}

type mergedDelivery struct {
	sess   *session
	qos    byte
	retain bool
	subIDs []uint32
}

var routePool = sync.Pool{New: func() any {
	return &route{merged: make(map[*session]*mergedDelivery)}
}}

// Publish routes a message from the broker itself (bridges, $SYS, admin).
func (s *Server) Publish(m *Message) {
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	s.route(m, nil)
}

// route delivers m to every matching subscription and updates the
// retained index, committing what must be durable before it returns. It
// returns the number of subscriptions that matched.
func (s *Server) route(m *Message, from *ClientInfo) int {
	d := s.dispatch(m, from)
	s.commitNow(d.pending, d.retained)
	return d.matched
}

// dispatched is what dispatch did with a message.
type dispatched struct {
	matched  int            // subscriptions that matched
	refused  int            // deliveries refused by a full session queue
	pending  []pendingStore // records to commit before acknowledging
	retained *Message       // retained update for the store, nil if none
}

// dispatch delivers m to every matching subscription. Deliveries to
// persistent sessions wait in their queues until the caller has committed
// the returned records (commitNow or a commitJob).
func (s *Server) dispatch(m *Message, from *ClientInfo) (d dispatched) {
	for _, h := range s.opts.Hooks {
		h.OnPublish(from, m)
	}
	if m.Retain {
		d.retained = s.retain(m)
	}
	r := routePool.Get().(*route)
	r.srv, r.msg, r.now = s, m, time.Now()
	s.subs.Match(m.Topic, r.visit, r.visitShared)
	for _, md := range r.order {
		md.sess.deliver(r, md.qos, md.retain, md.subIDs)
	}
	d.matched, d.refused = r.matched, r.refused
	d.pending = r.takeDurable()
	r.reset()
	routePool.Put(r)
	return d
}

// flushStats adds the route's delivery counts to the server's counters.
func (r *route) flushStats() {
	if r.sentQoS0 == 0 {
		return
	}
	st := &r.srv.stats
	st.MessagesOut.Add(int64(r.sentQoS0))
	st.MessagesOutQoS[0].Add(int64(r.sentQoS0))
	st.BytesOut.Add(int64(r.sentBytes))
	r.sentQoS0, r.sentBytes = 0, 0
}

// takeDurable hands over the route's pending store records.
func (r *route) takeDurable() []pendingStore {
	if len(r.durable) == 0 {
		return nil
	}
	return append([]pendingStore(nil), r.durable...)
}

func (r *route) reset() {
	for _, d := range r.order {
		*d = mergedDelivery{subIDs: d.subIDs[:0]}
		r.spare = append(r.spare, d)
	}
	r.order = r.order[:0]
	clear(r.merged)
	for v := range r.forms {
		for q := range r.forms[v] {
			for k := range r.forms[v][q] {
				r.forms[v][q][k] = r.forms[v][q][k][:0]
			}
		}
	}
	r.flushStats()
	r.msg, r.srv, r.matched, r.refused = nil, nil, 0, 0
	clear(r.durable)
	r.durable = r.durable[:0]
}

// visit handles one ordinary matching subscription.
func (r *route) visit(sess *session, sub *subscription) {
	if sub.noLocal && r.msg.from != nil && r.msg.from.id == sess.id {
		// [MQTT-3.8.3-3] by client id, not session: a Clean Start gives
		// the client id a new session while its last connection's will
		// may still be on its way.
		return
	}
	r.matched++
	qos := min(sub.qos, r.msg.QoS) // [MQTT-3.8.4-8] granted QoS caps the delivery
	retain := sub.retainAsPublished && r.msg.Retain
	if sess.subCount.Load() <= 1 {
		var ids []uint32
		if sub.id != 0 {
			ids = r.idScratch(sub.id)
		}
		sess.deliver(r, qos, retain, ids)
		return
	}
	d := r.merged[sess]
	if d == nil {
		d = r.newMerged(sess)
		r.merged[sess] = d
	}
	d.qos = max(d.qos, qos)
	d.retain = d.retain || retain
	if sub.id != 0 {
		d.subIDs = append(d.subIDs, sub.id) // [MQTT-3.3.4-3] every identifier
	}
}

func (r *route) newMerged(sess *session) *mergedDelivery {
	var d *mergedDelivery
	if n := len(r.spare); n > 0 {
		d, r.spare = r.spare[n-1], r.spare[:n-1]
	} else {
		d = &mergedDelivery{}
	}
	d.sess = sess
	r.order = append(r.order, d)
	return d
}

// idScratch returns a one-element slice holding id without allocating.
// It is the route's own, not a pooled mergedDelivery's: a pooled entry
// must come back clean, or its id would go to another session's delivery
// [MQTT-3.3.4-3]. Deliveries copy what they keep, so one slice serves all.
func (r *route) idScratch(id uint32) []uint32 {
	r.oneID[0] = id
	return r.oneID[:]
}

// visitShared picks one member of a shared group [MQTT-4.8.2-4], preferring
// members that are online.
func (r *route) visitShared(g *topic.Group[*session, *subscription]) {
	n := len(g.Members)
	if n == 0 {
		return
	}
	pick := -1
	for range n {
		i := g.Next()
		if g.Members[i].Client.online.Load() {
			pick = i
			break
		}
	}
	if pick < 0 {
		pick = g.Next()
	}
	r.matched++
	// A member whose session ended but has not left the trie yet refuses
	// the message: the next one gets it, so that a QoS 1/2 message the
	// publisher is acknowledged for is not dropped.
	for range n {
		m := g.Members[pick]
		qos := min(m.Value.qos, r.msg.QoS)
		retain := m.Value.retainAsPublished && r.msg.Retain // [MQTT-3.3.1-12] [MQTT-3.3.1-13]
		var ids []uint32
		if m.Value.id != 0 {
			ids = r.idScratch(m.Value.id)
		}
		if m.Client.deliverShared(r, qos, retain, ids, g.Name, g.Filter) {
			return
		}
		pick = g.Next()
	}
}

// form returns m encoded for a wire form, encoding it on first use. For QoS
// > 0 the packet id bytes are zero and patched per delivery.
func (r *route) form(version byte, qos byte, retain bool) []byte {
	v := 0
	if version == packet.Version5 {
		v = 1
	}
	k := 0
	if retain {
		k = 1
	}
	b := r.forms[v][qos][k]
	if len(b) > 0 {
		return b
	}
	p := publishPool.Get().(*packet.Publish)
	defer publishPool.Put(p)
	r.msg.publishPacket(p, qos, retain, nil, r.now)
	if qos > 0 {
		p.PacketID = 1 // patched per delivery
	}
	b, err := packet.Encode(b[:0], version, p)
	if err != nil {
		r.srv.log.Error("encode publish", "topic", r.msg.Topic, "err", err)
		return nil
	}
	r.forms[v][qos][k] = b
	return b
}

// publishIDOffset is where the packet id sits in an encoded PUBLISH with
// QoS > 0: after the fixed header and the topic name.
func publishIDOffset(frame []byte) int {
	i := 1
	for frame[i]&0x80 != 0 {
		i++
	}
	i++
	return i + 2 + (int(frame[i])<<8 | int(frame[i+1]))
}

// retain stores or clears a retained message in the index [MQTT-3.3.1-5,
// -6, -10] and returns the update the store needs (nil if none). $SYS
// values stay in memory: a store commit for each of them every tick would
// delay the acknowledgements waiting on the store, for values that are
// stale after a restart.
func (s *Server) retain(m *Message) *Message {
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	s.retainSeq++
	m.retainSeq = s.retainSeq
	durable := s.opts.Store != nil && !sysTopic(m.Topic)
	if len(m.Payload) == 0 {
		if s.retained.Delete(m.Topic) && durable {
			return m
		}
		return nil
	}
	s.retained.Set(m.Topic, m)
	if durable {
		return m
	}
	return nil
}
