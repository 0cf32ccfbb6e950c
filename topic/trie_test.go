package topic

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// sub is one subscription as tests describe it.
type sub struct {
	filter, group, client string
}

// matched returns the ordinary subscriptions ("client@filter") and the
// shared groups ("$share/group/filter:members") that t.Match visits for
// name, sorted.
func matched(t *Trie[string, string], name string) (ordinary, shared []string) {
	t.Match(name, func(client, filter string) {
		ordinary = append(ordinary, client+"@"+filter)
	}, func(g *Group[string, string]) {
		var members []string
		for _, m := range g.Members {
			members = append(members, m.Client)
		}
		slices.Sort(members)
		shared = append(shared, "$share/"+g.Name+"/"+g.Filter+":"+strings.Join(members, ","))
	})
	slices.Sort(ordinary)
	slices.Sort(shared)
	return ordinary, shared
}

// TestTrieMatchSpecExamples subscribes every filter of matchCases and
// checks that each name reaches exactly the filters Match accepts.
func TestTrieMatchSpecExamples(t *testing.T) {
	tr := NewTrie[string, string]()
	filters := map[string]bool{}
	for _, tt := range matchCases {
		if !filters[tt.filter] {
			filters[tt.filter] = true
			tr.Subscribe(tt.filter, "", "c", tt.filter) // the value is the filter
		}
	}
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := matched(tr, tt.topic)
			if slices.Contains(got, "c@"+tt.filter) != tt.want {
				t.Fatalf("Trie.Match(%q) = %v; want filter %q included: %v", tt.topic, got, tt.filter, tt.want)
			}
			var want []string
			for f := range filters {
				if Match(f, tt.topic) {
					want = append(want, "c@"+f)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Trie.Match(%q) = %v, want %v", tt.topic, got, want)
			}
		})
	}
}

func TestTrieSubscribeReplaceUnsubscribe(t *testing.T) {
	tr := NewTrie[string, string]()
	steps := []struct {
		op       string // "sub" or "unsub"
		s        sub
		value    string
		wantBool bool // replaced for sub, existed for unsub
		wantLen  int
	}{
		{"sub", sub{"a/b", "", "c1"}, "qos0", false, 1},
		{"sub", sub{"a/b", "", "c1"}, "qos1", true, 1},  // [MQTT-3.8.4-3] same filter replaces
		{"sub", sub{"a/+", "", "c1"}, "qos0", false, 2}, // another filter is another subscription
		{"sub", sub{"a/b", "", "c2"}, "qos2", false, 3},
		{"sub", sub{"a/b", "g", "c1"}, "qos0", false, 4}, // shared is distinct from ordinary
		{"sub", sub{"a/b", "g", "c1"}, "qos1", true, 4},
		{"sub", sub{"a/b", "h", "c1"}, "qos0", false, 5}, // another group is distinct
		{"unsub", sub{"a/b", "", "c3"}, "", false, 5},
		{"unsub", sub{"a/x", "", "c1"}, "", false, 5},
		{"unsub", sub{"a/b/c", "", "c1"}, "", false, 5},
		{"unsub", sub{"a/b", "x", "c1"}, "", false, 5},
		{"unsub", sub{"a/b", "g", "c2"}, "", false, 5},
		{"unsub", sub{"a/b", "", "c1"}, "", true, 4},
		{"unsub", sub{"a/b", "", "c1"}, "", false, 4},
		{"unsub", sub{"a/b", "g", "c1"}, "", true, 3},
	}
	for i, st := range steps {
		var got bool
		if st.op == "sub" {
			got = tr.Subscribe(st.s.filter, st.s.group, st.s.client, st.value)
		} else {
			got = tr.Unsubscribe(st.s.filter, st.s.group, st.s.client)
		}
		if got != st.wantBool || tr.Len() != st.wantLen {
			t.Fatalf("step %d %s %+v = %v, Len %d; want %v, Len %d", i, st.op, st.s, got, tr.Len(), st.wantBool, st.wantLen)
		}
	}
	ordinary, shared := matched(tr, "a/b")
	wantOrdinary := []string{"c1@qos0", "c2@qos2"} // c1 via a/+, c2 via a/b
	wantShared := []string{"$share/h/a/b:c1"}
	if !slices.Equal(ordinary, wantOrdinary) || !slices.Equal(shared, wantShared) {
		t.Fatalf("Match(a/b) = %v %v, want %v %v", ordinary, shared, wantOrdinary, wantShared)
	}
}

func TestTrieVisitsClientOncePerMatchingFilter(t *testing.T) {
	tr := NewTrie[string, int]()
	for i, f := range []string{"a/b", "a/+", "a/#", "#", "+/b", "x/y"} {
		tr.Subscribe(f, "", "c1", i)
	}
	var got []int
	tr.Match("a/b", func(client string, v int) { got = append(got, v) }, nil)
	slices.Sort(got)
	if want := []int{0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Fatalf("visited %v, want %v (one visit per matching filter)", got, want)
	}
}

