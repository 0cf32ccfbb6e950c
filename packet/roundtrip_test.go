package packet

import (
	"errors"
	"reflect"
	"testing"
)

// fullProps returns Properties with every property ctx allows set to a
// value other than its default, so a round trip exercises each one.
func fullProps(ctx propCtx) Properties {
	all := Properties{
		PayloadFormat: 1, MessageExpiry: 3600, HasMessageExpiry: true,
		ContentType: "application/json", ResponseTopic: "reply/to/me",
		CorrelationData: []byte{0xC0, 0x11}, SubscriptionIDs: []uint32{7, MaxRemainingLength},
		SessionExpiry: 0xFFFFFFFF, HasSessionExpiry: true, AssignedClientID: "auto-123",
		ServerKeepAlive: 120, HasServerKeepAlive: true, AuthMethod: "SCRAM-SHA-1", HasAuthMethod: true, AuthData: []byte("client-first"),
		RequestProblemInfo: 0, HasRequestProblem: true, WillDelay: 30, RequestResponseInfo: 1,
		ResponseInfo: "resp/", ServerReference: "other:1883", ReasonString: "because",
		ReceiveMaximum: 20, TopicAliasMaximum: 50, TopicAlias: 9, MaximumQoS: 1, HasMaximumQoS: true,
		RetainAvailable: 1, HasRetainAvailable: true,
		User:              []UserProperty{{"a", "1"}, {"a", "2"}, {"é", "ü"}},
		MaximumPacketSize: 1 << 20, WildcardSubAvailable: 0, HasWildcardSub: true,
		SubIDAvailable: 1, HasSubIDAvailable: true, SharedSubAvailable: 0, HasSharedSub: true,
	}
	var p Properties
	allowed := allowedProps[ctx]
	pv, av := reflect.ValueOf(&p).Elem(), reflect.ValueOf(all)
	// Copy each field whose property the context allows; Has* flags follow
	// the field before them.
	fieldIDs := map[string]byte{
		"PayloadFormat": propPayloadFormat, "MessageExpiry": propMessageExpiry, "HasMessageExpiry": propMessageExpiry,
		"ContentType": propContentType, "ResponseTopic": propResponseTopic, "CorrelationData": propCorrelationData,
		"SubscriptionIDs": propSubscriptionID, "SessionExpiry": propSessionExpiry, "HasSessionExpiry": propSessionExpiry,
		"AssignedClientID": propAssignedClientID, "ServerKeepAlive": propServerKeepAlive, "HasServerKeepAlive": propServerKeepAlive,
		"AuthMethod": propAuthMethod, "HasAuthMethod": propAuthMethod, "AuthData": propAuthData, "RequestProblemInfo": propRequestProblemInfo,
		"HasRequestProblem": propRequestProblemInfo, "WillDelay": propWillDelay, "RequestResponseInfo": propRequestResponseInfo,
		"ResponseInfo": propResponseInfo, "ServerReference": propServerReference, "ReasonString": propReasonString,
		"ReceiveMaximum": propReceiveMaximum, "TopicAliasMaximum": propTopicAliasMaximum, "TopicAlias": propTopicAlias,
		"MaximumQoS": propMaximumQoS, "HasMaximumQoS": propMaximumQoS, "RetainAvailable": propRetainAvailable,
		"HasRetainAvailable": propRetainAvailable, "User": propUser, "MaximumPacketSize": propMaximumPacketSize,
		"WildcardSubAvailable": propWildcardSubAvailable, "HasWildcardSub": propWildcardSubAvailable,
		"SubIDAvailable": propSubIDAvailable, "HasSubIDAvailable": propSubIDAvailable,
		"SharedSubAvailable": propSharedSubAvailable, "HasSharedSub": propSharedSubAvailable,
	}
	typ := pv.Type()
	for i := 0; i < typ.NumField(); i++ {
		id, ok := fieldIDs[typ.Field(i).Name]
		if !ok {
			panic("fullProps: no identifier for field " + typ.Field(i).Name)
		}
		if allowed&bit(id) != 0 {
			pv.Field(i).Set(av.Field(i))
		}
	}
	if ctx == ctxSubscribe {
		p.SubscriptionIDs = p.SubscriptionIDs[:1]
	}
	return p
}

