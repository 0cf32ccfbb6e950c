package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// willConnect returns a v5 CONNECT for id with a QoS 1 will on topic,
// carrying will properties, a will delay and a session expiry.
func willConnect(id, topic string, delay, expiry uint32) *packet.Connect {
	c := &packet.Connect{
		ProtocolVersion: packet.Version5, ClientID: id, CleanStart: true,
		WillFlag: true, WillQoS: 1, WillTopic: topic, WillPayload: []byte("gone:" + id),
		WillProps: packet.Properties{
			WillDelay:       delay,
			ContentType:     "text/plain",
			PayloadFormat:   1,
			ResponseTopic:   "will/reply",
			CorrelationData: []byte{1, 2, 3},
			User:            []packet.UserProperty{{Key: "k", Value: "v"}},
		},
	}
	if expiry > 0 {
		c.Props.SessionExpiry, c.Props.HasSessionExpiry = expiry, true
	}
	return c
}

// watcher connects a v5 client subscribed to filter at QoS 1.
func watcher(t *testing.T, addr, id, filter string) *mqtttest.Client {
	t.Helper()
	w, _ := connectRaw(t, addr, mqtttest.V5(id))
	w.SubscribeOne(filter, 1)
	return w
}

// [MQTT-3.1.2-8] [MQTT-3.1.3-10] the will is published when the network
// connection closes without DISCONNECT, with its will properties
// (v5 §3.1.3.2.4) passed to subscribers.
func TestWillPublishedOnAbnormalClose_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-abn", "will/abn", 0, 0))
	c.Conn.Close()
	p := w.RecvPublish()
	if p.Topic != "will/abn" || string(p.Payload) != "gone:w-abn" || p.QoS != 1 {
		t.Fatalf("will: %+v", p)
	}
	pp := p.Props
	if pp.ContentType != "text/plain" || pp.PayloadFormat != 1 || pp.ResponseTopic != "will/reply" ||
		string(pp.CorrelationData) != "\x01\x02\x03" || len(pp.User) != 1 || pp.User[0] != (packet.UserProperty{Key: "k", Value: "v"}) {
		t.Fatalf("will properties not passed through: %+v", pp)
	}
}

// [MQTT-3.1.2-8] a protocol error closes the connection abnormally: the
// will is published.
func TestWillPublishedOnProtocolError_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-perr", "will/perr", 0, 0))
	c.Send(&packet.Connect{ProtocolVersion: packet.Version5, ClientID: "again"})
	c.ExpectDisconnect(packet.ProtocolError, waitFor)
	if p := w.RecvPublish(); p.Topic != "will/perr" {
		t.Fatalf("got %q", p.Topic)
	}
}

// [MQTT-3.1.2-10] [MQTT-3.14.4-3] DISCONNECT 0x00 discards the will.
func TestNoWillOnNormalDisconnect_MQTT_3_14_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	for _, v := range []byte{packet.Version311, packet.Version5} {
		cp := willConnect("w-norm"+string('0'+v), "will/norm", 0, 0)
		cp.ProtocolVersion = v
		if v != packet.Version5 {
			cp.WillProps = packet.Properties{}
		}
		c, _ := connectRaw(t, b.Addr, cp)
		c.Disconnect()
	}
	w.ExpectNothing()
}

// (v5 §3.14.2.2.2) DISCONNECT with 0x04 (Disconnect with Will Message)
// closes normally but publishes the will.
func TestWillOnDisconnectWithWill0x04(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-04", "will/04", 0, 0))
	c.Send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
	if p := w.RecvPublish(); p.Topic != "will/04" {
		t.Fatalf("got %q", p.Topic)
	}
}

// [MQTT-3.1.2-8] [MQTT-3.1.2-10] [MQTT-3.14.4-3] only DISCONNECT 0x00
// deletes the will: a client that disconnects with an error reason code
// still has its will published.
func TestWillOnDisconnectWithErrorCode_MQTT_3_14_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	for _, code := range []packet.ReasonCode{packet.UnspecifiedError, packet.ImplementationSpecific} {
		id := fmt.Sprintf("w-err%02x", byte(code))
		c, _ := connectRaw(t, b.Addr, willConnect(id, "will/"+id, 0, 0))
		c.Send(&packet.Disconnect{ReasonCode: code})
		if p := w.RecvPublish(); p.Topic != "will/"+id {
			t.Fatalf("DISCONNECT 0x%02X: got %q, want the will on will/%s", byte(code), p.Topic, id)
		}
	}
}

