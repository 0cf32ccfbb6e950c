package broker

import (
	"slices"
	"sync"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// commitJob is the durable side of one inbound PUBLISH: the deliveries to
// persistent sessions, the retained update and the QoS 2 packet id that
// must reach the store before the publisher is acknowledged, and the
// acknowledgement itself.
//
// Jobs run on one committer goroutine so that a transport goroutine (an
// epoll loop serving thousands of connections) never waits for an fsync,
// and so that every job waiting at the same moment shares one group commit.
type commitJob struct {
	pending  []pendingStore
	retained *Message      // retained message to save, or to delete if its payload is empty
	incoming uint16        // inbound QoS 2 packet id to record, 0 if none
	released uint16        // inbound QoS 2 packet id to forget (PUBREL came), 0 if none
	update   *store.Update // outbound state change to record, nil if none
	c        *client       // publisher to acknowledge; nil for broker messages
	ack      packet.Ack
	sendAck  bool
	// releasing, of c's session, is an outbound QoS 2 delivery whose
	// released state update is in this job: PUBREL goes out once it is
	// durable.
	releasing *delivery
	// uncounted: this acknowledgement does not stand for an unanswered
	// inbound PUBLISH (see client.unacknowledgedIn): a PUBREC whose id is
	// in the session's incoming set, or an outbound PUBREL.
	uncounted bool
}

// pendingStore is a QoS 1/2 delivery to a persistent session. The delivery
// waits in the session's queue (not sent) until its record is durable, so
// the store never learns of a delivery after its acknowledgement.
type pendingStore struct {
	sess  *session
	d     *delivery
	entry store.Entry
}

// committer batches commit jobs from every connection.
type committer struct {
	srv  *Server
	mu   sync.Mutex
	jobs []commitJob
	wake chan struct{}
}

func newCommitter(s *Server) *committer {
	return &committer{srv: s, wake: make(chan struct{}, 1)}
}

// submit queues a job. Jobs of one client complete in submission order, so
// acknowledgements keep the order of the PUBLISH packets [MQTT-4.6.0-2].
func (cm *committer) submit(j commitJob) {
	if j.c != nil {
		j.c.pendingAcks.Add(1)
		if j.uncounted {
			j.c.ext().pendingUncounted.Add(1) // submit runs on j.c's read side
		}
	}
	cm.mu.Lock()
	cm.jobs = append(cm.jobs, j)
	cm.mu.Unlock()
	select {
	case cm.wake <- struct{}{}:
	default:
	}
}

// run commits queued jobs until the server stops, then drains what is left.
func (cm *committer) run() {
	defer cm.srv.wg.Done()
	var batch []commitJob
	for {
		select {
		case <-cm.wake:
		case <-cm.srv.ctx.Done():
			cm.mu.Lock()
			batch, cm.jobs = cm.jobs, batch[:0]
			cm.mu.Unlock()
			cm.commit(batch)
			return
		}
		cm.mu.Lock()
		batch, cm.jobs = cm.jobs, batch[:0]
		cm.mu.Unlock()
		cm.commit(batch)
		clear(batch)
	}
}

// commit makes a batch of jobs durable in one atomic store commit, then
// releases the deliveries and sends the acknowledgements.
func (cm *committer) commit(batch []commitJob) {
	if len(batch) == 0 {
		return
	}
	s := cm.srv
	s.recordsMu.Lock()
	var sb store.Batch
	var lastRetained map[string]*Message // later updates of a topic win
	for i := range batch {
		j := &batch[i]
		for _, p := range j.pending {
			if p.sess.keepsRecords() {
				sb.Messages = append(sb.Messages, p.entry)
			}
		}
		if j.update != nil && (j.c == nil || j.c.sess.keepsRecords()) {
			sb.Updates = append(sb.Updates, *j.update)
		}
		if j.incoming != 0 && j.c != nil && j.c.sess.keepsRecords() {
			sb.Incoming = append(sb.Incoming, store.Incoming{ClientID: j.c.sess.id, PacketID: j.incoming})
		}
		if j.released != 0 && j.c != nil && j.c.sess.keepsRecords() {
			sb.DeleteIncoming = append(sb.DeleteIncoming, store.Incoming{ClientID: j.c.sess.id, PacketID: j.released})
		}
		if m := j.retained; m != nil && s.newerRetained(m) {
			if lastRetained == nil {
				lastRetained = make(map[string]*Message)
			}
			if old := lastRetained[m.Topic]; old == nil || old.retainSeq < m.retainSeq {
				lastRetained[m.Topic] = m
			}
		}
	}
	for topic, m := range lastRetained {
		if len(m.Payload) == 0 {
			sb.DeleteRetained = append(sb.DeleteRetained, topic)
		} else {
			sb.Retained = append(sb.Retained, storeMessage(m, 0, nil))
		}
	}
	err := s.opts.Store.Commit(&sb)
	if err == nil {
		for _, m := range lastRetained {
			s.retainWritten[m.Topic] = m.retainSeq
		}
	}
	s.recordsMu.Unlock()
	if err != nil {
		s.log.Error("store: commit failed; closing its publishers", "publishes", len(batch), "err", err)
	}
	for i := range batch {
		j := &batch[i]
		if err == nil {
			release(j.pending)
		} else {
			// Taken out of the queues, which would wedge behind them: the
			// publisher, not acknowledged, resends, and a copy sent as well
			// would be delivered twice, at QoS 2 too [MQTT-4.3.3-10].
			withdraw(j.pending)
		}
		if j.releasing != nil {
			j.c.sess.releaseDurable(j.releasing, err == nil)
		}
		if j.c == nil {
			continue
		}
		if err != nil {
			// Not durable: do not acknowledge. Closing makes the client
			// resend the PUBLISH on its next connection, where its QoS 2 id
			// must not look known (a retransmission would get a PUBREC for
			// nothing stored).
			if j.incoming != 0 {
				j.c.sess.removeIncoming(j.incoming)
			}
			if j.released != 0 {
				// Its record is still stored: known again, so that the
				// PUBREL the client resends deletes it. Left behind, it
				// would be loaded after a restart and swallow the next
				// PUBLISH with that id as a retransmission.
				j.c.sess.addIncoming(j.released)
			}
			j.c.disconnect(packet.UnspecifiedError, "storage failure")
		} else if j.sendAck {
			j.c.send(&j.ack)
		}
		j.c.pendingAcks.Add(-1)
		if j.uncounted {
			j.c.extra.pendingUncounted.Add(-1)
		}
	}
}

// commitNow is the synchronous commit used for broker-originated messages
// (wills, $SYS, bridges) and retained deliveries on subscribe.
func (s *Server) commitNow(pending []pendingStore, retained *Message) {
	if len(pending) > 0 {
		entries := make([]store.Entry, 0, len(pending))
		s.recordsMu.Lock()
		for _, p := range pending {
			if p.sess.keepsRecords() {
				entries = append(entries, p.entry)
			}
		}
		if len(entries) > 0 {
			if err := s.opts.Store.AppendMessages(entries); err != nil {
				s.log.Error("store: append messages", "err", err)
			}
		}
		s.recordsMu.Unlock()
	}
	if err := s.storeRetained(retained); err != nil {
		s.log.Error("store: retained", "err", err)
	}
	release(pending)
}

// releaseDurable ends the wait of a delivery in stateReleasing: once its
// released state is durable, PUBREL goes to the session's connection of
// now (which may be a newer one than the PUBREC came on); if the commit
// failed it is back to stateSent, so that the PUBLISH is resent with DUP
// on the next connection and the flow starts over.
func (sess *session) releaseDurable(d *delivery, durable bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if d.state != stateReleasing {
		return
	}
	if !durable {
		d.state = stateSent
		return
	}
	d.state = stateReleased
	if i := sess.out.findInflight(d.pid); i >= 0 && sess.out.inflight[i] == d && sess.out.live() != nil {
		c := sess.out.live()
		c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: d.pid})
	}
}

