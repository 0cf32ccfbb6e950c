package broker

import (
	"testing"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// The committer writes an inbound QoS 2 packet id only for a session that
// still keeps records. Written for one that is not persistent or has ended
// (its records deleted meanwhile), the id would stay in the store under
// the client id, be loaded for the next persistent session of that id
// after a restart, and that session's PUBLISH with the id, a new message
// [MQTT-4.3.3-12], would be taken for a retransmission: acknowledged,
// never delivered.
func TestCommitterWritesNoInboundQoS2IdOfASessionWithoutRecords(t *testing.T) {
	persistent := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "p", CleanStart: false,
		Props: packet.Properties{SessionExpiry: 60, HasSessionExpiry: true}}
	for _, tc := range []struct {
		name    string
		connect *packet.Connect
		end     func(t *testing.T, srv *Server, c *client) // before the commit
	}{
		{"not persistent", &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: true}, nil},
		{"expired", persistent, func(t *testing.T, srv *Server, c *client) {
			c.Closed(nil)
			c.sess.expire(c.sess.offline) // as its expiry timer would
		}},
		{"ended by a Clean Start", persistent, func(t *testing.T, srv *Server, c *client) {
			again := *persistent
			again.CleanStart = true // [MQTT-3.1.2-4] a new persistent session of the client id
			fakeClient(t, srv, &again, "", 0)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, st := storedServer(t, nil)
			c, _ := fakeClient(t, srv, tc.connect, "", 0)
			if tc.end != nil {
				tc.end(t, srv, c)
			}
			// The commit of a QoS 2 PUBLISH read before the session ended.
			c.pendingAcks.Add(1) // as submit counts it
			srv.commit.commit([]commitJob{{c: c, incoming: 5}})
			if ids, err := st.LoadIncoming("p"); err != nil || len(ids) != 0 {
				t.Fatalf("stored inbound ids of p: %v %v, want none", ids, err)
			}
		})
	}
}

// gateStore holds every Commit until open is closed.
type gateStore struct {
	*store.Memory
	open chan struct{}
}

func (g *gateStore) Commit(b *store.Batch) error { <-g.open; return g.Memory.Commit(b) }

// A 3.1.1 client may retransmit a QoS 2 PUBLISH on the same connection.
// If the first copy went to a persistent subscriber, its PUBREC waits for
// that record to be durable; the retransmission's PUBREC must wait too
// (and come after it [MQTT-4.6.0-3]), even though the publisher's own
// session keeps no records: a PUBREC out first would have the client
// release and drop a message a crash could still lose.
func TestRetransmittedQoS2PublishWaitsForTheFirstCopysCommit(t *testing.T) {
	st := &gateStore{Memory: store.NewMemory(), open: make(chan struct{})}
	srv := serverOn(t, st)
	opened := false
	open := func() {
		if !opened {
			opened = true
			close(st.open)
		}
	}
	defer open()
	fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "s", CleanStart: false}, "in/t", 2)
	pub, pubConn := fakeClient(t, srv, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "p", CleanStart: true}, "", 0)
	msg := &packet.Publish{Topic: "in/t", QoS: 2, PacketID: 9, Payload: []byte("once")}
	dup := *msg
	dup.Dup = true
	feed(t, pub, packet.Version311, msg, &dup)
	if got := pubConn.take(t); len(got) != 0 {
		t.Fatalf("publisher got %v before the message was durable, want nothing", got)
	}
	open()
	var acks []packet.Packet
	for deadline := time.Now().Add(5 * time.Second); len(acks) < 2 && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		acks = append(acks, pubConn.take(t)...)
	}
	if len(acks) != 2 || acks[0].Type() != packet.PUBREC || acks[1].Type() != packet.PUBREC {
		t.Fatalf("publisher got %v, want two PUBRECs", acks)
	}
}
