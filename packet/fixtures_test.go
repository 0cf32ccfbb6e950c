package packet

import (
	"bytes"
	"reflect"
	"testing"
)

// validFixture is a named wire form and the packet it decodes to. Encoding
// the packet must give back exactly the same bytes.
type validFixture struct {
	name    string
	version byte
	wire    []byte
	packet  Packet
}

var validFixtures = []validFixture{
	// CONNECT
	{"connect_31_minimal", Version31, []byte{
		0x10, 0x11,
		0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, // protocol name, level 3
		0x02, 0x00, 0x3C, // clean session, keepalive 60
		0x00, 0x03, 'c', 'i', 'd',
	}, &Connect{ProtocolName: "MQIsdp", ProtocolVersion: Version31, CleanStart: true, KeepAlive: 60, ClientID: "cid"}},
	{"connect_311_minimal", Version311, []byte{
		0x10, 0x0D,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x02, 0x00, 0x3C,
		0x00, 0x01, 'c',
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version311, CleanStart: true, KeepAlive: 60, ClientID: "c"}},
	{"connect_311_empty_client_id", Version311, []byte{
		0x10, 0x0C,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0x02, 0x00, 0x00,
		0x00, 0x00,
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version311, CleanStart: true}},
	{"connect_311_will_user_password", Version311, []byte{
		0x10, 0x1D,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04,
		0xF4, 0x00, 0x0A, // username, password, will retain, will QoS 2, will flag
		0x00, 0x01, 'c',
		0x00, 0x03, 'w', '/', 't', // will topic
		0x00, 0x02, 'h', 'i', // will payload
		0x00, 0x01, 'u',
		0x00, 0x02, 'p', 'w',
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version311, KeepAlive: 10, ClientID: "c",
		WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: "w/t", WillPayload: []byte("hi"),
		UsernameFlag: true, Username: "u", PasswordFlag: true, Password: []byte("pw")}},
	{"connect_5_minimal", Version5, []byte{
		0x10, 0x0E,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
		0x02, 0x00, 0x3C,
		0x00,
		0x00, 0x01, 'c',
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version5, CleanStart: true, KeepAlive: 60, ClientID: "c"}},
	// [MQTT-4.12.0-1] an empty Authentication Method is present, not absent.
	{"connect_5_empty_auth_method", Version5, []byte{
		0x10, 0x11,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
		0x02, 0x00, 0x3C,
		0x03, 0x15, 0x00, 0x00, // authentication method ""
		0x00, 0x01, 'c',
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version5, CleanStart: true, KeepAlive: 60, ClientID: "c",
		Props: Properties{HasAuthMethod: true}}},
	{"connect_5_props_will_password_only", Version5, []byte{
		0x10, 0x28,
		0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05,
		0x4C, 0x00, 0x00, // password, will QoS 1, will flag
		0x0A,                         // properties
		0x11, 0x00, 0x00, 0x00, 0x78, // session expiry 120
		0x17, 0x00, // request problem information 0
		0x21, 0x00, 0x10, // receive maximum 16
		0x00, 0x01, 'c',
		0x05, 0x18, 0x00, 0x00, 0x00, 0x05, // will delay 5
		0x00, 0x01, 't',
		0x00, 0x00, // empty will payload
		0x00, 0x03, 's', 'e', 'c',
	}, &Connect{ProtocolName: "MQTT", ProtocolVersion: Version5, ClientID: "c",
		Props:    Properties{SessionExpiry: 120, HasSessionExpiry: true, ReceiveMaximum: 16, HasRequestProblem: true},
		WillFlag: true, WillQoS: 1, WillProps: Properties{WillDelay: 5}, WillTopic: "t",
		PasswordFlag: true, Password: []byte("sec")}},

	// CONNACK
	{"connack_311_accepted_session_present", Version311, []byte{0x20, 0x02, 0x01, 0x00},
		&Connack{SessionPresent: true}},
	{"connack_311_refused_protocol", Version311, []byte{0x20, 0x02, 0x00, 0x01},
		&Connack{ReasonCode: ConnRefusedProtocolVersion}},
	{"connack_31_refused_identifier", Version31, []byte{0x20, 0x02, 0x00, 0x02},
		&Connack{ReasonCode: ConnRefusedIdentifier}},
	{"connack_5_success_no_props", Version5, []byte{0x20, 0x03, 0x00, 0x00, 0x00},
		&Connack{}},
	{"connack_5_props", Version5, []byte{
		0x20, 0x17, 0x00, 0x00,
		0x14,
		0x12, 0x00, 0x02, 'i', 'd', // assigned client id
		0x13, 0x00, 0x1E, // server keep alive 30
		0x22, 0x00, 0x0A, // topic alias maximum 10
		0x24, 0x01, // maximum QoS 1
		0x25, 0x00, // retain not available
		0x27, 0x00, 0x00, 0x10, 0x00, // maximum packet size 4096
	}, &Connack{Props: Properties{AssignedClientID: "id", ServerKeepAlive: 30, HasServerKeepAlive: true,
		TopicAliasMaximum: 10, MaximumQoS: 1, HasMaximumQoS: true, RetainAvailable: 0, HasRetainAvailable: true,
		MaximumPacketSize: 4096}}},
	{"connack_5_not_authorized", Version5, []byte{0x20, 0x03, 0x00, 0x87, 0x00},
		&Connack{ReasonCode: NotAuthorized}},

	// PUBLISH
	{"publish_311_qos0", Version311, []byte{0x30, 0x07, 0x00, 0x03, 'a', '/', 'b', 'h', 'i'},
		&Publish{Topic: "a/b", Payload: []byte("hi")}},
	{"publish_311_qos1_retain", Version311, []byte{0x33, 0x07, 0x00, 0x01, 't', 0x00, 0x0A, 'h', 'i'},
		&Publish{QoS: 1, Retain: true, Topic: "t", PacketID: 10, Payload: []byte("hi")}},
	{"publish_311_qos2_dup_empty_payload", Version311, []byte{0x3C, 0x05, 0x00, 0x01, 't', 0x12, 0x34},
		&Publish{Dup: true, QoS: 2, Topic: "t", PacketID: 0x1234}},
	{"publish_31_qos0", Version31, []byte{0x30, 0x04, 0x00, 0x01, 't', 'x'},
		&Publish{Topic: "t", Payload: []byte("x")}},
	{"publish_5_qos0_no_props", Version5, []byte{0x30, 0x05, 0x00, 0x01, 't', 0x00, 'x'},
		&Publish{Topic: "t", Payload: []byte("x")}},
	{"publish_5_qos1_props", Version5, []byte{
		0x32, 0x29, 0x00, 0x01, 't', 0x00, 0x01,
		0x22,
		0x01, 0x01, // payload format UTF-8
		0x02, 0x00, 0x00, 0x00, 0x3C, // message expiry 60
		0x03, 0x00, 0x04, 'j', 's', 'o', 'n', // content type
		0x08, 0x00, 0x01, 'r', // response topic
		0x09, 0x00, 0x01, 0xFF, // correlation data
		0x0B, 0x01, // subscription id 1
		0x0B, 0x80, 0x01, // subscription id 128
		0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v', // user property
		'x',
	}, &Publish{QoS: 1, Topic: "t", PacketID: 1, Payload: []byte("x"), Props: Properties{
		PayloadFormat: 1, MessageExpiry: 60, HasMessageExpiry: true, ContentType: "json", ResponseTopic: "r",
		CorrelationData: []byte{0xFF}, SubscriptionIDs: []uint32{1, 128}, User: []UserProperty{{"k", "v"}}}}},
	{"publish_5_topic_alias_empty_topic", Version5, []byte{0x30, 0x06, 0x00, 0x00, 0x03, 0x23, 0x00, 0x05},
		&Publish{Props: Properties{TopicAlias: 5}}},

	// PUBACK, PUBREC, PUBREL, PUBCOMP
	{"puback_311", Version311, []byte{0x40, 0x02, 0x00, 0x07}, &Ack{Kind: PUBACK, PacketID: 7}},
	{"pubrec_311", Version311, []byte{0x50, 0x02, 0x00, 0x07}, &Ack{Kind: PUBREC, PacketID: 7}},
	{"pubrel_311", Version311, []byte{0x62, 0x02, 0x00, 0x07}, &Ack{Kind: PUBREL, PacketID: 7}},
	{"pubcomp_311", Version311, []byte{0x70, 0x02, 0x00, 0x07}, &Ack{Kind: PUBCOMP, PacketID: 7}},
	{"puback_31", Version31, []byte{0x40, 0x02, 0xFF, 0xFF}, &Ack{Kind: PUBACK, PacketID: 0xFFFF}},
	{"puback_5_short", Version5, []byte{0x40, 0x02, 0x00, 0x07}, &Ack{Kind: PUBACK, PacketID: 7}},
	{"puback_5_reason_only", Version5, []byte{0x40, 0x03, 0x00, 0x07, 0x10},
		&Ack{Kind: PUBACK, PacketID: 7, ReasonCode: NoMatchingSubscribers}},
	{"pubrec_5_reason_props", Version5, []byte{0x50, 0x09, 0x00, 0x07, 0x97, 0x05, 0x1F, 0x00, 0x02, 'n', 'o'},
		&Ack{Kind: PUBREC, PacketID: 7, ReasonCode: QuotaExceeded, Props: Properties{ReasonString: "no"}}},
	{"pubrel_5_not_found", Version5, []byte{0x62, 0x03, 0x00, 0x07, 0x92},
		&Ack{Kind: PUBREL, PacketID: 7, ReasonCode: PacketIDNotFound}},
	{"pubcomp_5_short", Version5, []byte{0x70, 0x02, 0x00, 0x07}, &Ack{Kind: PUBCOMP, PacketID: 7}},

	// SUBSCRIBE
	{"subscribe_311_two_filters", Version311, []byte{
		0x82, 0x0C, 0x00, 0x01,
		0x00, 0x02, 'a', '#', 0x01,
		0x00, 0x02, 'b', '+', 0x02,
	}, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a#", QoS: 1}, {Filter: "b+", QoS: 2}}}},
	{"subscribe_31_one_filter", Version31, []byte{0x82, 0x06, 0x00, 0x02, 0x00, 0x01, 'a', 0x00},
		&Subscribe{PacketID: 2, Subscriptions: []Subscription{{Filter: "a"}}}},
	{"subscribe_5_options_and_id", Version5, []byte{
		0x82, 0x09, 0x00, 0x01,
		0x02, 0x0B, 0x2A, // subscription identifier 42
		0x00, 0x01, 'a', 0x2D, // QoS 1, no local, retain as published, retain handling 2
	}, &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{42}},
		Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}}},

	// SUBACK
	{"suback_311", Version311, []byte{0x90, 0x05, 0x00, 0x01, 0x00, 0x02, 0x80},
		&Suback{PacketID: 1, ReasonCodes: []ReasonCode{0, 2, SubackFailure311}}},
	{"suback_5_reason_string", Version5, []byte{0x90, 0x09, 0x00, 0x01, 0x04, 0x1F, 0x00, 0x01, 'x', 0x01, 0xA2},
		&Suback{PacketID: 1, Props: Properties{ReasonString: "x"}, ReasonCodes: []ReasonCode{GrantedQoS1, WildcardSubNotSupported}}},

	// UNSUBSCRIBE
	{"unsubscribe_311", Version311, []byte{0xA2, 0x08, 0x00, 0x03, 0x00, 0x01, 'a', 0x00, 0x01, 'b'},
		&Unsubscribe{PacketID: 3, Filters: []string{"a", "b"}}},
	{"unsubscribe_5_user_prop", Version5, []byte{
		0xA2, 0x0D, 0x00, 0x03,
		0x07, 0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v',
		0x00, 0x01, 'a',
	}, &Unsubscribe{PacketID: 3, Props: Properties{User: []UserProperty{{"k", "v"}}}, Filters: []string{"a"}}},

	// UNSUBACK
	{"unsuback_311", Version311, []byte{0xB0, 0x02, 0x00, 0x03}, &Unsuback{PacketID: 3}},
	{"unsuback_5", Version5, []byte{0xB0, 0x05, 0x00, 0x03, 0x00, 0x00, 0x11},
		&Unsuback{PacketID: 3, ReasonCodes: []ReasonCode{Success, NoSubscriptionExisted}}},

	// PINGREQ, PINGRESP
	{"pingreq_311", Version311, []byte{0xC0, 0x00}, &Pingreq{}},
	{"pingresp_311", Version311, []byte{0xD0, 0x00}, &Pingresp{}},
	{"pingreq_5", Version5, []byte{0xC0, 0x00}, &Pingreq{}},
	{"pingresp_31", Version31, []byte{0xD0, 0x00}, &Pingresp{}},

	// DISCONNECT
	{"disconnect_311", Version311, []byte{0xE0, 0x00}, &Disconnect{}},
	{"disconnect_31", Version31, []byte{0xE0, 0x00}, &Disconnect{}},
	{"disconnect_5_normal_short", Version5, []byte{0xE0, 0x00}, &Disconnect{}},
	{"disconnect_5_with_will", Version5, []byte{0xE0, 0x01, 0x04}, &Disconnect{ReasonCode: DisconnectWithWill}},
	{"disconnect_5_session_expiry", Version5, []byte{0xE0, 0x07, 0x00, 0x05, 0x11, 0x00, 0x00, 0x00, 0x00},
		&Disconnect{Props: Properties{HasSessionExpiry: true}}},
	{"disconnect_5_server_moved", Version5, []byte{0xE0, 0x08, 0x9D, 0x06, 0x1C, 0x00, 0x03, 'h', ':', '1'},
		&Disconnect{ReasonCode: ServerMoved, Props: Properties{ServerReference: "h:1"}}},

	// AUTH
	{"auth_5_success_short", Version5, []byte{0xF0, 0x00}, &Auth{}},
	{"auth_5_continue", Version5, []byte{
		0xF0, 0x0F, 0x18,
		0x0D,
		0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M', // authentication method
		0x16, 0x00, 0x02, 0x01, 0x02, // authentication data
	}, &Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: "SCRAM", HasAuthMethod: true, AuthData: []byte{1, 2}}}},
}

