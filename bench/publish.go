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
	if l.o.Duration > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, l.o.Duration)
		defer c2()
	}
	begin := time.Now()
	var wg sync.WaitGroup
	publishers := 0
	for _, m := range l.members {
		if m.pub != nil && m.c.Load() != nil {
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

// publish sends this member's messages at Rate. Publishers are staggered
// over one interval so that a thousand of them do not fire together. The
// send time in the payload is taken when the message is handed to the
// client, just before the write, so a publisher running behind schedule
// does not inflate the delivery latency it measures.
func (m *member) publish(ctx context.Context, begin time.Time) {
	l := m.l
	mt := l.meter
	o := l.o
	c := m.c.Load()
	interval := time.Duration(float64(time.Second) / o.Rate)
	pubs := max(l.plan.pubs, 1)
	first := begin.Add(interval * time.Duration(int(m.pub.ID)%pubs) / time.Duration(pubs))
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
	for i := 0; o.Count == 0 || i < o.Count; {
		if d := time.Until(first.Add(time.Duration(i) * interval)); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		horizon := time.Now().Add(batchAhead)
		for batch.Len() == 0 || (batch.Len() < maxBatch && (o.Count == 0 || i < o.Count) &&
			!first.Add(time.Duration(i)*interval).After(horizon)) {
			r := route(i)
			putHeader(payload, r.kind, m.pub.ID, r.seq, time.Now().UnixNano())
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
		if !flush() {
			return
		}
	}
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
