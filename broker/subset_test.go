package broker

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// subSet against a map, through random puts and removes that cross the
// one-inline, list and indexed forms in both directions.
func TestSubSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var s subSet
		ref := map[string]*subscription{}
		filters := 1 + rng.IntN(2*subSetIndexAt+4)
		for step := range 300 {
			full := fmt.Sprintf("t/%d", rng.IntN(filters))
			if rng.IntN(3) == 0 {
				_, had := ref[full]
				if got := s.remove(full); got != had {
					t.Fatalf("round %d step %d: remove(%s) = %v, want %v", round, step, full, got, had)
				}
				delete(ref, full)
			} else {
				sub := &subscription{full: full, id: uint32(step)}
				s.put(sub)
				ref[full] = sub
			}
			if s.len() != len(ref) {
				t.Fatalf("round %d step %d: len %d, want %d", round, step, s.len(), len(ref))
			}
			if (s.one != nil) && (s.many != nil) {
				t.Fatalf("round %d step %d: both forms in use", round, step)
			}
			for k, want := range ref {
				if got, ok := s.get(k); !ok || got != want {
					t.Fatalf("round %d step %d: get(%s) = %v, %v", round, step, k, got, ok)
				}
			}
			if _, ok := s.get("absent"); ok {
				t.Fatalf("round %d step %d: get(absent) found", round, step)
			}
			var all []string
			for _, sub := range s.all() {
				all = append(all, sub.full)
			}
			var keys []string
			for k := range ref {
				keys = append(keys, k)
			}
			slices.Sort(all)
			slices.Sort(keys)
			if !slices.Equal(all, keys) {
				t.Fatalf("round %d step %d: all() = %v, want %v", round, step, all, keys)
			}
		}
	}
}
