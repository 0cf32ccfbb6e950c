package bench

import (
	"fmt"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/herald-mqtt/herald/bench/latency"
)

// Second is one second of the run, merged over all workers.
type Second struct {
	T           int               `json:"t"`           // seconds since the run began
	Connections int64             `json:"connections"` // open at the end of the second
	Counters    `json:"counters"` // what happened during the second
	Deliver     latency.Summary   `json:"deliver"`
	Connack     latency.Summary   `json:"connack"`
	Ack         latency.Summary   `json:"ack"` // PUBACK (QoS 1) or PUBCOMP (QoS 2)
	CPU         float64           `json:"cpu"` // cores the bench used
	RSS         int64             `json:"rss"` // bench resident bytes
}

// Result is everything a run measured, merged over its workers.
type Result struct {
	Scenario Scenario  `json:"scenario"`
	Options  Options   `json:"options"`
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_seconds"`
	Workers  int       `json:"workers"`
	// PublishSeconds is when the publish phase began and ended, in
	// seconds since the start (the span the latency-growth check reads).
	PublishFrom float64 `json:"publish_from"`
	PublishTo   float64 `json:"publish_to"`
	// LastDelivery is when the latest delivery arrived, in seconds since
	// the start (0: none), so that a delivery rate can run from
	// PublishFrom to it exactly. Across machines it is only as good as
	// their clocks' synchronisation.
	LastDelivery float64 `json:"last_delivery"`
	// DrainCut is when Drain ended the run with deliveries or
	// acknowledgements missing, in seconds since the start (0: every one
	// arrived, or the run ended otherwise).
	DrainCut float64 `json:"drain_cut,omitempty"`
	TimedOut bool    `json:"timed_out,omitempty"`
	Failure  string  `json:"failure,omitempty"` // a worker error that ended the run

	Counters Counters                   `json:"counters"`
	Latency  map[string]latency.Summary `json:"latency"` // connack, suback, deliver, puback, pubcomp
	Errors   map[string]int64           `json:"errors,omitempty"`
	Series   []Second                   `json:"series"`
	// Publishers is the per-publisher delivery accounting, by id.
	Publishers []PublisherStats `json:"publishers,omitempty"`
	Self       SelfCost         `json:"self"`

	Checks []Check `json:"checks"`
	Pass   bool    `json:"pass"`
}

// openSecond is a second still receiving ticks.
type openSecond struct {
	Second
	conns []int64 // per worker, the last gauge reported
	cpu   []float64
	rss   []int64
	hist  map[string]*hdr.Histogram
}

// collector merges worker reports into a Result as they arrive.
type collector struct {
	res          *Result
	workers      int
	open         map[int]*openSecond
	last         []int     // per worker: highest second reported
	lastCPU      []float64 // per worker: CPU seconds at its previous tick
	lastSec      []int     // per worker: second of its previous tick (-1: none yet)
	gauge        []int64   // per worker: last connection gauge reported
	cum          map[string]*hdr.Histogram
	pubs         map[uint32]*PublisherStats
	lastDelivery int64 // unix nanos, the latest over all workers
	closed       int   // seconds below this are final
	emit         func(Second, Counters)
}

func newCollector(res *Result, workers int, emit func(Second, Counters)) *collector {
	c := &collector{
		res: res, workers: workers, emit: emit,
		open:    map[int]*openSecond{},
		last:    make([]int, workers),
		lastCPU: make([]float64, workers),
		lastSec: make([]int, workers),
		gauge:   make([]int64, workers),
		cum:     map[string]*hdr.Histogram{},
		pubs:    map[uint32]*PublisherStats{},
	}
	for i := range c.last {
		c.last[i] = -1
		c.lastSec[i] = -1
	}
	for _, k := range latencyKinds {
		c.cum[k] = latency.New()
	}
	res.Errors = map[string]int64{}
	return c
}

func (c *collector) second(t int) *openSecond {
	s := c.open[t]
	if s == nil {
		s = &openSecond{
			Second: Second{T: t},
			conns:  make([]int64, c.workers), cpu: make([]float64, c.workers), rss: make([]int64, c.workers),
			hist: map[string]*hdr.Histogram{},
		}
		for i := range s.conns {
			s.conns[i] = -1
		}
		c.open[t] = s
	}
	return s
}

