package packet

// maxFrameSize is the largest possible control packet: one type byte, a
// four-byte remaining length and the largest remaining length.
const maxFrameSize = 1 + 4 + MaxRemainingLength

// Errors returned by SplitFrame. They are values so that the transport's hot
// path never allocates; compare with errors.As and read Code.
var (
	errVarintTooLong = &Error{Code: MalformedPacket, Msg: "remaining length longer than 4 bytes"}
	errFrameTooLarge = &Error{Code: PacketTooLarge, Msg: "packet exceeds maximum packet size"}
)

// SplitFrame reports whether buf begins with a complete control packet. It
// returns the packet's total length (fixed header plus remaining length), or
// 0 and a nil error if more bytes are needed. A remaining length longer than
// four bytes is an *Error with MalformedPacket [MQTT-1.5.5]; one in more
// bytes than its value needs is left to Decode, which knows the protocol
// version (only MQTT 5 forbids it [MQTT-1.5.5-1]). A packet larger than
// maxSize is an *Error with PacketTooLarge, reported as soon as the header
// shows it, without waiting for the body ([MQTT-3.2.2-15], v5 §3.2.2.3.6).
// maxSize <= 0 means the protocol maximum. SplitFrame never allocates.
func SplitFrame(buf []byte, maxSize int) (n int, err error) {
	if maxSize <= 0 || maxSize > maxFrameSize {
		maxSize = maxFrameSize
	}
	if len(buf) < 2 {
		return 0, nil
	}
	var remaining, mult int = 0, 1
	for i := 1; ; i++ {
		if i > 4 {
			return 0, errVarintTooLong
		}
		if i >= len(buf) {
			// The header is incomplete, but what has been read so far is a
			// lower bound: refuse early when even that is too large.
			if 1+i+remaining > maxSize {
				return 0, errFrameTooLarge
			}
			return 0, nil
		}
		b := buf[i]
		remaining += int(b&0x7F) * mult
		if b&0x80 == 0 {
			n = 1 + i + remaining
			break
		}
		mult <<= 7
	}
	if n > maxSize {
		return 0, errFrameTooLarge
	}
	if n > len(buf) {
		return 0, nil
	}
	return n, nil
}

// readVarint decodes a variable byte integer from the start of b. It returns
// the value and the number of bytes used, or n == 0 if b is truncated or the
// integer is longer than four bytes.
func readVarint(b []byte) (v uint32, n int) {
	var shift uint
	for i := 0; i < 4 && i < len(b); i++ {
		v |= uint32(b[i]&0x7F) << shift
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
		shift += 7
	}
	return 0, 0
}

// readMinimalVarint is readVarint for the variable byte integers only MQTT
// 5 has (property lengths, Subscription Identifiers): n is 0 also when the
// value is not encoded in the fewest bytes [MQTT-1.5.5-1].
func readMinimalVarint(b []byte) (v uint32, n int) {
	v, n = readVarint(b)
	if n != varintLen(int(v)) {
		return 0, 0
	}
	return v, n
}

// appendVarint appends v as a variable byte integer. v must not exceed
// MaxRemainingLength.
func appendVarint(dst []byte, v uint32) []byte {
	for {
		b := byte(v & 0x7F)
		v >>= 7
		if v == 0 {
			return append(dst, b)
		}
		dst = append(dst, b|0x80)
	}
}

// varintLen is the number of bytes appendVarint writes for v.
func varintLen(v int) int {
	switch {
	case v < 128:
		return 1
	case v < 16384:
		return 2
	case v < 2097152:
		return 3
	default:
		return 4
	}
}

// PacketIDOffset returns the offset of the two packet identifier bytes in
// frame, an encoded PUBLISH, or -1 if the frame is QoS 0, is not a PUBLISH or
// is too short. Encode always writes the identifier at this offset, right
// after the topic name and before any v5 properties, so a broker fanning one
// message out can encode it once and, per subscriber, copy the bytes and
// overwrite frame[off:off+2] with that subscriber's identifier (big-endian)
// [MQTT-2.2.1-3].
func PacketIDOffset(frame []byte) int {
	if len(frame) < 2 || Type(frame[0]>>4) != PUBLISH || frame[0]&0x06 == 0 {
		return -1
	}
	_, n := readVarint(frame[1:])
	if n == 0 {
		return -1
	}
	off := 1 + n
	if off+2 > len(frame) {
		return -1
	}
	off += 2 + (int(frame[off])<<8 | int(frame[off+1]))
	if off+2 > len(frame) {
		return -1
	}
	return off
}
