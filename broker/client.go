package broker

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/transport"
)

// client is one network connection. Its inbound side (Data) runs on the
// transport's goroutine for the connection; its outbound side is reached
// through its session's lock.
type client struct {
	srv  *Server
	conn transport.Conn
	sess *session // set at CONNECT; stable after that
	info ClientInfo

	// Read side: touched only from Data/Closed and an authentication
	// worker, serialized by readMu.
	readMu sync.Mutex
	extra  *clientExtra // nil until needed: most connections never need it

	// lastPacket is when the last packet was received, or the accept until
	// CONNECT arrives (the CONNECT timeout counts from it), in
	// milliseconds of the server's clock (Server.millis).
	lastPacket  atomic.Uint32
	connectedAt uint32 // seconds of the server's clock (Server.seconds)

	// Negotiated at CONNECT, read-only afterwards. Fields are ordered to
	// pack: this struct exists once per connection.
	maxPacketOut  uint32       // client's Maximum Packet Size, 0 = none
	maxPacketIn   uint32       // ours towards the client: its listener's limit
	pendingAcks   atomic.Int32 // acknowledgements waiting in the committer
	keepAlive     uint16       // seconds, as enforced
	receiveMaxOut uint16       // client's Receive Maximum
	aliasMaxOut   uint16       // client's Topic Alias Maximum
	version       byte
	problemInfo   bool // Request Problem Information

	flags atomic.Uint32 // f* bits below
}

// clientExtra is the part of a client that few connections need, kept
// apart (and allocated on first use) so that an idle connection without a
// will does not carry it. Read side only, like the fields above readMu.
type clientExtra struct {
	partial []byte            // bytes of an incomplete frame carried between reads
	aliasIn map[uint16]string // client-to-server topic aliases [MQTT-3.3.2-10]
	pubRate *publishBuckets   // per-client publish limits, nil until needed

	// aliasOut are the server-to-client topic aliases; unlike the rest
	// they are guarded by the session lock. The struct is allocated at
	// CONNECT when the client allows aliases, before any delivery.
	aliasOut outAliases

	will      *Message // nil when none
	willDelay uint32
	// willExpiry is the will's Message Expiry Interval, which runs from
	// when the will is published, not from CONNECT.
	willExpiry uint32 // seconds, when fWillExpires is set

	// pendingUncounted counts the jobs in pendingAcks that are not an
	// unanswered inbound PUBLISH (commitJob.uncounted). Incremented by
	// submit on the read side, which allocates extra; decremented by the
	// committer.
	pendingUncounted atomic.Int32
}

// ext returns c.extra, allocating it. Read side only.
func (c *client) ext() *clientExtra {
	if c.extra == nil {
		c.extra = &clientExtra{}
	}
	return c.extra
}

// will is the connection's will message, nil if it has none.
func (c *client) will() *Message {
	if c.extra == nil {
		return nil
	}
	return c.extra.will
}

func newClient(s *Server, c transport.Conn, listener string) *client {
	cl := &client{srv: s, conn: c, maxPacketIn: s.opts.MaxPacketSize}
	cl.info.Listener = listener
	cl.info.CertCN = peerCertificateCN(c)
	cl.lastPacket.Store(s.millis())
	return cl
}

// Client state bits, in one word: this struct exists once per connection.
const (
	fConnected      uint32 = 1 << iota // CONNACK accepting it was sent
	fGone                              // Closed has run
	fDisconnectSent                    // a DISCONNECT (or refusing CONNACK) was written
	fCleanExit                         // DISCONNECT 0x00 received: no will
	fWillSent                          // the will was published
	fSlow                              // unwritten bytes above MaxPendingBytes: QoS 0 is dropped
	fReadPaused                        // the broker stopped reading it: keepalive is suspended
	fAuthPending                       // CONNECT waiting for the Authenticator
	fWillExpires                       // the will has a Message Expiry Interval (willExpiry)
	fEndedByClient                     // the client sent DISCONNECT
	fEndedByBroker                     // the broker closed it with a reason code
	fAdmitted                          // it holds a place under Limits.MaxConnections
)

func (c *client) is(f uint32) bool { return c.flags.Load()&f != 0 }
func (c *client) set(f uint32)     { c.flags.Or(f) }
func (c *client) unset(f uint32)   { c.flags.And(^f) }

