package crashtest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// BenchmarkQoS1Publish measures QoS 1 publish throughput, PUBLISH to
// PUBACK over real sockets, into an in-process broker served by the epoll
// transport (as herald serve does), with the Pebble store against the
// in-memory one. One persistent subscriber is offline, so every message is
// stored before it is acknowledged. publishers connections each keep
// window messages in flight; b.N messages in all.
//
//	go test ./crashtest -run '^$' -bench QoS1Publish -benchtime 20000x
func BenchmarkQoS1Publish(b *testing.B) {
	for _, kind := range []string{"memory", "pebble"} {
		for _, load := range []struct{ publishers, window int }{{1, 1}, {16, 1}, {64, 1}, {16, 32}} {
			name := fmt.Sprintf("store=%s/publishers=%d/window=%d", kind, load.publishers, load.window)
			b.Run(name, func(b *testing.B) {
				benchPublish(b, kind, load.publishers, load.window)
			})
		}
	}
}

func benchPublish(b *testing.B, kind string, publishers, window int) {
	var st store.Store
	var pst *store.Pebble
	if kind == "pebble" {
		p, err := store.OpenPebble(b.TempDir(), store.PebbleOptions{})
		if err != nil {
			b.Fatal(err)
		}
		st, pst = p, p
	} else {
		st = store.NewMemory()
	}
	opts := broker.DefaultOptions()
	opts.Store = st
	opts.SysInterval = 0
	opts.MaxQueuedMessages = 1 << 30
	opts.MaxQueuedBytes = 1 << 40
	opts.ReceiveMaximum = uint16(max(window, 1))
	srv := broker.New(opts)
	if err := srv.Recover(); err != nil {
		b.Fatal(err)
	}
	addr := mqtttest.ServeEpoll(b, srv, "bench", transport.EpollOptions{}).Addr

	sub := dialRaw(b, addr, packet.Version5)
	sub.connect("bench-subscriber", true, sessionExpiry)
	sub.subscribe(1, 1, "bench/qos1")
	sub.hangUp()

	conns := make([]*rawClient, publishers)
	for i := range conns {
		conns[i] = dialRaw(b, addr, packet.Version5)
		conns[i].connect(fmt.Sprintf("bench-publisher-%d", i), true, 0)
	}
	var before store.Stats
	if pst != nil {
		before = pst.Stats()
	}
	payload := bytes.Repeat([]byte{'p'}, 64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for i, c := range conns {
		n := b.N / publishers
		if i < b.N%publishers {
			n++
		}
		wg.Go(func() {
			if err := pipelineQoS1(c, "bench/qos1", payload, n, window); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if pst != nil {
		s := pst.Stats()
		syncs := s.WALSyncs - before.WALSyncs
		if syncs > 0 {
			// The broker's committer already batches the messages of many
			// publishers into one AppendMessages: messages per fsync is the
			// group-commit factor.
			b.ReportMetric(float64(b.N)/float64(syncs), "msgs/fsync")
			b.ReportMetric(float64(s.WALSyncLatency-before.WALSyncLatency)/float64(syncs)/1e3, "µs/fsync")
		}
	}
	for _, c := range conns {
		c.hangUp()
	}
}

// pipelineQoS1 publishes n QoS 1 messages on c with window in flight and
// returns when all are acknowledged.
func pipelineQoS1(c *rawClient, topic string, payload []byte, n, window int) error {
	slots := make(chan struct{}, window)
	werr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			slots <- struct{}{}
			pid := uint16(i%65000) + 1
			if err := c.TrySend(&packet.Publish{QoS: 1, Topic: topic, PacketID: pid, Payload: payload}); err != nil {
				werr <- err
				return
			}
		}
	}()
	for acked := 0; acked < n; {
		p, err := c.Recv(30 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d PUBACKs: %w", acked, err)
		}
		if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBACK {
			if a.ReasonCode >= 0x80 {
				return fmt.Errorf("PUBACK %v", a.ReasonCode)
			}
			acked++
			<-slots
		}
		select {
		case err := <-werr:
			return err
		default:
		}
	}
	return nil
}
