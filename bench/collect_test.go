package bench

import (
	"math"
	"testing"
)

// While the director waits for the drain a worker ticks five times a
// second, and the tick sent with "published" falls mid-second: a
// second's CPU is the CPU of all its ticks, not of its first one alone.
func TestSecondCPUCountsEveryTickOfTheSecond(t *testing.T) {
	res := &Result{}
	c := newCollector(res, 1, nil)
	ticks := []tick{
		{Second: 0, CPU: 0.5}, // the first: no previous reading
		{Second: 0, CPU: 1.0},
		{Second: 1, CPU: 1.6}, // "published", mid-second
		{Second: 1, CPU: 2.0},
		{Second: 2, CPU: 2.2}, // fast ticks while draining
		{Second: 2, CPU: 2.4},
		{Second: 2, CPU: 2.6},
		{Second: 2, CPU: 2.8},
		{Second: 2, CPU: 3.0},
	}
	for i := range ticks {
		if err := c.tick(0, &ticks[i]); err != nil {
			t.Fatal(err)
		}
	}
	c.finish(nil)
	want := []float64{0.5, 1.0, 1.0}
	if len(res.Series) != len(want) {
		t.Fatalf("%d seconds, want %d", len(res.Series), len(want))
	}
	for i, s := range res.Series {
		if math.Abs(s.CPU-want[i]) > 1e-9 {
			t.Errorf("second %d: %.2f cores, want %.2f", s.T, s.CPU, want[i])
		}
	}
}