// roundTripPackets returns one packet of every type for version, with
// every property that version and packet allow.
func roundTripPackets(version byte) map[string]Packet {
	v5 := version == Version5
	props := func(ctx propCtx) Properties {
		if !v5 {
			return Properties{}
		}
		return fullProps(ctx)
	}
	reason := func(rc ReasonCode) ReasonCode {
		if !v5 {
			return 0
		}
		return rc
	}
	connect := &Connect{ProtocolName: protocolName(version), ProtocolVersion: version, CleanStart: true, KeepAlive: 300,
		Props: props(ctxConnect), ClientID: "client-1",
		WillFlag: true, WillQoS: 1, WillRetain: true, WillProps: props(ctxWill), WillTopic: "will/topic", WillPayload: []byte("bye"),
		UsernameFlag: true, Username: "user", PasswordFlag: true, Password: []byte{0, 1, 2}}
	connackCode := ReasonCode(ConnRefusedBadUserPass)
	if v5 {
		connackCode = BadUsernameOrPassword
	}
	subOpts := Subscription{Filter: "a/+/c", QoS: 2}
	if v5 {
		subOpts.NoLocal, subOpts.RetainAsPublished, subOpts.RetainHandling = true, true, 1
	}
	suback := []ReasonCode{GrantedQoS1, GrantedQoS2, SubackFailure311}
	if v5 {
		suback = append(suback, QuotaExceeded)
	}
	var unsubackCodes []ReasonCode
	if v5 {
		unsubackCodes = []ReasonCode{Success, NoSubscriptionExisted, NotAuthorized}
	}
	m := map[string]Packet{
		"connect":            connect,
		"connect_no_will":    &Connect{ProtocolName: protocolName(version), ProtocolVersion: version, ClientID: "c"},
		"connack":            &Connack{ReasonCode: connackCode, Props: props(ctxConnack)},
		"connack_session":    &Connack{SessionPresent: true},
		"publish_qos0":       &Publish{Retain: true, Topic: "t/0", Payload: []byte("zero"), Props: props(ctxPublish)},
		"publish_qos1":       &Publish{QoS: 1, Topic: "t/1", PacketID: 1, Payload: []byte("one"), Props: props(ctxPublish)},
		"publish_qos2_dup":   &Publish{Dup: true, QoS: 2, Topic: "t/2", PacketID: 65535, Props: props(ctxPublish)},
		"puback":             &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: reason(NoMatchingSubscribers), Props: props(ctxAck)},
		"pubrec":             &Ack{Kind: PUBREC, PacketID: 2, ReasonCode: reason(UnspecifiedError), Props: props(ctxAck)},
		"pubrel":             &Ack{Kind: PUBREL, PacketID: 3, ReasonCode: reason(PacketIDNotFound), Props: props(ctxAck)},
		"pubcomp":            &Ack{Kind: PUBCOMP, PacketID: 4, Props: props(ctxAck)},
		"pubcomp_short":      &Ack{Kind: PUBCOMP, PacketID: 4},
		"subscribe":          &Subscribe{PacketID: 5, Props: props(ctxSubscribe), Subscriptions: []Subscription{subOpts, {Filter: "#"}}},
		"suback":             &Suback{PacketID: 5, Props: props(ctxSuback), ReasonCodes: suback},
		"unsubscribe":        &Unsubscribe{PacketID: 6, Props: props(ctxUnsubscribe), Filters: []string{"a/+/c", "#", "日本"}},
		"unsuback":           &Unsuback{PacketID: 6, Props: props(ctxUnsuback), ReasonCodes: unsubackCodes},
		"pingreq":            &Pingreq{},
		"pingresp":           &Pingresp{},
		"disconnect":         &Disconnect{ReasonCode: reason(ServerShuttingDown), Props: props(ctxDisconnect)},
		"disconnect_default": &Disconnect{},
	}
	if v5 {
		m["auth"] = &Auth{ReasonCode: ReAuthenticate, Props: props(ctxAuth)}
		m["auth_reason_only"] = &Auth{ReasonCode: ContinueAuthentication}
		m["disconnect_reason_only"] = &Disconnect{ReasonCode: DisconnectWithWill}
		m["puback_reason_only"] = &Ack{Kind: PUBACK, PacketID: 9, ReasonCode: PayloadFormatInvalid}
		m["publish_alias_only"] = &Publish{QoS: 1, PacketID: 8, Props: Properties{TopicAlias: 3}}
	}
	return m
}

