// Package report renders a herald bench Result for people and machines:
// a summary table for the terminal, JSON with everything, and a
// self-contained HTML page with charts over time.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/herald-mqtt/herald/bench"
)

// latencyRows is the order latency kinds are shown in, with their labels.
var latencyRows = []struct{ key, label string }{
	{"connack", "CONNACK"},
	{"suback", "SUBACK"},
	{"deliver", "scheduled→deliver"}, // from when the message was due by the rate
	{"puback", "PUBACK (QoS 1)"},
	{"pubcomp", "PUBCOMP (QoS 2)"},
}

// Verdict returns "PASS" or "FAIL".
func Verdict(r *bench.Result) string {
	if r.Pass {
		return "PASS"
	}
	return "FAIL"
}

// Describe is a one-line description of the run's configuration.
func Describe(r *bench.Result) string {
	s, o := r.Scenario, r.Options
	var parts []string
	switch s.Name {
	case bench.Conn:
		parts = append(parts, fmt.Sprintf("%d clients", s.Clients))
	case bench.Chat:
		parts = append(parts, fmt.Sprintf("%d members in rooms of %d", s.Subscribers, s.RoomSize))
	default:
		parts = append(parts, fmt.Sprintf("%d subscribers, %d publishers", s.Subscribers, s.Publishers))
		if s.Shared {
			parts = append(parts, "shared group")
		}
	}
	if s.Name == bench.Churn {
		parts = append(parts, fmt.Sprintf("churn %g/s", s.ChurnRate))
	}
	if s.Name != bench.Conn {
		parts = append(parts, fmt.Sprintf("QoS %d, %d B at %g/s", o.QoS, o.Size, o.Rate))
		if o.Count > 0 {
			parts = append(parts, fmt.Sprintf("count %d", o.Count))
		}
	}
	if o.Duration > 0 {
		parts = append(parts, fmt.Sprintf("for %v", o.Duration))
	}
	parts = append(parts, fmt.Sprintf("MQTT %s", map[int]string{3: "3.1.1", 5: "5"}[o.MQTT]))
	parts = append(parts, strings.Join(o.Targets, ","))
	return s.Name + ": " + strings.Join(parts, ", ")
}

// WriteTable writes the final summary for a terminal.
func WriteTable(w io.Writer, r *bench.Result) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	c := r.Counters
	p("%s\n", Describe(r))
	p("%.1f s, %d worker process(es), verdict %s\n\n", r.Elapsed, r.Self.Processes, Verdict(r))

	p("connections\tplanned %d\tconnected %d\tpeak %d\terrors %d\tlost %d\tchurn cycles %d\n",
		c.Clients, c.Connected, c.PeakConnections, c.ConnectErrors, c.Disconnects, c.ChurnCycles)
	if c.Subscriptions > 0 {
		p("subscriptions\t%d\tgranted %d\trefused %d\n", c.Subscriptions, c.SubAcked, c.SubFailed)
	}
	if c.Published > 0 || c.Expected > 0 {
		p("messages\tscheduled %d\tpublished %d\texpected %d\tdelivered %d\tlost %d\tduplicates %d\tout of order %d\n",
			c.Scheduled, c.Published, c.Expected, c.Delivered, c.Lost, c.Duplicates, c.OutOfOrder)
		if c.CutOff > 0 {
			p("\tcut off %d\t(still arriving when --drain ended: not lost)\n", c.CutOff)
		}
		if c.EarlyDeliveries > 0 {
			p("\tarrived before due %d\t(clocks out of step across machines; latency recorded as 1 µs)\n", c.EarlyDeliveries)
		}
		if c.PublishErrors+c.PubRefused+c.Dropped+c.Foreign > 0 {
			p("\tpublish errors %d\trefused %d\tdropped (test) %d\tforeign %d\n", c.PublishErrors, c.PubRefused, c.Dropped, c.Foreign)
		}
		if d := r.PublishTo - r.PublishFrom; d > 0 {
			// Deliveries run to the last one (the drain included), as in
			// compare.sh; duplicates are not throughput.
			dd := max(d, r.LastDelivery-r.PublishFrom)
			p("throughput\t%.0f published/s\t%.0f delivered/s\n", float64(c.Published)/d, float64(c.Delivered-c.Duplicates)/dd)
		}
	}
	p("\nlatency (ms)\tcount\tmean\tp50\tp90\tp99\tp99.9\tmax\n")
	for _, row := range latencyRows {
		s, ok := r.Latency[row.key]
		if !ok || s.Count == 0 {
			continue
		}
		p("%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", row.label, s.Count, f2(s.Mean), f2(s.P50), f2(s.P90), f2(s.P99), f2(s.P999), f2(s.Max))
	}
	if len(r.Errors) > 0 {
		p("\nerrors\n")
		for _, k := range sortedKeys(r.Errors) {
			p("  %s\t%d\n", k, r.Errors[k])
		}
	}
	if worst := worstPublishers(r, 5); len(worst) > 0 {
		p("\npublishers with losses\tpublished\texpected\tdelivered\tlost\tduplicates\tout of order\n")
		for _, ps := range worst {
			p("  publisher %d\t%d\t%d\t%d\t%d\t%d\t%d\n", ps.ID, ps.Published, ps.Expected, ps.Delivered, ps.Lost, ps.Duplicates, ps.OutOfOrder)
		}
	}
	sc := r.Self
	p("\nbench itself\t%d process(es)\tpeak RSS %s\t%.0f B/client (RSS)\t%.0f B/client (Go heap+stacks)\t%.3f cores\t%.3f cores per 10k clients\n",
		sc.Processes, mib(sc.PeakRSS), sc.BytesPerClient, sc.GoPerClient, sc.Cores, sc.CoresPer10k)

	p("\ncheck\tresult\tmeasured\trequired\n")
	for _, ch := range r.Checks {
		res := "pass"
		switch {
		case ch.Reported:
			res = "info"
		case !ch.Pass:
			res = "FAIL"
		}
		p("%s\t%s\t%s\t%s\n", ch.Name, res, ch.Value, ch.Threshold)
	}
	p("\nverdict: %s\n", Verdict(r))
	return tw.Flush()
}

// WriteJSON writes the whole Result as indented JSON.
func WriteJSON(w io.Writer, r *bench.Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// worstPublishers returns up to n publishers with losses, duplicates or
// reordering, worst first.
func worstPublishers(r *bench.Result, n int) []bench.PublisherStats {
	var bad []bench.PublisherStats
	for _, p := range r.Publishers {
		if p.Lost+p.Duplicates+p.OutOfOrder > 0 {
			bad = append(bad, p)
		}
	}
	sort.Slice(bad, func(i, j int) bool {
		return bad[i].Lost+bad[i].Duplicates+bad[i].OutOfOrder > bad[j].Lost+bad[j].Duplicates+bad[j].OutOfOrder
	})
	if len(bad) > n {
		bad = bad[:n]
	}
	return bad
}

// ProgressLine is the live one-line status for second s.
func ProgressLine(s bench.Second, total bench.Counters) string {
	return fmt.Sprintf("%4ds  conns %-7d  +conn %-5d  pub %-7d/s  deliv %-8d/s  lat p50 %s p99 %s ms  errors %d",
		s.T, s.Connections, s.ConnectAttempts-s.ConnectErrors, s.Published, s.Delivered,
		f2(s.Deliver.P50), f2(s.Deliver.P99), total.ConnectErrors+total.Disconnects+total.PublishErrors)
}