// TestTriePrunes proves Unsubscribe leaves no empty node behind, so a trie
// that churns through unicast topics does not grow.
func TestTriePrunes(t *testing.T) {
	tr := NewTrie[int, int]()
	subs := []sub{
		{"a/b/c", "", "1"}, {"a/b/c", "", "2"}, {"a/+/c", "", "1"}, {"a/#", "", "1"},
		{"a/b/c/d/e", "", "1"}, {"#", "", "1"}, {"+", "", "1"}, {"a/b", "g", "1"},
		{"a/b", "g", "2"}, {"a//", "", "1"}, {"$SYS/x", "", "1"},
	}
	for n := 0; n < 20; n++ {
		tr.Subscribe(fmt.Sprintf("user/%d/inbox", n), "", n, n)
	}
	for n := 0; n < 20; n++ {
		tr.Unsubscribe(fmt.Sprintf("user/%d/inbox", n), "", n)
	}
	for _, s := range subs {
		var c int
		fmt.Sscan(s.client, &c)
		tr.Subscribe(s.filter, s.group, c, 0)
	}
	for i := len(subs) - 1; i >= 0; i-- {
		s := subs[(i*7)%len(subs)] // an order unlike the subscribe order
		var c int
		fmt.Sscan(s.client, &c)
		if !tr.Unsubscribe(s.filter, s.group, c) {
			t.Fatalf("Unsubscribe(%+v) = false", s)
		}
	}
	if tr.Len() != 0 {
		t.Fatalf("Len = %d after removing everything", tr.Len())
	}
	r := tr.root
	if !r.empty() {
		t.Fatalf("root not empty after removing everything: %+v", r)
	}
}

