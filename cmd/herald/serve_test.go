package main

import (
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
