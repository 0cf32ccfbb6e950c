package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const examplePath = "../herald.example.yaml"

func TestExampleFileLoadsAndEqualsDefault(t *testing.T) {
	got, err := Load(examplePath)
	if err != nil {
		t.Fatalf("Load(%s): %v", examplePath, err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("the example file documents values other than Default():\n got %+v\nwant %+v", got, want)
	}
}

func TestExampleFileDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	walkSchema(reflect.TypeFor[Config](), "", func(path string) {
		key := path[strings.LastIndex(path, ".")+1:]
		key = strings.TrimSuffix(key, "[]")
		if !strings.Contains(text, key+":") {
			t.Errorf("%s: not documented in %s", path, examplePath)
		}
	})
}

func TestLoadWithoutFileIsDefault(t *testing.T) {
	got, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Errorf("Load(\"\") = %+v; want Default()", got)
	}
	if !got.AllowAnonymous() {
		t.Error("default configuration refuses anonymous clients; want them allowed on loopback")
	}
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v; want a not-exist error naming the file", err)
	}
}

func TestLoadReadsFileFromDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.yaml")
	if err := os.WriteFile(path, []byte("mqtt:\n  max_inflight: 7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadWithEnv(path, []string{"HERALD_MQTT_RECEIVE_MAXIMUM=9", "PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.MaxInflight != 7 || c.MQTT.ReceiveMaximum != 9 {
		t.Errorf("max_inflight, receive_maximum = %d, %d; want 7 from the file, 9 from the environment",
			c.MQTT.MaxInflight, c.MQTT.ReceiveMaximum)
	}
}

// TestLoadOverlaysDefaults checks what a file sets and that what it leaves
// out keeps its default.
func TestLoadOverlaysDefaults(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c *Config)
	}{
		{"empty file", "", func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v; want Default()", c)
			}
		}},
		{"only comments", "# nothing\n", func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("got %+v; want Default()", c)
			}
		}},
		{"one key keeps siblings", "mqtt:\n  max_packet_size: 64KiB\n", func(t *testing.T, c *Config) {
			if c.MQTT.MaxPacketSize != 64*KiB || c.MQTT.MaxInflight != 128 {
				t.Errorf("max_packet_size, max_inflight = %v, %d; want 64KiB, 128", c.MQTT.MaxPacketSize, c.MQTT.MaxInflight)
			}
		}},
		{"null value keeps default", "data_dir:\nmqtt:\n", func(t *testing.T, c *Config) {
			if c.DataDir != "./data" {
				t.Errorf("data_dir = %q; want ./data", c.DataDir)
			}
		}},
		{"listeners replace the default and get derived defaults", `
listeners:
  - type: ws
    address: 127.0.0.1:8083
  - address: 127.0.0.1:1884
    name: plain
`, func(t *testing.T, c *Config) {
			want := []Listener{
				{Name: "ws://127.0.0.1:8083", Type: ListenerWS, Address: "127.0.0.1:8083", Path: "/mqtt"},
				{Name: "plain", Type: ListenerTCP, Address: "127.0.0.1:1884"},
			}
			if !reflect.DeepEqual(c.Listeners, want) {
				t.Errorf("listeners = %+v; want %+v", c.Listeners, want)
			}
		}},
		{"durations, sizes, pointers", `
mqtt:
  connect_timeout: 1m30s
  max_queued_bytes: 16MB
auth:
  allow_anonymous: false
  password_file: /etc/herald/passwd
`, func(t *testing.T, c *Config) {
			if c.MQTT.ConnectTimeout != Duration(90*time.Second) || c.MQTT.MaxQueuedBytes != 16*MB {
				t.Errorf("connect_timeout, max_queued_bytes = %v, %v", c.MQTT.ConnectTimeout, c.MQTT.MaxQueuedBytes)
			}
			if c.Auth.AllowAnonymous == nil || *c.Auth.AllowAnonymous || c.AllowAnonymous() {
				t.Errorf("allow_anonymous = %v; want explicit false", c.Auth.AllowAnonymous)
			}
		}},
		{"anchors and merge keys", `
listeners:
  - type: tls
    address: 127.0.0.1:8883
    tls: &tls
      cert_file: a.crt
      key_file: a.key
  - type: wss
    address: 127.0.0.1:8884
    tls:
      <<: *tls
      key_file: b.key
`, func(t *testing.T, c *Config) {
			want := TLS{CertFile: "a.crt", KeyFile: "b.key"}
			if c.Listeners[1].TLS != want {
				t.Errorf("merged tls = %+v; want %+v", c.Listeners[1].TLS, want)
			}
		}},
		{"acl rules", `
acl:
  default: deny
  rules:
    - {action: publish, allow: false, topic: "$SYS/#"}
    - {action: all, allow: true, topic: "users/%u/#", username: bob, client_id: c1}
`, func(t *testing.T, c *Config) {
			want := []ACLRule{
				{Action: ACLPublish, Allow: false, Topic: "$SYS/#"},
				{Action: ACLAll, Allow: true, Topic: "users/%u/#", Username: "bob", ClientID: "c1"},
			}
			if !reflect.DeepEqual(c.ACL.Rules, want) || c.ACL.Default != ACLDeny {
				t.Errorf("acl = %+v; want default deny and %+v", c.ACL, want)
			}
		}},
		{"empty list is no list", "kafka:\n  brokers: []\n", func(t *testing.T, c *Config) {
			if c.Kafka.Brokers != nil {
				t.Errorf("brokers = %#v; want nil", c.Kafka.Brokers)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load("herald.yaml", []byte(tt.yaml), nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

// TestLoadErrorsNameFileLineAndKey checks that each kind of mistake in a
// file is reported as "file:line: key.path: problem".
func TestLoadErrorsNameFileLineAndKey(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // each must appear in the error
	}{
		{"unknown key with suggestion", "limits:\n  max_connections: 1\n  max_pakcet_size: 5\n",
			nil, []string{"herald.yaml:3: limits.max_pakcet_size: unknown key (did you mean listeners[].max_packet_size or mqtt.max_packet_size?)"}},
		{"misspelt key suggests sibling", "mqtt:\n  max_inflght: 5\n",
			nil, []string{"herald.yaml:2: mqtt.max_inflght: unknown key (did you mean max_inflight?)"}},
		{"unknown top-level key", "\n\nbogus: 1\n", nil, []string{"herald.yaml:3: bogus: unknown key"}},
		{"unknown key in list element", "listeners:\n  - address: 127.0.0.1:1\n    adress: x\n",
			nil, []string{"herald.yaml:3: listeners[0].adress: unknown key (did you mean address?)"}},
		{"all unknown keys at once", "a: 1\nb: 2\n", nil, []string{"herald.yaml:1: a: unknown key", "herald.yaml:2: b: unknown key"}},
		{"syntax error", "mqtt:\n  max_inflight: 1\n max_packet_size: 2\n", nil, []string{"herald.yaml:2: did not find expected key"}},
		{"tab indentation", "mqtt:\n\tmax_inflight: 1\n", nil, []string{"herald.yaml:2: "}},
		{"wrong scalar type", "mqtt:\n  max_inflight: lots\n", nil, []string{`herald.yaml:2: mqtt.max_inflight: want a whole number, got "lots"`}},
		{"bool", "mqtt:\n  retain_available: maybe\n", nil, []string{`herald.yaml:2: mqtt.retain_available: want true or false, got "maybe"`}},
		{"mapping for scalar", "data_dir:\n  x: 1\n", nil, []string{"herald.yaml:2: data_dir: want a string, got a mapping"}},
		{"scalar for mapping", "mqtt: 5\n", nil, []string{`herald.yaml:1: mqtt: want a mapping of keys, got "5"`}},
		{"scalar for list", "listeners: 127.0.0.1:1883\n", nil, []string{`herald.yaml:1: listeners: want a list, got "127.0.0.1:1883"`}},
		{"bad duration", "mqtt:\n  connect_timeout: 10\n", nil, []string{`herald.yaml:2: mqtt.connect_timeout: "10": a duration needs a unit`}},
		{"bad size", "mqtt:\n  max_packet_size: 1.5MB\n", nil, []string{`herald.yaml:2: mqtt.max_packet_size: "1.5MB": not a size`}},
		{"duplicate key", "mqtt:\n  max_inflight: 1\n  max_inflight: 2\n", nil, []string{"herald.yaml:3: mqtt.max_inflight: duplicate key (first set on line 2)"}},
		{"missing required acl keys", "acl:\n  rules:\n    - topic: a/b\n", nil, []string{
			"herald.yaml:3: acl.rules[0].action: required",
			"herald.yaml:3: acl.rules[0].allow: required",
		}},
		{"merge of own anchor", "mqtt: &m\n  <<: *m\n", nil, []string{"herald.yaml:2: mqtt: alias *m refers to itself"}},
		{"document not a mapping", "- a\n- b\n", nil, []string{`herald.yaml:1: want a mapping of keys, got a list`}},
		{"two documents", "mqtt: {}\n---\nlog: {}\n", nil, []string{"herald.yaml:2: a config file holds one YAML document"}},
		{"validation error placed at its key", "\nmqtt:\n  max_packet_size: 5\n", nil,
			[]string{"herald.yaml:3: mqtt.max_packet_size: must be between 16 and 268435455, got 5"}},
		{"validation error placed at nearest parent", "listeners:\n  - type: tls\n    address: 127.0.0.1:8883\n", nil,
			[]string{"herald.yaml:2: listeners[0].tls.cert_file: required for a tls listener"}},
		{"validation error names environment variable", "", []string{"HERALD_MQTT_MAXIMUM_QOS=3"},
			[]string{"HERALD_MQTT_MAXIMUM_QOS: mqtt.maximum_qos: must be between 0 and 2, got 3"}},
		{"bad environment value", "", []string{"HERALD_MQTT_MAXIMUM_QOS=two"},
			[]string{`HERALD_MQTT_MAXIMUM_QOS: mqtt.maximum_qos: want a whole number, got "two"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load("herald.yaml", []byte(tt.yaml), tt.env)
			if err == nil {
				t.Fatalf("loaded %+v; want an error", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
		})
	}
}

func TestLoadEnvironmentCompletesFile(t *testing.T) {
	// The admin token is required on a public address; a secret is better
	// kept out of the file, so the environment must be able to supply it
	// before validation.
	yaml := "http:\n  listen: 0.0.0.0:8080\n"
	if _, err := load("herald.yaml", []byte(yaml), nil); err == nil {
		t.Fatal("public http.listen without admin_token loaded; want an error")
	}
	c, err := load("herald.yaml", []byte(yaml), []string{"HERALD_HTTP_ADMIN_TOKEN=s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.AdminToken != "s3cret" {
		t.Errorf("admin_token = %q; want s3cret", c.HTTP.AdminToken)
	}
}

// TestExampleFileCommentsStateTheValues checks that the "Default: x" in each
// key's comment matches the value the example sets, so that the prose
// cannot drift from the defaults that TestExampleFileLoadsAndEqualsDefault
// pins.
func TestExampleFileCommentsStateTheValues(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path+"[]")
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := joinPath(strings.TrimPrefix(path, "[]"), k.Value)
				if v.Kind != yaml.ScalarNode {
					walk(v, p)
					continue
				}
				value := v.Value
				if value == "" {
					value = `""`
				}
				switch {
				case strings.Contains(k.HeadComment, "No default"):
				case !strings.Contains(k.HeadComment, "Default: "+value):
					t.Errorf("%s: set to %s, but its comment does not say \"Default: %s\":\n%s", p, value, value, k.HeadComment)
				}
				checked++
			}
		}
	}
	walk(&doc, "")
	if checked < 50 {
		t.Errorf("checked %d keys; the example file should set every scalar key", checked)
	}
}
