package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/herald-mqtt/herald/bench/latency"
)

// The director and its workers speak JSON lines, one message per line, over
// a pipe (in-process worker), a child's stdin/stdout (--procs) or TCP
// (remote workers):
//
//	director → worker: setup, start, stop
//	worker → director: ready (connected and subscribed), tick (once a
//	  second, more often while draining), published (publish phase over),
//	  done (final counts after stop), error
//
// A worker that loses its director stops its clients and exits.
//
// Versions: 2 added Options.ConnectWindow; 3 the due time in payloads,
// PublisherStats.Scheduled and tick.LastDelivery.
const protoVersion = 3

type message struct {
	Type  string `json:"type"`
	Setup *setup `json:"setup,omitempty"`
	Ready *ready `json:"ready,omitempty"`
	Tick  *tick  `json:"tick,omitempty"`
	Done  *done  `json:"done,omitempty"`
	Error string `json:"error,omitempty"`
}

// setup tells a worker its share of the run.
type setup struct {
	Version  int      `json:"version"`
	Scenario Scenario `json:"scenario"`
	Options  Options  `json:"options"`
	Shard    int      `json:"shard"`
	Shards   int      `json:"shards"`
	Start    int64    `json:"start"` // run start, unix nanos: second 0 of the series
}

// ready reports the end of a worker's connect phase.
type ready struct {
	Clients       int64 `json:"clients"`   // lasting clients planned in this shard
	Connected     int64 `json:"connected"` // of which connected
	Subscriptions int64 `json:"subscriptions"`
}

// tick is a worker's measurements for part of one second of the run.
type tick struct {
	Second int                          `json:"s"`
	Conns  int64                        `json:"conns"` // open now (a gauge)
	Delta  Counters                     `json:"delta"`
	Hist   map[string]*latency.Snapshot `json:"hist,omitempty"`
	Errors map[string]int64             `json:"errors,omitempty"`
	// LastDelivery is when the worker's latest delivery so far arrived,
	// unix nanos (0: none yet).
	LastDelivery int64   `json:"last_delivery,omitempty"`
	CPU          float64 `json:"cpu"` // process CPU seconds so far
	RSS          int64   `json:"rss"` // resident bytes now
}

// done is a worker's final report.
type done struct {
	Publishers []PublisherStats `json:"publishers,omitempty"`
	Self       SelfCost         `json:"self"`
}

// wire reads and writes messages on one stream. send is safe for
// concurrent use.
type wire struct {
	dec *json.Decoder
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *json.Encoder
	c   io.Closer
}

func newWire(r io.Reader, w io.Writer, c io.Closer) *wire {
	bw := bufio.NewWriter(w)
	return &wire{dec: json.NewDecoder(bufio.NewReader(r)), bw: bw, enc: json.NewEncoder(bw), c: c}
}

func (w *wire) send(m *message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.enc.Encode(m); err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return w.bw.Flush()
}

func (w *wire) recv() (*message, error) {
	var m message
	if err := w.dec.Decode(&m); err != nil {
		return nil, err
	}
	return &m, nil
}

func (w *wire) close() error {
	if w.c == nil {
		return nil
	}
	return w.c.Close()
}
