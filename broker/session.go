package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// neverExpire is the v5 session expiry interval meaning "never".
const neverExpire = 0xFFFFFFFF

// session is the state of one client id that outlives its connections:
// subscriptions, queued and inflight messages, QoS 2 ids awaiting PUBREL.
// Lock order: Server.mu, then the trie, then session.mu.
//
// Fields are ordered to pack: this struct exists once per client id.
type session struct {
	srv *Server
	id  string
	mu  sync.Mutex

	subs subSet // by full filter, including "$share/g/"
	out  outbound

	// Inbound QoS 2 packet ids received but not yet released [MQTT-4.3.3-3].
	incoming map[uint16]struct{}

	offline *offlineState // timers and delayed will of an offline session; nil while online

	expiry   uint32       // seconds after disconnect; neverExpire = never
	subCount atomic.Int32 // len(subs), read by the router without the lock
	online   atomic.Bool  // a client is attached; read without the lock by shared-group selection
	ended    bool
	persist  bool // stored in the Store (expiry > 0)
}

// offlineState is what only an offline session needs, kept apart so that
// an online session does not carry it.
type offlineState struct {
	expiryTimer      *time.Timer
	willTimer        *time.Timer
	pendingWill      *Message // will waiting for its delay
	pendingWillDelay uint32
	owner            string    // username of the client whose session it is (see attach)
	since            time.Time // when it went offline (expiry and will delay run from it)
}

// errSessionOwned refuses a CONNECT that names another user's session.
var errSessionOwned = errors.New("client id in use by another user's session")

// owner is the username of the client the session belongs to: its
// connection's while attached, else the one it went offline with. Caller
// holds sess.mu.
func (sess *session) owner() string {
	if c := sess.out.c; c != nil {
		return c.info.Username
	}
	if sess.offline != nil {
		return sess.offline.owner
	}
	return ""
}

// off returns the session's offline state, creating it. Caller holds sess.mu.
func (sess *session) off() *offlineState {
	if sess.offline == nil {
		sess.offline = &offlineState{}
	}
	return sess.offline
}

// pendingWill is the will waiting for its delay, if any. Caller holds sess.mu.
func (sess *session) pendingWill() *Message {
	if sess.offline == nil {
		return nil
	}
	return sess.offline.pendingWill
}

// subscription is one filter of a session with its options. It is
// immutable once installed: a change installs a new one, so the router may
// read it without the session lock.
//
// It exists once per subscription, so it is kept to 32 bytes: the filter
// and the share group are slices of full, not fields of their own.
type subscription struct {
	full              string // as subscribed, including any "$share/{group}/"
	id                uint32 // subscription identifier, 0 = none
	groupLen          uint16 // length of the share group name; 0 if not shared
	qos               byte
	noLocal           bool
	retainAsPublished bool
	retainHandling    byte
}

// sharePrefix starts a shared subscription's filter [MQTT-4.8.2].
const sharePrefix = "$share/"

// newSubscription makes a subscription of full, whose share group is group
// ("" if not shared), with its options.
func newSubscription(full, group string, qos byte, noLocal, retainAsPublished bool, retainHandling byte, id uint32) *subscription {
	return &subscription{full: full, groupLen: uint16(len(group)), qos: qos, noLocal: noLocal,
		retainAsPublished: retainAsPublished, retainHandling: retainHandling, id: id}
}

// group is the share group name, "" for an ordinary subscription.
func (s *subscription) group() string {
	if s.groupLen == 0 {
		return ""
	}
	return s.full[len(sharePrefix) : len(sharePrefix)+int(s.groupLen)]
}

// filter is the topic filter without any $share prefix.
func (s *subscription) filter() string {
	if s.groupLen == 0 {
		return s.full
	}
	return s.full[len(sharePrefix)+int(s.groupLen)+1:]
}

