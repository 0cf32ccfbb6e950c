package packet

import "encoding/binary"

// CONNECT flag bits (3.1.2.3).
const (
	connFlagReserved   = 0x01
	connFlagCleanStart = 0x02
	connFlagWill       = 0x04
	connFlagWillRetain = 0x20
	connFlagPassword   = 0x40
	connFlagUsername   = 0x80
)

// protocolName returns the protocol name a protocol level is sent with.
func protocolName(level byte) string {
	if level == Version31 {
		return "MQIsdp"
	}
	return "MQTT"
}

func decodeConnect(body []byte) (Packet, error) {
	p := &Connect{}
	if err := decodeConnectInto(p, body); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeConnectInto(p *Connect, body []byte) error {
	r := ownedReader(body)
	*p = Connect{}
	var err error
	if p.ProtocolName, err = r.string(); err != nil {
		return err
	}
	if p.ProtocolVersion, err = r.byte(); err != nil {
		return err
	}
	// [MQTT-3.1.2-1] [MQTT-3.1.2-2] an unknown protocol name or level is
	// answered with Unsupported Protocol Version (return code 1 in 3.1.1).
	// The name is checked first since it says how to read the level.
	switch {
	case p.ProtocolName == "MQTT" && (p.ProtocolVersion == Version311 || p.ProtocolVersion == Version5):
	case p.ProtocolName == "MQIsdp" && p.ProtocolVersion == Version31:
	default:
		return Errorf(UnsupportedProtocolVersion, "unsupported protocol %q level %d", p.ProtocolName, p.ProtocolVersion)
	}
	v5 := p.ProtocolVersion == Version5
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags&connFlagReserved != 0 {
		return Errorf(MalformedPacket, "CONNECT reserved flag set") // [MQTT-3.1.2-3]
	}
	p.CleanStart = flags&connFlagCleanStart != 0
	p.WillFlag = flags&connFlagWill != 0
	p.WillQoS = flags >> 3 & 0x03
	p.WillRetain = flags&connFlagWillRetain != 0
	p.UsernameFlag = flags&connFlagUsername != 0
	p.PasswordFlag = flags&connFlagPassword != 0
	if !p.WillFlag && (p.WillQoS != 0 || p.WillRetain) {
		// 3.1.1 [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15];
		// 5.0 [MQTT-3.1.2-11] [MQTT-3.1.2-13].
		return Errorf(MalformedPacket, "CONNECT will QoS or retain set without will flag")
	}
	if p.WillQoS == 3 {
		// 3.1.1 [MQTT-3.1.2-14]; 5.0 [MQTT-3.1.2-12].
		return Errorf(MalformedPacket, "CONNECT will QoS 3")
	}
	if !v5 && p.PasswordFlag && !p.UsernameFlag {
		// [MQTT-3.1.2-22]; MQTT 5 allows a password alone (3.1.2.9).
		return Errorf(MalformedPacket, "CONNECT password flag without username flag")
	}
	if p.KeepAlive, err = r.uint16(); err != nil {
		return err
	}
	if v5 {
		if err := r.decodeProps(ctxConnect, &p.Props); err != nil {
			return err
		}
	}
	// [MQTT-3.1.3-1] payload order: client id, will properties, will
	// topic, will payload, user name, password.
	if p.ClientID, err = r.string(); err != nil {
		return err
	}
	if p.WillFlag {
		if v5 {
			if err := r.decodeProps(ctxWill, &p.WillProps); err != nil {
				return err
			}
		}
		if p.WillTopic, err = r.string(); err != nil {
			return err
		}
		if p.WillTopic == "" {
			return Errorf(MalformedPacket, "CONNECT with an empty will topic") // [MQTT-4.7.3-1]
		}
		if hasWildcard(p.WillTopic) {
			return Errorf(TopicNameInvalid, "CONNECT will topic %q contains a wildcard", p.WillTopic) // [MQTT-3.3.2-2]
		}
		if p.WillPayload, err = r.optBinary(); err != nil {
			return err
		}
	}
	if p.UsernameFlag {
		if p.Username, err = r.string(); err != nil { // [MQTT-3.1.2-19]
			return err
		}
	}
	if p.PasswordFlag {
		if p.Password, err = r.optBinary(); err != nil { // [MQTT-3.1.2-21]
			return err
		}
	}
	return r.end(CONNECT)
}

func decodeConnack(version byte, body []byte) (Packet, error) {
	p := &Connack{}
	r := reader{b: body}
	if version == Version5 {
		r = ownedReader(body)
	}
	flags, err := r.byte()
	if err != nil {
		return nil, err
	}
	if flags&0xFE != 0 {
		return nil, Errorf(MalformedPacket, "CONNACK reserved flag bits set") // [MQTT-3.2.2-1]
	}
	p.SessionPresent = flags&0x01 != 0
	code, err := r.byte()
	if err != nil {
		return nil, err
	}
	p.ReasonCode = ReasonCode(code)
	if version != Version5 {
		if p.ReasonCode > ConnRefusedNotAuthorized {
			return nil, Errorf(MalformedPacket, "CONNACK return code %d", code) // 3.2.2.3: 6-255 reserved
		}
		if p.ReasonCode != ConnAccepted && p.SessionPresent {
			return nil, Errorf(MalformedPacket, "CONNACK refusal with session present") // [MQTT-3.2.2-4]
		}
		return finish(p, &r, CONNACK)
	}
	if !connackCodes.has(p.ReasonCode) {
		return nil, Errorf(MalformedPacket, "CONNACK reason code 0x%02X", code)
	}
	if p.ReasonCode != Success && p.SessionPresent {
		return nil, Errorf(ProtocolError, "CONNACK refusal with session present") // [MQTT-3.2.2-6]
	}
	if err := r.decodeProps(ctxConnack, &p.Props); err != nil {
		return nil, err
	}
	return finish(p, &r, CONNACK)
}

// measureConnect returns the remaining length of p and records the sizes of
// its property sections in s.
func measureConnect(s *sizes, version byte, p *Connect) (int, error) {
	level := p.ProtocolVersion
	if level == 0 {
		level = version
	}
	s.level = level
	name := p.ProtocolName
	if name == "" {
		name = protocolName(level)
	}
	if p.WillQoS > 2 {
		return 0, Errorf(MalformedPacket, "CONNECT will QoS %d", p.WillQoS)
	}
	if !p.WillFlag && (p.WillQoS != 0 || p.WillRetain) {
		return 0, Errorf(MalformedPacket, "CONNECT will QoS or retain set without will flag")
	}
	if level != Version5 && p.PasswordFlag && !p.UsernameFlag {
		return 0, Errorf(MalformedPacket, "CONNECT password flag without username flag")
	}
	for _, f := range [...]string{name, p.ClientID, p.WillTopic, p.Username} {
		if len(f) > 0xFFFF {
			return 0, Errorf(MalformedPacket, "CONNECT string longer than 65535 bytes")
		}
	}
	if len(p.WillPayload) > 0xFFFF || len(p.Password) > 0xFFFF {
		return 0, Errorf(MalformedPacket, "CONNECT binary field longer than 65535 bytes")
	}
	n := 2 + len(name) + 1 + 1 + 2 + 2 + len(p.ClientID)
	if level == Version5 {
		pn, err := s.propSection(ctxConnect, &p.Props)
		if err != nil {
			return 0, err
		}
		n += pn
	}
	if p.WillFlag {
		n += 2 + len(p.WillTopic) + 2 + len(p.WillPayload)
		if level == Version5 {
			wn, present := propsSize(&p.WillProps)
			if present != 0 {
				if err := checkProps(ctxWill, &p.WillProps, present); err != nil {
					return 0, err
				}
			}
			s.willProps = wn
			n += varintLen(wn) + wn
		}
	}
	if p.UsernameFlag {
		n += 2 + len(p.Username)
	}
	if p.PasswordFlag {
		n += 2 + len(p.Password)
	}
	return n, nil
}

func appendConnect(dst []byte, p *Connect, s *sizes) []byte {
	level := s.level
	name := p.ProtocolName
	if name == "" {
		name = protocolName(level)
	}
	flags := p.WillQoS << 3
	if p.CleanStart {
		flags |= connFlagCleanStart
	}
	if p.WillFlag {
		flags |= connFlagWill
	}
	if p.WillRetain {
		flags |= connFlagWillRetain
	}
	if p.PasswordFlag {
		flags |= connFlagPassword
	}
	if p.UsernameFlag {
		flags |= connFlagUsername
	}
	dst = appendHeader(dst, byte(CONNECT)<<4, s)
	dst = appendString(dst, name)
	dst = append(dst, level, flags)
	dst = binary.BigEndian.AppendUint16(dst, p.KeepAlive)
	if level == Version5 {
		dst = appendProps(dst, &p.Props, s.props)
	}
	dst = appendString(dst, p.ClientID)
	if p.WillFlag {
		if level == Version5 {
			dst = appendProps(dst, &p.WillProps, s.willProps)
		}
		dst = appendString(dst, p.WillTopic)
		dst = appendBinary(dst, p.WillPayload)
	}
	if p.UsernameFlag {
		dst = appendString(dst, p.Username)
	}
	if p.PasswordFlag {
		dst = appendBinary(dst, p.Password)
	}
	return dst
}

func appendConnack(dst []byte, version byte, p *Connack, s *sizes) []byte {
	dst = appendHeader(dst, byte(CONNACK)<<4, s)
	var flags byte
	rc := p.ReasonCode
	if p.SessionPresent && rc == Success {
		// [MQTT-3.2.2-4] (3.1.1), [MQTT-3.2.2-6] (5.0): a refusal never
		// has a session present.
		flags = 0x01
	}
	if version != Version5 && rc >= UnspecifiedError {
		rc = ConnackCode311(rc)
	}
	dst = append(dst, flags, byte(rc))
	if version == Version5 {
		dst = appendProps(dst, &p.Props, s.props)
	}
	return dst
}
