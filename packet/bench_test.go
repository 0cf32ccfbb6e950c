package packet

import "testing"

// smallPublish is a typical chat message: a short topic, QoS 1, 64 bytes.
func smallPublish() *Publish {
	return &Publish{QoS: 1, PacketID: 42, Topic: "chat/room/42", Payload: make([]byte, 64)}
}

func benchmarkDecodePublish(b *testing.B, version byte) {
	wire, err := Encode(nil, version, smallPublish())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(version, wire); err != nil {
			b.Fatal(err)
		}
	}
}

func benchmarkEncodePublish(b *testing.B, version byte, p *Publish) {
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(Size(version, p)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = Encode(buf[:0], version, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePublish311(b *testing.B) { benchmarkDecodePublish(b, Version311) }
func BenchmarkDecodePublish5(b *testing.B)   { benchmarkDecodePublish(b, Version5) }
func BenchmarkEncodePublish311(b *testing.B) { benchmarkEncodePublish(b, Version311, smallPublish()) }
func BenchmarkEncodePublish5(b *testing.B)   { benchmarkEncodePublish(b, Version5, smallPublish()) }

func BenchmarkEncodePublish5WithProps(b *testing.B) {
	p := smallPublish()
	p.Props = Properties{ContentType: "application/json", SubscriptionIDs: []uint32{7},
		User: []UserProperty{{"trace", "abc123"}}}
	benchmarkEncodePublish(b, Version5, p)
}

func BenchmarkDecodeSubscribe5(b *testing.B) {
	wire, err := Encode(nil, Version5, &Subscribe{PacketID: 1, Subscriptions: []Subscription{
		{Filter: "chat/room/+", QoS: 1}, {Filter: "presence/#"}}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(Version5, wire); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitFrame(b *testing.B) {
	wire, err := Encode(nil, Version311, smallPublish())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if n, err := SplitFrame(wire, 0); n != len(wire) || err != nil {
			b.Fatal(n, err)
		}
	}
}