// attach binds c to the session for its client id, creating, resuming or
// taking it over. It reports whether an existing session was resumed.
func (s *Server) attach(c *client, cleanStart bool, expiry uint32) (*session, bool, error) {
	s.mu.Lock()
	id := c.info.ClientID
	old := s.sessions.get(id)
	var oldClient *client
	ending := cleanStart
	if old != nil {
		old.mu.Lock()
		if old.owner() != c.info.Username {
			// Another user's session: resuming it would hand over its
			// subscriptions (granted under that user's ACL) and queued
			// messages, and taking it over would disconnect its owner.
			old.mu.Unlock()
			s.mu.Unlock()
			return nil, false, errSessionOwned
		}
		// A session with Session Expiry 0 (3.1.1: Clean Session) lasts as
		// long as its connection (v5 §3.1.2.11.2, [MQTT-3.1.2-6] in 3.1.1):
		// this takeover ends it, as Clean Start would, and the old
		// connection's will goes out per [MQTT-3.1.3-9]. (Only its
		// connection keeps such a session; this one may also be between
		// the close of that connection and detach ending it.)
		ending = ending || old.expiry == 0
		oldClient = old.out.c
		old.out.c = nil
		old.stopTimers()
		old.mu.Unlock()
	}
	present := old != nil && !ending
	if old != nil && ending {
		// [MQTT-3.1.2-4] Clean Start discards the existing session.
		s.endSessionLocked(old)
		old = nil
	}
	sess := old
	if sess == nil {
		sess = &session{srv: s, id: id}
		s.sessions.put(sess)
	}
	delete(s.unattached, c) // reachable through sess.out.c from now on
	sess.mu.Lock()
	sess.expiry = expiry
	sess.offline = nil // [MQTT-3.1.3-9] a reconnect before the will delay cancels it (timers stopped above)
	sess.out.resetConnection(c)
	sess.online.Store(true)
	sess.mu.Unlock()
	s.mu.Unlock()
	if oldClient != nil {
		// [MQTT-3.1.4-3] the existing connection is closed; v5 is told 0x8E.
		// Outside the locks: closing runs the old connection's Closed.
		oldClient.takenOver()
	}
	sess.persistState()
	return sess, present, nil
}

// takenOver closes a connection whose client id was reused elsewhere.
func (c *client) takenOver() {
	c.srv.log.Debug("session taken over", "client", c.info.ClientID)
	c.disconnect(packet.SessionTakenOver, "session taken over")
}

// detach runs when c's connection is gone: it publishes or schedules the
// will and ends or parks the session.
func (sess *session) detach(c *client) {
	sess.mu.Lock()
	if sess.out.c != c {
		// Taken over: the new connection owns the session now. The will of
		// the old connection is sent only if it had no delay, or if the
		// takeover (Clean Start) ended its session [MQTT-3.1.3-9].
		ended := sess.ended
		sess.mu.Unlock()
		if w := c.will(); w != nil && !c.is(fCleanExit) && (c.extra.willDelay == 0 || ended) {
			c.publishWill()
		}
		return
	}
	sess.online.Store(false)
	sess.out.resetConnection(nil)
	expiry := sess.expiry
	will := c.will()
	willDue := will != nil && !c.is(fCleanExit)
	now := time.Now()
	if willDue && c.extra.willDelay > 0 && expiry > 0 {
		// [MQTT-3.1.3-9] delayed until the will delay or the session ends.
		// Its Message Expiry is counted from the end of the delay here,
		// and moved to its actual publication by startWillExpiry.
		delay := min(c.extra.willDelay, expiry)
		c.setWillExpiry(now.Add(time.Duration(delay) * time.Second))
		off := sess.off()
		off.pendingWill = will
		off.pendingWillDelay = delay
		off.willTimer = time.AfterFunc(time.Duration(delay)*time.Second, func() { sess.fireWill(will) })
		willDue = false
	}
	if expiry > 0 && expiry != neverExpire {
		off := sess.off()
		off.expiryTimer = time.AfterFunc(time.Duration(expiry)*time.Second, func() { sess.expire(off) })
	}
	if expiry > 0 {
		sess.off().owner = c.info.Username
		sess.offline.since = now
	}
	sess.mu.Unlock()

	if willDue {
		c.publishWill()
	}
	if expiry == 0 {
		sess.srv.endSession(sess)
	} else {
		sess.persistState()
	}
}

// publishWill routes the connection's will message once.
func (c *client) publishWill() {
	w := c.will()
	if w == nil || !c.setOnce(fWillSent) {
		return
	}
	if c.srv.opts.ACL != nil && !c.srv.opts.ACL.CanPublish(&c.info, w.Topic) {
		return
	}
	c.setWillExpiry(time.Now())
	c.srv.route(w, &c.info)
}

// setWillExpiry starts the will's Message Expiry Interval at its
// publication time (v5 §3.1.3.2.4); it runs before the will is routed.
func (c *client) setWillExpiry(published time.Time) {
	if c.is(fWillExpires) {
		c.extra.will.ExpiresAt = published.Add(time.Duration(c.extra.willExpiry) * time.Second)
	}
}

// startWillExpiry moves a delayed will's Message Expiry to start at now,
// when it is published, from due, the end of its will delay that detach
// counted it from (v5 §3.1.3.2.4: the interval runs from publication).
// The session may end before due (a Clean Start takeover) and the broker
// may have been down past it. Caller owns w: it is no longer pending.
func startWillExpiry(w *Message, due, now time.Time) {
	if !w.ExpiresAt.IsZero() {
		w.ExpiresAt = w.ExpiresAt.Add(now.Sub(due))
	}
}

// willDue is when the session's pending will was due to be published.
// Caller holds sess.mu and has checked that a will is pending.
func (sess *session) willDue() time.Time {
	off := sess.offline
	return off.since.Add(time.Duration(off.pendingWillDelay) * time.Second)
}

