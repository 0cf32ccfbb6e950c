package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
)

// refuseConnect answers a CONNECT that failed to decode. An unsupported
// protocol level gets CONNACK 0x01 (3.1.1) or 0x84 (v5) [MQTT-3.1.2-2];
// a v5 CONNECT that is otherwise malformed gets CONNACK with the reason
// code [MQTT-4.13.1-1]; anything else is just closed.
func (c *client) refuseConnect(frame []byte, err error) error {
	var pe *packet.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("%w: %v", errClosed, err)
	}
	level := connectLevel(frame)
	switch {
	case pe.Code == packet.UnsupportedProtocolVersion:
		if level == packet.Version5 || level > packet.Version5 {
			c.version = packet.Version5
			c.send(&packet.Connack{ReasonCode: packet.UnsupportedProtocolVersion})
		} else {
			c.version = packet.Version311
			c.send(&packet.Connack{ReasonCode: packet.ConnRefusedProtocolVersion})
		}
	case level == packet.Version5:
		c.version = packet.Version5
		c.send(&packet.Connack{ReasonCode: pe.Code})
	}
	c.srv.log.Debug("bad CONNECT", "remote", c.conn.RemoteAddr(), "err", err)
	return fmt.Errorf("%w: %v", errClosed, err)
}

// connectLevel reads the protocol level byte of a CONNECT frame without
// trusting the rest of it; 0 if it cannot be found.
func connectLevel(frame []byte) byte {
	i := 1
	for i < len(frame) && i < 5 && frame[i]&0x80 != 0 {
		i++
	}
	i++ // past the last remaining-length byte
	if i+2 > len(frame) {
		return 0
	}
	n := int(frame[i])<<8 | int(frame[i+1])
	i += 2 + n
	if i >= len(frame) {
		return 0
	}
	return frame[i]
}

// refuse sends a CONNACK carrying a refusal (v5 code, mapped for 3.1.1)
// and closes the connection. The reason string is left out if it would
// take the CONNACK past the client's Maximum Packet Size (send,
// [MQTT-3.2.2-19]).
func (c *client) refuse(code packet.ReasonCode, reason string) error {
	ack := &packet.Connack{ReasonCode: code}
	if c.version != packet.Version5 {
		ack.ReasonCode = packet.ConnackCode311(code)
	} else if c.problemInfo && reason != "" {
		ack.Props.ReasonString = reasonString(reason)
	}
	c.srv.stats.ConnectsRefused[code].Add(1)
	c.set(fDisconnectSent)
	c.send(ack)
	c.srv.log.Debug("connect refused", "client", c.info.ClientID, "remote", c.conn.RemoteAddr(), "code", code, "reason", reason)
	return fmt.Errorf("%w: connect refused: %s", errClosed, reason)
}

// handleConnect runs the CONNECT/CONNACK exchange and attaches the client
// to its session.
func (c *client) handleConnect(p *packet.Connect) error {
	o := &c.srv.opts
	c.version = p.ProtocolVersion
	c.info.Version = p.ProtocolVersion
	// Decoded strings share the packet's memory: copy what outlives it.
	c.info.ClientID = strings.Clone(p.ClientID)
	c.info.Username = strings.Clone(p.Username)
	c.problemInfo = !p.Props.HasRequestProblem || p.Props.RequestProblemInfo == 1
	c.maxPacketOut = p.Props.MaximumPacketSize
	c.receiveMaxOut = p.Props.ReceiveMaximum
	if c.receiveMaxOut == 0 {
		c.receiveMaxOut = 65535
	}
	c.aliasMaxOut = p.Props.TopicAliasMaximum
	if c.aliasMaxOut > 0 {
		c.ext() // holds the outbound aliases; allocated before any delivery reads it
	}

	if p.Props.HasAuthMethod {
		// Enhanced authentication is not offered [MQTT-4.12.0-1], with
		// any method, an empty one included.
		return c.refuse(packet.BadAuthenticationMethod, "authentication method not supported")
	}

	assigned := ""
	if p.ClientID == "" {
		// [MQTT-3.1.3-8] a 3.1.1 client with an empty id must use a clean session;
		// 3.1 does not allow empty ids at all.
		if p.ProtocolVersion == packet.Version31 || (p.ProtocolVersion == packet.Version311 && !p.CleanStart) {
			return c.refuse(packet.ClientIDNotValid, "empty client identifier requires a clean session")
		}
		// [MQTT-3.1.3-6] assign a unique identifier.
		assigned = newClientID()
		c.info.ClientID = assigned
	}
	if len(c.info.ClientID) > o.MaxClientIDLength || (p.ProtocolVersion == packet.Version31 && len(c.info.ClientID) > 23) {
		return c.refuse(packet.ClientIDNotValid, "client identifier too long")
	}

	if code := c.srv.admit(c, time.Now()); code != packet.Success {
		return c.refuse(code, "refused by an overload limit")
	}

	if p.WillFlag {
		if err := topic.ValidateName(p.WillTopic); err != nil {
			return c.refuse(packet.TopicNameInvalid, "will topic: "+err.Error())
		}
		if p.WillQoS > o.MaximumQoS {
			return c.refuse(packet.QoSNotSupported, "will QoS above the maximum QoS") // [MQTT-3.2.2-12]
		}
		if p.WillRetain && !o.RetainAvailable {
			return c.refuse(packet.RetainNotSupported, "retain not available") // [MQTT-3.2.2-13]
		}
	}

	if o.Auth != nil {
		// Filled only for the authenticator: a net.Addr per idle
		// connection is memory nothing else needs.
		c.info.RemoteAddr = c.conn.RemoteAddr()
		if pz, ok := c.conn.(pauser); ok {
			// An authenticator may take long (bcrypt, an HTTP hook): it must
			// not hold up the transport's goroutine, which may be an epoll
			// loop serving thousands of connections. Stop reading this one,
			// authenticate on a worker, and finish the CONNECT there.
			c.set(fAuthPending)
			c.set(fReadPaused)
			pz.PauseRead()
			go c.authenticate(p, pz)
			return nil
		}
		if code := o.Auth.Authenticate(&c.info, p.Password); code != packet.Success {
			return c.refuse(code, "not authorized")
		}
	}
	return c.completeConnect(p)
}

