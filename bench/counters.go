package bench

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/bench/latency"
)

// Counters are the run's counts. In a Second they are what happened during
// that second; in a Result, totals. Clients, Connected, Subscriptions,
// PeakConnections, Scheduled and Lost are only set in totals.
type Counters struct {
	Clients         int64 `json:"clients"`          // lasting clients planned (churners excluded)
	Connected       int64 `json:"connected"`        // lasting clients connected when publishing began
	PeakConnections int64 `json:"peak_connections"` // most open connections in any second
	Subscriptions   int64 `json:"subscriptions"`    // topic filters the scenario subscribes

	ConnectAttempts int64 `json:"connect_attempts"`
	ConnectErrors   int64 `json:"connect_errors"`
	Disconnects     int64 `json:"disconnects"` // connections lost before the end
	ChurnCycles     int64 `json:"churn_cycles"`
	SubAcked        int64 `json:"sub_acked"`  // filters granted
	SubFailed       int64 `json:"sub_failed"` // filters refused
	Scheduled       int64 `json:"scheduled"`  // messages the publishers' rate called for (totals only)
	Published       int64 `json:"published"`
	PublishErrors   int64 `json:"publish_errors"`
	PubAcked        int64 `json:"pub_acked"`   // PUBACK / PUBCOMP with success
	PubRefused      int64 `json:"pub_refused"` // PUBACK / PUBREC with an error code
	Expected        int64 `json:"expected"`    // deliveries the publishes call for
	Delivered       int64 `json:"delivered"`   // deliveries received, duplicates included
	Duplicates      int64 `json:"duplicates"`
	OutOfOrder      int64 `json:"out_of_order"`
	Lost            int64 `json:"lost"`    // Expected minus distinct deliveries (totals only)
	CutOff          int64 `json:"cut_off"` // instead of Lost: still arriving when Drain ended (see cutOff)
	Dropped         int64 `json:"dropped"` // discarded by Options.DropEvery
	Foreign         int64 `json:"foreign"` // messages without the bench header
	// EarlyDeliveries arrived before their due time by the receiver's
	// clock, which only clocks out of step across machines can do; their
	// latency is recorded as the histograms' floor, 1 µs.
	EarlyDeliveries int64 `json:"early_deliveries"`
}

// flows lists the counters that workers report as per-tick deltas.
func (c *Counters) flows() []*int64 {
	return []*int64{&c.ConnectAttempts, &c.ConnectErrors, &c.Disconnects, &c.ChurnCycles,
		&c.SubAcked, &c.SubFailed, &c.Published, &c.PublishErrors, &c.PubAcked, &c.PubRefused,
		&c.Expected, &c.Delivered, &c.Duplicates, &c.OutOfOrder, &c.Dropped, &c.Foreign, &c.EarlyDeliveries}
}

func (c *Counters) addFlows(d *Counters) {
	a, b := c.flows(), d.flows()
	for i := range a {
		*a[i] += *b[i]
	}
}

// Latency kinds, the keys of tick and Result histograms.
const (
	kindConnack = "connack"
	kindSuback  = "suback"
	kindDeliver = "deliver"
	kindPuback  = "puback"
	kindPubcomp = "pubcomp"
)

var latencyKinds = []string{kindConnack, kindSuback, kindDeliver, kindPuback, kindPubcomp}

// meter is one worker's live measurements: counters updated atomically by
// every client goroutine, histograms, and errors by cause. take returns
// what changed since the previous take.
type meter struct {
	takeMu sync.Mutex // take runs from the tick loop and at the end of publishing
	live   Counters
	prev   Counters
	conns  atomic.Int64 // open connections now
	// lastDelivery is when the latest delivery arrived (unix nanos, to a
	// millisecond: see delivered), for a delivery rate that ends at the
	// last delivery, not at a second's boundary.
	lastDelivery atomic.Int64

	hist map[string]*latency.Recorder

	errMu  sync.Mutex
	errors map[string]int64
}

func newMeter() *meter {
	m := &meter{hist: map[string]*latency.Recorder{}, errors: map[string]int64{}}
	for _, k := range latencyKinds {
		shards := 2
		if k == kindDeliver {
			shards = 8
		}
		m.hist[k] = latency.NewRecorder(shards)
	}
	return m
}

func (m *meter) add(p *int64, n int64) { atomic.AddInt64(p, n) }

func (m *meter) record(kind string, key int, d time.Duration) { m.hist[kind].Record(key, d) }

// delivered notes a delivery that arrived at t. The latest time is kept
// to within lastDeliveryGrain: every subscriber's goroutine calls this,
// and a compare-and-swap of one shared word per delivery would cost the
// machine the broker runs on; one per grain does not, and a rate over
// seconds does not notice the millisecond.
func (m *meter) delivered(t time.Time) {
	ns := t.UnixNano()
	for {
		last := m.lastDelivery.Load()
		if ns <= last+lastDeliveryGrain || m.lastDelivery.CompareAndSwap(last, ns) {
			return
		}
	}
}

const lastDeliveryGrain = int64(time.Millisecond)

func (m *meter) fail(cause string) {
	m.errMu.Lock()
	m.errors[cause]++
	m.errMu.Unlock()
}

// take fills t with the deltas since the last take.
func (m *meter) take(t *tick) {
	m.takeMu.Lock()
	defer m.takeMu.Unlock()
	var now Counters
	cur, nf := m.live.flows(), now.flows()
	for i := range cur {
		*nf[i] = atomic.LoadInt64(cur[i])
	}
	d := now
	df, pf := d.flows(), m.prev.flows()
	for i := range df {
		*df[i] -= *pf[i]
	}
	m.prev = now
	t.Delta = d
	t.Conns = m.conns.Load()
	t.LastDelivery = m.lastDelivery.Load()
	t.Hist = map[string]*latency.Snapshot{}
	for k, r := range m.hist {
		if s := latency.Export(r.Take()); s != nil {
			t.Hist[k] = s
		}
	}
	m.errMu.Lock()
	if len(m.errors) > 0 {
		t.Errors = m.errors
		m.errors = map[string]int64{}
	}
	m.errMu.Unlock()
}
