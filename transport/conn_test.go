package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// The tests in this file run against every transport in transports.

func TestEchoManyConcurrentConns(t *testing.T) {
	const conns, size = 500, 8 << 10
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(true)
			rs.ch = make(chan *recorder, conns)
			addr, _ := tr.start(t, rs.accept, false)
			var wg sync.WaitGroup
			errs := make(chan error, conns)
			for i := range conns {
				wg.Go(func() {
					c, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					want := randomBytes(size + i)
					go c.Write(want)
					c.SetReadDeadline(time.Now().Add(20 * time.Second))
					got := make([]byte, len(want))
					if _, err := io.ReadFull(c, got); err != nil {
						errs <- fmt.Errorf("conn %d: %w", i, err)
						return
					}
					if !bytes.Equal(got, want) {
						errs <- fmt.Errorf("conn %d: echo differs", i)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestLargeWriteReachesSlowReader(t *testing.T) {
	const size = 8 << 20 // far beyond the socket buffers: forces EAGAIN / blocking writes
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			want := randomBytes(size)
			rs := newRecorders(false)
			rs.onAcc = func(c Conn) {
				// Several Writes of uneven sizes, all queued at once.
				for p := want; len(p) > 0; {
					k := min(len(p), 1<<20+7)
					if _, err := c.Write(p[:k]); err != nil {
						t.Error(err)
						return
					}
					p = p[k:]
				}
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			time.Sleep(100 * time.Millisecond) // let the server fill the socket
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			got := make([]byte, size)
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("bytes differ")
			}
		})
	}
}

func TestCloseFlushesBufferedBytes(t *testing.T) {
	const size = 3 << 20
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			want := randomBytes(size)
			rs := newRecorders(false)
			rs.onAcc = func(c Conn) {
				c.Write(want)
				c.Close()
			}
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			r := rs.next(t)
			got := expectEOF(t, c)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes before EOF, want the %d written before Close", len(got), len(want))
			}
			r.waitClosed(t, nil)
		})
	}
}

var errHandler = errors.New("handler says no")

func TestClosedCalledOnceWithCause(t *testing.T) {
	tests := []struct {
		name   string
		action func(t *testing.T, client net.Conn, r *recorder, stop func())
		want   error
	}{
		{"peer close", func(t *testing.T, client net.Conn, r *recorder, stop func()) {
			client.Close()
		}, io.EOF},
		{"local close", func(t *testing.T, client net.Conn, r *recorder, stop func()) {
			if err := r.conn.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := r.conn.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close = %v, want net.ErrClosed", err)
			}
			expectEOF(t, client)
		}, nil},
		{"local close then peer close", func(t *testing.T, client net.Conn, r *recorder, stop func()) {
			r.conn.Close()
			client.Close()
		}, nil},
		{"handler error", func(t *testing.T, client net.Conn, r *recorder, stop func()) {
			r.setOnData(func(c Conn, p []byte) error {
				c.Write([]byte("bye"))
				return errHandler
			})
			client.Write([]byte("x"))
			if got := expectEOF(t, client); string(got) != "bye" {
				t.Errorf("client read %q before EOF, want the handler's last write", got)
			}
		}, errHandler},
		{"server shutdown", func(t *testing.T, client net.Conn, r *recorder, stop func()) {
			stop()
			expectEOF(t, client)
		}, ErrServerClosed},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				rs := newRecorders(true)
				addr, stop := tr.start(t, rs.accept, false)
				client := dial(t, addr)
				r := rs.next(t)
				tt.action(t, client, r, stop)
				r.waitClosed(t, tt.want)
			})
		}
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(false)
			addr, _ := tr.start(t, rs.accept, false)
			dial(t, addr)
			r := rs.next(t)
			r.conn.Close()
			if _, err := r.conn.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Close = %v, want net.ErrClosed", err)
			}
			r.waitClosed(t, nil)
			if _, err := r.conn.Write([]byte("later")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after Closed = %v, want net.ErrClosed", err)
			}
		})
	}
}

