package packet

import (
	"reflect"
	"testing"
)

// FuzzSplitFrame checks that SplitFrame never panics, never claims more
// bytes than it was given or than maxSize allows, and cuts the same frame
// from a buffer and from that frame alone.
func FuzzSplitFrame(f *testing.F) {
	for _, fx := range validFixtures {
		f.Add(fx.wire, 0)
	}
	for _, fx := range malformedFixtures {
		f.Add(fx.wire, 16)
	}
	f.Add([]byte{0x30, 0xFF, 0xFF, 0xFF, 0x7F}, 0)
	f.Fuzz(func(t *testing.T, data []byte, maxSize int) {
		n, err := SplitFrame(data, maxSize)
		if err != nil {
			if _, ok := err.(*Error); !ok || n != 0 {
				t.Fatalf("SplitFrame = %d, %v (%T)", n, err, err)
			}
			return
		}
		if n < 0 || n > len(data) || (n > 0 && n < 2) {
			t.Fatalf("SplitFrame(% X) = %d", data, n)
		}
		if maxSize > 0 && n > maxSize {
			t.Fatalf("SplitFrame = %d, above maxSize %d", n, maxSize)
		}
		if n > 0 {
			if m, err := SplitFrame(data[:n], maxSize); m != n || err != nil {
				t.Fatalf("SplitFrame(frame) = %d, %v; want %d", m, err, n)
			}
		}
	})
}

// FuzzDecode checks, for each protocol version, that Decode never panics,
// fails only with an *Error, and that whatever it accepts re-encodes to a
// frame that decodes to the same packet, without aliasing the input.
func FuzzDecode(f *testing.F) {
	for _, fx := range validFixtures {
		f.Add(fx.version, fx.wire)
	}
	for _, fx := range malformedFixtures {
		f.Add(fx.version, fx.wire)
	}
	for _, version := range []byte{Version31, Version311, Version5} {
		for _, p := range roundTripPackets(version) {
			wire, err := Encode(nil, version, p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(version, wire)
		}
	}
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		version = Version31 + version%3
		p, err := Decode(version, data)
		checkDecodeInto(t, version, data, p, err)
		if err != nil {
			if _, ok := err.(*Error); !ok || p != nil {
				t.Fatalf("Decode = %v, %v (%T)", p, err, err)
			}
			return
		}
		if n, err := SplitFrame(data, 0); n != len(data) || err != nil {
			t.Fatalf("Decode accepted % X but SplitFrame = %d, %v", data, n, err)
		}
		if c, ok := p.(*Connect); ok {
			version = c.ProtocolVersion
		}
		wire, err := Encode(nil, version, p)
		if err != nil {
			t.Fatalf("Encode(Decode(% X)) = %v", data, err)
		}
		if n := Size(version, p); n != len(wire) {
			t.Fatalf("Size = %d, Encode wrote %d", n, len(wire))
		}
		for i := range data {
			data[i] ^= 0xFF // the decoded packet must not alias its frame
		}
		again, err := Decode(version, wire)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))) = %v\nencoded % X\npacket %#v", err, wire, p)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("unstable round trip:\nfirst  %#v\nsecond %#v", p, again)
		}
	})
}

// checkDecodeInto checks that DecodeConnect and DecodeSubscribe, into a
// struct still holding an earlier packet, agree with Decode (p, err) on
// data.
func checkDecodeInto(t *testing.T, version byte, data []byte, p Packet, err error) {
	t.Helper()
	if len(data) == 0 {
		return
	}
	var got Packet
	var gotErr error
	switch Type(data[0] >> 4) {
	case CONNECT:
		c := &Connect{ClientID: "stale", Password: []byte("stale"), WillFlag: true, Props: Properties{ReasonString: "stale"}}
		got, gotErr = c, DecodeConnect(data, c)
	case SUBSCRIBE:
		s := &Subscribe{PacketID: 9, Subscriptions: []Subscription{{Filter: "stale"}}, Props: Properties{SubscriptionIDs: []uint32{7}}}
		got, gotErr = s, DecodeSubscribe(version, data, s)
	default:
		return
	}
	if (err == nil) != (gotErr == nil) {
		t.Fatalf("% X: Decode error %v, decoding into a struct %v", data, err, gotErr)
	}
	if err != nil {
		if err.Error() != gotErr.Error() {
			t.Fatalf("% X: Decode error %q, decoding into a struct %q", data, err, gotErr)
		}
		return
	}
	if !reflect.DeepEqual(p, got) {
		t.Fatalf("% X: decoding into a reused struct gave\n%#v\nwant\n%#v", data, got, p)
	}
}
