package latency

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

// Two workers record halves of one stream of values; their snapshots, sent
// as JSON and merged by the director, must equal one histogram that saw
// every value.
func TestMergeAcrossTwoWorkersIsExact(t *testing.T) {
	all := New()
	workers := []*Recorder{NewRecorder(4), NewRecorder(3)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		if i%1000 == 0 {
			d = 150 * time.Second // beyond the range: clamped, not dropped
		}
		Record(all, d)
		workers[i%2].Record(i, d)
	}
	merged := New()
	for _, w := range workers {
		wire, err := json.Marshal(Export(w.Take()))
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(wire, &s); err != nil {
			t.Fatal(err)
		}
		if err := MergeSnapshot(merged, &s); err != nil {
			t.Fatal(err)
		}
	}
	if !merged.Equals(all) {
		t.Fatalf("merged histogram differs: %+v vs %+v", Summarize(merged), Summarize(all))
	}
	if got := Summarize(merged); got.Count != 100000 || got.Max < 100000 || got.Max > 100100 {
		t.Errorf("summary %+v: want 100000 values, max clamped to 100 s", got)
	}
	if w := workers[0].Take(); w.TotalCount() != 0 {
		t.Errorf("Take did not reset the recorder: %d values left", w.TotalCount())
	}
}

func TestImportRejectsForeignGeometryAndBadIndexes(t *testing.T) {
	for name, s := range map[string]*Snapshot{
		"geometry":       {Lowest: 1, Highest: 1000, Significant: 3},
		"length":         {Lowest: lowest, Highest: highest, Significant: significant, Index: []int32{1}},
		"negative index": {Lowest: lowest, Highest: highest, Significant: significant, Index: []int32{-1, 5}, Count: []int64{1, 1}},
		"huge index":     {Lowest: lowest, Highest: highest, Significant: significant, Index: []int32{1 << 30}, Count: []int64{1}},
		"negative count": {Lowest: lowest, Highest: highest, Significant: significant, Index: []int32{3}, Count: []int64{-1}},
	} {
		if _, err := Import(s); err == nil {
			t.Errorf("%s: Import accepted %+v", name, s)
		}
	}
	if h, err := Import(nil); err != nil || h.TotalCount() != 0 {
		t.Errorf("Import(nil) = %v, %v; want empty", h, err)
	}
}
