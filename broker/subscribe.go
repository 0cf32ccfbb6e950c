package broker

import (
	"fmt"
	"strings"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
)

type groupT = topic.Group[*session, *subscription]

// handleSubscribe processes SUBSCRIBE: one reason code per filter, then the
// retained messages each new subscription asks for.
func (c *client) handleSubscribe(p *packet.Subscribe) error {
	o := &c.srv.opts
	sess := c.sess
	codes := make([]packet.ReasonCode, len(p.Subscriptions))
	if !c.ackFits(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes}) {
		return c.ackTooLarge(packet.SUBACK, len(codes))
	}
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
		if !o.SubIDs {
			// (v5 §3.2.2.3.12) identifiers used when CONNACK said they are
			// not available: a Protocol Error, DISCONNECT 0xA1 [MQTT-4.13.1-1].
			return c.protocolFailure(packet.Errorf(packet.SubscriptionIDsNotSupported, "subscription identifiers not supported"))
		}
	}
	for _, req := range p.Subscriptions {
		if req.NoLocal && strings.HasPrefix(req.Filter, sharePrefix) {
			// [MQTT-3.8.3-4] a Protocol Error; SUBACK has no code for it.
			return c.protocolFailure(packet.Errorf(packet.ProtocolError, "No Local on shared subscription %q", req.Filter))
		}
		if c.version == packet.Version5 {
			// Checked before any filter is installed: the whole packet
			// is in error, not one filter of it.
			if err := unavailableFeature(o, req.Filter); err != nil {
				return c.protocolFailure(err)
			}
		}
	}
	type retainedWant struct {
		sub  *subscription
		msgs []*Message
	}
	var wants []retainedWant
	for i, req := range p.Subscriptions {
		code, sub, existed := c.subscribeOne(req, subID)
		codes[i] = code
		if code >= 0x80 {
			continue
		}
		// [MQTT-3.3.1-9..11] retain handling: 0 always, 1 only if new, 2 never;
		// shared subscriptions never get retained messages (v5 §4.8.2).
		// The retained messages are those present when the subscription is
		// made: taken now, before the SUBACK, so that a message published
		// after the client sees its SUBACK arrives as a live message
		// (RETAIN 0 unless Retain As Published) and not as a retained one.
		if sub.groupLen == 0 && (req.RetainHandling == 0 || (req.RetainHandling == 1 && !existed)) {
			if msgs := c.srv.retainedFor(sub.filter()); len(msgs) > 0 {
				wants = append(wants, retainedWant{sub, msgs})
			}
		}
	}
	// The subscription is durable before the SUBACK promises it: a writer
	// goroutine (TLS, WebSocket) sends at once, and a broker killed in
	// between would lose a subscription the client will not make again.
	// (Also before a 3.1 client is closed: the filters granted stay.)
	if err := sess.persistState(); err != nil {
		return c.storageFailure(err)
	}
	if c.version == packet.Version31 {
		for i, code := range codes {
			if code >= 0x80 {
				return c.refuseSubscribe31(p.Subscriptions[i].Filter, code)
			}
		}
	}
	if c.version != packet.Version5 {
		for i, code := range codes {
			if code >= 0x80 {
				codes[i] = packet.SubackFailure311
			}
		}
	}
	// [MQTT-3.8.4-1] SUBACK with the same packet id, before the retained messages.
	c.send(&packet.Suback{PacketID: p.PacketID, ReasonCodes: codes})
	for _, w := range wants {
		c.srv.sendRetained(sess, w.sub, w.msgs)
	}
	return nil
}

// refuseSubscribe31 ends the connection of an MQTT 3.1 client (level 3,
// "MQIsdp") that asked for a filter the broker refuses: denied by the ACL,
// invalid, over the subscription quota, or using a feature not offered.
// The 3.1 SUBACK payload is "a vector of granted QoS levels" (3.1 §3.9):
// it has no failure code. 0x80 arrived with 3.1.1 [MQTT-3.9.3-2], and a
// 3.1 client cannot be relied on to understand it; answering the QoS
// asked for without subscribing (what Mosquitto does for an ACL denial)
// would lie to it. Closing the connection is the one refusal a 3.1 client
// is sure to see. The filters of the same SUBSCRIBE that were granted
// stay, as if each had come in its own SUBSCRIBE ([MQTT-3.8.4-4] in
// 3.1.1); whatever refused the filter has already counted and logged it
// (subscribeOne: the quota), and the close is counted under the refusal's
// reason code like any connection the broker ends.
func (c *client) refuseSubscribe31(filter string, code packet.ReasonCode) error {
	c.srv.log.Info("subscription refused, closing MQTT 3.1 client", "client", c.info.ClientID,
		"remote", c.conn.RemoteAddr(), "filter", filter, "reason", fmt.Sprintf("0x%02X", byte(code)))
	c.closedBy(code)
	return fmt.Errorf("%w: MQTT 3.1 subscription %q refused with 0x%02X", errClosed, filter, byte(code))
}