// setOnce sets f and reports whether it was not set before.
func (c *client) setOnce(f uint32) bool { return c.flags.Or(f)&f == 0 }

// inboundPool, connectPool and subscribePool recycle the structs inbound
// PUBLISH, CONNECT and SUBSCRIBE packets are decoded into: a Connect with
// its two property sets is most of a kilobyte, garbage on every
// connection otherwise.
var (
	inboundPool   = sync.Pool{New: func() any { return new(packet.Publish) }}
	connectPool   = sync.Pool{New: func() any { return new(packet.Connect) }}
	subscribePool = sync.Pool{New: func() any { return new(packet.Subscribe) }}
)

// releaseConnect returns p to connectPool, dropping what it points to.
func releaseConnect(p *packet.Connect) {
	*p = packet.Connect{}
	connectPool.Put(p)
}

// errClosed ends a connection after the broker already answered.
var errClosed = errors.New("connection closed by broker")

// Data implements transport.Handler: it cuts p into frames and handles each.
func (c *client) Data(p []byte) error {
	c.srv.stats.BytesIn.Add(int64(len(p)))
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.data(p)
}

// data is Data with the read-side lock held. While a CONNECT is being
// authenticated the bytes after it are kept for later.
func (c *client) data(p []byte) error {
	x := c.extra
	if x != nil && len(x.partial) > 0 {
		x.partial = append(x.partial, p...)
		p = x.partial
	}
	for len(p) > 0 {
		n, err := packet.SplitFrame(p, int(c.maxPacketIn))
		if err != nil {
			return c.protocolFailure(err)
		}
		if n == 0 {
			break
		}
		if err := c.handleFrame(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if c.is(fAuthPending) {
			break // resumed by authenticate
		}
	}
	if len(p) == 0 {
		if x != nil {
			if cap(x.partial) > 4096 {
				x.partial = nil // don't let one large packet pin memory on an idle client
			} else {
				x.partial = x.partial[:0]
			}
		}
		return nil
	}
	// Keep the incomplete frame. p may alias x.partial: copy is memmove-safe.
	x = c.ext()
	if cap(x.partial) < len(p) {
		x.partial = append(make([]byte, 0, len(p)*2), p...)
	} else {
		n := copy(x.partial[:cap(x.partial)], p)
		x.partial = x.partial[:n]
	}
	return nil
}

// handleFrame decodes one complete frame and dispatches it.
func (c *client) handleFrame(frame []byte) error {
	now := time.Now() // one clock reading per frame, shared with handlePublish
	c.lastPacket.Store(c.srv.millisAt(now))
	if !c.is(fConnected) {
		// [MQTT-3.1.0-1] the first packet from the client must be CONNECT.
		if packet.Type(frame[0]>>4) != packet.CONNECT {
			return fmt.Errorf("first packet is %d, not CONNECT: %w", frame[0]>>4, errClosed)
		}
		p := connectPool.Get().(*packet.Connect)
		err := packet.DecodeConnect(frame, p)
		if err != nil {
			err = c.refuseConnect(frame, err)
		} else {
			err = c.handleConnect(p)
		}
		// An authentication worker that took p releases it when it is
		// done; it cannot have finished yet, since it takes readMu, which
		// our caller holds.
		if !c.is(fAuthPending) {
			releaseConnect(p)
		}
		return err
	}
	switch packet.Type(frame[0] >> 4) {
	case packet.CONNECT:
		// [MQTT-3.1.0-2] a second CONNECT is a Protocol Error whatever it
		// holds. It is not decoded: what is wrong inside it (a protocol
		// level we do not speak, a wildcard in its will topic) would pick
		// another reason code, some of them CONNACK-only.
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "second CONNECT"))
	case packet.SUBSCRIBE:
		p := subscribePool.Get().(*packet.Subscribe)
		err := packet.DecodeSubscribe(c.version, frame, p)
		if err != nil {
			err = c.protocolFailure(err)
		} else {
			err = c.handleSubscribe(p)
		}
		*p = packet.Subscribe{}
		subscribePool.Put(p)
		return err
	case packet.PUBLISH:
		// The hot path: decode into a pooled struct. The message built from
		// it keeps the decoded body (topic, payload, properties), not the
		// struct.
		p := inboundPool.Get().(*packet.Publish)
		defer inboundPool.Put(p)
		if err := packet.DecodePublish(c.version, frame, p); err != nil {
			return c.protocolFailure(err)
		}
		return c.handlePublish(p, len(frame), now)
	}
	pk, err := packet.Decode(c.version, frame)
	if err != nil {
		return c.protocolFailure(err)
	}
	// PUBLISH and SUBSCRIBE were decoded into pooled structs above.
	switch p := pk.(type) {
	case *packet.Ack:
		return c.handleAck(p)
	case *packet.Unsubscribe:
		return c.handleUnsubscribe(p)
	case *packet.Pingreq:
		c.send(&packet.Pingresp{})
		return nil
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Auth:
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "AUTH without an authentication method"))
	default:
		// CONNACK, SUBACK, UNSUBACK, PINGRESP are server-to-client only.
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "unexpected %T from client", pk))
	}
}