func TestRefusedConnIsClosed(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(false)
			rs.refuse = true
			addr, _ := tr.start(t, rs.accept, false)
			expectEOF(t, dial(t, addr))
		})
	}
}

func TestWritePendingCountsQueuedBytes(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(false)
			pending := make(chan int, 1)
			rs.onAcc = func(c Conn) {
				// The peer does not read, so the queue must grow.
				var n int
				for range 64 {
					n, _ = c.Write(make([]byte, 256<<10))
				}
				pending <- n
			}
			addr, _ := tr.start(t, rs.accept, false)
			dial(t, addr)
			if n := <-pending; n < 8<<20 {
				t.Errorf("pending = %d after 16 MiB to a peer that does not read, want most of it", n)
			}
		})
	}
}

// proxyV2 builds a PROXY v2 header for src → dst.
func proxyV2(cmd byte, src, dst netip.AddrPort) []byte {
	b := []byte(proxyV2Sig)
	if src.Addr().Is4() {
		b = append(b, 0x20|cmd, 0x11, 0, 12)
		b = append(b, src.Addr().AsSlice()...)
		b = append(b, dst.Addr().AsSlice()...)
	} else {
		b = append(b, 0x20|cmd, 0x21, 0, 36)
		b = append(b, src.Addr().AsSlice()...)
		b = append(b, dst.Addr().AsSlice()...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

func TestProxyHeaderSetsRemoteAddr(t *testing.T) {
	v4 := netip.MustParseAddrPort("203.0.113.7:40001")
	v6 := netip.MustParseAddrPort("[2001:db8::7]:40002")
	dst := netip.MustParseAddrPort("198.51.100.1:1883")
	dst6 := netip.MustParseAddrPort("[2001:db8::1]:1883")
	tests := []struct {
		name   string
		header []byte
		want   string // "" means the socket's own peer address
		split  bool   // send the header in two pieces
	}{
		{"v1 tcp4", []byte("PROXY TCP4 203.0.113.7 198.51.100.1 40001 1883\r\n"), "203.0.113.7:40001", false},
		{"v1 tcp6 split", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40002 1883\r\n"), "[2001:db8::7]:40002", true},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", false},
		{"v2 inet", proxyV2(1, v4, dst), "203.0.113.7:40001", false},
		{"v2 inet6 split", proxyV2(1, v6, dst6), "[2001:db8::7]:40002", true},
		{"v2 local", proxyV2(0, v4, dst), "", false},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				rs := newRecorders(true)
				addr, _ := tr.start(t, rs.accept, true)
				c := dial(t, addr)
				msg := append(append([]byte{}, tt.header...), "hello"...)
				if tt.split {
					c.Write(msg[:9])
					time.Sleep(50 * time.Millisecond)
					msg = msg[9:]
				}
				c.Write(msg)
				r := rs.next(t)
				want := tt.want
				if want == "" {
					want = c.LocalAddr().String()
				}
				if got := r.conn.RemoteAddr().String(); got != want {
					t.Errorf("RemoteAddr = %s, want %s", got, want)
				}
				got := make([]byte, 5)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello" {
					t.Errorf("echo after header = %q, %v; want hello", got, err)
				}
			})
		}
	}
}

