package broker

import (
	"log/slog"
	"net"
	"time"

	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// Options are the broker's protocol limits and plug-ins. The zero value of
// a field means its default (see DefaultOptions).
type Options struct {
	MaxPacketSize     uint32        // largest packet accepted from a client, bytes
	ReceiveMaximum    uint16        // inbound QoS 1/2 publishes a client may have unacknowledged
	MaxInflight       uint16        // outbound QoS 1/2 publishes in flight per client
	MaxQueuedMessages int           // per-session queue of QoS 1/2 messages waiting for the window or the client
	MaxQueuedBytes    int           // per-session queued bytes: topic, payload and properties (Message.weight)
	MaxPendingBytes   int           // per-connection unwritten bytes beyond which QoS 0 is dropped
	MaxKeepAlive      uint16        // seconds; 0 lets clients choose
	ServerKeepAlive   uint16        // seconds; 0 means not imposed
	TopicAliasMaximum uint16        // aliases a v5 client may use towards the broker
	MaxSessionExpiry  uint32        // seconds; 0 means no cap
	MaxTopicLevels    int           // 0 means no cap
	MaxClientIDLength int           // bytes
	ConnectTimeout    time.Duration // close connections that send no CONNECT within this
	MaximumQoS        byte          // highest QoS accepted and granted
	RetainAvailable   bool
	WildcardSubs      bool
	SharedSubs        bool
	SubIDs            bool
	SysInterval       time.Duration // $SYS publish period; 0 disables $SYS
	MaxSubsPerClient  int           // 0 means no cap
	Limits            Limits        // overload protection

	Logger *slog.Logger
	Store  store.Store // nil means in-memory only
	Auth   Authenticator
	ACL    Authorizer
	Hooks  []Hook // observers of broker events (metrics, bridges, cluster)
}

// DefaultOptions returns the limits `herald serve` uses when nothing is set.
func DefaultOptions() Options {
	return Options{
		MaxPacketSize:     1 << 20,
		ReceiveMaximum:    128,
		MaxInflight:       128,
		MaxQueuedMessages: 1000,
		MaxQueuedBytes:    8 << 20,
		MaxPendingBytes:   4 << 20,
		TopicAliasMaximum: 64,
		MaxClientIDLength: 65535,
		ConnectTimeout:    10 * time.Second,
		MaximumQoS:        2,
		RetainAvailable:   true,
		WildcardSubs:      true,
		SharedSubs:        true,
		SubIDs:            true,
		SysInterval:       10 * time.Second,
	}
}

// ClientInfo describes a connecting or connected client to authenticators,
// authorizers and hooks.
type ClientInfo struct {
	ClientID   string
	Username   string
	Version    byte
	RemoteAddr net.Addr // set when an Authenticator is configured, before it runs
	Listener   string
	CertCN     string // common name of a verified client certificate, if any
	// AuthExpiry, when an Authenticator sets it, is when the credentials
	// stop being valid (a JWT's exp): the broker then closes the
	// connection, telling a v5 client 0x87 Not authorized.
	AuthExpiry time.Time
}

// Authenticator decides whether a CONNECT may proceed. It returns
// packet.Success or a v5 refusal code (mapped to 3.1.1 return codes by the
// broker). It may replace info.Username (for example from a JWT claim).
type Authenticator interface {
	Authenticate(info *ClientInfo, password []byte) packet.ReasonCode
}

// Authorizer decides whether a client may publish to a topic or subscribe
// to a filter.
type Authorizer interface {
	CanPublish(info *ClientInfo, topic string) bool
	CanSubscribe(info *ClientInfo, filter string) bool
}

// Hook observes broker events. Methods are called synchronously on the
// broker's hot paths and must not block.
type Hook interface {
	// OnPublish is called once per message accepted from a client (or from
	// Server.Publish), before it is routed.
	OnPublish(info *ClientInfo, m *Message)
}