// fireWill publishes a delayed will if the session is still offline.
func (sess *session) fireWill(w *Message) {
	s := sess.srv
	s.mu.Lock()
	started := s.startTask()
	s.mu.Unlock()
	if !started {
		// Shutdown saves the session with its will still pending: it is
		// published at the next start (recoverSession).
		return
	}
	defer s.tasks.Done()
	sess.mu.Lock()
	due := sess.pendingWill() == w && sess.out.c == nil
	if due {
		startWillExpiry(w, sess.willDue(), time.Now())
		sess.offline.pendingWill = nil
	}
	sess.mu.Unlock()
	if due {
		// The session record loses the will before it is published: after
		// a crash in between it is lost rather than published twice.
		sess.persistState()
		sess.srv.route(w, nil)
	}
}

// expire ends an offline session whose expiry interval, counted from the
// start of the offline period off, has passed. A timer that fired while a
// reconnect stopped it finds another period (or none) and does nothing:
// it would otherwise end the next offline period early.
func (sess *session) expire(off *offlineState) {
	s := sess.srv
	s.mu.Lock() // attach holds it too: the period cannot change below
	defer s.mu.Unlock()
	if s.tasksStopped {
		// Shutdown saves the session instead, and could not wait for its
		// will: it expires, will published, at the next start.
		return
	}
	sess.mu.Lock()
	current := sess.offline == off
	sess.mu.Unlock()
	if current {
		s.endSessionLocked(sess) // only if still offline and not ended
	}
}

// stopTimers cancels the expiry and will timers. Caller holds sess.mu.
func (sess *session) stopTimers() {
	off := sess.offline
	if off == nil {
		return
	}
	if off.expiryTimer != nil {
		off.expiryTimer.Stop()
		off.expiryTimer = nil
	}
	if off.willTimer != nil {
		off.willTimer.Stop()
		off.willTimer = nil
	}
}

// endSession removes a session: its subscriptions, queue and stored state.
// A will still waiting for its delay is published now [MQTT-3.1.3-9].
func (s *Server) endSession(sess *session) {
	s.mu.Lock()
	s.endSessionLocked(sess)
	s.mu.Unlock()
}

func (s *Server) endSessionLocked(sess *session) {
	sess.mu.Lock()
	if sess.ended || sess.out.c != nil {
		sess.mu.Unlock()
		return
	}
	sess.ended = true
	sess.stopTimers()
	will := sess.pendingWill()
	if will != nil {
		startWillExpiry(will, sess.willDue(), time.Now())
	}
	sess.offline = nil
	subs := sess.subs.all()
	sess.subs = subSet{}
	dropped := sess.out.queuedBytes
	orphans := sess.out.drainShared()
	sess.out.queue, sess.out.queuedBytes = nil, 0
	sess.mu.Unlock()
	s.queued(-dropped)

	s.sessions.remove(sess)
	for _, sub := range subs {
		s.subs.Unsubscribe(sub.filter(), sub.group(), sess)
	}
	if sess.persist && s.opts.Store != nil {
		s.recordsMu.Lock()
		err := s.opts.Store.DeleteSession(sess.id)
		s.recordsMu.Unlock()
		if err != nil {
			s.log.Error("store: delete session", "client", sess.id, "err", err)
		}
	}
	// Only a client whose Closed Shutdown gave up waiting for can end a
	// session once no task may start; then nothing of it is carried on.
	if will != nil && !s.goTask(func() { s.route(will, nil) }) {
		s.log.Warn("shutting down: will not published", "client", sess.id)
	}
	// Messages queued for a shared subscription go back to the group
	// rather than leaving with the member.
	for _, d := range orphans {
		if !s.goTask(func() { s.redeliverShared(d) }) {
			s.log.Warn("shutting down: shared message not redelivered", "client", sess.id, "topic", d.msg.Topic)
		}
	}
}

func (sess *session) expiryInterval() uint32 {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.expiry
}

// disconnectExpiry applies the Session Expiry Interval e of a DISCONNECT
// read on c's connection, capped as at CONNECT. It reports false, changing
// nothing, if the session's expiry is 0 and e is not (v5 §3.14.2.2.2: a
// Protocol Error). A connection already taken over no longer owns the
// session: its DISCONNECT changes nothing, nor is it checked against the
// expiry the new connection's CONNECT set.
func (sess *session) disconnectExpiry(c *client, e uint32) bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.out.c != c {
		return true
	}
	if sess.expiry == 0 && e != 0 {
		return false
	}
	if max := sess.srv.opts.MaxSessionExpiry; max > 0 && e > max {
		e = max
	}
	sess.expiry = e
	return true
}

// client is the connection attached to the session, nil while offline.
func (sess *session) client() *client {
	if !sess.online.Load() {
		return nil
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.out.c
}
