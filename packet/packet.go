// Package packet encodes and decodes MQTT 3.1, 3.1.1 and 5.0 control packets.
//
// It is pure: no I/O, no global state. The transport cuts the byte stream
// into frames with SplitFrame; Decode turns one frame into a Packet; Encode
// appends a Packet's wire form to a buffer. Every decode error is an *Error
// carrying the reason code the spec asks the server to answer with.
package packet

// Type is the MQTT control packet type, the high nibble of the first byte.
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

// Protocol levels carried in CONNECT.
const (
	Version31  byte = 3 // MQTT 3.1, protocol name "MQIsdp"
	Version311 byte = 4 // MQTT 3.1.1, protocol name "MQTT"
	Version5   byte = 5 // MQTT 5.0, protocol name "MQTT"
)

// MaxRemainingLength is the largest value the variable byte integer can hold.
const MaxRemainingLength = 268435455

// Packet is any decoded control packet.
type Packet interface {
	Type() Type
}

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName    string // "MQTT" or "MQIsdp"
	ProtocolVersion byte   // Version31, Version311 or Version5
	CleanStart      bool   // Clean Session in 3.1.1
	KeepAlive       uint16 // seconds
	Props           Properties

	ClientID string

	WillFlag    bool
	WillQoS     byte
	WillRetain  bool
	WillProps   Properties // v5 only
	WillTopic   string
	WillPayload []byte

	UsernameFlag bool
	Username     string
	PasswordFlag bool
	Password     []byte
}

// Connack is the CONNACK packet. In 3.1/3.1.1 ReasonCode holds the return
// code (0-5); in v5 it holds a v5 reason code.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Publish is the PUBLISH packet.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    string // may be empty in v5 when Props.TopicAlias is set
	PacketID uint16 // only when QoS > 0
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP, told apart by Kind.
// ReasonCode and Props are v5 only; a v5 ack whose reason is Success and
// which has no properties is encoded in its short form.
type Ack struct {
	Kind       Type // PUBACK, PUBREC, PUBREL or PUBCOMP
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Subscription is one topic filter of a SUBSCRIBE and its options.
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0, 1 or 2
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID      uint16
	Props         Properties // SubscriptionIDs holds at most one identifier
	Subscriptions []Subscription
}

// Suback is the SUBACK packet. ReasonCodes holds one code per filter: in
// 3.1.1 the granted QoS (0, 1, 2) or 0x80 for failure.
type Suback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  []string
}

// Unsuback is the UNSUBACK packet. ReasonCodes is v5 only.
type Unsuback struct {
	PacketID    uint16
	Props       Properties
	ReasonCodes []ReasonCode
}

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet. ReasonCode and Props are v5 only.
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is the v5 AUTH packet.
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Type returns CONNECT.
func (*Connect) Type() Type { return CONNECT }

// Type returns CONNACK.
func (*Connack) Type() Type { return CONNACK }

// Type returns PUBLISH.
func (*Publish) Type() Type { return PUBLISH }

// Type returns a.Kind: PUBACK, PUBREC, PUBREL or PUBCOMP.
func (a *Ack) Type() Type { return a.Kind }

// Type returns SUBSCRIBE.
func (*Subscribe) Type() Type { return SUBSCRIBE }

// Type returns SUBACK.
func (*Suback) Type() Type { return SUBACK }

// Type returns UNSUBSCRIBE.
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }

// Type returns UNSUBACK.
func (*Unsuback) Type() Type { return UNSUBACK }

// Type returns PINGREQ.
func (*Pingreq) Type() Type { return PINGREQ }

// Type returns PINGRESP.
func (*Pingresp) Type() Type { return PINGRESP }

// Type returns DISCONNECT.
func (*Disconnect) Type() Type { return DISCONNECT }

// Type returns AUTH.
func (*Auth) Type() Type { return AUTH }

// UserProperty is one v5 User Property name/value pair.
type UserProperty struct {
	Key, Value string
}

// Properties holds the MQTT 5 properties of any packet. A zero field means
// absent where zero is not a legal value or means the same as absent; the
// Has* flags mark presence where the spec gives absence its own meaning.
type Properties struct {
	PayloadFormat        byte   // 0x01
	MessageExpiry        uint32 // 0x02
	HasMessageExpiry     bool
	ContentType          string   // 0x03
	ResponseTopic        string   // 0x08
	CorrelationData      []byte   // 0x09
	SubscriptionIDs      []uint32 // 0x0B, several in PUBLISH, at most one in SUBSCRIBE
	SessionExpiry        uint32   // 0x11
	HasSessionExpiry     bool
	AssignedClientID     string // 0x12
	ServerKeepAlive      uint16 // 0x13
	HasServerKeepAlive   bool
	AuthMethod           string // 0x15
	HasAuthMethod        bool   // present, even empty; a non-empty AuthMethod is sent without it too
	AuthData             []byte // 0x16
	RequestProblemInfo   byte   // 0x17, absent means 1
	HasRequestProblem    bool
	WillDelay            uint32 // 0x18
	RequestResponseInfo  byte   // 0x19
	ResponseInfo         string // 0x1A
	ServerReference      string // 0x1C
	ReasonString         string // 0x1F
	ReceiveMaximum       uint16 // 0x21, 0 means absent (65535)
	TopicAliasMaximum    uint16 // 0x22
	TopicAlias           uint16 // 0x23, 0 means absent
	MaximumQoS           byte   // 0x24
	HasMaximumQoS        bool
	RetainAvailable      byte // 0x25
	HasRetainAvailable   bool
	User                 []UserProperty // 0x26
	MaximumPacketSize    uint32         // 0x27, 0 means absent (no limit)
	WildcardSubAvailable byte           // 0x28
	HasWildcardSub       bool
	SubIDAvailable       byte // 0x29
	HasSubIDAvailable    bool
	SharedSubAvailable   byte // 0x2A
	HasSharedSub         bool
}
