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
	return a.decide(info, Publish, publishMatch(name))
}

// CanSubscribe implements broker.Authorizer. A subscription is allowed by
// an allow rule whose filter covers it (every topic the requested filter
// can match matches the rule) and denied by a deny rule whose filter
// overlaps it (some topic matches both): the ACL is checked at subscribe
// time only, so `deny subscribe secret/#` must also refuse `+/#`. Shared
// subscriptions are judged by their inner filter.
func (a *ACL) CanSubscribe(info *broker.ClientInfo, filter string) bool {
	return a.decide(info, Subscribe, subscribeMatch(filter))
}

// publishMatch is how a rule's filter is matched against a published topic.
func publishMatch(name string) func(rule string, allow bool) bool {
	return func(rule string, _ bool) bool { return topic.Match(rule, name) }
}

// subscribeMatch is how a rule's filter is matched against a requested
// subscription filter (see CanSubscribe).
func subscribeMatch(filter string) func(rule string, allow bool) bool {
	if _, inner, shared, err := topic.ParseShared(filter); err == nil && shared {
		filter = inner
	}
	return func(rule string, allow bool) bool {
		if allow {
			return covers(rule, filter)
		}
		return overlaps(rule, filter)
	}
}

func (a *ACL) decide(info *broker.ClientInfo, act Action, match func(rule string, allow bool) bool) bool {
	if allow, ok := a.first(info, act, match); ok {
		return allow
	}
	return a.Default
}

// first returns the decision of the first rule that matches, and whether
// one did.
func (a *ACL) first(info *broker.ClientInfo, act Action, match func(rule string, allow bool) bool) (allow, matched bool) {
	for i := range a.Rules {
		r := &a.Rules[i]
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
		if strings.IndexByte(f, '%') >= 0 {
			// A username or client id containing wildcards or '/', or
			// starting with '$', must not widen the rule (`%c/#` with client
			// id `$SYS`): such a client does not get an allow rule, and a
			// deny rule denies it everything the rule's action covers
			// (failing closed, not open).
			if unsafeIdentity(info.Username) && strings.Contains(f, "%u") ||
				unsafeIdentity(info.ClientID) && strings.Contains(f, "%c") {
				if r.Allow {
					continue
				}
				return false, true
			}
			f = substitute(f, info.Username, info.ClientID)
		}
		if match(f, r.Allow) {
			return r.Allow, true
		}
	}
	return false, false
}

// unsafeIdentity reports whether a username or client id would change the
// meaning of a rule it is substituted into.
func unsafeIdentity(s string) bool {
	return strings.ContainsAny(s, "+#/") || strings.HasPrefix(s, "$")
}

// substitute replaces %u and %c in filter. It is written out rather than
// using strings.Replacer so that the only allocation is the result.
func substitute(filter, username, clientID string) string {
	var b strings.Builder
	b.Grow(len(filter) + len(username) + len(clientID))
	for {
		i := strings.IndexByte(filter, '%')
		if i < 0 || i+1 == len(filter) {
			b.WriteString(filter)
			return b.String()
		}
		b.WriteString(filter[:i])
		switch filter[i+1] {
		case 'u':
			b.WriteString(username)
		case 'c':
			b.WriteString(clientID)
		default:
			b.WriteString(filter[i : i+2])
		}
		filter = filter[i+2:]
	}
}

// covers reports whether every topic matched by filter is matched by rule.
// A rule starting with a wildcard does not cover a filter starting with
// '$': the rule matches no topic starting with '$' [MQTT-4.7.2-1], so
// `allow subscribe #` does not grant `$SYS/#`.
func covers(rule, filter string) bool {
	if strings.HasPrefix(filter, "$") && (strings.HasPrefix(rule, "#") || strings.HasPrefix(rule, "+")) {
		return false
	}
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

// overlaps reports whether some topic is matched by both filters. A
// wildcard in the first level does not match a topic starting with '$'
// [MQTT-4.7.2-1], so `deny $SYS/#` does not overlap `#`.
func overlaps(a, b string) bool {
	x := strings.Split(a, "/")
	y := strings.Split(b, "/")
	if dollar(x[0]) && isWild(y[0]) || dollar(y[0]) && isWild(x[0]) {
		return false
	}
	for i := 0; i < len(x) && i < len(y); i++ {
		switch {
		case x[i] == "#" || y[i] == "#":
			return true
		case x[i] == "+" || y[i] == "+" || x[i] == y[i]:
			continue
		default:
			return false
		}
	}
	if len(x) == len(y) {
		return true
	}
	// One is longer: it still meets the other only if its next level is a
	// final '#', which also matches the parent level.
	long := x
	if len(y) > len(x) {
		long = y
	}
	n := min(len(x), len(y))
	return len(long) == n+1 && long[n] == "#"
}

func dollar(level string) bool { return strings.HasPrefix(level, "$") }
func isWild(level string) bool { return level == "+" || level == "#" }
