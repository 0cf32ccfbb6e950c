// Package cli is the command line of herald bench: flag parsing, the
// live progress line, the reports and the exit status. cmd/herald hands
// it the arguments after "bench".
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/herald-mqtt/herald/bench"
	"github.com/herald-mqtt/herald/bench/report"
)

// Exit statuses.
const (
	ExitPass  = 0
	ExitFail  = 1
	ExitUsage = 2
)

const usage = `usage: herald bench SCENARIO [flags]
       herald bench worker (--stdio | --listen ADDR)

Scenarios:
  conn     open --clients connections at --connect-rate and hold them for --duration
  fanout   --publishers publish to one topic that --subscribers all receive
  fanin    --publishers publish to their own topics; --subscribers consume
           all of them (one $share group with --shared)
  unicast  --subscribers users each on their own topic; --publishers address
           them in turn
  churn    --subscribers receive from --publishers while clients connect and
           disconnect at --churn-rate per second
  chat     --subscribers members in rooms of --room-size publish to their room
           at --rate; every --private-every-th message goes to a room mate's
           private topic

Exit status 0 when every check passes, 1 when one fails, 2 on bad usage.
Run "herald bench SCENARIO -h" for the flags.
`

// Main runs `herald bench` with args (the words after "bench") and
// returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitPass
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if args[0] == "worker" {
		return worker(ctx, args[1:], stderr)
	}
	return scenario(ctx, args[0], args[1:], stdout, stderr)
}

// worker is `herald bench worker`: a load worker for a director, on this
// process's stdin/stdout (started by --procs) or on a TCP port (remote).
func worker(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("herald bench worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	stdio := fs.Bool("stdio", false, "serve one director on stdin/stdout")
	listen := fs.String("listen", "", "serve directors on this TCP address, one at a time")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	switch {
	case *stdio:
		if err := bench.ServeWorker(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(stderr, "herald bench worker: %v\n", err)
			return ExitFail
		}
		return ExitPass
	case *listen != "":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintf(stderr, "herald bench worker: %v\n", err)
			return ExitFail
		}
		fmt.Fprintf(stderr, "herald bench worker listening on %s\n", ln.Addr())
		logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
		if err := bench.ListenWorkers(ctx, ln, logf); err != nil {
			fmt.Fprintf(stderr, "herald bench worker: %v\n", err)
			return ExitFail
		}
		return ExitPass
	}
	fmt.Fprintln(stderr, "herald bench worker: want --stdio or --listen ADDR")
	return ExitUsage
}

// outputs are the flags that say where results go.
type outputs struct {
	json, html, metrics string
	quiet               bool
}

func scenario(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	known := false
	for _, n := range bench.Scenarios {
		known = known || n == name
	}
	if !known {
		fmt.Fprintf(stderr, "herald bench: unknown scenario %q\n\n%s", name, usage)
		return ExitUsage
	}
	s := bench.Scenario{Name: name}
	o := bench.DefaultOptions()
	var out outputs
	fs := newFlags(name, &s, &o, &out)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitPass
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "herald bench %s: unexpected argument %q\n", name, fs.Arg(0))
		return ExitUsage
	}

	var progress func(bench.Second, bench.Counters)
	if isTerminal(stdout) && !out.quiet {
		fmt.Fprintf(stdout, "herald bench %s against %s\n", name, strings.Join(o.Targets, ","))
		progress = func(sec bench.Second, c bench.Counters) {
			fmt.Fprintf(stdout, "\r\033[K%s", report.ProgressLine(sec, c))
		}
	}
	var m *metrics
	if out.metrics != "" {
		var err error
		if m, err = serveMetrics(out.metrics); err != nil {
			fmt.Fprintf(stderr, "herald bench: --metrics-listen: %v\n", err)
			return ExitUsage
		}
		defer m.close()
		fmt.Fprintf(stderr, "metrics on http://%s/metrics\n", m.addr)
	}
	o.OnSecond = func(sec bench.Second, c bench.Counters) {
		if progress != nil {
			progress(sec, c)
		}
		if m != nil {
			m.update(sec, c)
		}
	}

	res, err := bench.Run(ctx, s, o)
	if progress != nil {
		fmt.Fprintln(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "herald bench %s: %v\n", name, err)
		return ExitUsage
	}
	if err := report.WriteTable(stdout, res); err != nil {
		fmt.Fprintf(stderr, "herald bench: %v\n", err)
	}
	status := ExitPass
	if !res.Pass {
		status = ExitFail
	}
	for _, f := range []struct {
		path  string
		write func(io.Writer, *bench.Result) error
	}{{out.json, report.WriteJSON}, {out.html, report.WriteHTML}} {
		if f.path == "" {
			continue
		}
		if err := writeFile(f.path, res, f.write); err != nil {
			fmt.Fprintf(stderr, "herald bench: %v\n", err)
			status = ExitFail
		}
	}
	return status
}

