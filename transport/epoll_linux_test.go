//go:build linux

package transport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	transports = append(transports, testTransport{
		name: "epoll",
		start: func(t testing.TB, accept Accepter, proxy bool) (string, func()) {
			s := startEpoll(t, EpollOptions{Loops: 2, ProxyProtocol: proxy, ProxyTimeout: time.Second}, accept)
			return s.Addr().String(), func() { s.Close() }
		},
	})
}

func startEpoll(t testing.TB, opts EpollOptions, accept Accepter) *EpollServer {
	t.Helper()
	s, err := ListenEpoll(context.Background(), "127.0.0.1:0", opts, accept)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEpollConnIsSmall(t *testing.T) {
	size := unsafe.Sizeof(econn{})
	t.Logf("unsafe.Sizeof(econn{}) = %d bytes", size)
	if size > 80 {
		t.Errorf("econn grew to %d bytes; every idle connection pays for it", size)
	}
}

// The compact remote address gives back what it was given, IPv4 as IPv4.
func TestEpollConnRemoteRoundTrip(t *testing.T) {
	for _, s := range []string{"127.0.0.1:1883", "10.1.2.3:65535", "[::1]:1883", "[2001:db8::7]:0", "[::ffff:10.0.0.1]:8883"} {
		ap := netip.MustParseAddrPort(s)
		var c econn
		c.setRemote(ap)
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if got := c.remote(); got != want {
			t.Errorf("%s: remote() = %s, want %s", s, got, want)
		}
		if got := c.RemoteAddr().String(); got != want.String() {
			t.Errorf("%s: RemoteAddr() = %s", s, got)
		}
	}
}

func TestEpollCoalescesSmallWrites(t *testing.T) {
	const writes, size = 1000, 10
	rs := newRecorders(false)
	rs.onData = func(c Conn, p []byte) error {
		// All in one Data call: the loop flushes after the handler returns.
		for range writes {
			c.Write(make([]byte, size))
		}
		return nil
	}
	s := startEpoll(t, EpollOptions{Loops: 1}, rs.accept)
	c := dial(t, s.Addr().String())
	c.Write([]byte("go"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, writes*size)); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	for deadline := time.Now().Add(time.Second); st.BytesOut < writes*size && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond) // the counters move just after the writev
		st = s.Stats()
	}
	if st.Writes > 2 {
		t.Errorf("%d writev calls for %d small Writes, want 1", st.Writes, writes)
	}
	if st.BytesOut != writes*size {
		t.Errorf("BytesOut = %d, want %d", st.BytesOut, writes*size)
	}
	t.Logf("%+v", st)
}

func TestEpollLargeWriteWaitsForEPOLLOUT(t *testing.T) {
	const size = 16 << 20
	rs := newRecorders(false)
	rs.onAcc = func(c Conn) { c.Write(make([]byte, size)) }
	s := startEpoll(t, EpollOptions{Loops: 1}, rs.accept)
	c := dial(t, s.Addr().String())
	time.Sleep(50 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.WriteBlocked == 0 {
		t.Errorf("16 MiB went out without a full socket buffer: %+v", st)
	}
}

func TestEpollSlowConsumerCloseTimesOut(t *testing.T) {
	rs := newRecorders(false)
	rs.onAcc = func(c Conn) {
		c.Write(make([]byte, 32<<20)) // more than the socket buffers hold
		c.Close()
	}
	s := startEpoll(t, EpollOptions{Loops: 1, CloseTimeout: 300 * time.Millisecond}, rs.accept)
	dial(t, s.Addr().String()) // never reads
	r := rs.next(t)
	start := time.Now()
	r.waitClosed(t, nil)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("close of a stuck peer took %v, want about CloseTimeout", d)
	}
	if st := s.Stats(); st.Open != 0 {
		t.Errorf("Open = %d after the close deadline", st.Open)
	}
}

func TestEpollStopsOnContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rs := newRecorders(true)
	s, err := ListenEpoll(ctx, "127.0.0.1:0", EpollOptions{}, rs.accept)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr().String())
	r := rs.next(t)
	cancel()
	r.waitClosed(t, ErrServerClosed)
	expectEOF(t, c)
	if err := s.Close(); err != net.ErrClosed {
		t.Errorf("Close after cancel = %v, want net.ErrClosed", err)
	}
	if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
		t.Error("still accepting after cancel")
	}
}