// protocolFailure answers a malformed or forbidden packet: v5 clients get a
// DISCONNECT with the reason code [MQTT-4.13.1-1]; 3.1.1 clients are just
// closed [MQTT-4.8.0-1].
func (c *client) protocolFailure(err error) error {
	var pe *packet.Error
	code := packet.ProtocolError
	// [MQTT-3.14.2-1] a DISCONNECT carries a DISCONNECT reason code: any
	// other (0x84 Unsupported Protocol Version is CONNACK's) is answered
	// as the Protocol Error it is.
	if errors.As(err, &pe) && packet.ValidDisconnectCode(pe.Code) {
		code = pe.Code
	}
	c.srv.log.Debug("protocol error", "client", c.info.ClientID, "remote", c.conn.RemoteAddr(), "err", err)
	c.closedBy(code)
	if c.version == packet.Version5 && c.is(fConnected) {
		c.sendDisconnect(code, err.Error())
	}
	return fmt.Errorf("%w: %v", errClosed, err)
}

// send encodes p and queues it on the connection. A packet larger than
// the client's Maximum Packet Size is never sent [MQTT-3.1.2-24]: its
// Reason String and User Properties are left out first, as the spec asks
// of every packet that has them ([MQTT-3.2.2-19] [MQTT-3.2.2-20] for
// CONNACK, [MQTT-3.14.2-3] [MQTT-3.14.2-4] for DISCONNECT); if it is still
// too large it is dropped. Callers that cannot do without their packet
// (CONNACK, SUBACK, UNSUBACK) check its size first.
func (c *client) send(p packet.Packet) {
	bp := sendBuffers.Get().(*[]byte)
	buf, err := packet.Encode((*bp)[:0], c.version, p)
	if err == nil && c.maxPacketOut > 0 && len(buf) > int(c.maxPacketOut) {
		if packet.FitProps(c.version, p, int(c.maxPacketOut)) {
			buf, err = packet.Encode(buf[:0], c.version, p)
		} else {
			c.srv.log.Debug("packet above the client's maximum packet size not sent", "client", c.info.ClientID,
				"size", len(buf), "max", c.maxPacketOut)
			buf = buf[:0]
		}
	}
	if err != nil {
		// The error names the packet type; p itself is not logged so
		// that it does not escape (callers build it on the stack).
		c.srv.log.Error("encode", "err", err)
	} else if len(buf) > 0 {
		c.write(buf) // the transport copies buf
	}
	if cap(buf) <= 4096 {
		*bp = buf[:0]
		sendBuffers.Put(bp)
	}
}

// sendBuffers are the encode buffers of send: control packets are
// encoded, copied into the connection's outbound queue and forgotten.
var sendBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// write queues raw bytes on the connection.
func (c *client) write(b []byte) int {
	n, err := c.conn.Write(b)
	if err == nil {
		c.srv.stats.BytesOut.Add(int64(len(b)))
	}
	return n
}

// sendDisconnect writes a v5 DISCONNECT with code (and the reason string if
// the client asked for problem information) and closes the connection.
func (c *client) sendDisconnect(code packet.ReasonCode, reason string) {
	if c.version != packet.Version5 || !c.setOnce(fDisconnectSent) {
		return
	}
	d := &packet.Disconnect{ReasonCode: code}
	if c.problemInfo && reason != "" {
		d.Props.ReasonString = reasonString(reason) // left out by send if too large [MQTT-3.14.2-3]
	}
	if packet.Size(c.version, d) < 0 {
		d.Props = packet.Properties{} // the code must go out even if the reason cannot
	}
	c.send(d)
}