// authSlots bounds concurrent authentications.
var authSlots = make(chan struct{}, 256)

// authenticate runs the Authenticator off the transport goroutine, then
// completes the CONNECT and the packets that arrived behind it, holding
// the read-side lock as Data would, and resumes reading.
func (c *client) authenticate(p *packet.Connect, pz pauser) {
	defer releaseConnect(p)
	authSlots <- struct{}{}
	code := c.srv.opts.Auth.Authenticate(&c.info, p.Password)
	<-authSlots

	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.unset(fAuthPending)
	if c.is(fGone) {
		return // the connection closed while we were checking it
	}
	err := errClosed
	if code != packet.Success {
		c.refuse(code, "not authorized")
	} else if err = c.completeConnect(p); err == nil {
		err = c.data(nil) // packets that came with the CONNECT
	}
	if err != nil {
		c.conn.Close()
		return
	}
	// The keepalive clock restarts before reading resumes: a sweep that
	// sees the client unpaused must not see the authentication's duration
	// as silence.
	c.lastPacket.Store(c.srv.millis())
	if c.srv.budgetPaused(c) {
		// A PUBLISH that came with the CONNECT put the node over its
		// memory budget and paused the client; resumePublishers resumes it.
		return
	}
	c.unset(fReadPaused)
	if !c.is(fAuthPending) {
		pz.ResumeRead()
	}
}