// tick merges worker w's tick. Ticks of one worker arrive in order.
func (c *collector) tick(w int, t *tick) error {
	if t.Second < c.closed {
		t.Second = c.closed // late: count it in the oldest open second
	}
	s := c.second(t.Second)
	s.Counters.addFlows(&t.Delta)
	c.res.Counters.addFlows(&t.Delta)
	for k, snap := range t.Hist {
		if _, known := c.cum[k]; !known {
			return fmt.Errorf("unknown histogram %q", k)
		}
		h := s.hist[k]
		if h == nil {
			h = latency.New()
			s.hist[k] = h
		}
		if err := latency.MergeSnapshot(h, snap); err != nil {
			return err
		}
		if err := latency.MergeSnapshot(c.cum[k], snap); err != nil {
			return err
		}
	}
	for cause, n := range t.Errors {
		c.res.Errors[cause] += n
	}
	c.lastDelivery = max(c.lastDelivery, t.LastDelivery)
	s.conns[w] = t.Conns
	c.gauge[w] = t.Conns
	s.rss[w] = t.RSS
	// A second's CPU is what the worker spent between its previous tick
	// and each tick of the second: several while draining (fast ticks)
	// and in the second publishing ended, one otherwise.
	if c.lastSec[w] >= 0 {
		s.cpu[w] += t.CPU - c.lastCPU[w]
	}
	c.lastCPU[w], c.lastSec[w] = t.CPU, t.Second
	c.last[w] = max(c.last[w], t.Second)
	low := c.last[0]
	for _, l := range c.last {
		low = min(low, l)
	}
	c.closeBelow(low)
	return nil
}

// closeBelow finalises every second before t.
func (c *collector) closeBelow(t int) {
	for ; c.closed < t; c.closed++ {
		s := c.open[c.closed]
		if s == nil {
			// No worker reported this second: carry the gauges over.
			s = c.second(c.closed)
			if prev := len(c.res.Series); prev > 0 {
				s.Connections = c.res.Series[prev-1].Connections
			}
		} else {
			var conns int64
			for w, n := range s.conns {
				if n < 0 {
					n = c.gauge[w]
				}
				conns += max(n, 0)
			}
			s.Connections = conns
		}
		for w := range s.cpu {
			s.CPU += s.cpu[w]
			s.RSS += s.rss[w]
		}
		s.Deliver = latency.Summarize(s.hist[kindDeliver])
		s.Connack = latency.Summarize(s.hist[kindConnack])
		ack := s.hist[kindPuback]
		if c.res.Options.QoS == 2 {
			ack = s.hist[kindPubcomp]
		}
		s.Ack = latency.Summarize(ack)
		delete(c.open, c.closed)
		c.res.Counters.PeakConnections = max(c.res.Counters.PeakConnections, s.Connections)
		c.res.Series = append(c.res.Series, s.Second)
		if c.emit != nil {
			c.emit(s.Second, c.res.Counters)
		}
	}
}

// finish closes every open second and fills the totals.
func (c *collector) finish(selfs []SelfCost) {
	end := c.closed
	for t := range c.open {
		end = max(end, t+1)
	}
	c.closeBelow(end)
	r := c.res
	r.Latency = map[string]latency.Summary{}
	for k, h := range c.cum {
		r.Latency[k] = latency.Summarize(h)
	}
	r.Publishers = r.Publishers[:0]
	var lost, scheduled int64
	for _, p := range c.pubs {
		p.settle()
		lost += p.Lost
		scheduled += p.Scheduled
		r.Publishers = append(r.Publishers, *p)
	}
	sort.Slice(r.Publishers, func(i, j int) bool { return r.Publishers[i].ID < r.Publishers[j].ID })
	r.Counters.Lost = lost
	r.Counters.Scheduled = scheduled
	if c.lastDelivery > 0 {
		r.LastDelivery = float64(c.lastDelivery-r.Started.UnixNano()) / 1e9
	}
	for _, s := range selfs {
		r.Self.add(s)
	}
	r.Self.derive()
}

// done merges worker w's final report.
func (c *collector) done(d *done) {
	for i := range d.Publishers {
		p := &d.Publishers[i]
		q := c.pubs[p.ID]
		if q == nil {
			q = &PublisherStats{ID: p.ID}
			c.pubs[p.ID] = q
		}
		q.add(p)
	}
}
