package broker

import (
	"strings"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/topic"
)

// handlePublish processes a PUBLISH from the client: topic alias, checks,
// routing, and the QoS 1/2 acknowledgement.
// now is when its frame was read.
func (c *client) handlePublish(p *packet.Publish, size int, now time.Time) error {
	o := &c.srv.opts
	c.srv.stats.MessagesIn.Add(1)
	if !c.publishAllowed(size, now) {
		return c.protocolFailure(packet.Errorf(packet.MessageRateTooHigh, "publish rate or bandwidth limit exceeded"))
	}
	if p.QoS > o.MaximumQoS {
		// [MQTT-3.2.2-11] a QoS above Maximum QoS is a protocol error.
		return c.protocolFailure(packet.Errorf(packet.QoSNotSupported, "QoS %d above maximum %d", p.QoS, o.MaximumQoS))
	}
	if p.Retain && !o.RetainAvailable {
		return c.protocolFailure(packet.Errorf(packet.RetainNotSupported, "retain not available")) // [MQTT-3.2.2-14]
	}
	if len(p.Props.SubscriptionIDs) > 0 {
		// [MQTT-3.3.4-6] a client must not send Subscription Identifiers.
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "subscription identifier in PUBLISH from a client"))
	}
	if err := c.resolveAlias(p); err != nil {
		return err
	}
	if err := topic.ValidateName(p.Topic); err != nil {
		return c.protocolFailure(packet.Errorf(packet.TopicNameInvalid, "topic name: %v", err))
	}
	if o.MaxTopicLevels > 0 && topicLevels(p.Topic) > o.MaxTopicLevels {
		return c.protocolFailure(packet.Errorf(packet.TopicNameInvalid, "topic has more than %d levels", o.MaxTopicLevels))
	}

	if p.QoS == 2 && c.sess.hasIncoming(p.PacketID) {
		// [MQTT-4.3.3-10] a retransmitted PUBLISH before PUBREL is not
		// delivered again; answer PUBREC once more. For a persistent
		// session through the committer: the first copy's record may not
		// be durable yet (it may even wait there for an earlier connection
		// of this client), and PUBREC promises that it is. Likewise while
		// any acknowledgement of this client waits there: the first copy's
		// PUBREC may, held until its deliveries to persistent sessions are
		// durable, and this one must not overtake it [MQTT-4.6.0-3].
		rec := packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID}
		if c.sess.persistent() || c.pendingAcks.Load() > 0 {
			c.srv.commit.submit(commitJob{c: c, ack: rec, sendAck: true, uncounted: true})
		} else {
			c.send(&rec)
		}
		return nil
	}
	if p.QoS > 0 && c.unacknowledgedIn(p.QoS) >= int(o.ReceiveMaximum) {
		// [MQTT-3.3.4-7] more QoS 1 and 2 PUBLISHes than Receive Maximum
		// without PUBACK or PUBCOMP.
		return c.protocolFailure(packet.Errorf(packet.ReceiveMaximumExceeded, "receive maximum exceeded"))
	}

	reason := packet.Success
	var (
		pending  []pendingStore
		retained *Message
	)
	if sysTopic(p.Topic) || o.ACL != nil && !o.ACL.CanPublish(&c.info, p.Topic) {
		// $SYS is the broker's own, whatever the ACL allows.
		c.srv.stats.DroppedACL.Add(1)
		reason = packet.NotAuthorized // [MQTT-3.3.5-2] acknowledged, not delivered
	} else {
		m := messageFromPublish(p, now)
		m.from = c.sess
		d := c.srv.dispatch(m, &c.info)
		pending, retained = d.pending, d.retained
		switch {
		case d.refused > 0:
			// A subscriber's queue is full: the publisher must not take
			// this for delivery (v5; 3.1.1 has no negative ack, the drop is
			// counted and logged).
			reason = packet.QuotaExceeded
		case d.matched == 0:
			reason = packet.NoMatchingSubscribers
		}
	}
	if c.version != packet.Version5 {
		reason = packet.Success // 3.1.1 acknowledgements carry no reason
	}
	job := commitJob{pending: pending, retained: retained, c: c}
	switch p.QoS {
	case 1:
		job.ack, job.sendAck = packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID, ReasonCode: reason}, true
	case 2:
		if reason < 0x80 {
			c.sess.addIncoming(p.PacketID)
			job.incoming = p.PacketID
			job.uncounted = true // counted through sess.incoming
		}
		job.ack, job.sendAck = packet.Ack{Kind: packet.PUBREC, PacketID: p.PacketID, ReasonCode: reason}, true
	}
	needsStore := len(pending) > 0 || retained != nil || (job.incoming != 0 && c.sess.persistent())
	if !needsStore && c.pendingAcks.Load() == 0 {
		// Nothing to make durable and no earlier acknowledgement waiting:
		// answer at once.
		if job.sendAck {
			c.send(&job.ack)
		}
		c.throttle()
		return nil
	}
	if p.QoS == 0 {
		job.c = nil // no acknowledgement to order
	}
	c.srv.commit.submit(job)
	c.throttle()
	return nil
}

