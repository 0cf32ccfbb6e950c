package transport

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run against every transport in transports.

// pattern fills p with the bytes at offset off of an endless stream that
// does not repeat within any test's length, so a lost, repeated or
// reordered piece shows as a mismatch.
func pattern(off int64, p []byte) {
	for i := range p {
		x := uint32(off + int64(i))
		p[i] = byte((x * 2654435761) >> 24)
	}
}

// fillUntilBlocked writes the pattern to c, continuing from *off, until a
// write times out: the server has stopped reading and the kernel buffers
// between it and c are full, which is TCP backpressure at work.
func fillUntilBlocked(t *testing.T, c net.Conn, off *int64) {
	t.Helper()
	buf := make([]byte, 16<<10)
	for *off < 256<<20 {
		pattern(*off, buf)
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(buf)
		*off += int64(n)
		if err != nil {
			if isReset(err) {
				t.Fatalf("write after %d bytes: %v", *off, err)
			}
			c.SetWriteDeadline(time.Time{})
			return
		}
	}
	t.Fatalf("wrote %d bytes and never blocked: the server kept reading", *off)
}

func (r *recorder) received() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.data.Bytes())
}

// waitPattern waits until r has received n bytes and checks they are the
// pattern's first n, in order.
func waitPattern(t *testing.T, r *recorder, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	got := r.received()
	for int64(len(got)) < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = r.received()
	}
	if int64(len(got)) != n {
		t.Fatalf("received %d bytes, want the %d the peer wrote", len(got), n)
	}
	want := make([]byte, n)
	pattern(0, want)
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("received bytes differ from those written, first at offset %d", i)
	}
}

// stillFor checks that r receives nothing more for d.
func stillFor(t *testing.T, r *recorder, d time.Duration) {
	t.Helper()
	before := len(r.received())
	time.Sleep(d)
	if after := len(r.received()); after != before {
		t.Fatalf("Data delivered %d more bytes while paused", after-before)
	}
}

func TestPauseInsideDataStopsDataUntilResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			const (
				running = iota
				paused
				resumed
			)
			var phase atomic.Int32
			var dataWhilePaused atomic.Int32
			rs := newRecorders(false)
			rs.onData = func(c Conn, p []byte) error {
				switch phase.Load() {
				case running:
					phase.Store(paused)
					c.(Pauser).PauseRead()
					c.(Pauser).PauseRead() // idempotent
				case paused:
					dataWhilePaused.Add(1)
				}
				return nil
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			r := rs.next(t)
			var written int64
			fillUntilBlocked(t, c, &written)
			stillFor(t, r, 100*time.Millisecond)
			if n := dataWhilePaused.Load(); n != 0 {
				t.Fatalf("Data called %d times after PauseRead inside Data", n)
			}
			if phase.Load() != paused {
				t.Fatal("Data was never called")
			}
			t.Logf("%d bytes held by TCP backpressure, %d delivered before the pause",
				written, len(r.received()))
			phase.Store(resumed)
			r.conn.(Pauser).ResumeRead()
			r.conn.(Pauser).ResumeRead() // idempotent
			waitPattern(t, r, written)
		})
	}
}

func TestPauseFromAnotherGoroutineKeepsWritesFlowing(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			var dataCalls atomic.Int32
			rs := newRecorders(false)
			rs.onData = func(Conn, []byte) error {
				dataCalls.Add(1)
				return nil
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			r := rs.next(t)
			p := r.conn.(Pauser)
			p.PauseRead()
			var written int64
			fillUntilBlocked(t, c, &written)
			// The goroutine transport was already in a Read: one chunk may
			// get through, as Pauser documents.
			if n := dataCalls.Load(); n > 1 {
				t.Fatalf("Data called %d times after PauseRead, want at most 1", n)
			}
			stillFor(t, r, 100*time.Millisecond)

			// The other direction is unaffected: a large write reaches the
			// client while its own bytes wait in the server's buffer.
			want := randomBytes(2 << 20)
			go func() {
				if _, err := r.conn.Write(want); err != nil {
					t.Errorf("Write while paused: %v", err)
				}
			}()
			got := make([]byte, len(want))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("reading the server's writes while paused: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("server's writes while paused arrived corrupted")
			}
			stillFor(t, r, 50*time.Millisecond)

			done := make(chan struct{})
			go func() { p.ResumeRead(); close(done) }()
			<-done
			waitPattern(t, r, written)
		})
	}
}

