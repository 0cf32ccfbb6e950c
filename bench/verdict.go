package bench

import (
	"fmt"
	"time"
)

// Check is one pass/fail criterion and how the run did against it.
type Check struct {
	Name      string `json:"name"`
	Pass      bool   `json:"pass"`
	Value     string `json:"value"`     // what was measured
	Threshold string `json:"threshold"` // what was required
	// Reported checks are shown but do not decide the verdict.
	Reported bool `json:"reported,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// judge fills r.Checks and r.Pass from r's counters and series.
func judge(r *Result) {
	th := r.Options.Thresholds
	c := r.Counters
	var checks []Check
	add := func(name string, pass bool, value, threshold string) {
		checks = append(checks, Check{Name: name, Pass: pass, Value: value, Threshold: threshold})
	}
	if r.Failure != "" {
		add("run completed", false, r.Failure, "no worker error")
	}
	if r.TimedOut {
		add("run completed", false, "timed out", fmt.Sprintf("within %v", r.Options.Timeout))
	}
	want := c.Clients
	if th.MinConnections > 0 {
		want = int64(th.MinConnections)
	}
	add("connections", c.Connected >= want, fmt.Sprint(c.Connected), fmt.Sprintf(">= %d", want))
	add("connect errors", c.ConnectErrors <= th.MaxConnectErrors, fmt.Sprint(c.ConnectErrors), fmt.Sprintf("<= %d", th.MaxConnectErrors))
	add("connections lost", c.Disconnects <= th.MaxDisconnects, fmt.Sprint(c.Disconnects), fmt.Sprintf("<= %d", th.MaxDisconnects))
	if ca := r.Latency[kindConnack]; ca.Count > 0 {
		add("CONNACK latency mean", ca.Mean <= ms(th.MaxConnackMean), fmt.Sprintf("%.2f ms", ca.Mean), fmt.Sprintf("<= %v", th.MaxConnackMean))
	}
	if c.Subscriptions > 0 {
		add("subscriptions acknowledged", c.SubAcked == c.Subscriptions && c.SubFailed == 0,
			fmt.Sprintf("%d of %d (%d refused)", c.SubAcked, c.Subscriptions, c.SubFailed), "all granted")
	}
	if c.Scheduled > 0 && th.MinRateKept > 0 {
		kept := float64(c.Published) / float64(c.Scheduled)
		add("offered rate kept", kept >= th.MinRateKept, fmt.Sprintf("%d of %d scheduled published (%.3f)", c.Published, c.Scheduled, kept),
			fmt.Sprintf(">= %.3g", th.MinRateKept))
	}
	if c.Published > 0 && r.Options.QoS > 0 {
		add("publishes acknowledged", c.PubAcked == c.Published && c.PubRefused == 0,
			fmt.Sprintf("%d of %d (%d refused)", c.PubAcked, c.Published, c.PubRefused), "all")
	}
	if c.Expected > 0 {
		d := r.Latency[kindDeliver]
		add("delivery latency mean", d.Count > 0 && d.Mean <= ms(th.MaxLatencyMean), fmt.Sprintf("%.2f ms", d.Mean), fmt.Sprintf("<= %v", th.MaxLatencyMean))
		if th.MaxLatencyGrowth > 0 {
			first, last, ok := latencyThirds(r)
			if ok {
				rising := last > first*th.MaxLatencyGrowth && last-first > ms(th.LatencyGrowthFloor)
				add("latency not rising", !rising, fmt.Sprintf("first third %.2f ms, last third %.2f ms", first, last),
					fmt.Sprintf("last <= %.3gx first or within +%v", th.MaxLatencyGrowth, th.LatencyGrowthFloor))
			}
		}
		unique := c.Delivered - c.Duplicates
		value := fmt.Sprintf("%d of %d expected (%d lost, %d duplicates, %d out of order)", unique, c.Expected, c.Lost, c.Duplicates, c.OutOfOrder)
		switch {
		case c.CutOff > 0:
			// Not lost (see cutOff), but not delivered in time either.
			value = fmt.Sprintf("%d of %d expected (%d cut off while still arriving: last delivery at %.2f s, drain cut at %.2f s; %d duplicates, %d out of order)",
				unique, c.Expected, c.CutOff, r.LastDelivery, r.DrainCut, c.Duplicates, c.OutOfOrder)
			checks = append(checks, Check{Name: "delivered within the drain", Value: value,
				Threshold: fmt.Sprintf("all within --drain %v", r.Options.Drain), Reported: r.Options.QoS == 0 && th.MaxLossQoS0 < 0})
		case r.Options.QoS > 0:
			pass := c.Lost == 0 && unique == c.Expected
			th := "all, exactly"
			if r.Options.QoS == 2 {
				pass = pass && c.Duplicates == 0
				th = "all, exactly, no duplicate"
			}
			add("delivered = expected", pass, value, th)
		case th.MaxLossQoS0 >= 0:
			loss := 100 * float64(c.Lost) / float64(c.Expected)
			add("QoS 0 loss", loss <= th.MaxLossQoS0, fmt.Sprintf("%.3f%% (%s)", loss, value), fmt.Sprintf("<= %.3g%%", th.MaxLossQoS0))
		default:
			checks = append(checks, Check{Name: "delivered (QoS 0)", Pass: c.Lost == 0, Value: value, Threshold: "reported only", Reported: true})
		}
	}
	r.Checks = checks
	r.Pass = true
	for _, ch := range checks {
		if !ch.Pass && !ch.Reported {
			r.Pass = false
		}
	}
}

// latencyThirds returns the mean of the per-second mean delivery latencies
// over the first and the last third of the publish phase (seconds with
// deliveries only). It needs at least three such seconds.
func latencyThirds(r *Result) (first, last float64, ok bool) {
	var means []float64
	for _, s := range r.Series {
		if float64(s.T) >= r.PublishFrom && float64(s.T) < r.PublishTo && s.Deliver.Count > 0 {
			means = append(means, s.Deliver.Mean)
		}
	}
	n := len(means) / 3
	if n == 0 {
		return 0, 0, false
	}
	avg := func(v []float64) float64 {
		var sum float64
		for _, x := range v {
			sum += x
		}
		return sum / float64(len(v))
	}
	return avg(means[:n]), avg(means[len(means)-n:]), true
}
