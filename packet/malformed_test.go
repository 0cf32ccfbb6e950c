package packet

import (
	"errors"
	"testing"
)

// pkt builds a frame from the first byte and the body, computing the
// remaining length so that fixtures only spell out what they test.
func pkt(first byte, body ...byte) []byte {
	return append(appendVarint([]byte{first}, uint32(len(body))), body...)
}

// cat joins byte fragments, for readable fixtures.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

var (
	mqtt311 = []byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04}
	mqtt5   = []byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x05}
	cid     = []byte{0x00, 0x01, 'c'}
)

// malformedFixture is a named frame that Decode must refuse with code.
type malformedFixture struct {
	name    string
	version byte
	wire    []byte
	code    ReasonCode
}

var malformedFixtures = []malformedFixture{
	// Fixed header.
	{"remaining_length_longer_than_body", Version311, []byte{0x30, 0x05, 0x00, 0x01, 't'}, MalformedPacket},
	{"remaining_length_shorter_than_body", Version311, []byte{0x30, 0x03, 0x00, 0x01, 't', 'x'}, MalformedPacket},
	// [MQTT-1.5.5] at most four bytes of remaining length.
	{"remaining_length_five_bytes", Version311, []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}, MalformedPacket},
	// [MQTT-1.5.5-1] MQTT 5 variable byte integers in the fewest bytes.
	{"pingreq_v5_remaining_length_not_minimal", Version5, []byte{0xC0, 0x80, 0x00}, MalformedPacket},
	{"publish_v5_remaining_length_not_minimal", Version5, []byte{0x30, 0x84, 0x00, 0x00, 0x01, 't', 0x00}, MalformedPacket},
	{"subscribe_v5_remaining_length_not_minimal", Version5, []byte{0x82, 0x87, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x00}, MalformedPacket},
	{"connect_v5_remaining_length_not_minimal", Version5, cat([]byte{0x10, 0x8E, 0x00}, mqtt5, []byte{0x02, 0x00, 0x3C, 0x00}, cid), MalformedPacket},
	{"connect_v5_property_length_not_minimal", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x80, 0x00}, cid)...), MalformedPacket},
	{"publish_v5_property_length_not_minimal", Version5, pkt(0x30, 0x00, 0x01, 't', 0x80, 0x00), MalformedPacket},
	{"publish_v5_subscription_id_not_minimal", Version5, pkt(0x30, 0x00, 0x01, 't', 0x03, 0x0B, 0x81, 0x00), MalformedPacket},
	{"subscribe_v5_subscription_id_not_minimal", Version5, pkt(0x82, 0x00, 0x01, 0x03, 0x0B, 0x81, 0x00, 0x00, 0x01, 'a', 0x00), MalformedPacket},
	{"frame_one_byte", Version311, []byte{0xC0}, MalformedPacket},
	{"type_0_reserved", Version311, []byte{0x00, 0x00}, MalformedPacket},
	{"auth_type_reserved_in_311", Version311, []byte{0xF0, 0x00}, MalformedPacket},
	{"auth_type_reserved_in_31", Version31, []byte{0xF0, 0x00}, MalformedPacket},
	// [MQTT-2.2.2-2] reserved flag bits.
	{"pingreq_flags_0001", Version311, []byte{0xC1, 0x00}, MalformedPacket},
	{"puback_flags_0010", Version311, []byte{0x42, 0x02, 0x00, 0x01}, MalformedPacket},
	{"connack_flags_1000", Version311, []byte{0x28, 0x02, 0x00, 0x00}, MalformedPacket},
	{"connect_flags_0001", Version311, pkt(0x11, cat(mqtt311, []byte{0x02, 0x00, 0x00}, cid)...), MalformedPacket},
	{"pubrel_flags_0000", Version311, []byte{0x60, 0x02, 0x00, 0x01}, MalformedPacket},                  // [MQTT-3.6.1-1]
	{"subscribe_flags_0000", Version311, pkt(0x80, 0x00, 0x01, 0x00, 0x01, 'a', 0x00), MalformedPacket}, // [MQTT-3.8.1-1]
	{"unsubscribe_flags_0000", Version311, pkt(0xA0, 0x00, 0x01, 0x00, 0x01, 'a'), MalformedPacket},     // [MQTT-3.10.1-1]
	{"pingreq_with_body", Version311, []byte{0xC0, 0x01, 0x00}, MalformedPacket},
	{"pingresp_with_body", Version5, []byte{0xD0, 0x01, 0x00}, MalformedPacket},
	{"disconnect_311_with_body", Version311, []byte{0xE0, 0x01, 0x00}, MalformedPacket},

	// PUBLISH.
	{"publish_qos3", Version311, pkt(0x36, 0x00, 0x01, 't', 0x00, 0x01), MalformedPacket},             // [MQTT-3.3.1-4]
	{"publish_qos0_dup", Version311, pkt(0x38, 0x00, 0x01, 't'), MalformedPacket},                     // [MQTT-3.3.1-2]
	{"publish_topic_plus", Version311, pkt(0x30, 0x00, 0x03, 'a', '/', '+'), TopicNameInvalid},        // [MQTT-3.3.2-2]
	{"publish_topic_hash", Version5, pkt(0x30, 0x00, 0x01, '#', 0x00), TopicNameInvalid},              // [MQTT-3.3.2-2]
	{"publish_packet_id_0", Version311, pkt(0x32, 0x00, 0x01, 't', 0x00, 0x00), ProtocolError},        // [MQTT-2.2.1-3]
	{"publish_packet_id_0_v5", Version5, pkt(0x34, 0x00, 0x01, 't', 0x00, 0x00, 0x00), ProtocolError}, // [MQTT-2.2.1-3]
	{"publish_topic_bad_utf8", Version311, pkt(0x30, 0x00, 0x02, 0xC3, 0x28), MalformedPacket},        // [MQTT-1.5.4-1]
	{"publish_topic_surrogate", Version311, pkt(0x30, 0x00, 0x03, 0xED, 0xA0, 0x80), MalformedPacket}, // [MQTT-1.5.4-1]
	{"publish_topic_nul", Version311, pkt(0x30, 0x00, 0x02, 'a', 0x00), MalformedPacket},              // [MQTT-1.5.4-2]
	{"publish_topic_empty_311", Version311, pkt(0x30, 0x00, 0x00, 'x'), MalformedPacket},              // [MQTT-4.7.3-1]
	{"publish_topic_empty_no_alias_v5", Version5, pkt(0x30, 0x00, 0x00, 0x00), ProtocolError},         // 3.3.2.1
	{"publish_topic_length_past_end", Version311, pkt(0x30, 0x00, 0x05, 't'), MalformedPacket},
	{"publish_packet_id_truncated", Version311, pkt(0x32, 0x00, 0x01, 't', 0x00), MalformedPacket},
	{"publish_v5_no_property_length", Version5, pkt(0x30, 0x00, 0x01, 't'), MalformedPacket},
	{"publish_v5_property_length_past_end", Version5, pkt(0x30, 0x00, 0x01, 't', 0x05, 0x01), MalformedPacket},
	{"publish_v5_property_length_5_bytes", Version5, pkt(0x30, 0x00, 0x01, 't', 0x80, 0x80, 0x80, 0x80, 0x01), MalformedPacket},
	// 2.2.2.2: an identifier not valid for the packet type is malformed.
	{"publish_v5_session_expiry_not_allowed", Version5, pkt(0x30, 0x00, 0x01, 't', 0x05, 0x11, 0, 0, 0, 0), MalformedPacket},
	{"publish_v5_unknown_property", Version5, pkt(0x30, 0x00, 0x01, 't', 0x02, 0x7F, 0x00), MalformedPacket},
	{"publish_v5_property_value_truncated", Version5, pkt(0x30, 0x00, 0x01, 't', 0x02, 0x02, 0x00), MalformedPacket},
	{"publish_v5_duplicate_payload_format", Version5, pkt(0x30, 0x00, 0x01, 't', 0x04, 0x01, 0x00, 0x01, 0x01), ProtocolError}, // 3.3.2.3.2
	{"publish_v5_payload_format_2", Version5, pkt(0x30, 0x00, 0x01, 't', 0x02, 0x01, 0x02), ProtocolError},
	{"publish_v5_duplicate_topic_alias", Version5, pkt(0x30, 0x00, 0x01, 't', 0x06, 0x23, 0x00, 0x01, 0x23, 0x00, 0x02), ProtocolError}, // 3.3.2.3.4
	{"publish_v5_topic_alias_0", Version5, pkt(0x30, 0x00, 0x01, 't', 0x03, 0x23, 0x00, 0x00), TopicAliasInvalid},                       // [MQTT-3.3.2-8]
	{"publish_v5_subscription_id_0", Version5, pkt(0x30, 0x00, 0x01, 't', 0x02, 0x0B, 0x00), ProtocolError},                             // 3.3.2.3.8
	{"publish_v5_subscription_id_too_long", Version5, pkt(0x30, 0x00, 0x01, 't', 0x06, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F), MalformedPacket},
	{"publish_v5_response_topic_wildcard", Version5, pkt(0x30, 0x00, 0x01, 't', 0x04, 0x08, 0x00, 0x01, '#'), ProtocolError}, // [MQTT-3.3.2-14]
	{"publish_v5_duplicate_message_expiry", Version5, pkt(0x30, 0x00, 0x01, 't', 0x0A, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 1), ProtocolError},
	{"publish_v5_user_property_bad_utf8", Version5, pkt(0x30, 0x00, 0x01, 't', 0x07, 0x26, 0x00, 0x01, 0xFF, 0x00, 0x01, 'v'), MalformedPacket}, // [MQTT-1.5.4-1]
	{"publish_v5_content_type_nul", Version5, pkt(0x30, 0x00, 0x01, 't', 0x04, 0x03, 0x00, 0x01, 0x00), MalformedPacket},                        // [MQTT-1.5.4-2]

	// CONNECT.
	{"connect_protocol_name_wrong", Version311, pkt(0x10, cat([]byte{0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02, 0x00, 0x00}, cid)...), UnsupportedProtocolVersion}, // [MQTT-3.1.2-1]
	{"connect_protocol_level_6", Version311, pkt(0x10, cat([]byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x06, 0x02, 0x00, 0x00}, cid)...), UnsupportedProtocolVersion},    // [MQTT-3.1.2-2]
	{"connect_mqisdp_level_4", Version311, pkt(0x10, cat([]byte{0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x04, 0x02, 0x00, 0x00}, cid)...), UnsupportedProtocolVersion},
	{"connect_mqtt_level_3", Version311, pkt(0x10, cat([]byte{0x00, 0x04, 'M', 'Q', 'T', 'T', 0x03, 0x02, 0x00, 0x00}, cid)...), UnsupportedProtocolVersion},
	{"connect_truncated_protocol_name", Version311, pkt(0x10, 0x00, 0x04, 'M', 'Q'), MalformedPacket},
	{"connect_reserved_flag", Version311, pkt(0x10, cat(mqtt311, []byte{0x03, 0x00, 0x00}, cid)...), MalformedPacket},                                    // [MQTT-3.1.2-3]
	{"connect_reserved_flag_v5", Version5, pkt(0x10, cat(mqtt5, []byte{0x01, 0x00, 0x00, 0x00}, cid)...), MalformedPacket},                               // [MQTT-3.1.2-3]
	{"connect_will_qos_without_will_flag", Version311, pkt(0x10, cat(mqtt311, []byte{0x08, 0x00, 0x00}, cid)...), MalformedPacket},                       // [MQTT-3.1.2-13]
	{"connect_will_retain_without_will_flag", Version311, pkt(0x10, cat(mqtt311, []byte{0x20, 0x00, 0x00}, cid)...), MalformedPacket},                    // [MQTT-3.1.2-15]
	{"connect_will_qos_without_will_flag_v5", Version5, pkt(0x10, cat(mqtt5, []byte{0x10, 0x00, 0x00, 0x00}, cid)...), MalformedPacket},                  // [MQTT-3.1.2-11]
	{"connect_will_qos_3", Version311, pkt(0x10, cat(mqtt311, []byte{0x1C, 0x00, 0x00}, cid, []byte{0, 1, 't', 0, 0})...), MalformedPacket},              // [MQTT-3.1.2-14]
	{"connect_password_without_username_311", Version311, pkt(0x10, cat(mqtt311, []byte{0x40, 0x00, 0x00}, cid, []byte{0, 1, 'p'})...), MalformedPacket}, // [MQTT-3.1.2-22]
	{"connect_password_without_username_31", Version31, pkt(0x10, cat([]byte{0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p', 0x03, 0x40, 0x00, 0x00}, cid, []byte{0, 1, 'p'})...), MalformedPacket},
	{"connect_will_topic_wildcard", Version311, pkt(0x10, cat(mqtt311, []byte{0x04, 0x00, 0x00}, cid, []byte{0, 1, '+', 0, 0})...), TopicNameInvalid}, // [MQTT-3.3.2-2]
	{"connect_will_topic_empty", Version311, pkt(0x10, cat(mqtt311, []byte{0x04, 0x00, 0x00}, cid, []byte{0, 0, 0, 0})...), MalformedPacket},          // [MQTT-4.7.3-1]
	{"connect_username_missing", Version311, pkt(0x10, cat(mqtt311, []byte{0x80, 0x00, 0x00}, cid)...), MalformedPacket},                              // [MQTT-3.1.2-19]
	{"connect_password_missing", Version311, pkt(0x10, cat(mqtt311, []byte{0xC0, 0x00, 0x00}, cid, []byte{0, 1, 'u'})...), MalformedPacket},           // [MQTT-3.1.2-21]
	{"connect_trailing_bytes", Version311, pkt(0x10, cat(mqtt311, []byte{0x02, 0x00, 0x00}, cid, []byte{0x00})...), MalformedPacket},
	{"connect_client_id_bad_utf8", Version311, pkt(0x10, cat(mqtt311, []byte{0x02, 0x00, 0x00}, []byte{0, 1, 0x80})...), MalformedPacket},                                               // [MQTT-1.5.4-1]
	{"connect_client_id_nul", Version311, pkt(0x10, cat(mqtt311, []byte{0x02, 0x00, 0x00}, []byte{0, 1, 0x00})...), MalformedPacket},                                                    // [MQTT-1.5.4-2]
	{"connect_v5_receive_maximum_0", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x03, 0x21, 0x00, 0x00}, cid)...), ProtocolError},                                          // 3.1.2.11.3
	{"connect_v5_maximum_packet_size_0", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x05, 0x27, 0, 0, 0, 0}, cid)...), ProtocolError},                                      // 3.1.2.11.4
	{"connect_v5_request_problem_info_2", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x02, 0x17, 0x02}, cid)...), ProtocolError},                                           // 3.1.2.11.7
	{"connect_v5_request_response_info_2", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x02, 0x19, 0x02}, cid)...), ProtocolError},                                          // 3.1.2.11.6
	{"connect_v5_duplicate_session_expiry", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x0A, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}, cid)...), ProtocolError},                 // 3.1.2.11.2
	{"connect_v5_auth_data_without_method", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x04, 0x16, 0x00, 0x01, 0x01}, cid)...), ProtocolError},                             // 3.1.2.11.10
	{"connect_v5_topic_alias_not_allowed", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01}, cid)...), MalformedPacket},                                  // 2.2.2.2
	{"connect_v5_will_props_session_expiry", Version5, pkt(0x10, cat(mqtt5, []byte{0x06, 0x00, 0x00, 0x00}, cid, []byte{0x05, 0x11, 0, 0, 0, 1, 0, 1, 't', 0, 0})...), MalformedPacket}, // 2.2.2.2
	{"connect_v5_will_payload_format_3", Version5, pkt(0x10, cat(mqtt5, []byte{0x06, 0x00, 0x00, 0x00}, cid, []byte{0x02, 0x01, 0x03, 0, 1, 't', 0, 0})...), ProtocolError},
	{"connect_v5_no_property_length", Version5, pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00})...), MalformedPacket},

	// CONNACK.
	{"connack_311_reserved_flags", Version311, []byte{0x20, 0x02, 0x02, 0x00}, MalformedPacket},          // [MQTT-3.2.2-1]
	{"connack_311_return_code_6", Version311, []byte{0x20, 0x02, 0x00, 0x06}, MalformedPacket},           // 3.2.2.3
	{"connack_311_refused_session_present", Version311, []byte{0x20, 0x02, 0x01, 0x05}, MalformedPacket}, // [MQTT-3.2.2-4]
	{"connack_311_three_bytes", Version311, []byte{0x20, 0x03, 0x00, 0x00, 0x00}, MalformedPacket},
	{"connack_311_one_byte", Version311, []byte{0x20, 0x01, 0x00}, MalformedPacket},
	{"connack_v5_reserved_flags", Version5, []byte{0x20, 0x03, 0x80, 0x00, 0x00}, MalformedPacket}, // [MQTT-3.2.2-1]
	{"connack_v5_reason_not_for_connack", Version5, []byte{0x20, 0x03, 0x00, 0x10, 0x00}, MalformedPacket},
	{"connack_v5_refused_session_present", Version5, []byte{0x20, 0x03, 0x01, 0x87, 0x00}, ProtocolError},        // [MQTT-3.2.2-6]
	{"connack_v5_maximum_qos_2", Version5, []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x24, 0x02}, ProtocolError},      // 3.2.2.3.4
	{"connack_v5_retain_available_2", Version5, []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x25, 0x02}, ProtocolError}, // 3.2.2.3.5
	{"connack_v5_shared_sub_available_2", Version5, []byte{0x20, 0x05, 0x00, 0x00, 0x02, 0x2A, 0x02}, ProtocolError},
	{"connack_v5_no_property_length", Version5, []byte{0x20, 0x02, 0x00, 0x00}, MalformedPacket},
	{"connack_v5_will_delay_not_allowed", Version5, []byte{0x20, 0x08, 0x00, 0x00, 0x05, 0x18, 0, 0, 0, 1}, MalformedPacket}, // 2.2.2.2

	// PUBACK, PUBREC, PUBREL, PUBCOMP.
	{"puback_311_three_bytes", Version311, []byte{0x40, 0x03, 0x00, 0x01, 0x00}, MalformedPacket},
	{"puback_311_one_byte", Version311, []byte{0x40, 0x01, 0x00}, MalformedPacket},
	{"puback_packet_id_0", Version311, []byte{0x40, 0x02, 0x00, 0x00}, ProtocolError}, // [MQTT-2.2.1-3]
	{"pubrec_v5_invalid_reason", Version5, []byte{0x50, 0x03, 0x00, 0x01, 0x92}, MalformedPacket},
	{"pubrel_v5_invalid_reason", Version5, []byte{0x62, 0x03, 0x00, 0x01, 0x10}, MalformedPacket},
	{"puback_v5_topic_alias_not_allowed", Version5, []byte{0x40, 0x07, 0x00, 0x01, 0x00, 0x03, 0x23, 0x00, 0x01}, MalformedPacket}, // 2.2.2.2
	{"pubcomp_v5_duplicate_reason_string", Version5, []byte{0x70, 0x0C, 0x00, 0x01, 0x00, 0x08, 0x1F, 0x00, 0x01, 'a', 0x1F, 0x00, 0x01, 'b'}, ProtocolError},
	{"puback_v5_trailing_after_props", Version5, []byte{0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00}, MalformedPacket},

	// SUBSCRIBE.
	{"subscribe_no_filters_311", Version311, pkt(0x82, 0x00, 0x01), ProtocolError},                                       // [MQTT-3.8.3-3]
	{"subscribe_no_filters_v5", Version5, pkt(0x82, 0x00, 0x01, 0x00), ProtocolError},                                    // [MQTT-3.8.3-2]
	{"subscribe_packet_id_0", Version311, pkt(0x82, 0x00, 0x00, 0x00, 0x01, 'a', 0x00), ProtocolError},                   // [MQTT-2.2.1-3]
	{"subscribe_311_reserved_option_bits", Version311, pkt(0x82, 0x00, 0x01, 0x00, 0x01, 'a', 0x04), MalformedPacket},    // [MQTT-3.8.3-4]
	{"subscribe_311_qos_3", Version311, pkt(0x82, 0x00, 0x01, 0x00, 0x01, 'a', 0x03), MalformedPacket},                   // [MQTT-3.8.3-4]
	{"subscribe_v5_reserved_option_bits", Version5, pkt(0x82, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x40), MalformedPacket}, // [MQTT-3.8.3-5]
	{"subscribe_v5_retain_handling_3", Version5, pkt(0x82, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x30), ProtocolError},      // 3.8.3.1
	{"subscribe_v5_qos_3", Version5, pkt(0x82, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x03), ProtocolError},                  // 3.8.3.1
	{"subscribe_options_missing", Version311, pkt(0x82, 0x00, 0x01, 0x00, 0x01, 'a'), MalformedPacket},
	{"subscribe_filter_truncated", Version311, pkt(0x82, 0x00, 0x01, 0x00, 0x05, 'a', 0x00), MalformedPacket},
	{"subscribe_filter_nul", Version311, pkt(0x82, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00), MalformedPacket},                                       // [MQTT-1.5.4-2]
	{"subscribe_v5_two_subscription_ids", Version5, pkt(0x82, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, 'a', 0x00), ProtocolError}, // 3.8.2.1.2
	{"subscribe_v5_subscription_id_0", Version5, pkt(0x82, 0x00, 0x01, 0x02, 0x0B, 0x00, 0x00, 0x01, 'a', 0x00), ProtocolError},                // 3.8.2.1.2
	{"subscribe_v5_reason_string_not_allowed", Version5, pkt(0x82, 0x00, 0x01, 0x04, 0x1F, 0x00, 0x01, 'x', 0x00, 0x01, 'a', 0x00), MalformedPacket},

	// SUBACK.
	{"suback_311_code_3", Version311, []byte{0x90, 0x03, 0x00, 0x01, 0x03}, MalformedPacket}, // [MQTT-3.9.3-2]
	{"suback_311_no_codes", Version311, []byte{0x90, 0x02, 0x00, 0x01}, ProtocolError},
	{"suback_v5_code_not_for_suback", Version5, []byte{0x90, 0x04, 0x00, 0x01, 0x00, 0x05}, MalformedPacket},
	{"suback_v5_no_codes", Version5, []byte{0x90, 0x03, 0x00, 0x01, 0x00}, ProtocolError},

	// UNSUBSCRIBE.
	{"unsubscribe_no_filters_311", Version311, pkt(0xA2, 0x00, 0x01), ProtocolError},    // [MQTT-3.10.3-2]
	{"unsubscribe_no_filters_v5", Version5, pkt(0xA2, 0x00, 0x01, 0x00), ProtocolError}, // [MQTT-3.10.3-2]
	{"unsubscribe_packet_id_0", Version311, pkt(0xA2, 0x00, 0x00, 0x00, 0x01, 'a'), ProtocolError},
	{"unsubscribe_filter_truncated", Version311, pkt(0xA2, 0x00, 0x01, 0x00, 0x03, 'a'), MalformedPacket},
	{"unsubscribe_v5_subscription_id_not_allowed", Version5, pkt(0xA2, 0x00, 0x01, 0x02, 0x0B, 0x01, 0x00, 0x01, 'a'), MalformedPacket},

	// UNSUBACK.
	{"unsuback_311_with_codes", Version311, []byte{0xB0, 0x03, 0x00, 0x01, 0x00}, MalformedPacket},
	{"unsuback_v5_no_codes", Version5, []byte{0xB0, 0x03, 0x00, 0x01, 0x00}, ProtocolError}, // [MQTT-3.11.3-1]
	{"unsuback_v5_invalid_code", Version5, []byte{0xB0, 0x04, 0x00, 0x01, 0x00, 0x10}, MalformedPacket},

	// DISCONNECT.
	{"disconnect_v5_invalid_reason", Version5, []byte{0xE0, 0x01, 0x01}, MalformedPacket},
	{"disconnect_v5_receive_maximum_not_allowed", Version5, []byte{0xE0, 0x05, 0x00, 0x03, 0x21, 0x00, 0x01}, MalformedPacket}, // 2.2.2.2
	{"disconnect_v5_property_length_past_end", Version5, []byte{0xE0, 0x03, 0x00, 0x05, 0x11}, MalformedPacket},
	{"disconnect_v5_trailing_after_props", Version5, []byte{0xE0, 0x03, 0x00, 0x00, 0x00}, MalformedPacket},

	// AUTH.
	{"auth_v5_invalid_reason", Version5, []byte{0xF0, 0x01, 0x80}, MalformedPacket},
	{"auth_v5_topic_alias_not_allowed", Version5, []byte{0xF0, 0x05, 0x18, 0x03, 0x23, 0x00, 0x01}, MalformedPacket}, // 2.2.2.2
	{"auth_v5_data_without_method", Version5, []byte{0xF0, 0x06, 0x18, 0x04, 0x16, 0x00, 0x01, 0x01}, ProtocolError},
}

