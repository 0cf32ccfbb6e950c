package store

// Batch is the durable side of one or more inbound publishes, committed
// all or nothing: the messages queued for persistent sessions, the inbound
// QoS 2 packet ids that make a retransmitted PUBLISH recognisable, and the
// retained-message updates. Committing them together is what keeps QoS 2
// exactly once across a crash: either the messages and the id are both
// stored (a resent PUBLISH is recognised as a duplicate) or neither is (the
// resent PUBLISH is delivered once).
type Batch struct {
	Messages       []Entry
	Updates        []Update // packet id and state of stored messages, applied after Messages
	Incoming       []Incoming
	DeleteIncoming []Incoming // inbound ids released by PUBREL, applied after Incoming
	Retained       []*Message // saved, keyed by Topic
	DeleteRetained []string   // topics whose retained message is removed
}

// Update is a new packet id and state of a stored message, as
// UpdateMessage records it, but durable with the batch.
type Update struct {
	ClientID string
	Seq      uint64
	PacketID uint16
	State    State
}

// Incoming is an inbound QoS 2 packet id of a session.
type Incoming struct {
	ClientID string
	PacketID uint16
}

// empty reports whether the batch has nothing to write.
func (b *Batch) empty() bool {
	return len(b.Messages) == 0 && len(b.Updates) == 0 && len(b.Incoming) == 0 && len(b.DeleteIncoming) == 0 &&
		len(b.Retained) == 0 && len(b.DeleteRetained) == 0
}

// check validates a batch before any of it is written.
func (b *Batch) check() error {
	for _, e := range b.Messages {
		if err := checkClientID(e.ClientID); err != nil {
			return err
		}
		if e.Msg == nil {
			return ErrNilMessage
		}
	}
	for _, u := range b.Updates {
		if err := checkClientID(u.ClientID); err != nil {
			return err
		}
	}
	for _, in := range append(b.Incoming[:len(b.Incoming):len(b.Incoming)], b.DeleteIncoming...) {
		if err := checkClientID(in.ClientID); err != nil {
			return err
		}
	}
	for _, m := range b.Retained {
		if m == nil {
			return ErrNilMessage
		}
	}
	return nil
}
