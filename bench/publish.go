package bench

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/herald-mqtt/herald/bench/client"
)

// phaseLength is how long the publish (or hold) phase lasts: Duration, or
// when only Count is given the time Count messages take at Rate.
func phaseLength(o Options) time.Duration {
	if o.Duration > 0 {
		return o.Duration
	}
	return time.Duration(float64(o.Count) / o.Rate * float64(time.Second))
}

// run is the publish phase: every publisher of this shard publishes at
// Rate until Count or Duration, churners cycle, idle clients hold. It
// returns when the phase is over for this shard.
func (l *load) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(l.stopCtx, cancel)
	defer stop()
	begin := time.Now()
	var wg sync.WaitGroup
	publishers := 0
	for _, m := range l.members {
		if m.pub != nil {
			// Publishers that never connected hold too: their messages
			// still count as scheduled.
			publishers++
			wg.Add(1)
			go func() { defer wg.Done(); m.publish(ctx, begin) }()
		}
	}
	if l.plan.s.Name == Churn {
		wg.Add(1)
		go func() { defer wg.Done(); l.churn(ctx, begin.Add(phaseLength(l.o))) }()
	}
	if publishers == 0 && l.plan.s.Name != Churn {
		// conn, or a shard without publishers: hold for the phase.
		sleepUntil(ctx, begin.Add(phaseLength(l.o)))
	}
	wg.Wait()
}

// Publishers write what falls due within batchAhead in one write (at most
// maxBatch messages): at thousands of messages per second per publisher,
// one system call and one timer wake-up per message made the bench, not
// the broker, the limit. Below 1000 messages per second per publisher
// every message is still a write of its own.
const (
	batchAhead = time.Millisecond
	maxBatch   = 64
)

// Once the publish phase is over, a publisher still sends what fell due
// before its end only if it was on schedule near the end: it waited for
// a message due in the phase's last lateGrace (or last interval, if
// longer). It is then late only because a timer fired late on a busy
// machine, not because the broker held it back. One held back stops at
// the end, or lateGrace after it when it is waiting for room in its
// inflight window then, and what it did not send shows as Published
// short of Scheduled.
const lateGrace = 100 * time.Millisecond

