package e2e

import (
	"bytes"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// A server-to-client topic alias is defined only by a PUBLISH that is
// written with both the topic and the alias (MQTT 5.0 section 3.3.2.3.4).
// A QoS 0 message dropped because its subscriber is slow must not have
// assigned one: later messages on that topic would use an alias the
// client never learnt.
func TestTopicAliasNotAssignedToDroppedMessages(t *testing.T) {
	b := startBroker(t, func(o *broker.Options) { o.MaxPendingBytes = 64 << 10 })
	cp := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "sub", CleanStart: true}
	cp.Props.TopicAliasMaximum = 10
	sub, _ := connectRaw(t, b.Addr, cp)
	sub.SubscribeOne("#", 0)
	pub, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version311, ClientID: "pub", CleanStart: true})
	big := bytes.Repeat([]byte{'x'}, 256<<10)
	sync := func() { pub.Send(&packet.Pingreq{}); mqtttest.Expect[*packet.Pingresp](pub) }
	for i := 0; i < 60; i++ {
		pub.Send(&packet.Publish{Topic: "fill", Payload: big})
	}
	pub.Send(&packet.Publish{Topic: "b", Payload: []byte("first")})
	sync()
	defined := map[uint16]string{}
	check := func(p *packet.Publish) {
		if p.Props.TopicAlias != 0 {
			if p.Topic != "" {
				defined[p.Props.TopicAlias] = p.Topic
			} else if _, ok := defined[p.Props.TopicAlias]; !ok {
				t.Errorf("PUBLISH with alias %d never defined on this connection (payload %q)", p.Props.TopicAlias, p.Payload[:min(10, len(p.Payload))])
			}
		}
	}
	for {
		f, err := sub.Recv(500 * time.Millisecond)
		if err != nil {
			break
		}
		if p, ok := f.(*packet.Publish); ok {
			check(p)
		}
	}
	pub.Send(&packet.Publish{Topic: "b", Payload: []byte("second")})
	sync()
	f, err := sub.Recv(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	check(f.(*packet.Publish))
	if b.Server.Stats().DroppedQoS0.Load() == 0 {
		t.Fatal("no QoS 0 message was dropped as slow: the test did not exercise the drop")
	}
}
