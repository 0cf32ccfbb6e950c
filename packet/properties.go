package packet

import "encoding/binary"

// Property identifiers (MQTT 5 section 2.2.2.2).
const (
	propPayloadFormat        = 0x01
	propMessageExpiry        = 0x02
	propContentType          = 0x03
	propResponseTopic        = 0x08
	propCorrelationData      = 0x09
	propSubscriptionID       = 0x0B
	propSessionExpiry        = 0x11
	propAssignedClientID     = 0x12
	propServerKeepAlive      = 0x13
	propAuthMethod           = 0x15
	propAuthData             = 0x16
	propRequestProblemInfo   = 0x17
	propWillDelay            = 0x18
	propRequestResponseInfo  = 0x19
	propResponseInfo         = 0x1A
	propServerReference      = 0x1C
	propReasonString         = 0x1F
	propReceiveMaximum       = 0x21
	propTopicAliasMaximum    = 0x22
	propTopicAlias           = 0x23
	propMaximumQoS           = 0x24
	propRetainAvailable      = 0x25
	propUser                 = 0x26
	propMaximumPacketSize    = 0x27
	propWildcardSubAvailable = 0x28
	propSubIDAvailable       = 0x29
	propSharedSubAvailable   = 0x2A
)

// propSet is a set of property identifiers, one bit per identifier.
type propSet uint64

func bit(id byte) propSet { return 1 << id }

// propCtx names where a property section sits: each packet type, and the
// Will Properties of CONNECT.
type propCtx byte

const (
	ctxConnect propCtx = iota
	ctxConnack
	ctxPublish
	ctxWill
	ctxAck // PUBACK, PUBREC, PUBREL, PUBCOMP
	ctxSubscribe
	ctxSuback
	ctxUnsubscribe
	ctxUnsuback
	ctxDisconnect
	ctxAuth
)

var ctxName = [...]string{"CONNECT", "CONNACK", "PUBLISH", "Will", "ack", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "DISCONNECT", "AUTH"}

// allowedProps is the table of section 2.2.2.2: which properties each packet
// may carry. Any other identifier makes the packet malformed.
var allowedProps = [...]propSet{
	ctxConnect: bit(propSessionExpiry) | bit(propAuthMethod) | bit(propAuthData) |
		bit(propRequestProblemInfo) | bit(propRequestResponseInfo) | bit(propReceiveMaximum) |
		bit(propTopicAliasMaximum) | bit(propUser) | bit(propMaximumPacketSize),
	ctxConnack: bit(propSessionExpiry) | bit(propAssignedClientID) | bit(propServerKeepAlive) |
		bit(propAuthMethod) | bit(propAuthData) | bit(propResponseInfo) | bit(propServerReference) |
		bit(propReasonString) | bit(propReceiveMaximum) | bit(propTopicAliasMaximum) |
		bit(propMaximumQoS) | bit(propRetainAvailable) | bit(propUser) | bit(propMaximumPacketSize) |
		bit(propWildcardSubAvailable) | bit(propSubIDAvailable) | bit(propSharedSubAvailable),
	ctxPublish: bit(propPayloadFormat) | bit(propMessageExpiry) | bit(propContentType) |
		bit(propResponseTopic) | bit(propCorrelationData) | bit(propSubscriptionID) |
		bit(propTopicAlias) | bit(propUser),
	ctxWill: bit(propPayloadFormat) | bit(propMessageExpiry) | bit(propContentType) |
		bit(propResponseTopic) | bit(propCorrelationData) | bit(propWillDelay) | bit(propUser),
	ctxAck:         bit(propReasonString) | bit(propUser),
	ctxSubscribe:   bit(propSubscriptionID) | bit(propUser),
	ctxSuback:      bit(propReasonString) | bit(propUser),
	ctxUnsubscribe: bit(propUser),
	ctxUnsuback:    bit(propReasonString) | bit(propUser),
	ctxDisconnect:  bit(propSessionExpiry) | bit(propServerReference) | bit(propReasonString) | bit(propUser),
	ctxAuth:        bit(propAuthMethod) | bit(propAuthData) | bit(propReasonString) | bit(propUser),
}

