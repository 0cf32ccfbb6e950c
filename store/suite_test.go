package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// runSuite is the conformance suite every Store implementation passes.
// open returns a fresh, empty store; the suite closes it.
func runSuite(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"SessionRoundTripKeepsEveryField", testSessionRoundTrip},
		{"SaveSessionReplaces", testSaveSessionReplaces},
		{"MessageRoundTripKeepsEveryField", testMessageRoundTrip},
		{"LoadMessagesOrdersBySeq", testMessagesOrderedBySeq},
		{"UpdateAndDeleteMessage", testUpdateDeleteMessage},
		{"UpdateOfMissingMessageIsInvisible", testUpdateMissingMessage},
		{"IncomingAddDeleteLoad", testIncoming},
		{"BatchDeletesIncomingAfterAddingIt", testBatchDeleteIncoming},
		{"DeleteSessionRemovesOnlyItsOwnRecords", testDeleteSessionIsolation},
		{"RetainedSaveReplaceDelete", testRetained},
		{"RecordsAreCopiedInAndOut", testRecordsCopied},
		{"ClientIDWithNULIsRejected", testClientIDWithNUL},
		{"NilMessageIsRejected", testNilMessage},
		{"ConcurrentAppendsAllLand", testConcurrentAppends},
		{"CallsAfterCloseFail", testClosed},
		{"CommitWritesEveryPartOfABatch", testCommitBatch},
		{"CommitRejectsABadBatchWhole", testCommitRejectsWhole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			tc.fn(t, s)
		})
	}
}

// Fixed times with sub-second precision and a non-UTC zone, so that the
// round trips prove nanoseconds survive and zones do not matter.
var (
	t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("X", 3600))
	t1 = t0.Add(90 * time.Second)
)

func fullMessage(seq uint64) *Message {
	return &Message{
		Seq:             seq,
		Topic:           fmt.Sprintf("chat/room/%d", seq),
		Payload:         []byte{0, 1, 2, 0xff, byte(seq)},
		QoS:             2,
		Retain:          true,
		PacketID:        0xBEEF,
		State:           AwaitingComp,
		ExpiresAt:       t1,
		Created:         t0,
		PayloadFormat:   1,
		ContentType:     "application/json",
		ResponseTopic:   "reply/" + fmt.Sprint(seq),
		CorrelationData: []byte("corr\x00id"),
		UserProps:       []UserProperty{{"k", "v"}, {"k", "v2"}, {"", ""}, {"ключ", "значение"}},
		SubscriptionIDs: []uint32{1, 268435455},
	}
}

func fullSession(id string) *Session {
	return &Session{
		ClientID:        id,
		ProtocolVersion: 5,
		Username:        "alice",
		ExpiryInterval:  NeverExpires,
		DisconnectedAt:  t0,
		Subscriptions: []Subscription{
			{Filter: "a/+/c", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: 7},
			{Filter: "$share/g/devices/#", QoS: 2},
			{Filter: "#", QoS: 0, RetainHandling: 1, ID: 268435455},
		},
		Will:      fullMessage(0),
		WillDelay: 30,
	}
}

// normMessage makes two equal messages DeepEqual: times compare by instant,
// and empty slices equal nil ones.
func normMessage(m *Message) *Message {
	if m == nil {
		return nil
	}
	c := cloneMessage(m)
	c.ExpiresAt, c.Created = normTime(c.ExpiresAt), normTime(c.Created)
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	if len(c.CorrelationData) == 0 {
		c.CorrelationData = nil
	}
	if len(c.UserProps) == 0 {
		c.UserProps = nil
	}
	if len(c.SubscriptionIDs) == 0 {
		c.SubscriptionIDs = nil
	}
	return c
}

func normSession(s *Session) *Session {
	c := cloneSession(s)
	c.DisconnectedAt = normTime(c.DisconnectedAt)
	if len(c.Subscriptions) == 0 {
		c.Subscriptions = nil
	}
	c.Will = normMessage(c.Will)
	return c
}

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.Unix(0, t.UnixNano()).UTC()
}

