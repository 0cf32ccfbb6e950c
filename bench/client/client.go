// Package client is the lightweight MQTT client of herald bench: just
// enough of MQTT 3.1.1 and 5 to connect, subscribe, publish at QoS 0, 1
// and 2 and receive, built on package packet and made cheap enough to hold
// tens of thousands per process.
//
// A Client's read side runs either on a goroutine of its own (Serve, run
// by the caller) or, for plain TCP on Linux, on one of a Poller's few event
// loops (ServeOn); its read buffer starts at 256 bytes and grows only
// while the connection is busy. Writes are made directly by the caller
// under a per-client mutex; there is no writer goroutine and no timer per
// client (keepalive pings are sent by whoever owns many clients, via
// Ping).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/packet"
)

// Config says how to connect one client.
type Config struct {
	Target     Target
	LocalIP    net.IP      // source address; nil lets the kernel choose
	TLS        *tls.Config // for tls and wss targets
	Version    byte        // packet.Version311 or packet.Version5
	ClientID   string
	Username   string
	Password   string
	KeepAlive  uint16 // seconds; 0 disables
	CleanStart bool
	Timeout    time.Duration // bound on dial, handshakes and CONNACK
	Inflight   int           // outgoing QoS 1/2 window; 0 means 32
}

// Handler receives what a client's read loop sees. Its methods are called
// from the goroutine running Serve, or from the Poller loop serving the
// client, one at a time; they must not keep p or its payload after
// returning, and must not block (on a Poller they hold up every client of
// the loop).
type Handler interface {
	// Message is called for each PUBLISH received, once its
	// acknowledgement (PUBACK or PUBREC) is queued; queued acknowledgements
	// are written before the read loop next waits for the network. p is
	// reused for the next PUBLISH: copy what must outlive the call.
	Message(p *packet.Publish, arrived time.Time)
	// Acked is called when a flow this client started completes: SUBACK
	// for a Subscribe, PUBACK for a QoS 1 and PUBCOMP for a QoS 2 Publish,
	// with the round-trip time and the acknowledging packet.
	Acked(kind packet.Type, rtt time.Duration, p packet.Packet)
}

// ConnackError is a CONNACK with a refusal code.
type ConnackError struct {
	Code packet.ReasonCode
}

func (e *ConnackError) Error() string {
	return fmt.Sprintf("connection refused: CONNACK code 0x%02X", byte(e.Code))
}

var errServerDisconnect = errors.New("server sent DISCONNECT")

// maxPacket bounds what the bench accepts from a broker.
const maxPacket = 1 << 20

var encodePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Client is one MQTT connection.
type Client struct {
	conn      net.Conn
	version   byte
	keepAlive time.Duration
	inflight  int

	wmu sync.Mutex // serialises writes to conn

	mu     sync.Mutex // guards nextID, sent, window
	nextID uint16
	sent   map[uint16]int64 // packet id in flight -> send time (unix nanos)
	window chan struct{}    // one token per outgoing QoS 1/2 publish in flight

	lastWrite atomic.Int64 // unix nanos
	closing   atomic.Bool

	rbuf       []byte
	start, end int    // unread bytes are rbuf[start:end]
	acks       []byte // acknowledgements not yet written (read loop only)

	pollState // when served by a Poller
}

