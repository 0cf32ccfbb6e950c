package topic

import (
	"fmt"
	"runtime"
	"testing"
)

// benchSession and benchSubscription stand in for the broker's *session and
// *subscription, so trie nodes and members have the broker's layout.
type (
	benchSession      struct{ id int }
	benchSubscription struct{ qos byte }
)

// memoryShapes are the subscription sets whose memory is measured: one
// unicast topic per client (user/N/inbox, the chat and command case) and
// every client on one topic (the live-feed case).
var memoryShapes = []struct {
	name   string
	filter func(i int) string
}{
	{"unicast", func(i int) string { return fmt.Sprintf("user/%08d/inbox", i) }},
	{"sametopic", func(int) string { return "feed/live" }},
}

// trieBytesPerSub returns the heap bytes a Trie holds per subscription
// after n clients subscribe to filter(i). Filters, sessions and values are
// made beforehand, as the broker owns them, so only the trie's own memory
// is counted.
func trieBytesPerSub(n int, filter func(i int) string) float64 {
	filters := make([]string, n)
	sessions := make([]*benchSession, n)
	subs := make([]*benchSubscription, n)
	for i := range n {
		filters[i] = filter(i)
		sessions[i] = &benchSession{i}
		subs[i] = &benchSubscription{1}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := NewTrie[*benchSession, *benchSubscription]()
	for i := range n {
		tr.Subscribe(filters[i], "", sessions[i], subs[i])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	runtime.KeepAlive(filters)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// BenchmarkTrieMemory reports the heap bytes per subscription of 15,000
// subscriptions, the broker's idle-client scale, as bytes/sub.
func BenchmarkTrieMemory(b *testing.B) {
	const n = 15000
	for _, shape := range memoryShapes {
		b.Run(shape.name, func(b *testing.B) {
			var perSub float64
			for b.Loop() {
				perSub = trieBytesPerSub(n, shape.filter)
			}
			b.ReportMetric(perSub, "bytes/sub")
		})
	}
}