// [MQTT-3.1.3-9] the will waits for the Will Delay Interval.
func TestWillDelay_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-delay", "will/delay", 1, 60))
	start := time.Now()
	c.Conn.Close()
	p := w.RecvPublish()
	if p.Topic != "will/delay" {
		t.Fatalf("got %q", p.Topic)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("will published after %v, before its 1s delay", el)
	}
}

// [MQTT-3.1.3-9] a reconnect to the session before the will delay has
// passed cancels the will.
func TestWillCancelledByReconnect_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-cancel", "will/cancel", 1, 60))
	c.Conn.Close()
	time.Sleep(200 * time.Millisecond)
	re := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w-cancel"}
	re.Props.SessionExpiry, re.Props.HasSessionExpiry = 60, true
	connectRaw(t, b.Addr, re)
	time.Sleep(1200 * time.Millisecond)
	w.ExpectNothing()
}

// [MQTT-3.1.3-9] a will delay longer than the session expiry: the will is
// published when the session ends.
func TestWillAtSessionEndWhenDelayLonger_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	c, _ := connectRaw(t, b.Addr, willConnect("w-long", "will/long", 30, 1))
	start := time.Now()
	c.Conn.Close()
	if p := w.RecvPublish(); p.Topic != "will/long" {
		t.Fatalf("got %q", p.Topic)
	}
	if el := time.Since(start); el < 900*time.Millisecond || el > 2500*time.Millisecond {
		t.Fatalf("will published after %v, want at the 1s session end", el)
	}
}

// [MQTT-3.1.3-9] [MQTT-3.1.4-3] a takeover with Clean Start ends the old
// session, so its delayed will is published at once.
func TestWillOnTakeoverWithCleanStart_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	old, _ := connectRaw(t, b.Addr, willConnect("w-take", "will/take", 30, 60))
	connectRaw(t, b.Addr, mqtttest.V5("w-take")) // Clean Start: the old session ends
	old.ExpectDisconnect(packet.SessionTakenOver, waitFor)
	if p := w.RecvPublish(); p.Topic != "will/take" {
		t.Fatalf("got %q", p.Topic)
	}
}

// [MQTT-3.1.3-9] [MQTT-3.1.4-3] a session with Session Expiry 0 ends with
// its connection, so a takeover ends it even without Clean Start, and a
// delayed will of the old connection is published at once.
func TestWillOnTakeoverOfSessionExpiryZero_MQTT_3_1_3_9(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	old, _ := connectRaw(t, b.Addr, willConnect("w-take00", "will/take00", 30, 0))
	connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w-take00"})
	old.ExpectDisconnect(packet.SessionTakenOver, waitFor)
	if p := w.RecvPublish(); p.Topic != "will/take00" {
		t.Fatalf("got %q", p.Topic)
	}
}

// [MQTT-3.1.2-8] [MQTT-3.1.4-3] a takeover closes the old connection
// without DISCONNECT: a will with no delay is published.
func TestWillOnTakeoverNoDelay_MQTT_3_1_4_3(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	old, _ := connectRaw(t, b.Addr, willConnect("w-take0", "will/take0", 0, 60))
	re := &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "w-take0"}
	re.Props.SessionExpiry, re.Props.HasSessionExpiry = 60, true
	connectRaw(t, b.Addr, re)
	old.ExpectDisconnect(packet.SessionTakenOver, waitFor)
	if p := w.RecvPublish(); p.Topic != "will/take0" {
		t.Fatalf("got %q", p.Topic)
	}
}