func TestDecodeEncodeRoundTripEveryTypeAndProperty(t *testing.T) {
	for _, version := range []byte{Version31, Version311, Version5} {
		for name, p := range roundTripPackets(version) {
			t.Run(protocolName(version)+string('0'+version)+"/"+name, func(t *testing.T) {
				wire, err := Encode(nil, version, p)
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				if n := Size(version, p); n != len(wire) {
					t.Fatalf("Size = %d, Encode wrote %d", n, len(wire))
				}
				if n, err := SplitFrame(wire, 0); n != len(wire) || err != nil {
					t.Fatalf("SplitFrame = %d, %v", n, err)
				}
				got, err := Decode(version, wire)
				if err != nil {
					t.Fatalf("Decode(% X): %v", wire, err)
				}
				if !reflect.DeepEqual(got, p) {
					t.Fatalf("round trip changed the packet:\n got %#v\nwant %#v", got, p)
				}
			})
		}
	}
}

func TestFullPropsCoverEveryProperty(t *testing.T) {
	var covered propSet
	for ctx := range allowedProps {
		p := fullProps(propCtx(ctx))
		_, present := propsSize(&p)
		if present != allowedProps[ctx] {
			t.Errorf("%s: fullProps sets %b, allowed %b", ctxName[ctx], present, allowedProps[ctx])
		}
		covered |= present
	}
	for id := byte(1); id <= propSharedSubAvailable; id++ {
		switch id {
		case 0x04, 0x05, 0x06, 0x07, 0x0A, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x14, 0x1B, 0x1D, 0x1E, 0x20:
			continue // not property identifiers
		}
		if covered&bit(id) == 0 {
			t.Errorf("property 0x%02X not covered by round trips", id)
		}
	}
}

func TestEncodeBeforeV5DropsPropertiesAndMapsCodes(t *testing.T) {
	p := &Publish{QoS: 1, PacketID: 1, Topic: "t", Payload: []byte("x"), Props: fullProps(ctxPublish)}
	wire, err := Encode(nil, Version311, p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(Version311, wire)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &Publish{QoS: 1, PacketID: 1, Topic: "t", Payload: []byte("x")}) {
		t.Fatalf("3.1.1 PUBLISH kept v5 fields: %#v", got)
	}

	tests := []struct {
		name string
		p    Packet
		want []byte
	}{
		{"connack_v5_code_to_311", &Connack{ReasonCode: NotAuthorized}, []byte{0x20, 0x02, 0x00, byte(ConnRefusedNotAuthorized)}},
		{"connack_v5_unsupported_to_311", &Connack{ReasonCode: UnsupportedProtocolVersion}, []byte{0x20, 0x02, 0x00, byte(ConnRefusedProtocolVersion)}},
		{"suback_v5_failure_to_0x80", &Suback{PacketID: 1, ReasonCodes: []ReasonCode{1, QuotaExceeded}}, []byte{0x90, 0x04, 0x00, 0x01, 0x01, 0x80}},
		{"puback_reason_dropped", &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded}, []byte{0x40, 0x02, 0x00, 0x01}},
		{"disconnect_reason_dropped", &Disconnect{ReasonCode: ServerShuttingDown}, []byte{0xE0, 0x00}},
		{"unsuback_codes_dropped", &Unsuback{PacketID: 2, ReasonCodes: []ReasonCode{0}}, []byte{0xB0, 0x02, 0x00, 0x02}},
		{"subscribe_v5_options_dropped", &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 1, NoLocal: true, RetainHandling: 2}}},
			[]byte{0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Encode(nil, Version311, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Encode = % X, want % X", got, tt.want)
			}
		})
	}
}

