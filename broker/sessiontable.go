package broker

import (
	"hash/maphash"
	"iter"
)

// sessionTable maps client ids to sessions: a hash table of session
// pointers, open addressing with linear probing, whose keys are read from
// the sessions themselves (session.id).
//
// It exists for memory. A map[string]*session stores a 16-byte string
// header beside every pointer and, growing incrementally, runs at about
// half load: some 56 bytes per session, measured at 15,000. This table
// stores 8 bytes per slot at a load between 3/8 and 3/4, 11 to 21 bytes
// per session. The price is a rehash of every session when it doubles
// (or halves), under the server lock: a few milliseconds per 100,000
// sessions, once per doubling.
//
// Not safe for concurrent use; the server guards it with Server.mu.
type sessionTable struct {
	slots []*session // len is 0 or a power of two
	n     int
	seed  maphash.Seed
}

const sessionTableMin = 16

func newSessionTable() sessionTable {
	return sessionTable{seed: maphash.MakeSeed()}
}

func (t *sessionTable) len() int { return t.n }

func (t *sessionTable) home(id string) int {
	return int(maphash.String(t.seed, id) & uint64(len(t.slots)-1))
}

// get returns the session of client id, nil if there is none.
func (t *sessionTable) get(id string) *session {
	if t.n == 0 {
		return nil
	}
	mask := len(t.slots) - 1
	for i := t.home(id); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == nil {
			return nil
		}
		if s.id == id {
			return s
		}
	}
}

// put stores sess under sess.id, replacing any session with that id.
func (t *sessionTable) put(sess *session) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.resize(max(sessionTableMin, len(t.slots)*2))
	}
	mask := len(t.slots) - 1
	for i := t.home(sess.id); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s == nil {
			t.slots[i] = sess
			t.n++
			return
		}
		if s.id == sess.id {
			t.slots[i] = sess
			return
		}
	}
}

// remove deletes sess if it is the session stored under sess.id, and
// reports whether it was.
func (t *sessionTable) remove(sess *session) bool {
	if t.n == 0 {
		return false
	}
	mask := len(t.slots) - 1
	i := t.home(sess.id)
	for ; t.slots[i] != sess; i = (i + 1) & mask {
		if t.slots[i] == nil {
			return false
		}
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when the hole lies on their way from their home slot, so
	// that no lookup stops early at it.
	for j := (i + 1) & mask; t.slots[j] != nil; j = (j + 1) & mask {
		h := t.home(t.slots[j].id)
		if (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = nil
	t.n--
	if len(t.slots) > sessionTableMin && t.n*8 < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
	return true
}

func (t *sessionTable) resize(size int) {
	old := t.slots
	t.slots = make([]*session, size)
	t.n = 0
	for _, s := range old {
		if s != nil {
			t.put(s)
		}
	}
}

// chunk appends to dst the sessions in the slots from index start, at
// least max of them unless the table ends first, and returns dst and the
// index to continue from, -1 at the end. A caller may release the lock
// between chunks. A chunk ends just after an empty slot: a session lies
// no earlier than its home slot with no empty slot between, and a
// removal's backward shift moves it no earlier than its home, so no
// session that stays in the table can move from a slot not yet read to
// one already read. Unless the table is resized meanwhile, the chunks
// miss no such session; one whose probe run wraps past the table's end
// may be returned twice.
func (t *sessionTable) chunk(dst []*session, start, max int) ([]*session, int) {
	i := start
	for n := 0; i < len(t.slots); i++ {
		s := t.slots[i]
		if s == nil && n >= max {
			i++
			break
		}
		if s != nil {
			dst = append(dst, s)
			n++
		}
	}
	if i >= len(t.slots) {
		return dst, -1
	}
	return dst, i
}

// all yields every session, in no particular order. The table must not
// change during the iteration.
func (t *sessionTable) all() iter.Seq[*session] {
	return func(yield func(*session) bool) {
		for _, s := range t.slots {
			if s != nil && !yield(s) {
				return
			}
		}
	}
}
