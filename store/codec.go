package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// The on-disk records are encoded by hand with encoding/binary rather than
// with gob or JSON. Speed: encoding a message is a few appends into a reused
// buffer, with no reflection and no allocation, and it is on the path of
// every acknowledged QoS 1/2 PUBLISH. Stability: the bytes are defined here,
// field by field, so they change only when this file does and its version
// byte says so; gob streams carry type descriptors and JSON would change
// with a renamed field or quietly drop binary payloads into base64.
//
// Every record starts with its version byte. Integers are varints, strings
// and byte slices are a uvarint length then the bytes, times are a varint of
// Unix seconds and a uvarint of nanoseconds, present only when a flag bit
// says so (the zero time is "none"). Decoders reject trailing bytes, so a
// truncated or overwritten record is an error, not a silently wrong value.

const (
	messageRecordV1  = 1
	sessionRecordV1  = 1
	deliveryRecordV1 = 1
)

// Flag bits of a message record.
const (
	msgRetain = 1 << iota
	msgHasExpiresAt
	msgHasCreated
)

// Flag bits of a session record.
const (
	sessHasDisconnectedAt = 1 << iota
	sessHasWill
)

// Flag bits of a subscription inside a session record.
const (
	subNoLocal = 1 << iota
	subRetainAsPublished
)

var errCorrupt = errors.New("corrupt record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// appendMessage appends the record of m to b.
func appendMessage(b []byte, m *Message) []byte {
	var flags byte
	if m.Retain {
		flags |= msgRetain
	}
	if !m.ExpiresAt.IsZero() {
		flags |= msgHasExpiresAt
	}
	if !m.Created.IsZero() {
		flags |= msgHasCreated
	}
	b = append(b, messageRecordV1, flags)
	b = binary.AppendUvarint(b, m.Seq)
	b = appendString(b, m.Topic)
	b = appendBytes(b, m.Payload)
	b = append(b, m.QoS, byte(m.State), m.PayloadFormat)
	b = binary.AppendUvarint(b, uint64(m.PacketID))
	if flags&msgHasExpiresAt != 0 {
		b = appendTime(b, m.ExpiresAt)
	}
	if flags&msgHasCreated != 0 {
		b = appendTime(b, m.Created)
	}
	b = appendString(b, m.ContentType)
	b = appendString(b, m.ResponseTopic)
	b = appendBytes(b, m.CorrelationData)
	b = binary.AppendUvarint(b, uint64(len(m.UserProps)))
	for _, p := range m.UserProps {
		b = appendString(b, p.Key)
		b = appendString(b, p.Value)
	}
	b = binary.AppendUvarint(b, uint64(len(m.SubscriptionIDs)))
	for _, id := range m.SubscriptionIDs {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return b
}

// appendSession appends the record of s to b.
func appendSession(b []byte, s *Session) []byte {
	var flags byte
	if !s.DisconnectedAt.IsZero() {
		flags |= sessHasDisconnectedAt
	}
	if s.Will != nil {
		flags |= sessHasWill
	}
	b = append(b, sessionRecordV1, flags)
	b = appendString(b, s.ClientID)
	b = append(b, s.ProtocolVersion)
	b = appendString(b, s.Username)
	b = binary.AppendUvarint(b, uint64(s.ExpiryInterval))
	if flags&sessHasDisconnectedAt != 0 {
		b = appendTime(b, s.DisconnectedAt)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Subscriptions)))
	for _, sub := range s.Subscriptions {
		var sf byte
		if sub.NoLocal {
			sf |= subNoLocal
		}
		if sub.RetainAsPublished {
			sf |= subRetainAsPublished
		}
		b = appendString(b, sub.Filter)
		b = append(b, sub.QoS, sf, sub.RetainHandling)
		b = binary.AppendUvarint(b, uint64(sub.ID))
	}
	b = binary.AppendUvarint(b, uint64(s.WillDelay))
	if s.Will != nil {
		b = appendMessage(b, s.Will)
	}
	return b
}

// appendDelivery appends the record of an outbound message's delivery
// state, kept apart from the message so that an update rewrites a few
// bytes instead of the whole payload.
func appendDelivery(b []byte, packetID uint16, state State) []byte {
	b = append(b, deliveryRecordV1, byte(state))
	return binary.AppendUvarint(b, uint64(packetID))
}

