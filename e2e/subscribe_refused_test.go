package e2e

import (
	"slices"
	"testing"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

// (v5 §3.2.2.3.11, §3.2.2.3.12, §3.2.2.3.13) an MQTT 5 SUBSCRIBE using a
// feature the CONNACK announced as not available is a Protocol Error, not
// a refused filter: the broker sends DISCONNECT 0xA2 (wildcards), 0x9E
// (shared subscriptions) or 0xA1 (subscription identifiers) and closes the
// connection [MQTT-4.13.1-1], and installs none of the packet's filters.
// A 3.1.1 client, whose CONNACK could not tell it, has such a filter
// refused with SUBACK 0x80 [MQTT-3.8.3-2] and stays connected.
func TestUnavailableFeatureSubscribeIsProtocolError_MQTT_4_13_1_1(t *testing.T) {
	t.Parallel()
	none := startBroker(t, func(o *broker.Options) {
		o.WildcardSubs, o.SharedSubs, o.SubIDs = false, false, false
	})
	sharedOnly := startBroker(t, func(o *broker.Options) { o.WildcardSubs = false })
	for _, tc := range []struct {
		name   string
		b      *testBroker
		filter string
		subIDs []uint32
		want   packet.ReasonCode
	}{
		{"single-level wildcard", none, "a/+", nil, packet.WildcardSubNotSupported},
		{"multi-level wildcard", none, "#", nil, packet.WildcardSubNotSupported},
		{"shared subscription", none, "$share/g/a", nil, packet.SharedSubNotSupported},
		{"wildcard in an available shared subscription", sharedOnly, "$share/g/a/#", nil, packet.WildcardSubNotSupported},
		{"subscription identifier", none, "a/b", []uint32{5}, packet.SubscriptionIDsNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "unavailable-" + tc.name
			byBroker := &tc.b.Server.Stats().DisconnectsByBroker[tc.want]
			before := byBroker.Load()
			cp := mqtttest.V5(id)
			cp.Props.SessionExpiry, cp.Props.HasSessionExpiry = 60, true // the session outlives the connection
			r, _ := connectRaw(t, tc.b.Addr, cp)
			// A valid filter first: the packet is in error, not one filter
			// of it, so that one is not installed either.
			r.Send(&packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: tc.subIDs},
				Subscriptions: []packet.Subscription{{Filter: "ok/x", QoS: 1}, {Filter: tc.filter}}})
			r.ExpectDisconnect(tc.want, waitFor)
			if snap, ok := tc.b.Server.Client(id, 0); !ok || snap.Subscriptions != 0 {
				t.Fatalf("session found %v with %d subscriptions, want 0", ok, snap.Subscriptions)
			}
			if n := byBroker.Load() - before; n != 1 {
				t.Fatalf("%d disconnects counted under 0x%02X, want 1", n, byte(tc.want))
			}
		})
	}

	r, _ := connectRaw(t, none.Addr, mqtttest.V311("unavailable-311"))
	codes := r.Subscribe(1, packet.Properties{},
		packet.Subscription{Filter: "a/+"},
		packet.Subscription{Filter: "$share/g/a"},
		packet.Subscription{Filter: "a/b", QoS: 1})
	if want := []packet.ReasonCode{packet.SubackFailure311, packet.SubackFailure311, packet.GrantedQoS1}; !slices.Equal(codes, want) {
		t.Fatalf("3.1.1 SUBACK %v, want %v", codes, want)
	}
	r.SubscribeOne("c/d", 0) // still connected
}

// MQTT 3.1 (level 3, "MQIsdp") has no SUBACK failure code: its payload is
// a vector of granted QoS levels (3.1 §3.9), and 0x80 is 3.1.1's
// [MQTT-3.9.3-2]. A 3.1 client whose filter is refused (ACL, invalid
// filter, subscription quota, a feature not offered) is closed without a
// SUBACK; the close is counted under the refusal's reason code, and the
// quota still counts what it refused.
func TestMQTT31RefusedSubscribeClosesConnectionWithoutSuback(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(o *broker.Options) {
		withDenyACL(o)
		o.MaxSubsPerClient = 2
		o.WildcardSubs = false
	})
	for _, tc := range []struct {
		name    string
		id      string // 3.1 client ids are at most 23 bytes
		filters []string
		want    packet.ReasonCode
	}{
		{"ACL denied", "v31-acl", []string{"public/a", "secret/x"}, packet.NotAuthorized},
		{"invalid filter", "v31-invalid", []string{"a/#/b"}, packet.TopicFilterInvalid},
		{"over the subscription quota", "v31-quota", []string{"q/1", "q/2", "q/3"}, packet.QuotaExceeded},
		{"wildcards not offered", "v31-wildcard", []string{"a/+"}, packet.WildcardSubNotSupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			byBroker := &b.Server.Stats().DisconnectsByBroker[tc.want]
			before := byBroker.Load()
			quotaBefore := b.Server.LimitStats().MaxSubscriptions.Load()
			r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version31, ClientID: tc.id, CleanStart: true})
			subs := make([]packet.Subscription, len(tc.filters))
			for i, f := range tc.filters {
				subs[i] = packet.Subscription{Filter: f, QoS: 1}
			}
			r.Send(&packet.Subscribe{PacketID: 1, Subscriptions: subs})
			if got := r.ExpectClosed(waitFor); len(got) != 0 {
				t.Fatalf("got %v before the close, want no SUBACK", got)
			}
			if n := byBroker.Load() - before; n != 1 {
				t.Fatalf("%d disconnects counted under 0x%02X, want 1", n, byte(tc.want))
			}
			wantQuota := int64(0)
			if tc.want == packet.QuotaExceeded {
				wantQuota = 1
			}
			if n := b.Server.LimitStats().MaxSubscriptions.Load() - quotaBefore; n != wantQuota {
				t.Fatalf("MaxSubscriptions counted %d, want %d", n, wantQuota)
			}
		})
	}

	// Filters all granted: the SUBACK as ever.
	r, _ := connectRaw(t, b.Addr, &packet.Connect{ProtocolVersion: packet.Version31, ClientID: "v31-ok", CleanStart: true})
	r.SubscribeOne("public/a", 1)
}