// keepsRecords reports whether the session still keeps records in the
// store: not once it has ended or stopped being persistent (its records
// deleted). A delivery record written for it then would outlive it, and be
// loaded for the next session of the same client id after a restart.
func (sess *session) keepsRecords() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.persist && !sess.ended
}

// release marks stored deliveries ready and lets their sessions send them.
func release(pending []pendingStore) {
	for _, p := range pending {
		p.sess.mu.Lock()
		p.d.ready = true
		p.sess.fill()
		p.sess.mu.Unlock()
	}
}

// withdraw takes stored deliveries whose records failed to commit out of
// their sessions' queues, and lets the sessions send what follows.
func withdraw(pending []pendingStore) {
	for _, p := range pending {
		p.sess.mu.Lock()
		o := &p.sess.out
		if i := slices.Index(o.queue, p.d); i >= 0 {
			o.queue = slices.Delete(o.queue, i, i+1)
			p.sess.queueBytes(-p.d.msg.weight())
		}
		p.sess.fill()
		p.sess.mu.Unlock()
	}
}

// storeRetained writes a retained update to the store (nil: nothing to do).
func (s *Server) storeRetained(m *Message) error {
	if m == nil || s.opts.Store == nil {
		return nil
	}
	s.recordsMu.Lock()
	defer s.recordsMu.Unlock()
	if !s.newerRetained(m) {
		return nil // a newer update of the topic is in the store already
	}
	var err error
	if len(m.Payload) == 0 {
		err = s.opts.Store.DeleteRetained(m.Topic)
	} else {
		err = s.opts.Store.SaveRetained(storeMessage(m, 0, nil))
	}
	if err == nil {
		s.retainWritten[m.Topic] = m.retainSeq
	}
	return err
}

// newerRetained reports whether m is newer than the last retained update of
// its topic written to the store. Caller holds recordsMu.
func (s *Server) newerRetained(m *Message) bool {
	if s.retainWritten == nil {
		s.retainWritten = make(map[string]uint64)
	}
	return m.retainSeq > s.retainWritten[m.Topic]
}