func TestMalformedProxyHeaderClosesConn(t *testing.T) {
	tests := []struct {
		name   string
		header string
	}{
		{"no header", "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00"},
		{"v1 bad family", "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"},
		{"v1 family mismatch", "PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n"},
		{"v1 bad port", "PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n"},
		{"v1 too long", "PROXY TCP4 " + string(bytes.Repeat([]byte("1"), 120)) + "\r\n"},
		{"v2 bad version", proxyV2Sig + "\x31\x11\x00\x0c" + string(make([]byte, 12))},
		{"v2 short inet body", proxyV2Sig + "\x21\x11\x00\x04" + string(make([]byte, 4))},
		{"v2 datagram", proxyV2Sig + "\x21\x12\x00\x0c" + string(make([]byte, 12))},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				rs := newRecorders(true)
				addr, _ := tr.start(t, rs.accept, true)
				c := dial(t, addr)
				c.Write([]byte(tt.header))
				if got := expectEOF(t, c); len(got) != 0 {
					t.Errorf("server sent %q to a client with a bad header", got)
				}
				if n := rs.accepts.Load(); n != 0 {
					t.Errorf("Accepter called %d times for a bad header", n)
				}
			})
		}
	}
}

// BenchmarkWrite measures Conn.Write of one small MQTT-sized packet to a
// peer that drains as fast as it can: the hot path of a delivery.
func BenchmarkWrite(b *testing.B) {
	msg := make([]byte, 64)
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			rs := newRecorders(false)
			addr, stop := tr.start(b, rs.accept, false)
			defer stop()
			c := dial(b, addr)
			go io.Copy(io.Discard, c)
			var conn Conn
			select {
			case r := <-rs.ch:
				conn = r.conn
			case <-time.After(5 * time.Second):
				b.Fatal("no connection")
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if pending, err := conn.Write(msg); err != nil {
					b.Fatal(err)
				} else if pending > 64<<20 {
					time.Sleep(time.Millisecond) // let the flusher catch up
				}
			}
		})
	}
}

func TestIdleConnReleasesOutboundBuffers(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(true)
			addr, _ := tr.start(t, rs.accept, false)
			c := dial(t, addr)
			want := randomBytes(300 << 10)
			go c.Write(want)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, len(want))); err != nil {
				t.Fatal(err)
			}
			r := rs.next(t)
			q, ok := r.conn.(interface{ chunks() int })
			if !ok {
				t.Fatalf("%T does not expose its queue", r.conn)
			}
			deadline := time.Now().Add(time.Second)
			for q.chunks() != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // consumed just after the write returns
			}
			if n := q.chunks(); n != 0 {
				t.Errorf("idle connection holds %d outbound chunks, want 0", n)
			}
		})
	}
}

// TestWritersRaceCloses hammers Write from several goroutines per
// connection while connections end every way at once; it proves (under
// -race) that a conn closed while queued for flushing is safe and that
// Closed still runs exactly once.
func TestWritersRaceCloses(t *testing.T) {
	const conns, writers = 40, 2
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			rs := newRecorders(false)
			rs.ch = make(chan *recorder, conns)
			addr, stop := tr.start(t, rs.accept, false)
			clients := make([]net.Conn, conns)
			for i := range clients {
				clients[i] = dial(t, addr)
				go io.Copy(io.Discard, clients[i])
			}
			var wg sync.WaitGroup
			recs := make([]*recorder, conns)
			for i := range recs {
				r := rs.next(t)
				recs[i] = r
				for range writers {
					wg.Go(func() {
						msg := make([]byte, 100+i)
						for {
							pending, err := r.conn.Write(msg)
							if err != nil {
								return
							}
							if pending > 64<<10 {
								time.Sleep(time.Millisecond) // a broker would drop or disconnect
							}
						}
					})
				}
			}
			time.Sleep(20 * time.Millisecond)
			for i, r := range recs {
				switch i % 3 {
				case 0:
					clients[i].Close()
				case 1:
					go r.conn.Close()
				}
			}
			time.Sleep(10 * time.Millisecond)
			stop() // the rest close at shutdown
			wg.Wait()
			for _, r := range recs {
				select {
				case <-r.closed:
				case <-time.After(5 * time.Second):
					t.Fatal("Closed not called")
				}
				if n := r.closes.Load(); n != 1 {
					t.Errorf("Closed called %d times", n)
				}
			}
		})
	}
}