func TestEncodeRefusesPacketsThatCannotBeEncoded(t *testing.T) {
	long := string(repeat('a', 0x10000))
	tests := []struct {
		name    string
		version byte
		p       Packet
		code    ReasonCode
	}{
		{"publish_qos3", Version311, &Publish{QoS: 3, Topic: "t"}, MalformedPacket},
		{"publish_qos0_dup", Version311, &Publish{Dup: true, Topic: "t"}, MalformedPacket},
		{"publish_topic_too_long", Version311, &Publish{Topic: long}, MalformedPacket},
		{"publish_session_expiry", Version5, &Publish{Topic: "t", Props: Properties{HasSessionExpiry: true}}, MalformedPacket},
		{"publish_subscription_id_0", Version5, &Publish{Topic: "t", Props: Properties{SubscriptionIDs: []uint32{0}}}, ProtocolError},
		{"publish_payload_format_2", Version5, &Publish{Topic: "t", Props: Properties{PayloadFormat: 2}}, ProtocolError},
		{"publish_user_property_too_long", Version5, &Publish{Topic: "t", Props: Properties{User: []UserProperty{{long, ""}}}}, MalformedPacket},
		{"publish_too_large", Version311, &Publish{Topic: "t", Payload: make([]byte, MaxRemainingLength)}, PacketTooLarge},
		{"subscribe_two_subscription_ids", Version5, &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{1, 2}}, Subscriptions: []Subscription{{Filter: "a"}}}, ProtocolError},
		{"subscribe_qos3", Version311, &Subscribe{PacketID: 1, Subscriptions: []Subscription{{Filter: "a", QoS: 3}}}, MalformedPacket},
		{"auth_in_311", Version311, &Auth{}, ProtocolError},
		{"connect_will_qos_without_will", Version311, &Connect{ProtocolVersion: Version311, WillQoS: 1}, MalformedPacket},
		{"connect_password_without_username_311", Version311, &Connect{ProtocolVersion: Version311, PasswordFlag: true}, MalformedPacket},
		{"connect_will_props_topic_alias", Version5, &Connect{ProtocolVersion: Version5, WillFlag: true, WillTopic: "t", WillProps: Properties{TopicAlias: 1}}, MalformedPacket},
		{"connack_user_property_in_will_only", Version5, &Connack{Props: Properties{WillDelay: 1}}, MalformedPacket},
		{"ack_wrong_kind", Version311, &Ack{Kind: CONNECT, PacketID: 1}, ImplementationSpecific},
		{"unknown_version", 9, &Pingreq{}, ImplementationSpecific},
		{"nil_packet", Version311, nil, ImplementationSpecific},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte{0xAA}
			got, err := Encode(dst, tt.version, tt.p)
			var pe *Error
			if !errors.As(err, &pe) || pe.Code != tt.code {
				t.Fatalf("Encode error = %v, want code 0x%02X", err, byte(tt.code))
			}
			if len(got) != 1 {
				t.Fatalf("Encode appended %d bytes despite the error", len(got)-1)
			}
			if n := Size(tt.version, tt.p); n != -1 {
				t.Fatalf("Size = %d, want -1", n)
			}
		})
	}
}

func TestFitPropsDropsReasonStringThenUserProperties(t *testing.T) {
	base := &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded}
	withReason := &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded,
		Props: Properties{ReasonString: "a long explanation", User: []UserProperty{{"k", "v"}}}}
	withoutReason := Size(Version5, &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded,
		Props: Properties{User: []UserProperty{{"k", "v"}}}})

	p := *withReason
	if !FitProps(Version5, &p, withoutReason) || p.Props.ReasonString != "" || p.Props.User == nil {
		t.Fatalf("FitProps to %d: %+v; want only the reason string dropped", withoutReason, p.Props)
	}
	p = *withReason
	if !FitProps(Version5, &p, Size(Version5, base)) || p.Props.ReasonString != "" || p.Props.User != nil {
		t.Fatalf("FitProps to the bare size: %+v; want both dropped", p.Props)
	}
	p = *withReason
	if FitProps(Version5, &p, 3) {
		t.Fatal("FitProps reported a fit below the minimal size")
	}
	pub := &Publish{Topic: "t", Props: Properties{User: []UserProperty{{"k", "v"}}}}
	if FitProps(Version5, pub, 5) || pub.Props.User == nil {
		t.Fatal("FitProps changed or fitted a PUBLISH")
	}
	if !FitProps(Version5, pub, 0) {
		t.Fatal("FitProps with no limit refused")
	}
}

