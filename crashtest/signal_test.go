package crashtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/store"
)

// A SIGHUP while herald is starting (here: recovering 200,000 retained
// messages) does not kill it: it starts and keeps running.
func TestSIGHUPDuringStartupDoesNotKill(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc to see when herald opens its store")
	}
	dir := t.TempDir()
	st, err := store.OpenPebble(dir, store.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		b := &store.Batch{}
		for j := 0; j < 10000; j++ {
			b.Retained = append(b.Retained, &store.Message{Topic: fmt.Sprintf("r/%d/%d", i, j), Payload: []byte("x"), Retain: true, Created: time.Now()})
		}
		if err := st.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	pids := make(chan int, 1)
	onSpawn = func(pid int) { pids <- pid }
	defer func() { onSpawn = nil }()
	spawned := make(chan *herald, 1)
	go func() {
		h, err := spawnHerald(t, dir)
		if err != nil {
			t.Error(err)
		}
		spawned <- h
	}()
	// Signal once herald has the store open: it is recovering.
	pid := <-pids
	for deadline := time.Now().Add(startWait); !holdsFileIn(pid, dir); time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatal("herald never opened its store")
		}
	}
	syscall.Kill(pid, syscall.SIGHUP)
	h := <-spawned
	if t.Failed() {
		return
	}
	if n := h.recoveredCount("retained"); n != 200000 {
		t.Fatalf("recovered %d retained messages, want 200000", n)
	}
	select {
	case <-h.exit:
		t.Fatalf("herald exited after SIGHUP: %v\n%s", h.err, h.log())
	case <-time.After(quietFor):
	}
}

// holdsFileIn reports whether process pid has a file of dir open.
func holdsFileIn(pid int, dir string) bool {
	fds := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(fds)
	for _, e := range ents {
		if target, err := os.Readlink(fds + "/" + e.Name()); err == nil && strings.HasPrefix(target, dir+"/") {
			return true
		}
	}
	return false
}
