package bench

import (
	"context"
	"github.com/herald-mqtt/herald/bench/internal/mosquitto"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary serve as a --procs worker process: the
// director re-executes it with HERALD_BENCH_WORKER=1.
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_BENCH_WORKER") == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// quick returns options for a short run against target.
func quick(target string) Options {
	o := DefaultOptions()
	o.Targets = []string{target}
	o.Duration = 1500 * time.Millisecond
	o.Rate = 20
	o.ConnectRate = 500
	o.Drain = 3 * time.Second
	o.Timeout = 30 * time.Second
	// The race detector and a shared two-core machine make latency
	// noisy; these tests are about counts and verdict logic.
	o.Thresholds.MaxConnackMean = 2 * time.Second
	o.Thresholds.MaxLatencyMean = 2 * time.Second
	return o
}

func runScenario(t *testing.T, s Scenario, o Options) *Result {
	t.Helper()
	r, err := Run(context.Background(), s, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !r.Pass {
		for _, c := range r.Checks {
			t.Logf("check %-28s pass=%v value=%s threshold=%s", c.Name, c.Pass, c.Value, c.Threshold)
		}
		t.Logf("errors: %v failure: %q", r.Errors, r.Failure)
	}
	return r
}

func TestEachScenarioPassesAgainstMosquitto(t *testing.T) {
	target := mosquitto.Start(t)
	tests := []struct {
		name string
		s    Scenario
		qos  byte
		mqtt int
		// deliveries the run must count, from its own published total
		want func(r *Result) int64
	}{
		{"conn", Scenario{Name: Conn, Clients: 40}, 0, 3, nil},
		{"fanout qos0", Scenario{Name: Fanout, Subscribers: 30, Publishers: 2}, 0, 3,
			func(r *Result) int64 { return r.Counters.Published * 30 }},
		{"fanout qos1 v5", Scenario{Name: Fanout, Subscribers: 20, Publishers: 1}, 1, 5,
			func(r *Result) int64 { return r.Counters.Published * 20 }},
		{"fanin shared qos1", Scenario{Name: Fanin, Subscribers: 3, Publishers: 20, Shared: true}, 1, 5,
			func(r *Result) int64 { return r.Counters.Published }},
		{"fanin single qos2", Scenario{Name: Fanin, Subscribers: 1, Publishers: 10}, 2, 3,
			func(r *Result) int64 { return r.Counters.Published }},
		{"unicast qos1", Scenario{Name: Unicast, Subscribers: 25, Publishers: 2}, 1, 3,
			func(r *Result) int64 { return r.Counters.Published }},
		{"churn", Scenario{Name: Churn, Subscribers: 10, Publishers: 1, ChurnRate: 50}, 1, 3,
			func(r *Result) int64 { return r.Counters.Published * 10 }},
		{"chat v3", Scenario{Name: Chat, Subscribers: 24, RoomSize: 5}, 1, 3, nil},
		{"chat v5", Scenario{Name: Chat, Subscribers: 24, RoomSize: 5}, 1, 5, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := quick(target)
			o.QoS, o.MQTT = tc.qos, tc.mqtt
			r := runScenario(t, tc.s, o)
			if !r.Pass {
				t.Fatalf("verdict FAIL")
			}
			c := r.Counters
			if c.Connected != c.Clients || c.Clients == 0 {
				t.Errorf("connected %d of %d", c.Connected, c.Clients)
			}
			if tc.want != nil {
				if c.Published == 0 {
					t.Fatalf("nothing published")
				}
				if got, want := c.Expected, tc.want(r); got != want {
					t.Errorf("expected deliveries %d, want %d", got, want)
				}
			}
			if tc.qos > 0 && c.Delivered-c.Duplicates != c.Expected {
				t.Errorf("delivered %d (dups %d), expected %d", c.Delivered, c.Duplicates, c.Expected)
			}
			if tc.s.Name == Churn && c.ChurnCycles == 0 {
				t.Errorf("no churn cycles")
			}
			t.Logf("clients %d connected %d published %d expected %d delivered %d dups %d ooo %d churn %d connack %.2fms deliver %.2fms self %.0f B/client", c.Clients, c.Connected, c.Published, c.Expected, c.Delivered, c.Duplicates, c.OutOfOrder, c.ChurnCycles, r.Latency["connack"].Mean, r.Latency["deliver"].Mean, r.Self.BytesPerClient)
			if len(r.Series) == 0 {
				t.Errorf("no per-second series")
			}
		})
	}
}

func TestLossyFanoutFails(t *testing.T) {
	target := mosquitto.Start(t)
	o := quick(target)
	o.QoS = 1
	o.DropEvery = 7 // subscribers discard every 7th message as if lost
	r := runScenario(t, Scenario{Name: Fanout, Subscribers: 10, Publishers: 1}, o)
	if r.Pass {
		t.Fatal("a run that lost messages at QoS 1 passed")
	}
	if r.Counters.Lost == 0 || r.Counters.Lost != r.Counters.Dropped {
		t.Errorf("lost %d, dropped %d: want equal and non-zero", r.Counters.Lost, r.Counters.Dropped)
	}
	failed := false
	for _, c := range r.Checks {
		if c.Name == "delivered = expected" {
			failed = !c.Pass
		} else if !c.Pass {
			t.Errorf("check %q failed too: %s", c.Name, c.Value)
		}
	}
	if !failed {
		t.Error("the delivery check did not fail")
	}
}

func TestUnreachableBrokerFails(t *testing.T) {
	o := quick("127.0.0.1:1") // nothing listens on port 1
	o.ConnectTimeout = 2 * time.Second
	r := runScenario(t, Scenario{Name: Conn, Clients: 5}, o)
	if r.Pass {
		t.Fatal("a run with no connections passed")
	}
	if r.Counters.ConnectErrors != 5 || r.Errors["connect: refused"] != 5 {
		t.Errorf("connect errors %d by cause %v, want 5 refused", r.Counters.ConnectErrors, r.Errors)
	}
}

func TestProcsSplitsClientsAndMergesExactly(t *testing.T) {
	target := mosquitto.Start(t)
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	o := quick(target)
	o.QoS = 1
	o.Procs = 2
	o.WorkerCommand = []string{"/usr/bin/env", "HERALD_BENCH_WORKER=1", exe}
	r := runScenario(t, Scenario{Name: Fanout, Subscribers: 30, Publishers: 2}, o)
	if !r.Pass {
		t.Fatal("verdict FAIL")
	}
	if r.Workers != 2 || r.Self.Processes != 2 {
		t.Errorf("workers %d, processes %d; want 2", r.Workers, r.Self.Processes)
	}
	c := r.Counters
	if c.Expected != c.Published*30 || c.Delivered != c.Expected {
		t.Errorf("published %d expected %d delivered %d", c.Published, c.Expected, c.Delivered)
	}
	if got := r.Latency[kindDeliver].Count; got != c.Delivered {
		t.Errorf("merged delivery histogram holds %d values, want %d", got, c.Delivered)
	}
	// The latest delivery of either process falls in the last second of
	// the series with deliveries (ticks never carry one second's counts
	// into the next).
	last := 0
	for _, s := range r.Series {
		if s.Delivered > 0 {
			last = s.T
		}
	}
	if r.LastDelivery < float64(last)-0.1 || r.LastDelivery > r.Elapsed {
		t.Errorf("last delivery at %.3f s; the last second with deliveries is %d, the run ended at %.3f s", r.LastDelivery, last, r.Elapsed)
	}
	if got := r.Latency[kindConnack].Count; got != int64(32) {
		t.Errorf("merged CONNACK histogram holds %d values, want 32", got)
	}
}

func TestKeepalivePingsHoldIdleClients(t *testing.T) {
	target := mosquitto.Start(t)
	o := quick(target)
	o.KeepAlive = 1 // Mosquitto drops a client silent for 1.5 s (checked every few seconds)
	o.Duration = 6 * time.Second
	r := runScenario(t, Scenario{Name: Conn, Clients: 20}, o)
	if !r.Pass || r.Counters.Disconnects != 0 {
		t.Fatalf("pass %v, disconnects %d, errors %v", r.Pass, r.Counters.Disconnects, r.Errors)
	}
}
