package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Key layout. Every record kind has its own prefix, so that a kind can be
// scanned or range-deleted alone. A client id is followed by U+0000, which
// MQTT forbids inside it [MQTT-1.5.4-2], so that the records of client "a"
// are a range that does not contain those of client "ab".
//
//	meta/format                                  format version (uint32, big endian)
//	s/<client id>                                session
//	m/<client id> 0x00 <seq: 8 bytes BE>         outbound message
//	m/<client id> 0x00 <seq: 8 bytes BE> 's'     its packet id and state, once updated
//	i/<client id> 0x00 <packet id: 2 bytes BE>   inbound QoS 2 packet id (empty value)
//	r/<topic>                                    retained message
//
// Sequence numbers and packet ids are big endian so that byte order is
// numeric order and LoadMessages is one forward scan.
const (
	prefixSession  = "s/"
	prefixMessage  = "m/"
	prefixIncoming = "i/"
	prefixRetained = "r/"
	deliverySuffix = 's'
)

var formatKey = []byte("meta/format")

// formatVersion is the version of the key layout and records this build
// writes and reads. A store of another version is refused at open.
const formatVersion uint32 = 1

// clientPrefix returns kind + clientID + 0x00, appended to b.
func clientPrefix(b []byte, kind, clientID string) []byte {
	b = append(b, kind...)
	b = append(b, clientID...)
	return append(b, 0)
}

// prefixEnd returns the smallest key above every key that starts with
// prefix, where prefix ends in 0x00 (see clientPrefix).
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	end[len(end)-1] = 1
	return end
}

func messageKey(b []byte, clientID string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(clientPrefix(b, prefixMessage, clientID), seq)
}

func incomingKey(b []byte, clientID string, packetID uint16) []byte {
	return binary.BigEndian.AppendUint16(clientPrefix(b, prefixIncoming, clientID), packetID)
}

// Stats are counters of a Pebble store since it was opened, for metrics.
type Stats struct {
	// Commits is the number of write batches committed.
	Commits uint64
	// SyncCommits is the number of those that waited for durability.
	SyncCommits uint64
	// CommitLatency is the time spent committing, summed over Commits.
	CommitLatency time.Duration
	// WALSyncs is the number of fsyncs of the write-ahead log. Pebble's
	// commit pipeline makes concurrent durable commits share one fsync, so
	// SyncCommits / WALSyncs is the group-commit factor.
	WALSyncs uint64
	// WALSyncLatency is the time spent in WAL fsyncs, summed over WALSyncs.
	WALSyncLatency time.Duration
}

// Pebble is a Store on disk, in a Pebble database of its own directory.
type Pebble struct {
	db  *pebble.DB
	dir string

	// mu is held for reading by every operation and for writing by Close,
	// so that Close waits for operations in flight and later calls get
	// ErrClosed instead of a Pebble panic. Readers hold it across commits
	// (and so across fsync): it excludes only Close, never another writer.
	mu     sync.RWMutex
	closed bool

	stats stats
}

var _ Store = (*Pebble)(nil)

// scratch is a key and a record being encoded. Pooled, so that the hot
// path (AppendMessages, UpdateMessage, DeleteMessage) does not allocate
// them: Pebble copies both into its batch.
type scratch struct{ key, val []byte }

var scratchPool = sync.Pool{New: func() any {
	return &scratch{key: make([]byte, 0, 128), val: make([]byte, 0, 512)}
}}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(s *scratch) {
	if cap(s.val) > 64<<10 {
		s.val = nil // grown by a large payload: left to the GC
	}
	if cap(s.key) > 64<<10 {
		s.key = nil
	}
	scratchPool.Put(s)
}

// begin takes the read side of mu; it fails once the store is closed.
func (p *Pebble) begin() error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (p *Pebble) end() { p.mu.RUnlock() }

// commit commits b and closes it. sync waits for the WAL fsync, shared by
// concurrent committers (group commit); without it the write is durable no
// later than the next synced commit, since the WAL is one ordered log.
func (p *Pebble) commit(b *pebble.Batch, sync bool) error {
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	start := time.Now()
	err := b.Commit(opts)
	p.stats.commit(time.Since(start), sync)
	if err := errors.Join(err, b.Close()); err != nil {
		return fmt.Errorf("store %s: commit: %w", p.dir, err)
	}
	return nil
}

// set commits one key, copied into a batch.
func (p *Pebble) set(key, val []byte, sync bool) error {
	b := p.db.NewBatch()
	if err := b.Set(key, val, nil); err != nil {
		b.Close()
		return fmt.Errorf("store %s: %w", p.dir, err)
	}
	return p.commit(b, sync)
}

// SaveSession creates or replaces a session. Durable on return.
func (p *Pebble) SaveSession(s *Session) error {
	if err := checkClientID(s.ClientID); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	sc := getScratch()
	defer putScratch(sc)
	sc.key = append(append(sc.key[:0], prefixSession...), s.ClientID...)
	sc.val = appendSession(sc.val[:0], s)
	return p.set(sc.key, sc.val, true)
}

