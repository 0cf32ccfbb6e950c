package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/transport"
)

// fakeConn is a transport.Conn that discards what the broker writes, so
// that many sessions can exist without sockets (the test machines allow
// fewer than 20,000 open files).
type fakeConn struct {
	h    transport.Handler
	once sync.Once
}

func (c *fakeConn) Write(b []byte) (int, error) { return 0, nil }
func (c *fakeConn) Close() error {
	c.once.Do(func() { go c.h.Closed(nil) })
	return nil
}
func (c *fakeConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *fakeConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1883} }

// populate connects n sessions "c000000".. through fake connections, each
// subscribed to its own unicast filter and to "all".
func populate(tb testing.TB, srv *broker.Server, n int) {
	tb.Helper()
	accept := srv.Accept("fake")
	for i := range n {
		id := fmt.Sprintf("c%06d", i)
		fc := &fakeConn{}
		h := accept(fc)
		fc.h = h
		for _, p := range []packet.Packet{
			mqtttest.V5(id),
			&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: "user/" + id, QoS: 1}, {Filter: "all"}}},
		} {
			b, err := packet.Encode(nil, packet.Version5, p)
			if err != nil {
				tb.Fatal(err)
			}
			if err := h.Data(b); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func newScaleServer(tb testing.TB) *broker.Server {
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	srv := broker.New(opts)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

// Paging through thousands of sessions returns each exactly once, in
// order, and the topic ranking finds the filter everybody holds.
func TestClientsPagingAtScale(t *testing.T) {
	const n = 5000
	srv := newScaleServer(t)
	populate(t, srv, n)
	h := NewHandler(Options{Server: srv})

	var seen []string
	after := ""
	for {
		req, _ := http.NewRequest("GET", "/api/clients?limit=1000&after="+after, nil)
		req.RemoteAddr, req.Host = "127.0.0.1:1", "127.0.0.1:8080"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("GET /api/clients: %d %s", w.Code, w.Body)
		}
		var out struct {
			Total   int          `json:"total"`
			Clients []clientJSON `json:"clients"`
			Next    string       `json:"next"`
		}
		if err := json.NewDecoder(w.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		if out.Total != n {
			t.Fatalf("total %d, want %d", out.Total, n)
		}
		for _, c := range out.Clients {
			seen = append(seen, c.ClientID)
		}
		if out.Next == "" {
			break
		}
		after = out.Next
	}
	if len(seen) != n || !slices.IsSorted(seen) {
		t.Fatalf("paged %d ids (sorted %v), want %d in order", len(seen), slices.IsSorted(seen), n)
	}
	top, distinct := srv.Topics(1)
	if distinct != n+1 || len(top) != 1 || top[0].Filter != "all" || top[0].Subscribers != n {
		t.Fatalf("Topics(1) = %+v, %d distinct", top, distinct)
	}
}

// What a scrape costs: the walk over every session behind the gauges.
func BenchmarkGauges10k(b *testing.B) {
	srv := newScaleServer(b)
	populate(b, srv, 10000)
	b.ReportAllocs()
	for b.Loop() {
		srv.Gauges()
	}
}

// What one page of /api/clients costs with 10k sessions.
func BenchmarkClientsPage10k(b *testing.B) {
	srv := newScaleServer(b)
	populate(b, srv, 10000)
	b.ReportAllocs()
	for b.Loop() {
		srv.Clients("c005000", 100)
	}
}

// The RouteCounter hook on the message path allocates nothing.
func BenchmarkRouteCounter(b *testing.B) {
	rc := &RouteCounter{}
	info := &broker.ClientInfo{ClientID: "x"}
	m := &broker.Message{Topic: "t", QoS: 1}
	b.ReportAllocs()
	for b.Loop() {
		rc.OnPublish(info, m)
	}
}
