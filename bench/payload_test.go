package bench

import "testing"

func TestStreamTellsDuplicatesFromLateMessages(t *testing.T) {
	tests := []struct {
		name     string
		seqs     []uint64
		dup, ooo uint64
	}{
		{"in order", []uint64{0, 1, 2, 3}, 0, 0},
		{"gap is not an error here", []uint64{0, 2, 5}, 0, 0},
		{"late arrival", []uint64{0, 2, 1, 3}, 0, 1},
		{"duplicate", []uint64{0, 1, 1, 2, 0}, 2, 0},
		{"duplicate of a late one", []uint64{0, 2, 1, 1}, 1, 1},
		{"beyond the window counts as late", []uint64{0, 100, 1}, 0, 1},
	}
	for _, tc := range tests {
		var s stream
		for _, q := range tc.seqs {
			s.observe(q)
		}
		if s.duplicates != tc.dup || s.outOfOrder != tc.ooo || s.delivered != uint64(len(tc.seqs)) {
			t.Errorf("%s: dup %d ooo %d delivered %d; want %d %d %d", tc.name, s.duplicates, s.outOfOrder, s.delivered, tc.dup, tc.ooo, len(tc.seqs))
		}
	}
}

func TestTrackerCountsPerPublisherPastTheLinearLimit(t *testing.T) {
	var tr tracker
	for seq := uint64(0); seq < 3; seq++ {
		for pub := uint32(0); pub < 40; pub++ {
			tr.observe(header{pub: pub, seq: seq})
		}
	}
	tr.observe(header{pub: 7, seq: 1}) // one duplicate
	m := map[uint32]*PublisherStats{}
	tr.addTo(m)
	if len(m) != 40 {
		t.Fatalf("%d publishers, want 40", len(m))
	}
	p := m[7]
	p.Expected = 3
	p.settle()
	if p.Delivered != 4 || p.Duplicates != 1 || p.Lost != 0 {
		t.Errorf("publisher 7: %+v", *p)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	b := make([]byte, 64)
	putHeader(b, streamPrivate, 42, 1<<40, 1234567890123)
	h, ok := readHeader(b)
	if !ok || h != (header{kind: streamPrivate, pub: 42, seq: 1 << 40, dueAt: 1234567890123}) {
		t.Errorf("got %+v %v", h, ok)
	}
	if _, ok := readHeader([]byte("hello, not a bench payload")); ok {
		t.Error("foreign payload accepted")
	}
}
