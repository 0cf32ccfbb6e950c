package crashtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-mqtt/herald/packet"
)

// TestFullQueueDoesNotAcknowledgeWhatItDrops: an offline persistent
// session's queue holds max_queued_messages. A QoS 1 message beyond it must
// not be acknowledged as if it were kept: herald.example.yaml says QoS 1 and
// 2 "push back on publishers", and the architecture says an acknowledged
// message is never dropped. Every message the publisher saw acknowledged
// (PUBACK Success) must reach the subscriber, also after a kill -9.
func TestFullQueueDoesNotAcknowledgeWhatItDrops(t *testing.T) {
	dir := t.TempDir()
	h := startHerald(t, dir, "--max-queued-messages", "5")
	sub := dialRaw(t, h.addr, packet.Version5)
	sub.connect("limited", true, sessionExpiry)
	sub.subscribe(1, 1, "crash/limit")
	sub.hangUp()

	pub := dialRaw(t, h.addr, packet.Version5)
	pub.connect("limit-publisher", true, 0)
	var acked []string
	for i := 1; i <= 10; i++ {
		pid := uint16(i)
		payload := fmt.Sprint(i)
		pub.Send(&packet.Publish{QoS: 1, Topic: "crash/limit", PacketID: pid, Payload: []byte(payload)})
		// Push back may mean the PUBACK comes later or with a failure code;
		// only a Success acknowledgement promises delivery.
		p, err := pub.Recv(quietFor)
		if err != nil {
			continue
		}
		if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBACK && a.ReasonCode == packet.Success {
			acked = append(acked, payload)
		}
	}
	pub.hangUp()
	flushLazyWrites(t, h)
	h.kill()
	h = startHerald(t, dir, "--max-queued-messages", "5")

	sub = dialRaw(t, h.addr, packet.Version5)
	sub.connect("limited", false, sessionExpiry)
	got := map[string]bool{}
	for {
		p, err := sub.Recv(quietFor)
		if err != nil {
			break
		}
		if m, ok := p.(*packet.Publish); ok {
			got[string(m.Payload)] = true
			sub.Send(&packet.Ack{Kind: packet.PUBACK, PacketID: m.PacketID})
		}
	}
	var lost []string
	for _, a := range acked {
		if !got[a] {
			lost = append(lost, a)
		}
	}
	if len(lost) > 0 {
		t.Errorf("a full session queue (max_queued_messages=5) dropped QoS 1 messages the publisher was sent PUBACK Success for: %d acknowledged, %d lost: %s; a v5 publisher must get 0x97 Quota exceeded instead",
			len(acked), len(lost), strings.Join(lost, ","))
	}
}