func wantMessages(t *testing.T, got, want []*Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := normMessage(got[i]), normMessage(want[i]); !reflect.DeepEqual(g, w) {
			t.Fatalf("message %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func mustLoadMessages(t *testing.T, s Store, clientID string) []*Message {
	t.Helper()
	msgs, err := s.LoadMessages(clientID)
	if err != nil {
		t.Fatalf("LoadMessages(%q): %v", clientID, err)
	}
	return msgs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testSessionRoundTrip(t *testing.T, s Store) {
	sessions := []*Session{
		fullSession("full"),
		{ClientID: ""}, // zero everything, empty client id
		{ClientID: "v3", ProtocolVersion: 4, ExpiryInterval: 1, Subscriptions: []Subscription{{Filter: "x", QoS: 1}}},
	}
	for _, sess := range sessions {
		must(t, s.SaveSession(sess))
	}
	got, err := s.LoadSessions()
	must(t, err)
	want := []*Session{sessions[1], sessions[0], sessions[2]} // by client id
	if len(got) != len(want) {
		t.Fatalf("got %d sessions, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := normSession(got[i]), normSession(want[i]); !reflect.DeepEqual(g, w) {
			t.Fatalf("session %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func testSaveSessionReplaces(t *testing.T, s Store) {
	must(t, s.SaveSession(fullSession("c")))
	repl := &Session{ClientID: "c", ProtocolVersion: 4, Subscriptions: []Subscription{{Filter: "only", QoS: 1}}}
	must(t, s.SaveSession(repl))
	got, err := s.LoadSessions()
	must(t, err)
	if len(got) != 1 || !reflect.DeepEqual(normSession(got[0]), normSession(repl)) {
		t.Fatalf("after replace got %+v, want %+v", got, repl)
	}
}

func testMessageRoundTrip(t *testing.T, s Store) {
	want := []*Message{
		fullMessage(1),
		{Seq: 2, Topic: "t"}, // zero everything else
		{Seq: 3, Topic: "big", Payload: bytes.Repeat([]byte("x"), 1<<20), QoS: 1, Created: t0},
	}
	entries := make([]Entry, len(want))
	for i, m := range want {
		entries[i] = Entry{ClientID: "c", Msg: m}
	}
	must(t, s.AppendMessages(entries))
	wantMessages(t, mustLoadMessages(t, s, "c"), want)
}

func testMessagesOrderedBySeq(t *testing.T, s Store) {
	// Seqs chosen so that lexical order of their decimal or little-endian
	// forms differs from numeric order.
	seqs := []uint64{256, 1, 0xFFFFFFFFFFFFFFFF, 2, 10, 0, 1 << 32}
	for _, seq := range seqs {
		must(t, s.AppendMessages([]Entry{{ClientID: "c", Msg: &Message{Seq: seq, Topic: "t"}}}))
	}
	got := mustLoadMessages(t, s, "c")
	want := []uint64{0, 1, 2, 10, 256, 1 << 32, 0xFFFFFFFFFFFFFFFF}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
	for i, m := range got {
		if m.Seq != want[i] {
			t.Fatalf("message %d has seq %d, want %d", i, m.Seq, want[i])
		}
	}
}

func testUpdateDeleteMessage(t *testing.T, s Store) {
	var entries []Entry
	for seq := uint64(1); seq <= 3; seq++ {
		m := fullMessage(seq)
		m.PacketID, m.State = 0, Queued
		entries = append(entries, Entry{ClientID: "c", Msg: m})
	}
	must(t, s.AppendMessages(entries))
	must(t, s.UpdateMessage("c", 2, 17, AwaitingAck))
	must(t, s.UpdateMessage("c", 3, 18, AwaitingAck))
	must(t, s.UpdateMessage("c", 3, 18, AwaitingComp)) // later update wins
	must(t, s.DeleteMessage("c", 1))
	must(t, s.DeleteMessage("c", 99)) // absent: no error

	want2, want3 := fullMessage(2), fullMessage(3)
	want2.PacketID, want2.State = 17, AwaitingAck
	want3.PacketID, want3.State = 18, AwaitingComp
	wantMessages(t, mustLoadMessages(t, s, "c"), []*Message{want2, want3})

	// Deleting then re-appending a seq yields the new message, not the old
	// one's state.
	must(t, s.DeleteMessage("c", 2))
	again := &Message{Seq: 2, Topic: "again"}
	must(t, s.AppendMessages([]Entry{{ClientID: "c", Msg: again}}))
	wantMessages(t, mustLoadMessages(t, s, "c"), []*Message{again, want3})
}

func testUpdateMissingMessage(t *testing.T, s Store) {
	must(t, s.UpdateMessage("c", 5, 1, AwaitingAck))
	if got := mustLoadMessages(t, s, "c"); len(got) != 0 {
		t.Fatalf("update of a missing message made %d messages appear", len(got))
	}
}

func testIncoming(t *testing.T, s Store) {
	for _, id := range []uint16{300, 1, 65535, 2} {
		must(t, s.AddIncoming("c", id))
	}
	must(t, s.AddIncoming("c", 2)) // again: still one
	must(t, s.DeleteIncoming("c", 1))
	must(t, s.DeleteIncoming("c", 9)) // absent: no error
	got, err := s.LoadIncoming("c")
	must(t, err)
	if want := []uint16{2, 300, 65535}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadIncoming = %v, want %v", got, want)
	}
	got, err = s.LoadIncoming("other")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("LoadIncoming of unknown client = %v, want none", got)
	}
}

// A batch applies DeleteIncoming after Incoming: an id recorded and
// released in the same batch (PUBLISH and PUBREL committed together) is
// gone, and so is one recorded by an earlier batch.
func testBatchDeleteIncoming(t *testing.T, s Store) {
	must(t, s.Commit(&Batch{Incoming: []Incoming{{ClientID: "c", PacketID: 1}}}))
	must(t, s.Commit(&Batch{
		Incoming:       []Incoming{{ClientID: "c", PacketID: 2}, {ClientID: "c", PacketID: 3}},
		DeleteIncoming: []Incoming{{ClientID: "c", PacketID: 1}, {ClientID: "c", PacketID: 2}},
	}))
	got, err := s.LoadIncoming("c")
	must(t, err)
	if want := []uint16{3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadIncoming = %v, want %v", got, want)
	}
	if err := s.Commit(&Batch{DeleteIncoming: []Incoming{{ClientID: "a\x00b", PacketID: 3}}}); err == nil {
		t.Fatal("a client id with NUL in DeleteIncoming was accepted")
	}
}

func testDeleteSessionIsolation(t *testing.T, s Store) {
	// "a" is a prefix of "ab"; "" is a prefix of everything.
	ids := []string{"", "a", "ab", "b"}
	for _, id := range ids {
		must(t, s.SaveSession(&Session{ClientID: id, ExpiryInterval: 60}))
		must(t, s.AppendMessages([]Entry{
			{ClientID: id, Msg: &Message{Seq: 1, Topic: "t/" + id}},
			{ClientID: id, Msg: &Message{Seq: 2, Topic: "t/" + id}},
		}))
		must(t, s.UpdateMessage(id, 2, 5, AwaitingAck))
		must(t, s.AddIncoming(id, 42))
	}
	must(t, s.SaveRetained(&Message{Topic: "a", Payload: []byte("keep")}))

	must(t, s.DeleteSession("a"))
	must(t, s.DeleteSession(""))
	must(t, s.DeleteSession("nobody"))

	sessions, err := s.LoadSessions()
	must(t, err)
	var left []string
	for _, sess := range sessions {
		left = append(left, sess.ClientID)
	}
	if want := []string{"ab", "b"}; !reflect.DeepEqual(left, want) {
		t.Fatalf("sessions left = %q, want %q", left, want)
	}
	for _, id := range ids {
		msgs := mustLoadMessages(t, s, id)
		inc, err := s.LoadIncoming(id)
		must(t, err)
		wantN := 2
		if id == "a" || id == "" {
			wantN = 0
		}
		if len(msgs) != wantN || len(inc) != wantN/2 {
			t.Fatalf("client %q: %d messages and %d incoming ids left, want %d and %d",
				id, len(msgs), len(inc), wantN, wantN/2)
		}
		if wantN > 0 && (msgs[1].PacketID != 5 || msgs[1].State != AwaitingAck) {
			t.Fatalf("client %q lost its message update: %+v", id, msgs[1])
		}
	}
	ret, err := s.LoadRetained()
	must(t, err)
	if len(ret) != 1 {
		t.Fatalf("DeleteSession touched retained messages: %d left", len(ret))
	}
}

func testRetained(t *testing.T, s Store) {
	a1 := fullMessage(0)
	a1.Topic = "a"
	must(t, s.SaveRetained(a1))
	must(t, s.SaveRetained(&Message{Topic: "b/c", Payload: []byte("b")}))
	must(t, s.SaveRetained(&Message{Topic: "a/b", Payload: []byte("ab")}))
	a2 := &Message{Topic: "a", Payload: []byte("replaced"), QoS: 1, Retain: true, Created: t1}
	must(t, s.SaveRetained(a2))
	must(t, s.DeleteRetained("b/c"))
	must(t, s.DeleteRetained("never/set"))

	got, err := s.LoadRetained()
	must(t, err)
	wantMessages(t, got, []*Message{a2, {Topic: "a/b", Payload: []byte("ab")}})
}

func testRecordsCopied(t *testing.T, s Store) {
	m := fullMessage(1)
	must(t, s.AppendMessages([]Entry{{ClientID: "c", Msg: m}}))
	m.Payload[0], m.Topic = 'X', "changed"
	got := mustLoadMessages(t, s, "c")
	wantMessages(t, got, []*Message{fullMessage(1)})
	got[0].Payload[0], got[0].UserProps[0].Key = 'Y', "changed"
	wantMessages(t, mustLoadMessages(t, s, "c"), []*Message{fullMessage(1)})

	sess := fullSession("c")
	must(t, s.SaveSession(sess))
	sess.Subscriptions[0].Filter = "changed"
	sess.Will.Payload[0] = 'X'
	loaded, err := s.LoadSessions()
	must(t, err)
	if !reflect.DeepEqual(normSession(loaded[0]), normSession(fullSession("c"))) {
		t.Fatalf("session changed through the caller's copy: %+v", loaded[0])
	}
}

func testClientIDWithNUL(t *testing.T, s Store) {
	bad := "a\x00b"
	checks := map[string]error{
		"SaveSession":    s.SaveSession(&Session{ClientID: bad}),
		"DeleteSession":  s.DeleteSession(bad),
		"AppendMessages": s.AppendMessages([]Entry{{ClientID: "ok", Msg: &Message{}}, {ClientID: bad, Msg: &Message{}}}),
		"UpdateMessage":  s.UpdateMessage(bad, 1, 1, AwaitingAck),
		"DeleteMessage":  s.DeleteMessage(bad, 1),
		"AddIncoming":    s.AddIncoming(bad, 1),
		"DeleteIncoming": s.DeleteIncoming(bad, 1),
	}
	_, checks["LoadMessages"] = s.LoadMessages(bad)
	_, checks["LoadIncoming"] = s.LoadIncoming(bad)
	for name, err := range checks {
		if !errors.Is(err, ErrInvalidClientID) {
			t.Errorf("%s: err = %v, want ErrInvalidClientID", name, err)
		}
	}
	// All or none: the valid entry of the rejected batch was not stored.
	if got := mustLoadMessages(t, s, "ok"); len(got) != 0 {
		t.Fatalf("rejected AppendMessages stored %d messages", len(got))
	}
}

func testNilMessage(t *testing.T, s Store) {
	if err := s.AppendMessages([]Entry{{ClientID: "c"}}); !errors.Is(err, ErrNilMessage) {
		t.Errorf("AppendMessages(nil message) = %v, want ErrNilMessage", err)
	}
	if err := s.SaveRetained(nil); !errors.Is(err, ErrNilMessage) {
		t.Errorf("SaveRetained(nil) = %v, want ErrNilMessage", err)
	}
}

func testConcurrentAppends(t *testing.T, s Store) {
	const writers, perWriter = 8, 50
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			id := fmt.Sprintf("w%d", w)
			for seq := range uint64(perWriter) {
				if err := s.AppendMessages([]Entry{{ClientID: id, Msg: &Message{Seq: seq, Topic: id}}}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		must(t, <-errs)
	}
	for w := range writers {
		msgs := mustLoadMessages(t, s, fmt.Sprintf("w%d", w))
		if len(msgs) != perWriter {
			t.Fatalf("writer %d: %d messages stored, want %d", w, len(msgs), perWriter)
		}
		for i, m := range msgs {
			if m.Seq != uint64(i) {
				t.Fatalf("writer %d: message %d has seq %d", w, i, m.Seq)
			}
		}
	}
}

func testClosed(t *testing.T, s Store) {
	must(t, s.Close())
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if err := s.AppendMessages([]Entry{{ClientID: "c", Msg: &Message{}}}); !errors.Is(err, ErrClosed) {
		t.Errorf("AppendMessages after Close = %v, want ErrClosed", err)
	}
	if _, err := s.LoadSessions(); !errors.Is(err, ErrClosed) {
		t.Errorf("LoadSessions after Close = %v, want ErrClosed", err)
	}
	if err := s.SaveRetained(&Message{Topic: "t"}); !errors.Is(err, ErrClosed) {
		t.Errorf("SaveRetained after Close = %v, want ErrClosed", err)
	}
}

func testCommitBatch(t *testing.T, s Store) {
	old := fullMessage(9)
	old.Topic = "gone"
	if err := s.SaveRetained(old); err != nil {
		t.Fatal(err)
	}
	ret := fullMessage(1)
	ret.Topic = "kept"
	b := &Batch{
		Messages:       []Entry{{ClientID: "a", Msg: fullMessage(1)}, {ClientID: "b", Msg: fullMessage(2)}},
		Updates:        []Update{{ClientID: "b", Seq: 2, PacketID: 42, State: AwaitingComp}},
		Incoming:       []Incoming{{ClientID: "a", PacketID: 7}},
		Retained:       []*Message{ret},
		DeleteRetained: []string{"gone"},
	}
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if msgs, err := s.LoadMessages(id); err != nil || len(msgs) != 1 {
			t.Fatalf("messages of %s: %v, %v", id, msgs, err)
		}
	}
	if msgs, _ := s.LoadMessages("b"); msgs[0].PacketID != 42 || msgs[0].State != AwaitingComp {
		t.Fatalf("update in the batch not applied: pid %d state %v", msgs[0].PacketID, msgs[0].State)
	}
	if ids, err := s.LoadIncoming("a"); err != nil || len(ids) != 1 || ids[0] != 7 {
		t.Fatalf("incoming: %v, %v", ids, err)
	}
	rs, err := s.LoadRetained()
	if err != nil || len(rs) != 1 || rs[0].Topic != "kept" {
		t.Fatalf("retained after commit: %v, %v", rs, err)
	}
	if err := s.Commit(&Batch{}); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
}

func testCommitRejectsWhole(t *testing.T, s Store) {
	b := &Batch{
		Messages: []Entry{{ClientID: "a", Msg: fullMessage(1)}},
		Incoming: []Incoming{{ClientID: "bad\x00id", PacketID: 1}},
	}
	if err := s.Commit(b); err == nil {
		t.Fatal("batch with a NUL client id accepted")
	}
	if msgs, _ := s.LoadMessages("a"); len(msgs) != 0 {
		t.Fatalf("part of a rejected batch was written: %v", msgs)
	}
}
