package broker

import (
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/herald-mqtt/herald/packet"
)

// discardConn is a transport.Conn that counts and drops what is written.
type discardConn struct{ bytes atomic.Int64 }

func (d *discardConn) Write(b []byte) (int, error) { d.bytes.Add(int64(len(b))); return 0, nil }
func (d *discardConn) Close() error                { return nil }
func (d *discardConn) RemoteAddr() net.Addr        { return &net.TCPAddr{} }
func (d *discardConn) LocalAddr() net.Addr         { return &net.TCPAddr{} }

// connectFake attaches a connected client with one subscription to srv
// without a network, the way handleConnect and handleSubscribe do.
func connectFake(tb testing.TB, srv *Server, id string, version byte, filter string, qos byte) *client {
	tb.Helper()
	c := newClient(srv, &discardConn{}, "bench")
	c.version = version
	c.info.ClientID = id
	c.receiveMaxOut = 65535
	sess, _, err := srv.attach(c, true, 0)
	if err != nil {
		tb.Fatal(err)
	}
	c.sess = sess
	c.set(fConnected)
	code, _, _ := c.subscribeOne(packet.Subscription{Filter: filter, QoS: qos}, 0)
	if code >= 0x80 {
		tb.Fatalf("subscribe %q: %v", filter, code)
	}
	return c
}

func benchOptions() Options {
	o := DefaultOptions()
	o.SysInterval = 0
	return o
}

// BenchmarkRoute measures match + encode-once + enqueue of one QoS 0
// publish to N subscribers of one topic. ns/op is per publish; the
// ns/delivery metric divides by N.
func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("fanout-qos0-%d", n), func(b *testing.B) {
			srv := New(benchOptions())
			defer srv.cancel()
			for i := range n {
				connectFake(b, srv, fmt.Sprintf("c%d", i), packet.Version311, "live/room/1", 0)
			}
			m := &Message{Topic: "live/room/1", Payload: make([]byte, 64)}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				srv.route(m, nil)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
	b.Run("unicast-qos1-100000-topics", func(b *testing.B) {
		srv := New(benchOptions())
		defer srv.cancel()
		clients := make([]*client, 100000)
		for i := range clients {
			clients[i] = connectFake(b, srv, fmt.Sprintf("u%d", i), packet.Version5, fmt.Sprintf("user/%d/inbox", i), 1)
		}
		msgs := make([]*Message, len(clients))
		for i := range msgs {
			msgs[i] = &Message{Topic: fmt.Sprintf("user/%d/inbox", i), Payload: make([]byte, 64), QoS: 1}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			k := i % len(msgs)
			srv.route(msgs[k], nil)
			// Acknowledge so the window never fills.
			c := clients[k]
			c.handleAck(&packet.Ack{Kind: packet.PUBACK, PacketID: c.sess.out.nextID})
		}
	})
}

// BenchmarkIdleClientMemory reports the broker's heap per connected,
// subscribed, idle client (transport excluded: see transport's own
// benchmark for the epoll connection).
func BenchmarkIdleClientMemory(b *testing.B) {
	const n = 15000
	for range b.N {
		srv := New(benchOptions())
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		clients := make([]*client, n)
		for i := range clients {
			c := newClient(srv, &discardConn{}, "bench")
			frame, _ := packet.Encode(nil, packet.Version311, &packet.Connect{ProtocolVersion: packet.Version311,
				ClientID: fmt.Sprintf("mobile-%08d", i), CleanStart: true, KeepAlive: 60})
			if err := c.Data(frame); err != nil {
				b.Fatal(err)
			}
			sub, _ := packet.Encode(nil, packet.Version311, &packet.Subscribe{PacketID: 1,
				Subscriptions: []packet.Subscription{{Filter: fmt.Sprintf("user/%08d/inbox", i), QoS: 1}}})
			if err := c.Data(sub); err != nil {
				b.Fatal(err)
			}
			clients[i] = c
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-bytes/client")
		runtime.KeepAlive(clients)
		srv.cancel()
	}
}

// BenchmarkSubscribeAtScale is the cost of one SUBSCRIBE and one
// UNSUBSCRIBE packet through a client's read path (decode, session, trie,
// SUBACK and UNSUBACK encoded and written) with n other clients already
// subscribed, each to its own topic (unicast) or all to the one being
// subscribed to (sametopic). Issue 5 asks that it not grow with n.
func BenchmarkSubscribeAtScale(b *testing.B) {
	for _, shape := range []string{"unicast", "sametopic"} {
		for _, n := range []int{1000, 10000, 100000} {
			b.Run(fmt.Sprintf("%s/existing=%d", shape, n), func(b *testing.B) {
				srv := New(benchOptions())
				defer srv.cancel()
				for i := range n {
					filter := "feed/live"
					if shape == "unicast" {
						filter = fmt.Sprintf("user/%08d/inbox", i)
					}
					connectFake(b, srv, fmt.Sprintf("c%d", i), packet.Version311, filter, 1)
				}
				c := connectFake(b, srv, "subscriber", packet.Version311, "own/topic", 1)
				const batch = 1024
				frames := make([][]byte, batch)
				for i := range frames {
					filter := "feed/live"
					if shape == "unicast" {
						filter = fmt.Sprintf("user/new%04d/inbox", i)
					}
					sub, _ := packet.Encode(nil, packet.Version311, &packet.Subscribe{PacketID: 1,
						Subscriptions: []packet.Subscription{{Filter: filter, QoS: 1}}})
					unsub, _ := packet.Encode(nil, packet.Version311, &packet.Unsubscribe{PacketID: 2, Filters: []string{filter}})
					frames[i] = append(sub, unsub...)
				}
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if err := c.Data(frames[i%batch]); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}