// Connect dials cfg.Target, sends CONNECT and waits for CONNACK, all
// within cfg.Timeout and ctx. A refused CONNACK is a *ConnackError.
func Connect(ctx context.Context, cfg *Config) (*Client, *packet.Connack, error) {
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	conn, err := dial(ctx, cfg.Target, cfg.LocalIP, cfg.TLS)
	if err != nil {
		return nil, nil, err
	}
	c := &Client{
		conn:      conn,
		version:   cfg.Version,
		keepAlive: time.Duration(cfg.KeepAlive) * time.Second,
		inflight:  cfg.Inflight,
		rbuf:      make([]byte, 256),
	}
	if c.inflight <= 0 {
		c.inflight = 32
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	connect := &packet.Connect{
		ProtocolName:    "MQTT",
		ProtocolVersion: cfg.Version,
		CleanStart:      cfg.CleanStart,
		KeepAlive:       cfg.KeepAlive,
		ClientID:        cfg.ClientID,
		UsernameFlag:    cfg.Username != "",
		Username:        cfg.Username,
		PasswordFlag:    cfg.Password != "",
		Password:        []byte(cfg.Password),
	}
	if err := c.write(connect); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("write CONNECT: %w", err)
	}
	frame, err := c.next()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("read CONNACK: %w", err)
	}
	p, err := packet.Decode(c.version, frame)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("protocol: CONNACK: %w", err)
	}
	ack, ok := p.(*packet.Connack)
	if !ok {
		conn.Close()
		return nil, nil, fmt.Errorf("protocol: got %v, want CONNACK", p.Type())
	}
	if ack.ReasonCode != packet.Success {
		conn.Close()
		return nil, ack, &ConnackError{Code: ack.ReasonCode}
	}
	if ack.Props.HasServerKeepAlive {
		c.keepAlive = time.Duration(ack.Props.ServerKeepAlive) * time.Second
	}
	if rm := int(ack.Props.ReceiveMaximum); rm > 0 && rm < c.inflight {
		c.inflight = rm
	}
	conn.SetDeadline(time.Time{})
	return c, ack, nil
}

// Serve runs the read loop until the connection ends, answering the
// broker's QoS flows and passing messages and acknowledgements to h. It
// returns nil after Close or Disconnect, the cause otherwise.
func (c *Client) Serve(h Handler) error {
	err := c.serve(h)
	c.conn.Close()
	if c.closing.Load() {
		return nil
	}
	return err
}

func (c *Client) serve(h Handler) error {
	// Every PUBLISH is decoded into this one struct (Handler.Message must
	// not keep it): no allocation per message for the struct.
	pub := new(packet.Publish)
	for {
		if !c.buffered() {
			// About to block on the network: send the acknowledgements
			// of everything read so far in one write.
			if err := c.flushAcks(); err != nil {
				return err
			}
		}
		frame, err := c.next()
		if err != nil {
			return err
		}
		if err := c.handle(h, frame, pub); err != nil {
			return err
		}
	}
}

// handle acts on one frame: answers the broker's QoS flows (queueing the
// acknowledgements for flushAcks) and tells h. pub is the struct every
// PUBLISH is decoded into.
func (c *Client) handle(h Handler, frame []byte, pub *packet.Publish) error {
	var p packet.Packet = pub
	var err error
	if packet.Type(frame[0]>>4) == packet.PUBLISH {
		err = packet.DecodePublish(c.version, frame, pub)
	} else {
		p, err = packet.Decode(c.version, frame)
	}
	if err != nil {
		return fmt.Errorf("protocol: %w", err)
	}
	switch p := p.(type) {
	case *packet.Publish:
		switch p.QoS {
		case 1:
			err = c.queueAck(packet.PUBACK, p.PacketID)
		case 2:
			err = c.queueAck(packet.PUBREC, p.PacketID)
		}
		h.Message(p, time.Now())
	case *packet.Ack:
		err = c.ack(h, p)
	case *packet.Suback:
		if sent, ok := c.complete(p.PacketID, false); ok {
			h.Acked(packet.SUBACK, time.Duration(time.Now().UnixNano()-sent), p)
		}
	case *packet.Disconnect:
		return fmt.Errorf("%w: reason 0x%02X", errServerDisconnect, byte(p.ReasonCode))
	}
	return err
}

