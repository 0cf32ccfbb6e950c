// Package config defines Herald's configuration file: its schema, the
// defaults that make `herald serve` work with no file at all, strict loading
// (unknown keys are errors, reported with file and line), environment
// overrides, and validation that reports every problem at once, each naming
// the key it is about.
//
// Every key is documented in herald.example.yaml at the root of the
// repository; a test keeps that file and Default in agreement.
//
// The usual sequence is LoadWithEnv(path, os.Environ()). Validate performs
// no I/O: files named by the configuration (certificates, password files)
// are read, and their errors reported, by the packages that use them.
package config

import (
	"log/slog"
	"time"
)

// Config is the whole of Herald's configuration. The zero value is not
// useful; start from Default or Load.
type Config struct {
	// Listeners are the network endpoints that accept MQTT clients.
	Listeners []Listener `yaml:"listeners"`
	// DataDir is the directory of the durable store.
	DataDir string `yaml:"data_dir"`
	// Store selects the storage engine: StorePebble or StoreMemory.
	Store string `yaml:"store"`
	// MQTT holds protocol limits and the features advertised to clients.
	MQTT MQTT `yaml:"mqtt"`
	// Limits protects the broker from overload and abusive clients.
	Limits Limits `yaml:"limits"`
	// Auth configures how clients are authenticated.
	Auth Auth `yaml:"auth"`
	// ACL holds the topic access rules.
	ACL ACL `yaml:"acl"`
	// Cluster configures NATS-backed clustering.
	Cluster Cluster `yaml:"cluster"`
	// Kafka configures the Kafka bridges.
	Kafka Kafka `yaml:"kafka"`
	// HTTP configures the admin, metrics and dashboard endpoint.
	HTTP HTTP `yaml:"http"`
	// Log configures structured logging.
	Log Log `yaml:"log"`
}

// ListenerType is the transport a listener speaks.
type ListenerType string

// The listener types.
const (
	ListenerTCP ListenerType = "tcp" // plain MQTT over TCP
	ListenerTLS ListenerType = "tls" // MQTT over TLS
	ListenerWS  ListenerType = "ws"  // MQTT over WebSocket
	ListenerWSS ListenerType = "wss" // MQTT over WebSocket over TLS
)

// UsesTLS reports whether the listener type terminates TLS itself.
func (t ListenerType) UsesTLS() bool { return t == ListenerTLS || t == ListenerWSS }

// UsesWebSocket reports whether the listener type carries MQTT in WebSocket
// frames.
func (t ListenerType) UsesWebSocket() bool { return t == ListenerWS || t == ListenerWSS }

// DefaultWebSocketPath is the HTTP path of ws and wss listeners that do not
// set one.
const DefaultWebSocketPath = "/mqtt"

// Listener is one network endpoint accepting MQTT clients.
type Listener struct {
	// Name identifies the listener in logs and metrics. Load sets it to
	// "type://address" when the file leaves it out.
	Name string `yaml:"name"`
	// Type is the transport; Load sets ListenerTCP when it is left out.
	Type ListenerType `yaml:"type"`
	// Address is the host:port to listen on. Port 0 picks a free port.
	Address string `yaml:"address"`
	// Path is the HTTP path of ws and wss listeners; Load sets
	// DefaultWebSocketPath when it is left out.
	Path string `yaml:"path"`
	// ProxyProtocol expects a PROXY protocol (v1 or v2) header before MQTT,
	// so that client addresses survive a load balancer.
	ProxyProtocol bool `yaml:"proxy_protocol"`
	// MaxConnections caps open connections on this listener; 0 is unlimited.
	MaxConnections int `yaml:"max_connections"`
	// MaxPacketSize, when not 0, lowers mqtt.max_packet_size for this
	// listener's clients (for example browsers on a WebSocket listener).
	MaxPacketSize ByteSize `yaml:"max_packet_size"`
	// TLS configures certificates for tls and wss listeners.
	TLS TLS `yaml:"tls"`
}

// TLS is the TLS configuration of a tls or wss listener.
type TLS struct {
	// CertFile is the PEM certificate chain presented to clients.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs that client certificates are
	// verified against; empty means client certificates are not requested.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert rejects clients without a valid certificate.
	RequireClientCert bool `yaml:"require_client_cert"`
	// CNAsUsername uses the client certificate's common name as the MQTT
	// username, and counts as authentication.
	CNAsUsername bool `yaml:"cn_as_username"`
}