func writeFile(path string, r *bench.Result, write func(io.Writer, *bench.Result) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// isTerminal reports whether w is a character device (a terminal), where
// the live progress line belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newFlags declares the flags of one scenario: the common ones and those
// of its own knobs.
func newFlags(name string, s *bench.Scenario, o *bench.Options, out *outputs) *flag.FlagSet {
	fs := flag.NewFlagSet("herald bench "+name, flag.ContinueOnError)
	list := func(dst *[]string) func(string) error {
		return func(v string) error {
			*dst = nil
			for _, part := range strings.Split(v, ",") {
				if part = strings.TrimSpace(part); part != "" {
					*dst = append(*dst, part)
				}
			}
			return nil
		}
	}
	fs.Func("target", "broker address(es), comma-separated, used round-robin: host:port, tcp://, tls://, ws://host:port/path, wss:// (default 127.0.0.1:1883)", list(&o.Targets))
	fs.BoolVar(&o.TLS, "tls", false, "use TLS for plain host:port targets (and wss for ws://)")
	fs.BoolVar(&o.Insecure, "insecure", false, "do not verify the broker's TLS certificate")
	fs.IntVar(&o.MQTT, "mqtt", o.MQTT, "MQTT version: 3 (3.1.1) or 5")
	fs.Func("qos", "QoS of publishes and subscriptions: 0, 1 or 2 (default 0)", func(v string) error {
		switch v {
		case "0", "1", "2":
			o.QoS = v[0] - '0'
			return nil
		}
		return errors.New("want 0, 1 or 2")
	})
	fs.StringVar(&o.Username, "username", "", "MQTT username")
	fs.StringVar(&o.Password, "password", "", "MQTT password")
	fs.StringVar(&o.ClientIDs, "client-prefix", "", "client id prefix (default hb<run id>-)")
	fs.StringVar(&o.Topics, "topic-prefix", "", "topic prefix (default herald-bench/<run id>)")
	fs.IntVar(&o.KeepAlive, "keepalive", o.KeepAlive, "keepalive in seconds (0 disables)")
	fs.Float64Var(&o.ConnectRate, "connect-rate", o.ConnectRate, "new connections per second (ramp), all workers together")
	fs.IntVar(&o.ConnectWindow, "connect-window", 0, "most connection attempts between dial and CONNACK at once, all workers together, at least one per worker process (0 = no bound)")
	fs.DurationVar(&o.ConnectTimeout, "connect-timeout", o.ConnectTimeout, "bound on one connection: dial to CONNACK")
	fs.DurationVar(&o.Duration, "duration", 0, "publish (conn: hold) phase; default 10s unless --count is given")
	fs.Func("source-ips", "bind client sockets round-robin over these source addresses: 127.0.0.2-127.0.0.40,127.0.1.1", list(&o.SourceIPs))
	fs.StringVar(&o.ReadLoop, "read-loop", bench.ReadLoopEpoll, "how clients read: epoll (a few event loops per process; TLS and WebSocket clients get a goroutine each) or goroutine (one per client)")
	fs.IntVar(&o.Procs, "procs", o.Procs, "worker processes on this machine, each taking a share of the clients")
	fs.Func("workers", "remote workers host:port,... (started with `herald bench worker --listen`)", list(&o.Workers))
	fs.DurationVar(&o.Drain, "drain", o.Drain, "longest wait for deliveries after publishing ends; what has not arrived then is lost, or cut off (not lost) if deliveries were still arriving in its last second")
	fs.DurationVar(&o.Timeout, "timeout", 0, "hard bound on the whole run (default: phases + 1m)")
	fs.StringVar(&out.json, "json", "", "write the full result as JSON to this file")
	fs.StringVar(&out.html, "html", "", "write a self-contained HTML report to this file")
	fs.StringVar(&out.metrics, "metrics-listen", "", "serve Prometheus metrics on this address while running (e.g. 127.0.0.1:9464)")
	fs.BoolVar(&out.quiet, "quiet", false, "no progress line even on a terminal")

	th := &o.Thresholds
	fs.IntVar(&th.MinConnections, "min-connections", 0, "check: lasting clients that must connect (default all)")
	fs.Int64Var(&th.MaxConnectErrors, "max-connect-errors", 0, "check: failed connection attempts allowed")
	fs.Int64Var(&th.MaxDisconnects, "max-disconnects", 0, "check: connections lost during the run allowed")
	fs.DurationVar(&th.MaxConnackMean, "max-connack-mean", th.MaxConnackMean, "check: mean CONNACK latency")
	fs.DurationVar(&th.MaxLatencyMean, "max-latency-mean", th.MaxLatencyMean, "check: mean delivery latency, measured from when each message was due by --rate")
	fs.Float64Var(&th.MaxLatencyGrowth, "max-latency-growth", th.MaxLatencyGrowth, "check: latency is rising if the last third's mean exceeds the first third's by this factor (0 disables)...")
	fs.DurationVar(&th.LatencyGrowthFloor, "latency-growth-floor", th.LatencyGrowthFloor, "...and by more than this")
	fs.Float64Var(&th.MinRateKept, "min-rate-kept", th.MinRateKept, "check: share of the messages due by --rate that the publishers must send; less means the broker held them back (0 disables)")
	fs.Float64Var(&th.MaxLossQoS0, "max-loss-qos0", th.MaxLossQoS0, "check: QoS 0 loss allowed in percent (negative: report only)")

	if name != bench.Conn {
		fs.IntVar(&o.Size, "size", o.Size, "payload bytes (at least 24, the bench header)")
		fs.Float64Var(&o.Rate, "rate", o.Rate, "messages per second per publisher")
		fs.IntVar(&o.Count, "count", 0, "messages per publisher (with no --duration, the run lasts until sent)")
		fs.IntVar(&o.Inflight, "inflight", o.Inflight, "QoS 1/2 publishes in flight per publisher")
	}
	switch name {
	case bench.Conn:
		fs.IntVar(&s.Clients, "clients", 1000, "connections to open")
		fs.BoolVar(&s.Subscribe, "subscribe", false, "each client subscribes to its own topic (P/conn/i) at --qos before holding")
	case bench.Fanout:
		fs.IntVar(&s.Subscribers, "subscribers", 1000, "subscribers of the topic")
		fs.IntVar(&s.Publishers, "publishers", 1, "publishers to the topic")
	case bench.Fanin:
		fs.IntVar(&s.Subscribers, "subscribers", 1, "consumers of all publishers' topics")
		fs.IntVar(&s.Publishers, "publishers", 100, "publishers, each to its own topic")
		fs.BoolVar(&s.Shared, "shared", false, "consumers form one shared subscription group ($share/herald-bench/...)")
	case bench.Unicast:
		fs.IntVar(&s.Subscribers, "subscribers", 1000, "users, each subscribed to its own topic")
		fs.IntVar(&s.Publishers, "publishers", 1, "publishers addressing users in turn")
	case bench.Churn:
		fs.IntVar(&s.Subscribers, "subscribers", 100, "lasting subscribers")
		fs.IntVar(&s.Publishers, "publishers", 1, "lasting publishers")
		fs.Float64Var(&s.ChurnRate, "churn-rate", 100, "connect+disconnect cycles per second")
	case bench.Chat:
		fs.IntVar(&s.Subscribers, "subscribers", 100, "members")
		fs.IntVar(&s.RoomSize, "room-size", 10, "members per room")
		fs.IntVar(&s.PrivateEvery, "private-every", 5, "every n-th message goes to a room mate's private topic (negative: none)")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: herald bench %s [flags]\n\n", name)
		fs.PrintDefaults()
	}
	return fs
}
