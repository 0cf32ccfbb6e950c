package topic

import "strings"

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
	e := n.ext
	if done {
		n.deliver(visit, visitShared)
		// [MQTT-4.7.1-2] "sport/#" matches "sport" itself.
		if e != nil && e.hash != nil {
			e.hash.deliver(visit, visitShared)
		}
		return
	}
	if e == nil {
		return // a leaf
	}
	level, next, more := strings.Cut(rest, "/")
	if !dollar {
		if e.hash != nil {
			e.hash.deliver(visit, visitShared)
		}
		if e.plus != nil {
			e.plus.match(next, !more, false, visit, visitShared)
		}
	}
	c := e.children.get(level)
	switch {
	case c == nil:
	case len(c.label) == len(level): // a label of one level: level itself
		c.match(next, !more, false, visit, visitShared)
	case !hasLevels(rest, c.label):
	case len(rest) == len(c.label):
		c.match("", true, false, visit, visitShared)
	default:
		c.match(rest[len(c.label)+1:], false, false, visit, visitShared)
	}
}

func (n *node[K, V]) deliver(visit func(K, V), visitShared func(*Group[K, V])) {
	if visit != nil && n.hasOne {
		visit(n.one.Client, n.one.Value)
	}
	e := n.ext
	if e == nil {
		return
	}
	if visit != nil {
		for i := range e.subs {
			visit(e.subs[i].Client, e.subs[i].Value)
		}
	}
	if visitShared != nil {
		for _, g := range e.groups {
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
	if e := t.root.ext; e != nil {
		e.walk(nil, true, fn)
	}
}

// walk visits the subscriptions of e's children and below; path is the
// filter up to e's node, top says that node is the root. Filters are
// rebuilt from the labels, since nodes do not store them.
func (e *nodeExt[K, V]) walk(path []byte, top bool, fn func(filter, group string, client K, v V) bool) bool {
	visit := func(c *node[K, V]) bool {
		p := path
		if !top {
			p = append(p, '/')
		}
		p = append(p, c.label...)
		return c.walk(p, fn)
	}
	if !e.children.each(visit) {
		return false
	}
	if e.plus != nil && !visit(e.plus) {
		return false
	}
	return e.hash == nil || visit(e.hash)
}

// walk visits n's subscriptions, whose filter is path, and those below n.
func (n *node[K, V]) walk(path []byte, fn func(filter, group string, client K, v V) bool) bool {
	e := n.ext
	var filter string
	if n.hasOne || (e != nil && (len(e.subs) > 0 || len(e.groups) > 0)) {
		filter = string(path)
	}
	if n.hasOne && !fn(filter, "", n.one.Client, n.one.Value) {
		return false
	}
	if e == nil {
		return true
	}
	for _, m := range e.subs {
		if !fn(filter, "", m.Client, m.Value) {
			return false
		}
	}
	for _, g := range e.groups {
		for _, m := range g.Members {
			if !fn(filter, g.Name, m.Client, m.Value) {
				return false
			}
		}
	}
	return e.walk(path, false, fn)
}
