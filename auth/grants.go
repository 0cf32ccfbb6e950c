package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"unsafe"
	"weak"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/topic"
)

// Grants holds the topic rules that a connection's credentials carry (a
// JWT's ACL claim, an HTTP hook's answer), for the Authorizer to apply to
// that connection only.
//
// Rules are keyed by the identity of the connection's *broker.ClientInfo:
// the broker passes the same pointer (a field of its per-connection state)
// to Authenticate and to every CanPublish and CanSubscribe of that
// connection, and to no other. Keying by client id or username instead
// would let a second connection with the same client id (a takeover, or an
// attempt that the broker then refuses) change the rules of the first.
//
// The broker tells nobody when a connection ends, so an entry lives as
// long as its ClientInfo: a cleanup registered with runtime.AddCleanup
// removes it once the garbage collector has found the connection's state
// unreachable. A weak pointer in each entry guards against the address
// being reused by a new connection before that cleanup has run.
type Grants struct {
	shards [grantShards]grantShard
}

const grantShards = 16

type grantShard struct {
	mu sync.RWMutex
	m  map[uintptr]*grantEntry
}

type grantEntry struct {
	info weak.Pointer[broker.ClientInfo]
	acl  *ACL
}

// NewGrants returns an empty set of per-connection rules.
func NewGrants() *Grants {
	g := &Grants{}
	for i := range g.shards {
		g.shards[i].m = make(map[uintptr]*grantEntry)
	}
	return g
}

// key is the address of info. The address of a heap object is stable while
// it lives (Go's collector does not move heap objects), and a
// map[uintptr] lookup, unlike weak.Make or a sync.Map, costs no allocation
// and no runtime lock on the publish path.
func (g *Grants) shard(info *broker.ClientInfo) (*grantShard, uintptr) {
	k := uintptr(unsafe.Pointer(info))
	return &g.shards[(k>>6)%grantShards], k
}

// Set gives the connection whose state is info the rules acl (allow rules,
// default deny: see Authorizer), replacing any it had.
func (g *Grants) Set(info *broker.ClientInfo, acl *ACL) {
	s, k := g.shard(info)
	e := &grantEntry{info: weak.Make(info), acl: acl}
	s.mu.Lock()
	s.m[k] = e
	s.mu.Unlock()
	runtime.AddCleanup(info, func(e *grantEntry) {
		s.mu.Lock()
		if s.m[k] == e { // a newer entry at a reused address stays
			delete(s.m, k)
		}
		s.mu.Unlock()
	}, e)
}

// Lookup returns the rules of the connection whose state is info, or nil
// if its credentials carried none.
func (g *Grants) Lookup(info *broker.ClientInfo) *ACL {
	s, k := g.shard(info)
	s.mu.RLock()
	e := s.m[k]
	s.mu.RUnlock()
	if e == nil || e.info.Value() != info {
		return nil
	}
	return e.acl
}

// Len returns the number of connections holding rules.
func (g *Grants) Len() int {
	n := 0
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// GrantList is the JSON form of per-connection rules in a JWT claim or an
// HTTP hook answer: topic filters the client may publish to ("pub"),
// subscribe to ("sub"), or both ("all"). %u and %c stand for the username
// and client id, as in ACL rules.
//
//	{"pub": ["rooms/42/messages"], "sub": ["users/%u/#", "rooms/42/#"]}
type GrantList struct {
	Pub []string `json:"pub"`
	Sub []string `json:"sub"`
	All []string `json:"all"`
}

// ParseGrants decodes a GrantList from JSON and returns it as an ACL of
// allow rules with default deny. Unknown keys and invalid filters are
// errors: a token that means to grant something must not silently grant
// nothing, or more.
func ParseGrants(raw []byte) (*ACL, error) {
	var gl GrantList
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&gl); err != nil {
		return nil, fmt.Errorf("acl: want {\"pub\":[...],\"sub\":[...],\"all\":[...]}: %w", err)
	}
	return gl.ACL()
}

// ACL returns the list as allow rules with default deny, after checking
// every filter.
func (gl *GrantList) ACL() (*ACL, error) {
	acl := &ACL{Rules: make([]Rule, 0, len(gl.Pub)+len(gl.Sub)+len(gl.All))}
	for _, l := range []struct {
		key     string
		filters []string
		act     Action
	}{{"pub", gl.Pub, Publish}, {"sub", gl.Sub, Subscribe}, {"all", gl.All, All}} {
		for i, f := range l.filters {
			if err := topic.ValidateFilter(f); err != nil {
				return nil, fmt.Errorf("acl: %s[%d] %q: %w", l.key, i, f, err)
			}
			acl.Rules = append(acl.Rules, Rule{Action: l.act, Allow: true, Topic: f})
		}
	}
	return acl, nil
}
