package broker

import (
	"sync"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// Delivery states of an outbound QoS 1/2 message.
const (
	stateQueued    byte = iota // waiting for the window or the client
	stateSent                  // PUBLISH sent, waiting for PUBACK / PUBREC
	stateReleasing             // PUBREC received; PUBREL goes out once that is durable
	stateReleased              // PUBREL sent, waiting for PUBCOMP
)

// delivery is one QoS 1/2 message on its way to one session.
type delivery struct {
	msg         *Message
	qos         byte
	retain      bool
	subIDs      []uint32
	group       string // shared subscription group, "" if none
	groupFilter string
	pid         uint16
	state       byte
	seq         uint64 // store key; 0 if not stored
	ready       bool   // may be sent: not waiting for its store record to be durable
	resend      bool   // recovered from the store: may have been sent already
}

// outbound is a session's sending side: the inflight window, the queue
// behind it and packet ids. Guarded by session.mu. (Server-to-client topic
// aliases belong to a connection [MQTT-3.3.2-7], so the client holds them.)
//
// Deliveries in the queue that already hold a packet id (sent before a
// reconnect, or recovered from the store) are always at its front, so the
// id allocIDs gives a delivery sent from the front of the queue can only
// clash with the ids in flight.
type outbound struct {
	c           *client
	inflight    []*delivery // in send order
	queue       []*delivery // FIFO waiting for the window
	queuedBytes int
	seq         uint64
	nextID      uint16
	// resuming: c is attached but its CONNACK is not written yet, so
	// nothing may be sent on it [MQTT-3.2.0-1]; resume clears it, resends
	// what was in flight and then sends the queue, in order.
	resuming bool
}

// resetConnection points the outbound side at a new connection (or none).
// Nothing is sent on a new connection before resume.
func (o *outbound) resetConnection(c *client) {
	o.c = c
	o.resuming = c != nil
}

// live is the connection messages may be written to now: nil while
// offline or before resume.
func (o *outbound) live() *client {
	if o.resuming {
		return nil
	}
	return o.c
}

// window is how many QoS 1/2 messages may be in flight now: the smaller of
// the broker's limit and the client's Receive Maximum [MQTT-3.3.4-9].
func (o *outbound) window(maxInflight uint16) int {
	w := int(maxInflight)
	if o.c != nil && int(o.c.receiveMaxOut) < w {
		w = int(o.c.receiveMaxOut)
	}
	return w
}

// deliver hands one message to the session (called by the router).
func (sess *session) deliver(r *route, qos byte, retain bool, subIDs []uint32) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended {
		return
	}
	if qos == 0 {
		c := sess.out.live()
		if c == nil {
			// QoS 0 is not queued for offline sessions, nor for one whose
			// CONNACK is still to be written.
			sess.srv.stats.DroppedQoS0.Add(1)
			return
		}
		sess.sendQoS0(r, c, retain, subIDs)
		return
	}
	d := &delivery{msg: r.msg, qos: qos, retain: retain}
	if len(subIDs) > 0 {
		d.subIDs = append([]uint32(nil), subIDs...)
	}
	sess.enqueue(d, r)
}

