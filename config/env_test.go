package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApplyEnvOverridesScalarKeys(t *testing.T) {
	tests := []struct {
		env   string
		check func(c *Config) bool
	}{
		{"HERALD_MQTT_MAX_PACKET_SIZE=1MB", func(c *Config) bool { return c.MQTT.MaxPacketSize == MB }},
		{"HERALD_MQTT_CONNECT_TIMEOUT=1m30s", func(c *Config) bool { return c.MQTT.ConnectTimeout == Duration(90*time.Second) }},
		{"HERALD_MQTT_RETAIN_AVAILABLE=false", func(c *Config) bool { return !c.MQTT.RetainAvailable }},
		{"HERALD_MQTT_MAX_INFLIGHT= 16 ", func(c *Config) bool { return c.MQTT.MaxInflight == 16 }},
		{"HERALD_DATA_DIR=/var/lib/herald", func(c *Config) bool { return c.DataDir == "/var/lib/herald" }},
		{"HERALD_STORE=memory", func(c *Config) bool { return c.Store == StoreMemory }},
		{"HERALD_LIMITS_PUBLISH_RATE=0.5", func(c *Config) bool { return c.Limits.PublishRate == 0.5 }},
		{"HERALD_LIMITS_FLAP_DETECTION_ENABLED=true", func(c *Config) bool { return c.Limits.FlapDetection.Enabled }},
		{"HERALD_LIMITS_FLAP_DETECTION_BAN=1h", func(c *Config) bool { return c.Limits.FlapDetection.Ban == Duration(time.Hour) }},
		{"HERALD_AUTH_ALLOW_ANONYMOUS=false", func(c *Config) bool {
			return c.Auth.AllowAnonymous != nil && !*c.Auth.AllowAnonymous
		}},
		{"HERALD_AUTH_JWT_USERNAME_CLAIM=preferred_username", func(c *Config) bool { return c.Auth.JWT.UsernameClaim == "preferred_username" }},
		{"HERALD_HTTP_ADMIN_TOKEN=a=b", func(c *Config) bool { return c.HTTP.AdminToken == "a=b" }},
		{"HERALD_KAFKA_BROKERS=k1:9092, k2:9092,", func(c *Config) bool {
			return reflect.DeepEqual(c.Kafka.Brokers, []string{"k1:9092", "k2:9092"})
		}},
		{"HERALD_CLUSTER_EMBEDDED_ROUTES=a:6222", func(c *Config) bool {
			return reflect.DeepEqual(c.Cluster.Embedded.Routes, []string{"a:6222"})
		}},
		{"HERALD_LOG_LEVEL=debug", func(c *Config) bool { return c.Log.Level == "debug" }},
		{"HERALD_ACL_DEFAULT=deny", func(c *Config) bool { return c.ACL.Default == ACLDeny }},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			c := Default()
			if err := ApplyEnv(c, []string{tt.env}); err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Errorf("%s did not take effect", tt.env)
			}
		})
	}
}

func TestApplyEnvIgnoresOtherVariables(t *testing.T) {
	c := Default()
	env := []string{"PATH=/bin", "HOME=/root", "HERALD_CONFIG=/etc/herald.yaml", "NOT_HERALD_LOG_LEVEL=x", "EMPTY"}
	if err := ApplyEnv(c, env); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("unrelated variables changed the configuration: %+v", c)
	}
}

func TestApplyEnvRejectsBadValuesNamingTheVariable(t *testing.T) {
	tests := []struct {
		env, want string
	}{
		{"HERALD_MQTT_MAX_PACKET_SIZE=big", `HERALD_MQTT_MAX_PACKET_SIZE: mqtt.max_packet_size: "big": not a size`},
		{"HERALD_MQTT_CONNECT_TIMEOUT=10", `HERALD_MQTT_CONNECT_TIMEOUT: mqtt.connect_timeout: "10": a duration needs a unit`},
		{"HERALD_MQTT_RETAIN_AVAILABLE=yes please", `HERALD_MQTT_RETAIN_AVAILABLE: mqtt.retain_available: want true or false, got "yes please"`},
		{"HERALD_MQTT_MAX_INFLIGHT=", `HERALD_MQTT_MAX_INFLIGHT: mqtt.max_inflight: want a whole number, got ""`},
		{"HERALD_LIMITS_CONNECT_RATE=fast", `HERALD_LIMITS_CONNECT_RATE: limits.connect_rate: want a number, got "fast"`},
		{"HERALD_AUTH_ALLOW_ANONYMOUS=", `HERALD_AUTH_ALLOW_ANONYMOUS: auth.allow_anonymous: want true or false, got ""`},
		{"HERALD_MQTT_MAX_PAKCET_SIZE=1MB", "HERALD_MQTT_MAX_PAKCET_SIZE: not a configuration key (did you mean HERALD_MQTT_MAX_PACKET_SIZE?)"},
		{"HERALD_LISTENERS=x", "HERALD_LISTENERS: not a configuration key"},
		{"HERALD_MQTT=x", "HERALD_MQTT: not a configuration key"},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			c := Default()
			err := ApplyEnv(c, []string{tt.env})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ApplyEnv(%s) = %v; want an error containing %q", tt.env, err, tt.want)
			}
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("a rejected value changed the configuration: %+v", c)
			}
		})
	}
}

func TestApplyEnvReportsEveryBadVariable(t *testing.T) {
	err := ApplyEnv(Default(), []string{"HERALD_LOG_LEVEL=debug", "HERALD_A=1", "HERALD_MQTT_MAX_INFLIGHT=x"})
	for _, name := range []string{"HERALD_A", "HERALD_MQTT_MAX_INFLIGHT"} {
		if err == nil || !strings.Contains(err.Error(), name+": ") {
			t.Errorf("ApplyEnv = %v; want it to report %s", err, name)
		}
	}
}

// TestEnvNamesAreUnambiguous checks that no two keys map to one variable,
// which dots and underscores both becoming '_' could otherwise cause.
func TestEnvNamesAreUnambiguous(t *testing.T) {
	seen := map[string]string{}
	walkSchema(reflect.TypeFor[Config](), "", func(path string) {
		name := EnvName(path)
		if other, dup := seen[name]; dup {
			t.Errorf("%s and %s both map to %s", path, other, name)
		}
		seen[name] = path
	})
	keys := envKeys()
	for _, name := range []string{"HERALD_MQTT_MAX_PACKET_SIZE", "HERALD_AUTH_ALLOW_ANONYMOUS", "HERALD_KAFKA_BROKERS"} {
		if _, ok := keys[name]; !ok {
			t.Errorf("%s is not settable", name)
		}
	}
	for name := range keys {
		if strings.HasPrefix(name, "HERALD_LISTENERS") || strings.HasPrefix(name, "HERALD_ACL_RULES") ||
			strings.HasPrefix(name, "HERALD_KAFKA_OUT") || strings.HasPrefix(name, "HERALD_KAFKA_IN") {
			t.Errorf("%s is settable, but it is inside a list of mappings", name)
		}
	}
}