func (c *Client) ack(h Handler, a *packet.Ack) error {
	switch a.Kind {
	case packet.PUBACK, packet.PUBCOMP:
		if sent, ok := c.complete(a.PacketID, true); ok {
			h.Acked(a.Kind, time.Duration(time.Now().UnixNano()-sent), a)
		}
	case packet.PUBREC:
		if a.ReasonCode >= 0x80 { // v5: refused, the flow ends here
			if sent, ok := c.complete(a.PacketID, true); ok {
				h.Acked(a.Kind, time.Duration(time.Now().UnixNano()-sent), a)
			}
			return nil
		}
		return c.queueAck(packet.PUBREL, a.PacketID)
	case packet.PUBREL:
		return c.queueAck(packet.PUBCOMP, a.PacketID)
	}
	return nil
}

// buffered reports whether a complete frame is already read.
func (c *Client) buffered() bool {
	n, err := packet.SplitFrame(c.rbuf[c.start:c.end], maxPacket)
	return n > 0 || err != nil
}

// queueAck appends an acknowledgement the read loop owes; flushAcks sends
// them. Under load this turns one write per received message into one
// per read.
func (c *Client) queueAck(kind packet.Type, id uint16) error {
	var err error
	c.acks, err = packet.Encode(c.acks, c.version, &packet.Ack{Kind: kind, PacketID: id})
	return err
}

func (c *Client) flushAcks() error {
	if len(c.acks) == 0 {
		return nil
	}
	c.wmu.Lock()
	_, err := c.conn.Write(c.acks)
	c.wmu.Unlock()
	c.lastWrite.Store(time.Now().UnixNano())
	c.acks = c.acks[:0]
	return err
}

// next returns the next complete frame, reading as needed. The frame is
// valid until the following call.
func (c *Client) next() ([]byte, error) {
	for {
		if c.start < c.end {
			n, err := packet.SplitFrame(c.rbuf[c.start:c.end], maxPacket)
			if err != nil {
				return nil, fmt.Errorf("protocol: %w", err)
			}
			if n > 0 {
				f := c.rbuf[c.start : c.start+n]
				c.start += n
				return f, nil
			}
		}
		if c.start > 0 {
			c.end = copy(c.rbuf, c.rbuf[c.start:c.end])
			c.start = 0
		}
		if c.end == len(c.rbuf) {
			// A frame larger than the buffer: grow to fit it.
			c.grow()
		}
		n, err := c.conn.Read(c.rbuf[c.end:])
		c.end += n
		if err != nil {
			return nil, err
		}
		if c.end == len(c.rbuf) && len(c.rbuf) < 64<<10 {
			// A full read means the connection is busy: read more per
			// system call from now on.
			c.grow()
		}
	}
}

func (c *Client) grow() {
	n := 2 * len(c.rbuf)
	if n > maxPacket+8 {
		n = maxPacket + 8
	}
	b := make([]byte, n)
	c.end = copy(b, c.rbuf[c.start:c.end])
	c.start = 0
	c.rbuf = b
}

// track allocates a packet identifier and remembers when it was sent.
func (c *Client) track(now int64) uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = make(map[uint16]int64)
	}
	for {
		c.nextID++
		if c.nextID == 0 {
			c.nextID = 1
		}
		if _, busy := c.sent[c.nextID]; !busy {
			c.sent[c.nextID] = now
			return c.nextID
		}
	}
}

// complete ends the flow of id, returning its send time; window says
// whether it held an inflight token.
func (c *Client) complete(id uint16, window bool) (int64, bool) {
	c.mu.Lock()
	sent, ok := c.sent[id]
	if ok {
		delete(c.sent, id)
	}
	w := c.window
	c.mu.Unlock()
	if ok && window && w != nil {
		select {
		case <-w:
		default: // a broker acknowledging a SUBSCRIBE's id with a PUBACK
		}
	}
	return sent, ok
}

// Subscribe sends SUBSCRIBE; the SUBACK arrives through Handler.Acked.
func (c *Client) Subscribe(subs []packet.Subscription) error {
	id := c.track(time.Now().UnixNano())
	return c.write(&packet.Subscribe{PacketID: id, Subscriptions: subs})
}