// deliverShared is deliver for a shared subscription: the delivery
// remembers its group so it can be handed to another member if this
// session ends before sending it. It reports false, taking nothing, when
// the session has ended (it leaves the trie just after), so that the
// caller can pick another member.
func (sess *session) deliverShared(r *route, qos byte, retain bool, subIDs []uint32, group, filter string) bool {
	if qos == 0 {
		sess.deliver(r, 0, retain, subIDs)
		return true
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended {
		return false
	}
	d := &delivery{msg: r.msg, qos: qos, retain: retain, group: group, groupFilter: filter}
	if len(subIDs) > 0 {
		d.subIDs = append([]uint32(nil), subIDs...)
	}
	sess.enqueue(d, r)
	return true
}

// enqueue sends d now if the window allows, else queues it. A full queue
// refuses it: counted and logged, never silent. Caller holds sess.mu.
func (sess *session) enqueue(d *delivery, r *route) {
	o := &sess.out
	if len(o.queue) >= sess.srv.opts.MaxQueuedMessages || o.queuedBytes+d.msg.weight() > sess.srv.opts.MaxQueuedBytes {
		sess.srv.stats.DroppedQueueFull.Add(1)
		if r != nil {
			r.refused++
		}
		sess.srv.logDrop("session queue full", sess.id, d.msg.Topic)
		return
	}
	if sess.persist && r != nil && sess.srv.opts.Store != nil {
		// Held back until durable: see pendingStore.
		o.seq++
		d.seq = o.seq
		r.durable = append(r.durable, pendingStore{sess: sess, d: d,
			entry: store.Entry{ClientID: sess.id, Msg: storeMessage(d.msg, d.seq, d)}})
		o.queue = append(o.queue, d)
		sess.queueBytes(d.msg.weight())
		return
	}
	d.ready = true
	if o.live() != nil && len(o.queue) == 0 && len(o.inflight) < o.window(sess.srv.opts.MaxInflight) {
		sess.sendPublish(d, false, r)
		return
	}
	o.queue = append(o.queue, d)
	sess.queueBytes(d.msg.weight())
}

// queueBytes accounts the bytes (Message.weight) entering (or, negative, leaving) the
// session's queue, per session and node-wide. Caller holds sess.mu.
func (sess *session) queueBytes(n int) {
	sess.out.queuedBytes += n
	sess.srv.queued(n)
}

// sendQoS0 writes a QoS 0 message, from the shared encoded form when the
// client needs nothing of its own. Caller holds sess.mu.
func (sess *session) sendQoS0(r *route, c *client, retain bool, subIDs []uint32) {
	if r.msg.expired(r.now) {
		sess.srv.stats.DroppedExpired.Add(1)
		return
	}
	max := sess.srv.opts.MaxPendingBytes
	if c.is(fSlow) {
		// Slow consumer: QoS 0 is dropped (and counted) until the bytes
		// already waiting for it drain. Checked before encoding: encoding
		// may assign a topic alias, which only a packet actually written
		// defines for the client (MQTT 5.0 section 3.3.2.3.4).
		if pending, _ := c.conn.Write(nil); pending > max {
			sess.srv.stats.DroppedQoS0.Add(1)
			return
		}
		c.unset(fSlow)
	}
	var b []byte
	if len(subIDs) == 0 && c.aliasMaxOut == 0 {
		b = r.form(c.version, 0, retain)
	} else {
		b = sess.encodeOwn(r.msg, 0, retain, subIDs, 0, false, &r.scratch)
	}
	if b == nil {
		return
	}
	if c.maxPacketOut > 0 && uint32(len(b)) > c.maxPacketOut {
		sess.srv.stats.DroppedTooLarge.Add(1) // [MQTT-3.1.2-25] discard, as if sent
		return
	}
	// Counted on the route and added to the shared counters once per
	// publish, not once per subscriber.
	pending, err := c.conn.Write(b)
	if err != nil {
		return
	}
	if pending > max {
		c.set(fSlow)
	}
	r.sentQoS0++
	r.sentBytes += len(b)
}

// sendPublish assigns a packet id (unless resending) and writes d. Caller
// holds sess.mu and has checked the window.
func (sess *session) sendPublish(d *delivery, dup bool, r *route) {
	o := &sess.out
	c := o.c
	now := time.Now()
	if d.state == stateQueued && d.msg.expired(now) {
		// [MQTT-3.3.2-5] an expired message whose onward delivery has not
		// started is not sent. That is its state, not dup: a delivery
		// recovered as queued is sent with DUP (a crash may have lost the
		// record of its sending) but, as far as the store knows, was never
		// sent; one that was in flight is resent even if expired.
		sess.dropExpired(d)
		return
	}
	if d.pid == 0 {
		d.pid = o.allocID(d.seq)
	}
	var b []byte
	if r != nil && len(d.subIDs) == 0 && c.aliasMaxOut == 0 && r.msg == d.msg {
		// Encode once per wire form: copy the shared encoding and patch in
		// this delivery's packet id (and DUP).
		form := r.form(c.version, d.qos, d.retain)
		if form == nil {
			sess.forget(d) // cannot be encoded (logged): never sendable
			return
		}
		b = append(r.scratch[:0], form...)
		r.scratch = b
		if dup {
			b[0] |= 0x08
		}
		off := publishIDOffset(b)
		b[off], b[off+1] = byte(d.pid>>8), byte(d.pid)
	} else {
		var scratch [512]byte
		buf := scratch[:0]
		if b = sess.encodeOwn(d.msg, d.qos, d.retain, d.subIDs, d.pid, dup, &buf); b == nil {
			sess.forget(d) // cannot be encoded (logged): never sendable
			return
		}
	}
	if c.maxPacketOut > 0 && uint32(len(b)) > c.maxPacketOut {
		// [MQTT-3.1.2-25] discard it and behave as if it was delivered.
		sess.srv.stats.DroppedTooLarge.Add(1)
		sess.forget(d)
		return
	}
	d.state = stateSent
	o.inflight = append(o.inflight, d)
	if sess.persist && d.seq != 0 && sess.srv.opts.Store != nil {
		sess.srv.opts.Store.UpdateMessage(sess.id, d.seq, d.pid, stateSentStore)
	}
	c.write(b)
	sess.srv.stats.MessagesOutQoS[d.qos].Add(1)
	sess.srv.stats.MessagesOut.Add(1)
}

// publishPool recycles the (large) Publish structs used for encoding, so
// that encoding a delivery allocates nothing.
var publishPool = sync.Pool{New: func() any { return new(packet.Publish) }}

// encodeOwn encodes one delivery for this session's connection, with its
// packet id, subscription ids and topic alias. Caller holds sess.mu.
func (sess *session) encodeOwn(m *Message, qos byte, retain bool, subIDs []uint32, pid uint16, dup bool, buf *[]byte) []byte {
	c := sess.out.c
	p := publishPool.Get().(*packet.Publish)
	defer publishPool.Put(p)
	m.publishPacket(p, qos, retain, subIDs, time.Now())
	p.PacketID, p.Dup = pid, dup
	assigned := false
	if c.version == packet.Version5 && c.aliasMaxOut > 0 {
		assigned = c.extra.aliasOut.apply(p, c.aliasMaxOut)
	}
	b, err := packet.Encode((*buf)[:0], c.version, p)
	if err != nil {
		sess.srv.log.Error("encode publish", "client", sess.id, "err", err)
		if assigned {
			c.extra.aliasOut.unassign(p.Topic) // never written, never defined
		}
		return nil
	}
	if assigned && c.maxPacketOut > 0 && uint32(len(b)) > c.maxPacketOut {
		// The caller discards this packet [MQTT-3.1.2-25], so the client
		// never learns the alias: it must not be used for later messages.
		c.extra.aliasOut.unassign(p.Topic)
	}
	*buf = b
	return b
}

// outAliases are the server-to-client topic aliases of one connection,
// guarded by the lock of the session it is attached to.
type outAliases struct {
	byTopic map[string]uint16
	next    uint16 // the last alias assigned
}

// apply uses or assigns a server-to-client topic alias while the
// client allows more [MQTT-3.3.2-8]; once all are taken, topics go in full.
// It reports whether it assigned a new alias.
func (a *outAliases) apply(p *packet.Publish, maxAlias uint16) bool {
	if n, ok := a.byTopic[p.Topic]; ok {
		p.Props.TopicAlias = n
		p.Topic = ""
		return false
	}
	if a.next >= maxAlias {
		return false
	}
	if a.byTopic == nil {
		a.byTopic = make(map[string]uint16)
	}
	a.next++
	a.byTopic[p.Topic] = a.next
	p.Props.TopicAlias = a.next
	return true
}

// unassign takes back the alias apply just assigned to topic.
func (a *outAliases) unassign(topic string) {
	delete(a.byTopic, topic)
	a.next--
}

// allocID returns a packet id not in use by an inflight message
// [MQTT-2.2.1-3]. A stored delivery gets the id derived from its sequence
// number when that is free, so that after a crash that lost the record of
// its sending, the broker resends it with the same id (and DUP): a QoS 2
// receiver then recognises it instead of delivering it twice.
func (o *outbound) allocID(seq uint64) uint16 {
	if seq != 0 {
		if id := pidForSeq(seq); o.findInflight(id) < 0 {
			return id
		}
	}
	for {
		o.nextID++
		if o.nextID == 0 {
			o.nextID = 1
		}
		if o.findInflight(o.nextID) < 0 {
			return o.nextID
		}
	}
}

// pidForSeq is the packet id a stored delivery uses by default.
func pidForSeq(seq uint64) uint16 { return uint16(seq%65535) + 1 }

func (o *outbound) findInflight(pid uint16) int {
	for i, d := range o.inflight {
		if d.pid == pid {
			return i
		}
	}
	return -1
}

func (o *outbound) removeInflight(pid uint16) *delivery {
	i := o.findInflight(pid)
	if i < 0 {
		return nil
	}
	d := o.inflight[i]
	copy(o.inflight[i:], o.inflight[i+1:])
	o.inflight[len(o.inflight)-1] = nil
	o.inflight = o.inflight[:len(o.inflight)-1]
	return d
}

// fill moves queued messages into the window. Caller holds sess.mu.
func (sess *session) fill() {
	o := &sess.out
	w := o.window(sess.srv.opts.MaxInflight)
	for o.live() != nil && len(o.queue) > 0 && len(o.inflight) < w && o.queue[0].ready {
		d := o.queue[0]
		o.queue[0] = nil
		o.queue = o.queue[1:]
		if d.pid != 0 && o.findInflight(d.pid) >= 0 {
			// A recovered delivery's id (derived from its sequence number)
			// is held by a message in flight: two in flight must not share
			// one [MQTT-2.2.1-3].
			d.pid = 0
		}
		sess.queueBytes(-d.msg.weight())
		sess.sendPublish(d, d.resend, nil)
	}
	if len(o.queue) == 0 {
		o.queue = nil // release the backing array of a drained queue
	}
}

// resume runs after CONNACK: it resends what was in flight (PUBLISH with
// DUP, or PUBREL) in its original order [MQTT-4.4.0-1] and fills the window.
// The new connection's Receive Maximum may be smaller than the old one's
// [MQTT-3.3.4-9]: PUBLISHes beyond it go back to the front of the queue,
// with their packet ids, and are resent with DUP as acknowledgements make
// room. (A PUBREL is always resent: its message already counts against
// the window, and only the PUBCOMP it asks for frees the place.)
func (sess *session) resume(c *client) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	o := &sess.out
	if o.c != c {
		// Taken over (or gone) between attach and now: the session's
		// current connection resends, not this one.
		return
	}
	o.resuming = false
	w := o.window(sess.srv.opts.MaxInflight)
	old := o.inflight
	o.inflight = make([]*delivery, 0, len(old))
	var later []*delivery
	for _, d := range old {
		switch {
		case d.state == stateReleasing:
			// Its PUBREL goes to this connection once the released state
			// is durable (see releaseDurable).
			o.inflight = append(o.inflight, d)
		case d.state == stateReleased:
			o.inflight = append(o.inflight, d)
			o.c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: d.pid})
		case len(o.inflight) >= w:
			d.resend = true
			later = append(later, d)
		default:
			sess.sendPublish(d, true, nil) // [MQTT-3.3.1-1] DUP on redelivery
		}
	}
	if len(later) > 0 {
		for _, d := range later {
			sess.queueBytes(d.msg.weight())
		}
		o.queue = append(later, o.queue...)
	}
	sess.fill()
}

