package packet

import "encoding/binary"

// decodeOptions checks one SUBSCRIBE options byte.
func decodeOptions(version, o byte, s *Subscription) error {
	s.QoS = o & 0x03
	if version != Version5 {
		// [MQTT-3.8.3-4] (3.1.1) reserved bits set or QoS 3: malformed.
		if o&0xFC != 0 || s.QoS == 3 {
			return Errorf(MalformedPacket, "SUBSCRIBE options 0x%02X", o)
		}
		return nil
	}
	if o&0xC0 != 0 {
		return Errorf(MalformedPacket, "SUBSCRIBE options reserved bits set") // [MQTT-3.8.3-5]
	}
	if s.QoS == 3 {
		return Errorf(ProtocolError, "SUBSCRIBE with maximum QoS 3") // 3.8.3.1
	}
	s.NoLocal = o&0x04 != 0
	s.RetainAsPublished = o&0x08 != 0
	s.RetainHandling = o >> 4 & 0x03
	if s.RetainHandling == 3 {
		return Errorf(ProtocolError, "SUBSCRIBE with retain handling 3") // 3.8.3.1
	}
	return nil
}

func decodeSubscribe(version byte, body []byte) (Packet, error) {
	p := &Subscribe{}
	if err := decodeSubscribeInto(p, version, body); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeSubscribeInto(p *Subscribe, version byte, body []byte) error {
	*p = Subscribe{}
	r := ownedReader(body)
	var err error
	if p.PacketID, err = r.packetID(SUBSCRIBE); err != nil {
		return err
	}
	if version == Version5 {
		if err := r.decodeProps(ctxSubscribe, &p.Props); err != nil {
			return err
		}
	}
	// Count the pairs first so the slice is allocated once.
	count := 0
	for off := r.off; off < len(r.b); count++ {
		if len(r.b)-off < 2 {
			return Errorf(MalformedPacket, "SUBSCRIBE truncated")
		}
		off += 3 + int(binary.BigEndian.Uint16(r.b[off:]))
	}
	if count == 0 {
		// [MQTT-3.8.3-3] (3.1.1), [MQTT-3.8.3-2] (5.0): at least one filter.
		return Errorf(ProtocolError, "SUBSCRIBE with no topic filters")
	}
	p.Subscriptions = make([]Subscription, count)
	for i := range p.Subscriptions {
		s := &p.Subscriptions[i]
		if s.Filter, err = r.string(); err != nil {
			return err
		}
		o, err := r.byte()
		if err != nil {
			return err
		}
		if err := decodeOptions(version, o, s); err != nil {
			return err
		}
	}
	return r.end(SUBSCRIBE)
}

func decodeUnsubscribe(version byte, body []byte) (Packet, error) {
	p := &Unsubscribe{}
	r := ownedReader(body)
	var err error
	if p.PacketID, err = r.packetID(UNSUBSCRIBE); err != nil {
		return nil, err
	}
	if version == Version5 {
		if err := r.decodeProps(ctxUnsubscribe, &p.Props); err != nil {
			return nil, err
		}
	}
	count := 0
	for off := r.off; off < len(r.b); count++ {
		if len(r.b)-off < 2 {
			return nil, Errorf(MalformedPacket, "UNSUBSCRIBE truncated")
		}
		off += 2 + int(binary.BigEndian.Uint16(r.b[off:]))
	}
	if count == 0 {
		// [MQTT-3.10.3-2]: at least one filter.
		return nil, Errorf(ProtocolError, "UNSUBSCRIBE with no topic filters")
	}
	p.Filters = make([]string, count)
	for i := range p.Filters {
		if p.Filters[i], err = r.string(); err != nil {
			return nil, err
		}
	}
	return finish(p, &r, UNSUBSCRIBE)
}

// decodeCodes reads the rest of a SUBACK or UNSUBACK as reason codes.
func (r *reader) decodeCodes(t Type, valid *reasonSet) ([]ReasonCode, error) {
	if r.left() == 0 {
		// [MQTT-3.9.3-1] one code per filter, and SUBSCRIBE has at least
		// one; likewise UNSUBACK in v5 [MQTT-3.11.3-1].
		return nil, Errorf(ProtocolError, "%v with no reason codes", t)
	}
	codes := make([]ReasonCode, r.left())
	for i, b := range r.b[r.off:] {
		if !valid.has(ReasonCode(b)) {
			return nil, Errorf(MalformedPacket, "%v: invalid reason code 0x%02X", t, b) // [MQTT-3.9.3-2]
		}
		codes[i] = ReasonCode(b)
	}
	r.off = len(r.b)
	return codes, nil
}

func decodeSuback(version byte, body []byte) (Packet, error) {
	p := &Suback{}
	r := reader{b: body}
	if version == Version5 {
		r = ownedReader(body)
	}
	var err error
	if p.PacketID, err = r.packetID(SUBACK); err != nil {
		return nil, err
	}
	valid := &suback3Codes
	if version == Version5 {
		valid = &subackCodes
		if err := r.decodeProps(ctxSuback, &p.Props); err != nil {
			return nil, err
		}
	}
	if p.ReasonCodes, err = r.decodeCodes(SUBACK, valid); err != nil {
		return nil, err
	}
	return p, nil
}

func decodeUnsuback(version byte, body []byte) (Packet, error) {
	p := &Unsuback{}
	if version != Version5 {
		r := reader{b: body}
		var err error
		if p.PacketID, err = r.packetID(UNSUBACK); err != nil {
			return nil, err
		}
		return finish(p, &r, UNSUBACK) // 3.11: exactly two bytes
	}
	r := ownedReader(body)
	var err error
	if p.PacketID, err = r.packetID(UNSUBACK); err != nil {
		return nil, err
	}
	if err := r.decodeProps(ctxUnsuback, &p.Props); err != nil {
		return nil, err
	}
	if p.ReasonCodes, err = r.decodeCodes(UNSUBACK, &unsubCodes); err != nil {
		return nil, err
	}
	return p, nil
}

func appendSubscribe(dst []byte, version byte, p *Subscribe, s *sizes) []byte {
	dst = appendHeader(dst, byte(SUBSCRIBE)<<4|0x02, s) // [MQTT-3.8.1-1]
	dst = binary.BigEndian.AppendUint16(dst, p.PacketID)
	if version == Version5 {
		dst = appendProps(dst, &p.Props, s.props)
	}
	for i := range p.Subscriptions {
		sub := &p.Subscriptions[i]
		o := sub.QoS
		if version == Version5 {
			o |= sub.RetainHandling << 4
			if sub.NoLocal {
				o |= 0x04
			}
			if sub.RetainAsPublished {
				o |= 0x08
			}
		}
		dst = append(appendString(dst, sub.Filter), o)
	}
	return dst
}
