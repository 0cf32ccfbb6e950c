package packet

import (
	"bytes"
	"encoding/binary"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Decode decodes frame, exactly one complete control packet as cut by
// SplitFrame, for a connection speaking the given protocol version
// (Version31, Version311 or Version5). For CONNECT the version argument is
// ignored: the packet states its own.
//
// Decode is strict: every error is an *Error whose Code is the reason code
// the spec assigns (mostly MalformedPacket or ProtocolError). Checks that
// depend on the connection's state or direction (topic alias ranges, client
// identifier rules, Subscription Identifiers sent by a client, topic filter
// syntax) belong to the caller.
//
// The decoded packet does not alias frame, so the caller may reuse frame at
// once. Its strings and byte slices share one copy of the packet body (one
// allocation): a caller that keeps a small piece of a large packet for a long
// time, such as a topic name in a topic alias table, should clone it with
// strings.Clone so the rest can be freed.
func Decode(version byte, frame []byte) (Packet, error) {
	t, flags, body, err := parseFixedHeader(version, frame)
	if err != nil {
		return nil, err
	}
	if t == CONNECT {
		p, err := decodeConnect(body)
		if err == nil {
			err = checkLengthForm(p.(*Connect).ProtocolVersion, frame, body)
		}
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	if err := checkFrame(version, frame, body); err != nil {
		return nil, err
	}
	switch t {
	case CONNACK:
		return decodeConnack(version, body)
	case PUBLISH:
		return decodePublish(version, flags, body)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return decodeAck(version, t, body)
	case SUBSCRIBE:
		return decodeSubscribe(version, body)
	case SUBACK:
		return decodeSuback(version, body)
	case UNSUBSCRIBE:
		return decodeUnsubscribe(version, body)
	case UNSUBACK:
		return decodeUnsuback(version, body)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return nil, Errorf(MalformedPacket, "%v with a body", t)
		}
		if t == PINGREQ {
			return &Pingreq{}, nil
		}
		return &Pingresp{}, nil
	case DISCONNECT:
		return decodeDisconnect(version, body)
	case AUTH:
		if version != Version5 {
			break
		}
		return decodeAuth(body)
	}
	// Type 0 is reserved in every version, and 15 before MQTT 5.
	return nil, Errorf(MalformedPacket, "reserved packet type %d", t)
}

// parseFixedHeader checks a frame's fixed header, for a connection speaking
// version, and returns its type, flag bits and body.
func parseFixedHeader(version byte, frame []byte) (Type, byte, []byte, error) {
	if len(frame) < 2 {
		return 0, 0, nil, Errorf(MalformedPacket, "packet shorter than 2 bytes")
	}
	t, flags := Type(frame[0]>>4), frame[0]&0x0F
	remaining, n := readVarint(frame[1:])
	if n == 0 {
		return 0, 0, nil, Errorf(MalformedPacket, "bad remaining length")
	}
	body := frame[1+n:]
	if int(remaining) != len(body) {
		return 0, 0, nil, Errorf(MalformedPacket, "remaining length %d, but %d bytes follow", remaining, len(body))
	}
	// [MQTT-2.2.2-1] [MQTT-2.2.2-2] reserved flag bits must hold the values
	// of table 2.2; PUBLISH flags are checked by decodePublish.
	want := byte(0)
	switch t {
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		want = 0x02 // [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1]
		if version == Version31 {
			// 3.1 §2.1.2: DUP marks a resent PUBREL, SUBSCRIBE or
			// UNSUBSCRIBE; only 3.1.1 reserved it.
			want |= flags & 0x08
		}
	case PUBLISH:
		want = flags
	}
	if flags != want {
		return 0, 0, nil, Errorf(MalformedPacket, "%v: reserved flag bits are %04b", t, flags)
	}
	return t, flags, body, nil
}

// checkFrame refuses a frame of an unknown protocol version, or one whose
// Remaining Length is not in the form its version requires.
func checkFrame(version byte, frame, body []byte) error {
	if version != Version31 && version != Version311 && version != Version5 {
		return Errorf(ProtocolError, "unknown protocol version %d", version)
	}
	return checkLengthForm(version, frame, body)
}

// checkLengthForm refuses an MQTT 5 frame whose Remaining Length takes
// more bytes than its value needs: "The encoded value MUST use the minimum
// number of bytes necessary to represent the value" [MQTT-1.5.5-1]. MQTT
// 3.1.1 (2.2.3) and 3.1 describe the same encoding without that rule, so
// their frames are not held to it. frame is a frame parseFixedHeader
// accepted, body its body.
func checkLengthForm(version byte, frame, body []byte) error {
	if version == Version5 && len(frame)-1-len(body) != varintLen(len(body)) {
		return Errorf(MalformedPacket, "remaining length %d not in its shortest form", len(body))
	}
	return nil
}

// DecodeConnect is Decode for a frame known to be a CONNECT, decoding into
// p (which it first resets) so that a server can reuse one struct: a
// Connect with its two property sets is most of a kilobyte, garbage on
// every connection otherwise. Strings and slices point into one copy of
// the body, as with Decode.
func DecodeConnect(frame []byte, p *Connect) error {
	t, _, body, err := parseFixedHeader(0, frame) // CONNECT's flags are 0 in every version
	if err != nil {
		return err
	}
	if t != CONNECT {
		return Errorf(MalformedPacket, "%v is not a CONNECT", t)
	}
	if err := decodeConnectInto(p, body); err != nil {
		return err
	}
	return checkLengthForm(p.ProtocolVersion, frame, body)
}

// DecodeSubscribe is Decode for a frame known to be a SUBSCRIBE, decoding
// into p (which it first resets), as DecodeConnect does.
func DecodeSubscribe(version byte, frame []byte, p *Subscribe) error {
	t, _, body, err := parseFixedHeader(version, frame)
	if err != nil {
		return err
	}
	if t != SUBSCRIBE {
		return Errorf(MalformedPacket, "%v is not a SUBSCRIBE", t)
	}
	if err := checkFrame(version, frame, body); err != nil {
		return err
	}
	return decodeSubscribeInto(p, version, body)
}

var typeNames = [...]string{"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

// String returns the packet type's name, such as "PUBLISH".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "INVALID"
}

// reader reads the fields of one packet body. Decode gives it a private copy
// of the body, so strings may alias b: nothing ever writes to it again.
type reader struct {
	b   []byte
	off int
}

// ownedReader copies body into a new buffer that the decoded packet owns.
func ownedReader(body []byte) reader {
	if len(body) == 0 {
		return reader{}
	}
	return reader{b: bytes.Clone(body)}
}

func (r *reader) left() int { return len(r.b) - r.off }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, Errorf(MalformedPacket, "packet truncated")
	}
	r.off++
	return r.b[r.off-1], nil
}

