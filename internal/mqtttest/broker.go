package mqtttest

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// Options returns broker.DefaultOptions with an in-memory store and no
// $SYS publishes, which would move counters and reach "#" subscribers
// under the tests.
func Options() broker.Options {
	opts := broker.DefaultOptions()
	opts.Store = store.NewMemory()
	opts.SysInterval = 0
	return opts
}

// Broker is a broker.Server serving MQTT on a loopback port until the test
// ends.
type Broker struct {
	Server *broker.Server
	Addr   string // host:port of the listener
}

// Serve serves srv with transport.Serve on 127.0.0.1:0, its connections
// accepted under the listener name listener. The broker shuts down, then
// the listener, in t.Cleanup.
func Serve(t testing.TB, srv *broker.Server, listener string) *Broker {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		transport.Serve(ctx, l, srv.Accept(listener))
	}()
	t.Cleanup(func() {
		shutdown(t, srv)
		cancel()
		select {
		case <-served:
		case <-time.After(shutdownWait):
			t.Errorf("transport.Serve did not return after shutdown")
		}
	})
	return &Broker{Server: srv, Addr: l.Addr().String()}
}

// ServeEpoll is Serve on the epoll transport with eo, as herald serve
// serves plain TCP.
func ServeEpoll(t testing.TB, srv *broker.Server, listener string, eo transport.EpollOptions) *Broker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	es, err := transport.ListenEpoll(ctx, "127.0.0.1:0", eo, srv.Accept(listener))
	if err != nil {
		cancel()
		shutdown(t, srv)
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() {
		shutdown(t, srv)
		es.Close()
		cancel()
	})
	return &Broker{Server: srv, Addr: es.Addr().String()}
}

// shutdownWait bounds a test broker's shutdown.
const shutdownWait = 10 * time.Second

// shutdown shuts srv down, logging any error but those of a broker or
// store the test closed itself.
func shutdown(t testing.TB, srv *broker.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil && !errors.Is(err, store.ErrClosed) && !strings.Contains(err.Error(), "already shut down") {
		t.Logf("shutdown: %v", err)
	}
}
