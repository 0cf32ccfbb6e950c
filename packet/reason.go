package packet

import "fmt"

// ReasonCode is an MQTT 5 reason code, or a 3.1.1 CONNACK return code or
// SUBACK granted QoS.
type ReasonCode byte

// MQTT 5 reason codes (section 2.4).
const (
	Success                     ReasonCode = 0x00 // also Normal disconnection, Granted QoS 0
	GrantedQoS1                 ReasonCode = 0x01
	GrantedQoS2                 ReasonCode = 0x02
	DisconnectWithWill          ReasonCode = 0x04
	NoMatchingSubscribers       ReasonCode = 0x10
	NoSubscriptionExisted       ReasonCode = 0x11
	ContinueAuthentication      ReasonCode = 0x18
	ReAuthenticate              ReasonCode = 0x19
	UnspecifiedError            ReasonCode = 0x80
	MalformedPacket             ReasonCode = 0x81
	ProtocolError               ReasonCode = 0x82
	ImplementationSpecific      ReasonCode = 0x83
	UnsupportedProtocolVersion  ReasonCode = 0x84
	ClientIDNotValid            ReasonCode = 0x85
	BadUsernameOrPassword       ReasonCode = 0x86
	NotAuthorized               ReasonCode = 0x87
	ServerUnavailable           ReasonCode = 0x88
	ServerBusy                  ReasonCode = 0x89
	Banned                      ReasonCode = 0x8A
	ServerShuttingDown          ReasonCode = 0x8B
	BadAuthenticationMethod     ReasonCode = 0x8C
	KeepAliveTimeout            ReasonCode = 0x8D
	SessionTakenOver            ReasonCode = 0x8E
	TopicFilterInvalid          ReasonCode = 0x8F
	TopicNameInvalid            ReasonCode = 0x90
	PacketIDInUse               ReasonCode = 0x91
	PacketIDNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded      ReasonCode = 0x93
	TopicAliasInvalid           ReasonCode = 0x94
	PacketTooLarge              ReasonCode = 0x95
	MessageRateTooHigh          ReasonCode = 0x96
	QuotaExceeded               ReasonCode = 0x97
	AdministrativeAction        ReasonCode = 0x98
	PayloadFormatInvalid        ReasonCode = 0x99
	RetainNotSupported          ReasonCode = 0x9A
	QoSNotSupported             ReasonCode = 0x9B
	UseAnotherServer            ReasonCode = 0x9C
	ServerMoved                 ReasonCode = 0x9D
	SharedSubNotSupported       ReasonCode = 0x9E
	ConnectionRateExceeded      ReasonCode = 0x9F
	MaximumConnectTime          ReasonCode = 0xA0
	SubscriptionIDsNotSupported ReasonCode = 0xA1
	WildcardSubNotSupported     ReasonCode = 0xA2
)

// MQTT 3.1 and 3.1.1 CONNACK return codes.
const (
	ConnAccepted                 ReasonCode = 0x00
	ConnRefusedProtocolVersion   ReasonCode = 0x01
	ConnRefusedIdentifier        ReasonCode = 0x02
	ConnRefusedServerUnavailable ReasonCode = 0x03
	ConnRefusedBadUserPass       ReasonCode = 0x04
	ConnRefusedNotAuthorized     ReasonCode = 0x05
)

// SubackFailure311 is the 3.1.1 SUBACK return code for a refused filter.
const SubackFailure311 ReasonCode = 0x80

// Error is a decode or protocol error with the reason code the server
// answers with before closing the connection.
type Error struct {
	Code ReasonCode
	Msg  string
}

// Error returns the message and the reason code in hex.
func (e *Error) Error() string { return fmt.Sprintf("%s (0x%02X)", e.Msg, byte(e.Code)) }

// Errorf returns an *Error with the given reason code.
func Errorf(code ReasonCode, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// ConnackCode311 maps a v5 CONNACK reason code to the closest 3.1.1 return code.
func ConnackCode311(rc ReasonCode) ReasonCode {
	switch rc {
	case Success:
		return ConnAccepted
	case UnsupportedProtocolVersion:
		return ConnRefusedProtocolVersion
	case ClientIDNotValid:
		return ConnRefusedIdentifier
	case BadUsernameOrPassword, BadAuthenticationMethod:
		return ConnRefusedBadUserPass
	case NotAuthorized, Banned:
		return ConnRefusedNotAuthorized
	default:
		return ConnRefusedServerUnavailable
	}
}