// decodeProps reads a property length and the properties that follow into
// p. Strings and byte slices alias r's buffer, which Decode owns.
func (r *reader) decodeProps(ctx propCtx, p *Properties) error {
	length, n := readMinimalVarint(r.b[r.off:])
	if n == 0 {
		return Errorf(MalformedPacket, "%s: bad property length", ctxName[ctx])
	}
	r.off += n
	if int(length) > len(r.b)-r.off {
		return Errorf(MalformedPacket, "%s: property length %d exceeds packet", ctxName[ctx], length)
	}
	end := r.off + int(length)
	// Read the section through a reader that cannot run past it.
	pr := reader{b: r.b[:end], off: r.off}
	r.off = end

	allowed := allowedProps[ctx]
	var seen propSet
	for pr.off < end {
		id := pr.b[pr.off]
		pr.off++
		if id >= 64 || allowed&bit(id) == 0 {
			// [MQTT-2.2.2-2] an identifier not valid for the packet type
			// makes it a Malformed Packet.
			return Errorf(MalformedPacket, "%s: property 0x%02X not allowed", ctxName[ctx], id)
		}
		if seen&bit(id) != 0 && id != propUser && !(id == propSubscriptionID && ctx == ctxPublish) {
			return Errorf(ProtocolError, "%s: property 0x%02X included more than once", ctxName[ctx], id)
		}
		seen |= bit(id)
		if err := pr.decodeProp(id, p); err != nil {
			return err
		}
	}
	// 3.1.2.11.10, 3.2.2.3.17: Authentication Data without an
	// Authentication Method is a Protocol Error.
	if seen&bit(propAuthData) != 0 && seen&bit(propAuthMethod) == 0 {
		return Errorf(ProtocolError, "%s: authentication data without authentication method", ctxName[ctx])
	}
	return nil
}

