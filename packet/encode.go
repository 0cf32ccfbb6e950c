package packet

import (
	"encoding/binary"
	"reflect"
)

// Encode appends the wire form of p for a connection speaking version to
// dst and returns the extended buffer. It does not allocate when dst has
// room (see Size). For CONNECT, p.ProtocolVersion says which protocol to
// speak; version is used only when it is 0.
//
// Fields a version cannot carry are left out: properties and reason codes
// before MQTT 5, so a v5 PUBLISH can be forwarded to a 3.1.1 subscriber as
// is. Before MQTT 5 a CONNACK reason code of 0x80 or above is sent as the
// closest 3.1.1 return code (ConnackCode311) and a SUBACK failure code as
// 0x80. A v5 ack whose reason is Success and which has no properties takes
// the two-byte short form (3.4.2.1); a v5 DISCONNECT or AUTH with reason 0
// and no properties has no body.
//
// Encode writes a PUBLISH packet identifier as given, even 0, so that a
// fan-out template can be patched per subscriber (see PacketIDOffset). It
// returns an *Error for a packet that cannot be encoded: QoS 3, DUP on QoS
// 0, a string longer than 65535 bytes, a property the packet may not carry,
// AUTH before MQTT 5, or a packet larger than the protocol allows.
func Encode(dst []byte, version byte, p Packet) ([]byte, error) {
	var s sizes
	if err := measure(&s, version, p); err != nil {
		return dst, err
	}
	switch p := p.(type) {
	case *Publish:
		return appendPublish(dst, version, p, &s), nil
	case *Ack:
		return appendAck(dst, version, p, &s), nil
	case *Connect:
		return appendConnect(dst, p, &s), nil
	case *Connack:
		return appendConnack(dst, version, p, &s), nil
	case *Subscribe:
		return appendSubscribe(dst, version, p, &s), nil
	case *Suback:
		dst = appendHeader(dst, byte(SUBACK)<<4, &s)
		dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
		if version == Version5 {
			dst = appendProps(dst, &p.Props, s.props)
			for _, c := range p.ReasonCodes {
				dst = append(dst, byte(c))
			}
			return dst, nil
		}
		for _, c := range p.ReasonCodes {
			if c >= SubackFailure311 {
				c = SubackFailure311 // [MQTT-3.9.3-2] the only 3.1.1 failure code
			}
			dst = append(dst, byte(c))
		}
		return dst, nil
	case *Unsubscribe:
		dst = appendHeader(dst, byte(UNSUBSCRIBE)<<4|0x02, &s) // [MQTT-3.10.1-1]
		dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
		if version == Version5 {
			dst = appendProps(dst, &p.Props, s.props)
		}
		for _, f := range p.Filters {
			dst = appendString(dst, f)
		}
		return dst, nil
	case *Unsuback:
		dst = appendHeader(dst, byte(UNSUBACK)<<4, &s)
		dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
		if version == Version5 {
			dst = appendProps(dst, &p.Props, s.props)
			for _, c := range p.ReasonCodes {
				dst = append(dst, byte(c))
			}
		}
		return dst, nil
	case *Pingreq:
		return append(dst, byte(PINGREQ)<<4, 0), nil
	case *Pingresp:
		return append(dst, byte(PINGRESP)<<4, 0), nil
	case *Disconnect:
		return appendReasonAndProps(dst, byte(DISCONNECT)<<4, p.ReasonCode, &p.Props, &s), nil
	case *Auth:
		return appendReasonAndProps(dst, byte(AUTH)<<4, p.ReasonCode, &p.Props, &s), nil
	}
	return dst, Errorf(ImplementationSpecific, "cannot encode %s", reflect.TypeOf(p))
}

// Size returns the exact number of bytes Encode writes for p, or -1 if
// Encode would return an error. A server uses it to honour a client's
// Maximum Packet Size before sending [MQTT-3.1.2-24].
func Size(version byte, p Packet) int {
	var s sizes
	if err := measure(&s, version, p); err != nil {
		return -1
	}
	return s.total()
}