// unavailableFeature returns the Protocol Error of an MQTT 5 filter that
// uses a feature the CONNACK announced as not available, or nil. The spec
// makes it a Protocol Error, answered with DISCONNECT, not a SUBACK reason
// code: (v5 §3.2.2.3.11) Wildcard Subscription Available = 0, 0xA2;
// (v5 §3.2.2.3.13) Shared Subscription Available = 0, 0x9E; and the
// server MUST close the connection [MQTT-4.13.1-1]. SUBACK 0xA2 is only
// for a server that supports wildcards refusing one subscription (v5
// §3.2.2.3.11). An invalid filter is left to subscribeOne (SUBACK 0x8F).
func unavailableFeature(o *Options, filter string) error {
	if o.SharedSubs && o.WildcardSubs {
		return nil
	}
	_, inner, shared, err := topic.ParseShared(filter)
	if err != nil {
		return nil
	}
	switch featureRefused(o, shared, inner) {
	case packet.SharedSubNotSupported:
		return packet.Errorf(packet.SharedSubNotSupported, "shared subscriptions not supported: %q", filter)
	case packet.WildcardSubNotSupported:
		return packet.Errorf(packet.WildcardSubNotSupported, "wildcard subscriptions not supported: %q", filter)
	}
	return nil
}

// featureRefused returns the reason code refusing a filter (parsed: its
// share flag and inner filter) that uses a feature the server does not
// offer, or Success.
func featureRefused(o *Options, shared bool, filter string) packet.ReasonCode {
	switch {
	case shared && !o.SharedSubs:
		return packet.SharedSubNotSupported
	case !o.WildcardSubs && strings.ContainsAny(filter, "+#"):
		return packet.WildcardSubNotSupported
	}
	return packet.Success
}

// subscribeOne validates and installs one filter, returning its reason code.
func (c *client) subscribeOne(req packet.Subscription, subID uint32) (packet.ReasonCode, *subscription, bool) {
	o := &c.srv.opts
	sess := c.sess
	group, filter, shared, err := topic.ParseShared(req.Filter)
	if err != nil {
		return packet.TopicFilterInvalid, nil, false
	}
	// Only MQTT 3.1.1 and 3.1 clients get here with a feature the broker
	// does not offer (a v5 client's SUBSCRIBE was a Protocol Error, see
	// unavailableFeature): they had no CONNACK properties to tell them, and
	// their SUBSCRIBE is valid, so the filter alone is refused, SUBACK 0x80
	// [MQTT-3.8.3-2] (3.1.1: a server without wildcards rejects them).
	if code := featureRefused(o, shared, filter); code != packet.Success {
		return code, nil, false
	}
	if o.MaxTopicLevels > 0 && topicLevels(filter) > o.MaxTopicLevels {
		return packet.TopicFilterInvalid, nil, false
	}
	if o.ACL != nil && !o.ACL.CanSubscribe(&c.info, req.Filter) {
		return packet.NotAuthorized, nil, false
	}
	qos := min(req.QoS, o.MaximumQoS)
	// Decoded strings share the packet's memory: keep one copy of the
	// filter; its parts are slices of it.
	sub := newSubscription(strings.Clone(req.Filter), group, qos, req.NoLocal, req.RetainAsPublished, req.RetainHandling, subID)
	sess.mu.Lock()
	if sess.ended {
		// A Clean Start took the client id over [MQTT-3.1.2-4] and this
		// connection is closing: an ended session in the trie would never
		// be delivered to, nor removed.
		sess.mu.Unlock()
		return packet.UnspecifiedError, nil, false
	}
	_, existed := sess.subs.get(req.Filter)
	if !existed && o.MaxSubsPerClient > 0 && sess.subs.len() >= o.MaxSubsPerClient {
		sess.mu.Unlock()
		c.srv.limitStats.MaxSubscriptions.Add(1)
		c.srv.logLimit("max subscriptions per client", c.info.ClientID)
		return packet.QuotaExceeded, nil, false
	}
	sess.subs.put(sub)
	sess.subCount.Store(int32(sess.subs.len()))
	sess.mu.Unlock()
	// [MQTT-3.8.4-3] an identical filter replaces the existing subscription.
	c.srv.subs.Subscribe(sub.filter(), sub.group(), sess, sub)
	sess.mu.Lock()
	ended := sess.ended
	sess.mu.Unlock()
	if ended {
		// Ended in between: its own removal of this filter may have run
		// before the line above.
		c.srv.subs.Unsubscribe(sub.filter(), sub.group(), sess)
		return packet.UnspecifiedError, nil, false
	}
	return packet.ReasonCode(qos), sub, existed
}