func TestTrieManySubscribersOnOneTopic(t *testing.T) {
	const n = 1000
	tr := NewTrie[int, int]()
	for i := range n {
		tr.Subscribe("feed/live", "", i, i)
	}
	// Remove every third, so swap-removes run across the index threshold.
	for i := 0; i < n; i += 3 {
		if !tr.Unsubscribe("feed/live", "", i) {
			t.Fatalf("Unsubscribe(%d) = false", i)
		}
	}
	seen := map[int]int{}
	tr.Match("feed/live", func(c, v int) {
		if c != v {
			t.Errorf("client %d has value %d", c, v)
		}
		seen[c]++
	}, nil)
	for i := range n {
		if want := btoi(i%3 != 0); seen[i] != want {
			t.Fatalf("client %d visited %d times, want %d", i, seen[i], want)
		}
	}
	// Drain to a handful and back, through the index drop and rebuild.
	for i := 0; i < n-2; i++ {
		tr.Unsubscribe("feed/live", "", i)
	}
	for i := range 20 {
		tr.Subscribe("feed/live", "", i, i)
	}
	if tr.Subscribe("feed/live", "", 5, 50) != true {
		t.Fatal("Subscribe of an existing member did not replace")
	}
	if tr.Len() != 21 { // 998 (999 went with every third) and 0..19
		t.Fatalf("Len = %d, want 21", tr.Len())
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestTrieSharedGroups(t *testing.T) {
	tr := NewTrie[string, string]()
	// Section 4.8.2 examples: two groups on one filter are distinct
	// subscriptions; one group name at another filter is another Group.
	tr.Subscribe("sport/tennis/+", "consumer1", "a", "1")
	tr.Subscribe("sport/tennis/+", "consumer1", "b", "1")
	tr.Subscribe("sport/tennis/+", "consumer1", "c", "1")
	tr.Subscribe("sport/tennis/+", "consumer2", "a", "2")
	tr.Subscribe("sport/#", "consumer1", "d", "3")
	tr.Subscribe("sport/tennis/+", "", "a", "0")
	tr.Subscribe("#", "all", "e", "4")
	ordinary, shared := matched(tr, "sport/tennis/player1")
	wantShared := []string{
		"$share/all/#:e",
		"$share/consumer1/sport/#:d",
		"$share/consumer1/sport/tennis/+:a,b,c",
		"$share/consumer2/sport/tennis/+:a",
	}
	if !slices.Equal(ordinary, []string{"a@0"}) || !slices.Equal(shared, wantShared) {
		t.Fatalf("Match = %v %v, want [a@0] %v", ordinary, shared, wantShared)
	}
	// [MQTT-4.7.2-1] applies to shared filters too.
	if _, shared := matched(tr, "$SYS/x"); len(shared) != 0 {
		t.Fatalf("Match($SYS/x) visited groups %v", shared)
	}
	if tr.Len() != 7 {
		t.Fatalf("Len = %d, want 7", tr.Len())
	}
	tr.Unsubscribe("sport/tennis/+", "consumer1", "b")
	_, shared = matched(tr, "sport/tennis/player1")
	if !slices.Contains(shared, "$share/consumer1/sport/tennis/+:a,c") {
		t.Fatalf("after unsubscribing b: %v", shared)
	}
	tr.Unsubscribe("sport/tennis/+", "consumer2", "a")
	_, shared = matched(tr, "sport/tennis/player1")
	if len(shared) != 3 {
		t.Fatalf("empty group consumer2 still visited: %v", shared)
	}
}

func TestGroupNextRoundRobins(t *testing.T) {
	tr := NewTrie[int, int]()
	for i := range 3 {
		tr.Subscribe("jobs", "workers", i, i)
	}
	var picks []int
	for range 7 {
		tr.Match("jobs", nil, func(g *Group[int, int]) {
			picks = append(picks, g.Members[g.Next()].Client)
		})
	}
	// Every member once per round, in a fixed order.
	for i := 3; i < len(picks); i++ {
		if picks[i] != picks[i-3] {
			t.Fatalf("picks %v do not cycle through 3 members", picks)
		}
	}
	if first := slices.Sorted(slices.Values(picks[:3])); !slices.Equal(first, []int{0, 1, 2}) {
		t.Fatalf("first round %v, want each member once", picks[:3])
	}
	// Skipping an offline member: call Next again.
	tr.Match("jobs", nil, func(g *Group[int, int]) {
		for range len(g.Members) {
			if m := g.Members[g.Next()]; m.Client != 1 {
				return
			}
		}
		t.Fatal("no online member found")
	})
	var empty Group[int, int]
	if empty.Next() != -1 {
		t.Fatal("Next on an empty group != -1")
	}
}

func TestTrieWalk(t *testing.T) {
	tr := NewTrie[string, int]()
	subs := []sub{{"a/b", "", "c1"}, {"a/+", "", "c1"}, {"#", "", "c2"}, {"a/b", "g", "c3"}, {"/", "", "c4"}, {"a/#", "g", "c1"}}
	for i, s := range subs {
		tr.Subscribe(s.filter, s.group, s.client, i)
	}
	var got []sub
	tr.Walk(func(filter, group, client string, v int) bool {
		if subs[v] != (sub{filter, group, client}) {
			t.Errorf("Walk gave %q %q %q with value of %+v", filter, group, client, subs[v])
		}
		got = append(got, sub{filter, group, client})
		return true
	})
	if len(got) != len(subs) {
		t.Fatalf("Walk visited %v, want %v", got, subs)
	}
	n := 0
	tr.Walk(func(string, string, string, int) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Walk went on after fn returned false: %d calls", n)
	}
}

// TestTrieWideNode runs a node through its child set's growth from slice to
// map and back, checking matches, Walk and pruning on the way.
func TestTrieWideNode(t *testing.T) {
	const n = 40
	tr := NewTrie[int, int]()
	r := NewRetained[int]()
	for i := range n {
		tr.Subscribe(fmt.Sprintf("w/%d", i), "", i, i)
		r.Set(fmt.Sprintf("w/%d", i), i)
	}
	tr.Subscribe("w/+", "", -1, -1)
	check := func(live map[int]bool) {
		t.Helper()
		for i := range n {
			var got []int
			tr.Match(fmt.Sprintf("w/%d", i), func(c, v int) { got = append(got, c) }, nil)
			slices.Sort(got)
			want := []int{-1}
			if live[i] {
				want = append(want, i)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("Match(w/%d) = %v, want %v", i, got, want)
			}
			if _, ok := r.Get(fmt.Sprintf("w/%d", i)); ok != live[i] {
				t.Fatalf("Retained.Get(w/%d) = %v, want %v", i, ok, live[i])
			}
		}
		walked := 0
		tr.Walk(func(string, string, int, int) bool { walked++; return true })
		retained := 0
		r.Match("w/+", func(string, int) bool { retained++; return true })
		if walked != len(live)+1 || retained != len(live) {
			t.Fatalf("Walk saw %d, Retained.Match(w/+) saw %d; want %d, %d", walked, retained, len(live)+1, len(live))
		}
		for _, stopAt := range []int{1, 3} {
			calls := 0
			tr.Walk(func(string, string, int, int) bool { calls++; return calls < stopAt })
			if calls != min(stopAt, walked) {
				t.Fatalf("Walk made %d calls, want stop at %d", calls, stopAt)
			}
		}
	}
	live := map[int]bool{}
	for i := range n {
		live[i] = true
	}
	check(live)
	for i := range n - 3 { // down to 3 children: map back to a slice
		tr.Unsubscribe(fmt.Sprintf("w/%d", i), "", i)
		r.Delete(fmt.Sprintf("w/%d", i))
		delete(live, i)
		if i%9 == 0 {
			check(live)
		}
	}
	check(live)
	if w := tr.root.ext.children.get("w"); w.ext.children.table != nil || r.root.children.get("w").children.table != nil {
		t.Fatal("child map not returned to a slice after the node shrank")
	}
}