func TestDecodeRefusesMalformedFixturesWithSpecReasonCode(t *testing.T) {
	for _, f := range malformedFixtures {
		t.Run(f.name, func(t *testing.T) {
			p, err := Decode(f.version, f.wire)
			if err == nil {
				t.Fatalf("Decode accepted % X as %#v", f.wire, p)
			}
			if p != nil {
				t.Errorf("Decode returned a packet with its error: %#v", p)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode error %v is %T, want *Error", err, err)
			}
			if pe.Code != f.code {
				t.Fatalf("Decode error %v has code 0x%02X, want 0x%02X", err, byte(pe.Code), byte(f.code))
			}
		})
	}
}

func TestDecodeRefusesUnknownVersionForNonConnect(t *testing.T) {
	_, err := Decode(0, []byte{0xC0, 0x00})
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != ProtocolError {
		t.Fatalf("Decode(0, PINGREQ) = %v, want ProtocolError", err)
	}
}

func TestDecodeConnectIgnoresVersionArgument(t *testing.T) {
	wire := pkt(0x10, cat(mqtt5, []byte{0x02, 0x00, 0x00, 0x00}, cid)...)
	for _, v := range []byte{0, Version31, Version311, Version5} {
		p, err := Decode(v, wire)
		if err != nil {
			t.Fatalf("Decode(%d): %v", v, err)
		}
		if c := p.(*Connect); c.ProtocolVersion != Version5 {
			t.Fatalf("Decode(%d) version = %d, want 5", v, c.ProtocolVersion)
		}
	}
}

