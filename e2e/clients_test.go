package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/herald-mqtt/herald/internal/mqtttest"
)

// paho.golang (MQTT 5): QoS 0, 1 and 2 with every pass-through property
// and a subscription identifier, end to end [MQTT-3.3.2-15..20]
// [MQTT-3.3.4-3]; CONNACK capabilities as paho reads them.
func TestPahoV5_QoSAndPropertiesRoundTrip(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	sub := connectPaho(t, b.Addr, &paho.Connect{ClientID: "paho-sub", CleanStart: true, KeepAlive: 30})
	if p := sub.connack.Properties; p == nil || p.ReceiveMaximum == nil || *p.ReceiveMaximum != 128 ||
		p.TopicAliasMaximum == nil || *p.TopicAliasMaximum != 64 || !p.RetainAvailable || !p.WildcardSubAvailable ||
		!p.SubIDAvailable || !p.SharedSubAvailable {
		t.Fatalf("CONNACK properties as paho sees them: %+v", sub.connack.Properties)
	}
	subID := 9
	if _, err := sub.Subscribe(ctxT(t), &paho.Subscribe{
		Properties:    &paho.SubscribeProperties{SubscriptionIdentifier: &subID},
		Subscriptions: []paho.SubscribeOptions{{Topic: "paho/+", QoS: 2}},
	}); err != nil {
		t.Fatal(err)
	}
	pub := connectPaho(t, b.Addr, &paho.Connect{ClientID: "paho-pub", CleanStart: true, KeepAlive: 30})
	format := byte(1)
	for qos := byte(0); qos <= 2; qos++ {
		_, err := pub.Publish(ctxT(t), &paho.Publish{
			Topic: "paho/t", QoS: qos, Payload: []byte(fmt.Sprintf(`{"q":%d}`, qos)),
			Properties: &paho.PublishProperties{
				ContentType: "application/json", ResponseTopic: "paho/reply", CorrelationData: []byte("corr"),
				PayloadFormat: &format, User: paho.UserProperties{{Key: "trace", Value: "abc"}, {Key: "trace", Value: "def"}},
			},
		})
		if err != nil {
			t.Fatalf("QoS %d publish: %v", qos, err)
		}
		m := sub.next(t)
		pp := m.Properties
		if m.QoS != qos || string(m.Payload) != fmt.Sprintf(`{"q":%d}`, qos) || pp == nil {
			t.Fatalf("QoS %d: got %+v", qos, m)
		}
		if pp.ContentType != "application/json" || pp.ResponseTopic != "paho/reply" || string(pp.CorrelationData) != "corr" ||
			pp.PayloadFormat == nil || *pp.PayloadFormat != 1 || !slices.Equal(pp.User, paho.UserProperties{{Key: "trace", Value: "abc"}, {Key: "trace", Value: "def"}}) ||
			pp.SubscriptionIdentifier == nil || *pp.SubscriptionIdentifier != 9 {
			t.Fatalf("QoS %d: properties %+v", qos, pp)
		}
	}
}

// paho.golang request/response: the responder answers on the Response
// Topic with the Correlation Data, and the requester matches it
// (v5 §4.10).
func TestPahoV5_RequestResponse(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	responder := connectPaho(t, b.Addr, &paho.Connect{ClientID: "svc", CleanStart: true, KeepAlive: 30})
	if _, err := responder.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "svc/req", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range responder.msgs {
			if m.Properties == nil || m.Properties.ResponseTopic == "" {
				continue
			}
			responder.Publish(ctxT(t), &paho.Publish{Topic: m.Properties.ResponseTopic, QoS: 1,
				Payload:    append([]byte("re:"), m.Payload...),
				Properties: &paho.PublishProperties{CorrelationData: m.Properties.CorrelationData}})
		}
	}()
	req := connectPaho(t, b.Addr, &paho.Connect{ClientID: "caller", CleanStart: true, KeepAlive: 30})
	if _, err := req.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "caller/replies", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		corr := []byte(fmt.Sprintf("id-%d", i))
		if _, err := req.Publish(ctxT(t), &paho.Publish{Topic: "svc/req", QoS: 1, Payload: []byte("ping"),
			Properties: &paho.PublishProperties{ResponseTopic: "caller/replies", CorrelationData: corr}}); err != nil {
			t.Fatal(err)
		}
		m := req.next(t)
		if string(m.Payload) != "re:ping" || m.Properties == nil || string(m.Properties.CorrelationData) != string(corr) {
			t.Fatalf("reply %d: %q corr %v", i, m.Payload, m.Properties)
		}
	}
}