// DeleteSession removes a session with its messages and incoming ids, as
// range deletions. Durable on return.
func (p *Pebble) DeleteSession(clientID string) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	b := p.db.NewBatch()
	b.Delete([]byte(prefixSession+clientID), nil)
	for _, kind := range []string{prefixMessage, prefixIncoming} {
		start := clientPrefix(nil, kind, clientID)
		b.DeleteRange(start, prefixEnd(start), nil)
	}
	return p.commit(b, true)
}

// LoadSessions returns every session, ordered by client id.
func (p *Pebble) LoadSessions() ([]*Session, error) {
	if err := p.begin(); err != nil {
		return nil, err
	}
	defer p.end()
	var out []*Session
	err := p.scan([]byte(prefixSession), []byte("s0"), func(key, val []byte) error {
		s, err := decodeSession(val)
		if err != nil {
			return err
		}
		if s.ClientID != string(key[len(prefixSession):]) {
			return fmt.Errorf("%w: session of %q stored under another client id", errCorrupt, s.ClientID)
		}
		out = append(out, s)
		return nil
	})
	return out, err
}

// AppendMessages stores messages for sessions in one batch, all or none.
// Durable on return; concurrent callers share WAL fsyncs.
func (p *Pebble) AppendMessages(entries []Entry) error {
	return p.Commit(&Batch{Messages: entries})
}

// UpdateMessage records a stored message's packet id and state, in a small
// record beside the message so that the payload is not rewritten. Synced
// lazily.
func (p *Pebble) UpdateMessage(clientID string, seq uint64, packetID uint16, state State) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	sc := getScratch()
	defer putScratch(sc)
	sc.key = append(messageKey(sc.key[:0], clientID, seq), deliverySuffix)
	sc.val = appendDelivery(sc.val[:0], packetID, state)
	return p.set(sc.key, sc.val, false)
}

// DeleteMessage removes a stored message and its delivery state. Synced
// lazily.
func (p *Pebble) DeleteMessage(clientID string, seq uint64) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	sc := getScratch()
	defer putScratch(sc)
	sc.key = messageKey(sc.key[:0], clientID, seq)
	b := p.db.NewBatch()
	b.Delete(sc.key, nil)
	sc.key = append(sc.key, deliverySuffix)
	b.Delete(sc.key, nil)
	return p.commit(b, false)
}

// LoadMessages returns a session's messages in Seq order, each with the
// packet id and state of its latest update.
func (p *Pebble) LoadMessages(clientID string) ([]*Message, error) {
	if err := checkClientID(clientID); err != nil {
		return nil, err
	}
	if err := p.begin(); err != nil {
		return nil, err
	}
	defer p.end()
	prefix := clientPrefix(nil, prefixMessage, clientID)
	var out []*Message
	err := p.scan(prefix, prefixEnd(prefix), func(key, val []byte) error {
		switch rest := key[len(prefix):]; {
		case len(rest) == 8:
			m, err := decodeMessage(val)
			if err != nil {
				return err
			}
			m.Seq = binary.BigEndian.Uint64(rest)
			out = append(out, m)
		case len(rest) == 9 && rest[8] == deliverySuffix:
			pid, state, err := decodeDelivery(val)
			if err != nil {
				return err
			}
			// The delivery record sorts right after its message. One
			// without a message (an update of a deleted message) is
			// ignored.
			if n := len(out); n > 0 && out[n-1].Seq == binary.BigEndian.Uint64(rest) {
				out[n-1].PacketID, out[n-1].State = pid, state
			}
		default:
			return fmt.Errorf("%w: unexpected key", errCorrupt)
		}
		return nil
	})
	return out, err
}

// AddIncoming records an inbound QoS 2 packet id. Durable on return.
func (p *Pebble) AddIncoming(clientID string, packetID uint16) error {
	return p.setIncoming(clientID, packetID, true)
}

// DeleteIncoming forgets an inbound QoS 2 packet id. Durable on return.
func (p *Pebble) DeleteIncoming(clientID string, packetID uint16) error {
	return p.setIncoming(clientID, packetID, false)
}

func (p *Pebble) setIncoming(clientID string, packetID uint16, add bool) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	sc := getScratch()
	defer putScratch(sc)
	sc.key = incomingKey(sc.key[:0], clientID, packetID)
	if add {
		return p.set(sc.key, nil, true)
	}
	b := p.db.NewBatch()
	b.Delete(sc.key, nil)
	return p.commit(b, true)
}

