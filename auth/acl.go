// Package auth holds Herald's authenticators and its topic ACL.
package auth

import (
	"strings"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/topic"
)

// Action is what a rule governs.
type Action uint8

// The actions a rule can govern.
const (
	Publish Action = 1 << iota
	Subscribe
	All = Publish | Subscribe
)

// Rule allows or denies an action on topics matching Topic, optionally only
// for one username or client id. %u and %c in Topic stand for the client's
// username and client id, so `user/%u/#` gives each user its own subtree.
type Rule struct {
	Action   Action
	Allow    bool
	Topic    string
	Username string
	ClientID string
}

// ACL evaluates rules in order; the first match decides, else Default.
// It implements broker.Authorizer.
type ACL struct {
	Rules   []Rule
	Default bool // allow when no rule matches
}

// CanPublish implements broker.Authorizer.
func (a *ACL) CanPublish(info *broker.ClientInfo, name string) bool {
	return a.decide(info, Publish, func(filter string) bool { return topic.Match(filter, name) })
}

// CanSubscribe implements broker.Authorizer. A subscription is allowed by a
// rule whose filter covers it: every topic the requested filter can match
// must match the rule's filter. Shared subscriptions are judged by their
// inner filter.
func (a *ACL) CanSubscribe(info *broker.ClientInfo, filter string) bool {
	if _, inner, shared, err := topic.ParseShared(filter); err == nil && shared {
		filter = inner
	}
	return a.decide(info, Subscribe, func(rule string) bool { return covers(rule, filter) })
}

func (a *ACL) decide(info *broker.ClientInfo, act Action, match func(filter string) bool) bool {
	for _, r := range a.Rules {
		if r.Action&act == 0 {
			continue
		}
		if r.Username != "" && r.Username != info.Username {
			continue
		}
		if r.ClientID != "" && r.ClientID != info.ClientID {
			continue
		}
		f := r.Topic
		if strings.Contains(f, "%") {
			// A username or client id containing wildcards or '/' must not
			// widen the rule: such a client simply does not match it.
			if strings.ContainsAny(info.Username, "+#/") && strings.Contains(f, "%u") ||
				strings.ContainsAny(info.ClientID, "+#/") && strings.Contains(f, "%c") {
				continue
			}
			f = strings.NewReplacer("%u", info.Username, "%c", info.ClientID).Replace(f)
		}
		if match(f) {
			return r.Allow
		}
	}
	return a.Default
}

// covers reports whether every topic matched by filter is matched by rule.
func covers(rule, filter string) bool {
	r := strings.Split(rule, "/")
	f := strings.Split(filter, "/")
	for i, rl := range r {
		if rl == "#" {
			return true
		}
		if i >= len(f) {
			return false
		}
		switch {
		case f[i] == "#":
			return false
		case rl == "+":
			continue
		case f[i] == "+" || rl != f[i]:
			return false
		}
	}
	return len(f) == len(r)
}
