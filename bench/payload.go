package bench

import (
	"encoding/binary"
	"sync"
)

// The bench's payload starts with a 24-byte header, then zero padding to
// Options.Size:
//
//	0  'H' 'B'       magic, so stray messages (another run's) are ignored
//	2  stream kind   0 = the publisher's main topic, 1 = chat private topic
//	3  reserved
//	4  publisher id  uint32, global across workers
//	8  sequence      uint64, per (publisher, stream, destination)
//	16 due at        int64 unix nanoseconds, read by the subscriber
//
// "Due at" is when the rate called for the message (or when it was
// written, if that was earlier: see member.publish). The subscriber
// derives delivery latency from it, so a publisher that falls behind
// shows up in the latency; across machines it is only as good as their
// clock synchronisation.
const (
	streamMain    = 0
	streamPrivate = 1
)

func putHeader(b []byte, kind byte, pub uint32, seq uint64, dueAt int64) {
	b[0], b[1], b[2], b[3] = 'H', 'B', kind, 0
	binary.BigEndian.PutUint32(b[4:], pub)
	binary.BigEndian.PutUint64(b[8:], seq)
	binary.BigEndian.PutUint64(b[16:], uint64(dueAt))
}

// header is a decoded payload header.
type header struct {
	kind  byte
	pub   uint32
	seq   uint64
	dueAt int64
}

func readHeader(b []byte) (header, bool) {
	if len(b) < payloadHeader || b[0] != 'H' || b[1] != 'B' {
		return header{}, false
	}
	return header{
		kind:  b[2],
		pub:   binary.BigEndian.Uint32(b[4:]),
		seq:   binary.BigEndian.Uint64(b[8:]),
		dueAt: int64(binary.BigEndian.Uint64(b[16:])),
	}, true
}

// window is how far behind the highest sequence seen a late message can
// still be told apart from a duplicate.
const window = 64

// stream follows one publisher's sequence as one subscriber sees it.
// seen bit i is set when sequence max-i arrived.
type stream struct {
	key        uint64 // publisher id << 8 | kind
	max        uint64
	seen       uint64
	started    bool
	delivered  uint64 // everything received, duplicates included
	duplicates uint64
	outOfOrder uint64
}

// observe records the arrival of seq. A sequence below max that is within
// the window is a duplicate if already seen and out of order otherwise; one
// further behind cannot be told apart and counts as out of order.
func (s *stream) observe(seq uint64) (dup, ooo bool) {
	s.delivered++
	switch {
	case !s.started:
		s.started, s.max, s.seen = true, seq, 1
	case seq > s.max:
		shift := seq - s.max
		if shift >= window {
			s.seen = 0
		} else {
			s.seen <<= shift
		}
		s.seen |= 1
		s.max = seq
	default:
		d := s.max - seq
		switch {
		case d >= window:
			ooo = true
		case s.seen&(1<<d) != 0:
			dup = true
		default:
			s.seen |= 1 << d
			ooo = true
		}
	}
	if dup {
		s.duplicates++
	}
	if ooo {
		s.outOfOrder++
	}
	return dup, ooo
}

// tracker holds the streams one subscriber (or one shared group in this
// process) receives. Few streams are searched linearly; many go to a map.
type tracker struct {
	// unordered is set for a shared subscription group: its members'
	// connections interleave, so arrival order says nothing.
	unordered bool

	mu      sync.Mutex
	streams []stream
	index   map[uint64]int
}

func (t *tracker) observe(h header) (dup, ooo bool) {
	key := uint64(h.pub)<<8 | uint64(h.kind)
	t.mu.Lock()
	defer t.mu.Unlock()
	i := -1
	if t.index != nil {
		if j, ok := t.index[key]; ok {
			i = j
		}
	} else {
		for j := range t.streams {
			if t.streams[j].key == key {
				i = j
				break
			}
		}
	}
	if i < 0 {
		t.streams = append(t.streams, stream{key: key})
		i = len(t.streams) - 1
		if t.index != nil {
			t.index[key] = i
		} else if len(t.streams) > 16 {
			t.index = make(map[uint64]int, 2*len(t.streams))
			for j := range t.streams {
				t.index[t.streams[j].key] = j
			}
		}
	}
	dup, ooo = t.streams[i].observe(h.seq)
	if t.unordered && ooo {
		t.streams[i].outOfOrder--
		ooo = false
	}
	return dup, ooo
}

// addTo adds this tracker's counts per publisher into m.
func (t *tracker) addTo(m map[uint32]*PublisherStats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.streams {
		pub := uint32(s.key >> 8)
		ps := m[pub]
		if ps == nil {
			ps = &PublisherStats{ID: pub}
			m[pub] = ps
		}
		ps.Delivered += int64(s.delivered)
		ps.Duplicates += int64(s.duplicates)
		ps.OutOfOrder += int64(s.outOfOrder)
	}
}

// PublisherStats is the delivery accounting of one publisher: what the
// rate called for, what it sent, what its subscribers should have
// received, and what they did. Lost is Expected minus the distinct
// messages received (Delivered - Duplicates), never below zero; when the
// drain was cut off while deliveries were still arriving, that number is
// CutOff instead and Lost is 0.
type PublisherStats struct {
	ID         uint32 `json:"id"`
	Scheduled  int64  `json:"scheduled"` // messages due by the rate in the publish phase
	Published  int64  `json:"published"`
	Expected   int64  `json:"expected"`
	Delivered  int64  `json:"delivered"`
	Duplicates int64  `json:"duplicates"`
	OutOfOrder int64  `json:"out_of_order"`
	Lost       int64  `json:"lost"`
	CutOff     int64  `json:"cut_off,omitempty"`
}

func (p *PublisherStats) add(q *PublisherStats) {
	p.Scheduled += q.Scheduled
	p.Published += q.Published
	p.Expected += q.Expected
	p.Delivered += q.Delivered
	p.Duplicates += q.Duplicates
	p.OutOfOrder += q.OutOfOrder
}

func (p *PublisherStats) settle() {
	p.Lost = p.Expected - (p.Delivered - p.Duplicates)
	if p.Lost < 0 {
		p.Lost = 0
	}
}
