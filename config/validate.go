package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"
)

// FieldError is one problem with one configuration key.
type FieldError struct {
	// Path is the key path, as in the file: "mqtt.max_packet_size",
	// "listeners[1].tls.cert_file".
	Path string
	// Msg says what is wrong, and usually what was found.
	Msg string
}

// Error returns "path: msg".
func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// problems collects FieldErrors, so that Validate reports all of them.
type problems []error

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		p.add(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (p *problems) atLeast(path string, v, lo int) {
	if v < lo {
		p.add(path, "must be at least %d, got %d", lo, v)
	}
}

func (p *problems) notNegative(path string, v float64) {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		p.add(path, "must be a finite number, got %g", v) // NaN would switch the limit off
	case v < 0:
		p.add(path, "must not be negative, got %g", v)
	}
}

func (p *problems) oneOf(path, v string, allowed ...string) {
	if !slices.Contains(allowed, v) {
		p.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
}

// Validate checks c and returns every problem found, joined with
// errors.Join; each is a *FieldError naming its key. Validate reads no
// files and opens no sockets.
func (c *Config) Validate() error {
	var p problems
	c.validateListeners(&p)
	c.validateAddressConflicts(&p)
	p.oneOf("store", c.Store, StorePebble, StoreMemory)
	if c.Store == StorePebble && c.DataDir == "" {
		p.add("data_dir", "required with store %q", StorePebble)
	}
	c.validateMQTT(&p)
	c.validateLimits(&p)
	c.validateAuth(&p)
	c.validateACL(&p)
	c.validateCluster(&p)
	c.validateKafka(&p)
	c.validateHTTP(&p)
	p.oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	p.oneOf("log.format", c.Log.Format, "text", "json")
	return errors.Join(p...)
}

func (c *Config) validateListeners(p *problems) {
	if len(c.Listeners) == 0 {
		p.add("listeners", "at least one listener is required")
	}
	names := map[string]int{}
	for i, l := range c.Listeners {
		at := fmt.Sprintf("listeners[%d]", i)
		if l.Name != "" {
			if j, dup := names[l.Name]; dup {
				p.add(at+".name", "%q is already the name of listeners[%d]", l.Name, j)
			}
			names[l.Name] = i
		}
		p.oneOf(at+".type", string(l.Type), "tcp", "tls", "ws", "wss")
		if _, _, err := splitHostPort(l.Address); err != nil {
			p.add(at+".address", "%v", err)
		}
		switch {
		case l.Type.UsesWebSocket() && !strings.HasPrefix(l.Path, "/"):
			p.add(at+".path", "must start with '/', got %q", l.Path)
		case !l.Type.UsesWebSocket() && l.Path != "":
			p.add(at+".path", "only ws and wss listeners have a path; this one is %s", l.Type)
		}
		p.atLeast(at+".max_connections", l.MaxConnections, 0)
		if l.MaxPacketSize != 0 && (l.MaxPacketSize < 16 || l.MaxPacketSize > c.MQTT.MaxPacketSize) {
			p.add(at+".max_packet_size", "must be 0 (mqtt.max_packet_size) or between 16 and mqtt.max_packet_size (%s), got %d", c.MQTT.MaxPacketSize, l.MaxPacketSize)
		}
		t := l.TLS
		switch {
		case l.Type.UsesTLS():
			if t.CertFile == "" {
				p.add(at+".tls.cert_file", "required for a %s listener", l.Type)
			}
			if t.KeyFile == "" {
				p.add(at+".tls.key_file", "required for a %s listener", l.Type)
			}
			if t.RequireClientCert && t.ClientCAFile == "" {
				p.add(at+".tls.client_ca_file", "required with tls.require_client_cert, to verify client certificates")
			}
			if t.CNAsUsername && t.ClientCAFile == "" {
				p.add(at+".tls.client_ca_file", "required with tls.cn_as_username, to verify client certificates")
			}
		case t != (TLS{}):
			p.add(at+".tls", "only tls and wss listeners use TLS settings; this one is %s", l.Type)
		}
	}
}

// validateMQTT checks the protocol limits; the ranges are those of the
// fields that carry them on the wire.
func (c *Config) validateMQTT(p *problems) {
	m := c.MQTT
	// Maximum Packet Size is a four-byte property, but the remaining length
	// encoding caps a packet at 268435455 bytes plus header; 16 leaves room
	// for a CONNECT.
	if m.MaxPacketSize < 16 || m.MaxPacketSize > 268435455 {
		p.add("mqtt.max_packet_size", "must be between 16 and 268435455, got %d", m.MaxPacketSize)
	}
	// Receive Maximum is a two-byte integer and 0 is a protocol error
	// [MQTT-3.2.2.3.3].
	p.between("mqtt.receive_maximum", m.ReceiveMaximum, 1, 65535)
	p.between("mqtt.max_inflight", m.MaxInflight, 1, 65535)
	p.atLeast("mqtt.max_queued_messages", m.MaxQueuedMessages, 1)
	if m.MaxQueuedBytes < m.MaxPacketSize {
		p.add("mqtt.max_queued_bytes", "must be at least mqtt.max_packet_size (%s), so that a packet of the largest size can be queued; got %s", m.MaxPacketSize, m.MaxQueuedBytes)
	}
	p.between("mqtt.max_keepalive", m.MaxKeepAlive, 0, 65535)
	p.between("mqtt.server_keepalive", m.ServerKeepAlive, 0, 65535)
	if m.MaxKeepAlive > 0 && m.ServerKeepAlive > m.MaxKeepAlive {
		p.add("mqtt.server_keepalive", "must not exceed mqtt.max_keepalive (%d), got %d", m.MaxKeepAlive, m.ServerKeepAlive)
	}
	p.between("mqtt.topic_alias_maximum", m.TopicAliasMaximum, 0, 65535)
	// Session Expiry Interval is a four-byte count of seconds: under a
	// second would read as 0, no cap at all.
	if max := Duration(0xFFFFFFFF * time.Second); m.MaxSessionExpiry > max {
		p.add("mqtt.max_session_expiry", "must be at most %s (2^32-1 seconds), got %s", max, m.MaxSessionExpiry)
	} else if m.MaxSessionExpiry != 0 && m.MaxSessionExpiry < Duration(time.Second) {
		p.add("mqtt.max_session_expiry", "must be 0 (no cap) or at least 1s, got %s", m.MaxSessionExpiry)
	}
	// A topic is at most 65535 bytes, so it has at most 32768 levels.
	p.between("mqtt.max_topic_levels", m.MaxTopicLevels, 0, 32768)
	if m.ConnectTimeout <= 0 {
		p.add("mqtt.connect_timeout", "must be more than 0, so that idle connections are closed; got %s", m.ConnectTimeout)
	}
	p.between("mqtt.maximum_qos", m.MaximumQoS, 0, 2)
	// [MQTT-3.1.3-5] the server MUST allow client identifiers of 1 to 23
	// bytes; a UTF-8 string is at most 65535 bytes.
	p.between("mqtt.max_client_id_length", m.MaxClientIDLength, 23, 65535)
	if m.SysInterval != 0 && m.SysInterval < Duration(time.Second) {
		p.add("mqtt.sys_interval", "must be 0 (off) or at least 1s, got %s", m.SysInterval)
	}
}

func (c *Config) validateLimits(p *problems) {
	l := c.Limits
	p.atLeast("limits.max_connections", l.MaxConnections, 0)
	p.notNegative("limits.connect_rate", l.ConnectRate)
	if l.ConnectRate > 0 {
		p.atLeast("limits.connect_burst", l.ConnectBurst, 1)
	} else {
		p.atLeast("limits.connect_burst", l.ConnectBurst, 0)
	}
	p.notNegative("limits.publish_rate", l.PublishRate)
	if l.PublishBandwidth < 0 {
		p.add("limits.publish_bandwidth", "must not be negative, got %d", l.PublishBandwidth)
	}
	p.atLeast("limits.max_subscriptions_per_client", l.MaxSubscriptionsPerClient, 0)
	if l.MemoryBudget != 0 && l.MemoryBudget < c.MQTT.MaxQueuedBytes {
		p.add("limits.memory_budget", "must be 0 (unlimited) or at least mqtt.max_queued_bytes (%s), got %s", c.MQTT.MaxQueuedBytes, l.MemoryBudget)
	}
	if f := l.FlapDetection; f.Enabled {
		p.atLeast("limits.flap_detection.max_connects", f.MaxConnects, 1)
		if f.Window <= 0 {
			p.add("limits.flap_detection.window", "must be more than 0 when flap detection is enabled, got %s", f.Window)
		}
		if f.Ban <= 0 {
			p.add("limits.flap_detection.ban", "must be more than 0 when flap detection is enabled, got %s", f.Ban)
		}
	}
}

func (c *Config) validateAuth(p *problems) {
	a := c.Auth
	if a.JWT.Enabled {
		switch {
		case a.JWT.HMACSecretFile == "" && a.JWT.PublicKeyFile == "":
			p.add("auth.jwt", "enabled, but neither auth.jwt.hmac_secret_file nor auth.jwt.public_key_file is set")
		case a.JWT.HMACSecretFile != "" && a.JWT.PublicKeyFile != "":
			p.add("auth.jwt.public_key_file", "set together with auth.jwt.hmac_secret_file; set only one")
		}
		if a.JWT.UsernameClaim == "" {
			p.add("auth.jwt.username_claim", "required when JWT authentication is enabled")
		}
	}
	if a.HTTPHook.URL != "" {
		if u, err := url.Parse(a.HTTPHook.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add("auth.http_hook.url", "must be an http:// or https:// URL, got %q", a.HTTPHook.URL)
		}
		if a.HTTPHook.Timeout <= 0 {
			p.add("auth.http_hook.timeout", "must be more than 0, got %s", a.HTTPHook.Timeout)
		}
	}
	if c.AllowAnonymous() || c.hasAuthenticator() {
		return
	}
	const how = "no authenticator is configured (auth.password_file, auth.jwt, auth.http_hook or a listener's tls.cn_as_username), so no client could connect"
	if a.AllowAnonymous != nil {
		p.add("auth.allow_anonymous", "is false, but %s", how)
		return
	}
	p.add("auth.allow_anonymous", "defaults to false because %s serves remote clients, and %s; set auth.allow_anonymous: true to admit anonymous clients", c.firstPublicListener(), how)
}

func (c *Config) hasAuthenticator() bool {
	a := c.Auth
	if a.PasswordFile != "" || a.JWT.Enabled || a.HTTPHook.URL != "" {
		return true
	}
	return slices.ContainsFunc(c.Listeners, func(l Listener) bool {
		return l.Type.UsesTLS() && l.TLS.CNAsUsername
	})
}

// AllowAnonymous reports whether clients without credentials are admitted:
// auth.allow_anonymous when set, otherwise true only when every listener is
// on a loopback address and none takes PROXY headers (a load balancer's
// clients are remote), so that a broker reachable from the network is
// never open by default.
func (c *Config) AllowAnonymous() bool {
	if c.Auth.AllowAnonymous != nil {
		return *c.Auth.AllowAnonymous
	}
	return c.firstPublicListener() == ""
}

// firstPublicListener names the first listener that serves remote
// clients: not on a loopback address, as `listeners[i].address
// "host:port"`, or behind a load balancer on this host (a loopback
// address with proxy_protocol), as `listeners[i] (proxy_protocol)`; or
// returns "".
func (c *Config) firstPublicListener() string {
	for i, l := range c.Listeners {
		if host, _, err := splitHostPort(l.Address); err != nil || !isLoopback(host) {
			return fmt.Sprintf("listeners[%d].address %q", i, l.Address)
		}
		if l.ProxyProtocol {
			return fmt.Sprintf("listeners[%d] (proxy_protocol, so its clients are remote)", i)
		}
	}
	return ""
}

func (c *Config) validateACL(p *problems) {
	p.oneOf("acl.default", c.ACL.Default, ACLAllow, ACLDeny)
	for i, r := range c.ACL.Rules {
		at := fmt.Sprintf("acl.rules[%d]", i)
		p.oneOf(at+".action", string(r.Action), string(ACLPublish), string(ACLSubscribe), string(ACLAll))
		if err := checkFilter(r.Topic); err != nil {
			p.add(at+".topic", "%v", err)
		}
	}
}

func (c *Config) validateCluster(p *problems) {
	cl := c.Cluster
	if !cl.Enabled {
		return
	}
	if cl.NodeName != "" && strings.Trim(cl.NodeName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		p.add("cluster.node_name", "may hold only letters, digits, '_' and '-' (it is used in NATS subjects), got %q", cl.NodeName)
	}
	if cl.NATSURL != "" {
		for u := range strings.SplitSeq(cl.NATSURL, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err != nil || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, pu.Scheme) || pu.Host == "" {
				p.add("cluster.nats_url", "must be nats://host:port URLs separated by commas, got %q", u)
			}
		}
		if len(cl.Embedded.Routes) > 0 {
			p.add("cluster.embedded.routes", "only used by the embedded NATS server, which cluster.nats_url replaces; remove one of them")
		}
		return
	}
	if _, _, err := splitHostPort(cl.Embedded.Listen); err != nil {
		p.add("cluster.embedded.listen", "%v", err)
	}
	for i, r := range cl.Embedded.Routes {
		hostPort := strings.TrimPrefix(strings.TrimPrefix(r, "nats-route://"), "nats://")
		if _, port, err := splitHostPort(hostPort); err != nil || port == 0 {
			p.add(fmt.Sprintf("cluster.embedded.routes[%d]", i), "must be host:port or nats-route://host:port with a port other than 0, got %q", r)
		}
	}
}