func TestEncodeDoesNotAllocateWithCapacity(t *testing.T) {
	packets := []struct {
		version byte
		p       Packet
	}{
		{Version311, &Publish{QoS: 1, PacketID: 1, Topic: "chat/room/42", Payload: make([]byte, 64)}},
		{Version5, &Publish{QoS: 1, PacketID: 1, Topic: "chat/room/42", Payload: make([]byte, 64), Props: fullProps(ctxPublish)}},
		{Version5, &Ack{Kind: PUBACK, PacketID: 1}},
		{Version5, roundTripPackets(Version5)["connect"]},
		{Version5, roundTripPackets(Version5)["subscribe"]},
	}
	buf := make([]byte, 0, 4096)
	for _, tt := range packets {
		allocs := testing.AllocsPerRun(100, func() {
			var err error
			if buf, err = Encode(buf[:0], tt.version, tt.p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Encode %T v%d allocated %v times", tt.p, tt.version, allocs)
		}
	}
}

func TestDecodePublishAllocatesPacketAndOneCopy(t *testing.T) {
	for _, version := range []byte{Version311, Version5} {
		wire, err := Encode(nil, version, &Publish{QoS: 1, PacketID: 1, Topic: "chat/room/42", Payload: make([]byte, 64)})
		if err != nil {
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Decode(version, wire); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 2 {
			t.Errorf("Decode PUBLISH v%d allocated %v times, want 2 (packet, body copy)", version, allocs)
		}
	}
}

func TestEncodeConnectWithoutLevelUsesVersionArgument(t *testing.T) {
	got, err := Encode(nil, Version5, &Connect{ClientID: "c", CleanStart: true, KeepAlive: 60})
	if err != nil {
		t.Fatal(err)
	}
	want := pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x3C, 0x00}, cid)...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Encode = % X, want % X", got, want)
	}
}

// [MQTT-3.2.2-4] [MQTT-3.2.2-6] a refusing CONNACK never says a session is present.
func TestEncodeConnackRefusalClearsSessionPresent(t *testing.T) {
	for _, version := range []byte{Version311, Version5} {
		wire, err := Encode(nil, version, &Connack{SessionPresent: true, ReasonCode: NotAuthorized})
		if err != nil {
			t.Fatal(err)
		}
		if wire[2] != 0 {
			t.Fatalf("v%d: acknowledge flags = %#x, want 0", version, wire[2])
		}
		if _, err := Decode(version, wire); err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
	}
}

func TestRoundTripAcrossRemainingLengthBoundaries(t *testing.T) {
	// Remaining lengths of 127/128, 16383/16384 and 2097151/2097152 switch
	// the fixed header from one to two, three and four length bytes.
	for _, remaining := range []int{127, 128, 16383, 16384, 2097151, 2097152} {
		for _, version := range []byte{Version311, Version5} {
			overhead := 2 + 1 + 2 // topic "t", packet id
			if version == Version5 {
				overhead++ // empty property length
			}
			p := &Publish{QoS: 1, PacketID: 1, Topic: "t", Payload: repeat('x', remaining-overhead)}
			wire, err := Encode(nil, version, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + varintLen(remaining) + remaining; len(wire) != want || Size(version, p) != want {
				t.Fatalf("remaining %d v%d: encoded %d bytes, Size %d, want %d", remaining, version, len(wire), Size(version, p), want)
			}
			if n, err := SplitFrame(wire, 0); n != len(wire) || err != nil {
				t.Fatalf("remaining %d: SplitFrame = %d, %v", remaining, n, err)
			}
			if off := PacketIDOffset(wire); off != 1+varintLen(remaining)+3 {
				t.Fatalf("remaining %d: PacketIDOffset = %d", remaining, off)
			}
			got, err := Decode(version, wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("remaining %d v%d: round trip changed the packet", remaining, version)
			}
		}
	}
}