// FitProps makes p fit within maxSize bytes by dropping, in this order, its
// Reason String and then its User Properties, which a sender must leave out
// rather than exceed the receiver's Maximum Packet Size ([MQTT-3.2.2-19]
// [MQTT-3.2.2-20] for CONNACK, [MQTT-3.14.2-3] [MQTT-3.14.2-4] for
// DISCONNECT, and the like for every packet that has them). It never
// changes a PUBLISH, whose properties belong to the application: a PUBLISH
// too large is discarded without being sent [MQTT-3.1.2-25]. It reports
// whether p now fits; maxSize <= 0 means no limit.
func FitProps(version byte, p Packet, maxSize int) bool {
	size := Size(version, p)
	if size < 0 {
		return false
	}
	if maxSize <= 0 || size <= maxSize {
		return true
	}
	if _, ok := p.(*Publish); ok || version != Version5 {
		return false
	}
	props := propsOf(p)
	if props == nil {
		return false
	}
	if props.ReasonString != "" {
		props.ReasonString = ""
		if size = Size(version, p); size <= maxSize {
			return true
		}
	}
	if props.User != nil {
		props.User = nil
		size = Size(version, p)
	}
	return size >= 0 && size <= maxSize
}

// typeOf is p.Type() without the interface call, so that Encode, Size and
// measure do not make every packet passed to them escape to the heap.
func typeOf(p Packet) Type {
	switch p := p.(type) {
	case *Connect:
		return CONNECT
	case *Connack:
		return CONNACK
	case *Publish:
		return PUBLISH
	case *Ack:
		return p.Kind
	case *Subscribe:
		return SUBSCRIBE
	case *Suback:
		return SUBACK
	case *Unsubscribe:
		return UNSUBSCRIBE
	case *Unsuback:
		return UNSUBACK
	case *Pingreq:
		return PINGREQ
	case *Pingresp:
		return PINGRESP
	case *Disconnect:
		return DISCONNECT
	case *Auth:
		return AUTH
	}
	return 0
}

// propsOf returns the properties of p, or nil if it has none.
func propsOf(p Packet) *Properties {
	switch p := p.(type) {
	case *Connect:
		return &p.Props
	case *Connack:
		return &p.Props
	case *Publish:
		return &p.Props
	case *Ack:
		return &p.Props
	case *Subscribe:
		return &p.Props
	case *Suback:
		return &p.Props
	case *Unsubscribe:
		return &p.Props
	case *Unsuback:
		return &p.Props
	case *Disconnect:
		return &p.Props
	case *Auth:
		return &p.Props
	}
	return nil
}

// sizes holds the lengths measure computes, so that Encode walks the
// properties only once to size them.
type sizes struct {
	body      int  // remaining length
	props     int  // property section without its length; -1 when absent
	willProps int  // CONNECT Will Properties without their length
	level     byte // CONNECT protocol level
}

func (s *sizes) total() int { return 1 + varintLen(s.body) + s.body }

// propSection sizes p for ctx and returns the length of the whole section,
// property length included.
func (s *sizes) propSection(ctx propCtx, p *Properties) (int, error) {
	n, present := propsSize(p)
	if present != 0 {
		if err := checkProps(ctx, p, present); err != nil {
			return 0, err
		}
	}
	s.props = n
	return varintLen(n) + n, nil
}

