package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
)

// --acl-deny applies whatever the configured rules allow: its rules go
// first, and the first matching rule decides.
func TestFlagDeniesComeBeforeConfiguredAllows(t *testing.T) {
	cfg := config.Default()
	cfg.ACL.Rules = []config.ACLRule{{Action: config.ACLAll, Allow: true, Topic: "users/%u/#"}}
	cfg.ACL.Rules = withFlagDenies(cfg.ACL.Rules, []string{"users/bob/#"})
	svc, err := auth.FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	az := svc.Authorizer()
	bob, ann := &broker.ClientInfo{Username: "bob"}, &broker.ClientInfo{Username: "ann"}
	if az.CanPublish(bob, "users/bob/x") || az.CanSubscribe(bob, "users/bob/#") {
		t.Error("--acl-deny users/bob/# did not apply behind allow all users/%u/#")
	}
	if !az.CanPublish(ann, "users/ann/x") {
		t.Error("the configured allow no longer applies to others")
	}
}

// Turning on a part of the design that is not built yet stops serve (and
// --check-config) with an error naming the key, instead of starting a
// lone node that ignores it.
func TestServeRefusesFeaturesNotBuilt(t *testing.T) {
	for _, tc := range []struct{ yaml, key string }{
		{"cluster:\n  enabled: true\n", "cluster.enabled"},
		{"kafka:\n  enabled: true\n  brokers: [k1:9092]\n  out:\n    - {mqtt_filter: \"a/#\", topic: a}\n", "kafka.enabled"},
	} {
		path := filepath.Join(t.TempDir(), "herald.yaml")
		if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("%s: the configuration itself should be valid: %v", tc.key, err)
		}
		if err := notBuilt(cfg); err == nil || !strings.HasPrefix(err.Error(), tc.key+":") {
			t.Errorf("notBuilt = %v; want an error naming %s", err, tc.key)
		}
		if rc := runServe([]string{"--config", path, "--check-config"}); rc != 1 {
			t.Errorf("%s: serve --check-config exited %d; want 1", tc.key, rc)
		}
	}
	if err := notBuilt(config.Default()); err != nil {
		t.Errorf("the default configuration: %v", err)
	}
}
