package crashtest

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/herald-mqtt/herald/packet"
)

// sessionExpiry is the MQTT 5 session expiry of the test subscribers.
const sessionExpiry = 3600

// received counts the messages a subscriber got, by topic and sequence
// number (the payload), and remembers any that came at the wrong QoS.
type received struct {
	mu     sync.Mutex
	counts map[string]map[int]int
	wrong  []string
}

func newReceived() *received { return &received{counts: map[string]map[int]int{}} }

func (r *received) add(topic string, payload []byte, qos byte) {
	seq, err := strconv.Atoi(string(payload))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.wrong = append(r.wrong, fmt.Sprintf("%s: payload %q", topic, payload))
		return
	}
	if want := wantQoS(topic); want != 0 && qos != want {
		r.wrong = append(r.wrong, fmt.Sprintf("%s seq %d at QoS %d", topic, seq, qos))
	}
	if r.counts[topic] == nil {
		r.counts[topic] = map[int]int{}
	}
	r.counts[topic][seq]++
}

func wantQoS(topic string) byte {
	switch topic {
	case topicQoS1:
		return 1
	case topicQoS2:
		return 2
	}
	return 0
}

// reset forgets what was received (before the crash, for instance).
func (r *received) reset() {
	r.mu.Lock()
	r.counts = map[string]map[int]int{}
	r.mu.Unlock()
}

// has reports whether every seq of want[topic] arrived at least once.
func (r *received) has(want map[string][]int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for topic, seqs := range want {
		for _, s := range seqs {
			if r.counts[topic][s] == 0 {
				return false
			}
		}
	}
	return true
}

// waitFor waits until every seq of want arrived, or the timeout.
func (r *received) waitFor(want map[string][]int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !r.has(want) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// check fails t if an acknowledged message is missing, if a QoS 2 message
// arrived more than once, or if a message came at the wrong QoS.
func (r *received) check(t *testing.T, who string, acked map[string][]int) {
	t.Helper()
	if dups := r.checkDelivered(t, who, acked); len(dups) > 0 {
		t.Errorf("%s: %d QoS 2 messages delivered more than once: %v", who, len(dups), head(dups))
	}
}

// checkDelivered fails t if an acknowledged message is missing or a
// message came at the wrong QoS, and returns the QoS 2 messages that
// arrived more than once.
func (r *received) checkDelivered(t *testing.T, who string, acked map[string][]int) []int {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.wrong {
		t.Errorf("%s: %s", who, w)
	}
	for topic, seqs := range acked {
		var missing []int
		for _, s := range seqs {
			if r.counts[topic][s] == 0 {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			t.Errorf("%s: %d of %d acknowledged messages on %s never delivered: %v", who, len(missing), len(seqs), topic, head(missing))
		}
	}
	var dups []int
	for s, n := range r.counts[topicQoS2] {
		if n > 1 {
			dups = append(dups, s)
		}
	}
	sort.Ints(dups)
	return dups
}

func head(s []int) []int {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

// paho5 is a paho.golang (MQTT 5) subscriber whose messages go to rec.
type paho5 struct {
	*paho.Client
	conn    net.Conn
	connack *paho.Connack
}

func connectPaho5(t *testing.T, addr, id string, cleanStart bool, rec *received) *paho5 {
	t.Helper()
	return connectPaho5Session(t, addr, id, cleanStart, rec, nil)
}

// connectPaho5Session is connectPaho5 with the client's own session state
// (nil: a new one), which a reconnecting client passes on so that it
// recognises a resent QoS 2 PUBLISH.
func connectPaho5Session(t *testing.T, addr, id string, cleanStart bool, rec *received, sess *state.State) *paho5 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	var sm session.SessionManager
	if sess != nil {
		sm = sess
	}
	c := paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(conn), // paho writes a packet in several Writes, from more than one goroutine
		Session:  sm,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			rec.add(pr.Packet.Topic, pr.Packet.Payload, pr.Packet.QoS)
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	expiry := uint32(sessionExpiry)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ack, err := c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: cleanStart, KeepAlive: 60,
		Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
	if err != nil {
		conn.Close()
		t.Fatalf("paho.golang connect %s: %v", id, err)
	}
	p := &paho5{Client: c, conn: conn, connack: ack}
	t.Cleanup(func() { conn.Close() })
	return p
}

func (p *paho5) subscribe(t *testing.T, subs ...paho.SubscribeOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := p.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatalf("paho.golang subscribe: %v", err)
	}
}

// leave disconnects normally, keeping the session.
func (p *paho5) leave() {
	p.Disconnect(&paho.Disconnect{ReasonCode: 0})
	p.conn.Close()
}

// connectPaho311 connects a paho.mqtt.golang (MQTT 3.1.1) client whose
// messages, subscribed or left over from its session, go to rec.
func connectPaho311(t *testing.T, addr, id string, cleanSession bool, rec *received) (mqtt.Client, bool) {
	t.Helper()
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + addr).
		SetClientID(id).
		SetProtocolVersion(4).
		SetCleanSession(cleanSession).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(waitFor).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			rec.add(m.Topic(), m.Payload(), m.Qos())
		})
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho.mqtt.golang connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c, tok.(*mqtt.ConnectToken).SessionPresent()
}

