package store

import (
	"slices"
	"strings"
	"sync"
)

// Memory is a Store held in memory: nothing survives the process. It is
// for tests and for a broker run without persistence. Its zero value is not
// usable; call NewMemory.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	sessions map[string]*Session
	messages map[string]map[uint64]*Message // client id → seq → message
	incoming map[string]map[uint16]struct{} // client id → packet ids
	retained map[string]*Message            // topic → message
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		sessions: make(map[string]*Session),
		messages: make(map[string]map[uint64]*Message),
		incoming: make(map[string]map[uint16]struct{}),
		retained: make(map[string]*Message),
	}
}

// SaveSession creates or replaces a session.
func (m *Memory) SaveSession(s *Session) error {
	if err := checkClientID(s.ClientID); err != nil {
		return err
	}
	c := cloneSession(s)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.sessions[s.ClientID] = c
	return nil
}

// DeleteSession removes a session with its messages and incoming ids.
func (m *Memory) DeleteSession(clientID string) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.sessions, clientID)
	delete(m.messages, clientID)
	delete(m.incoming, clientID)
	return nil
}

// LoadSessions returns every session, ordered by client id.
func (m *Memory) LoadSessions() ([]*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, cloneSession(s))
	}
	slices.SortFunc(out, func(a, b *Session) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// AppendMessages stores messages for sessions, all or none.
func (m *Memory) AppendMessages(entries []Entry) error {
	return m.Commit(&Batch{Messages: entries})
}

// UpdateMessage records a stored message's packet id and state.
func (m *Memory) UpdateMessage(clientID string, seq uint64, packetID uint16, state State) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if msg := m.messages[clientID][seq]; msg != nil {
		msg.PacketID, msg.State = packetID, state
	}
	return nil
}

// DeleteMessage removes a stored message.
func (m *Memory) DeleteMessage(clientID string, seq uint64) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.messages[clientID], seq)
	return nil
}

// LoadMessages returns a session's messages in Seq order.
func (m *Memory) LoadMessages(clientID string) ([]*Message, error) {
	if err := checkClientID(clientID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	q := m.messages[clientID]
	out := make([]*Message, 0, len(q))
	for _, msg := range q {
		out = append(out, cloneMessage(msg))
	}
	slices.SortFunc(out, func(a, b *Message) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out, nil
}

// AddIncoming records an inbound QoS 2 packet id awaiting PUBREL.
func (m *Memory) AddIncoming(clientID string, packetID uint16) error {
	return m.Commit(&Batch{Incoming: []Incoming{{ClientID: clientID, PacketID: packetID}}})
}

// DeleteIncoming forgets an inbound QoS 2 packet id.
func (m *Memory) DeleteIncoming(clientID string, packetID uint16) error {
	if err := checkClientID(clientID); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.incoming[clientID], packetID)
	return nil
}

// LoadIncoming returns a session's inbound packet ids in ascending order.
func (m *Memory) LoadIncoming(clientID string) ([]uint16, error) {
	if err := checkClientID(clientID); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	ids := m.incoming[clientID]
	out := make([]uint16, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// SaveRetained creates or replaces the retained message of msg.Topic.
func (m *Memory) SaveRetained(msg *Message) error {
	return m.Commit(&Batch{Retained: []*Message{msg}})
}

// DeleteRetained removes the retained message of a topic.
func (m *Memory) DeleteRetained(topic string) error {
	return m.Commit(&Batch{DeleteRetained: []string{topic}})
}

// LoadRetained returns every retained message, ordered by topic.
func (m *Memory) LoadRetained() ([]*Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	out := make([]*Message, 0, len(m.retained))
	for _, msg := range m.retained {
		out = append(out, cloneMessage(msg))
	}
	slices.SortFunc(out, func(a, b *Message) int { return strings.Compare(a.Topic, b.Topic) })
	return out, nil
}

// Close releases the store; its contents are gone.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.closed = true
	m.sessions, m.messages, m.incoming, m.retained = nil, nil, nil, nil
	return nil
}

// Commit writes a batch atomically.
func (m *Memory) Commit(batch *Batch) error {
	if err := batch.check(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	for _, e := range batch.Messages {
		q := m.messages[e.ClientID]
		if q == nil {
			q = make(map[uint64]*Message)
			m.messages[e.ClientID] = q
		}
		q[e.Msg.Seq] = cloneMessage(e.Msg)
	}
	for _, u := range batch.Updates {
		if msg := m.messages[u.ClientID][u.Seq]; msg != nil {
			msg.PacketID, msg.State = u.PacketID, u.State
		}
	}
	for _, in := range batch.Incoming {
		ids := m.incoming[in.ClientID]
		if ids == nil {
			ids = make(map[uint16]struct{})
			m.incoming[in.ClientID] = ids
		}
		ids[in.PacketID] = struct{}{}
	}
	for _, in := range batch.DeleteIncoming {
		delete(m.incoming[in.ClientID], in.PacketID)
	}
	for _, r := range batch.Retained {
		m.retained[r.Topic] = cloneMessage(r)
	}
	for _, topic := range batch.DeleteRetained {
		delete(m.retained, topic)
	}
	return nil
}