// TestEpollListenWithDoneContextDoesNotRace proves that a context already
// done when ListenEpoll registers its stop does not make the shutdown it
// starts read the server's fields while ListenEpoll still writes them (run
// with -race).
func TestEpollListenWithDoneContextDoesNotRace(t *testing.T) {
	for range 500 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := ListenEpoll(ctx, "127.0.0.1:0", EpollOptions{Loops: 1}, newRecorders(true).accept)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

func TestEpollProxyHeaderTimeout(t *testing.T) {
	rs := newRecorders(true)
	s := startEpoll(t, EpollOptions{ProxyProtocol: true, ProxyTimeout: 200 * time.Millisecond}, rs.accept)
	c := dial(t, s.Addr().String())
	c.Write([]byte("PROXY TCP4 1.2.3.4")) // and then nothing
	expectEOF(t, c)
	if st := s.Stats(); st.Refused != 1 || rs.accepts.Load() != 0 {
		t.Errorf("Refused = %d, accepts = %d; want 1, 0", st.Refused, rs.accepts.Load())
	}
}

func TestListenEpollRejectsBadAddress(t *testing.T) {
	if _, err := ListenEpoll(context.Background(), "127.0.0.1:notaport", EpollOptions{}, newRecorders(true).accept); err == nil {
		t.Error("ListenEpoll accepted a bad address")
	}
}

// idleConnsEnv names the environment variables of the dialer child process
// BenchmarkEpollIdleConnMemory starts, so the client sockets do not count
// against this process's open-file limit.
const (
	idleDialAddr = "HERALD_TRANSPORT_DIAL_ADDR"
	idleDialN    = "HERALD_TRANSPORT_DIAL_N"
)

// TestIdleDialerProcess is not a test: run by BenchmarkEpollIdleConnMemory
// as a child process, it opens the idle connections and holds them until
// its stdin closes.
func TestIdleDialerProcess(t *testing.T) {
	addr := os.Getenv(idleDialAddr)
	if addr == "" {
		t.Skip("helper process for BenchmarkEpollIdleConnMemory")
	}
	n, _ := strconv.Atoi(os.Getenv(idleDialN))
	fds, err := dialRaw(addr, n)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, fd := range fds {
		unix.Close(fd)
	}
	os.Exit(0)
}

// dialRaw opens n blocking TCP connections without net.Conn, so the client
// side costs an int each.
func dialRaw(addr string, n int) ([]int, error) {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: ta.Port, Addr: [4]byte(ta.IP.To4())}
	fds := make([]int, 0, n)
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fds, err
		}
		fds = append(fds, fd)
		if err := unix.Connect(fd, sa); err != nil {
			return fds, fmt.Errorf("connect %d: %w", len(fds), err)
		}
	}
	return fds, nil
}

// BenchmarkEpollIdleConnMemory opens idle connections to an epoll server
// from a child process (default 10,000; HERALD_IDLE_CONNS overrides) and
// reports the Go heap and stack the server holds per connection. Run with
// -benchtime=1x.
func BenchmarkEpollIdleConnMemory(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("HERALD_IDLE_CONNS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		perConn := measureIdleConns(b, n)
		b.ReportMetric(perConn, "bytes/conn")
	}
}

func measureIdleConns(b *testing.B, n int) float64 {
	// The loop keeps each conn and its Handler reachable.
	s := startEpoll(b, EpollOptions{Backlog: 8192}, func(c Conn) Handler { return &idleHandler{} })
	before := heapAndStack()

	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleDialerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), idleDialAddr+"="+s.Addr().String(), idleDialN+"="+strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		b.Fatalf("dialer: %q", line)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().Open < int64(n) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if open := s.Stats().Open; open != int64(n) {
		b.Fatalf("server holds %d connections, want %d", open, n)
	}
	after := heapAndStack()
	per := float64(after-before) / float64(n)
	b.Logf("%d idle conns: %.0f bytes/conn of Go heap+stack (handler of %d bytes included), econn %d bytes",
		n, per, unsafe.Sizeof(idleHandler{}), unsafe.Sizeof(econn{}))
	return per
}

type idleHandler struct{ n int }

func (h *idleHandler) Data(p []byte) error { h.n += len(p); return nil }
func (h *idleHandler) Closed(error)        {}

func heapAndStack() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// chunks counts the outbound chunks the connection holds.
func (c *econn) chunks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.chunks()
}

func TestListenEpollAddresses(t *testing.T) {
	tests := []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{":0", "127.0.0.1"}, // dual stack; the IPv4 peer is reported unmapped
		{"[::1]:0", "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			rs := newRecorders(true)
			s, err := ListenEpoll(context.Background(), tt.listen, EpollOptions{Loops: 1}, rs.accept)
			if err != nil {
				t.Skipf("listen %s: %v", tt.listen, err)
			}
			defer s.Close()
			port := s.Addr().(*net.TCPAddr).Port
			c := dial(t, net.JoinHostPort(tt.dial, strconv.Itoa(port)))
			r := rs.next(t)
			if got, want := r.conn.RemoteAddr().String(), c.LocalAddr().String(); got != want {
				t.Errorf("RemoteAddr = %s, want %s", got, want)
			}
		})
	}
}