// ValidDisconnectCode is the set Decode accepts in a DISCONNECT.
func TestValidDisconnectCodeMatchesDecode(t *testing.T) {
	for rc := 0; rc < 256; rc++ {
		_, err := Decode(Version5, []byte{0xE0, 0x01, byte(rc)})
		if ValidDisconnectCode(ReasonCode(rc)) != (err == nil) {
			t.Errorf("0x%02X: ValidDisconnectCode %v, Decode error %v", rc, ValidDisconnectCode(ReasonCode(rc)), err)
		}
	}
	for _, rc := range []ReasonCode{UnsupportedProtocolVersion, BadAuthenticationMethod, ClientIDNotValid} {
		if ValidDisconnectCode(rc) {
			t.Errorf("CONNACK-only code 0x%02X taken for a DISCONNECT code", byte(rc))
		}
	}
}

// [MQTT-1.5.5-1] is MQTT 5's: a Remaining Length in more bytes than it
// needs is Malformed there, for every decoder, but MQTT 3.1.1 (2.2.3) and
// 3.1 state no such rule, and their frames are accepted as sent.
func TestRemainingLengthNotMinimalRefusedOnlyInV5(t *testing.T) {
	for _, tc := range []struct {
		name    string
		version byte
		wire    []byte
		ok      bool
	}{
		{"pingreq_311", Version311, []byte{0xC0, 0x80, 0x00}, true},
		{"pingreq_31", Version31, []byte{0xC0, 0x80, 0x80, 0x00}, true},
		{"publish_311", Version311, []byte{0x30, 0x83, 0x00, 0x00, 0x01, 't'}, true},
		{"subscribe_311", Version311, []byte{0x82, 0x86, 0x00, 0x00, 0x01, 0x00, 0x01, 'a', 0x00}, true},
		// A CONNECT states its own level: the version argument is ignored.
		{"connect_311", Version5, cat([]byte{0x10, 0x8D, 0x00}, mqtt311, []byte{0x02, 0x00, 0x3C}, cid), true},
		{"pingreq_5", Version5, []byte{0xC0, 0x80, 0x00}, false},
		{"publish_5", Version5, []byte{0x30, 0x84, 0x00, 0x00, 0x01, 't', 0x00}, false},
		{"subscribe_5", Version5, []byte{0x82, 0x87, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x00}, false},
		{"connect_5", Version311, cat([]byte{0x10, 0x8E, 0x00}, mqtt5, []byte{0x02, 0x00, 0x3C, 0x00}, cid), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAcceptedOrMalformed(t, tc.version, tc.wire, tc.ok)
		})
	}
}

