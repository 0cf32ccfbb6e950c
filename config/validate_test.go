package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func tlsListener(typ ListenerType, addr string) Listener {
	return Listener{Name: string(typ) + addr, Type: typ, Address: addr, TLS: TLS{CertFile: "c", KeyFile: "k"}}
}

// TestValidateRejects checks that each rule produces an error naming its
// key. Each case breaks Default in one way.
func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(c *Config)
		path   string // the FieldError's Path
		msg    string // part of its message
	}{
		// listeners
		{"no listeners", func(c *Config) { c.Listeners = nil }, "listeners", "at least one listener"},
		{"unknown type", func(c *Config) { c.Listeners[0].Type = "udp" }, "listeners[0].type", `must be one of tcp, tls, ws, wss, got "udp"`},
		{"address without port", func(c *Config) { c.Listeners[0].Address = "127.0.0.1" }, "listeners[0].address", "must be host:port"},
		{"named port", func(c *Config) { c.Listeners[0].Address = "127.0.0.1:mqtt" }, "listeners[0].address", "port must be a number"},
		{"port out of range", func(c *Config) { c.Listeners[0].Address = "127.0.0.1:70000" }, "listeners[0].address", "port must be a number"},
		{"duplicate address", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "b", Type: ListenerTCP, Address: "127.0.0.1:1883"})
		}, "listeners[1].address", `"127.0.0.1:1883" conflicts with listeners[0].address`},
		{"wildcard overlaps loopback", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "b", Type: ListenerTCP, Address: ":1883"})
		}, "listeners[1].address", "conflicts with listeners[0].address"},
		{"localhost is 127.0.0.1", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "b", Type: ListenerTCP, Address: "localhost:1883"})
		}, "listeners[1].address", "conflicts with listeners[0].address"},
		{"http on a listener's address", func(c *Config) { c.HTTP.Listen = "127.0.0.1:1883" }, "http.listen", "conflicts with listeners[0].address"},
		{"cluster on a listener's address", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.Embedded.Listen = "0.0.0.0:1883"
		}, "cluster.embedded.listen", "conflicts with listeners[0].address"},
		{"duplicate name", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: c.Listeners[0].Name, Type: ListenerTCP, Address: "127.0.0.1:1884"})
		}, "listeners[1].name", "is already the name of listeners[0]"},
		{"ws path without slash", func(c *Config) {
			c.Listeners[0].Type = ListenerWS
			c.Listeners[0].Path = "mqtt"
		}, "listeners[0].path", `must start with '/', got "mqtt"`},
		{"path on tcp", func(c *Config) { c.Listeners[0].Path = "/mqtt" }, "listeners[0].path", "only ws and wss listeners have a path"},
		{"negative listener max_connections", func(c *Config) { c.Listeners[0].MaxConnections = -1 }, "listeners[0].max_connections", "must be at least 0, got -1"},
		{"listener max_packet_size above the broker's", func(c *Config) { c.Listeners[0].MaxPacketSize = 2 * MiB }, "listeners[0].max_packet_size", "between 16 and mqtt.max_packet_size"},
		{"listener max_packet_size too small", func(c *Config) { c.Listeners[0].MaxPacketSize = 8 }, "listeners[0].max_packet_size", "got 8"},
		{"tls without cert", func(c *Config) { c.Listeners[0].Type = ListenerTLS }, "listeners[0].tls.cert_file", "required for a tls listener"},
		{"wss without key", func(c *Config) {
			c.Listeners[0] = Listener{Type: ListenerWSS, Address: "127.0.0.1:8884", Path: "/", TLS: TLS{CertFile: "c"}}
		}, "listeners[0].tls.key_file", "required for a wss listener"},
		{"require_client_cert without CA", func(c *Config) {
			c.Listeners[0] = tlsListener(ListenerTLS, "127.0.0.1:8883")
			c.Listeners[0].TLS.RequireClientCert = true
		}, "listeners[0].tls.client_ca_file", "required with tls.require_client_cert"},
		{"cn_as_username without CA", func(c *Config) {
			c.Listeners[0] = tlsListener(ListenerTLS, "127.0.0.1:8883")
			c.Listeners[0].TLS.CNAsUsername = true
		}, "listeners[0].tls.client_ca_file", "required with tls.cn_as_username"},
		{"tls settings on tcp", func(c *Config) { c.Listeners[0].TLS.CertFile = "c" }, "listeners[0].tls", "only tls and wss listeners use TLS settings"},
		// store
		{"unknown store", func(c *Config) { c.Store = "redis" }, "store", `must be one of pebble, memory, got "redis"`},
		{"pebble without data_dir", func(c *Config) { c.DataDir = "" }, "data_dir", `required with store "pebble"`},
		// mqtt
		{"tiny packet size", func(c *Config) { c.MQTT.MaxPacketSize = 5 }, "mqtt.max_packet_size", "must be between 16 and 268435455, got 5"},
		{"huge packet size", func(c *Config) { c.MQTT.MaxPacketSize = GiB; c.MQTT.MaxQueuedBytes = GiB }, "mqtt.max_packet_size", "must be between 16 and 268435455"},
		{"receive_maximum 0", func(c *Config) { c.MQTT.ReceiveMaximum = 0 }, "mqtt.receive_maximum", "must be between 1 and 65535, got 0"},
		{"max_inflight too big", func(c *Config) { c.MQTT.MaxInflight = 65536 }, "mqtt.max_inflight", "must be between 1 and 65535, got 65536"},
		{"max_queued_messages 0", func(c *Config) { c.MQTT.MaxQueuedMessages = 0 }, "mqtt.max_queued_messages", "must be at least 1, got 0"},
		{"queue smaller than a packet", func(c *Config) { c.MQTT.MaxQueuedBytes = 512 * KiB }, "mqtt.max_queued_bytes", "must be at least mqtt.max_packet_size (1MiB)"},
		{"max_keepalive too big", func(c *Config) { c.MQTT.MaxKeepAlive = 70000 }, "mqtt.max_keepalive", "must be between 0 and 65535"},
		{"server_keepalive negative", func(c *Config) { c.MQTT.ServerKeepAlive = -1 }, "mqtt.server_keepalive", "must be between 0 and 65535"},
		{"server_keepalive above max", func(c *Config) { c.MQTT.MaxKeepAlive = 60; c.MQTT.ServerKeepAlive = 120 }, "mqtt.server_keepalive", "must not exceed mqtt.max_keepalive (60), got 120"},
		{"topic_alias_maximum too big", func(c *Config) { c.MQTT.TopicAliasMaximum = 65536 }, "mqtt.topic_alias_maximum", "must be between 0 and 65535"},
		{"session expiry below a second", func(c *Config) { c.MQTT.MaxSessionExpiry = Duration(500 * time.Millisecond) }, "mqtt.max_session_expiry", "must be 0 (no cap) or at least 1s, got 500ms"},
		{"session expiry beyond uint32 seconds", func(c *Config) { c.MQTT.MaxSessionExpiry = Duration(200 * 365 * 24 * time.Hour) }, "mqtt.max_session_expiry", "2^32-1 seconds"},
		{"max_topic_levels negative", func(c *Config) { c.MQTT.MaxTopicLevels = -1 }, "mqtt.max_topic_levels", "must be between 0 and 32768"},
		{"connect_timeout 0", func(c *Config) { c.MQTT.ConnectTimeout = 0 }, "mqtt.connect_timeout", "must be more than 0"},
		{"maximum_qos 3", func(c *Config) { c.MQTT.MaximumQoS = 3 }, "mqtt.maximum_qos", "must be between 0 and 2, got 3"},
		{"client id shorter than spec minimum", func(c *Config) { c.MQTT.MaxClientIDLength = 10 }, "mqtt.max_client_id_length", "must be between 23 and 65535, got 10"},
		{"sys_interval below a second", func(c *Config) { c.MQTT.SysInterval = Duration(time.Millisecond) }, "mqtt.sys_interval", "must be 0 (off) or at least 1s, got 1ms"},
		// limits
		{"negative max_connections", func(c *Config) { c.Limits.MaxConnections = -1 }, "limits.max_connections", "must be at least 0"},
		{"negative connect_rate", func(c *Config) { c.Limits.ConnectRate = -1 }, "limits.connect_rate", "must not be negative, got -1"},
		{"connect_rate without burst", func(c *Config) { c.Limits.ConnectRate = 10; c.Limits.ConnectBurst = 0 }, "limits.connect_burst", "must be at least 1, got 0"},
		{"negative connect_burst", func(c *Config) { c.Limits.ConnectBurst = -1 }, "limits.connect_burst", "must be at least 0"},
		{"negative publish_rate", func(c *Config) { c.Limits.PublishRate = -0.5 }, "limits.publish_rate", "must not be negative, got -0.5"},
		{"NaN connect_rate", func(c *Config) { c.Limits.ConnectRate = math.NaN() }, "limits.connect_rate", "must be a finite number, got NaN"},
		{"infinite publish_rate", func(c *Config) { c.Limits.PublishRate = math.Inf(1) }, "limits.publish_rate", "must be a finite number, got +Inf"},
		{"negative publish_bandwidth", func(c *Config) { c.Limits.PublishBandwidth = -1 }, "limits.publish_bandwidth", "must not be negative"},
		{"negative max_subscriptions_per_client", func(c *Config) { c.Limits.MaxSubscriptionsPerClient = -1 }, "limits.max_subscriptions_per_client", "must be at least 0"},
		{"memory budget below one queue", func(c *Config) { c.Limits.MemoryBudget = MiB }, "limits.memory_budget", "at least mqtt.max_queued_bytes (8MiB), got 1MiB"},
		{"flap max_connects 0", func(c *Config) {
			c.Limits.FlapDetection.Enabled = true
			c.Limits.FlapDetection.MaxConnects = 0
		}, "limits.flap_detection.max_connects", "must be at least 1"},
		{"flap window 0", func(c *Config) {
			c.Limits.FlapDetection.Enabled = true
			c.Limits.FlapDetection.Window = 0
		}, "limits.flap_detection.window", "must be more than 0"},
		{"flap ban 0", func(c *Config) {
			c.Limits.FlapDetection.Enabled = true
			c.Limits.FlapDetection.Ban = 0
		}, "limits.flap_detection.ban", "must be more than 0"},
		// auth
		{"jwt without key", func(c *Config) { c.Auth.JWT.Enabled = true }, "auth.jwt", "neither auth.jwt.hmac_secret_file nor auth.jwt.public_key_file"},
		{"jwt with both keys", func(c *Config) {
			c.Auth.JWT = JWT{Enabled: true, HMACSecretFile: "s", PublicKeyFile: "p", UsernameClaim: "sub"}
		}, "auth.jwt.public_key_file", "set only one"},
		{"jwt without username claim", func(c *Config) {
			c.Auth.JWT = JWT{Enabled: true, HMACSecretFile: "s"}
		}, "auth.jwt.username_claim", "required"},
		{"hook url not http", func(c *Config) { c.Auth.HTTPHook.URL = "ftp://auth" }, "auth.http_hook.url", `must be an http:// or https:// URL, got "ftp://auth"`},
		{"hook url relative", func(c *Config) { c.Auth.HTTPHook.URL = "/auth" }, "auth.http_hook.url", "must be an http:// or https:// URL"},
		{"hook timeout 0", func(c *Config) {
			c.Auth.HTTPHook.URL = "http://auth:8080/check"
			c.Auth.HTTPHook.Timeout = 0
		}, "auth.http_hook.timeout", "must be more than 0"},
		{"anonymous off without authenticator", func(c *Config) { c.Auth.AllowAnonymous = ptr(false) }, "auth.allow_anonymous", "is false, but no authenticator is configured"},
		{"public listener without authenticator", func(c *Config) { c.Listeners[0].Address = "0.0.0.0:1883" },
			"auth.allow_anonymous", `defaults to false because listeners[0].address "0.0.0.0:1883" serves remote clients`},
		// acl
		{"acl default", func(c *Config) { c.ACL.Default = "maybe" }, "acl.default", `must be one of allow, deny, got "maybe"`},
		{"acl action", func(c *Config) { c.ACL.Rules = []ACLRule{{Action: "read", Topic: "a"}} }, "acl.rules[0].action", "must be one of publish, subscribe, all"},
		{"acl empty topic", func(c *Config) { c.ACL.Rules = []ACLRule{{Action: ACLAll}} }, "acl.rules[0].topic", "must not be empty"},
		{"acl # not last", func(c *Config) {
			c.ACL.Rules = []ACLRule{{Action: ACLAll, Topic: "a"}, {Action: ACLAll, Topic: "a/#/b"}}
		}, "acl.rules[1].topic", "'#' must be the whole last level"},
		{"acl # inside level", func(c *Config) { c.ACL.Rules = []ACLRule{{Action: ACLAll, Topic: "a/b#"}} }, "acl.rules[0].topic", "'#' must be the whole last level"},
		{"acl + inside level", func(c *Config) { c.ACL.Rules = []ACLRule{{Action: ACLAll, Topic: "users/%u+/x"}} }, "acl.rules[0].topic", "'+' must be a whole level"},
		{"acl null character", func(c *Config) { c.ACL.Rules = []ACLRule{{Action: ACLAll, Topic: "a\x00b"}} }, "acl.rules[0].topic", "null character"},
		// cluster
		{"node name with dot", func(c *Config) { c.Cluster.Enabled = true; c.Cluster.NodeName = "node.1" }, "cluster.node_name", "may hold only letters"},
		{"nats url scheme", func(c *Config) { c.Cluster.Enabled = true; c.Cluster.NATSURL = "nats://a:4222,http://b:4222" }, "cluster.nats_url", `got "http://b:4222"`},
		{"routes with external nats", func(c *Config) {
			c.Cluster = Cluster{Enabled: true, NATSURL: "nats://a:4222", Embedded: EmbeddedNATS{Routes: []string{"b:6222"}}}
		}, "cluster.embedded.routes", "cluster.nats_url replaces"},
		{"embedded listen", func(c *Config) { c.Cluster.Enabled = true; c.Cluster.Embedded.Listen = "6222" }, "cluster.embedded.listen", "must be host:port"},
		{"route without port", func(c *Config) {
			c.Cluster.Enabled = true
			c.Cluster.Embedded.Routes = []string{"nats-route://b:6222", "nats-route://c"}
		}, "cluster.embedded.routes[1]", `got "nats-route://c"`},
		// kafka
		{"kafka without brokers", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Out: []KafkaOut{{MQTTFilter: "#", Topic: "all"}}}
		}, "kafka.brokers", "at least one broker"},
		{"kafka broker address", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"kafka"}, Out: []KafkaOut{{MQTTFilter: "#", Topic: "all"}}}
		}, "kafka.brokers[0]", `must be host:port`},
		{"kafka without routes", func(c *Config) { c.Kafka = Kafka{Enabled: true, Brokers: []string{"k:9092"}} }, "kafka", "neither kafka.out nor kafka.in"},
		{"kafka out filter", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"k:9092"}, Out: []KafkaOut{{MQTTFilter: "a/#/b", Topic: "t"}}}
		}, "kafka.out[0].mqtt_filter", "'#' must be the whole last level"},
		{"kafka out topic", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"k:9092"}, Out: []KafkaOut{{MQTTFilter: "#", Topic: "chat messages"}}}
		}, "kafka.out[0].topic", "may hold only letters"},
		{"kafka in topic", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"k:9092"}, In: []KafkaIn{{Topic: "..", MQTTTopic: "a"}}}
		}, "kafka.in[0].topic", "not a valid Kafka topic"},
		{"kafka in mqtt topic with wildcard", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"k:9092"}, In: []KafkaIn{{Topic: "n", MQTTTopic: "a/+"}}}
		}, "kafka.in[0].mqtt_topic", "must not contain '+' or '#'"},
		// http, log
		{"http listen", func(c *Config) { c.HTTP.Listen = "localhost" }, "http.listen", "must be host:port"},
		{"public http without token", func(c *Config) { c.HTTP.Listen = ":8080" }, "http.admin_token", "required when http.listen"},
		{"log level", func(c *Config) { c.Log.Level = "trace" }, "log.level", `must be one of debug, info, warn, error, got "trace"`},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format", `must be one of text, json, got "xml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.break_(c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil; want an error")
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *FieldError", e)
				}
				if fe.Path == tt.path && strings.Contains(fe.Msg, tt.msg) {
					if want := tt.path + ": "; !strings.HasPrefix(e.Error(), want) {
						t.Errorf("error %q does not start with %q", e, want)
					}
					return
				}
			}
			t.Errorf("Validate() =\n%v\nwant an error at %s containing %q", err, tt.path, tt.msg)
		})
	}
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	c := Default()
	c.MQTT.MaximumQoS = 3
	c.Log.Level = "loud"
	c.Store = "disk"
	err := c.Validate()
	for _, path := range []string{"mqtt.maximum_qos", "log.level", "store"} {
		if err == nil || !strings.Contains(err.Error(), path+": ") {
			t.Errorf("Validate() = %v; want it to report %s", err, path)
		}
	}
}

