package store

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeMessage proves the message decoder never panics on any input,
// and that whatever it accepts encodes back to a record that decodes to
// the same message.
func FuzzDecodeMessage(f *testing.F) {
	f.Add(appendMessage(nil, fullMessage(1)))
	f.Add(appendMessage(nil, &Message{}))
	f.Add([]byte{messageRecordV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		again, err := decodeMessage(appendMessage(nil, m))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if !reflect.DeepEqual(normMessage(again), normMessage(m)) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, again)
		}
	})
}

// FuzzDecodeSession is FuzzDecodeMessage for session records.
func FuzzDecodeSession(f *testing.F) {
	f.Add(appendSession(nil, fullSession("c")))
	f.Add(appendSession(nil, &Session{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSession(b)
		if err != nil {
			return
		}
		again, err := decodeSession(appendSession(nil, s))
		if err != nil {
			t.Fatalf("re-encoded session does not decode: %v", err)
		}
		if !reflect.DeepEqual(normSession(again), normSession(s)) {
			t.Fatalf("round trip changed the session:\n%+v\n%+v", s, again)
		}
	})
}

// TestDecodeRejectsDamage proves that truncation, a trailing byte and an
// unknown record version are errors, not silently wrong records.
func TestDecodeRejectsDamage(t *testing.T) {
	msg := appendMessage(nil, fullMessage(1))
	sess := appendSession(nil, fullSession("c"))
	for i := range len(msg) {
		if _, err := decodeMessage(msg[:i]); err == nil {
			t.Fatalf("message truncated to %d of %d bytes decoded", i, len(msg))
		}
	}
	for i := range len(sess) {
		if _, err := decodeSession(sess[:i]); err == nil {
			t.Fatalf("session truncated to %d of %d bytes decoded", i, len(sess))
		}
	}
	if _, err := decodeMessage(append(msg, 0)); err == nil {
		t.Fatal("message with a trailing byte decoded")
	}
	bad := append([]byte{messageRecordV1 + 1}, msg[1:]...)
	if _, err := decodeMessage(bad); err == nil {
		t.Fatal("message of an unknown record version decoded")
	}
	if _, _, err := decodeDelivery([]byte{deliveryRecordV1, byte(AwaitingComp + 1), 1}); err == nil {
		t.Fatal("delivery record with an unknown state decoded")
	}
}

// BenchmarkEncodeMessage measures the record encoding on the append path;
// it must not allocate.
func BenchmarkEncodeMessage(b *testing.B) {
	m := fullMessage(1)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMessage(buf[:0], m)
	}
}

// A record whose QoS (or retain handling) is out of range is corrupt at
// decode, with an error saying so, not loaded to fail or index out of
// range later when the broker delivers it.
func TestDecodeRefusesQoSOutOfRange(t *testing.T) {
	m := fullMessage(1)
	m.QoS = 3
	if _, err := decodeMessage(appendMessage(nil, m)); !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), "QoS 3") {
		t.Errorf("message with QoS 3: %v", err)
	}
	for _, mod := range []func(*Subscription){
		func(s *Subscription) { s.QoS = 3 },
		func(s *Subscription) { s.RetainHandling = 3 },
	} {
		s := fullSession("c")
		mod(&s.Subscriptions[0])
		if _, err := decodeSession(appendSession(nil, s)); !errors.Is(err, errCorrupt) {
			t.Errorf("subscription %+v: %v", s.Subscriptions[0], err)
		}
	}
}
