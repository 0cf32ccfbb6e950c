package transport

import "sync"

// chunkClasses are the sizes of pooled outbound chunks. MQTT packets are
// mostly small, so a connection's first chunk is small; a backlog grows into
// larger chunks so that one writev carries few iovecs.
var chunkClasses = [...]int{256, 2 << 10, 16 << 10, 64 << 10}

var chunkPools [len(chunkClasses)]sync.Pool

// chunk is one pooled piece of an outbound queue. b[off:] is unsent; cap(b)
// is its size class. The pool holds *chunk, not []byte, so that Put does not
// allocate a slice header.
type chunk struct {
	b    []byte
	off  int
	next *chunk
}

// getChunk returns an empty chunk of the smallest class that holds size
// bytes, or of the largest class.
func getChunk(size int) *chunk {
	class := len(chunkClasses) - 1
	for i, c := range chunkClasses {
		if size <= c {
			class = i
			break
		}
	}
	if c, ok := chunkPools[class].Get().(*chunk); ok {
		return c
	}
	return &chunk{b: make([]byte, 0, chunkClasses[class])}
}

func putChunk(c *chunk) {
	for i, size := range chunkClasses {
		if cap(c.b) == size {
			c.b, c.off, c.next = c.b[:0], 0, nil
			chunkPools[i].Put(c)
			return
		}
	}
}

// outQueue is a connection's outbound bytes: a list of pooled chunks. An
// empty queue holds no chunk, so an idle connection costs only the three
// words of the queue itself.
//
// Writers append under the connection's mutex. The single flusher (writer
// goroutine or event loop) collects the unsent ranges under the mutex,
// writes them without it, then consumes what was written under the mutex.
// That is safe because appends only touch bytes past len(tail.b) and only
// the flusher removes chunks.
type outQueue struct {
	head, tail *chunk
	n          int // unsent bytes
}

// write copies p to the end of the queue.
func (q *outQueue) write(p []byte) {
	q.n += len(p)
	if t := q.tail; t != nil {
		k := copy(t.b[len(t.b):cap(t.b)], p)
		t.b = t.b[:len(t.b)+k]
		p = p[k:]
	}
	for len(p) > 0 {
		size := len(p)
		if q.tail != nil {
			// Grow geometrically so a backlog is a few large chunks.
			size = max(size, 2*cap(q.tail.b))
		}
		c := getChunk(size)
		k := copy(c.b[:cap(c.b)], p)
		c.b = c.b[:k]
		p = p[k:]
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
}

// buffers appends the unsent ranges, at most limit of them, to dst.
func (q *outQueue) buffers(dst [][]byte, limit int) [][]byte {
	for c := q.head; c != nil && len(dst) < limit; c = c.next {
		dst = append(dst, c.b[c.off:])
	}
	return dst
}

// consume drops the first n unsent bytes and returns emptied chunks to
// their pool.
func (q *outQueue) consume(n int) {
	q.n -= n
	for n > 0 {
		c := q.head
		if k := len(c.b) - c.off; n < k {
			c.off += n
			return
		} else {
			n -= k
		}
		q.head = c.next
		if q.head == nil {
			q.tail = nil
		}
		putChunk(c)
	}
}

// release drops everything and returns all chunks to their pool.
func (q *outQueue) release() {
	for c := q.head; c != nil; {
		next := c.next
		putChunk(c)
		c = next
	}
	*q = outQueue{}
}

// chunks counts the chunks held (for tests and debugging).
func (q *outQueue) chunks() int {
	n := 0
	for c := q.head; c != nil; c = c.next {
		n++
	}
	return n
}
