package report

import (
	"encoding/json"
	"html/template"
	"io"
	"math"

	"github.com/herald-mqtt/herald/bench"
)

// WriteHTML writes a self-contained report: verdict, tables and SVG
// charts of connections, throughput and latency over time. It loads no
// external asset, so it opens offline.
func WriteHTML(w io.Writer, r *bench.Result) error {
	xs := make([]float64, len(r.Series))
	col := func(f func(s bench.Second) float64) []float64 {
		ys := make([]float64, len(r.Series))
		for i, s := range r.Series {
			ys[i] = f(s)
		}
		return ys
	}
	lat := func(f func(s bench.Second) float64, count func(s bench.Second) int64) []float64 {
		return col(func(s bench.Second) float64 {
			if count(s) == 0 {
				return math.NaN()
			}
			return f(s)
		})
	}
	for i, s := range r.Series {
		xs[i] = float64(s.T)
	}
	phase := band{r.PublishFrom, r.PublishTo}
	deliverCount := func(s bench.Second) int64 { return s.Deliver.Count }
	connackCount := func(s bench.Second) int64 { return s.Connack.Count }
	charts := []template.HTML{
		template.HTML(lineChart("Open connections", "connections", xs, []line{
			{"connections", "#1f77b4", col(func(s bench.Second) float64 { return float64(s.Connections) })},
		}, phase)),
		template.HTML(lineChart("Throughput", "per second", xs, []line{
			{"published/s", "#ff7f0e", col(func(s bench.Second) float64 { return float64(s.Published) })},
			{"delivered/s", "#2ca02c", col(func(s bench.Second) float64 { return float64(s.Delivered) })},
			{"connects/s", "#9467bd", col(func(s bench.Second) float64 { return float64(s.ConnectAttempts - s.ConnectErrors) })},
		}, phase)),
		template.HTML(lineChart("Delivery latency, from when each message was due", "ms", xs, []line{
			{"p50", "#2ca02c", lat(func(s bench.Second) float64 { return s.Deliver.P50 }, deliverCount)},
			{"p90", "#bcbd22", lat(func(s bench.Second) float64 { return s.Deliver.P90 }, deliverCount)},
			{"p99", "#ff7f0e", lat(func(s bench.Second) float64 { return s.Deliver.P99 }, deliverCount)},
			{"max", "#d62728", lat(func(s bench.Second) float64 { return s.Deliver.Max }, deliverCount)},
		}, phase)),
		template.HTML(lineChart("CONNACK latency", "ms", xs, []line{
			{"p50", "#2ca02c", lat(func(s bench.Second) float64 { return s.Connack.P50 }, connackCount)},
			{"p99", "#ff7f0e", lat(func(s bench.Second) float64 { return s.Connack.P99 }, connackCount)},
			{"max", "#d62728", lat(func(s bench.Second) float64 { return s.Connack.Max }, connackCount)},
		}, phase)),
		template.HTML(lineChart("Bench process cost", "cores / GiB", xs, []line{
			{"CPU cores", "#8c564b", col(func(s bench.Second) float64 { return s.CPU })},
			{"RSS GiB", "#7f7f7f", col(func(s bench.Second) float64 { return float64(s.RSS) / (1 << 30) })},
		}, phase)),
	}
	type latRow struct {
		Label string
		S     any
	}
	var lats []latRow
	for _, row := range latencyRows {
		if s, ok := r.Latency[row.key]; ok && s.Count > 0 {
			lats = append(lats, latRow{row.label, s})
		}
	}
	cfg, err := json.MarshalIndent(struct {
		Scenario bench.Scenario `json:"scenario"`
		Options  bench.Options  `json:"options"`
	}{r.Scenario, r.Options}, "", "  ")
	if err != nil {
		return err
	}
	return page.Execute(w, map[string]any{
		"R": r, "Verdict": Verdict(r), "Describe": Describe(r), "Charts": charts,
		"Latency": lats, "Worst": worstPublishers(r, 20), "Config": string(cfg),
		"Errors": r.Errors, "ErrorKeys": sortedKeys(r.Errors),
	})
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"f2":  f2,
	"mib": mib,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>herald bench {{.R.Scenario.Name}} — {{.Verdict}}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:800px;color:#222}
h1{font-size:22px;margin:0 0 4px}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.PASS{background:#2a8a3a}.FAIL{background:#c62828}
table{border-collapse:collapse;margin:8px 0 18px}
td,th{padding:3px 10px;border-bottom:1px solid #e4e4e4;text-align:right}
td:first-child,th:first-child{text-align:left}
tr.fail td{color:#c62828;font-weight:600}
svg{display:block;margin:10px 0 18px;max-width:100%;height:auto}
svg .title{font-size:14px;font-weight:600;fill:#222}
svg .axis,svg .legend{font-size:11px;fill:#555}
svg .grid{stroke:#e8e8e8}
svg .phase{fill:#f3f6fb}
pre{background:#f6f6f6;padding:10px;overflow:auto;font-size:12px}
.muted{color:#666}
</style></head><body>
<h1>herald bench {{.R.Scenario.Name}} <span class="badge {{.Verdict}}">{{.Verdict}}</span></h1>
<div class="muted">{{.Describe}}<br>started {{.R.Started.Format "2006-01-02 15:04:05 MST"}}, {{printf "%.1f" .R.Elapsed}} s, {{.R.Self.Processes}} worker process(es){{if .R.Failure}}<br><b>{{.R.Failure}}</b>{{end}}</div>

<h2>Verdict</h2>
<table><tr><th>check</th><th>result</th><th>measured</th><th>required</th></tr>
{{range .R.Checks}}<tr{{if and (not .Pass) (not .Reported)}} class="fail"{{end}}><td>{{.Name}}</td><td>{{if .Reported}}info{{else if .Pass}}pass{{else}}FAIL{{end}}</td><td>{{.Value}}</td><td>{{.Threshold}}</td></tr>
{{end}}</table>

<h2>Counts</h2>
{{with .R.Counters}}<table>
<tr><td>clients planned / connected / peak open</td><td>{{.Clients}} / {{.Connected}} / {{.PeakConnections}}</td></tr>
<tr><td>connect attempts / errors / lost</td><td>{{.ConnectAttempts}} / {{.ConnectErrors}} / {{.Disconnects}}</td></tr>
<tr><td>churn cycles</td><td>{{.ChurnCycles}}</td></tr>
<tr><td>subscriptions / granted / refused</td><td>{{.Subscriptions}} / {{.SubAcked}} / {{.SubFailed}}</td></tr>
<tr><td>scheduled by the rate / published</td><td>{{.Scheduled}} / {{.Published}}</td></tr>
<tr><td>published / acknowledged / refused / errors</td><td>{{.Published}} / {{.PubAcked}} / {{.PubRefused}} / {{.PublishErrors}}</td></tr>
<tr><td>expected / delivered</td><td>{{.Expected}} / {{.Delivered}}</td></tr>
<tr><td>lost / cut off (still arriving when the drain ended) / duplicates / out of order</td><td>{{.Lost}} / {{.CutOff}} / {{.Duplicates}} / {{.OutOfOrder}}</td></tr>
</table>{{end}}

<h2>Latency (ms)</h2>
<table><tr><th></th><th>count</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
{{range .Latency}}<tr><td>{{.Label}}</td><td>{{.S.Count}}</td><td>{{f2 .S.Mean}}</td><td>{{f2 .S.P50}}</td><td>{{f2 .S.P90}}</td><td>{{f2 .S.P99}}</td><td>{{f2 .S.P999}}</td><td>{{f2 .S.Max}}</td></tr>
{{end}}</table>

<h2>Over time</h2>
<div class="muted">Shaded: the publish (or hold) phase.</div>
{{range .Charts}}{{.}}
{{end}}

{{if .ErrorKeys}}<h2>Errors by cause</h2><table>{{range .ErrorKeys}}<tr><td>{{.}}</td><td>{{index $.Errors .}}</td></tr>{{end}}</table>{{end}}
{{if .Worst}}<h2>Publishers with losses</h2>
<table><tr><th>publisher</th><th>published</th><th>expected</th><th>delivered</th><th>lost</th><th>duplicates</th><th>out of order</th></tr>
{{range .Worst}}<tr><td>{{.ID}}</td><td>{{.Published}}</td><td>{{.Expected}}</td><td>{{.Delivered}}</td><td>{{.Lost}}</td><td>{{.Duplicates}}</td><td>{{.OutOfOrder}}</td></tr>{{end}}</table>{{end}}

<h2>The bench itself</h2>
{{with .R.Self}}<table>
<tr><td>processes</td><td>{{.Processes}}</td></tr>
<tr><td>peak resident memory</td><td>{{mib .PeakRSS}}</td></tr>
<tr><td>memory per client (RSS growth / Go heap+stacks)</td><td>{{printf "%.0f" .BytesPerClient}} B / {{printf "%.0f" .GoPerClient}} B</td></tr>
<tr><td>CPU during the phase (cores / per 10k clients)</td><td>{{printf "%.3f" .Cores}} / {{printf "%.3f" .CoresPer10k}}</td></tr>
<tr><td>CPU seconds, whole run</td><td>{{printf "%.2f" .CPUSeconds}}</td></tr>
</table>{{end}}

<details><summary>Configuration</summary><pre>{{.Config}}</pre></details>
</body></html>
`))
