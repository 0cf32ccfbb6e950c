// Package store keeps what must survive a broker restart: persistent
// sessions and their subscriptions, queued and inflight outbound QoS 1/2
// messages, inbound QoS 2 packet identifiers awaiting PUBREL, retained
// messages and delayed wills.
//
// Two implementations share one contract, checked by one conformance suite:
// Memory (tests, or a broker run without persistence) and Pebble (the
// embedded default, durable on disk with group commit).
//
// The package is self-contained on purpose: it imports no other Herald
// package, so the codec and the broker can change without touching the
// on-disk format.
package store

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// NeverExpires is the session expiry interval of a session that never
// expires (MQTT 5 §3.1.2.11.2: 0xFFFFFFFF).
const NeverExpires uint32 = 0xFFFFFFFF

// Session is a persistent session: one with a session expiry interval
// above zero (MQTT 5) or clean session = false (MQTT 3.1.1).
type Session struct {
	ClientID        string
	ProtocolVersion byte
	Username        string
	ExpiryInterval  uint32    // seconds; NeverExpires never expires
	DisconnectedAt  time.Time // zero while connected
	Subscriptions   []Subscription
	Will            *Message // set while a will with delay is pending, else nil
	WillDelay       uint32   // seconds
}

// Subscription is one subscription of a session, with its MQTT 5 options.
type Subscription struct {
	Filter            string // may be a shared subscription, "$share/group/filter"
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier, 0 if none
}

// State is where an outbound message stands in its QoS flow.
type State byte

// The states of an outbound message. Queued is the zero value.
const (
	// Queued is a message not yet sent (or to be sent again, with DUP, after
	// a reconnect).
	Queued State = iota
	// AwaitingAck is a PUBLISH sent and waiting for PUBACK (QoS 1) or
	// PUBREC (QoS 2).
	AwaitingAck
	// AwaitingComp is a PUBREL sent and waiting for PUBCOMP (QoS 2).
	AwaitingComp
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Queued:
		return "queued"
	case AwaitingAck:
		return "awaiting-ack"
	case AwaitingComp:
		return "awaiting-comp"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Message is an application message as the store keeps it: a queued or
// inflight outbound message of a session, a retained message, or a will.
type Message struct {
	Seq       uint64 // per-session order, assigned by the broker (monotonic)
	Topic     string
	Payload   []byte
	QoS       byte
	Retain    bool
	PacketID  uint16    // 0 until sent
	State     State     // outbound messages only
	ExpiresAt time.Time // zero = no expiry; the broker drops expired ones
	Created   time.Time

	// MQTT 5 message properties, passed through unchanged.
	PayloadFormat   byte
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProps       []UserProperty
	SubscriptionIDs []uint32
}

// UserProperty is an MQTT 5 user property, a name-value pair.
type UserProperty struct {
	Key, Value string
}

// Entry is one message queued for one session, the unit of AppendMessages.
type Entry struct {
	ClientID string
	Msg      *Message
}

// Store is the persistence the broker codes against. Methods are safe for
// concurrent use. Records passed in are copied (the caller may reuse them
// once a method returns) and records returned belong to the caller.
//
// Durability: methods documented "durable on return" have reached stable
// storage when they return nil. The others may be synced lazily, but never
// out of order: a lazily synced write is durable no later than the next
// durable write that follows it.
type Store interface {
	// SaveSession creates or replaces a session, subscriptions and pending
	// will included. Durable on return.
	SaveSession(s *Session) error
	// DeleteSession removes a session with its messages and incoming packet
	// ids. Durable on return. Deleting an unknown session is not an error.
	DeleteSession(clientID string) error
	// LoadSessions returns every saved session, ordered by client id.
	LoadSessions() ([]*Session, error)

	// Commit writes a Batch (messages, inbound QoS 2 ids, retained
	// updates) all or none. Durable on return and group-committed.
	Commit(b *Batch) error

	// AppendMessages stores messages for sessions, all or none. Durable on
	// return, and group-committed with concurrent callers, so it is the
	// point after which a QoS 1/2 PUBLISH may be acknowledged.
	AppendMessages(entries []Entry) error
	// UpdateMessage records a stored message's packet id and state. It may
	// be synced lazily. Updating a message that is not stored has no
	// visible effect.
	UpdateMessage(clientID string, seq uint64, packetID uint16, state State) error
	// DeleteMessage removes a stored message. It may be synced lazily.
	DeleteMessage(clientID string, seq uint64) error
	// LoadMessages returns a session's messages in Seq order, with their
	// ExpiresAt so that the broker can drop the expired ones.
	LoadMessages(clientID string) ([]*Message, error)

	// AddIncoming records an inbound QoS 2 packet id awaiting PUBREL.
	// Durable on return: it is what makes delivery exactly once across a
	// restart.
	AddIncoming(clientID string, packetID uint16) error
	// DeleteIncoming forgets an inbound QoS 2 packet id once PUBREL arrives.
	// Durable on return, because a lost delete would make the broker discard
	// the client's next message with the same packet id as a duplicate.
	DeleteIncoming(clientID string, packetID uint16) error
	// LoadIncoming returns a session's inbound packet ids in ascending order.
	LoadIncoming(clientID string) ([]uint16, error)

	// SaveRetained creates or replaces the retained message of m.Topic.
	// Durable on return.
	SaveRetained(m *Message) error
	// DeleteRetained removes the retained message of a topic. Durable on
	// return. Deleting an absent one is not an error.
	DeleteRetained(topic string) error
	// LoadRetained returns every retained message, ordered by topic.
	LoadRetained() ([]*Message, error)

	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// Errors returned by every implementation.
var (
	// ErrClosed is returned by calls on a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrInvalidClientID is returned for a client id that contains U+0000,
	// which MQTT forbids in strings [MQTT-1.5.4-2] and which the on-disk key
	// layout uses as the separator after the client id.
	ErrInvalidClientID = errors.New("store: client id contains U+0000")
	// ErrNilMessage is returned when an Entry or SaveRetained has no message.
	ErrNilMessage = errors.New("store: nil message")
)

func checkClientID(clientID string) error {
	if strings.IndexByte(clientID, 0) >= 0 {
		return ErrInvalidClientID
	}
	return nil
}

// cloneMessage returns a deep copy of m, so that neither the caller nor the
// store sees the other's later changes.
func cloneMessage(m *Message) *Message {
	if m == nil {
		return nil
	}
	c := *m
	c.Payload = cloneBytes(m.Payload)
	c.CorrelationData = cloneBytes(m.CorrelationData)
	if m.UserProps != nil {
		c.UserProps = append([]UserProperty(nil), m.UserProps...)
	}
	if m.SubscriptionIDs != nil {
		c.SubscriptionIDs = append([]uint32(nil), m.SubscriptionIDs...)
	}
	return &c
}

func cloneSession(s *Session) *Session {
	c := *s
	if s.Subscriptions != nil {
		c.Subscriptions = append([]Subscription(nil), s.Subscriptions...)
	}
	c.Will = cloneMessage(s.Will)
	return &c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}
