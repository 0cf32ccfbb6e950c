package broker

import (
	"testing"

	"github.com/herald-mqtt/herald/packet"
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
			c.sess.expire() // as its expiry timer would
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
