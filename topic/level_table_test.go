package topic

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// leaf is the smallest levelled node, for testing childSet alone.
type leaf struct{ level string }

func (l *leaf) key() string { return l.level }

func (l *leaf) hasKey(level string) bool { return l.level == level }

// checkTable fails t unless s holds exactly want, every node where lookups
// will probe for it, each table within its load limit.
func checkTable(t *testing.T, s *childSet[*leaf], want map[string]*leaf) {
	t.Helper()
	if s.len() != len(want) {
		t.Fatalf("len = %d, want %d", s.len(), len(want))
	}
	for k, c := range want {
		if got := s.get(k); got != c {
			t.Fatalf("get(%q) = %v, want %v", k, got, c)
		}
	}
	if s.get("absent") != nil {
		t.Fatal("get of an absent level found a node")
	}
	seen := 0
	s.each(func(c *leaf) bool {
		if want[c.level] != c {
			t.Fatalf("each gave %q, which is not in the set", c.level)
		}
		seen++
		return true
	})
	if seen != len(want) {
		t.Fatalf("each gave %d nodes, want %d", seen, len(want))
	}
	if s.table == nil {
		return
	}
	for i, tb := range s.table.dir {
		if 4*tb.used > 3*len(tb.slots) || len(tb.slots) > maxTableSlots || tb.depth > s.table.depth {
			t.Fatalf("table %d: %d used of %d slots, depth %d of %d", i, tb.used, len(tb.slots), tb.depth, s.table.depth)
		}
		for _, c := range tb.slots {
			if c != nil && s.table.table(levelHash(c.level)) != tb {
				t.Fatalf("%q is in directory entry %d, not where its hash leads", c.level, i)
			}
		}
	}
}

// TestChildSetGrowsSplitsAndShrinks takes a child set from a slice through
// a table that splits many times, down through removals (which shift
// entries back) to a slice again.
func TestChildSetGrowsSplitsAndShrinks(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var s childSet[*leaf]
	want := map[string]*leaf{}
	const n = 20000
	for i := range n {
		c := &leaf{fmt.Sprintf("%08d", i)}
		s.add(c)
		want[c.level] = c
		if i%997 == 0 || i == inlineChildren {
			checkTable(t, &s, want)
		}
	}
	checkTable(t, &s, want)
	if s.table == nil || len(s.table.dir) < n/maxTableSlots {
		t.Fatalf("%d children did not split the table", n)
	}
	// Remove in random order, adding some back, down to a few.
	order := rng.Perm(n)
	for i, j := range order[:n-3] {
		k := fmt.Sprintf("%08d", j)
		s.remove(want[k])
		delete(want, k)
		if i%5 == 0 {
			c := &leaf{fmt.Sprintf("back%d", i)}
			s.add(c)
			want[c.level] = c
			if i%2 == 0 {
				s.remove(c)
				delete(want, c.level)
			}
		}
		if i%1999 == 0 {
			checkTable(t, &s, want)
		}
	}
	for k, c := range want {
		if len(want) <= 3 {
			break
		}
		s.remove(c)
		delete(want, k)
	}
	checkTable(t, &s, want)
	if s.table != nil {
		t.Fatalf("set of %d did not return to a slice", s.len())
	}
}

// TestLevelTableCollisions fills one small table so that probe runs wrap
// around its end, then removes from the middle of the runs.
func TestLevelTableCollisions(t *testing.T) {
	for round := range 200 {
		rng := rand.New(rand.NewPCG(uint64(round), 13))
		var s childSet[*leaf]
		want := map[string]*leaf{}
		for i := range 12 { // 12 of 16 slots: long runs
			c := &leaf{fmt.Sprint(i)}
			s.add(c)
			want[c.level] = c
		}
		for _, i := range rng.Perm(12)[:7] {
			k := fmt.Sprint(i)
			s.remove(want[k])
			delete(want, k)
			if s.table != nil {
				checkTable(t, &s, want)
			}
		}
		checkTable(t, &s, want)
	}
}

// TestLevelTableShrinksAfterCrowdLeaves proves the slots a crowd of
// children grew are released when most of it leaves, even while more
// than inlineChildren/2 stay (so the set remains a table): a node such as
// "user" keeps memory for the children it has, not for its peak.
func TestLevelTableShrinksAfterCrowdLeaves(t *testing.T) {
	var s childSet[*leaf]
	want := map[string]*leaf{}
	const n, stay = 20000, 100
	for i := range n {
		c := &leaf{fmt.Sprintf("%08d", i)}
		s.add(c)
		want[c.level] = c
	}
	for i := stay; i < n; i++ {
		k := fmt.Sprintf("%08d", i)
		s.remove(want[k])
		delete(want, k)
	}
	checkTable(t, &s, want)
	slots, tables := 0, 0
	for i, tb := range s.table.dir {
		if i > 0 && s.table.dir[i-1] == tb {
			continue
		}
		tables++
		slots += len(tb.slots)
	}
	if slots > 16*tables+8*stay { // each table its minimum size or 1/8 full
		t.Fatalf("%d children left in %d tables of %d slots: the peak's memory is kept", stay, tables, slots)
	}
}