// MQTT 3.1 sets DUP when it resends a PUBREL, SUBSCRIBE or UNSUBSCRIBE
// (3.1 §2.1.2, "DUP flag"): a 3.1 client retrying one must not be taken
// for malformed. MQTT 3.1.1 and 5 reserve the bit [MQTT-2.2.2-2]
// [MQTT-3.6.1-1] [MQTT-3.8.1-1] [MQTT-3.10.1-1].
func TestDupOnResentPubrelSubscribeUnsubscribeOnlyIn31(t *testing.T) {
	var (
		pubrelDup      = []byte{0x6A, 0x02, 0x00, 0x01}
		subscribeDup   = pkt(0x8A, 0x00, 0x01, 0x00, 0x01, 'a', 0x00)
		subscribeDupV5 = pkt(0x8A, 0x00, 0x01, 0x00, 0x00, 0x01, 'a', 0x00)
		unsubscribeDup = pkt(0xAA, 0x00, 0x01, 0x00, 0x01, 'a')
	)
	for _, tc := range []struct {
		name    string
		version byte
		wire    []byte
		ok      bool
	}{
		{"pubrel_31", Version31, pubrelDup, true},
		{"subscribe_31", Version31, subscribeDup, true},
		{"unsubscribe_31", Version31, unsubscribeDup, true},
		{"pubrel_311", Version311, pubrelDup, false},
		{"subscribe_311", Version311, subscribeDup, false},
		{"unsubscribe_311", Version311, unsubscribeDup, false},
		{"subscribe_5", Version5, subscribeDupV5, false},
		// DUP goes with the QoS 1 bits these are sent with, and only on them.
		{"pubrel_31_dup_without_qos1", Version31, []byte{0x68, 0x02, 0x00, 0x01}, false},
		{"puback_31_dup", Version31, []byte{0x48, 0x02, 0x00, 0x01}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkAcceptedOrMalformed(t, tc.version, tc.wire, tc.ok)
		})
	}
}

// checkAcceptedOrMalformed runs wire through Decode and the decoder of its
// own type (DecodeConnect, DecodePublish, DecodeSubscribe) and checks that
// each accepts it (ok) or refuses it as a Malformed Packet.
func checkAcceptedOrMalformed(t *testing.T, version byte, wire []byte, ok bool) {
	t.Helper()
	errs := map[string]error{}
	_, errs["Decode"] = Decode(version, wire)
	switch Type(wire[0] >> 4) {
	case CONNECT:
		errs["DecodeConnect"] = DecodeConnect(wire, &Connect{})
	case PUBLISH:
		errs["DecodePublish"] = DecodePublish(version, wire, &Publish{})
	case SUBSCRIBE:
		errs["DecodeSubscribe"] = DecodeSubscribe(version, wire, &Subscribe{})
	}
	for fn, err := range errs {
		var pe *Error
		switch {
		case ok && err != nil:
			t.Errorf("%s: %v, want accepted", fn, err)
		case !ok && (!errors.As(err, &pe) || pe.Code != MalformedPacket):
			t.Errorf("%s: %v, want Malformed Packet", fn, err)
		}
	}
}
