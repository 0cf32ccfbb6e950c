package broker

import (
	"fmt"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/topic"
)

const (
	stateSentStore = store.AwaitingAck
)

// storeMessage converts a message (and its delivery, if any) to a record.
func storeMessage(m *Message, seq uint64, d *delivery) *store.Message {
	sm := &store.Message{
		Seq:             seq,
		Topic:           m.Topic,
		Payload:         m.Payload,
		QoS:             m.QoS,
		Retain:          m.Retain,
		ExpiresAt:       m.ExpiresAt,
		Created:         m.Created,
		PayloadFormat:   m.PayloadFormat,
		ContentType:     m.ContentType,
		ResponseTopic:   m.ResponseTopic,
		CorrelationData: m.CorrelationData,
	}
	for _, u := range m.UserProps {
		sm.UserProps = append(sm.UserProps, store.UserProperty{Key: u.Key, Value: u.Value})
	}
	if d != nil {
		sm.QoS = d.qos
		sm.Retain = d.retain
		sm.SubscriptionIDs = d.subIDs
		sm.PacketID = d.pid
		switch d.state {
		case stateSent, stateReleasing:
			sm.State = store.AwaitingAck
		case stateReleased:
			sm.State = store.AwaitingComp
		}
	}
	return sm
}

// messageFromStore is the inverse of storeMessage.
func messageFromStore(sm *store.Message) *Message {
	m := &Message{
		Topic:           sm.Topic,
		Payload:         sm.Payload,
		QoS:             sm.QoS,
		Retain:          sm.Retain,
		PayloadFormat:   sm.PayloadFormat,
		ContentType:     sm.ContentType,
		ResponseTopic:   sm.ResponseTopic,
		CorrelationData: sm.CorrelationData,
		Created:         sm.Created,
		ExpiresAt:       sm.ExpiresAt,
	}
	for _, u := range sm.UserProps {
		m.UserProps = append(m.UserProps, packet.UserProperty{Key: u.Key, Value: u.Value})
	}
	return m
}

// persistState saves or deletes the session record after a change of
// expiry, subscriptions or connection state. The error, logged here too,
// is for callers whose acknowledgement promises the change (SUBACK).
func (sess *session) persistState() error {
	st := sess.srv.opts.Store
	if st == nil {
		return nil
	}
	sess.mu.Lock()
	if sess.ended {
		sess.mu.Unlock()
		return nil
	}
	if sess.expiry == 0 {
		was := sess.persist
		sess.persist = false
		sess.mu.Unlock()
		if was {
			sess.srv.recordsMu.Lock()
			err := st.DeleteSession(sess.id)
			sess.srv.recordsMu.Unlock()
			if err != nil {
				sess.srv.log.Error("store: delete session", "client", sess.id, "err", err)
			}
			return err
		}
		return nil
	}
	sess.persist = true
	rec := &store.Session{ClientID: sess.id, ExpiryInterval: sess.expiry}
	if c := sess.out.c; c != nil {
		rec.ProtocolVersion = c.version
		rec.Username = c.info.Username
	} else {
		rec.DisconnectedAt = time.Now()
		if sess.offline != nil {
			rec.Username = sess.offline.owner
			if !sess.offline.since.IsZero() {
				// Saved again (a graceful stop saves every session): the
				// expiry and will delay still run from the disconnect.
				rec.DisconnectedAt = sess.offline.since
			}
		}
	}
	if w := sess.pendingWill(); w != nil {
		rec.Will = storeMessage(w, 0, nil)
		rec.WillDelay = sess.offline.pendingWillDelay
	}
	for _, sub := range sess.subs.all() {
		rec.Subscriptions = append(rec.Subscriptions, store.Subscription{
			Filter: sub.full, QoS: sub.qos, NoLocal: sub.noLocal,
			RetainAsPublished: sub.retainAsPublished, RetainHandling: sub.retainHandling, ID: sub.id,
		})
	}
	sess.mu.Unlock()
	err := st.SaveSession(rec)
	if err != nil {
		sess.srv.log.Error("store: save session", "client", sess.id, "err", err)
	}
	// The session may have ended (expiry timer, Clean Start takeover) or
	// stopped being persistent while the record was written, its records
	// deleted just before this write: delete again rather than leave a
	// session in the store that no longer exists.
	sess.mu.Lock()
	gone := sess.ended || !sess.persist
	sess.mu.Unlock()
	if gone {
		sess.srv.recordsMu.Lock()
		st.DeleteSession(sess.id)
		sess.srv.recordsMu.Unlock()
	}
	return err
}

// flushSessions records the disconnect time of every persistent session at
// shutdown so expiry continues from there after a restart.
func (s *Server) flushSessions() {
	s.mu.Lock()
	all := make([]*session, 0, s.sessions.len())
	for sess := range s.sessions.all() {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		sess.persistState()
	}
}