// decodeProp reads the value of property id into p and checks the values
// the spec constrains.
func (r *reader) decodeProp(id byte, p *Properties) error {
	var err error
	switch id {
	case propPayloadFormat:
		if p.PayloadFormat, err = r.byte01(id); err != nil {
			return err
		}
	case propMessageExpiry:
		p.MessageExpiry, err = r.uint32()
		p.HasMessageExpiry = true
	case propContentType:
		p.ContentType, err = r.string()
	case propResponseTopic:
		if p.ResponseTopic, err = r.string(); err != nil {
			return err
		}
		// [MQTT-3.3.2-14] the Response Topic is a Topic Name: no wildcards.
		if hasWildcard(p.ResponseTopic) || p.ResponseTopic == "" {
			return Errorf(ProtocolError, "response topic %q is not a valid topic name", p.ResponseTopic)
		}
	case propCorrelationData:
		p.CorrelationData, err = r.binary()
	case propSubscriptionID:
		v, n := readMinimalVarint(r.b[r.off:])
		if n == 0 {
			return Errorf(MalformedPacket, "bad subscription identifier")
		}
		r.off += n
		// 3.3.2.3.8, 3.8.2.1.2: a Subscription Identifier of 0 is a
		// Protocol Error.
		if v == 0 {
			return Errorf(ProtocolError, "subscription identifier 0")
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, v)
	case propSessionExpiry:
		p.SessionExpiry, err = r.uint32()
		p.HasSessionExpiry = true
	case propAssignedClientID:
		p.AssignedClientID, err = r.string()
	case propServerKeepAlive:
		p.ServerKeepAlive, err = r.uint16()
		p.HasServerKeepAlive = true
	case propAuthMethod:
		// Present even when empty: an empty method is still a method,
		// one no server supports [MQTT-4.12.0-1].
		p.AuthMethod, err = r.string()
		p.HasAuthMethod = true
	case propAuthData:
		p.AuthData, err = r.binary()
	case propRequestProblemInfo:
		p.RequestProblemInfo, err = r.byte01(id)
		p.HasRequestProblem = true
	case propWillDelay:
		p.WillDelay, err = r.uint32()
	case propRequestResponseInfo:
		p.RequestResponseInfo, err = r.byte01(id)
	case propResponseInfo:
		p.ResponseInfo, err = r.string()
	case propServerReference:
		p.ServerReference, err = r.string()
	case propReasonString:
		p.ReasonString, err = r.string()
	case propReceiveMaximum:
		if p.ReceiveMaximum, err = r.uint16(); err == nil && p.ReceiveMaximum == 0 {
			// 3.1.2.11.3, 3.2.2.3.3: Receive Maximum 0 is a Protocol Error.
			return Errorf(ProtocolError, "receive maximum 0")
		}
	case propTopicAliasMaximum:
		p.TopicAliasMaximum, err = r.uint16()
	case propTopicAlias:
		if p.TopicAlias, err = r.uint16(); err == nil && p.TopicAlias == 0 {
			// [MQTT-3.3.2-8] 3.3.2.3.4: Topic Alias 0 is a Protocol Error,
			// answered with Topic Alias invalid.
			return Errorf(TopicAliasInvalid, "topic alias 0")
		}
	case propMaximumQoS:
		p.MaximumQoS, err = r.byte01(id)
		p.HasMaximumQoS = true
	case propRetainAvailable:
		p.RetainAvailable, err = r.byte01(id)
		p.HasRetainAvailable = true
	case propUser:
		var u UserProperty
		if u.Key, err = r.string(); err != nil {
			return err
		}
		if u.Value, err = r.string(); err != nil {
			return err
		}
		p.User = append(p.User, u)
	case propMaximumPacketSize:
		if p.MaximumPacketSize, err = r.uint32(); err == nil && p.MaximumPacketSize == 0 {
			// 3.1.2.11.4, 3.2.2.3.6: Maximum Packet Size 0 is a Protocol Error.
			return Errorf(ProtocolError, "maximum packet size 0")
		}
	case propWildcardSubAvailable:
		p.WildcardSubAvailable, err = r.byte01(id)
		p.HasWildcardSub = true
	case propSubIDAvailable:
		p.SubIDAvailable, err = r.byte01(id)
		p.HasSubIDAvailable = true
	case propSharedSubAvailable:
		p.SharedSubAvailable, err = r.byte01(id)
		p.HasSharedSub = true
	}
	return err
}

// byte01 reads a one-byte property whose only legal values are 0 and 1
// (Payload Format Indicator, Request Problem/Response Information, Maximum
// QoS and the *Available flags); any other value is a Protocol Error.
func (r *reader) byte01(id byte) (byte, error) {
	b, err := r.byte()
	if err == nil && b > 1 {
		return 0, Errorf(ProtocolError, "property 0x%02X has value %d, want 0 or 1", id, b)
	}
	return b, err
}