// The storage engines.
const (
	StorePebble = "pebble" // durable, on disk under DataDir
	StoreMemory = "memory" // lost on restart; for tests and ephemeral brokers
)

// MQTT holds protocol limits and the optional features the broker
// advertises in CONNACK.
type MQTT struct {
	// MaxPacketSize is the largest packet accepted or sent, in bytes.
	MaxPacketSize ByteSize `yaml:"max_packet_size"`
	// ReceiveMaximum is how many inbound QoS 1 and 2 publishes a client may
	// have unacknowledged at once.
	ReceiveMaximum int `yaml:"receive_maximum"`
	// MaxInflight is how many outbound QoS 1 and 2 publishes the broker
	// leaves unacknowledged per client before it queues instead.
	MaxInflight int `yaml:"max_inflight"`
	// MaxQueuedMessages caps the messages queued for one session.
	MaxQueuedMessages int `yaml:"max_queued_messages"`
	// MaxQueuedBytes caps the bytes (topic, payload and properties) queued
	// for one session.
	MaxQueuedBytes ByteSize `yaml:"max_queued_bytes"`
	// MaxKeepAlive, in seconds, is the longest keep alive a client may use;
	// a client asking more, or 0, is told this value as Server Keep Alive.
	// 0 lets clients choose.
	MaxKeepAlive int `yaml:"max_keepalive"`
	// ServerKeepAlive, in seconds, when not 0, is sent to every MQTT 5
	// client as Server Keep Alive, overriding what it asked.
	ServerKeepAlive int `yaml:"server_keepalive"`
	// TopicAliasMaximum is the number of topic aliases a client may use
	// towards the broker; 0 disables them.
	TopicAliasMaximum int `yaml:"topic_alias_maximum"`
	// MaxSessionExpiry caps the session expiry a client may ask for; 0 is
	// no cap.
	MaxSessionExpiry Duration `yaml:"max_session_expiry"`
	// MaxTopicLevels caps the levels of a topic or filter; 0 is unlimited.
	MaxTopicLevels int `yaml:"max_topic_levels"`
	// ConnectTimeout is how long a new connection has to send CONNECT.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// RetainAvailable enables retained messages.
	RetainAvailable bool `yaml:"retain_available"`
	// WildcardSubscriptions enables '+' and '#' in subscriptions.
	WildcardSubscriptions bool `yaml:"wildcard_subscriptions"`
	// SharedSubscriptions enables $share/group/filter subscriptions.
	SharedSubscriptions bool `yaml:"shared_subscriptions"`
	// SubscriptionIdentifiers enables MQTT 5 subscription identifiers.
	SubscriptionIdentifiers bool `yaml:"subscription_identifiers"`
	// MaximumQoS is the highest QoS the broker accepts, 0 to 2.
	MaximumQoS int `yaml:"maximum_qos"`
	// MaxClientIDLength is the longest client identifier accepted, in bytes.
	MaxClientIDLength int `yaml:"max_client_id_length"`
	// SysInterval is how often $SYS topics are published; 0 disables them.
	SysInterval Duration `yaml:"sys_interval"`
}

// Limits protects the broker from overload and from abusive clients.
type Limits struct {
	// MaxConnections caps open connections across all listeners; 0 is
	// unlimited.
	MaxConnections int `yaml:"max_connections"`
	// ConnectRate caps new connections accepted per second across the
	// node; 0 is unlimited.
	ConnectRate float64 `yaml:"connect_rate"`
	// ConnectBurst is how many connections may arrive at once above
	// ConnectRate; used only when ConnectRate is set.
	ConnectBurst int `yaml:"connect_burst"`
	// PublishRate caps the publishes per second from one client; 0 is
	// unlimited.
	PublishRate float64 `yaml:"publish_rate"`
	// PublishBandwidth caps the PUBLISH packet bytes per second from one
	// client; 0 is unlimited.
	PublishBandwidth ByteSize `yaml:"publish_bandwidth"`
	// MaxSubscriptionsPerClient caps one client's subscriptions; 0 is
	// unlimited.
	MaxSubscriptionsPerClient int `yaml:"max_subscriptions_per_client"`
	// MemoryBudget caps the bytes of queued messages held in memory across
	// all sessions; beyond it the broker stops reading from publishers.
	// 0 is unlimited.
	MemoryBudget ByteSize `yaml:"memory_budget"`
	// FlapDetection bans clients that reconnect too often.
	FlapDetection FlapDetection `yaml:"flap_detection"`
}

