// Package latency records latency distributions for herald bench in HDR
// histograms (github.com/HdrHistogram/hdrhistogram-go), ships them between
// processes as exact sparse snapshots, and summarises them as percentiles.
//
// Values are recorded in microseconds from 1 µs to 100 s; larger values are
// clamped to 100 s so that a stalled broker still shows up as a maximum
// instead of being dropped. Three significant figures keep the error below
// 0.1 % at every percentile.
package latency

import (
	"fmt"
	"sync"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Geometry of every histogram the bench makes. Merging requires equal
// geometry, so it is fixed here and checked on import.
const (
	lowest      = 1           // µs
	highest     = 100_000_000 // µs (100 s)
	significant = 3
)

// New returns an empty histogram with the bench's geometry.
func New() *hdr.Histogram { return hdr.New(lowest, highest, significant) }

// Record adds d to h, clamped to the histogram's range (a negative d
// counts as 1 µs: callers that can see one count it themselves).
func Record(h *hdr.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < lowest {
		us = lowest
	}
	if us > highest {
		us = highest
	}
	_ = h.RecordValue(us) // cannot fail: us is within range
}

// Recorder is a histogram safe for concurrent use, split into shards so
// that thousands of reader goroutines recording deliveries do not queue on
// one mutex. Take empties it and returns what was recorded since the last
// Take: the interval histogram of one tick.
type Recorder struct {
	shards []recorderShard
}

type recorderShard struct {
	mu sync.Mutex
	h  *hdr.Histogram
	_  [40]byte // keep shards on separate cache lines
}

// NewRecorder returns a Recorder with n shards (at least 1).
func NewRecorder(n int) *Recorder {
	if n < 1 {
		n = 1
	}
	r := &Recorder{shards: make([]recorderShard, n)}
	for i := range r.shards {
		r.shards[i].h = New()
	}
	return r
}

// Record adds d to the shard chosen by key (any number that spreads
// callers, such as a client index).
func (r *Recorder) Record(key int, d time.Duration) {
	if key < 0 {
		key = -key
	}
	s := &r.shards[key%len(r.shards)]
	s.mu.Lock()
	Record(s.h, d)
	s.mu.Unlock()
}

// Take returns the merge of all shards and resets them.
func (r *Recorder) Take() *hdr.Histogram {
	out := New()
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		if s.h.TotalCount() > 0 {
			out.Merge(s.h)
			s.h.Reset()
		}
		s.mu.Unlock()
	}
	return out
}

// Snapshot is the exact wire form of a histogram: its geometry and its
// non-zero counts by index (hdrhistogram Export, made sparse because a
// one-second interval usually fills a few dozen of its ~18,000 buckets).
type Snapshot struct {
	Lowest      int64   `json:"lo"`
	Highest     int64   `json:"hi"`
	Significant int64   `json:"sig"`
	Index       []int32 `json:"i,omitempty"`
	Count       []int64 `json:"c,omitempty"`
}

// Export returns h's snapshot, or nil if h is empty.
func Export(h *hdr.Histogram) *Snapshot {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	full := h.Export()
	s := &Snapshot{Lowest: full.LowestTrackableValue, Highest: full.HighestTrackableValue, Significant: full.SignificantFigures}
	for i, c := range full.Counts {
		if c != 0 {
			s.Index = append(s.Index, int32(i))
			s.Count = append(s.Count, c)
		}
	}
	return s
}

// Import rebuilds the histogram of s, validating it first since it may
// come from another process or machine. A nil snapshot is an empty
// histogram.
func Import(s *Snapshot) (*hdr.Histogram, error) {
	if s == nil {
		return New(), nil
	}
	if s.Lowest != lowest || s.Highest != highest || s.Significant != significant {
		return nil, fmt.Errorf("histogram geometry %d..%d/%d, want %d..%d/%d",
			s.Lowest, s.Highest, s.Significant, lowest, highest, significant)
	}
	if len(s.Index) != len(s.Count) {
		return nil, fmt.Errorf("histogram snapshot has %d indexes and %d counts", len(s.Index), len(s.Count))
	}
	full := &hdr.Snapshot{LowestTrackableValue: s.Lowest, HighestTrackableValue: s.Highest, SignificantFigures: s.Significant}
	if len(s.Index) > 0 {
		n := int(s.Index[len(s.Index)-1]) + 1
		if n > 1<<20 {
			return nil, fmt.Errorf("histogram snapshot index %d out of range", n-1)
		}
		full.Counts = make([]int64, n)
		for k, i := range s.Index {
			if i < 0 || int(i) >= n {
				return nil, fmt.Errorf("histogram snapshot index %d out of order", i)
			}
			full.Counts[i] += s.Count[k]
		}
	}
	if err := full.Validate(); err != nil {
		return nil, fmt.Errorf("histogram snapshot: %w", err)
	}
	return hdr.Import(full), nil
}

// MergeSnapshot adds the histogram of s into dst.
func MergeSnapshot(dst *hdr.Histogram, s *Snapshot) error {
	if s == nil {
		return nil
	}
	h, err := Import(s)
	if err != nil {
		return err
	}
	dst.Merge(h)
	return nil
}

// Summary is a distribution reduced to the numbers a report shows, in
// milliseconds.
type Summary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns h's summary; the zero Summary if h is empty.
func Summarize(h *hdr.Histogram) Summary {
	if h == nil || h.TotalCount() == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	q := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Summary{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(q[50]),
		P90:   ms(q[90]),
		P99:   ms(q[99]),
		P999:  ms(q[99.9]),
		Max:   ms(h.Max()),
	}
}
