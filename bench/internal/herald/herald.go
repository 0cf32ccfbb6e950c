// Package herald starts an in-process Herald broker for tests of herald
// bench, served the way `herald serve` serves plain TCP (the epoll
// transport), so the bench's scenarios measure the production path.
package herald

import (
	"context"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// Start runs a Herald broker with its default options (no $SYS, an
// in-memory store) on a free loopback port for the test's lifetime and
// returns its address.
func Start(t testing.TB) string {
	return StartWith(t, nil)
}

// StartWith is Start with options changed by configure before the broker
// is created (nil changes nothing).
func StartWith(t testing.TB, configure func(*broker.Options)) string {
	t.Helper()
	opts := broker.DefaultOptions()
	opts.SysInterval = 0
	opts.Store = store.NewMemory()
	if configure != nil {
		configure(&opts)
	}
	srv := broker.New(opts)
	ctx, cancel := context.WithCancel(context.Background())
	es, err := transport.ListenEpoll(ctx, "127.0.0.1:0", transport.EpollOptions{}, srv.Accept("test"))
	if err != nil {
		cancel()
		srv.Shutdown(context.Background())
		t.Fatalf("herald: listen: %v", err)
	}
	t.Cleanup(func() {
		es.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("herald: shutdown: %v", err)
		}
		cancel()
	})
	return es.Addr().String()
}
