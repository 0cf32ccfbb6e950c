package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"
)

// Run executes scenario s with options o and returns what it measured,
// with the verdict in Result.Pass. It returns an error only when the run
// cannot start (invalid options, a worker that cannot be reached); a run
// that starts and goes wrong is a Result that fails.
//
// Every run is bounded: the connect phase by ConnectTimeout, publishing
// by Count or Duration, the drain by Drain, and the whole by Timeout
// (default: the sum of those plus a minute).
func Run(ctx context.Context, s Scenario, o Options) (*Result, error) {
	s = s.Defaults()
	if err := validate(s, &o); err != nil {
		return nil, err
	}
	runID := newRunID()
	if o.ClientIDs == "" {
		o.ClientIDs = "hb" + runID + "-"
	}
	if o.Topics == "" {
		o.Topics = "herald-bench/" + runID
	}
	p := newPlan(s, o)
	if o.Timeout <= 0 {
		connectSpan := time.Duration(float64(p.total) / o.ConnectRate * float64(time.Second))
		if w := o.ConnectWindow; w > 0 {
			// Rounds of a window; allow a second each (a dropped SYN
			// is retransmitted after one).
			connectSpan += time.Duration(p.total/w+1) * time.Second
		}
		o.Timeout = connectSpan + 2*o.ConnectTimeout + phaseLength(o) + o.Drain + time.Minute
	}
	links, err := startWorkers(ctx, o)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, l := range links {
			l.close()
		}
	}()

	res := &Result{Scenario: s, Options: o, Started: time.Now(), Workers: len(links)}
	if res.Options.Password != "" {
		res.Options.Password = "(hidden)"
	}
	d := &director{res: res, o: o, links: links, col: newCollector(res, len(links), o.OnSecond)}
	return d.run(ctx)
}

func newRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// link is the director's end of one worker.
type link struct {
	w     *wire
	cmd   *exec.Cmd
	close func()
}

// startWorkers starts the run's workers: remote ones, child processes, or
// one in this process.
func startWorkers(ctx context.Context, o Options) ([]*link, error) {
	var links []*link
	fail := func(err error) ([]*link, error) {
		for _, l := range links {
			l.close()
		}
		return nil, err
	}
	switch {
	case len(o.Workers) > 0:
		for _, addr := range o.Workers {
			conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return fail(fmt.Errorf("worker %s: %w", addr, err))
			}
			links = append(links, &link{w: newWire(conn, conn, conn), close: func() { conn.Close() }})
		}
	case o.Procs > 1:
		argv := o.WorkerCommand
		if len(argv) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("find own executable for --procs: %w", err)
			}
			argv = []string{exe, "bench", "worker", "--stdio"}
		}
		for i := 0; i < o.Procs; i++ {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stderr = os.Stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				return fail(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				return fail(err)
			}
			if err := cmd.Start(); err != nil {
				return fail(fmt.Errorf("start worker process: %w", err))
			}
			l := &link{w: newWire(stdout, stdin, stdin), cmd: cmd}
			l.close = func() {
				stdin.Close()
				exited := make(chan struct{})
				go func() { cmd.Wait(); close(exited) }()
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
					cmd.Process.Kill()
					<-exited
				}
			}
			links = append(links, l)
		}
	default:
		toWorker, fromDirector := io.Pipe()
		toDirector, fromWorker := io.Pipe()
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			ServeWorker(wctx, toWorker, fromWorker)
			fromWorker.Close()
		}()
		links = append(links, &link{w: newWire(toDirector, fromDirector, fromDirector), close: func() {
			fromDirector.Close()
			toDirector.Close()
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
			}
			cancel()
			<-exited
		}})
	}
	return links, nil
}

// director drives the workers through the phases and merges their reports.
type director struct {
	res   *Result
	o     Options
	links []*link
	col   *collector
	start time.Time
}

type event struct {
	w   int
	m   *message
	err error
}

