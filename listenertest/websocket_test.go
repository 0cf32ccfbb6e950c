package listenertest

import (
	"bytes"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestWebSocketPahoMQTT311(t *testing.T) {
	b := startBroker(t, nil)
	c, err := connect311(t, b.serveWS(t, "ws", nil, nil), "ws-311", nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip311(t, c, "ws/311", "over WebSocket")
}

func TestWebSocketPahoV5(t *testing.T) {
	b := startBroker(t, nil)
	conn, err := dialWS(t, b.serveWS(t, "ws", nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := connectV5(t, conn, &paho.Connect{ClientID: "ws-v5", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	c.roundTrip(t, "ws/v5", "over WebSocket")
}

func TestWebSocketSecurePahoBothVersions(t *testing.T) {
	p := newPKI(t)
	b := startBroker(t, nil)
	url := b.serveWS(t, "wss", p.serverConf(tls.NoClientCert), nil)
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("url %s", url)
	}
	c311, err := connect311(t, url, "wss-311", p.clientConf(nil))
	if err != nil {
		t.Fatal(err)
	}
	roundTrip311(t, c311, "wss/311", "over wss")
	conn, err := dialWS(t, url, p.clientConf(nil))
	if err != nil {
		t.Fatal(err)
	}
	c5, err := connectV5(t, conn, &paho.Connect{ClientID: "wss-v5", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	c5.roundTrip(t, "wss/v5", "over wss")
}

// TestWebSocketAndTCPClientsShareTopics proves that the listeners feed one
// broker: a WebSocket subscriber receives a large message from a TCP
// publisher (it arrives split over several WebSocket messages) and a TCP
// subscriber receives one from the WebSocket client.
func TestWebSocketAndTCPClientsShareTopics(t *testing.T) {
	b := startBroker(t, nil)
	conn, err := dialWS(t, b.serveWS(t, "ws", nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	web, err := connectV5(t, conn, &paho.Connect{ClientID: "web", CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := connect311(t, "tcp://"+b.serveTCP(t, "tcp", nil), "tcp", nil)
	if err != nil {
		t.Fatal(err)
	}

	web.roundTrip(t, "to/web", "warm-up")                   // subscribed once SUBACK is back
	big := bytes.Repeat([]byte("0123456789abcdef"), 32<<10) // 512 KiB
	if tok := tcp.Publish("to/web", 1, false, big); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case m := <-web.msgs:
		if !bytes.Equal(m.Payload, big) {
			t.Fatalf("received %d bytes, want the %d published", len(m.Payload), len(big))
		}
	case <-timeAfter():
		t.Fatal("WebSocket subscriber did not receive the TCP publish")
	}

	got := make(chan mqtt.Message, 1)
	if tok := tcp.Subscribe("to/tcp", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if _, err := web.Publish(ctxT(t), &paho.Publish{Topic: "to/tcp", QoS: 1, Payload: []byte("from the browser side")}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "from the browser side" {
			t.Fatalf("received %q", m.Payload())
		}
	case <-timeAfter():
		t.Fatal("TCP subscriber did not receive the WebSocket publish")
	}
}

func TestWebSocketRefusesClientsWithoutMQTTSubprotocol(t *testing.T) {
	b := startBroker(t, nil)
	url := b.serveWS(t, "ws", nil, nil)
	for _, tc := range []struct {
		offer []string
		want  int
	}{
		{nil, http.StatusBadRequest},
		{[]string{"mqttv3.1"}, http.StatusBadRequest},
		{[]string{"graphql-ws"}, http.StatusBadRequest},
		{[]string{"graphql-ws", "mqtt"}, http.StatusSwitchingProtocols},
	} {
		if got := httpStatus(t, url, tc.offer); got != tc.want {
			t.Errorf("offering %q: HTTP %d, want %d", tc.offer, got, tc.want)
		}
	}
	if got := httpStatus(t, strings.TrimSuffix(url, "/mqtt")+"/elsewhere", []string{"mqtt"}); got != http.StatusNotFound {
		t.Errorf("another path: HTTP %d, want 404", got)
	}
}