func (r *reader) uint16() (uint16, error) {
	if r.left() < 2 {
		return 0, Errorf(MalformedPacket, "packet truncated")
	}
	r.off += 2
	return binary.BigEndian.Uint16(r.b[r.off-2:]), nil
}

func (r *reader) uint32() (uint32, error) {
	if r.left() < 4 {
		return 0, Errorf(MalformedPacket, "packet truncated")
	}
	r.off += 4
	return binary.BigEndian.Uint32(r.b[r.off-4:]), nil
}

// binary reads two-byte-length-prefixed binary data. The result is never nil
// and is capped so that appending to it cannot overwrite what follows.
func (r *reader) binary() ([]byte, error) {
	n, err := r.uint16()
	if err != nil {
		return nil, err
	}
	if int(n) > r.left() {
		return nil, Errorf(MalformedPacket, "length %d exceeds packet", n)
	}
	r.off += int(n)
	return r.b[r.off-int(n) : r.off : r.off], nil
}

// optBinary is binary, but returns nil for zero-length data.
func (r *reader) optBinary() ([]byte, error) {
	b, err := r.binary()
	if len(b) == 0 {
		return nil, err
	}
	return b, err
}

// string reads a UTF-8 Encoded String and checks it.
func (r *reader) string() (string, error) {
	b, err := r.binary()
	if err != nil || len(b) == 0 {
		return "", err
	}
	// [MQTT-1.5.4-1] ill-formed UTF-8 (including surrogates) and
	// [MQTT-1.5.4-2] U+0000 make the packet malformed.
	if bytes.IndexByte(b, 0) >= 0 {
		return "", Errorf(MalformedPacket, "string contains U+0000")
	}
	if !utf8.Valid(b) {
		return "", Errorf(MalformedPacket, "string is not valid UTF-8")
	}
	// b is never written again (reader owns it and binary slices handed
	// out never cover string bytes), so the string may share it.
	return unsafe.String(&b[0], len(b)), nil
}

// packetID reads a Packet Identifier, which must be non-zero [MQTT-2.2.1-3].
func (r *reader) packetID(t Type) (uint16, error) {
	id, err := r.uint16()
	if err == nil && id == 0 {
		return 0, Errorf(ProtocolError, "%v: packet identifier 0", t)
	}
	return id, err
}

// end reports bytes left over after the last field.
func (r *reader) end(t Type) error {
	if r.off != len(r.b) {
		return Errorf(MalformedPacket, "%v: %d unexpected trailing bytes", t, len(r.b)-r.off)
	}
	return nil
}

