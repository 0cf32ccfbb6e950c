package topic

import (
	"fmt"
	"testing"
)

// BenchmarkTrieMatchFanout matches one topic held by n subscribers: the
// live-feed case. ns/op grows with n (each subscriber is visited); allocs/op
// must stay 0.
func BenchmarkTrieMatchFanout(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			tr := NewTrie[int, uint8]()
			for i := range n {
				tr.Subscribe("feed/match/42", "", i, 1)
			}
			tr.Subscribe("feed/+/42", "", -1, 1)
			tr.Subscribe("feed/#", "", -2, 1)
			var visited int
			visit := func(int, uint8) { visited++ }
			b.ReportAllocs()
			for b.Loop() {
				tr.Match("feed/match/42", visit, nil)
			}
			if visited != b.N*(n+2) {
				b.Fatalf("visited %d, want %d", visited, b.N*(n+2))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(visited), "ns/delivery")
		})
	}
}

// BenchmarkTrieMatchUnicast matches among 100k distinct topics of one
// subscriber each (user/N/inbox): the chat and command-and-control case.
func BenchmarkTrieMatchUnicast(b *testing.B) {
	const n = 100000
	tr := NewTrie[int, uint8]()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("user/%d/inbox", i)
		tr.Subscribe(names[i], "", i, 1)
	}
	tr.Subscribe("user/+/presence", "", -1, 1)
	var visited int
	visit := func(int, uint8) { visited++ }
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tr.Match(names[i%n], visit, nil)
		i++
	}
	if visited != b.N {
		b.Fatalf("visited %d, want %d", visited, b.N)
	}
}

// BenchmarkTrieMatchShared matches a topic held by a shared group of 100
// members and picks one with Next, as the router does.
func BenchmarkTrieMatchShared(b *testing.B) {
	tr := NewTrie[int, uint8]()
	for i := range 100 {
		tr.Subscribe("jobs/+", "workers", i, 1)
	}
	var picked int
	visitShared := func(g *Group[int, uint8]) { picked += g.Members[g.Next()].Client }
	b.ReportAllocs()
	for b.Loop() {
		tr.Match("jobs/resize", nil, visitShared)
	}
}

// BenchmarkTrieMatchParallel is the fan-in case: many publishers matching
// at once, contending on the read lock.
func BenchmarkTrieMatchParallel(b *testing.B) {
	const n = 100000
	tr := NewTrie[int, uint8]()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("user/%d/inbox", i)
		tr.Subscribe(names[i], "", i, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		visit := func(int, uint8) {}
		for pb.Next() {
			tr.Match(names[i%n], visit, nil)
			i++
		}
	})
}

// BenchmarkTrieSubscribe measures one Subscribe plus one Unsubscribe with
// n subscriptions already in the trie, either all on the same topic as the
// new one (fan-out) or each on its own topic (unicast). The cost must not
// grow with n.
func BenchmarkTrieSubscribe(b *testing.B) {
	for _, shape := range []string{"sametopic", "unicast"} {
		for _, n := range []int{1000, 100000} {
			b.Run(fmt.Sprintf("%s/existing=%d", shape, n), func(b *testing.B) {
				tr := NewTrie[int, uint8]()
				for i := range n {
					filter := "feed/live"
					if shape == "unicast" {
						filter = fmt.Sprintf("user/%d/inbox", i)
					}
					tr.Subscribe(filter, "", i, 1)
				}
				const batch = 1024
				filters := make([]string, batch)
				for i := range filters {
					filters[i] = "feed/live"
					if shape == "unicast" {
						filters[i] = fmt.Sprintf("user/new%d/inbox", i)
					}
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					f, c := filters[i%batch], n+i%batch
					tr.Subscribe(f, "", c, 1)
					tr.Unsubscribe(f, "", c)
					i++
				}
				if tr.Len() != n {
					b.Fatalf("Len = %d, want %d", tr.Len(), n)
				}
			})
		}
	}
}

// BenchmarkRetainedMatch finds the retained values for a filter among 100k
// topics user/N/{inbox,status}: one exact name, one '+' level across all
// users (which must visit every user), and one '#' under one user.
func BenchmarkRetainedMatch(b *testing.B) {
	const n = 100000
	r := NewRetained[uint8]()
	for i := range n {
		r.Set(fmt.Sprintf("user/%d/inbox", i), 1)
		r.Set(fmt.Sprintf("user/%d/status", i), 1)
	}
	for _, filter := range []string{"user/4242/inbox", "user/4242/#", "user/+/status"} {
		b.Run(filter, func(b *testing.B) {
			visit := func(string, uint8) bool { return true }
			b.ReportAllocs()
			for b.Loop() {
				r.Match(filter, visit)
			}
		})
	}
}

func BenchmarkValidateName(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if ValidateName("user/123456/inbox/messages") != nil {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if !Match("user/+/inbox/#", "user/123456/inbox/messages") {
			b.Fatal("no match")
		}
	}
}