// LoadIncoming returns a session's inbound packet ids in ascending order.
func (p *Pebble) LoadIncoming(clientID string) ([]uint16, error) {
	if err := checkClientID(clientID); err != nil {
		return nil, err
	}
	if err := p.begin(); err != nil {
		return nil, err
	}
	defer p.end()
	prefix := clientPrefix(nil, prefixIncoming, clientID)
	var out []uint16
	err := p.scan(prefix, prefixEnd(prefix), func(key, _ []byte) error {
		if len(key) != len(prefix)+2 {
			return fmt.Errorf("%w: unexpected key", errCorrupt)
		}
		out = append(out, binary.BigEndian.Uint16(key[len(prefix):]))
		return nil
	})
	return out, err
}

// SaveRetained creates or replaces the retained message of m.Topic.
// Durable on return.
func (p *Pebble) SaveRetained(m *Message) error {
	return p.Commit(&Batch{Retained: []*Message{m}})
}

// DeleteRetained removes the retained message of a topic. Durable on
// return.
func (p *Pebble) DeleteRetained(topic string) error {
	return p.Commit(&Batch{DeleteRetained: []string{topic}})
}

// LoadRetained returns every retained message, ordered by topic.
func (p *Pebble) LoadRetained() ([]*Message, error) {
	if err := p.begin(); err != nil {
		return nil, err
	}
	defer p.end()
	var out []*Message
	err := p.scan([]byte(prefixRetained), []byte("r0"), func(key, val []byte) error {
		m, err := decodeMessage(val)
		if err != nil {
			return err
		}
		m.Topic = string(key[len(prefixRetained):])
		out = append(out, m)
		return nil
	})
	return out, err
}

// scan calls fn for each key in [lower, upper), in order. Errors name the
// store and the key, so that a corrupt record can be found.
func (p *Pebble) scan(lower, upper []byte, fn func(key, val []byte) error) error {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store %s: %w", p.dir, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		val, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), val)
		}
		if err != nil {
			key := string(it.Key())
			it.Close()
			return fmt.Errorf("store %s: key %q: %w", p.dir, key, err)
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("store %s: %w", p.dir, err)
	}
	return nil
}

// Compact compacts the whole keyspace, dropping deleted records (the range
// deletions of DeleteSession among them) from disk. It may take long on a
// big store; writes go on meanwhile.
func (p *Pebble) Compact() error {
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	// Every key starts with a printable prefix, so [0x00, 0xff) covers all.
	if err := p.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("store %s: compact: %w", p.dir, err)
	}
	return nil
}

// Stats returns counters since the store was opened.
func (p *Pebble) Stats() Stats { return p.stats.snapshot() }

// Close flushes nothing extra (every acknowledged write is already in the
// WAL) and closes the database. Calls after Close return ErrClosed.
func (p *Pebble) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.closed = true
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("store %s: close: %w", p.dir, err)
	}
	return nil
}

// Commit writes a batch atomically. Durable on return, group-committed
// with concurrent callers.
func (p *Pebble) Commit(batch *Batch) error {
	if batch.empty() {
		return nil
	}
	if err := batch.check(); err != nil {
		return err
	}
	if err := p.begin(); err != nil {
		return err
	}
	defer p.end()
	sc := getScratch()
	defer putScratch(sc)
	b := p.db.NewBatch()
	fail := func(err error) error {
		b.Close()
		return fmt.Errorf("store %s: %w", p.dir, err)
	}
	for _, e := range batch.Messages {
		sc.key = messageKey(sc.key[:0], e.ClientID, e.Msg.Seq)
		sc.val = appendMessage(sc.val[:0], e.Msg)
		if err := b.Set(sc.key, sc.val, nil); err != nil {
			return fail(err)
		}
		sc.key = append(sc.key, deliverySuffix)
		if err := b.Delete(sc.key, nil); err != nil {
			return fail(err)
		}
	}
	for _, u := range batch.Updates {
		sc.key = append(messageKey(sc.key[:0], u.ClientID, u.Seq), deliverySuffix)
		sc.val = appendDelivery(sc.val[:0], u.PacketID, u.State)
		if err := b.Set(sc.key, sc.val, nil); err != nil {
			return fail(err)
		}
	}
	for _, in := range batch.Incoming {
		sc.key = incomingKey(sc.key[:0], in.ClientID, in.PacketID)
		if err := b.Set(sc.key, nil, nil); err != nil {
			return fail(err)
		}
	}
	for _, in := range batch.DeleteIncoming {
		sc.key = incomingKey(sc.key[:0], in.ClientID, in.PacketID)
		if err := b.Delete(sc.key, nil); err != nil {
			return fail(err)
		}
	}
	for _, m := range batch.Retained {
		sc.key = append(append(sc.key[:0], prefixRetained...), m.Topic...)
		sc.val = appendMessage(sc.val[:0], m)
		if err := b.Set(sc.key, sc.val, nil); err != nil {
			return fail(err)
		}
	}
	for _, topic := range batch.DeleteRetained {
		if err := b.Delete([]byte(prefixRetained+topic), nil); err != nil {
			return fail(err)
		}
	}
	return p.commit(b, true)
}
