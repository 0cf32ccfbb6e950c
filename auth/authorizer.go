package auth

import (
	"sync/atomic"

	"github.com/herald-mqtt/herald/broker"
)

// Authorizer is Herald's broker.Authorizer: the operator's rules (config
// acl.rules, then the acl_file's rules, then acl.default), which a reload
// replaces atomically, and the per-connection rules that credentials carry.
//
// A connection whose credentials carried rules (Grants) may use only the
// topics those rules allow; the operator's rules still apply on top of
// them, but only their deny rules: if the first operator rule that matches
// denies, the action is denied. So a token narrows what its holder may do,
// and never escapes an operator's `deny`.
type Authorizer struct {
	rules  atomic.Pointer[ACL]
	grants *Grants // nil when no credentials can carry rules
}

// NewAuthorizer returns an Authorizer with the operator's rules acl and
// the per-connection rules grants (nil if no authenticator issues any).
func NewAuthorizer(acl *ACL, grants *Grants) *Authorizer {
	a := &Authorizer{grants: grants}
	a.rules.Store(acl)
	return a
}

// SetRules replaces the operator's rules; connections see the new rules
// from their next publish or subscribe.
func (a *Authorizer) SetRules(acl *ACL) { a.rules.Store(acl) }

// Rules returns the operator's rules in force.
func (a *Authorizer) Rules() *ACL { return a.rules.Load() }

// CanPublish implements broker.Authorizer.
func (a *Authorizer) CanPublish(info *broker.ClientInfo, name string) bool {
	return a.decide(info, Publish, publishMatch(name))
}

// CanSubscribe implements broker.Authorizer; see ACL.CanSubscribe for how
// filters are compared.
func (a *Authorizer) CanSubscribe(info *broker.ClientInfo, filter string) bool {
	return a.decide(info, Subscribe, subscribeMatch(filter))
}

func (a *Authorizer) decide(info *broker.ClientInfo, act Action, match func(string, bool) bool) bool {
	rules := a.rules.Load()
	if a.grants != nil {
		if g := a.grants.Lookup(info); g != nil {
			if !g.decide(info, act, match) {
				return false
			}
			allow, matched := rules.first(info, act, match)
			return allow || !matched
		}
	}
	return rules.decide(info, act, match)
}