func (c *Config) validateKafka(p *problems) {
	k := c.Kafka
	if !k.Enabled {
		return
	}
	if len(k.Brokers) == 0 {
		p.add("kafka.brokers", "at least one broker is required when kafka is enabled")
	}
	for i, b := range k.Brokers {
		if _, port, err := splitHostPort(b); err != nil || port == 0 {
			p.add(fmt.Sprintf("kafka.brokers[%d]", i), "must be host:port with a port other than 0, got %q", b)
		}
	}
	if len(k.Out) == 0 && len(k.In) == 0 {
		p.add("kafka", "enabled, but neither kafka.out nor kafka.in has an entry")
	}
	for i, o := range k.Out {
		at := fmt.Sprintf("kafka.out[%d]", i)
		if err := checkFilter(o.MQTTFilter); err != nil {
			p.add(at+".mqtt_filter", "%v", err)
		}
		if err := checkKafkaTopic(o.Topic); err != nil {
			p.add(at+".topic", "%v", err)
		}
	}
	for i, in := range k.In {
		at := fmt.Sprintf("kafka.in[%d]", i)
		if err := checkKafkaTopic(in.Topic); err != nil {
			p.add(at+".topic", "%v", err)
		}
		if err := checkTopicName(in.MQTTTopic); err != nil {
			p.add(at+".mqtt_topic", "%v", err)
		}
	}
}

func (c *Config) validateHTTP(p *problems) {
	h := c.HTTP
	if h.Listen == "" {
		return
	}
	host, _, err := splitHostPort(h.Listen)
	if err != nil {
		p.add("http.listen", "%v", err)
		return
	}
	if !isLoopback(host) && h.AdminToken == "" {
		p.add("http.admin_token", "required when http.listen (%q) is not a loopback address, so that the admin API is not open to the network", h.Listen)
	}
}