// FlapDetection bans a client identifier that connects more than
// MaxConnects times within Window, for Ban.
type FlapDetection struct {
	// Enabled turns flap detection on.
	Enabled bool `yaml:"enabled"`
	// MaxConnects is the number of connects allowed within Window.
	MaxConnects int `yaml:"max_connects"`
	// Window is the period over which connects are counted.
	Window Duration `yaml:"window"`
	// Ban is how long a flapping client is refused.
	Ban Duration `yaml:"ban"`
}

// Auth configures how clients are authenticated.
type Auth struct {
	// AllowAnonymous admits clients without credentials. Nil means the
	// default, which Config.AllowAnonymous computes.
	AllowAnonymous *bool `yaml:"allow_anonymous"`
	// PasswordFile is a file of username:bcrypt-hash lines.
	PasswordFile string `yaml:"password_file"`
	// ACLFile is a file of additional ACL rules.
	ACLFile string `yaml:"acl_file"`
	// JWT authenticates clients that send a JSON Web Token as password.
	JWT JWT `yaml:"jwt"`
	// HTTPHook delegates authentication to an HTTP service.
	HTTPHook HTTPHook `yaml:"http_hook"`
}

// JWT configures authentication by JSON Web Token sent as the password.
type JWT struct {
	// Enabled turns JWT authentication on.
	Enabled bool `yaml:"enabled"`
	// HMACSecretFile holds the shared secret of HS256/384/512 tokens.
	HMACSecretFile string `yaml:"hmac_secret_file"`
	// PublicKeyFile holds the PEM public key of RS/ES/EdDSA tokens.
	PublicKeyFile string `yaml:"public_key_file"`
	// UsernameClaim is the claim taken as the MQTT username.
	UsernameClaim string `yaml:"username_claim"`
	// ACLClaim, when set, is a claim holding per-token ACL rules.
	ACLClaim string `yaml:"acl_claim"`
	// Audience and Issuer, when set, must be the token's "aud" (one of
	// them, if it is a list) and "iss": with a key shared with other
	// applications of an identity provider, they keep tokens issued for
	// those applications out.
	Audience string `yaml:"audience"`
	Issuer   string `yaml:"issuer"`
}

// HTTPHook delegates authentication and authorization to an HTTP service.
type HTTPHook struct {
	// URL is the service's address; empty disables the hook.
	URL string `yaml:"url"`
	// Timeout bounds one request to the service.
	Timeout Duration `yaml:"timeout"`
	// CacheTTL is how long an answer is reused; 0 disables caching.
	CacheTTL Duration `yaml:"cache_ttl"`
}

// ACLAction is what an ACL rule governs.
type ACLAction string

// The ACL actions.
const (
	ACLPublish   ACLAction = "publish"
	ACLSubscribe ACLAction = "subscribe"
	ACLAll       ACLAction = "all" // both publish and subscribe
)

// The ACL defaults, used when no rule matches.
const (
	ACLAllow = "allow"
	ACLDeny  = "deny"
)

// ACL holds topic access rules.
type ACL struct {
	// Default is ACLAllow or ACLDeny, the decision when no rule matches.
	Default string `yaml:"default"`
	// Rules are checked in order; the first that matches decides.
	Rules []ACLRule `yaml:"rules"`
}

// ACLRule allows or denies one action on topics matching a filter.
type ACLRule struct {
	// Action is the action the rule governs.
	Action ACLAction `yaml:"action" herald:"required"`
	// Allow is the decision; the file must state it.
	Allow bool `yaml:"allow" herald:"required"`
	// Topic is a topic filter; %u stands for the username and %c for the
	// client identifier.
	Topic string `yaml:"topic" herald:"required"`
	// Username, when set, limits the rule to that user.
	Username string `yaml:"username"`
	// ClientID, when set, limits the rule to that client identifier.
	ClientID string `yaml:"client_id"`
}

