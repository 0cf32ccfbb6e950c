package topic

import (
	"strings"
	"sync"
)

// Trie is the subscription index: topic filters split into levels, each
// level a node holding the subscriptions whose filter ends there. K
// identifies a subscriber (the broker uses a session pointer or client id)
// and V is the per-subscription data (QoS and options). Subscribe and
// Unsubscribe cost O(levels) whatever the number of subscribers; Match costs
// O(matching nodes + matching subscriptions) and does not allocate.
//
// A Trie is safe for concurrent use. The zero Trie is not ready: use NewTrie.
type Trie[K comparable, V any] struct {
	mu    sync.RWMutex
	root  *node[K, V]
	count int
}

// node is one level of a topic filter.
type node[K comparable, V any] struct {
	parent *node[K, V]
	filter string // the filter up to and including this level
	level  string // this level: a suffix of filter, and the key in parent

	children childSet[*node[K, V]] // literal levels, "" included
	plus     *node[K, V]           // '+' child
	hash     *node[K, V]           // '#' child

	subs   []Member[K, V] // ordinary subscriptions ending here
	index  map[K]int      // position in subs; see memberSet
	groups map[string]*Group[K, V]
}

func (n *node[K, V]) key() string { return n.level }

func (n *node[K, V]) ordinary() memberSet[K, V] {
	return memberSet[K, V]{list: &n.subs, index: &n.index}
}

func (n *node[K, V]) empty() bool {
	return len(n.subs) == 0 && len(n.groups) == 0 && n.children.len() == 0 && n.plus == nil && n.hash == nil
}

// NewTrie returns an empty Trie.
func NewTrie[K comparable, V any]() *Trie[K, V] {
	return &Trie[K, V]{root: &node[K, V]{}}
}

// Len returns the number of subscriptions, ordinary and shared.
func (t *Trie[K, V]) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// Subscribe adds client's subscription to filter with value v, or replaces
// v if client already holds that filter (in the same group). group is ""
// for an ordinary subscription, or the share name of "$share/{group}/{filter}"
// as ParseShared returns it. filter must be valid (ValidateFilter).
// Subscribe reports whether it replaced an existing subscription
// [MQTT-3.8.4-3].
func (t *Trie[K, V]) Subscribe(filter, group string, client K, v V) (replaced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.root
	for rest, more := filter, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		n = n.child(level)
	}
	if group == "" {
		replaced = n.ordinary().put(client, v)
	} else {
		g := n.groups[group]
		if g == nil {
			if n.groups == nil {
				n.groups = make(map[string]*Group[K, V])
			}
			g = &Group[K, V]{Name: strings.Clone(group), Filter: n.filter}
			n.groups[g.Name] = g
		}
		replaced = memberSet[K, V]{list: &g.Members, index: &g.index}.put(client, v)
	}
	if !replaced {
		t.count++
	}
	return replaced
}

// child returns n's child for level, creating it.
func (n *node[K, V]) child(level string) *node[K, V] {
	var c *node[K, V]
	switch level {
	case "+":
		c = n.plus
	case "#":
		c = n.hash
	default:
		c = n.children.get(level)
	}
	if c != nil {
		return c
	}
	// Each node owns a copy of its filter prefix, so the trie never pins
	// the caller's (possibly large) packet buffer; level shares its bytes.
	c = &node[K, V]{parent: n}
	if n.parent == nil {
		c.filter = strings.Clone(level)
	} else {
		c.filter = n.filter + "/" + level
	}
	c.level = c.filter[len(c.filter)-len(level):]
	switch level {
	case "+":
		n.plus = c
	case "#":
		n.hash = c
	default:
		n.children.add(c)
	}
	return c
}

