package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/herald-mqtt/herald/bench"
)

func sample(pass bool) *bench.Result {
	r := &bench.Result{
		Scenario: bench.Scenario{Name: bench.Fanout, Subscribers: 3, Publishers: 1},
		Options:  bench.DefaultOptions(),
		Pass:     pass,
		Checks: []bench.Check{
			{Name: "delivered = expected", Pass: pass, Value: "5 of 6", Threshold: "all, exactly"},
		},
		Publishers:  []bench.PublisherStats{{ID: 0, Published: 2, Expected: 6, Delivered: 5, Lost: 1}},
		PublishFrom: 1, PublishTo: 3,
		Errors: map[string]int64{"connect: refused": 2},
	}
	for t := 0; t < 4; t++ {
		s := bench.Second{T: t, Connections: 4}
		if t == 2 { // a second with deliveries; the others leave gaps in latency lines
			s.Deliver.Count, s.Deliver.P50, s.Deliver.Max = 5, 1.5, 3
			s.Delivered = 5
		}
		r.Series = append(r.Series, s)
	}
	return r
}

func TestReportsShowVerdictLossesAndErrors(t *testing.T) {
	for _, pass := range []bool{true, false} {
		r := sample(pass)
		var table, page bytes.Buffer
		if err := WriteTable(&table, r); err != nil {
			t.Fatal(err)
		}
		if err := WriteHTML(&page, r); err != nil {
			t.Fatal(err)
		}
		want := Verdict(r)
		for name, out := range map[string]string{"table": table.String(), "html": page.String()} {
			for _, s := range []string{want, "connect: refused", "publisher", "5 of 6"} {
				if !strings.Contains(out, s) {
					t.Errorf("%s (pass=%v) lacks %q", name, pass, s)
				}
			}
			if strings.Contains(out, "NaN") {
				t.Errorf("%s draws NaN", name)
			}
		}
		if n := strings.Count(page.String(), "<svg"); n != 5 {
			t.Errorf("%d charts, want 5", n)
		}
	}
}

func TestEmptyRunStillRenders(t *testing.T) {
	r := &bench.Result{Scenario: bench.Scenario{Name: bench.Conn}, Options: bench.DefaultOptions()}
	var b bytes.Buffer
	if err := WriteHTML(&b, r); err != nil || !strings.Contains(b.String(), "FAIL") {
		t.Errorf("err %v", err)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.1: 2, 3: 5, 7: 10, 120: 200, 100001: 200000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%g) = %g, want %g", in, got, want)
		}
	}
}

// The delivery rate counts distinct deliveries up to the last one, as
// compare.sh does: deliveries that arrive in the drain, after the
// publish phase, took that long, and duplicates are not throughput.
func TestTableDeliveryRateRunsToTheLastDelivery(t *testing.T) {
	r := sample(true)
	r.Counters.Published, r.Counters.Expected = 400, 800
	r.Counters.Delivered, r.Counters.Duplicates = 1000, 200
	r.PublishFrom, r.PublishTo, r.LastDelivery = 1, 3, 5
	var table bytes.Buffer
	if err := WriteTable(&table, r); err != nil {
		t.Fatal(err)
	}
	if want := "200 published/s\t200 delivered/s"; !strings.Contains(strings.Join(strings.Fields(table.String()), "\t"), strings.Join(strings.Fields(want), "\t")) {
		t.Errorf("table lacks %q:\n%s", want, table.String())
	}
}