// completeConnect is the rest of the CONNECT once the client is
// authenticated: will ACL, keep alive, session, CONNACK.
func (c *client) completeConnect(p *packet.Connect) error {
	o := &c.srv.opts
	assigned := ""
	if p.ClientID == "" {
		assigned = c.info.ClientID // set by handleConnect [MQTT-3.1.3-6]
	}
	if code := c.srv.flapping(c.info.ClientID, time.Now()); code != packet.Success {
		return c.refuse(code, "client identifier banned for reconnecting too often")
	}
	if p.WillFlag && (sysTopic(p.WillTopic) || o.ACL != nil && !o.ACL.CanPublish(&c.info, p.WillTopic)) {
		return c.refuse(packet.NotAuthorized, "will topic not authorized")
	}

	// Keep alive: the server may impose its own in v5 [MQTT-3.2.2-21];
	// for 3.1.1 clients it can only enforce what they asked for.
	keepAlive := p.KeepAlive
	serverKeepAlive := false
	if p.ProtocolVersion == packet.Version5 {
		if o.ServerKeepAlive > 0 {
			keepAlive, serverKeepAlive = o.ServerKeepAlive, true
		} else if o.MaxKeepAlive > 0 && (keepAlive == 0 || keepAlive > o.MaxKeepAlive) {
			keepAlive, serverKeepAlive = o.MaxKeepAlive, true
		}
	}
	c.keepAlive = keepAlive

	// Session expiry: 3.1.1 clean session = 0 means the session never
	// expires by itself; v5 uses the property, capped by the server.
	expiry := p.Props.SessionExpiry
	if p.ProtocolVersion != packet.Version5 {
		expiry = 0
		if !p.CleanStart {
			expiry = neverExpire
		}
	}
	expiryCapped := false
	if o.MaxSessionExpiry > 0 && expiry > o.MaxSessionExpiry {
		expiry, expiryCapped = o.MaxSessionExpiry, true
	}

	if p.WillFlag {
		now := time.Now()
		w := &Message{
			Topic:           p.WillTopic,
			Payload:         p.WillPayload,
			QoS:             p.WillQoS,
			Retain:          p.WillRetain,
			PayloadFormat:   p.WillProps.PayloadFormat,
			ContentType:     p.WillProps.ContentType,
			ResponseTopic:   p.WillProps.ResponseTopic,
			CorrelationData: p.WillProps.CorrelationData,
			UserProps:       p.WillProps.User,
			Created:         now,
		}
		x := c.ext()
		if p.WillProps.HasMessageExpiry {
			x.willExpiry = p.WillProps.MessageExpiry
			c.set(fWillExpires)
		}
		x.will = w
		x.willDelay = p.WillProps.WillDelay
	}

	ack := &packet.Connack{}
	if c.version == packet.Version5 {
		c.fillConnackProps(&ack.Props)
		ack.Props.AssignedClientID = assigned
		if serverKeepAlive {
			ack.Props.ServerKeepAlive, ack.Props.HasServerKeepAlive = keepAlive, true
		}
		if expiryCapped {
			ack.Props.SessionExpiry, ack.Props.HasSessionExpiry = expiry, true
		}
		if c.maxPacketOut > 0 && packet.Size(c.version, ack) > int(c.maxPacketOut) {
			// [MQTT-3.1.2-24] the CONNACK may not exceed the client's
			// Maximum Packet Size, and none of its properties can be left
			// out: they state limits the client must keep to, and an empty
			// client id must get its Assigned Client Identifier
			// [MQTT-3.2.2-16]. A limit the broker cannot meet refuses the
			// connection, before the session is touched [MQTT-3.1.4-2];
			// 0x83: the CONNECT is valid but not accepted by this server.
			return c.refuse(packet.ImplementationSpecific, "maximum packet size too small for the CONNACK")
		}
	}

	sess, present, err := c.srv.attach(c, p.CleanStart, expiry)
	if errors.Is(err, errSessionOwned) {
		return c.refuse(packet.NotAuthorized, err.Error())
	}
	if err != nil {
		return c.refuse(packet.ServerUnavailable, err.Error())
	}
	c.sess = sess
	if w := c.will(); w != nil {
		w.from = sess // the will is this client's message [MQTT-3.8.3-3]
	}
	c.connectedAt = c.srv.seconds()
	ack.SessionPresent = present
	c.set(fConnected)
	c.srv.stats.Connected.Add(1)
	c.send(ack)
	c.srv.log.Debug("client connected", "client", c.info.ClientID, "version", c.version, "present", present)
	// [MQTT-4.4.0-1] resend unacknowledged PUBLISH and PUBREL, then the queue.
	sess.resume(c)
	return nil
}

// fillConnackProps states the server's capabilities to a v5 client.
func (c *client) fillConnackProps(p *packet.Properties) {
	o := &c.srv.opts
	if o.ReceiveMaximum != 65535 {
		p.ReceiveMaximum = o.ReceiveMaximum
	}
	p.MaximumPacketSize = c.maxPacketIn
	p.TopicAliasMaximum = o.TopicAliasMaximum
	if o.MaximumQoS < 2 {
		p.MaximumQoS, p.HasMaximumQoS = o.MaximumQoS, true
	}
	if !o.RetainAvailable {
		p.RetainAvailable, p.HasRetainAvailable = 0, true
	}
	if !o.WildcardSubs {
		p.WildcardSubAvailable, p.HasWildcardSub = 0, true
	}
	if !o.SubIDs {
		p.SubIDAvailable, p.HasSubIDAvailable = 0, true
	}
	if !o.SharedSubs {
		p.SharedSubAvailable, p.HasSharedSub = 0, true
	}
}

// newClientID returns a server-assigned client identifier.
func newClientID() string {
	var b [12]byte
	rand.Read(b[:])
	return "herald-" + hex.EncodeToString(b[:])
}

// handleDisconnect processes a client's DISCONNECT.
func (c *client) handleDisconnect(p *packet.Disconnect) error {
	if c.version == packet.Version5 && p.Props.HasSessionExpiry && !c.sess.disconnectExpiry(c, p.Props.SessionExpiry) {
		// (v5 §3.14.2.2.2) a non-zero Session Expiry Interval on DISCONNECT
		// after 0 on CONNECT is a Protocol Error.
		return c.protocolFailure(packet.Errorf(packet.ProtocolError, "session expiry set on DISCONNECT after 0 at CONNECT"))
	}
	// [MQTT-3.14.4-3] [MQTT-3.1.2-10] only 0x00 Normal disconnection
	// discards the will (a 3.1.1 DISCONNECT decodes as 0x00); 0x04 asks
	// for it and an error code (0x80 and above) leaves it to be published
	// as on any abnormal close [MQTT-3.1.2-8].
	if p.ReasonCode == packet.Success {
		c.set(fCleanExit)
	}
	if c.claimEnd(fEndedByClient) {
		c.srv.stats.DisconnectsByClient.Add(1)
	}
	c.conn.Close()
	return errClosed
}