// Cluster configures NATS-backed clustering.
type Cluster struct {
	// Enabled turns clustering on.
	Enabled bool `yaml:"enabled"`
	// NodeName names this node in the cluster; empty means the host name.
	NodeName string `yaml:"node_name"`
	// NATSURL is an external NATS cluster (comma-separated URLs); empty
	// means the embedded NATS server.
	NATSURL string `yaml:"nats_url"`
	// Embedded configures the embedded NATS server.
	Embedded EmbeddedNATS `yaml:"embedded"`
}

// EmbeddedNATS configures the NATS server embedded in each node.
type EmbeddedNATS struct {
	// Listen is the host:port on which the embedded server accepts routes
	// from other nodes.
	Listen string `yaml:"listen"`
	// Routes are the other nodes' route addresses, host:port or
	// nats-route://host:port.
	Routes []string `yaml:"routes"`
}

// Kafka configures the Kafka bridges.
type Kafka struct {
	// Enabled turns the bridges on.
	Enabled bool `yaml:"enabled"`
	// Brokers are the seed brokers, host:port.
	Brokers []string `yaml:"brokers"`
	// Out copies MQTT messages to Kafka.
	Out []KafkaOut `yaml:"out"`
	// In publishes Kafka records to MQTT.
	In []KafkaIn `yaml:"in"`
}

// KafkaOut copies MQTT messages matching a filter to a Kafka topic.
type KafkaOut struct {
	// MQTTFilter selects the MQTT messages to copy.
	MQTTFilter string `yaml:"mqtt_filter"`
	// Topic is the Kafka topic written to.
	Topic string `yaml:"topic"`
}

// KafkaIn publishes the records of a Kafka topic to an MQTT topic.
type KafkaIn struct {
	// Topic is the Kafka topic read from.
	Topic string `yaml:"topic"`
	// MQTTTopic is the MQTT topic published to.
	MQTTTopic string `yaml:"mqtt_topic"`
}

// HTTP configures the admin API, metrics and dashboard endpoint.
type HTTP struct {
	// Listen is the host:port of the endpoint; empty disables it.
	Listen string `yaml:"listen"`
	// AdminToken is the bearer token the admin API requires.
	AdminToken string `yaml:"admin_token"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level; an invalid level, which Validate
// rejects, reads as info.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Default returns the configuration used when there is no file: one plain
// TCP listener on 127.0.0.1:1883, data in ./data, anonymous clients allowed
// because the only listener is on loopback.
func Default() *Config {
	c := &Config{
		Listeners: []Listener{{Type: ListenerTCP, Address: "127.0.0.1:1883"}},
		DataDir:   "./data",
		Store:     StorePebble,
		MQTT: MQTT{
			MaxPacketSize:           1 * MiB,
			ReceiveMaximum:          128,
			MaxInflight:             128,
			MaxQueuedMessages:       1000,
			MaxQueuedBytes:          8 * MiB,
			TopicAliasMaximum:       64,
			MaxSessionExpiry:        Duration(7 * 24 * time.Hour),
			MaxTopicLevels:          128,
			ConnectTimeout:          Duration(10 * time.Second),
			RetainAvailable:         true,
			WildcardSubscriptions:   true,
			SharedSubscriptions:     true,
			SubscriptionIdentifiers: true,
			MaximumQoS:              2,
			MaxClientIDLength:       256,
			SysInterval:             Duration(10 * time.Second),
		},
		Limits: Limits{
			ConnectBurst: 100,
			MemoryBudget: 1 * GiB,
			FlapDetection: FlapDetection{
				MaxConnects: 10,
				Window:      Duration(time.Minute),
				Ban:         Duration(5 * time.Minute),
			},
		},
		Auth: Auth{
			JWT: JWT{UsernameClaim: "sub"},
			HTTPHook: HTTPHook{
				Timeout:  Duration(2 * time.Second),
				CacheTTL: Duration(30 * time.Second),
			},
		},
		ACL: ACL{Default: ACLAllow},
		Cluster: Cluster{
			Embedded: EmbeddedNATS{Listen: "127.0.0.1:6222"},
		},
		Log: Log{Level: "info", Format: "text"},
	}
	c.fillDerived()
	return c
}

// fillDerived sets the defaults that depend on other keys, for values a
// file left out.
func (c *Config) fillDerived() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Type == "" {
			l.Type = ListenerTCP
		}
		if l.Path == "" && l.Type.UsesWebSocket() {
			l.Path = DefaultWebSocketPath
		}
		if l.Name == "" {
			l.Name = string(l.Type) + "://" + l.Address
		}
	}
}
