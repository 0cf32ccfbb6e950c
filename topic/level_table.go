package topic

import "hash/maphash"

// levelTable is a hash set of trie nodes keyed by level, for a node with
// many children: "user" above a million "N/inbox" nodes. It is written by
// hand because map[string]*node stores each key's string header beside
// the node that already holds that string: 24-byte slots, about 40 bytes
// per child once load factor and control bytes are counted, which was a
// third of what a unicast subscription cost. Here a slot is the node
// pointer alone, 8 bytes, and lookups hash the child's own label.
//
// Like Go's maps the set is made of tables of at most maxTableSlots slots,
// chosen by the top bits of the hash (extendible hashing), so that growing
// rehashes one small table at a time rather than a million entries at once
// under the trie's write lock. Each table is open-addressed with linear
// probing and kept at most 3/4 full; removal shifts later entries back
// instead of leaving tombstones.
type levelTable[N levelled] struct {
	dir   []*hashTable[N] // indexed by the top depth bits of the hash
	depth uint8
	count int
}

type hashTable[N levelled] struct {
	slots []N // len a power of two; the zero N marks a free slot
	used  int
	depth uint8 // how many top hash bits all its entries share
}

// maxTableSlots bounds the work of one growth step: a table this large
// splits in two instead of doubling.
const maxTableSlots = 1024

// levelSeed seeds every levelTable's hash. It is random per process, so
// clients cannot choose topic levels that collide.
var levelSeed = maphash.MakeSeed()

func levelHash(level string) uint64 { return maphash.String(levelSeed, level) }

// newLevelTable returns a set holding nodes, which have distinct keys and
// number at most 12.
func newLevelTable[N levelled](nodes []N) *levelTable[N] {
	s := &levelTable[N]{dir: []*hashTable[N]{{slots: make([]N, 16)}}}
	for _, c := range nodes {
		s.add(c)
	}
	return s
}

func (s *levelTable[N]) table(h uint64) *hashTable[N] {
	return s.dir[h>>(64-s.depth)] // h>>64 is 0 while there is one table
}

func (s *levelTable[N]) get(level string) N {
	h := levelHash(level)
	t := s.table(h)
	var none N
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		if c := t.slots[i]; c == none || c.hasKey(level) {
			return c
		}
	}
}

// add inserts c, whose key must not be there yet.
func (s *levelTable[N]) add(c N) {
	h := levelHash(c.key())
	t := s.table(h)
	for (t.used+1)*4 > len(t.slots)*3 {
		if len(t.slots) < maxTableSlots {
			t.rehash(t.slots, 2*len(t.slots))
		} else {
			s.split(t)
		}
		t = s.table(h)
	}
	t.insert(h, c)
	s.count++
}

func (t *hashTable[N]) insert(h uint64, c N) {
	var none N
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i] != none {
		i = (i + 1) & mask
	}
	t.slots[i] = c
	t.used++
}

// rehash moves the nodes of old into a fresh slice of size slots.
func (t *hashTable[N]) rehash(old []N, size int) {
	var none N
	t.slots, t.used = make([]N, size), 0
	for _, c := range old {
		if c != none {
			t.insert(levelHash(c.key()), c)
		}
	}
}

// split replaces full table t by two, told apart by the next hash bit,
// doubling the directory first if t already uses all its bits.
func (s *levelTable[N]) split(t *hashTable[N]) {
	if t.depth == s.depth {
		dir := make([]*hashTable[N], 2*len(s.dir))
		for i := range dir {
			dir[i] = s.dir[i/2]
		}
		s.dir, s.depth = dir, s.depth+1
	}
	var none N
	depth := t.depth + 1
	halves := [2]*hashTable[N]{
		{slots: make([]N, len(t.slots)), depth: depth},
		{slots: make([]N, len(t.slots)), depth: depth},
	}
	for _, c := range t.slots {
		if c != none {
			h := levelHash(c.key())
			halves[h>>(64-depth)&1].insert(h, c)
		}
	}
	// The directory entries of t are a run whose first half gets the
	// entries with the bit clear.
	for i, o := range s.dir {
		if o == t {
			s.dir[i] = halves[i>>(s.depth-depth)&1]
		}
	}
}

// remove deletes c, which must be there.
func (s *levelTable[N]) remove(c N) {
	var none N
	h := levelHash(c.key())
	t := s.table(h)
	mask := len(t.slots) - 1
	i := int(h) & mask
	for t.slots[i] != c {
		i = (i + 1) & mask
	}
	// Shift back every later entry of the probe run that may sit in the
	// hole: one whose home slot is not cyclically in (i, j].
	for j := (i + 1) & mask; t.slots[j] != none; j = (j + 1) & mask {
		home := int(levelHash(t.slots[j].key())) & mask
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = none
	t.used--
	s.count--
	if len(t.slots) > 16 && t.used*8 < len(t.slots) {
		// Halve a table a crowd has left, so a node keeps slots for the
		// children it has, not for its peak. Growth waits for 3/4 full:
		// the gap keeps a table from resizing back and forth.
		t.rehash(t.slots, len(t.slots)/2)
	}
}

// each calls fn for every node until it returns false, and reports whether
// it went through all of them.
func (s *levelTable[N]) each(fn func(N) bool) bool {
	var none N
	for i, t := range s.dir {
		if i > 0 && s.dir[i-1] == t {
			continue // a table's directory entries are adjacent
		}
		for _, c := range t.slots {
			if c != none && !fn(c) {
				return false
			}
		}
	}
	return true
}
