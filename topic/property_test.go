package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// randomTopic joins 1 to 4 levels drawn from levels. A small alphabet makes
// random filters and names collide often enough to match.
func randomTopic(rng *rand.Rand, levels []string) string {
	parts := make([]string, 1+rng.IntN(4))
	for i := range parts {
		parts[i] = levels[rng.IntN(len(levels))]
	}
	return strings.Join(parts, "/")
}

var (
	nameLevels   = []string{"a", "b", "", "$x", "$"}
	filterLevels = []string{"a", "b", "", "$x", "+", "+", "#"}
)

func randomFilter(rng *rand.Rand) string {
	for {
		if f := randomTopic(rng, filterLevels); ValidateFilter(f) == nil {
			return f
		}
	}
}

func randomName(rng *rand.Rand) string {
	for {
		if n := randomTopic(rng, nameLevels); ValidateName(n) == nil {
			return n
		}
	}
}

// TestTrieMatchesBruteForce builds tries of random subscriptions, ordinary
// and shared, removes some, and checks Trie.Match against Match applied to
// every live subscription.
func TestTrieMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	groups := []string{"", "", "g1", "g2"}
	for round := range 50 {
		tr := NewTrie[int, string]()
		live := map[sub]bool{}
		for range 200 {
			s := sub{randomFilter(rng), groups[rng.IntN(len(groups))], fmt.Sprint(rng.IntN(8))}
			var c int
			fmt.Sscan(s.client, &c)
			if replaced := tr.Subscribe(s.filter, s.group, c, s.filter); replaced != live[s] {
				t.Fatalf("Subscribe(%+v) replaced = %v, want %v", s, replaced, live[s])
			}
			live[s] = true
			if rng.IntN(3) == 0 {
				s := sub{randomFilter(rng), groups[rng.IntN(len(groups))], fmt.Sprint(rng.IntN(8))}
				fmt.Sscan(s.client, &c)
				if existed := tr.Unsubscribe(s.filter, s.group, c); existed != live[s] {
					t.Fatalf("Unsubscribe(%+v) = %v, want %v", s, existed, live[s])
				}
				delete(live, s)
			}
		}
		if tr.Len() != len(live) {
			t.Fatalf("round %d: Len = %d, want %d", round, tr.Len(), len(live))
		}
		for range 100 {
			name := randomName(rng)
			var got, want []string
			tr.Match(name, func(c int, filter string) {
				got = append(got, fmt.Sprintf("%s||%d", filter, c))
			}, func(g *Group[int, string]) {
				for _, m := range g.Members {
					if m.Value != g.Filter {
						t.Fatalf("group %s/%s holds member with filter %s", g.Name, g.Filter, m.Value)
					}
					got = append(got, fmt.Sprintf("%s|%s|%d", g.Filter, g.Name, m.Client))
				}
			})
			for s := range live {
				if Match(s.filter, name) {
					want = append(want, s.filter+"|"+s.group+"|"+s.client)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: Trie.Match(%q) = %q, want %q", round, name, got, want)
			}
		}
	}
}

// TestRetainedMatchesBruteForce does the same for the retained index.
func TestRetainedMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		r := NewRetained[string]()
		live := map[string]bool{}
		for range 60 {
			n := randomName(rng)
			r.Set(n, n)
			live[n] = true
			if rng.IntN(3) == 0 {
				n := randomName(rng)
				if r.Delete(n) != live[n] {
					t.Fatalf("Delete(%q) != %v", n, live[n])
				}
				delete(live, n)
			}
		}
		if r.Len() != len(live) {
			t.Fatalf("round %d: Len = %d, want %d", round, r.Len(), len(live))
		}
		for range 100 {
			filter := randomFilter(rng)
			got := retainedMatch(r, filter)
			var want []string
			for n := range live {
				if Match(filter, n) {
					want = append(want, n)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: Retained.Match(%q) = %q, want %q", round, filter, got, want)
			}
		}
	}
}

// TestMatchAgreesWithReference checks Match against the naive refMatch on
// random filters and names.
func TestMatchAgreesWithReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		f, n := randomFilter(rng), randomName(rng)
		if Match(f, n) != refMatch(f, n) {
			t.Fatalf("Match(%q, %q) = %v, refMatch says %v", f, n, Match(f, n), refMatch(f, n))
		}
	}
}

// TestTrieConcurrent runs subscribers, unsubscribers, publishers and
// snapshots at once; run with -race. Each publisher's topic has one
// subscriber that never leaves, which every Match must find.
func TestTrieConcurrent(t *testing.T) {
	tr := NewTrie[int, int]()
	r := NewRetained[int]()
	const workers, iterations = 4, 2000
	for w := range workers {
		tr.Subscribe(fmt.Sprintf("fixed/%d", w), "", -1, w)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { // churn
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range iterations {
				f := randomFilter(rng)
				group := ""
				if i%3 == 0 {
					group = "g"
				}
				tr.Subscribe(f, group, w, i)
				r.Set(randomName(rng), i)
				if i%2 == 0 {
					tr.Unsubscribe(f, group, w)
					r.Delete(randomName(rng))
				}
			}
		})
		wg.Go(func() { // publish
			name := fmt.Sprintf("fixed/%d", w)
			for range iterations {
				found := false
				tr.Match(name, func(c, v int) {
					if c == -1 && v == w {
						found = true
					}
				}, func(g *Group[int, int]) { _ = g.Members[g.Next()] })
				if !found {
					t.Errorf("Match(%q) missed its permanent subscriber", name)
					return
				}
				r.Match("#", func(string, int) bool { return true })
			}
		})
	}
	wg.Go(func() { // snapshot
		for range 50 {
			tr.Walk(func(string, string, int, int) bool { return true })
			_ = tr.Len() + r.Len()
		}
	})
	wg.Wait()
}
