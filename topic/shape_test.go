package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// shape describes t's nodes, one line per node: the labels from the root
// joined by '|' and what the node holds, sorted. It fails t if a node
// breaks an invariant of the compressed layout.
func shape[K comparable, V any](tb testing.TB, tr *Trie[K, V]) []string {
	tb.Helper()
	var lines []string
	var walk func(n *node[K, V], path string, literal bool)
	walk = func(n *node[K, V], path string, literal bool) {
		e := n.ext
		switch {
		case e != nil && e.empty():
			tb.Fatalf("%s: empty extension kept", path)
		case e != nil && n.hasOne && len(e.subs) > 0:
			tb.Fatalf("%s: inline subscriber and %d more in the extension", path, len(e.subs))
		case e != nil && len(e.subs) == 1:
			tb.Fatalf("%s: a single subscriber not inline", path)
		case n != tr.root && n.empty():
			tb.Fatalf("%s: empty node not pruned", path)
		case n != tr.root && literal && n.foldable():
			tb.Fatalf("%s: bare chain not folded", path)
		case literal && slices.ContainsFunc(strings.Split(n.label, "/"), func(l string) bool { return l == "+" || l == "#" }):
			tb.Fatalf("%s: wildcard inside a label", path)
		}
		subs, groups := btoi(n.hasOne), 0
		if e != nil {
			subs += len(e.subs)
			groups = len(e.groups)
		}
		lines = append(lines, fmt.Sprintf("%s subs=%d groups=%d", path, subs, groups))
		if e == nil {
			return
		}
		e.children.each(func(c *node[K, V]) bool {
			if e.children.get(c.key()) != c {
				tb.Fatalf("%s|%s: not under its first level %q", path, c.label, c.key())
			}
			walk(c, path+"|"+c.label, true)
			return true
		})
		if e.plus != nil {
			walk(e.plus, path+"|+", false)
		}
		if e.hash != nil {
			walk(e.hash, path+"|#", false)
		}
	}
	walk(tr.root, "", false)
	slices.Sort(lines)
	return lines
}

// TestTrieCompressedShape checks where labels split and fold: the shape
// after each step is the one a trie built afresh from the same filters has.
func TestTrieCompressedShape(t *testing.T) {
	steps := []struct {
		sub   bool
		f     string
		shape []string
	}{
		{true, "user/00000001/inbox", []string{" subs=0 groups=0", "|user/00000001/inbox subs=1 groups=0"}},
		{true, "user/00000002/inbox", []string{" subs=0 groups=0", "|user subs=0 groups=0", "|user|00000001/inbox subs=1 groups=0", "|user|00000002/inbox subs=1 groups=0"}},
		{true, "user/00000002", []string{" subs=0 groups=0", "|user subs=0 groups=0", "|user|00000001/inbox subs=1 groups=0", "|user|00000002 subs=1 groups=0", "|user|00000002|inbox subs=1 groups=0"}},
		{true, "user/+/presence", []string{" subs=0 groups=0", "|user subs=0 groups=0", "|user|+ subs=0 groups=0", "|user|+|presence subs=1 groups=0", "|user|00000001/inbox subs=1 groups=0", "|user|00000002 subs=1 groups=0", "|user|00000002|inbox subs=1 groups=0"}},
		{false, "user/00000002", []string{" subs=0 groups=0", "|user subs=0 groups=0", "|user|+ subs=0 groups=0", "|user|+|presence subs=1 groups=0", "|user|00000001/inbox subs=1 groups=0", "|user|00000002/inbox subs=1 groups=0"}},
		{false, "user/00000001/inbox", []string{" subs=0 groups=0", "|user subs=0 groups=0", "|user|+ subs=0 groups=0", "|user|+|presence subs=1 groups=0", "|user|00000002/inbox subs=1 groups=0"}},
		{false, "user/+/presence", []string{" subs=0 groups=0", "|user/00000002/inbox subs=1 groups=0"}},
		{true, "/", []string{" subs=0 groups=0", "|/ subs=1 groups=0", "|user/00000002/inbox subs=1 groups=0"}},
		{true, "//x", []string{" subs=0 groups=0", "|/ subs=1 groups=0", "|/|x subs=1 groups=0", "|user/00000002/inbox subs=1 groups=0"}},
		{false, "/", []string{" subs=0 groups=0", "|//x subs=1 groups=0", "|user/00000002/inbox subs=1 groups=0"}},
		{false, "//x", []string{" subs=0 groups=0", "|user/00000002/inbox subs=1 groups=0"}},
		{false, "user/00000002/inbox", []string{" subs=0 groups=0"}},
	}
	tr := NewTrie[int, int]()
	for i, st := range steps {
		if st.sub {
			tr.Subscribe(st.f, "", 1, i)
		} else if !tr.Unsubscribe(st.f, "", 1) {
			t.Fatalf("step %d: Unsubscribe(%q) = false", i, st.f)
		}
		if got := shape(t, tr); !slices.Equal(got, st.shape) {
			t.Fatalf("step %d (%v %q): shape\n%s\nwant\n%s", i, st.sub, st.f, strings.Join(got, "\n"), strings.Join(st.shape, "\n"))
		}
	}
	if tr.root.ext != nil {
		t.Fatal("root keeps an extension after everything went")
	}
}

// TestTrieShapeIndependentOfHistory churns random subscriptions and checks
// that the trie has the same nodes as one built from the survivors alone:
// splitting and folding leave nothing behind, so churn does not grow it.
func TestTrieShapeIndependentOfHistory(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	groups := []string{"", "", "", "g"}
	for round := range 100 {
		tr := NewTrie[int, int]()
		live := map[sub]bool{}
		for range 150 {
			s := sub{randomFilter(rng), groups[rng.IntN(len(groups))], fmt.Sprint(rng.IntN(4))}
			var c int
			fmt.Sscan(s.client, &c)
			if rng.IntN(2) == 0 {
				tr.Subscribe(s.filter, s.group, c, 0)
				live[s] = true
			} else if tr.Unsubscribe(s.filter, s.group, c) != live[s] {
				t.Fatalf("round %d: Unsubscribe(%+v) != %v", round, s, live[s])
			} else {
				delete(live, s)
			}
		}
		fresh := NewTrie[int, int]()
		for s := range live {
			var c int
			fmt.Sscan(s.client, &c)
			fresh.Subscribe(s.filter, s.group, c, 0)
		}
		if got, want := shape(t, tr), shape(t, fresh); !slices.Equal(got, want) {
			t.Fatalf("round %d: after churn\n%s\nbuilt afresh\n%s", round, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		var walked []sub
		tr.Walk(func(filter, group string, c, _ int) bool {
			walked = append(walked, sub{filter, group, fmt.Sprint(c)})
			return true
		})
		if len(walked) != len(live) {
			t.Fatalf("round %d: Walk gave %d subscriptions, want %d", round, len(walked), len(live))
		}
		for _, s := range walked {
			if !live[s] {
				t.Fatalf("round %d: Walk gave %+v, which is not subscribed", round, s)
			}
		}
	}
}
