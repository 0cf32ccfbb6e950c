package broker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// Limits are the overload protections. Zero values disable each one.
type Limits struct {
	MaxConnections   int           // clients connected, or past CONNECT and authenticating, across all listeners
	ConnectRate      float64       // CONNECTs accepted per second (token bucket)
	ConnectBurst     int           // bucket size for ConnectRate
	PublishRate      float64       // PUBLISH packets per second per client
	PublishBandwidth int64         // PUBLISH bytes per second per client
	FlapMaxConnects  int           // connects of one client id within FlapWindow before a ban
	FlapWindow       time.Duration //
	FlapBan          time.Duration // how long a flapping client id is refused
	MemoryBudget     int64         // queued payload bytes node-wide before publishers are paused
}

// LimitStats count how often each limit refused something.
type LimitStats struct {
	MaxConnections   atomicCounter
	ConnectRate      atomicCounter
	PublishRate      atomicCounter
	Flapping         atomicCounter
	MaxSubscriptions atomicCounter // SUBSCRIBE filters refused by MaxSubsPerClient
}

type atomicCounter = atomic.Int64

// LimitStats returns how often each overload limit refused something.
func (s *Server) LimitStats() *LimitStats { return &s.limitStats }

// bucket is a token bucket. The zero value with rate 0 allows everything.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64, burst int) bucket {
	if burst < 1 {
		burst = max(1, int(rate))
	}
	return bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take removes n tokens if available.
func (b *bucket) take(now time.Time, n float64) bool {
	if b.rate <= 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// admission applies the node-wide CONNECT limits.
type admission struct {
	// open counts the connections admitted under MaxConnections whose
	// Closed has not run: taken at admit, not at CONNACK, so that the
	// CONNECTs waiting for a slow Authenticator count too.
	open     atomic.Int64
	mu       sync.Mutex
	connect  bucket
	flaps    map[string]*flapRecord
	lastScan time.Time
}

type flapRecord struct {
	times       []time.Time
	bannedUntil time.Time
}

// admit decides whether c's CONNECT may proceed before authentication. It
// returns Success or the v5 reason code to refuse with.
func (s *Server) admit(c *client, now time.Time) packet.ReasonCode {
	l := &s.opts.Limits
	a := &s.admission
	if l.MaxConnections > 0 {
		if a.open.Add(1) > int64(l.MaxConnections) {
			a.open.Add(-1)
			s.limitStats.MaxConnections.Add(1)
			s.logLimit("max connections reached", c.info.ClientID)
			return packet.QuotaExceeded
		}
		c.set(fAdmitted) // given back by Closed
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.ConnectRate > 0 && !a.connect.take(now, 1) {
		s.limitStats.ConnectRate.Add(1)
		s.logLimit("connect rate exceeded", c.info.ClientID)
		return packet.ConnectionRateExceeded
	}
	return packet.Success
}

// flapping bans a client id that connects too often. It runs after
// authentication, so that only the owner of a client id can get it banned.
func (s *Server) flapping(clientID string, now time.Time) packet.ReasonCode {
	l := &s.opts.Limits
	if l.FlapMaxConnects <= 0 || clientID == "" {
		return packet.Success
	}
	a := &s.admission
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flaps == nil {
		a.flaps = make(map[string]*flapRecord)
	}
	if now.Sub(a.lastScan) > l.FlapWindow+l.FlapBan {
		a.forgetOld(now, l)
	}
	r := a.flaps[clientID]
	if r == nil {
		r = &flapRecord{}
		a.flaps[clientID] = r
	}
	if now.Before(r.bannedUntil) {
		s.limitStats.Flapping.Add(1)
		s.logLimit("flapping client banned", clientID)
		return packet.Banned
	}
	keep := r.times[:0]
	for _, t := range r.times {
		if now.Sub(t) < l.FlapWindow {
			keep = append(keep, t)
		}
	}
	r.times = append(keep, now)
	if len(r.times) > l.FlapMaxConnects {
		r.bannedUntil = now.Add(l.FlapBan)
		r.times = nil
		s.limitStats.Flapping.Add(1)
		s.log.Warn("client banned for flapping", "client", clientID, "connects", l.FlapMaxConnects+1, "window", l.FlapWindow, "ban", l.FlapBan)
		return packet.Banned
	}
	return packet.Success
}

// forgetOld drops flap records that can no longer matter. Caller holds a.mu.
func (a *admission) forgetOld(now time.Time, l *Limits) {
	a.lastScan = now
	for id, r := range a.flaps {
		if now.After(r.bannedUntil) && (len(r.times) == 0 || now.Sub(r.times[len(r.times)-1]) > l.FlapWindow) {
			delete(a.flaps, id)
		}
	}
}

// publishAllowed applies the per-client publish rate and bandwidth. Called
// from the client's read side only.
func (c *client) publishAllowed(size int, now time.Time) bool {
	l := &c.srv.opts.Limits
	if l.PublishRate <= 0 && l.PublishBandwidth <= 0 {
		return true
	}
	x := c.ext()
	if x.pubRate == nil {
		x.pubRate = &publishBuckets{
			msgs: newBucket(l.PublishRate, int(l.PublishRate)),
			// One packet as large as allowed must fit in the bucket.
			bytes: newBucket(float64(l.PublishBandwidth), max(int(l.PublishBandwidth), int(c.maxPacketIn))),
		}
	}
	if !x.pubRate.msgs.take(now, 1) || !x.pubRate.bytes.take(now, float64(size)) {
		c.srv.limitStats.PublishRate.Add(1)
		c.srv.logLimit("publish rate exceeded", c.info.ClientID)
		return false
	}
	return true
}

type publishBuckets struct{ msgs, bytes bucket }

// lastLimitLog holds, per limit, when it was last logged.
var lastLimitLog sync.Map // string -> *atomicCounter

// logLimit logs a limit hit at most once per dropLogEvery for each limit;
// the counters keep the exact numbers.
func (s *Server) logLimit(what, clientID string) {
	now := time.Now().UnixNano()
	v, ok := lastLimitLog.Load(what)
	if !ok {
		v, _ = lastLimitLog.LoadOrStore(what, new(atomicCounter))
	}
	lastAt := v.(*atomicCounter)
	last := lastAt.Load()
	if now-last < int64(dropLogEvery) || !lastAt.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("limit hit", "limit", what, "client", clientID)
}