func measure(s *sizes, version byte, p Packet) error {
	if version != Version31 && version != Version311 && version != Version5 {
		if c, ok := p.(*Connect); !ok || c.ProtocolVersion == 0 || c.ProtocolVersion > Version5 {
			return Errorf(ImplementationSpecific, "unknown protocol version %d", version)
		}
	}
	v5 := version == Version5
	s.props = -1
	var err error
	n := 0
	switch p := p.(type) {
	case *Publish:
		if p.QoS > 2 {
			return Errorf(MalformedPacket, "PUBLISH with QoS %d", p.QoS) // [MQTT-3.3.1-4]
		}
		if p.Dup && p.QoS == 0 {
			return Errorf(MalformedPacket, "PUBLISH with QoS 0 and DUP set") // [MQTT-3.3.1-2]
		}
		if len(p.Topic) > 0xFFFF {
			return Errorf(MalformedPacket, "topic longer than 65535 bytes")
		}
		n = 2 + len(p.Topic) + len(p.Payload)
		if p.QoS > 0 {
			n += 2
		}
		if v5 {
			pn, err := s.propSection(ctxPublish, &p.Props)
			if err != nil {
				return err
			}
			n += pn
		}
	case *Ack:
		if p.Kind < PUBACK || p.Kind > PUBCOMP {
			return Errorf(ImplementationSpecific, "Ack of kind %v", p.Kind)
		}
		n = 2
		if v5 {
			pn, err := s.propSection(ctxAck, &p.Props)
			if err != nil {
				return err
			}
			switch {
			case s.props > 0:
				n += 1 + pn
			case p.ReasonCode != Success:
				n++
			}
		}
	case *Connect:
		if n, err = measureConnect(s, version, p); err != nil {
			return err
		}
	case *Connack:
		n = 2
		if v5 {
			pn, err := s.propSection(ctxConnack, &p.Props)
			if err != nil {
				return err
			}
			n += pn
		}
	case *Subscribe:
		n = 2 + 3*len(p.Subscriptions)
		for i := range p.Subscriptions {
			sub := &p.Subscriptions[i]
			if sub.QoS > 2 || sub.RetainHandling > 2 {
				return Errorf(MalformedPacket, "subscription options QoS %d, retain handling %d", sub.QoS, sub.RetainHandling)
			}
			if len(sub.Filter) > 0xFFFF {
				return Errorf(MalformedPacket, "topic filter longer than 65535 bytes")
			}
			n += len(sub.Filter)
		}
		if v5 {
			pn, err := s.propSection(ctxSubscribe, &p.Props)
			if err != nil {
				return err
			}
			n += pn
		}
	case *Suback:
		n = 2 + len(p.ReasonCodes)
		if v5 {
			pn, err := s.propSection(ctxSuback, &p.Props)
			if err != nil {
				return err
			}
			n += pn
		}
	case *Unsubscribe:
		n = 2 + 2*len(p.Filters)
		for _, f := range p.Filters {
			if len(f) > 0xFFFF {
				return Errorf(MalformedPacket, "topic filter longer than 65535 bytes")
			}
			n += len(f)
		}
		if v5 {
			pn, err := s.propSection(ctxUnsubscribe, &p.Props)
			if err != nil {
				return err
			}
			n += pn
		}
	case *Unsuback:
		n = 2
		if v5 {
			pn, err := s.propSection(ctxUnsuback, &p.Props)
			if err != nil {
				return err
			}
			n += pn + len(p.ReasonCodes)
		}
	case *Pingreq, *Pingresp:
	case *Disconnect:
		if v5 {
			if n, err = s.reasonAndProps(ctxDisconnect, p.ReasonCode, &p.Props); err != nil {
				return err
			}
		}
	case *Auth:
		if !v5 {
			return Errorf(ProtocolError, "AUTH before MQTT 5")
		}
		if n, err = s.reasonAndProps(ctxAuth, p.ReasonCode, &p.Props); err != nil {
			return err
		}
	default:
		return Errorf(ImplementationSpecific, "cannot encode %s", reflect.TypeOf(p))
	}
	if n > MaxRemainingLength {
		return Errorf(PacketTooLarge, "%v remaining length %d exceeds the protocol maximum", typeOf(p), n)
	}
	s.body = n
	return nil
}

// reasonAndProps sizes the body of a v5 DISCONNECT or AUTH: empty for
// reason 0 and no properties, else the reason code and, if any, properties.
func (s *sizes) reasonAndProps(ctx propCtx, rc ReasonCode, p *Properties) (int, error) {
	pn, err := s.propSection(ctx, p)
	if err != nil {
		return 0, err
	}
	switch {
	case s.props > 0:
		return 1 + pn, nil
	case rc != Success:
		return 1, nil
	}
	return 0, nil
}

func appendReasonAndProps(dst []byte, header byte, rc ReasonCode, p *Properties, s *sizes) []byte {
	dst = appendHeader(dst, header, s)
	if s.body > 0 {
		dst = append(dst, byte(rc))
	}
	if s.body > 1 {
		dst = appendProps(dst, p, s.props)
	}
	return dst
}

func appendHeader(dst []byte, first byte, s *sizes) []byte {
	return appendVarint(append(dst, first), uint32(s.body))
}

func appendString(dst []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(s))), s...)
}

func appendBinary(dst []byte, b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(dst, uint16(len(b))), b...)
}

func appendPublish(dst []byte, version byte, p *Publish, s *sizes) []byte {
	first := byte(PUBLISH)<<4 | p.QoS<<1
	if p.Dup {
		first |= 0x08
	}
	if p.Retain {
		first |= 0x01
	}
	dst = appendHeader(dst, first, s)
	dst = appendString(dst, p.Topic)
	if p.QoS > 0 {
		// PacketIDOffset relies on the identifier following the topic.
		dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
	}
	if version == Version5 {
		dst = appendProps(dst, &p.Props, s.props)
	}
	return append(dst, p.Payload...)
}

func appendAck(dst []byte, version byte, p *Ack, s *sizes) []byte {
	first := byte(p.Kind) << 4
	if p.Kind == PUBREL {
		first |= 0x02 // [MQTT-3.6.1-1]
	}
	dst = appendHeader(dst, first, s)
	dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
	if version == Version5 && s.body > 2 {
		dst = append(dst, byte(p.ReasonCode))
		if s.body > 3 {
			dst = appendProps(dst, &p.Props, s.props)
		}
	}
	return dst
}