// [MQTT-3.1.2-17] a will with Will Retain is stored as a retained message.
func TestWillRetain_MQTT_3_1_2_17(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	cp := willConnect("w-ret", "will/ret", 0, 0)
	cp.WillRetain = true
	c, _ := connectRaw(t, b.Addr, cp)
	c.Conn.Close()
	b.hooks.waitTopic(t, "will/ret", waitFor)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	if p := w.RecvPublish(); p.Topic != "will/ret" || !p.Retain {
		t.Fatalf("retained will: %+v", p)
	}
}

// [MQTT-3.1.2-8] keep alive expiry is an abnormal close: the will goes out.
func TestWillOnKeepAliveTimeout_MQTT_3_1_2_8(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	cp := willConnect("w-ka", "will/ka", 0, 0)
	cp.KeepAlive = 1
	c, _ := connectRaw(t, b.Addr, cp)
	c.ExpectDisconnect(packet.KeepAliveTimeout, 4*time.Second)
	if p := w.RecvPublish(); p.Topic != "will/ka" {
		t.Fatalf("got %q", p.Topic)
	}
}

// Graceful shutdown: every v5 connection gets DISCONNECT 0x8B, 3.1.1
// connections are closed, and wills are published [MQTT-3.1.2-8] (the
// broker closes the connections; the clients did not DISCONNECT).
func TestShutdownDisconnects0x8BAndPublishesWill(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	c5, _ := connectRaw(t, b.Addr, willConnect("sd-5", "will/sd5", 0, 0))
	cp := willConnect("sd-3", "will/sd3", 0, 0)
	cp.ProtocolVersion, cp.WillProps = packet.Version311, packet.Properties{}
	c3, _ := connectRaw(t, b.Addr, cp)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		done <- b.Server.Shutdown(ctx)
	}()
	c5.ExpectDisconnect(packet.ServerShuttingDown, waitFor)
	if got := c3.ExpectClosed(waitFor); len(got) != 0 {
		t.Fatalf("3.1.1 client got %v", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	b.hooks.waitTopic(t, "will/sd5", time.Second)
	b.hooks.waitTopic(t, "will/sd3", time.Second)
}

// (v5 §3.1.3.2.4) the will's Message Expiry Interval is its lifetime from
// when it is published, not from CONNECT: a client connected longer than
// that interval still has its will delivered, with the interval forwarded.
func TestWillMessageExpiryCountsFromPublication(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	cp := willConnect("w-exp", "will/exp", 0, 0)
	cp.WillProps.MessageExpiry, cp.WillProps.HasMessageExpiry = 1, true
	c, _ := connectRaw(t, b.Addr, cp)
	time.Sleep(1500 * time.Millisecond) // connected longer than the will's expiry
	c.Conn.Close()
	p := w.RecvPublish()
	if p.Topic != "will/exp" || !p.Props.HasMessageExpiry || p.Props.MessageExpiry != 1 {
		t.Fatalf("will: topic %q expiry %v/%d, want 1", p.Topic, p.Props.HasMessageExpiry, p.Props.MessageExpiry)
	}
}

// (v5 §3.1.3.2.4) a delayed will's Message Expiry Interval runs from when
// it is published, also when that is before its delay ends: a Clean Start
// takeover of the offline session publishes it at once [MQTT-3.1.3-9],
// forwarded with its whole interval [MQTT-3.3.2-6], not that plus the
// delay it did not wait.
func TestDelayedWillPublishedEarlyKeepsItsMessageExpiry(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	w := watcher(t, b.Addr, "w-watch", "will/#")
	cp := willConnect("w-early", "will/early", 30, 60)
	cp.WillProps.MessageExpiry, cp.WillProps.HasMessageExpiry = 10, true
	c, _ := connectRaw(t, b.Addr, cp)
	c.Conn.Close()
	b.waitConnected(t, 1) // the watcher only: the session is offline, its will pending
	// Clean Start: the session ends, 30 s before the will delay would.
	connectRaw(t, b.Addr, mqtttest.V5("w-early"))
	p := w.RecvPublish()
	if p.Topic != "will/early" || !p.Props.HasMessageExpiry || p.Props.MessageExpiry != 10 {
		t.Fatalf("will: topic %q expiry %v/%d, want 10", p.Topic, p.Props.HasMessageExpiry, p.Props.MessageExpiry)
	}
}