// TestValidateAccepts checks configurations that are unusual but correct.
func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name   string
		change func(c *Config)
	}{
		{"port 0 twice", func(c *Config) {
			c.Listeners = []Listener{{Name: "a", Type: ListenerTCP, Address: "127.0.0.1:0"}, {Name: "b", Type: ListenerTCP, Address: "127.0.0.1:0"}}
		}},
		{"same port on two loopback addresses", func(c *Config) {
			c.Listeners = append(c.Listeners, Listener{Name: "b", Type: ListenerTCP, Address: "127.0.0.2:1883"})
		}},
		{"IPv4 wildcard and IPv6 loopback on one port", func(c *Config) {
			c.Listeners = []Listener{{Name: "a", Type: ListenerTCP, Address: "0.0.0.0:1883"}, {Name: "b", Type: ListenerTCP, Address: "[::1]:1883"}}
			c.Auth.AllowAnonymous = ptr(true)
		}},
		{"every listener type", func(c *Config) {
			c.Listeners = []Listener{
				{Name: "a", Type: ListenerTCP, Address: "127.0.0.1:1883", ProxyProtocol: true, MaxConnections: 10},
				tlsListener(ListenerTLS, "127.0.0.1:8883"),
				{Name: "c", Type: ListenerWS, Address: "127.0.0.1:8083", Path: "/mqtt"},
				tlsListener(ListenerWSS, "127.0.0.1:8084"),
			}
			c.Listeners[3].Path = "/"
			c.Listeners[1].TLS.ClientCAFile = "ca"
			c.Listeners[1].TLS.RequireClientCert = true
			c.Listeners[1].TLS.CNAsUsername = true
		}},
		{"public listener with password file", func(c *Config) {
			c.Listeners[0].Address = ":1883"
			c.Auth.PasswordFile = "/etc/herald/passwd"
		}},
		{"public tls listener authenticating by certificate", func(c *Config) {
			c.Listeners[0] = tlsListener(ListenerTLS, "0.0.0.0:8883")
			c.Listeners[0].TLS.ClientCAFile = "ca"
			c.Listeners[0].TLS.CNAsUsername = true
		}},
		{"memory store without data_dir", func(c *Config) { c.Store = StoreMemory; c.DataDir = "" }},
		{"all features off", func(c *Config) {
			c.MQTT.RetainAvailable = false
			c.MQTT.WildcardSubscriptions = false
			c.MQTT.SharedSubscriptions = false
			c.MQTT.SubscriptionIdentifiers = false
			c.MQTT.MaximumQoS = 0
			c.MQTT.SysInterval = 0
			c.MQTT.MaxSessionExpiry = 0
			c.MQTT.TopicAliasMaximum = 0
			c.Limits.MemoryBudget = 0
		}},
		{"rates and flap detection", func(c *Config) {
			c.Limits = Limits{ConnectRate: 0.5, ConnectBurst: 1, PublishRate: 0.5, PublishBandwidth: 64 * KiB,
				FlapDetection: FlapDetection{Enabled: true, MaxConnects: 3, Window: Duration(time.Second), Ban: Duration(time.Minute)}}
		}},
		{"jwt and hook", func(c *Config) {
			c.Auth.JWT = JWT{Enabled: true, PublicKeyFile: "k.pem", UsernameClaim: "sub", ACLClaim: "acl"}
			c.Auth.HTTPHook = HTTPHook{URL: "https://auth.example/check", Timeout: Duration(time.Second)}
		}},
		{"acl rules with placeholders", func(c *Config) {
			c.ACL = ACL{Default: ACLDeny, Rules: []ACLRule{
				{Action: ACLAll, Allow: true, Topic: "users/%u/#"},
				{Action: ACLPublish, Allow: true, Topic: "clients/%c"},
				{Action: ACLSubscribe, Allow: true, Topic: "+/+/status"},
				{Action: ACLAll, Allow: true, Topic: "#", Username: "admin"},
				{Action: ACLPublish, Allow: false, Topic: "$SYS/#", ClientID: "x"},
			}}
		}},
		{"embedded cluster", func(c *Config) {
			c.Cluster = Cluster{Enabled: true, NodeName: "node-1", Embedded: EmbeddedNATS{
				Listen: "0.0.0.0:6222", Routes: []string{"10.0.0.2:6222", "nats-route://10.0.0.3:6222", "nats://n4:6222"}}}
		}},
		{"external nats", func(c *Config) {
			c.Cluster = Cluster{Enabled: true, NATSURL: "nats://a:4222, tls://b:4222"}
		}},
		{"disabled sections are not checked", func(c *Config) {
			c.Cluster.Embedded.Listen = "nonsense"
			c.Kafka.Brokers = []string{"nonsense"}
			c.Auth.JWT.UsernameClaim = ""
			c.Limits.FlapDetection.Window = 0
		}},
		{"kafka both ways", func(c *Config) {
			c.Kafka = Kafka{Enabled: true, Brokers: []string{"k1:9092", "k2:9092"},
				Out: []KafkaOut{{MQTTFilter: "rooms/+/messages", Topic: "chat.messages"}},
				In:  []KafkaIn{{Topic: "notifications_v1", MQTTTopic: "notify/all"}}}
		}},
		{"loopback http without token", func(c *Config) { c.HTTP.Listen = "127.0.0.1:8080" }},
		{"public http with token", func(c *Config) { c.HTTP = HTTP{Listen: ":8080", AdminToken: "t"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.change(c)
			if err := c.Validate(); err != nil {
				t.Errorf("Validate() = %v; want nil", err)
			}
		})
	}
}