// Recover loads retained messages and persistent sessions from the store:
// subscriptions are reinstalled, queued and inflight messages wait for the
// client, and inbound QoS 2 ids keep exactly-once across the restart. Call
// it once, before accepting connections. $SYS values are not recovered
// (they live in memory only), so the $SYS publisher New started keeps its
// values; Recover must not start another.
func (s *Server) Recover() error {
	st := s.opts.Store
	if st == nil {
		return nil
	}
	now := time.Now()
	retained, err := st.LoadRetained()
	if err != nil {
		return fmt.Errorf("load retained: %w", err)
	}
	for _, sm := range retained {
		if sysTopic(sm.Topic) {
			// Stored by older versions; stale, and $SYS is in memory only.
			if err := st.DeleteRetained(sm.Topic); err != nil {
				return fmt.Errorf("delete retained %q: %w", sm.Topic, err)
			}
			continue
		}
		m := messageFromStore(sm)
		if m.expired(now) {
			// Expired while stored: no subscriber may get it again
			// [MQTT-3.3.2-5], so its record goes too, instead of being
			// loaded and skipped at every start.
			if err := st.DeleteRetained(sm.Topic); err != nil {
				return fmt.Errorf("delete retained %q: %w", sm.Topic, err)
			}
			continue
		}
		s.retained.Set(m.Topic, m)
	}
	sessions, err := st.LoadSessions()
	if err != nil {
		return fmt.Errorf("load sessions: %w", err)
	}
	var wills []*Message
	var timers []func() // started once every session is back, see recoverSession
	for _, rec := range sessions {
		will, err := s.recoverSession(rec, now, &timers)
		if err != nil {
			return fmt.Errorf("recover session %q: %w", rec.ClientID, err)
		}
		if will != nil {
			wills = append(wills, will)
		}
	}
	// The wills of sessions that expired while the broker was down are
	// due [MQTT-3.1.3-9]; published once every subscriber is back.
	for _, w := range wills {
		s.route(w, nil)
	}
	for _, start := range timers {
		start()
	}
	s.log.Info("recovered state", "sessions", len(sessions), "retained", s.retained.Len())
	return nil
}

// recoverSession restores one stored session, or deletes it if it expired
// while the broker was down, returning its will if that is now due. Its
// will and expiry timers are added to timers, for the caller to start once
// every session is recovered: one that fires at once (its delay ended
// while the broker was down) must not route the will before a subscriber
// is loaded, nor into one whose stored messages are still loading, which
// would then hold it twice.
func (s *Server) recoverSession(rec *store.Session, now time.Time, timers *[]func()) (*Message, error) {
	st := s.opts.Store
	gone := rec.DisconnectedAt
	if gone.IsZero() {
		gone = now // it was connected when the broker stopped
	}
	if rec.ExpiryInterval != neverExpire && now.Sub(gone) >= time.Duration(rec.ExpiryInterval)*time.Second {
		var will *Message
		if rec.Will != nil {
			will = messageFromStore(rec.Will)
			startWillExpiry(will, gone.Add(time.Duration(rec.WillDelay)*time.Second), now)
		}
		return will, st.DeleteSession(rec.ClientID)
	}
	sess := &session{srv: s, id: rec.ClientID, expiry: rec.ExpiryInterval, persist: true}
	sess.off().owner = rec.Username
	sess.offline.since = gone
	for _, sr := range rec.Subscriptions {
		group, _, _, err := topic.ParseShared(sr.Filter)
		if err != nil {
			return nil, fmt.Errorf("subscription %q: %w", sr.Filter, err)
		}
		sub := newSubscription(sr.Filter, group, sr.QoS, sr.NoLocal, sr.RetainAsPublished, sr.RetainHandling, sr.ID)
		sess.subs.put(sub)
		s.subs.Subscribe(sub.filter(), sub.group(), sess, sub) // the store's decoder copies each string
	}
	sess.subCount.Store(int32(sess.subs.len()))
	msgs, err := st.LoadMessages(rec.ClientID)
	if err != nil {
		return nil, err
	}
	for _, sm := range msgs {
		m := messageFromStore(sm)
		d := &delivery{msg: m, qos: sm.QoS, retain: sm.Retain, subIDs: sm.SubscriptionIDs, pid: sm.PacketID, seq: sm.Seq, ready: true}
		sess.out.seq = max(sess.out.seq, sm.Seq)
		switch sm.State {
		case store.AwaitingAck:
			d.state = stateSent
			sess.out.inflight = append(sess.out.inflight, d)
		case store.AwaitingComp:
			d.state = stateReleased
			sess.out.inflight = append(sess.out.inflight, d)
		default:
			if m.expired(now) {
				sess.dropExpired(d) // expired while the broker was down
				continue
			}
			// It may have been sent before the crash with the id derived
			// from its sequence number: resend it so, with DUP.
			d.pid, d.resend = pidForSeq(sm.Seq), true
			sess.out.queue = append(sess.out.queue, d)
			sess.queueBytes(m.weight())
		}
	}
	ids, err := st.LoadIncoming(rec.ClientID)
	if err != nil {
		return nil, err
	}
	for _, pid := range ids {
		if sess.incoming == nil {
			sess.incoming = make(map[uint16]struct{})
		}
		sess.incoming[pid] = struct{}{}
	}
	if rec.Will != nil {
		w := messageFromStore(rec.Will)
		w.from = sess // for No Local [MQTT-3.8.3-3]
		sess.off().pendingWill = w
		sess.off().pendingWillDelay = rec.WillDelay
		delay := time.Duration(rec.WillDelay)*time.Second - now.Sub(gone)
		*timers = append(*timers, func() {
			sess.mu.Lock()
			if sess.offline != nil {
				sess.offline.willTimer = time.AfterFunc(max(delay, 0), func() { sess.fireWill(w) })
			}
			sess.mu.Unlock()
		})
	}
	if rec.ExpiryInterval != neverExpire {
		left := time.Duration(rec.ExpiryInterval)*time.Second - now.Sub(gone)
		*timers = append(*timers, func() {
			sess.mu.Lock()
			if off := sess.offline; off != nil {
				off.expiryTimer = time.AfterFunc(max(left, 0), func() { sess.expire(off) })
			}
			sess.mu.Unlock()
		})
	}
	s.mu.Lock()
	s.sessions.put(sess)
	s.mu.Unlock()
	return nil, nil
}
