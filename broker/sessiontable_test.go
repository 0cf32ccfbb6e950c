package broker

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// sessionTable against a map through random puts, replacements and
// removes that grow and shrink it several times over.
func TestSessionTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tab := newSessionTable()
	ref := map[string]*session{}
	check := func(step int) {
		t.Helper()
		if tab.len() != len(ref) {
			t.Fatalf("step %d: len %d, want %d", step, tab.len(), len(ref))
		}
		for id, want := range ref {
			if got := tab.get(id); got != want {
				t.Fatalf("step %d: get(%s) = %p, want %p", step, id, got, want)
			}
		}
		seen := 0
		for s := range tab.all() {
			if ref[s.id] != s {
				t.Fatalf("step %d: all() yields %s, not in the map", step, s.id)
			}
			seen++
		}
		if seen != len(ref) {
			t.Fatalf("step %d: all() yields %d, want %d", step, seen, len(ref))
		}
		if tab.get("absent") != nil {
			t.Fatalf("step %d: get(absent) found", step)
		}
	}
	for step := range 40000 {
		// Phases of mostly adding and mostly removing, so the table
		// doubles and halves repeatedly.
		addBias := 4
		if (step/5000)%2 == 1 {
			addBias = 0 // drain: only removals, so the table halves down to its minimum
		}
		id := fmt.Sprintf("c%d", rng.IntN(3000))
		switch op := rng.IntN(addBias + 2); {
		case op < addBias:
			s := &session{id: id}
			tab.put(s)
			ref[id] = s
		case op == addBias:
			// Removing a stale pointer under a live id must not remove it.
			if tab.remove(&session{id: id}) {
				t.Fatalf("step %d: removed a session not in the table", step)
			}
		default:
			s, had := ref[id]
			if !had {
				s = &session{id: id}
			}
			if got := tab.remove(s); got != had {
				t.Fatalf("step %d: remove(%s) = %v, want %v", step, id, got, had)
			}
			delete(ref, id)
		}
		if step%97 == 0 {
			check(step)
		}
	}
	check(-1)
}

// Walking the table a chunk at a time visits every session once when the
// table does not change in between.
func TestSessionTableChunks(t *testing.T) {
	tab := newSessionTable()
	for i := range 5000 {
		tab.put(&session{id: fmt.Sprintf("c%d", i)})
	}
	for _, size := range []int{1, 7, 1024, 100000} {
		seen := map[string]int{}
		var buf []*session
		for next := 0; next >= 0; {
			buf, next = tab.chunk(buf[:0], next, size)
			if len(buf) < size && next >= 0 {
				t.Fatalf("chunk of %d returned %d before the end", size, len(buf))
			}
			for _, s := range buf {
				seen[s.id]++
			}
		}
		if len(seen) != 5000 {
			t.Fatalf("chunks of %d visited %d sessions, want 5000", size, len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("chunks of %d visited %s %d times", size, id, n)
			}
		}
	}
}

// Removals between chunks, which shift sessions backward, never make the
// chunks miss a session that stays, as long as the table is not resized.
func TestSessionTableChunksMissNoSessionThatStays(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		tab := newSessionTable()
		var all []*session
		for i := range 6000 { // 8192 slots, well above the shrink point
			s := &session{id: fmt.Sprintf("r%d-%d", round, i)}
			tab.put(s)
			all = append(all, s)
		}
		size := len(tab.slots)
		removed := map[*session]bool{}
		seen := map[*session]bool{}
		var buf []*session
		for next := 0; next >= 0; {
			buf, next = tab.chunk(buf[:0], next, 3)
			for _, s := range buf {
				seen[s] = true
			}
			for range 2 {
				if s := all[rng.IntN(len(all))]; !removed[s] && len(removed) < 3000 {
					tab.remove(s)
					removed[s] = true
				}
			}
		}
		if len(tab.slots) != size {
			t.Fatal("the table was resized; the test needs it not to be")
		}
		for _, s := range all {
			if !removed[s] && !seen[s] {
				t.Fatalf("round %d: session %s stayed in the table but no chunk returned it", round, s.id)
			}
		}
	}
}
