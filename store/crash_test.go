package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

const (
	crashChildEnv = "HERALD_STORE_CRASH_CHILD_DIR"
	crashWriters  = 8
)

// TestPebbleSIGKILLKeepsAcknowledgedAppends runs writers in a child
// process that prints "ok" after each AppendMessages returns, kills it with
// SIGKILL mid-stream, and checks that every acknowledged message is in the
// reopened store. Each writer also updates its previous message (a lazily
// synced write) before appending the next, so the test also proves that a
// lazy write is durable once a later durable write is.
func TestPebbleSIGKILLKeepsAcknowledgedAppends(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPebbleSIGKILLKeepsAcknowledgedAppends$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())

	acked := make(map[string]uint64) // writer → highest acknowledged seq + 1
	killAt := 500 + rand.IntN(1500)
	deadline := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	lines, killed := 0, false
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// Lines read after the kill were printed before it: acknowledged too.
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ok" {
			continue
		}
		seq, err := strconv.ParseUint(f[2], 10, 64)
		must(t, err)
		acked[f[1]] = max(acked[f[1]], seq+1)
		if lines++; lines == killAt {
			must(t, cmd.Process.Kill()) // SIGKILL on Unix
			killed = true
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("child stopped after %d acknowledgements, before it was killed", lines)
	}

	p := openPebble(t, dir)
	defer p.Close()
	for w := range crashWriters {
		id := fmt.Sprint("w", w)
		msgs := mustLoadMessages(t, p, id)
		if uint64(len(msgs)) < acked[id] {
			t.Fatalf("writer %s: %d messages acknowledged, %d survived", id, acked[id], len(msgs))
		}
		for i, m := range msgs {
			if m.Seq != uint64(i) || string(m.Payload) != id+"/"+strconv.Itoa(i) {
				t.Fatalf("writer %s: message %d is seq %d %q", id, i, m.Seq, m.Payload)
			}
			// The update of message i preceded the durable append of i+1.
			if i+1 < len(msgs) && (m.State != AwaitingAck || m.PacketID != uint16(i+1)) {
				t.Fatalf("writer %s: message %d lost its update (%v, %d) though message %d survived",
					id, i, m.State, m.PacketID, i+1)
			}
		}
	}
	t.Logf("killed after %d acknowledgements; all survived", lines)
}

// crashChild is the child of TestPebbleSIGKILLKeepsAcknowledgedAppends.
// It stops by itself after a bound, in case the parent is gone.
func crashChild(dir string) {
	p, err := OpenPebble(dir, PebbleOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(20 * time.Second)
	for w := range crashWriters {
		wg.Go(func() {
			id := fmt.Sprint("w", w)
			for seq := uint64(0); seq < 100_000 && time.Now().Before(stop); seq++ {
				if seq > 0 {
					if err := p.UpdateMessage(id, seq-1, uint16(seq), AwaitingAck); err != nil {
						panic(err)
					}
				}
				msg := &Message{Seq: seq, Topic: "t/" + id, QoS: 1, Payload: []byte(id + "/" + strconv.FormatUint(seq, 10))}
				if err := p.AppendMessages([]Entry{{ClientID: id, Msg: msg}}); err != nil {
					panic(err)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ok %s %d\n", id, seq) // unbuffered: one write(2)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	p.Close()
	os.Exit(0)
}

// TestPebblePowerLossKeepsAcknowledgedWrites simulates power loss, which
// SIGKILL does not (the kernel still holds unsynced pages): a crashable
// in-memory file system is cloned as it would be found after a crash,
// keeping only synced data (or synced data and a random part of the rest),
// and the clone is opened.
func TestPebblePowerLossKeepsAcknowledgedWrites(t *testing.T) {
	for _, unsynced := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced%d%%", unsynced), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			p, err := OpenPebble("data", PebbleOptions{fs: fs})
			must(t, err)

			var mu sync.Mutex
			acked := make(map[string]uint64) // writer → acknowledged count
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := range crashWriters {
				wg.Go(func() {
					id := fmt.Sprint("w", w)
					for seq := uint64(0); ; seq++ {
						select {
						case <-stop:
							return
						default:
						}
						var err error
						if seq > 0 {
							err = p.UpdateMessage(id, seq-1, uint16(seq), AwaitingAck)
						}
						if err == nil {
							err = p.AppendMessages([]Entry{{ClientID: id, Msg: &Message{Seq: seq, Payload: []byte(id)}}})
						}
						if err == nil {
							err = p.AddIncoming(id, uint16(seq))
						}
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						acked[id] = seq + 1
						mu.Unlock()
					}
				})
			}
			time.Sleep(300 * time.Millisecond)
			mu.Lock()
			want := make(map[string]uint64, len(acked))
			for id, n := range acked {
				want[id] = n
			}
			mu.Unlock()
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(1, uint64(unsynced)))})
			close(stop)
			wg.Wait()
			must(t, p.Close())

			p, err = OpenPebble("data", PebbleOptions{fs: crashed})
			must(t, err)
			defer p.Close()
			total := uint64(0)
			for id, n := range want {
				msgs := mustLoadMessages(t, p, id)
				if uint64(len(msgs)) < n {
					t.Fatalf("writer %s: %d appends acknowledged, %d survived", id, n, len(msgs))
				}
				for i, m := range msgs[:len(msgs)-1] {
					if m.Seq != uint64(i) || m.State != AwaitingAck {
						t.Fatalf("writer %s: message %d = seq %d state %v: lost or out of order", id, i, m.Seq, m.State)
					}
				}
				ids, err := p.LoadIncoming(id)
				must(t, err)
				if uint64(len(ids)) < n {
					t.Fatalf("writer %s: %d incoming ids acknowledged, %d survived", id, n, len(ids))
				}
				total += n
			}
			if total == 0 {
				t.Fatal("no write was acknowledged before the crash")
			}
			t.Logf("%d acknowledged appends survived the power loss", total)
		})
	}
}