// hasWildcard reports whether a topic name holds a wildcard character,
// which only topic filters may use [MQTT-3.3.2-2] [MQTT-4.7.1-1].
func hasWildcard(topic string) bool {
	return strings.ContainsAny(topic, "+#")
}

func decodePublish(version, flags byte, body []byte) (Packet, error) {
	p := &Publish{}
	if err := decodePublishInto(p, version, flags, body); err != nil {
		return nil, err
	}
	return p, nil
}

// DecodePublish is Decode for a frame known to be a PUBLISH, decoding into
// p (which it first resets) instead of allocating a Publish: a broker can
// reuse one struct for every inbound message. The topic, payload and
// properties point into one copy of the body, as with Decode; p's previous
// contents are not reused.
func DecodePublish(version byte, frame []byte, p *Publish) error {
	if len(frame) < 2 || Type(frame[0]>>4) != PUBLISH {
		return Errorf(MalformedPacket, "not a PUBLISH frame")
	}
	remaining, n := readVarint(frame[1:])
	if n == 0 {
		return Errorf(MalformedPacket, "bad remaining length")
	}
	body := frame[1+n:]
	if int(remaining) != len(body) {
		return Errorf(MalformedPacket, "remaining length %d, but %d bytes follow", remaining, len(body))
	}
	if err := checkFrame(version, frame, body); err != nil {
		return err
	}
	return decodePublishInto(p, version, frame[0]&0x0F, body)
}

func decodePublishInto(p *Publish, version, flags byte, body []byte) error {
	*p = Publish{
		Dup:    flags&0x08 != 0,
		QoS:    flags >> 1 & 0x03,
		Retain: flags&0x01 != 0,
	}
	if p.QoS == 3 {
		return Errorf(MalformedPacket, "PUBLISH with QoS 3") // [MQTT-3.3.1-4]
	}
	if p.Dup && p.QoS == 0 {
		return Errorf(MalformedPacket, "PUBLISH with QoS 0 and DUP set") // [MQTT-3.3.1-2]
	}
	r := ownedReader(body)
	var err error
	if p.Topic, err = r.string(); err != nil {
		return err
	}
	if hasWildcard(p.Topic) {
		// [MQTT-3.3.2-2] no reason code is named; Topic Name invalid is
		// the one that says what is wrong.
		return Errorf(TopicNameInvalid, "PUBLISH topic %q contains a wildcard", p.Topic)
	}
	if p.QoS > 0 {
		if p.PacketID, err = r.packetID(PUBLISH); err != nil {
			return err
		}
	}
	if version == Version5 {
		if err := r.decodeProps(ctxPublish, &p.Props); err != nil {
			return err
		}
	}
	if p.Topic == "" {
		// [MQTT-4.7.3-1] topic names are at least one character; in v5 an
		// empty name is allowed only with a Topic Alias (3.3.2.1).
		if version != Version5 {
			return Errorf(MalformedPacket, "PUBLISH with an empty topic")
		}
		if p.Props.TopicAlias == 0 {
			return Errorf(ProtocolError, "PUBLISH with an empty topic and no topic alias")
		}
	}
	if r.left() > 0 {
		p.Payload = r.b[r.off:len(r.b):len(r.b)]
	}
	return nil
}

// Valid v5 reason codes per packet (section 2.4 and each packet's table).
var (
	pubackCodes  = codeSet(Success, NoMatchingSubscribers, UnspecifiedError, ImplementationSpecific, NotAuthorized, TopicNameInvalid, PacketIDInUse, QuotaExceeded, PayloadFormatInvalid)
	pubrelCodes  = codeSet(Success, PacketIDNotFound)
	subackCodes  = codeSet(Success, GrantedQoS1, GrantedQoS2, UnspecifiedError, ImplementationSpecific, NotAuthorized, TopicFilterInvalid, PacketIDInUse, QuotaExceeded, SharedSubNotSupported, SubscriptionIDsNotSupported, WildcardSubNotSupported)
	unsubCodes   = codeSet(Success, NoSubscriptionExisted, UnspecifiedError, ImplementationSpecific, NotAuthorized, TopicFilterInvalid, PacketIDInUse)
	authCodes    = codeSet(Success, ContinueAuthentication, ReAuthenticate)
	connackCodes = codeSet(Success, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecific, UnsupportedProtocolVersion, ClientIDNotValid, BadUsernameOrPassword, NotAuthorized, ServerUnavailable, ServerBusy, Banned, BadAuthenticationMethod, TopicNameInvalid, PacketTooLarge, QuotaExceeded, PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved, ConnectionRateExceeded)
	disconnCodes = codeSet(Success, DisconnectWithWill, UnspecifiedError, MalformedPacket, ProtocolError, ImplementationSpecific, NotAuthorized, ServerBusy, ServerShuttingDown, KeepAliveTimeout, SessionTakenOver, TopicFilterInvalid, TopicNameInvalid, ReceiveMaximumExceeded, TopicAliasInvalid, PacketTooLarge, MessageRateTooHigh, QuotaExceeded, AdministrativeAction, PayloadFormatInvalid, RetainNotSupported, QoSNotSupported, UseAnotherServer, ServerMoved, SharedSubNotSupported, ConnectionRateExceeded, MaximumConnectTime, SubscriptionIDsNotSupported, WildcardSubNotSupported)
	suback3Codes = codeSet(0, 1, 2, SubackFailure311)
)

