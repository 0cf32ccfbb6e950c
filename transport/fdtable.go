package transport

import "sync/atomic"

// fdTable maps file descriptors to the epoll transport's conns. The kernel
// hands out the lowest free descriptor, so descriptors are dense and a
// table indexed by them costs 8 bytes per connection, against some 25 for
// a map[int32]*econn at its usual load. It is allocated in chunks of
// fdChunkSize slots as descriptors reach them, and is safe for concurrent
// use: each descriptor belongs to one loop at a time, which clears its
// slot before closing the descriptor, so the loop that gets the same
// number from a later accept finds the slot empty.
type fdTable struct {
	chunks [fdChunks]atomic.Pointer[fdChunk]
}

const (
	fdChunkBits = 12
	fdChunkSize = 1 << fdChunkBits
	fdChunks    = 1 << 10
	// fdTableMax bounds the descriptors the table holds (4M): beyond it a
	// connection is refused, as past the process's open file limit.
	fdTableMax = fdChunks * fdChunkSize
)

type fdChunk [fdChunkSize]atomic.Pointer[econn]

// get returns the conn on fd, nil if none.
func (t *fdTable) get(fd int32) *econn {
	if fd < 0 || fd >= fdTableMax {
		return nil
	}
	ch := t.chunks[fd>>fdChunkBits].Load()
	if ch == nil {
		return nil
	}
	return ch[fd&(fdChunkSize-1)].Load()
}

// set stores c under fd, reporting false if fd is beyond the table.
func (t *fdTable) set(fd int32, c *econn) bool {
	if fd < 0 || fd >= fdTableMax {
		return false
	}
	p := &t.chunks[fd>>fdChunkBits]
	ch := p.Load()
	if ch == nil {
		p.CompareAndSwap(nil, new(fdChunk))
		ch = p.Load()
	}
	ch[fd&(fdChunkSize-1)].Store(c)
	return true
}

// clear empties fd's slot.
func (t *fdTable) clear(fd int32) {
	if fd < 0 || fd >= fdTableMax {
		return
	}
	if ch := t.chunks[fd>>fdChunkBits].Load(); ch != nil {
		ch[fd&(fdChunkSize-1)].Store(nil)
	}
}

// each calls f for every conn in the table, in descriptor order. f may
// clear slots.
func (t *fdTable) each(f func(*econn)) {
	for i := range t.chunks {
		ch := t.chunks[i].Load()
		if ch == nil {
			continue
		}
		for j := range ch {
			if c := ch[j].Load(); c != nil {
				f(c)
			}
		}
	}
}