func TestClosePausedConnCallsClosedOnce(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(false)
			rs.onData = func(c Conn, p []byte) error {
				c.(Pauser).PauseRead()
				return nil
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			r := rs.next(t)
			var written int64
			fillUntilBlocked(t, c, &written)
			go func() {
				r.conn.Write([]byte("bye"))
				if err := r.conn.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			r.waitClosed(t, nil)
			expectEOF(t, c) // or a reset: the server closes with input unread
			// Harmless once closed (on epoll, the descriptor may be reused).
			r.conn.(Pauser).ResumeRead()
			r.conn.(Pauser).PauseRead()
			if n := r.closes.Load(); n != 1 {
				t.Fatalf("Closed called %d times", n)
			}
		})
	}
}

// TestPeerCloseWhilePausedIsNoticed pins down the documented difference:
// the epoll transport notices the hangup at once and drops unread input;
// the goroutine transport notices it after ResumeRead, delivering the
// input first.
func TestPeerCloseWhilePausedIsNoticed(t *testing.T) {
	tests := []struct {
		name  string
		reset bool // the peer aborts (RST) instead of closing (FIN)
		cause error
	}{
		{"close", false, io.EOF},
		{"reset", true, syscall.ECONNRESET},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				var first atomic.Bool
				rs := newRecorders(false)
				rs.onData = func(c Conn, p []byte) error {
					if !first.Swap(true) {
						c.(Pauser).PauseRead()
					}
					return nil
				}
				addr, _ := tr.start(t, rs.accept, false)
				c := dial(t, addr)
				r := rs.next(t)
				c.Write([]byte("first"))
				for len(r.received()) == 0 {
					time.Sleep(time.Millisecond)
				}
				c.Write([]byte("tail")) // stays unread: the pause is on
				time.Sleep(20 * time.Millisecond)
				if tt.reset {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
				if tr.name == "epoll" {
					r.waitClosed(t, tt.cause)
					if got := string(r.received()); got != "first" {
						t.Errorf("received %q, want only what came before the pause", got)
					}
					return
				}
				select {
				case <-r.closed:
					t.Fatal("Closed while paused: the goroutine transport should not read")
				case <-time.After(100 * time.Millisecond):
				}
				r.conn.(Pauser).ResumeRead()
				r.waitClosed(t, tt.cause)
				if got := string(r.received()); !tt.reset && got != "firsttail" {
					t.Errorf("received %q, want all the peer sent", got)
				}
			})
		}
	}
}

func TestPausedConnDoesNotStallOthers(t *testing.T) {
	const others = 5
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(true)
			addr, _ := tr.start(t, rs.accept, false)
			slow := dial(t, addr)
			sr := rs.next(t)
			sr.setOnData(func(c Conn, p []byte) error {
				c.(Pauser).PauseRead()
				return nil
			})
			var written int64
			fillUntilBlocked(t, slow, &written)
			// The epoll tests use two loops, dealt round-robin: some of
			// these share the paused conn's loop.
			for i := range others {
				c := dial(t, addr)
				rs.next(t)
				msg := []byte{'p', 'i', 'n', 'g', byte('0' + i)}
				c.Write(msg)
				got := make([]byte, len(msg))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("conn %d echo = %q, %v; want %q", i, got, err, msg)
				}
			}
			sr.setOnData(nil)
			sr.conn.(Pauser).ResumeRead()
			waitPattern(t, sr, written)
		})
	}
}

// TestPauseResumeRace toggles the pause from several goroutines while the
// peer streams and the server writes; it proves (under -race) that the
// state stays consistent and that no byte is lost or reordered.
func TestPauseResumeRace(t *testing.T) {
	const size = 4 << 20
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			var stop atomic.Bool
			rs := newRecorders(false)
			rs.onData = func(c Conn, p []byte) error {
				if !stop.Load() && len(p)%3 == 0 {
					c.(Pauser).PauseRead()
					c.(Pauser).ResumeRead()
					c.(Pauser).PauseRead()
				}
				return nil
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			go io.Copy(io.Discard, c)
			r := rs.next(t)
			p := r.conn.(Pauser)
			var wg sync.WaitGroup
			for i := range 3 {
				wg.Go(func() {
					for !stop.Load() {
						if i == 0 {
							r.conn.Write(make([]byte, 100))
						}
						p.PauseRead()
						time.Sleep(time.Duration(i) * 100 * time.Microsecond)
						p.ResumeRead()
					}
				})
			}
			go func() {
				buf := make([]byte, 32<<10)
				for off := int64(0); off < size; off += int64(len(buf)) {
					pattern(off, buf)
					if _, err := c.Write(buf); err != nil {
						t.Errorf("client write: %v", err)
						return
					}
				}
			}()
			time.Sleep(300 * time.Millisecond)
			stop.Store(true)
			wg.Wait()
			// A Data call that saw stop unset may still pause: keep resuming.
			done := make(chan struct{})
			defer close(done)
			go func() {
				for {
					p.ResumeRead()
					select {
					case <-done:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}()
			waitPattern(t, r, size)
		})
	}
}