// maxReasonString caps the Reason Strings the broker sends. Error messages
// may quote what the client sent (a topic, %q-escaped), which could take
// them past the 65535 bytes a UTF-8 string holds: Encode would refuse the
// packet and the client would get no reason code at all.
const maxReasonString = 256

// reasonString returns s cut to at most maxReasonString bytes, at a rune
// boundary so that it stays well-formed UTF-8 [MQTT-1.5.4-1].
func reasonString(s string) string {
	if len(s) <= maxReasonString {
		return s
	}
	n := maxReasonString
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// disconnect closes the connection from the broker's side, telling a v5
// client why.
func (c *client) disconnect(code packet.ReasonCode, reason string) {
	c.closedBy(code)
	if c.is(fConnected) {
		c.sendDisconnect(code, reason)
	}
	c.conn.Close()
}

// closedBy records, once, that the broker ended the connection for code.
func (c *client) closedBy(code packet.ReasonCode) {
	if c.is(fConnected) && c.claimEnd(fEndedByBroker) {
		c.srv.stats.DisconnectsByBroker[code].Add(1)
	}
}

// claimEnd records who ended the connection (fEndedByClient or
// fEndedByBroker), for the disconnect counters: it reports whether f is
// the first to claim it.
func (c *client) claimEnd(f uint32) bool {
	for {
		old := c.flags.Load()
		if old&(fEndedByClient|fEndedByBroker) != 0 {
			return false
		}
		if c.flags.CompareAndSwap(old, old|f) {
			return true
		}
	}
}

// Closed implements transport.Handler.
func (c *client) Closed(err error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	if c.setOnce(fGone) {
		c.srv.removeClient(c)
		c.srv.forgetPaused(c)
		if c.is(fAdmitted) {
			c.srv.admission.open.Add(-1)
		}
		if c.sess != nil {
			c.sess.detach(c)
		}
		if c.is(fConnected) {
			if !c.is(fEndedByClient | fEndedByBroker) {
				c.srv.stats.ConnectionsLost.Add(1)
			}
			c.srv.stats.Connected.Add(-1)
			c.srv.log.Debug("client disconnected", "client", c.info.ClientID, "err", err)
		}
		c.srv.live.Add(-1) // last: the will and the session are dealt with
	}
}

// checkTimeouts closes connections that sent no CONNECT in time or whose
// keepalive lapsed: one and a half times the keep alive [MQTT-3.1.2-22]
// ([MQTT-3.1.2-24] in 3.1.1).
func (c *client) checkTimeouts(now time.Time, nowMillis uint32) {
	// A packet may have arrived after the sweep read the clock: its
	// timestamp is then ahead of nowMillis. A signed difference keeps that
	// at zero silence (and stays right across the clock's 49-day wrap for
	// silences up to 24 days, beyond any keep alive's 1.5 x 65535 s).
	// The flags are read before the clock: whoever clears fReadPaused
	// stores a fresh lastPacket first.
	paused := c.is(fReadPaused)
	silent := time.Duration(max(int32(nowMillis-c.lastPacket.Load()), 0)) * time.Millisecond
	if !c.is(fConnected) {
		if silent > c.srv.opts.ConnectTimeout {
			c.srv.log.Debug("connect timeout", "remote", c.conn.RemoteAddr())
			c.conn.Close()
		}
		return
	}
	if exp := c.info.AuthExpiry; !exp.IsZero() && now.After(exp) {
		c.srv.log.Info("credentials expired", "client", c.info.ClientID)
		c.disconnect(packet.NotAuthorized, "credentials expired")
		return
	}
	// A connection the broker is not reading cannot show it is alive: its
	// PINGREQs wait unread, so the keepalive clock stops [MQTT-3.1.2-22].
	if ka := time.Duration(c.keepAlive) * time.Second; ka > 0 && !paused && silent > ka*3/2 {
		c.srv.log.Debug("keepalive timeout", "client", c.info.ClientID)
		c.disconnect(packet.KeepAliveTimeout, "keep alive timeout")
	}
}