// Unsubscribe removes client's subscription to filter in group ("" for an
// ordinary subscription) and reports whether it existed. Nodes left empty
// are removed, so a trie that churns through unicast topics does not grow.
func (t *Trie[K, V]) Unsubscribe(filter, group string, client K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.root
	for rest, more := filter, true; more && n != nil; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		switch level {
		case "+":
			n = n.plus
		case "#":
			n = n.hash
		default:
			n = n.children.get(level)
		}
	}
	if n == nil {
		return false
	}
	if group == "" {
		if !n.ordinary().remove(client) {
			return false
		}
	} else {
		g := n.groups[group]
		if g == nil || !(memberSet[K, V]{list: &g.Members, index: &g.index}).remove(client) {
			return false
		}
		if len(g.Members) == 0 {
			delete(n.groups, group)
			if len(n.groups) == 0 {
				n.groups = nil
			}
		}
	}
	t.count--
	for n.parent != nil && n.empty() {
		p := n.parent
		switch {
		case p.plus == n:
			p.plus = nil
		case p.hash == n:
			p.hash = nil
		default:
			p.children.remove(n)
		}
		n.parent = nil
		n = p
	}
	return true
}

// Match calls visit for every ordinary subscription whose filter matches
// name, and visitShared once for every shared Group (one group name at one
// filter) whose filter matches. A client holding several matching filters is
// visited once per filter; merging them is the caller's job
// [MQTT-3.3.4-2]. Either callback may be nil. The callbacks run under the
// Trie's read lock: they must not call Subscribe or Unsubscribe, and must not
// keep the Group past their return. name must be valid (ValidateName).
func (t *Trie[K, V]) Match(name string, visit func(client K, v V), visitShared func(g *Group[K, V])) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	// [MQTT-4.7.2-1] a '$' topic is not matched by a filter starting with a
	// wildcard, so at the first level skip the root's '+' and '#' children.
	dollar := name != "" && name[0] == '$'
	t.root.match(name, false, dollar, visit, visitShared)
}

// match visits the subscriptions below n that match the name levels in rest;
// done means the name has no levels left (rest is empty).
func (n *node[K, V]) match(rest string, done, dollar bool, visit func(K, V), visitShared func(*Group[K, V])) {
	if done {
		n.deliver(visit, visitShared)
		// [MQTT-4.7.1-2] "sport/#" matches "sport" itself.
		if n.hash != nil {
			n.hash.deliver(visit, visitShared)
		}
		return
	}
	level, next, more := strings.Cut(rest, "/")
	if !dollar {
		if n.hash != nil {
			n.hash.deliver(visit, visitShared)
		}
		if n.plus != nil {
			n.plus.match(next, !more, false, visit, visitShared)
		}
	}
	if c := n.children.get(level); c != nil {
		c.match(next, !more, false, visit, visitShared)
	}
}

func (n *node[K, V]) deliver(visit func(K, V), visitShared func(*Group[K, V])) {
	if visit != nil {
		for i := range n.subs {
			visit(n.subs[i].Client, n.subs[i].Value)
		}
	}
	if visitShared != nil {
		for _, g := range n.groups {
			visitShared(g)
		}
	}
}

// Walk calls fn for every subscription, ordinary (group "") and shared, in
// no particular order, until fn returns false. It is meant for snapshots
// (admin API, persistence): fn runs under the read lock and must not call
// Subscribe or Unsubscribe.
func (t *Trie[K, V]) Walk(fn func(filter, group string, client K, v V) bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	t.root.walk(fn)
}

func (n *node[K, V]) walk(fn func(filter, group string, client K, v V) bool) bool {
	for _, m := range n.subs {
		if !fn(n.filter, "", m.Client, m.Value) {
			return false
		}
	}
	for _, g := range n.groups {
		for _, m := range g.Members {
			if !fn(n.filter, g.Name, m.Client, m.Value) {
				return false
			}
		}
	}
	if !n.children.each(func(c *node[K, V]) bool { return c.walk(fn) }) {
		return false
	}
	if n.plus != nil && !n.plus.walk(fn) {
		return false
	}
	return n.hash == nil || n.hash.walk(fn)
}