// ValidDisconnectCode reports whether rc is one of the DISCONNECT Reason
// Codes (v5 §3.14.2.1), the only codes a DISCONNECT may carry
// [MQTT-3.14.2-1].
func ValidDisconnectCode(rc ReasonCode) bool { return disconnCodes.has(rc) }

// reasonSet is a set of reason codes, one bit per code.
type reasonSet [4]uint64

func codeSet(codes ...ReasonCode) (s reasonSet) {
	for _, c := range codes {
		s[c>>6] |= 1 << (c & 63)
	}
	return s
}

func (s *reasonSet) has(c ReasonCode) bool { return s[c>>6]&(1<<(c&63)) != 0 }

func (r *reader) reasonCode(t Type, valid *reasonSet) (ReasonCode, error) {
	b, err := r.byte()
	if err == nil && !valid.has(ReasonCode(b)) {
		return 0, Errorf(MalformedPacket, "%v: invalid reason code 0x%02X", t, b)
	}
	return ReasonCode(b), err
}

func decodeAck(version byte, t Type, body []byte) (Packet, error) {
	a := &Ack{Kind: t}
	if version != Version5 || len(body) <= 3 {
		// Short forms need no copy: no strings.
		r := reader{b: body}
		var err error
		if a.PacketID, err = r.packetID(t); err != nil {
			return nil, err
		}
		if version != Version5 {
			return finish(a, &r, t) // 3.1.1: exactly two bytes
		}
		if r.left() == 0 {
			return a, nil // 3.4.2.1: no reason code means Success
		}
		codes := &pubackCodes
		if t == PUBREL || t == PUBCOMP {
			codes = &pubrelCodes
		}
		if a.ReasonCode, err = r.reasonCode(t, codes); err != nil {
			return nil, err
		}
		return finish(a, &r, t)
	}
	r := ownedReader(body)
	var err error
	if a.PacketID, err = r.packetID(t); err != nil {
		return nil, err
	}
	codes := &pubackCodes
	if t == PUBREL || t == PUBCOMP {
		codes = &pubrelCodes
	}
	if a.ReasonCode, err = r.reasonCode(t, codes); err != nil {
		return nil, err
	}
	if err := r.decodeProps(ctxAck, &a.Props); err != nil {
		return nil, err
	}
	return finish(a, &r, t)
}

func decodeDisconnect(version byte, body []byte) (Packet, error) {
	p := &Disconnect{}
	if len(body) == 0 {
		return p, nil // v5 3.14.2.1: no reason code means Normal disconnection
	}
	if version != Version5 {
		return nil, Errorf(MalformedPacket, "DISCONNECT with a body") // 3.14: no variable header
	}
	r := ownedReader(body)
	var err error
	if p.ReasonCode, err = r.reasonCode(DISCONNECT, &disconnCodes); err != nil {
		return nil, err
	}
	if r.left() > 0 {
		if err := r.decodeProps(ctxDisconnect, &p.Props); err != nil {
			return nil, err
		}
	}
	return finish(p, &r, DISCONNECT)
}

func decodeAuth(body []byte) (Packet, error) {
	p := &Auth{}
	if len(body) == 0 {
		return p, nil // 3.15.2.1: no reason code means Success
	}
	r := ownedReader(body)
	var err error
	if p.ReasonCode, err = r.reasonCode(AUTH, &authCodes); err != nil {
		return nil, err
	}
	if r.left() > 0 {
		if err := r.decodeProps(ctxAuth, &p.Props); err != nil {
			return nil, err
		}
	}
	return finish(p, &r, AUTH)
}

// finish returns p if r has been read to its end, else the error alone.
func finish(p Packet, r *reader, t Type) (Packet, error) {
	if err := r.end(t); err != nil {
		return nil, err
	}
	return p, nil
}