func TestAllowAnonymousDefaultsToLoopbackOnly(t *testing.T) {
	tests := []struct {
		name      string
		addresses []string
		explicit  *bool
		want      bool
	}{
		{"default listener", []string{"127.0.0.1:1883"}, nil, true},
		{"localhost", []string{"localhost:1883"}, nil, true},
		{"IPv6 loopback", []string{"[::1]:1883"}, nil, true},
		{"other loopback address", []string{"127.0.0.5:1883"}, nil, true},
		{"several loopback listeners", []string{"127.0.0.1:1883", "[::1]:1884"}, nil, true},
		{"all interfaces, empty host", []string{":1883"}, nil, false},
		{"IPv4 wildcard", []string{"0.0.0.0:1883"}, nil, false},
		{"IPv6 wildcard", []string{"[::]:1883"}, nil, false},
		{"one public among loopback", []string{"127.0.0.1:1883", "10.0.0.1:1883"}, nil, false},
		{"host name", []string{"broker.example:1883"}, nil, false},
		{"explicit true on public", []string{"0.0.0.0:1883"}, ptr(true), true},
		{"explicit false on loopback", []string{"127.0.0.1:1883"}, ptr(false), false},
		// A load balancer on this host relays remote clients.
		{"loopback behind PROXY protocol", []string{"127.0.0.1:1883", "proxy:127.0.0.1:1884"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			c.Listeners = nil
			for i, a := range tt.addresses {
				a, proxy := strings.CutPrefix(a, "proxy:")
				c.Listeners = append(c.Listeners, Listener{Name: string(rune('a' + i)), Type: ListenerTCP, Address: a, ProxyProtocol: proxy})
			}
			c.Auth.AllowAnonymous = tt.explicit
			if got := c.AllowAnonymous(); got != tt.want {
				t.Errorf("AllowAnonymous() = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestSlogLevel(t *testing.T) {
	for _, level := range []string{"debug", "info", "warn", "error"} {
		if got := (Log{Level: level}).SlogLevel().String(); !strings.EqualFold(got, level) {
			t.Errorf("SlogLevel(%q) = %s", level, got)
		}
	}
}