// decoder reads a record; the first error sticks and later reads return
// zero values, so callers check err once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint(limit uint64) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	if v > limit {
		d.fail("value %d above %d", v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// raw returns the next length-prefixed bytes, aliasing the record.
func (d *decoder) raw() []byte {
	n := d.uvarint(1<<64 - 1)
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("length %d above the %d bytes left", n, len(d.b))
	}
	if d.err != nil {
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) string() string { return string(d.raw()) }

// bytes returns a copy of the next length-prefixed bytes; empty is nil.
func (d *decoder) bytes() []byte {
	p := d.raw()
	if len(p) == 0 {
		return nil
	}
	return append([]byte(nil), p...)
}

func (d *decoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint(999_999_999)
	return time.Unix(sec, int64(nsec))
}

// count reads a number of elements that each take at least min bytes,
// refusing counts the rest of the record cannot hold, so that a corrupt
// count cannot make the decoder allocate gigabytes.
func (d *decoder) count(min int) int {
	return int(d.uvarint(uint64(len(d.b) / min)))
}

func (d *decoder) version(want byte, what string) {
	if v := d.byte(); d.err == nil && v != want {
		d.fail("%s record version %d, want %d", what, v, want)
	}
}

func (d *decoder) end() {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
}

func (d *decoder) message() *Message {
	d.version(messageRecordV1, "message")
	flags := d.byte()
	m := &Message{}
	m.Seq = d.uvarint(1<<64 - 1)
	m.Topic = d.string()
	m.Payload = d.bytes()
	m.QoS = d.byte()
	m.State = State(d.byte())
	m.PayloadFormat = d.byte()
	m.PacketID = uint16(d.uvarint(0xFFFF))
	if flags&msgHasExpiresAt != 0 {
		m.ExpiresAt = d.time()
	}
	if flags&msgHasCreated != 0 {
		m.Created = d.time()
	}
	m.ContentType = d.string()
	m.ResponseTopic = d.string()
	m.CorrelationData = d.bytes()
	if n := d.count(2); n > 0 {
		m.UserProps = make([]UserProperty, n)
		for i := range m.UserProps {
			m.UserProps[i] = UserProperty{Key: d.string(), Value: d.string()}
		}
	}
	if n := d.count(1); n > 0 {
		m.SubscriptionIDs = make([]uint32, n)
		for i := range m.SubscriptionIDs {
			m.SubscriptionIDs[i] = uint32(d.uvarint(0xFFFFFFFF))
		}
	}
	if d.err == nil && m.State > AwaitingComp {
		d.fail("unknown message state %d", m.State)
	}
	if d.err == nil && m.QoS > 2 {
		d.fail("message QoS %d", m.QoS)
	}
	if d.err == nil && flags&^(msgRetain|msgHasExpiresAt|msgHasCreated) != 0 {
		d.fail("unknown message flags %#x", flags)
	}
	m.Retain = flags&msgRetain != 0
	return m
}

func (d *decoder) session() *Session {
	d.version(sessionRecordV1, "session")
	flags := d.byte()
	s := &Session{}
	s.ClientID = d.string()
	s.ProtocolVersion = d.byte()
	s.Username = d.string()
	s.ExpiryInterval = uint32(d.uvarint(0xFFFFFFFF))
	if flags&sessHasDisconnectedAt != 0 {
		s.DisconnectedAt = d.time()
	}
	if n := d.count(5); n > 0 {
		s.Subscriptions = make([]Subscription, n)
		for i := range s.Subscriptions {
			sub := &s.Subscriptions[i]
			sub.Filter = d.string()
			sub.QoS = d.byte()
			sf := d.byte()
			sub.RetainHandling = d.byte()
			sub.ID = uint32(d.uvarint(0xFFFFFFFF))
			sub.NoLocal = sf&subNoLocal != 0
			sub.RetainAsPublished = sf&subRetainAsPublished != 0
			if d.err == nil && sf&^(subNoLocal|subRetainAsPublished) != 0 {
				d.fail("unknown subscription flags %#x", sf)
			}
			if d.err == nil && (sub.QoS > 2 || sub.RetainHandling > 2) {
				d.fail("subscription %q: QoS %d, retain handling %d", sub.Filter, sub.QoS, sub.RetainHandling)
			}
		}
	}
	s.WillDelay = uint32(d.uvarint(0xFFFFFFFF))
	if flags&sessHasWill != 0 {
		s.Will = d.message()
	}
	if d.err == nil && flags&^(sessHasDisconnectedAt|sessHasWill) != 0 {
		d.fail("unknown session flags %#x", flags)
	}
	return s
}

func decodeMessage(b []byte) (*Message, error) {
	d := decoder{b: b}
	m := d.message()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

func decodeSession(b []byte) (*Session, error) {
	d := decoder{b: b}
	s := d.session()
	d.end()
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

func decodeDelivery(b []byte) (packetID uint16, state State, err error) {
	d := decoder{b: b}
	d.version(deliveryRecordV1, "delivery")
	state = State(d.byte())
	packetID = uint16(d.uvarint(0xFFFF))
	d.end()
	if d.err == nil && state > AwaitingComp {
		d.fail("unknown message state %d", state)
	}
	return packetID, state, d.err
}