// resolveAlias applies the v5 Topic Alias of an incoming PUBLISH
// [MQTT-3.3.2-10..12].
func (c *client) resolveAlias(p *packet.Publish) error {
	a := p.Props.TopicAlias
	if a == 0 {
		if p.Topic == "" {
			return c.protocolFailure(packet.Errorf(packet.ProtocolError, "empty topic without a topic alias"))
		}
		return nil
	}
	if c.version != packet.Version5 || a > c.srv.opts.TopicAliasMaximum {
		// [MQTT-3.3.2-9] alias 0 or above the maximum we sent.
		return c.protocolFailure(packet.Errorf(packet.TopicAliasInvalid, "topic alias %d out of range", a))
	}
	if p.Topic != "" {
		x := c.ext()
		if x.aliasIn == nil {
			x.aliasIn = make(map[uint16]string)
		}
		x.aliasIn[a] = strings.Clone(p.Topic) // decoded strings share the packet's memory
		return nil
	}
	var t string
	ok := false
	if c.extra != nil {
		t, ok = c.extra.aliasIn[a]
	}
	if !ok {
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "unknown topic alias %d", a))
	}
	p.Topic = t
	return nil
}

func topicLevels(name string) int {
	n := 1
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			n++
		}
	}
	return n
}

// handleAck processes PUBACK, PUBREC, PUBREL and PUBCOMP from the client.
func (c *client) handleAck(a *packet.Ack) error {
	sess := c.sess
	switch a.Kind {
	case packet.PUBREL:
		// [MQTT-4.3.3-11] release the id and answer PUBCOMP even if unknown.
		known, stored := sess.removeIncoming(a.PacketID)
		comp := packet.Ack{Kind: packet.PUBCOMP, PacketID: a.PacketID}
		if !known && c.version == packet.Version5 {
			comp.ReasonCode = packet.PacketIDNotFound
		}
		if stored {
			// The id's record goes through the committer, after the one
			// that recorded it (which may still be waiting there), and
			// PUBCOMP once that is durable: a stale id would make a later
			// PUBLISH reusing it look like a retransmission.
			c.srv.commit.submit(commitJob{c: c, ack: comp, sendAck: true, released: a.PacketID})
			return nil
		}
		c.send(&comp)
		return nil
	case packet.PUBACK, packet.PUBREC, packet.PUBCOMP:
		sess.mu.Lock()
		defer sess.mu.Unlock()
		o := &sess.out
		i := o.findInflight(a.PacketID)
		if i < 0 {
			return nil // late or duplicate ack: nothing to do
		}
		d := o.inflight[i]
		switch {
		case a.Kind == packet.PUBACK && d.qos == 1 && d.state == stateSent,
			a.Kind == packet.PUBCOMP && d.qos == 2 && d.state == stateReleased,
			a.Kind == packet.PUBREC && d.qos == 2 && d.state == stateSent && a.ReasonCode >= 0x80:
			o.removeInflight(a.PacketID)
			sess.forget(d)
			sess.fill()
		case a.Kind == packet.PUBREC && d.qos == 2 && d.state == stateSent:
			// [MQTT-4.3.3-4] answer PUBREC with PUBREL; the message itself is
			// now the client's, only the id is kept.
			if sess.persist && d.seq != 0 && c.srv.opts.Store != nil {
				// The released state must be durable before PUBREL goes out:
				// after a crash, resending the PUBLISH to a client that has
				// completed the flow would deliver the message twice. Until
				// then not even a resumed connection gets the PUBREL.
				d.state = stateReleasing
				c.srv.commit.submit(commitJob{c: c, uncounted: true, releasing: d,
					update: &store.Update{ClientID: sess.id, Seq: d.seq, PacketID: d.pid, State: store.AwaitingComp}})
				return nil
			}
			d.state = stateReleased
			c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: d.pid})
		case a.Kind == packet.PUBREC && d.state == stateReleased:
			c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: d.pid})
		case a.Kind == packet.PUBREC && d.state == stateReleasing:
			// A repeated PUBREC: the PUBREL follows once durable.
		default:
			return c.protocolFailure(packet.Errorf(packet.ProtocolError, "%v for packet id %d in the wrong state", a.Kind, a.PacketID))
		}
	}
	return nil
}

func (sess *session) hasIncoming(pid uint16) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	_, ok := sess.incoming[pid]
	return ok
}

// unacknowledgedIn counts the client's QoS 1 and 2 PUBLISHes the broker has
// not yet answered with PUBACK or PUBCOMP: acknowledgements waiting in the
// committer plus QoS 2 ids waiting for PUBREL (a QoS 2 id with its PUBREC
// still in the committer is in both, and counted once). A 3.1.1 client,
// which is told no Receive Maximum, is held to it for QoS 2 ids only (the
// ids the broker remembers); its QoS 1 flow is bounded by TCP and the
// memory budget.
func (c *client) unacknowledgedIn(qos byte) int {
	if c.version != packet.Version5 {
		if qos == 1 {
			return 0
		}
		return c.sess.incomingCount()
	}
	n := c.sess.incomingCount() + int(c.pendingAcks.Load())
	if c.extra != nil {
		n -= int(c.extra.pendingUncounted.Load())
	}
	return n
}

func (sess *session) incomingCount() int {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return len(sess.incoming)
}

func (sess *session) addIncoming(pid uint16) {
	sess.mu.Lock()
	if sess.incoming == nil {
		sess.incoming = make(map[uint16]struct{})
	}
	sess.incoming[pid] = struct{}{}
	sess.mu.Unlock()
}

// persistent reports whether the session's state goes to the store.
func (sess *session) persistent() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.persist && sess.srv.opts.Store != nil
}

// removeIncoming releases an inbound QoS 2 id: known reports whether it
// was held, stored whether its record is in the store to be deleted too.
func (sess *session) removeIncoming(pid uint16) (known, stored bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	_, known = sess.incoming[pid]
	delete(sess.incoming, pid)
	if len(sess.incoming) == 0 {
		sess.incoming = nil
	}
	return known, known && sess.persist && sess.srv.opts.Store != nil
}
