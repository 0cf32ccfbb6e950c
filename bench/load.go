package bench

import (
	"context"
	"crypto/tls"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/bench/client"
	"github.com/herald-mqtt/herald/packet"
)

// load is one worker's share of a run: its clients and what they do.
type load struct {
	plan    *plan
	o       Options
	shard   int
	shards  int
	start   time.Time // run start (second 0)
	meter   *meter
	targets []client.Target
	ips     []net.IP
	tlsConf *tls.Config
	version byte

	members   []*member
	planned   int64 // lasting clients in this shard
	subsWant  int64 // filters this shard subscribes
	settled   sync.WaitGroup
	running   sync.WaitGroup // member read loops
	shared    *tracker       // fan-in shared group's tracker
	connected atomic.Int64   // lasting clients connected
	window    chan struct{}  // connection attempts in progress, when bounded
	poller    *client.Poller // runs members' read sides; nil: a goroutine each

	stopCtx context.Context // ends every client activity
	stop    context.CancelFunc
}

func newLoad(st *setup) (*load, error) {
	o := st.Options
	l := &load{
		plan:   newPlan(st.Scenario, o),
		o:      o,
		shard:  st.Shard,
		shards: st.Shards,
		start:  time.Unix(0, st.Start),
		meter:  newMeter(),
	}
	for _, t := range o.Targets {
		tg, err := client.ParseTarget(t, o.TLS)
		if err != nil {
			return nil, err
		}
		l.targets = append(l.targets, tg)
	}
	var err error
	if l.ips, err = parseSourceIPs(o.SourceIPs); err != nil {
		return nil, err
	}
	l.tlsConf = &tls.Config{InsecureSkipVerify: o.Insecure}
	l.version = packet.Version311
	if o.MQTT == 5 {
		l.version = packet.Version5
	}
	if st.Scenario.Name == Fanin && st.Scenario.Shared {
		l.shared = &tracker{unordered: true}
	}
	if o.ReadLoop != ReadLoopGoroutine {
		// Where there is no poller (not Linux), a goroutine each.
		l.poller, _ = client.NewPoller(runtime.GOMAXPROCS(0))
	}
	l.stopCtx, l.stop = context.WithCancel(context.Background())
	return l, nil
}

// close releases what newLoad started; after finish, or instead of it.
func (l *load) close() {
	l.stop()
	if l.poller != nil {
		l.poller.Close()
	}
}

// config returns the connection settings of client number g (global
// index, which also picks target and source address round-robin).
func (l *load) config(g int, id string) *client.Config {
	c := &client.Config{
		Target:     l.targets[g%len(l.targets)],
		TLS:        l.tlsConf,
		Version:    l.version,
		ClientID:   id,
		Username:   l.o.Username,
		Password:   l.o.Password,
		KeepAlive:  uint16(l.o.KeepAlive),
		CleanStart: true,
		Timeout:    l.o.ConnectTimeout,
		Inflight:   l.o.Inflight,
	}
	if len(l.ips) > 0 {
		c.LocalIP = l.ips[g%len(l.ips)]
	}
	return c
}

