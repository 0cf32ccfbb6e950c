package store

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// The append benchmarks measure AppendMessages of one 256-byte QoS 1
// message, as the broker calls it for each acknowledged PUBLISH to a
// persistent session: from one goroutine, and from 64 at once, where
// Pebble's group commit shares each WAL fsync among the waiting writers.
// msgs/s is the store's throughput; for Pebble, commits/fsync is the
// group-commit factor.

func BenchmarkAppendMessagesMemory(b *testing.B) {
	benchAppend(b, func(b *testing.B) Store { return NewMemory() })
}

func BenchmarkAppendMessagesPebble(b *testing.B) {
	benchAppend(b, func(b *testing.B) Store {
		p, err := OpenPebble(b.TempDir(), PebbleOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return p
	})
}

func benchAppend(b *testing.B, open func(b *testing.B) Store) {
	payload := make([]byte, 256)
	b.Run("1goroutine", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		msg := &Message{Topic: "chat/room/1", QoS: 1, Payload: payload}
		entries := []Entry{{ClientID: "client-1", Msg: msg}}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			msg.Seq = uint64(i)
			if err := s.AppendMessages(entries); err != nil {
				b.Fatal(err)
			}
		}
		report(b, s)
	})
	b.Run("64goroutines", func(b *testing.B) {
		s := open(b)
		defer s.Close()
		var clients atomic.Int64
		// RunParallel starts parallelism × GOMAXPROCS goroutines.
		b.SetParallelism(max(1, 64/runtimeProcs()))
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			msg := &Message{Topic: "chat/room/1", QoS: 1, Payload: payload}
			entries := []Entry{{ClientID: "client-" + strconv.FormatInt(clients.Add(1), 10), Msg: msg}}
			for pb.Next() {
				msg.Seq++
				if err := s.AppendMessages(entries); err != nil {
					b.Error(err)
					return
				}
			}
		})
		report(b, s)
	})
}

func report(b *testing.B, s Store) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if p, ok := s.(*Pebble); ok {
		st := p.Stats()
		if st.WALSyncs > 0 {
			b.ReportMetric(float64(st.SyncCommits)/float64(st.WALSyncs), "commits/fsync")
		}
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