func subscribe311(t *testing.T, c mqtt.Client, filters map[string]byte) {
	t.Helper()
	tok := c.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("paho.mqtt.golang subscribe: %v", tok.Error())
	}
}

// streamPublisher publishes numbered messages, odd ones at QoS 1 on
// topicQoS1 and even ones at QoS 2 on topicQoS2, keeping window of them in
// flight, until its connection fails. It records which the broker
// acknowledged: PUBACK for QoS 1, PUBREC for QoS 2 (the broker's
// acknowledgement of receipt, after which it owns the message).
type streamPublisher struct {
	r      *rawClient
	window chan struct{}
	wmu    sync.Mutex // serialises writes from the writer and the reader

	mu      sync.Mutex
	bySeq   map[uint16]int // packet id → seq, while in flight
	acked   map[string][]int
	sent    int
	nAcked  int
	reached chan struct{} // closed when nAcked reaches killAt
	killAt  int
	done    chan struct{}
}

func newStreamPublisher(t *testing.T, addr string, window, killAt int) *streamPublisher {
	r := dialRaw(t, addr, packet.Version5)
	r.connect("stream-publisher", true, 0)
	return &streamPublisher{r: r, window: make(chan struct{}, window), bySeq: map[uint16]int{},
		acked: map[string][]int{}, reached: make(chan struct{}), killAt: killAt, done: make(chan struct{})}
}

func (p *streamPublisher) write(pk packet.Packet) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	return p.r.TrySend(pk)
}

// run publishes until the connection fails; it returns when both the
// writer and the reader have stopped.
func (p *streamPublisher) run() {
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.read()
	}()
	for seq := 1; ; seq++ {
		select {
		case p.window <- struct{}{}:
		case <-readerDone:
			return
		}
		pid := uint16(seq%60000) + 1
		pub := &packet.Publish{QoS: 1, Topic: topicQoS1, PacketID: pid, Payload: []byte(strconv.Itoa(seq))}
		if seq%2 == 0 {
			pub.QoS, pub.Topic = 2, topicQoS2
		}
		p.mu.Lock()
		p.bySeq[pid] = seq
		p.sent++
		p.mu.Unlock()
		if err := p.write(pub); err != nil {
			p.r.Conn.Close()
			<-readerDone
			return
		}
	}
}

func (p *streamPublisher) read() {
	for {
		pk, err := p.r.Recv(time.Minute)
		if err != nil {
			p.r.Conn.Close()
			return
		}
		a, ok := pk.(*packet.Ack)
		if !ok {
			continue
		}
		p.mu.Lock()
		seq, known := p.bySeq[a.PacketID]
		p.mu.Unlock()
		if !known {
			continue
		}
		switch a.Kind {
		case packet.PUBACK:
			p.ack(topicQoS1, seq, a.PacketID, true)
		case packet.PUBREC:
			p.ack(topicQoS2, seq, a.PacketID, false)
			if p.write(&packet.Ack{Kind: packet.PUBREL, PacketID: a.PacketID}) != nil {
				p.r.Conn.Close()
				return
			}
		case packet.PUBCOMP:
			p.mu.Lock()
			delete(p.bySeq, a.PacketID)
			p.mu.Unlock()
			<-p.window
		}
	}
}

func (p *streamPublisher) ack(topic string, seq int, pid uint16, release bool) {
	p.mu.Lock()
	p.acked[topic] = append(p.acked[topic], seq)
	p.nAcked++
	if p.nAcked == p.killAt {
		close(p.reached)
	}
	if release {
		delete(p.bySeq, pid)
	}
	p.mu.Unlock()
	if release {
		<-p.window
	}
}
