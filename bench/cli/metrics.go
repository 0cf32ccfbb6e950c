package cli

import (
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/herald-mqtt/herald/bench"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics serves the run's live numbers in the Prometheus text format, so
// that a dashboard can watch a long test. Values are those of the last
// merged second.
type metrics struct {
	addr string
	srv  *http.Server
	mu   sync.Mutex
	sec  bench.Second
	tot  bench.Counters
}

func serveMetrics(addr string) (*metrics, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &metrics{addr: ln.Addr().String()}
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "herald_bench_" + name, Help: help}, m.read(f)))
	}
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "herald_bench_" + name, Help: help}, m.read(f)))
	}
	gauge("connections", "Open client connections.", func() float64 { return float64(m.sec.Connections) })
	gauge("seconds", "Seconds since the run began.", func() float64 { return float64(m.sec.T) })
	counter("connect_attempts_total", "Connection attempts.", func() float64 { return float64(m.tot.ConnectAttempts) })
	counter("connect_errors_total", "Failed connection attempts.", func() float64 { return float64(m.tot.ConnectErrors) })
	counter("disconnects_total", "Connections lost during the run.", func() float64 { return float64(m.tot.Disconnects) })
	counter("published_total", "Messages published.", func() float64 { return float64(m.tot.Published) })
	counter("expected_total", "Deliveries the published messages call for.", func() float64 { return float64(m.tot.Expected) })
	counter("delivered_total", "Deliveries received, duplicates included.", func() float64 { return float64(m.tot.Delivered) })
	counter("duplicates_total", "Duplicate deliveries.", func() float64 { return float64(m.tot.Duplicates) })
	counter("out_of_order_total", "Deliveries out of publish order.", func() float64 { return float64(m.tot.OutOfOrder) })
	ms := func(v float64) float64 { return v / 1000 }
	gauge("deliver_latency_p50_seconds", "Publish-to-deliver latency p50 in the last second.", func() float64 { return ms(m.sec.Deliver.P50) })
	gauge("deliver_latency_p99_seconds", "Publish-to-deliver latency p99 in the last second.", func() float64 { return ms(m.sec.Deliver.P99) })
	gauge("deliver_latency_max_seconds", "Publish-to-deliver latency max in the last second.", func() float64 { return ms(m.sec.Deliver.Max) })
	gauge("connack_latency_p99_seconds", "CONNACK latency p99 in the last second.", func() float64 { return ms(m.sec.Connack.P99) })
	gauge("cpu_cores", "Cores the bench used in the last second.", func() float64 { return m.sec.CPU })
	gauge("rss_bytes", "Resident memory of the bench processes.", func() float64 { return float64(m.sec.RSS) })

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go m.srv.Serve(ln)
	return m, nil
}

func (m *metrics) read(f func() float64) func() float64 {
	return func() float64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return f()
	}
}

func (m *metrics) update(s bench.Second, c bench.Counters) {
	m.mu.Lock()
	m.sec, m.tot = s, c
	m.mu.Unlock()
}

func (m *metrics) close() { m.srv.Close() }