// Publish sends one PUBLISH. For QoS 1 and 2 it first waits for room in
// the inflight window (or for ctx to end); the acknowledgement arrives
// through Handler.Acked.
func (c *Client) Publish(ctx context.Context, topic string, qos byte, payload []byte) error {
	p := packet.Publish{QoS: qos, Topic: topic, Payload: payload}
	if qos > 0 {
		select {
		case c.windowChan() <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.PacketID = c.track(time.Now().UnixNano())
	}
	return c.write(&p)
}

// windowChan is the inflight window: one token per outgoing QoS 1/2
// publish not yet acknowledged.
func (c *Client) windowChan() chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.window == nil {
		c.window = make(chan struct{}, c.inflight)
	}
	return c.window
}

// Batch collects PUBLISH packets for one write, so that a publisher with
// several messages due at once sends them in one system call, as a client
// library under load does. One per publisher; not safe for concurrent use.
type Batch struct {
	c   *Client
	buf []byte
	n   int
}

// NewBatch returns an empty batch for c.
func (c *Client) NewBatch() *Batch { return &Batch{c: c} }

// ErrWindowFull is Batch.Add's answer when the inflight window is full
// and the batch holds packets: write them (their acknowledgements make
// room), then add again.
var ErrWindowFull = errors.New("inflight window full")

// Add encodes one PUBLISH into the batch. For QoS 1 and 2 it first takes
// room in the inflight window. When there is none, a batch that holds
// packets returns ErrWindowFull at once; an empty one waits for room, or
// fails when ctx ends. Nothing is written but by Flush, so a caller knows
// exactly which messages went out.
func (b *Batch) Add(ctx context.Context, topic string, qos byte, payload []byte) error {
	c := b.c
	p := packet.Publish{QoS: qos, Topic: topic, Payload: payload}
	if qos > 0 {
		w := c.windowChan()
		select {
		case w <- struct{}{}:
		default:
			if b.n > 0 {
				return ErrWindowFull
			}
			select {
			case w <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		p.PacketID = c.track(time.Now().UnixNano())
	}
	buf, err := packet.Encode(b.buf, c.version, &p)
	if err != nil {
		return fmt.Errorf("encode PUBLISH: %w", err)
	}
	b.buf = buf
	b.n++
	return nil
}

// Len is the number of packets waiting in the batch.
func (b *Batch) Len() int { return b.n }

// Flush writes the batch, if it holds anything, in one write.
func (b *Batch) Flush() error {
	if b.n == 0 {
		return nil
	}
	c := b.c
	c.wmu.Lock()
	_, err := c.conn.Write(b.buf)
	c.wmu.Unlock()
	c.lastWrite.Store(time.Now().UnixNano())
	b.buf, b.n = b.buf[:0], 0
	return err
}

// Ping sends PINGREQ if nothing was written for half the keepalive.
func (c *Client) Ping(now time.Time) error {
	if c.keepAlive == 0 || now.UnixNano()-c.lastWrite.Load() < int64(c.keepAlive/2) {
		return nil
	}
	return c.write(&packet.Pingreq{})
}

// Disconnect sends DISCONNECT (within a short deadline) and closes.
func (c *Client) Disconnect() error {
	c.closing.Store(true)
	c.wmu.Lock() // gorilla/websocket wants deadlines set apart from writes
	c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Unlock()
	err := c.write(&packet.Disconnect{})
	c.conn.Close()
	c.unpoll()
	return err
}

// Close closes the connection without DISCONNECT.
func (c *Client) Close() error {
	c.closing.Store(true)
	err := c.conn.Close()
	c.unpoll()
	return err
}

func (c *Client) write(p packet.Packet) error {
	bp := encodePool.Get().(*[]byte)
	b, err := packet.Encode((*bp)[:0], c.version, p)
	if err != nil {
		encodePool.Put(bp)
		return fmt.Errorf("encode %v: %w", p.Type(), err)
	}
	c.wmu.Lock()
	_, err = c.conn.Write(b)
	c.wmu.Unlock()
	c.lastWrite.Store(time.Now().UnixNano())
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		encodePool.Put(bp)
	}
	return err
}