// paho.golang: a takeover tells the old client 0x8E through
// OnServerDisconnect [MQTT-3.1.4-3]; an empty client id gets an Assigned
// Client Identifier [MQTT-3.2.2-16].
func TestPahoV5_TakeoverAndAssignedID(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	old := connectPaho(t, b.Addr, &paho.Connect{ClientID: "paho-take", CleanStart: true, KeepAlive: 30})
	connectPaho(t, b.Addr, &paho.Connect{ClientID: "paho-take", CleanStart: true, KeepAlive: 30})
	select {
	case d := <-old.disconnects:
		if d.ReasonCode != 0x8E {
			t.Fatalf("DISCONNECT 0x%02X, want 0x8E", d.ReasonCode)
		}
	case <-time.After(waitFor):
		t.Fatal("old paho client not told of the takeover")
	}
	anon := connectPaho(t, b.Addr, &paho.Connect{CleanStart: true, KeepAlive: 30})
	if anon.connack.Properties == nil || anon.connack.Properties.AssignedClientID == "" {
		t.Fatal("no Assigned Client Identifier")
	}
}

// paho.golang: a session with an expiry interval keeps QoS 1 messages
// published while the client is away and delivers them on resume, with
// Session Present set [MQTT-3.2.2-2].
func TestPahoV5_SessionResumeDeliversQueued(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := func(clean bool) *paho.Connect {
		return &paho.Connect{ClientID: "paho-sess", CleanStart: clean, KeepAlive: 30,
			Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}}
	}
	s := connectPaho(t, b.Addr, cp(true))
	if _, err := s.Subscribe(ctxT(t), &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "sess/t", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	s.Disconnect(&paho.Disconnect{})
	b.waitConnected(t, 0)
	pub := connectPaho(t, b.Addr, &paho.Connect{ClientID: "paho-sess-pub", CleanStart: true, KeepAlive: 30})
	for i := range 3 {
		if _, err := pub.Publish(ctxT(t), &paho.Publish{Topic: "sess/t", QoS: 1, Payload: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	s = connectPaho(t, b.Addr, cp(false))
	if !s.connack.SessionPresent {
		t.Fatal("session not present")
	}
	for i := range 3 {
		if m := s.next(t); string(m.Payload) != fmt.Sprint(i) {
			t.Fatalf("queued message %d: got %q", i, m.Payload)
		}
	}
}

// connectPahoV3 connects a paho.mqtt.golang client with protocol level pv
// (3 = MQTT 3.1, 4 = 3.1.1).
func connectPahoV3(t *testing.T, addr, id string, pv uint, clean bool, onMsg pahov3.MessageHandler) (pahov3.Client, bool) {
	t.Helper()
	opts := pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(pv).SetCleanSession(clean).SetAutoReconnect(false).
		SetConnectTimeout(waitFor).SetDefaultPublishHandler(onMsg).SetOrderMatters(true)
	c := pahov3.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho v3 (level %d) connect: %v", pv, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, tok.(*pahov3.ConnectToken).SessionPresent()
}

func waitToken(t *testing.T, tok pahov3.Token) {
	t.Helper()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho v3: %v", tok.Error())
	}
}

// paho.mqtt.golang at MQTT 3.1 and 3.1.1: QoS 0/1/2 publish and subscribe
// [MQTT-4.3], retained messages with the retain flag [MQTT-3.3.1-8], and a
// persistent session (Clean Session 0) that keeps QoS 1 messages while the
// client is away [MQTT-3.1.2-4] [MQTT-3.2.2-2].
func TestPahoV3_31And311_QoSRetainedPersistentSession(t *testing.T) {
	t.Parallel()
	for _, pv := range []uint{3, 4} {
		t.Run(fmt.Sprintf("level%d", pv), func(t *testing.T) {
			t.Parallel()
			b := startBroker(t, nil)
			msgs := make(chan pahov3.Message, 50)
			handler := func(_ pahov3.Client, m pahov3.Message) { msgs <- m }
			next := func() pahov3.Message {
				t.Helper()
				select {
				case m := <-msgs:
					return m
				case <-time.After(waitFor):
					t.Fatal("paho v3: no message")
					return nil
				}
			}
			pub, _ := connectPahoV3(t, b.Addr, "v3pub", pv, true, func(pahov3.Client, pahov3.Message) {})
			waitToken(t, pub.Publish("v3/retained", 1, true, "kept"))

			sub, present := connectPahoV3(t, b.Addr, "v3sub", pv, false, handler)
			if present {
				t.Fatal("session present on first connection")
			}
			waitToken(t, sub.Subscribe("v3/#", 2, nil))
			if m := next(); m.Topic() != "v3/retained" || !m.Retained() || string(m.Payload()) != "kept" {
				t.Fatalf("retained: %s %q retained=%v", m.Topic(), m.Payload(), m.Retained())
			}
			for qos := byte(0); qos <= 2; qos++ {
				waitToken(t, pub.Publish("v3/t", qos, false, fmt.Sprint("q", qos)))
				m := next()
				if m.Qos() != qos || string(m.Payload()) != fmt.Sprint("q", qos) || m.Retained() {
					t.Fatalf("QoS %d: got QoS %d %q retained=%v", qos, m.Qos(), m.Payload(), m.Retained())
				}
			}
			// The QoS 2 flow of q2 (PUBREC, PUBREL, PUBCOMP) must finish
			// first: a message still in flight is rightly resent on the next
			// connection, which a fresh paho client would deliver again.
			deadline := time.Now().Add(waitFor)
			for {
				snap, ok := b.Server.Client("v3sub", 0)
				if ok && snap.Inflight == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("QoS 2 flow not finished: %+v", snap)
				}
				time.Sleep(5 * time.Millisecond)
			}
			sub.Disconnect(50)
			b.waitConnected(t, 1)
			waitToken(t, pub.Publish("v3/t", 1, false, "while-away"))
			_, present = connectPahoV3(t, b.Addr, "v3sub", pv, false, handler)
			if !present {
				t.Fatal("persistent session not present")
			}
			if m := next(); string(m.Payload()) != "while-away" {
				t.Fatalf("got %q", m.Payload())
			}
		})
	}
}

// paho.mqtt.golang will: a 3.1.1 client whose connection is taken over
// without DISCONNECT has its will published [MQTT-3.1.2-8].
func TestPahoV3_WillOnTakeover(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "v3will-watch", "v3will/#")
	opts := pahov3.NewClientOptions().AddBroker("tcp://"+b.Addr).SetClientID("v3will").
		SetProtocolVersion(4).SetAutoReconnect(false).SetWill("v3will/gone", "bye", 1, false)
	c := pahov3.NewClient(opts)
	waitToken(t, c.Connect())
	t.Cleanup(func() { c.Disconnect(0) })
	connectRaw(t, b.Addr, mqtttest.V311("v3will")) // takes the client id over
	if p := w.RecvPublish(); p.Topic != "v3will/gone" || string(p.Payload) != "bye" {
		t.Fatalf("will: %q %q", p.Topic, p.Payload)
	}
}
