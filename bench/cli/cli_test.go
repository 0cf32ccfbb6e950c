package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/bench"
	"github.com/herald-mqtt/herald/bench/internal/mosquitto"
)

func TestFanoutCommandWritesReportsAndExitsZero(t *testing.T) {
	target := mosquitto.Start(t)
	dir := t.TempDir()
	jsonPath, htmlPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "out.html")
	var stdout, stderr bytes.Buffer
	// The example, scaled down.
	status := Main(strings.Fields("fanout --target "+target+" --subscribers 20 --count 10 --rate 20 --qos 0"+
		" --max-connack-mean 2s --max-latency-mean 2s --json "+jsonPath+" --html "+htmlPath), &stdout, &stderr)
	if status != ExitPass {
		t.Fatalf("exit %d\n%s\n%s", status, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "verdict: PASS") {
		t.Errorf("summary lacks the verdict:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "\r") {
		t.Error("progress line written to a non-terminal")
	}
	var r bench.Result
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Counters.Published != 10 || r.Counters.Expected != 200 || r.Counters.Delivered != 200 || len(r.Series) == 0 {
		t.Errorf("JSON counters %+v, %d seconds", r.Counters, len(r.Series))
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	page := string(h)
	if !strings.Contains(page, "<svg") || !strings.Contains(page, "PASS") {
		t.Error("HTML report lacks charts or verdict")
	}
	for _, external := range []string{"<script src", "<link", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), external) {
			t.Errorf("HTML report refers to an external asset (%q)", external)
		}
	}
}

func TestThresholdFlagMakesTheRunFailWithStatusOne(t *testing.T) {
	target := mosquitto.Start(t)
	var stdout bytes.Buffer
	status := Main(strings.Fields("conn --target "+target+" --clients 5 --duration 500ms --max-connack-mean 1ns"), &stdout, io.Discard)
	if status != ExitFail || !strings.Contains(stdout.String(), "verdict: FAIL") {
		t.Fatalf("exit %d\n%s", status, stdout.String())
	}
}

func TestBadUsageExitsTwo(t *testing.T) {
	for _, args := range []string{"", "nosuch", "fanout --qos 3", "fanout --mqtt 4", "conn --size 10", "fanout stray", "worker",
		"conn --procs 3 --connect-window 2"} {
		if status := Main(strings.Fields(args), io.Discard, io.Discard); status != ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, status, ExitUsage)
		}
	}
}

func TestMetricsEndpointServesPrometheusText(t *testing.T) {
	m, err := serveMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	sec := bench.Second{T: 3, Connections: 42}
	sec.Deliver.P99 = 12.5
	m.update(sec, bench.Counters{Published: 7, Delivered: 70})
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + m.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"herald_bench_connections 42", "herald_bench_published_total 7",
		"herald_bench_delivered_total 70", "herald_bench_deliver_latency_p99_seconds 0.0125"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestConnSubscribeMakesEveryClientSubscribeOnce(t *testing.T) {
	target := mosquitto.Start(t)
	jsonPath := filepath.Join(t.TempDir(), "out.json")
	var stdout, stderr bytes.Buffer
	status := Main(strings.Fields("conn --subscribe --qos 1 --target "+target+" --clients 12 --duration 300ms"+
		" --max-connack-mean 2s --json "+jsonPath), &stdout, &stderr)
	if status != ExitPass {
		t.Fatalf("exit %d\n%s\n%s", status, stdout.String(), stderr.String())
	}
	var r bench.Result
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Scenario.Subscribe || r.Counters.Subscriptions != 12 || r.Counters.SubAcked != 12 || r.Latency["suback"].Count != 12 {
		t.Errorf("subscribe %v, subscriptions %d, granted %d, SUBACK latencies %d; want true, 12, 12, 12",
			r.Scenario.Subscribe, r.Counters.Subscriptions, r.Counters.SubAcked, r.Latency["suback"].Count)
	}
}