// Accepted sockets carry TCP_NODELAY and TCP keepalive, set once on the
// listening socket and inherited.
func TestEpollAcceptedSocketsInheritOptions(t *testing.T) {
	var (
		mu  sync.Mutex
		fds []int
	)
	srv, err := ListenEpoll(context.Background(), "127.0.0.1:0", EpollOptions{}, func(c Conn) Handler {
		mu.Lock()
		fds = append(fds, int(c.(*econn).fd))
		mu.Unlock()
		return nopHandler{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		mu.Lock()
		n := len(fds)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection never accepted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	fd := fds[0]
	for _, o := range []struct {
		name      string
		level, op int
		want      int
	}{
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, tcpKeepIdle},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, tcpKeepCount},
	} {
		if v, err := unix.GetsockoptInt(fd, o.level, o.op); err != nil || v != o.want {
			t.Errorf("%s = %d (%v), want %d", o.name, v, err, o.want)
		}
	}
}

type nopHandler struct{}

func (nopHandler) Data([]byte) error { return nil }
func (nopHandler) Closed(error)      {}

// A Write from outside the loops must wake a parked loop at once, every
// time: a lost wake-up would leave the bytes queued until the loop's
// safety deadline (half a second to a second). Writers on several
// goroutines target conns on both loops at irregular intervals, so that
// wake-ups land before, during and after the loops park.
func TestEpollOutsideWritesWakeParkedLoops(t *testing.T) {
	conns := make(chan Conn, 4)
	s := startEpoll(t, EpollOptions{Loops: 2}, func(c Conn) Handler { conns <- c; return &idleHandler{} })
	var wg sync.WaitGroup
	for w := range 4 {
		client, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server := <-conns
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for i := range 150 {
				time.Sleep(time.Duration((i*7+w*3)%4) * time.Millisecond)
				began := time.Now()
				if _, err := server.Write([]byte{byte(i)}); err != nil {
					t.Error(err)
					return
				}
				client.SetReadDeadline(began.Add(400 * time.Millisecond))
				if _, err := io.ReadFull(client, buf); err != nil || buf[0] != byte(i) {
					t.Errorf("writer %d, write %d: got %v %v after %v: a parked loop was not woken", w, i, buf, err, time.Since(began))
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("wake-ups: %d", s.Stats().Wakeups)
}

// Kicks (a read deadline moved into the past, see kickNotified) may land
// at any point of a loop's cycle, even with nothing to wake it for; the
// loop must take each as a spurious wake-up, set its own deadline again
// and go on serving.
func TestEpollLoopsSurviveStrayKicks(t *testing.T) {
	conns := make(chan Conn, 1)
	s := startEpoll(t, EpollOptions{Loops: 2}, func(c Conn) Handler { conns <- c; return &idleHandler{} })
	client, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-conns
	buf := make([]byte, 1)
	for i := range 200 {
		for _, l := range s.loops {
			l.set.Kick()
		}
		if i%3 == 0 {
			time.Sleep(time.Millisecond)
		}
		if _, err := server.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		client.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
		if _, err := io.ReadFull(client, buf); err != nil || buf[0] != byte(i) {
			t.Fatalf("write %d after a kick: got %v %v", i, buf, err)
		}
	}
}

// closeWatch records Data calls made after its conn's Close was called.
type closeWatch struct {
	closed atomic.Bool
	late   *atomic.Int64
}

func (h *closeWatch) Data(p []byte) error {
	if h.closed.Load() {
		h.late.Add(1)
	}
	return nil
}
func (h *closeWatch) Closed(error) {}

// Once Conn.Close has been called, from any goroutine, the handler gets no
// more Data, even for bytes that were already waiting in the same batch
// of events.
func TestEpollNoDataAfterClose(t *testing.T) {
	var late atomic.Int64
	type accepted struct {
		c Conn
		h *closeWatch
	}
	ch := make(chan accepted, 1)
	s := startEpoll(t, EpollOptions{Loops: 2}, func(c Conn) Handler {
		h := &closeWatch{late: &late}
		ch <- accepted{c, h}
		return h
	})
	for range 200 {
		client, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		a := <-ch
		client.Write([]byte("before"))
		a.c.Close()
		a.h.closed.Store(true) // Data from here on came after Close returned
		client.Write([]byte("after the close"))
		client.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if n := late.Load(); n != 0 {
		t.Fatalf("%d Data calls after Close", n)
	}
}
