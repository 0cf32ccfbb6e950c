package broker

import (
	"fmt"
	"testing"
)

// A pass over the sessions a chunk at a time returns every session that
// stays although others leave between two chunks, shrinking the session
// table: the resize rehashes every session, some into slots already read,
// so the pass starts over.
func TestEachSessionChunkPassesSessionsThatStay(t *testing.T) {
	srv := New(benchOptions())
	defer srv.cancel()
	var passing []*session
	srv.mu.Lock()
	for i := range 3000 {
		srv.sessions.put(&session{srv: srv, id: fmt.Sprintf("stay%d", i)})
	}
	for i := range 30000 {
		sess := &session{srv: srv, id: fmt.Sprintf("pass%d", i)}
		srv.sessions.put(sess)
		passing = append(passing, sess)
	}
	srv.mu.Unlock()

	seen := map[string]int{}
	calls, restarts := 0, 0
	total := srv.eachSessionChunk(func() {
		restarts++
		clear(seen)
	}, func(chunk []*session) {
		for _, sess := range chunk {
			seen[sess.id]++
		}
		if calls++; calls == 1 {
			srv.mu.Lock()
			for _, sess := range passing {
				srv.sessions.remove(sess)
			}
			srv.mu.Unlock()
		}
	})
	if restarts != 1 {
		t.Errorf("%d restarts, want 1", restarts)
	}
	if total != 3000 {
		t.Errorf("total %d, want 3000 (when the last pass began)", total)
	}
	missed := 0
	for i := range 3000 {
		if seen[fmt.Sprintf("stay%d", i)] == 0 {
			missed++
		}
	}
	if missed > 0 {
		t.Fatalf("%d of the 3000 sessions that stayed were not passed", missed)
	}
}