func TestDecodeValidFixtures(t *testing.T) {
	for _, f := range validFixtures {
		t.Run(f.name, func(t *testing.T) {
			if n, err := SplitFrame(f.wire, 0); n != len(f.wire) || err != nil {
				t.Fatalf("SplitFrame = %d, %v; want %d, nil", n, err, len(f.wire))
			}
			got, err := Decode(f.version, f.wire)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, f.packet) {
				t.Fatalf("Decode =\n%#v\nwant\n%#v", got, f.packet)
			}
		})
	}
}

func TestEncodeValidFixturesGivesSameBytes(t *testing.T) {
	for _, f := range validFixtures {
		t.Run(f.name, func(t *testing.T) {
			got, err := Encode(nil, f.version, f.packet)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, f.wire) {
				t.Fatalf("Encode = % X\nwant     % X", got, f.wire)
			}
			if n := Size(f.version, f.packet); n != len(f.wire) {
				t.Fatalf("Size = %d, want %d", n, len(f.wire))
			}
		})
	}
}

func TestDecodedPacketDoesNotAliasFrame(t *testing.T) {
	for _, f := range validFixtures {
		t.Run(f.name, func(t *testing.T) {
			frame := bytes.Clone(f.wire)
			got, err := Decode(f.version, frame)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for i := range frame {
				frame[i] = 0xEE // the transport reuses its buffer
			}
			if !reflect.DeepEqual(got, f.packet) {
				t.Fatalf("packet changed when frame was overwritten:\n%#v", got)
			}
		})
	}
}