// publish sends this member's messages at Rate: message i is due at
// first + i x interval, publishers staggered over one interval so that a
// thousand of them do not fire together. The time in the payload, which
// delivery latency is measured from, is when the message was due, not
// when it was written: a publisher held back by a full inflight window or
// by TCP back-pressure sends late, and measuring from the late write
// would hide that wait (coordinated omission). A message written early,
// batched up to batchAhead before it is due, is measured from its write,
// so no latency is below the real one. A message retried after
// ErrWindowFull keeps its due time. Messages due in the phase count as
// Scheduled whether sent or not.
func (m *member) publish(ctx context.Context, begin time.Time) {
	l := m.l
	mt := l.meter
	o := l.o
	c := m.c.Load()
	interval := time.Duration(float64(time.Second) / o.Rate)
	pubs := max(l.plan.pubs, 1)
	first := begin.Add(interval * time.Duration(int(m.pub.ID)%pubs) / time.Duration(pubs))
	due := func(i int) time.Time { return first.Add(time.Duration(i) * interval) }
	var end time.Time // of the phase; zero when Count alone bounds it
	abort := ctx
	if o.Duration > 0 {
		end = begin.Add(o.Duration)
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end.Add(lateGrace))
		defer cancel()
	}
	inPhase := func(i int) bool { return (o.Count == 0 || i < o.Count) && (end.IsZero() || due(i).Before(end)) }
	var waitedFor time.Time // due time of the last message it waited for
	heldBack := func(now time.Time) bool {
		return !end.IsZero() && now.After(end) && waitedFor.Before(end.Add(-max(lateGrace, interval)))
	}
	defer func() {
		cut := end
		if abort.Err() != nil && (cut.IsZero() || time.Now().Before(cut)) {
			cut = time.Now() // stopped early: only what fell due so far
		}
		m.pub.Scheduled = dueBefore(first, interval, cut, o.Count)
	}()
	if c == nil {
		// Never connected: it sends nothing, but the rate called for its
		// messages all the same.
		sleepUntil(abort, begin.Add(phaseLength(o)))
		return
	}
	route := l.plan.router(int(m.pub.ID))
	payload := make([]byte, o.Size)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	batch := c.NewBatch()
	fail := func(err error) {
		if ctx.Err() == nil {
			mt.add(&mt.live.PublishErrors, 1)
			mt.fail("publish: " + client.Cause(err))
		}
	}
	// Messages count as published once written: published and expected
	// hold those in the batch.
	var published, expected int64
	flush := func() bool {
		if err := batch.Flush(); err != nil {
			fail(err)
			return false
		}
		m.pub.Published += published
		m.pub.Expected += expected
		mt.add(&mt.live.Published, published)
		mt.add(&mt.live.Expected, expected)
		published, expected = 0, 0
		return true
	}
	for i := 0; inPhase(i); {
		if d := time.Until(due(i)); d > 0 {
			waitedFor = due(i)
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-abort.Done():
				return
			}
		} else if abort.Err() != nil {
			return
		}
		horizon := time.Now().Add(batchAhead)
		over := false
		for batch.Len() == 0 || (batch.Len() < maxBatch && inPhase(i) && !due(i).After(horizon)) {
			now := time.Now()
			if over = heldBack(now); over {
				break
			}
			r := route(i)
			from := due(i)
			if now.Before(from) {
				from = now // batched ahead of time
			}
			putHeader(payload, r.kind, m.pub.ID, r.seq, from.UnixNano())
			err := batch.Add(ctx, r.topic, o.QoS, payload)
			if err == client.ErrWindowFull {
				if !flush() {
					return
				}
				continue // message i again, into the empty batch
			}
			if err != nil {
				fail(err)
				return
			}
			published++
			expected += r.fan
			i++
		}
		if !flush() || over {
			return
		}
	}
	// The last message falls due up to an interval before the end: the
	// phase still lasts Duration, so that published/s is the rate.
	if !end.IsZero() {
		sleepUntil(abort, end)
	}
}

// dueBefore is how many messages, the i-th due at first + i x interval,
// fall due before cut (a zero cut: no bound), at most count (0: none).
func dueBefore(first time.Time, interval time.Duration, cut time.Time, count int) int64 {
	if cut.IsZero() {
		return int64(count)
	}
	n := int64(0)
	if d := cut.Sub(first); d > 0 {
		n = int64((d + interval - 1) / interval)
	}
	if count > 0 {
		n = min(n, int64(count))
	}
	return n
}

// churn connects and disconnects clients at this shard's share of
// ChurnRate until the deadline: each cycle is CONNECT, CONNACK (its
// latency recorded), DISCONNECT. At most maxChurning cycles run at once.
func (l *load) churn(ctx context.Context, deadline time.Time) {
	const maxChurning = 1000
	rate := l.plan.s.ChurnRate / float64(l.shards)
	if rate <= 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / rate)
	sem := make(chan struct{}, maxChurning)
	var wg sync.WaitGroup
	defer wg.Wait()
	begin := time.Now()
	mt := l.meter
	for n := 0; ; n++ {
		due := begin.Add(time.Duration(n) * interval)
		if !due.Before(deadline) || !sleepUntil(ctx, due) {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		// Churners' global indexes start after the lasting clients, so
		// they spread over targets and source addresses too.
		g := l.plan.total + n*l.shards + l.shard
		id := l.o.ClientIDs + "x" + strconv.Itoa(l.shard) + "-" + strconv.Itoa(n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mt.add(&mt.live.ConnectAttempts, 1)
			start := time.Now()
			c, _, err := client.Connect(l.stopCtx, l.config(g, id))
			if err != nil {
				mt.add(&mt.live.ConnectErrors, 1)
				mt.fail("churn connect: " + client.Cause(err))
				return
			}
			mt.record(kindConnack, g, time.Since(start))
			mt.conns.Add(1)
			c.Disconnect()
			mt.conns.Add(-1)
			mt.add(&mt.live.ChurnCycles, 1)
		}()
	}
}
