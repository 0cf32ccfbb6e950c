package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// trimWhenIdle returns freed heap memory to the operating system once the
// broker goes quiet. A connect storm leaves the Go heap with garbage and a
// GC goal of twice the live heap; on a node holding many idle connections
// that slack would stay resident for good. When less than idleAlloc bytes
// were allocated over a period, it runs one GC and returns the free pages
// (debug.FreeOSMemory), then waits for activity before doing it again.
func trimWhenIdle(ctx context.Context, period time.Duration, idleAlloc uint64) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	last := read()
	trimmed := true // nothing to trim at start
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := read()
		busy := now-last >= idleAlloc
		last = now
		switch {
		case busy:
			trimmed = false
		case !trimmed:
			debug.FreeOSMemory()
			trimmed = true
			last = read() // the GC itself is not activity
		}
	}
}