// handleUnsubscribe processes UNSUBSCRIBE [MQTT-3.10.4-1..6].
func (c *client) handleUnsubscribe(p *packet.Unsubscribe) error {
	sess := c.sess
	codes := make([]packet.ReasonCode, len(p.Filters))
	if !c.ackFits(&packet.Unsuback{PacketID: p.PacketID, ReasonCodes: codes}) {
		return c.ackTooLarge(packet.UNSUBACK, len(codes))
	}
	if c.version != packet.Version5 {
		// 3.1.1 and 3.1 have no UNSUBACK code to refuse a filter with: an
		// invalid one [MQTT-4.7.3-1] is a protocol violation, and the
		// connection is closed [MQTT-4.8.0-1], before anything is removed.
		for _, f := range p.Filters {
			if _, _, _, err := topic.ParseShared(f); err != nil {
				return c.protocolFailure(packet.Errorf(packet.ProtocolError, "UNSUBSCRIBE filter %q: %v", f, err))
			}
		}
	}
	for i, f := range p.Filters {
		group, filter, _, err := topic.ParseShared(f)
		if err != nil {
			codes[i] = packet.TopicFilterInvalid
			continue
		}
		sess.mu.Lock()
		ok := sess.subs.remove(f)
		sess.subCount.Store(int32(sess.subs.len()))
		sess.mu.Unlock()
		if !ok {
			codes[i] = packet.NoSubscriptionExisted
			continue
		}
		c.srv.subs.Unsubscribe(filter, group, sess)
	}
	ack := &packet.Unsuback{PacketID: p.PacketID}
	if c.version == packet.Version5 {
		ack.ReasonCodes = codes
	}
	if err := sess.persistState(); err != nil { // durable before UNSUBACK, as for SUBACK
		return c.storageFailure(err)
	}
	c.send(ack)
	return nil
}

// storageFailure ends the connection of a client whose SUBSCRIBE or
// UNSUBSCRIBE the store could not record, without the acknowledgement that
// would promise it, as the committer does for a PUBLISH.
func (c *client) storageFailure(err error) error {
	c.disconnect(packet.UnspecifiedError, "storage failure")
	return fmt.Errorf("%w: storage failure: %v", errClosed, err)
}

// ackFits reports whether ack, a SUBACK or UNSUBACK without properties,
// fits the client's Maximum Packet Size [MQTT-3.1.2-24]. Only a v5 client
// sets one, and only its acknowledgements carry a code per filter.
func (c *client) ackFits(ack packet.Packet) bool {
	return c.maxPacketOut == 0 || packet.Size(c.version, ack) <= int(c.maxPacketOut)
}

// ackTooLarge ends the connection of a client whose SUBSCRIBE or
// UNSUBSCRIBE has more filters than the acknowledgement it is owed, one
// reason code per filter [MQTT-3.8.4-6] [MQTT-3.11.3-1], can carry within
// its Maximum Packet Size [MQTT-3.1.2-24]. Discarding it as if sent is for
// Application Messages [MQTT-3.1.2-25]; a client left without its SUBACK
// would wait for it forever. Nothing of the request is done, and the
// DISCONNECT (3 bytes) says 0x95, packet too large for this client.
func (c *client) ackTooLarge(t packet.Type, filters int) error {
	return c.protocolFailure(packet.Errorf(packet.PacketTooLarge,
		"%v for %d filters exceeds the client's maximum packet size %d", t, filters, c.maxPacketOut))
}

// retainedFor returns the unexpired retained messages matching filter.
func (s *Server) retainedFor(filter string) []*Message {
	now := time.Now()
	var msgs []*Message
	s.retained.Match(filter, func(_ string, m *Message) bool {
		if !m.expired(now) {
			msgs = append(msgs, m)
		}
		return true
	})
	return msgs
}

// sendRetained delivers the retained messages matching a new subscription,
// with the retain flag set [MQTT-3.3.1-8].
func (s *Server) sendRetained(sess *session, sub *subscription, msgs []*Message) {
	now := time.Now()
	for _, m := range msgs {
		r := routePool.Get().(*route)
		r.srv, r.msg, r.now = s, m, now
		var ids []uint32
		if sub.id != 0 {
			ids = []uint32{sub.id}
		}
		sess.deliver(r, min(sub.qos, m.QoS), true, ids)
		pending := r.takeDurable()
		r.reset()
		routePool.Put(r)
		s.commitNow(pending, nil)
	}
}