// connect opens this shard's lasting clients at the connect rate (client
// g starts at g / ConnectRate after the phase begins, so shards interleave)
// and returns once each has connected and been granted its subscriptions,
// or failed, or the phase's bound passed.
func (l *load) connect(ctx context.Context) ready {
	phase := time.Now()
	for g := 0; g < l.plan.total; g++ {
		if l.plan.shardOf(g, l.shards) != l.shard {
			continue
		}
		sl := l.plan.slot(g)
		m := &member{l: l, slot: sl, subs: l.plan.subscriptions(sl)}
		if sl.role == roleSubscriber || sl.role == roleMember {
			m.tracker = l.shared
			if m.tracker == nil {
				m.tracker = &tracker{}
			}
		}
		if sl.role == rolePublisher || sl.role == roleMember {
			m.pub = &PublisherStats{ID: uint32(sl.index)}
		}
		l.members = append(l.members, m)
		l.planned++
		l.subsWant += int64(len(m.subs))
	}
	l.settled.Add(len(l.members))
	if w := l.o.ConnectWindow; w > 0 {
		// The shards split the window (validate made it at least one
		// place each).
		per := w / l.shards
		if l.shard < w%l.shards {
			per++
		}
		l.window = make(chan struct{}, max(per, 1))
	}
	for i, m := range l.members {
		due := phase.Add(time.Duration(float64(m.slot.global) / l.o.ConnectRate * float64(time.Second)))
		if !sleepUntil(ctx, due) || !l.enterWindow(ctx) {
			for _, never := range l.members[i:] {
				never.done()
			}
			break
		}
		l.running.Add(1)
		go m.run(ctx)
	}
	bound := time.NewTimer(2*l.o.ConnectTimeout + time.Second)
	defer bound.Stop()
	settled := make(chan struct{})
	go func() { l.settled.Wait(); close(settled) }()
	select {
	case <-settled:
	case <-bound.C:
	case <-ctx.Done():
	}
	return ready{Clients: l.planned, Connected: l.connected.Load(), Subscriptions: l.subsWant}
}

// enterWindow takes a place among the connection attempts in progress
// (released by member.run once its attempt ends), waiting for one when
// --connect-window is full; false if ctx ended first.
func (l *load) enterWindow(ctx context.Context) bool {
	if l.window == nil {
		return true
	}
	select {
	case l.window <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// leaveWindow gives back the place enterWindow took.
func (l *load) leaveWindow() {
	if l.window != nil {
		<-l.window
	}
}

// sleepUntil waits until t or ctx's end, reporting whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ping keeps idle clients alive: one loop for all of them instead of a
// timer per client.
func (l *load) ping(ctx context.Context) {
	if l.o.KeepAlive == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, m := range l.members {
				if c := m.c.Load(); c != nil {
					c.Ping(now)
				}
			}
		}
	}
}

// finish disconnects every client, waits for their read loops (bounded)
// and returns the per-publisher accounting of this shard.
func (l *load) finish() []PublisherStats {
	l.stop()
	for _, m := range l.members {
		m.closing.Store(true)
		if c := m.c.Load(); c != nil {
			c.Disconnect()
		}
	}
	waited := make(chan struct{})
	go func() { l.running.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
	}
	stats := map[uint32]*PublisherStats{}
	for _, m := range l.members {
		if m.pub != nil {
			ps := stats[m.pub.ID]
			if ps == nil {
				stats[m.pub.ID] = m.pub
			} else {
				ps.add(m.pub)
			}
		}
		if m.tracker != nil && m.tracker != l.shared {
			m.tracker.addTo(stats)
		}
	}
	if l.shared != nil {
		l.shared.addTo(stats)
	}
	out := make([]PublisherStats, 0, len(stats))
	for _, ps := range stats {
		out = append(out, *ps)
	}
	return out
}

// member is one lasting client and its client.Handler.
type member struct {
	l       *load
	slot    slot
	subs    []packet.Subscription
	c       atomic.Pointer[client.Client]
	tracker *tracker        // subscribers: streams received
	pub     *PublisherStats // publishers: written by its publish loop only
	settle  sync.Once
	closing atomic.Bool
	got     int64 // messages received, for DropEvery; read loop only
}

// done settles the member for the connect phase: connected and granted
// its subscriptions (SUBACK), or failed. Every path of run and ended ends
// in it, so the phase never waits for a client that gave up.
func (m *member) done() { m.settle.Do(m.l.settled.Done) }

