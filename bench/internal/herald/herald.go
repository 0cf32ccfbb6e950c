// Package herald starts an in-process Herald broker for tests of herald
// bench, served the way `herald serve` serves plain TCP (the epoll
// transport), so the bench's scenarios measure the production path.
package herald

import (
	"testing"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
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
	opts := mqtttest.Options()
	if configure != nil {
		configure(&opts)
	}
	return mqtttest.ServeEpoll(t, broker.New(opts), "test", transport.EpollOptions{}).Addr
}
