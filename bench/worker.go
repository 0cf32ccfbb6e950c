package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ServeWorker runs one worker for the director at the other end of r and
// w (see the protocol in proto.go): it reads its setup, connects its share
// of the clients, publishes when told to start, reports a tick every
// second, and on stop, on the director's end of stream or on ctx's end
// disconnects everything and sends its final report. Every phase is
// bounded, so it always returns.
func ServeWorker(ctx context.Context, r io.Reader, w io.Writer) error {
	wr := newWire(r, w, nil)
	m, err := wr.recv()
	if err != nil {
		return fmt.Errorf("read setup: %w", err)
	}
	if m.Type != "setup" || m.Setup == nil {
		return fmt.Errorf("got %q, want setup", m.Type)
	}
	if m.Setup.Version != protoVersion {
		err := fmt.Errorf("protocol version %d, this worker speaks %d", m.Setup.Version, protoVersion)
		wr.send(&message{Type: "error", Error: err.Error()})
		return err
	}
	l, err := newLoad(m.Setup)
	if err != nil {
		wr.send(&message{Type: "error", Error: err.Error()})
		return err
	}
	defer l.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	msgs := make(chan *message)
	go func() {
		defer close(msgs)
		for {
			m, err := wr.recv()
			if err != nil {
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()

	self := SelfCost{Processes: 1, BaselineGo: goMemory(), BaselineRSS: rss()}
	var peakRSS atomic.Int64
	peakRSS.Store(self.BaselineRSS)
	var fast atomic.Bool
	tickCtx, stopTicks := context.WithCancel(ctx)
	var ticks sync.WaitGroup
	ticks.Add(1)
	go func() { defer ticks.Done(); l.tickLoop(tickCtx, wr, &fast, &peakRSS) }()

	connectCtx, stopConnect := context.WithCancel(ctx)
	defer stopConnect()
	readyCh := make(chan ready, 1)
	go func() { readyCh <- l.connect(connectCtx) }()
	connecting := true
	runDone := make(chan struct{})
	published := runDone // set to nil once seen
	started := false
	var phaseStart time.Time
	var phaseCPU float64

	finish := func() error {
		stopConnect()
		if connecting {
			select {
			case <-readyCh:
			case <-time.After(5 * time.Second):
				return errors.New("connect phase did not end")
			}
		}
		if !phaseStart.IsZero() {
			self.PhaseSeconds = time.Since(phaseStart).Seconds()
			self.PhaseCPU = cpuSeconds() - phaseCPU
		}
		l.stop()
		if started {
			select {
			case <-runDone:
			case <-time.After(10 * time.Second):
				return errors.New("publish phase did not end")
			}
		}
		pubs := l.finish()
		stopTicks()
		ticks.Wait()
		last := l.tick(int(time.Since(l.start)/time.Second), &peakRSS)
		self.CPUSeconds = cpuSeconds()
		self.PeakRSS = peakRSS.Load()
		if err := wr.send(&message{Type: "tick", Tick: last}); err != nil {
			return err
		}
		return wr.send(&message{Type: "done", Done: &done{Publishers: pubs, Self: self}})
	}

	for {
		select {
		case rd := <-readyCh:
			connecting = false
			go l.ping(ctx) // l.members is complete from here on
			self.Clients = rd.Connected
			if err := wr.send(&message{Type: "ready", Ready: &rd}); err != nil {
				l.finish()
				return err
			}
			// After ready, so that its GC does not lengthen the connect
			// phase; "start" waits for it, and this worker's publish
			// schedule and phase CPU count from then.
			self.ReadyGo = goMemory()
			self.ReadyRSS = rss()
		case m, ok := <-msgs:
			if !ok {
				finish()
				return errors.New("director went away")
			}
			switch m.Type {
			case "start":
				if !started {
					started = true
					phaseStart, phaseCPU = time.Now(), cpuSeconds()
					go func() { l.run(ctx); close(runDone) }()
				}
			case "stop":
				return finish()
			}
		case <-published:
			published = nil // fire once; finish reads the closed channel no more
			self.PhaseSeconds = time.Since(phaseStart).Seconds()
			self.PhaseCPU = cpuSeconds() - phaseCPU
			phaseStart = time.Time{}
			fast.Store(true)
			// A fresh tick first: the director judges the drain from the
			// counters it has, and the last periodic tick may predate the
			// final publishes, making them look delivered already.
			last := l.tick(int(time.Since(l.start)/time.Second), &peakRSS)
			if err := wr.send(&message{Type: "tick", Tick: last}); err != nil {
				finish()
				return err
			}
			if err := wr.send(&message{Type: "published"}); err != nil {
				finish()
				return err
			}
		case <-ctx.Done():
			finish()
			return ctx.Err()
		}
	}
}

// tickLoop sends a tick at each second boundary of the run, and five times
// a second once fast is set (while the director waits for the drain).
func (l *load) tickLoop(ctx context.Context, wr *wire, fast *atomic.Bool, peakRSS *atomic.Int64) {
	for {
		now := time.Now()
		elapsed := now.Sub(l.start).Truncate(time.Second)
		next := l.start.Add(elapsed + time.Second)
		// A tick belongs to the second it was due in or at the end of,
		// however late the timer fires; fast ticks stop at the boundary
		// too, so that none carries one second's counts into the next.
		label := int(elapsed / time.Second)
		if soon := now.Add(200 * time.Millisecond); fast.Load() && soon.Before(next) {
			next = soon
		}
		if !sleepUntil(ctx, next) {
			return
		}
		if err := wr.send(&message{Type: "tick", Tick: l.tick(label, peakRSS)}); err != nil {
			return
		}
	}
}

// tick takes the measurements since the previous tick, labelled with the
// second of the run they belong to.
func (l *load) tick(second int, peakRSS *atomic.Int64) *tick {
	t := &tick{Second: max(second, 0), CPU: cpuSeconds(), RSS: rss()}
	if t.RSS > peakRSS.Load() {
		peakRSS.Store(t.RSS)
	}
	l.meter.take(t)
	return t
}

// ListenWorkers serves remote directors on ln, one at a time, until ctx
// ends: `herald bench worker --listen ADDR`.
func ListenWorkers(ctx context.Context, ln net.Listener, logf func(format string, args ...any)) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		logf("director %s connected", conn.RemoteAddr())
		err = ServeWorker(ctx, conn, conn)
		conn.Close()
		logf("director %s done: %v", conn.RemoteAddr(), err)
	}
}