func (d *director) run(ctx context.Context) (*Result, error) {
	d.start = d.res.Started
	n := len(d.links)
	events := make(chan event, 64)
	quit := make(chan struct{})
	defer close(quit)
	for i, l := range d.links {
		st := &setup{Version: protoVersion, Scenario: d.res.Scenario, Options: d.o, Shard: i, Shards: n, Start: d.start.UnixNano()}
		if err := l.w.send(&message{Type: "setup", Setup: st}); err != nil {
			return nil, fmt.Errorf("worker %d: %w", i, err)
		}
		go func() {
			for {
				m, err := l.w.recv()
				select {
				case events <- event{w: i, m: m, err: err}:
				case <-quit:
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	var (
		readyN, publishedN, doneN int
		finished                  = make([]bool, n)
		selfs                     []SelfCost
		stopSent                  bool
		stopDeadline              time.Time
		drainStart                time.Time
		drainCut                  time.Time // when Drain ended with deliveries missing
	)
	stopAll := func() {
		if stopSent {
			return
		}
		stopSent = true
		stopDeadline = time.Now().Add(30 * time.Second)
		for i, l := range d.links {
			if !finished[i] {
				l.w.send(&message{Type: "stop"})
			}
		}
	}
	fail := func(format string, args ...any) {
		if d.res.Failure == "" {
			d.res.Failure = fmt.Sprintf(format, args...)
		}
		stopAll()
	}
	timeout := time.NewTimer(d.o.Timeout)
	defer timeout.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for doneN < n {
		select {
		case ev := <-events:
			if ev.err != nil {
				if !finished[ev.w] {
					finished[ev.w] = true
					doneN++
					if !errors.Is(ev.err, io.EOF) || !stopSent {
						fail("worker %d: %v", ev.w, ev.err)
					}
				}
				continue
			}
			switch m := ev.m; m.Type {
			case "ready":
				if m.Ready != nil {
					d.res.Counters.Clients += m.Ready.Clients
					d.res.Counters.Connected += m.Ready.Connected
					d.res.Counters.Subscriptions += m.Ready.Subscriptions
				}
				if readyN++; readyN == n && !stopSent {
					d.res.PublishFrom = time.Since(d.start).Seconds()
					for _, l := range d.links {
						l.w.send(&message{Type: "start"})
					}
				}
			case "tick":
				if m.Tick != nil {
					if err := d.col.tick(ev.w, m.Tick); err != nil {
						fail("worker %d: %v", ev.w, err)
					}
				}
			case "published":
				if publishedN++; publishedN == n {
					d.res.PublishTo = time.Since(d.start).Seconds()
					drainStart = time.Now()
				}
			case "done":
				if m.Done != nil {
					selfs = append(selfs, m.Done.Self)
					d.col.done(m.Done)
				}
				if !finished[ev.w] {
					finished[ev.w] = true
					doneN++
				}
			case "error":
				fail("worker %d: %s", ev.w, m.Error)
			}
		case now := <-poll.C:
			if publishedN == n && !stopSent && (d.arrived() || now.Sub(drainStart) >= d.o.Drain) {
				if !d.arrived() {
					drainCut = now
				}
				stopAll()
			}
			if stopSent && now.After(stopDeadline) {
				fail("workers did not report after stop")
				doneN = n
			}
		case <-timeout.C:
			d.res.TimedOut = true
			stopAll()
		case <-ctx.Done():
			fail("interrupted: %v", ctx.Err())
		}
	}
	if d.res.PublishTo == 0 {
		d.res.PublishTo = time.Since(d.start).Seconds()
	}
	d.col.finish(selfs)
	d.res.Elapsed = time.Since(d.start).Seconds()
	if !drainCut.IsZero() {
		d.res.DrainCut = drainCut.Sub(d.start).Seconds()
		cutOff(d.res)
	}
	judge(d.res)
	return d.res, nil
}

// arrived says whether every expected delivery (and, at QoS 1 and 2,
// acknowledgement) arrived: the drain after publishing lasts until then,
// or until Drain passed. Duplicates do not stand in for missing
// messages. There is no "nothing arrived lately" shortcut: an overloaded
// broker may pause for seconds and still deliver.
func (d *director) arrived() bool {
	c := d.res.Counters
	acked := d.o.QoS == 0 || c.PubAcked+c.PubRefused >= c.Published
	return c.Delivered-c.Duplicates+c.Dropped >= c.Expected && acked
}

// stillArriving is how recent the last delivery must be, when Drain ends
// a run with deliveries missing, for those to count as cut off rather
// than lost.
const stillArriving = time.Second

// cutOff reclassifies what r did not deliver when its drain was cut
// short by Drain while deliveries were still arriving (the latest within
// stillArriving of the cut, or after it): the broker still had those
// messages on their way, and dropped them only because the bench then
// disconnected its clean-start subscribers. They count as CutOff, not
// Lost; a drain in which deliveries had stopped keeps them as Lost.
func cutOff(r *Result) {
	if r.Counters.Lost == 0 || r.LastDelivery < r.DrainCut-stillArriving.Seconds() {
		return
	}
	for i := range r.Publishers {
		p := &r.Publishers[i]
		p.CutOff, p.Lost = p.Lost, 0
	}
	r.Counters.CutOff, r.Counters.Lost = r.Counters.Lost, 0
}