// run connects, subscribes and starts the read loop, which settles the
// member when the SUBACK arrives (or the connection ends).
func (m *member) run(ctx context.Context) {
	l := m.l
	defer l.running.Done()
	mt := l.meter
	cfg := l.config(m.slot.global, l.plan.clientID(m.slot))
	mt.add(&mt.live.ConnectAttempts, 1)
	begin := time.Now()
	c, _, err := client.Connect(ctx, cfg)
	l.leaveWindow()
	if err != nil {
		mt.add(&mt.live.ConnectErrors, 1)
		mt.fail("connect: " + client.Cause(err))
		m.done()
		return
	}
	mt.record(kindConnack, m.slot.global, time.Since(begin))
	l.connected.Add(1)
	m.c.Store(c)
	if m.closing.Load() || l.stopCtx.Err() != nil {
		c.Close()
		m.done()
		return
	}
	if len(m.subs) == 0 {
		m.done()
	} else if err := c.Subscribe(m.subs); err != nil {
		c.Close() // serve returns at once and settles
	}
	l.running.Add(1)
	mt.conns.Add(1)
	if c.ServeOn(l.poller, m, m.ended) {
		return
	}
	// The read loop gets a goroutine of its own: dialing and handshakes
	// grow this one's stack, which would otherwise stay for the whole run
	// on every idle client.
	go func() { m.ended(c.Serve(m)) }()
}

// ended is called once when the member's connection ends, with the cause
// (nil after Close or Disconnect).
func (m *member) ended(err error) {
	mt := m.l.meter
	if err != nil && !m.closing.Load() {
		mt.add(&mt.live.Disconnects, 1)
		mt.fail("lost: " + client.Cause(err))
	}
	m.done() // lost before its SUBACK
	mt.conns.Add(-1)
	m.l.running.Done()
}

// Message implements client.Handler.
func (m *member) Message(p *packet.Publish, arrived time.Time) {
	mt := m.l.meter
	h, ok := readHeader(p.Payload)
	if !ok || m.tracker == nil {
		mt.add(&mt.live.Foreign, 1)
		return
	}
	m.got++
	if n := m.l.o.DropEvery; n > 0 && m.got%int64(n) == 0 {
		mt.add(&mt.live.Dropped, 1)
		return
	}
	d := arrived.Sub(time.Unix(0, h.dueAt))
	if d < 0 {
		mt.add(&mt.live.EarlyDeliveries, 1)
	}
	mt.record(kindDeliver, m.slot.global, d)
	mt.add(&mt.live.Delivered, 1)
	mt.delivered(arrived)
	dup, ooo := m.tracker.observe(h)
	if dup {
		mt.add(&mt.live.Duplicates, 1)
	}
	if ooo {
		mt.add(&mt.live.OutOfOrder, 1)
	}
}

// Acked implements client.Handler.
func (m *member) Acked(kind packet.Type, rtt time.Duration, p packet.Packet) {
	mt := m.l.meter
	switch kind {
	case packet.SUBACK:
		mt.record(kindSuback, m.slot.global, rtt)
		for _, code := range p.(*packet.Suback).ReasonCodes {
			if code >= 0x80 {
				mt.add(&mt.live.SubFailed, 1)
				mt.fail("subscribe: refused " + hexByte(byte(code)))
			} else {
				mt.add(&mt.live.SubAcked, 1)
			}
		}
		m.done()
	case packet.PUBACK, packet.PUBCOMP, packet.PUBREC:
		if a, ok := p.(*packet.Ack); ok && a.ReasonCode >= 0x80 {
			mt.add(&mt.live.PubRefused, 1)
			mt.fail("publish: refused " + hexByte(byte(a.ReasonCode)))
			return
		}
		k := kindPuback
		if kind == packet.PUBCOMP {
			k = kindPubcomp
		}
		mt.record(k, m.slot.global, rtt)
		mt.add(&mt.live.PubAcked, 1)
	}
}

func hexByte(b byte) string {
	const digits = "0123456789ABCDEF"
	return "0x" + string(digits[b>>4]) + string(digits[b&15])
}
