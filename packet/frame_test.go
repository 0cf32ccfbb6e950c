package packet

import (
	"errors"
	"testing"
)

func TestSplitFrame(t *testing.T) {
	tests := []struct {
		name    string
		buf     []byte
		maxSize int
		want    int
		code    ReasonCode // 0: no error
	}{
		{"empty", nil, 0, 0, 0},
		{"type_byte_only", []byte{0xC0}, 0, 0, 0},
		{"pingreq", []byte{0xC0, 0x00}, 0, 2, 0},
		{"pingreq_then_next_packet", []byte{0xC0, 0x00, 0xD0}, 0, 2, 0},
		{"body_incomplete", []byte{0x30, 0x05, 0x00, 0x01}, 0, 0, 0},
		{"body_complete", []byte{0x30, 0x03, 0x00, 0x01, 't'}, 0, 5, 0},
		{"two_byte_length_incomplete_header", []byte{0x30, 0x80}, 0, 0, 0},
		{"two_byte_length_incomplete_body", []byte{0x30, 0x80, 0x01, 0x00}, 0, 0, 0},
		{"four_byte_length_maximum_waits_for_body", []byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 0, 0, 0},
		// [MQTT-1.5.5] at most four bytes.
		{"five_byte_length", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 0, 0, MalformedPacket},
		{"five_byte_length_partial", []byte{0x30, 0x80, 0x80, 0x80, 0x80}, 0, 0, MalformedPacket},
		{"exactly_max_size", []byte{0x30, 0x03, 0x00, 0x01, 't'}, 5, 5, 0},
		{"one_over_max_size", []byte{0x30, 0x03, 0x00, 0x01, 't'}, 4, 0, PacketTooLarge},
		{"too_large_from_header_alone", []byte{0x30, 0xFF, 0x7F}, 100, 0, PacketTooLarge},
		{"too_large_from_partial_header", []byte{0x30, 0xFF}, 100, 0, PacketTooLarge},
		{"partial_header_may_still_fit", []byte{0x30, 0xFF}, 1000, 0, 0},
		{"negative_max_is_protocol_max", []byte{0x30, 0x03, 0x00, 0x01, 't'}, -1, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := SplitFrame(tt.buf, tt.maxSize)
			if n != tt.want {
				t.Errorf("n = %d, want %d", n, tt.want)
			}
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("err = %v, want code 0x%02X", err, byte(tt.code))
			}
		})
	}
}

func TestSplitFrameDoesNotAllocate(t *testing.T) {
	bufs := [][]byte{
		{0x30, 0x03, 0x00, 0x01, 't'},
		{0x30, 0xFF, 0x7F},
		{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, b := range bufs {
			SplitFrame(b, 100)
		}
	})
	if allocs != 0 {
		t.Fatalf("SplitFrame allocated %v times per run", allocs)
	}
}

func TestVarintRoundTrip(t *testing.T) {
	for _, v := range []uint32{0, 1, 127, 128, 16383, 16384, 2097151, 2097152, MaxRemainingLength} {
		b := appendVarint(nil, v)
		if len(b) != varintLen(int(v)) {
			t.Errorf("varintLen(%d) = %d, appendVarint wrote %d bytes", v, varintLen(int(v)), len(b))
		}
		got, n := readVarint(b)
		if got != v || n != len(b) {
			t.Errorf("readVarint(% X) = %d, %d; want %d, %d", b, got, n, v, len(b))
		}
	}
}

func TestPacketIDOffsetLetsBrokerPatchEncodedPublish(t *testing.T) {
	tests := []struct {
		name    string
		version byte
		p       *Publish
	}{
		{"v311_qos1", Version311, &Publish{QoS: 1, Topic: "chat/room/1", Payload: []byte("hello")}},
		{"v5_qos2_props", Version5, &Publish{QoS: 2, Topic: "a", Payload: []byte("x"),
			Props: Properties{ContentType: "text/plain", User: []UserProperty{{"k", "v"}}}}},
		{"v5_qos1_long_topic", Version5, &Publish{QoS: 1, Topic: "t/" + string(repeat('x', 300))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			template, err := Encode(nil, tt.version, tt.p) // PacketID 0: patched below
			if err != nil {
				t.Fatal(err)
			}
			off := PacketIDOffset(template)
			if off < 0 {
				t.Fatalf("PacketIDOffset = %d", off)
			}
			frame := append([]byte(nil), template...)
			frame[off], frame[off+1] = 0xAB, 0xCD
			got, err := Decode(tt.version, frame)
			if err != nil {
				t.Fatal(err)
			}
			if id := got.(*Publish).PacketID; id != 0xABCD {
				t.Fatalf("patched PacketID = %#x, want 0xABCD", id)
			}
		})
	}
}

func repeat(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

func TestPacketIDOffsetIsMinusOneWithoutPacketID(t *testing.T) {
	for name, frame := range map[string][]byte{
		"qos0":        {0x30, 0x03, 0x00, 0x01, 't'},
		"not_publish": {0x40, 0x02, 0x00, 0x01},
		"truncated":   {0x32, 0x03, 0x00, 0x01, 't'},
		"empty":       nil,
	} {
		if off := PacketIDOffset(frame); off != -1 {
			t.Errorf("%s: PacketIDOffset = %d, want -1", name, off)
		}
	}
}
