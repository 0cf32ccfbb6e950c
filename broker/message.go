package broker

import (
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// Message is an application message as the broker routes it. It is
// immutable once routed and shared by every session it is delivered to.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool

	// MQTT 5 properties passed through to subscribers.
	PayloadFormat   byte
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProps       []packet.UserProperty

	Created   time.Time
	ExpiresAt time.Time // zero: never

	from      *session // publishing session (a will's too), for No Local; nil for broker messages
	retainSeq uint64   // order of this retained update in the index (Server.retain)
}

// messageFromPublish builds a Message from a decoded PUBLISH.
func messageFromPublish(p *packet.Publish, now time.Time) *Message {
	m := &Message{
		Topic:           p.Topic,
		Payload:         p.Payload,
		QoS:             p.QoS,
		Retain:          p.Retain,
		PayloadFormat:   p.Props.PayloadFormat,
		ContentType:     p.Props.ContentType,
		ResponseTopic:   p.Props.ResponseTopic,
		CorrelationData: p.Props.CorrelationData,
		UserProps:       p.Props.User,
		Created:         now,
	}
	if p.Props.HasMessageExpiry {
		m.ExpiresAt = now.Add(time.Duration(p.Props.MessageExpiry) * time.Second)
	}
	return m
}

// weight is what a queued copy of m counts against the queue and memory
// limits: its payload, topic and properties, not the payload alone (a
// PUBLISH may carry little payload and a large User Property).
func (m *Message) weight() int {
	n := len(m.Topic) + len(m.Payload) + len(m.ContentType) + len(m.ResponseTopic) + len(m.CorrelationData)
	for _, u := range m.UserProps {
		n += len(u.Key) + len(u.Value)
	}
	return n
}

// expired reports whether the message's expiry interval has passed.
func (m *Message) expired(now time.Time) bool {
	return !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt)
}

// publishPacket fills p with the wire form of m for one delivery.
// [MQTT-3.3.2-6] the Message Expiry Interval sent is the remaining time.
func (m *Message) publishPacket(p *packet.Publish, qos byte, retain bool, subIDs []uint32, now time.Time) {
	*p = packet.Publish{
		QoS:     qos,
		Retain:  retain,
		Topic:   m.Topic,
		Payload: m.Payload,
		Props: packet.Properties{
			PayloadFormat:   m.PayloadFormat,
			ContentType:     m.ContentType,
			ResponseTopic:   m.ResponseTopic,
			CorrelationData: m.CorrelationData,
			User:            m.UserProps,
			SubscriptionIDs: subIDs,
		},
	}
	if !m.ExpiresAt.IsZero() {
		left := m.ExpiresAt.Sub(now)
		secs := uint32((left + time.Second - 1) / time.Second)
		if left <= 0 {
			secs = 0
		}
		p.Props.MessageExpiry = secs
		p.Props.HasMessageExpiry = true
	}
}
