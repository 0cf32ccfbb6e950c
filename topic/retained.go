package topic

import (
	"strings"
	"sync"
)

// Retained is the retained-message index: at most one value per topic name,
// found by topic filter. Names are stored as a trie of levels, so a filter
// such as "a/+/c" visits only the "a" subtree rather than every topic.
//
// A Retained is safe for concurrent use. The zero Retained is not ready:
// use NewRetained.
type Retained[V any] struct {
	mu    sync.RWMutex
	root  *retainedNode[V]
	count int
}

type retainedNode[V any] struct {
	parent   *retainedNode[V]
	level    string // key in parent.children
	children childSet[*retainedNode[V]]

	name  string // the full topic name, when has
	value V
	has   bool
}

func (n *retainedNode[V]) key() string { return n.level }

func (n *retainedNode[V]) hasKey(level string) bool { return n.level == level }

// NewRetained returns an empty Retained.
func NewRetained[V any]() *Retained[V] {
	return &Retained[V]{root: &retainedNode[V]{}}
}

// Len returns the number of retained values.
func (r *Retained[V]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.count
}

// Set stores v as the retained value of topic name, replacing any previous
// one [MQTT-3.3.1-5]. name must be valid (ValidateName). Deleting on an
// empty payload [MQTT-3.3.1-6] is the caller's decision: call Delete.
func (r *Retained[V]) Set(name string, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.root
	for rest, more := name, true; more; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		c := n.children.get(level)
		if c == nil {
			c = &retainedNode[V]{parent: n, level: strings.Clone(level)}
			n.children.add(c)
		}
		n = c
	}
	if !n.has {
		n.name = strings.Clone(name)
		n.has = true
		r.count++
	}
	n.value = v
}

func (r *Retained[V]) find(name string) *retainedNode[V] {
	n := r.root
	for rest, more := name, true; more && n != nil; {
		var level string
		level, rest, more = strings.Cut(rest, "/")
		n = n.children.get(level)
	}
	return n
}

// Get returns the retained value of topic name, if there is one.
func (r *Retained[V]) Get(name string) (V, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.find(name); n != nil && n.has {
		return n.value, true
	}
	var zero V
	return zero, false
}

// Delete removes the retained value of topic name and reports whether there
// was one. Levels left empty are removed.
func (r *Retained[V]) Delete(name string) bool {
	return r.DeleteIf(name, func(V) bool { return true })
}

// DeleteIf removes the retained value of topic name if remove, called with
// it under the lock, says so: a value replaced since the caller looked at
// it stays.
func (r *Retained[V]) DeleteIf(name string, remove func(V) bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.find(name)
	if n == nil || !n.has || !remove(n.value) {
		return false
	}
	var zero V
	n.value, n.name, n.has = zero, "", false
	r.count--
	for n.parent != nil && !n.has && n.children.len() == 0 {
		p := n.parent
		p.children.remove(n)
		n.parent = nil
		n = p
	}
	return true
}

// Match calls visit with every retained topic name and value that filter
// matches, as Match(filter, name) would decide, in no particular order, until
// visit returns false. filter must be valid (ValidateFilter). visit runs
// under the read lock: it must not call Set or Delete.
func (r *Retained[V]) Match(filter string, visit func(name string, v V) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.root.match(filter, true, visit)
}

// match visits the values below n that the filter levels in filter match;
// root marks the first level, where wildcards skip '$' topics
// [MQTT-4.7.2-1]. It returns false once visit has asked to stop.
func (n *retainedNode[V]) match(filter string, root bool, visit func(string, V) bool) bool {
	level, rest, more := strings.Cut(filter, "/")
	switch level {
	case "#":
		// [MQTT-4.7.1-2] '#' matches its parent level too: "sport/#" gets
		// the value retained at "sport".
		return n.all(root, visit)
	case "+":
		return n.children.each(func(c *retainedNode[V]) bool {
			return (root && strings.HasPrefix(c.level, "$")) || c.step(rest, more, visit)
		})
	}
	if c := n.children.get(level); c != nil {
		return c.step(rest, more, visit)
	}
	return true
}

// step continues a match at n, whose level matched; more says the filter
// has levels left, in rest.
func (n *retainedNode[V]) step(rest string, more bool, visit func(string, V) bool) bool {
	if !more {
		return !n.has || visit(n.name, n.value)
	}
	return n.match(rest, false, visit)
}

// all visits n's value and every value below it, skipping '$' children when
// n is the root.
func (n *retainedNode[V]) all(root bool, visit func(string, V) bool) bool {
	if n.has && !visit(n.name, n.value) {
		return false
	}
	return n.children.each(func(c *retainedNode[V]) bool {
		return (root && strings.HasPrefix(c.level, "$")) || c.all(false, visit)
	})
}