// propsSize returns the encoded length of p's properties, not counting the
// property length itself, and the set of properties present. It is written
// out field by field because it runs for every PUBLISH encoded in v5.
func propsSize(p *Properties) (n int, present propSet) {
	if p.PayloadFormat != 0 {
		n, present = n+2, present|bit(propPayloadFormat)
	}
	if p.HasMessageExpiry {
		n, present = n+5, present|bit(propMessageExpiry)
	}
	if p.ContentType != "" {
		n, present = n+3+len(p.ContentType), present|bit(propContentType)
	}
	if p.ResponseTopic != "" {
		n, present = n+3+len(p.ResponseTopic), present|bit(propResponseTopic)
	}
	if p.CorrelationData != nil {
		n, present = n+3+len(p.CorrelationData), present|bit(propCorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		n, present = n+1+varintLen(int(id)), present|bit(propSubscriptionID)
	}
	if p.HasSessionExpiry {
		n, present = n+5, present|bit(propSessionExpiry)
	}
	if p.AssignedClientID != "" {
		n, present = n+3+len(p.AssignedClientID), present|bit(propAssignedClientID)
	}
	if p.HasServerKeepAlive {
		n, present = n+3, present|bit(propServerKeepAlive)
	}
	if p.AuthMethod != "" || p.HasAuthMethod {
		n, present = n+3+len(p.AuthMethod), present|bit(propAuthMethod)
	}
	if p.AuthData != nil {
		n, present = n+3+len(p.AuthData), present|bit(propAuthData)
	}
	if p.HasRequestProblem {
		n, present = n+2, present|bit(propRequestProblemInfo)
	}
	if p.WillDelay != 0 {
		n, present = n+5, present|bit(propWillDelay)
	}
	if p.RequestResponseInfo != 0 {
		n, present = n+2, present|bit(propRequestResponseInfo)
	}
	if p.ResponseInfo != "" {
		n, present = n+3+len(p.ResponseInfo), present|bit(propResponseInfo)
	}
	if p.ServerReference != "" {
		n, present = n+3+len(p.ServerReference), present|bit(propServerReference)
	}
	if p.ReasonString != "" {
		n, present = n+3+len(p.ReasonString), present|bit(propReasonString)
	}
	if p.ReceiveMaximum != 0 {
		n, present = n+3, present|bit(propReceiveMaximum)
	}
	if p.TopicAliasMaximum != 0 {
		n, present = n+3, present|bit(propTopicAliasMaximum)
	}
	if p.TopicAlias != 0 {
		n, present = n+3, present|bit(propTopicAlias)
	}
	if p.HasMaximumQoS {
		n, present = n+2, present|bit(propMaximumQoS)
	}
	if p.HasRetainAvailable {
		n, present = n+2, present|bit(propRetainAvailable)
	}
	for _, u := range p.User {
		n, present = n+5+len(u.Key)+len(u.Value), present|bit(propUser)
	}
	if p.MaximumPacketSize != 0 {
		n, present = n+5, present|bit(propMaximumPacketSize)
	}
	if p.HasWildcardSub {
		n, present = n+2, present|bit(propWildcardSubAvailable)
	}
	if p.HasSubIDAvailable {
		n, present = n+2, present|bit(propSubIDAvailable)
	}
	if p.HasSharedSub {
		n, present = n+2, present|bit(propSharedSubAvailable)
	}
	return n, present
}

// checkProps reports an error if p holds a property ctx may not carry, or
// a value that cannot be encoded.
func checkProps(ctx propCtx, p *Properties, present propSet) error {
	if extra := present &^ allowedProps[ctx]; extra != 0 {
		for id := byte(0); id < 64; id++ {
			if extra&bit(id) != 0 {
				return Errorf(MalformedPacket, "%s may not carry property 0x%02X", ctxName[ctx], id)
			}
		}
	}
	if ctx == ctxSubscribe && len(p.SubscriptionIDs) > 1 {
		return Errorf(ProtocolError, "SUBSCRIBE carries at most one subscription identifier")
	}
	for _, id := range p.SubscriptionIDs {
		if id == 0 || id > MaxRemainingLength {
			return Errorf(ProtocolError, "subscription identifier %d out of range", id)
		}
	}
	for _, u := range p.User {
		if len(u.Key) > 0xFFFF || len(u.Value) > 0xFFFF {
			return Errorf(MalformedPacket, "user property longer than 65535 bytes")
		}
	}
	for _, s := range [...]string{p.ContentType, p.ResponseTopic, p.AssignedClientID, p.AuthMethod,
		p.ResponseInfo, p.ServerReference, p.ReasonString} {
		if len(s) > 0xFFFF {
			return Errorf(MalformedPacket, "property string longer than 65535 bytes")
		}
	}
	if len(p.CorrelationData) > 0xFFFF || len(p.AuthData) > 0xFFFF {
		return Errorf(MalformedPacket, "property binary data longer than 65535 bytes")
	}
	if p.PayloadFormat > 1 || p.RequestProblemInfo > 1 || p.RequestResponseInfo > 1 || p.MaximumQoS > 1 ||
		p.RetainAvailable > 1 || p.WildcardSubAvailable > 1 || p.SubIDAvailable > 1 || p.SharedSubAvailable > 1 {
		return Errorf(ProtocolError, "%s: a 0-or-1 property holds another value", ctxName[ctx])
	}
	return nil
}

// appendProps appends the property length (size, from propsSize) and p's
// properties, in identifier order.
func appendProps(dst []byte, p *Properties, size int) []byte {
	dst = appendVarint(dst, uint32(size))
	if p.PayloadFormat != 0 {
		dst = append(dst, propPayloadFormat, p.PayloadFormat)
	}
	if p.HasMessageExpiry {
		dst = binary.BigEndian.AppendUint32(append(dst, propMessageExpiry), p.MessageExpiry)
	}
	dst = appendStrProp(dst, propContentType, p.ContentType)
	dst = appendStrProp(dst, propResponseTopic, p.ResponseTopic)
	if p.CorrelationData != nil {
		dst = appendBinary(append(dst, propCorrelationData), p.CorrelationData)
	}
	for _, id := range p.SubscriptionIDs {
		dst = appendVarint(append(dst, propSubscriptionID), id)
	}
	if p.HasSessionExpiry {
		dst = binary.BigEndian.AppendUint32(append(dst, propSessionExpiry), p.SessionExpiry)
	}
	dst = appendStrProp(dst, propAssignedClientID, p.AssignedClientID)
	if p.HasServerKeepAlive {
		dst = binary.BigEndian.AppendUint16(append(dst, propServerKeepAlive), p.ServerKeepAlive)
	}
	if p.AuthMethod != "" || p.HasAuthMethod {
		dst = appendString(append(dst, propAuthMethod), p.AuthMethod)
	}
	if p.AuthData != nil {
		dst = appendBinary(append(dst, propAuthData), p.AuthData)
	}
	if p.HasRequestProblem {
		dst = append(dst, propRequestProblemInfo, p.RequestProblemInfo)
	}
	if p.WillDelay != 0 {
		dst = binary.BigEndian.AppendUint32(append(dst, propWillDelay), p.WillDelay)
	}
	if p.RequestResponseInfo != 0 {
		dst = append(dst, propRequestResponseInfo, p.RequestResponseInfo)
	}
	dst = appendStrProp(dst, propResponseInfo, p.ResponseInfo)
	dst = appendStrProp(dst, propServerReference, p.ServerReference)
	dst = appendStrProp(dst, propReasonString, p.ReasonString)
	if p.ReceiveMaximum != 0 {
		dst = binary.BigEndian.AppendUint16(append(dst, propReceiveMaximum), p.ReceiveMaximum)
	}
	if p.TopicAliasMaximum != 0 {
		dst = binary.BigEndian.AppendUint16(append(dst, propTopicAliasMaximum), p.TopicAliasMaximum)
	}
	if p.TopicAlias != 0 {
		dst = binary.BigEndian.AppendUint16(append(dst, propTopicAlias), p.TopicAlias)
	}
	if p.HasMaximumQoS {
		dst = append(dst, propMaximumQoS, p.MaximumQoS)
	}
	if p.HasRetainAvailable {
		dst = append(dst, propRetainAvailable, p.RetainAvailable)
	}
	for _, u := range p.User {
		dst = appendString(appendString(append(dst, propUser), u.Key), u.Value)
	}
	if p.MaximumPacketSize != 0 {
		dst = binary.BigEndian.AppendUint32(append(dst, propMaximumPacketSize), p.MaximumPacketSize)
	}
	if p.HasWildcardSub {
		dst = append(dst, propWildcardSubAvailable, p.WildcardSubAvailable)
	}
	if p.HasSubIDAvailable {
		dst = append(dst, propSubIDAvailable, p.SubIDAvailable)
	}
	if p.HasSharedSub {
		dst = append(dst, propSharedSubAvailable, p.SharedSubAvailable)
	}
	return dst
}

func appendStrProp(dst []byte, id byte, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, id), s)
}