// DecodeConnect and DecodeSubscribe into a reused struct give what Decode
// gives, errors included, for every fixture of their type.
func TestDecodeConnectSubscribeIntoMatchDecode(t *testing.T) {
	for _, f := range validFixtures {
		p, err := Decode(f.version, f.wire)
		checkDecodeInto(t, f.version, f.wire, p, err)
	}
	for _, f := range malformedFixtures {
		p, err := Decode(f.version, f.wire)
		checkDecodeInto(t, f.version, f.wire, p, err)
	}
	var c Connect
	if err := DecodeConnect([]byte{0xC0, 0}, &c); err == nil {
		t.Error("a PINGREQ accepted as a CONNECT")
	}
	var s Subscribe
	if err := DecodeSubscribe(Version311, []byte{0xC0, 0}, &s); err == nil {
		t.Error("a PINGREQ accepted as a SUBSCRIBE")
	}
}

// DecodePublish into one reused struct gives what Decode gives, for every
// PUBLISH fixture in turn, and nothing of an earlier packet survives in it.
func TestDecodePublishIntoReusedStructMatchesDecode(t *testing.T) {
	var p Publish
	n := 0
	for _, f := range validFixtures {
		want, ok := f.packet.(*Publish)
		if !ok {
			continue
		}
		n++
		if err := DecodePublish(f.version, f.wire, &p); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if !reflect.DeepEqual(&p, want) {
			t.Errorf("%s: DecodePublish gave %+v, want %+v", f.name, p, *want)
		}
	}
	if n < 2 {
		t.Fatalf("only %d PUBLISH fixtures", n)
	}
	if err := DecodePublish(Version311, []byte{0x30 | 0x06, 0}, &p); err == nil {
		t.Error("QoS 3 accepted")
	}
	if err := DecodePublish(Version311, []byte{0xC0, 0}, &p); err == nil {
		t.Error("a PINGREQ accepted as a PUBLISH")
	}
}
