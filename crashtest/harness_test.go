package crashtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// Timeouts: generous for a loaded CI machine, short enough that a missing
// packet fails fast.
const (
	waitFor   = 5 * time.Second        // a packet that must arrive
	quietFor  = 400 * time.Millisecond // a packet that must not arrive
	startWait = 20 * time.Second       // herald serve from exec to "herald started"
)

// onSpawn, if set, is told the pid of each herald as soon as it runs, for
// a test to signal it while it starts.
var onSpawn func(pid int)

// heraldBin is the binary built once by TestMain.
var heraldBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "herald-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	heraldBin = filepath.Join(tmp, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, "./cmd/herald")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "crashtest: go build ./cmd/herald: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// herald is one `herald serve` process.
type herald struct {
	t     testing.TB
	cmd   *exec.Cmd
	dir   string
	addr  string        // MQTT listener, from the "listening" log line
	ready time.Duration // from exec to the "herald started" log line
	exit  chan struct{} // closed when the process has exited
	err   error         // its exit status, once exit is closed

	mu    sync.Mutex
	lines []string // every log line, for failure messages
	// recovered is the "recovered state" log line's attributes.
	recovered map[string]any
}

// startHerald runs `herald serve` on dir with a Pebble store and waits
// until it logs "herald started".
func startHerald(t testing.TB, dir string, extra ...string) *herald {
	t.Helper()
	h, err := spawnHerald(t, dir, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func spawnHerald(t testing.TB, dir string, extra ...string) (*herald, error) {
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--store", "pebble",
		"--log-format", "json", "--sys-interval", "0"}, extra...)
	h := &herald{t: t, dir: dir, exit: make(chan struct{})}
	h.cmd = exec.Command(heraldBin, args...)
	h.cmd.Dir = t.TempDir() // nothing written to the package directory
	// HERALD_* variables are configuration overrides, and an unknown one is
	// refused: the broker gets none of the test's (HERALD_BIG among them).
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HERALD_") {
			h.cmd.Env = append(h.cmd.Env, kv)
		}
	}
	stderr, err := h.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	h.cmd.Stdout = io.Discard
	start := time.Now()
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start herald: %w", err)
	}
	if onSpawn != nil {
		onSpawn(h.cmd.Process.Pid)
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			var rec map[string]any
			json.Unmarshal([]byte(line), &rec)
			h.mu.Lock()
			h.lines = append(h.lines, line)
			switch rec["msg"] {
			case "listening":
				if a, ok := rec["address"].(string); ok && h.addr == "" {
					h.addr = a
				}
			case "recovered state":
				h.recovered = rec
			case "herald started":
				h.ready = time.Since(start)
				once.Do(func() { close(started) })
			}
			h.mu.Unlock()
		}
		h.err = h.cmd.Wait()
		close(h.exit)
	}()
	t.Cleanup(func() { h.kill() })
	select {
	case <-started:
		return h, nil
	case <-h.exit:
		return h, fmt.Errorf("herald exited before it started: %v\n%s", h.err, h.log())
	case <-time.After(startWait):
		h.kill()
		return h, fmt.Errorf("herald not started within %v\n%s", startWait, h.log())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (h *herald) kill() {
	select {
	case <-h.exit:
		return
	default:
	}
	h.cmd.Process.Signal(syscall.SIGKILL)
	<-h.exit
}

// log returns everything the process logged so far.
func (h *herald) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.lines, "\n")
}

// recoveredCount returns an attribute of the "recovered state" log line.
func (h *herald) recoveredCount(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, _ := h.recovered[key].(float64)
	return int(n)
}

// rawClient is the shared raw client with the CONNECT, SUBSCRIBE and
// DISCONNECT these tests need: sessions with an expiry, several filters at
// one QoS, and a hang-up that does not wait on a broker that may be dead.
type rawClient struct {
	*mqtttest.Client
	t testing.TB
}

func dialRaw(t testing.TB, addr string, version byte) *rawClient {
	t.Helper()
	r := mqtttest.Dial(t, addr, version)
	r.Wait, r.Quiet = waitFor, quietFor
	return &rawClient{Client: r, t: t}
}

// connect sends CONNECT and returns the CONNACK, which must be a success.
func (r *rawClient) connect(id string, cleanStart bool, expiry uint32) *packet.Connack {
	r.t.Helper()
	cp := &packet.Connect{ProtocolName: "MQTT", ProtocolVersion: r.Version, CleanStart: cleanStart, KeepAlive: 60, ClientID: id}
	if r.Version == packet.Version5 {
		cp.Props.SessionExpiry = expiry
		cp.Props.HasSessionExpiry = expiry > 0
	}
	return r.Connect(cp)
}

// subscribe subscribes to filters at qos and requires every one granted.
func (r *rawClient) subscribe(pid uint16, qos byte, filters ...string) {
	r.t.Helper()
	var subs []packet.Subscription
	for _, f := range filters {
		subs = append(subs, packet.Subscription{Filter: f, QoS: qos})
	}
	codes := r.Subscribe(pid, packet.Properties{}, subs...)
	for _, c := range codes {
		if byte(c) != qos {
			r.t.Fatalf("SUBACK %v, want QoS %d", codes, qos)
		}
	}
}

// hangUp sends a normal DISCONNECT, if it still can, and closes the socket.
func (r *rawClient) hangUp() {
	r.TrySend(&packet.Disconnect{})
	r.Conn.Close()
}
