package listenertest

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/transport"
)

// TestListenerMaxConnectionsPerListener proves max_connections on each
// listener type: the listener admits its limit, refuses the next client
// and counts it, admits again once a client leaves, and leaves the
// broker's other listeners alone.
func TestListenerMaxConnectionsPerListener(t *testing.T) {
	p := newPKI(t)
	type listener struct {
		name  string
		start func(t *testing.T, b *testBroker, name string, limit *transport.ConnLimit) func() (net.Conn, error)
	}
	for _, l := range []listener{
		{"tcp", func(t *testing.T, b *testBroker, name string, limit *transport.ConnLimit) func() (net.Conn, error) {
			addr := b.serveTCP(t, name, limit)
			return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, waitFor) }
		}},
		{"tls", func(t *testing.T, b *testBroker, name string, limit *transport.ConnLimit) func() (net.Conn, error) {
			addr := b.serveTLS(t, name, p.serverConf(tls.NoClientCert), limit)
			return func() (net.Conn, error) { return dialTLS(addr, p.clientConf(nil)) }
		}},
		{"ws", func(t *testing.T, b *testBroker, name string, limit *transport.ConnLimit) func() (net.Conn, error) {
			url := b.serveWS(t, name, nil, limit)
			return func() (net.Conn, error) { return dialWS(t, url, nil) }
		}},
		{"wss", func(t *testing.T, b *testBroker, name string, limit *transport.ConnLimit) func() (net.Conn, error) {
			url := b.serveWS(t, name, p.serverConf(tls.NoClientCert), limit)
			return func() (net.Conn, error) { return dialWS(t, url, p.clientConf(nil)) }
		}},
	} {
		t.Run(l.name, func(t *testing.T) {
			b := startBroker(t, nil)
			limit := transport.NewConnLimit(2)
			dialLimited := l.start(t, b, "limited", limit)
			dialOther := l.start(t, b, "other", nil)
			connect := func(dial func() (net.Conn, error), id string) (*v5Client, error) {
				conn, err := dial()
				if err != nil {
					return nil, err
				}
				return connectV5(t, conn, &paho.Connect{ClientID: id, CleanStart: true})
			}

			first, err := connect(dialLimited, "first")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := connect(dialLimited, "second"); err != nil {
				t.Fatal(err)
			}
			if _, err := connect(dialLimited, "third"); err == nil {
				t.Fatal("a third client connected to a listener with max_connections 2")
			}
			if got := limit.Refused(); got != 1 {
				t.Errorf("Refused = %d, want 1", got)
			}
			other, err := connect(dialOther, "elsewhere")
			if err != nil {
				t.Fatalf("the other listener refused a client: %v", err)
			}
			other.roundTrip(t, "limits/other", "unaffected")

			first.Disconnect(&paho.Disconnect{})
			deadline := time.Now().Add(waitFor)
			for limit.Open() != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("Open = %d after a disconnect, want 1", limit.Open())
				}
				time.Sleep(5 * time.Millisecond)
			}
			again, err := connect(dialLimited, "again")
			if err != nil {
				t.Fatalf("a freed slot was not reused: %v", err)
			}
			again.roundTrip(t, "limits/again", "admitted")
		})
	}
}
