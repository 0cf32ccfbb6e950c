package listenertest

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/herald-mqtt/herald/transport"
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

// TestWebSocketMQTT31ClientOfferingOnlyMQTTv31Connects proves that an MQTT
// 3.1 client that offers only the subprotocol "mqttv3.1" (as Paho
// JavaScript does at protocol level 3) is upgraded with it and connects.
func TestWebSocketMQTT31ClientOfferingOnlyMQTTv31Connects(t *testing.T) {
	b := startBroker(t, nil)
	d := websocket.Dialer{Subprotocols: []string{"mqttv3.1"}, HandshakeTimeout: waitFor}
	ws, _, err := d.Dial(b.serveWS(t, "ws", nil, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if p := ws.Subprotocol(); p != "mqttv3.1" {
		t.Fatalf("server chose subprotocol %q, want mqttv3.1", p)
	}
	// CONNECT "MQIsdp" level 3, clean session, keepalive 60, client id "ws-31".
	connect31 := []byte{0x10, 0x13, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 60, 0, 5, 'w', 's', '-', '3', '1'}
	connackAccepted := []byte{0x20, 0x02, 0x00, 0x00}
	pingreq, pingresp := []byte{0xc0, 0x00}, []byte{0xd0, 0x00}
	conn := &wsStream{Conn: ws}
	conn.SetDeadline(time.Now().Add(waitFor))
	for _, step := range []struct{ send, want []byte }{{connect31, connackAccepted}, {pingreq, pingresp}} {
		if _, err := conn.Write(step.send); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(step.want))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("after % x: %v", step.send, err)
		}
		if !bytes.Equal(got, step.want) {
			t.Fatalf("after % x: got % x, want % x", step.send, got, step.want)
		}
	}
}

// TestWebSocketUpgradedConnectionOutlivesTheRequestTimeouts proves that an
// MQTT connection over WebSocket is bounded by its keepalive, not by the
// timeouts of the HTTP request that opened it: it stays up, pinging, well
// past them.
func TestWebSocketUpgradedConnectionOutlivesTheRequestTimeouts(t *testing.T) {
	const short = 200 * time.Millisecond
	b := startBroker(t, nil)
	conn, err := dialWS(t, b.serveWSWith(t, "ws", nil, nil, transport.WSOptions{ReadTimeout: short, IdleTimeout: short}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// CONNECT "MQTT" level 4, clean session, keepalive 60, client id "ws".
	connect := []byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 2, 'w', 's'}
	exchange := func(send, want []byte) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(waitFor))
		if _, err := conn.Write(send); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("after % x: %v", send, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after % x: got % x, want % x", send, got, want)
		}
	}
	exchange(connect, []byte{0x20, 0x02, 0x00, 0x00})
	for end := time.Now().Add(5 * short); time.Now().Before(end); time.Sleep(short / 4) {
		exchange([]byte{0xc0, 0x00}, []byte{0xd0, 0x00}) // PINGREQ, PINGRESP
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
		{[]string{"mqttv3.1"}, http.StatusSwitchingProtocols}, // MQTT 3.1 clients
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