// dropExpired drops a delivery whose expiry interval passed before its
// onward delivery started, and its stored copy [MQTT-3.3.2-5]. Caller
// holds sess.mu.
func (sess *session) dropExpired(d *delivery) {
	sess.srv.stats.DroppedExpired.Add(1)
	sess.forget(d)
}

// forget drops a delivery's stored copy. Caller holds sess.mu.
//
// An ended session's records are gone already, and a record under its
// client id and that sequence number may now be the next session's (a late
// acknowledgement read on a taken-over connection), so it forgets nothing.
func (sess *session) forget(d *delivery) {
	if sess.persist && !sess.ended && d.seq != 0 && sess.srv.opts.Store != nil {
		sess.srv.opts.Store.DeleteMessage(sess.id, d.seq)
	}
}

// drainShared takes the shared-subscription deliveries that may go to
// another member out of the session. Caller holds sess.mu.
//
// A QoS 1 message sent but not acknowledged goes to another member too
// (v5 4.8.2, SHOULD). A QoS 2 message whose delivery has started (sent,
// even if queued again behind a smaller Receive Maximum) is this member's:
// it is not sent to any other [MQTT-4.8.2-5] and ends with the session,
// like any other message in flight to it. (It is not counted as dropped:
// the client may well have received it.)
func (o *outbound) drainShared() []*delivery {
	var out []*delivery
	for _, d := range o.inflight {
		if d.group != "" && d.state == stateSent && d.qos == 1 {
			out = append(out, d)
		}
	}
	kept := o.queue[:0]
	for _, d := range o.queue {
		if d.group != "" && (d.qos == 1 || d.state == stateQueued) {
			out = append(out, d)
			o.queuedBytes -= d.msg.weight()
		} else {
			kept = append(kept, d)
		}
	}
	o.queue = kept
	return out
}

// redeliverShared hands a delivery that lost its member to another member
// of the same group, if any is left.
func (s *Server) redeliverShared(d *delivery) {
	r := routePool.Get().(*route)
	r.srv, r.msg, r.now = s, d.msg, time.Now()
	found := false
	s.subs.Match(d.msg.Topic, func(*session, *subscription) {}, func(g *groupT) {
		if found || g.Name != d.group || g.Filter != d.groupFilter {
			return
		}
		found = true
		r.visitShared(g)
	})
	pending := r.takeDurable()
	r.reset()
	routePool.Put(r)
	s.commitNow(pending, nil)
}
