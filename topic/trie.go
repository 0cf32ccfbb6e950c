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

// node is one or more levels of a topic filter. Memory per node is most of
// what an idle subscribed client costs the broker, so the common node, a
// leaf with one subscriber, is kept to four words plus the Member:
//
//   - Chains of literal levels that hold nothing but the next level are
//     folded into one node whose label is those levels joined by '/'
//     (path compression): "user/00001234/inbox" is one node labelled
//     "00001234/inbox" under "user", not two. '+' and '#' are always nodes
//     of their own, labelled "+" and "#", so a label never hides a
//     wildcard, a subscriber or a branch. Subscribe splits a label where a
//     new filter leaves it; Unsubscribe folds a node back into its only
//     child, so the shape depends only on the filters held.
//   - A node's only ordinary subscriber is stored inline (one, hasOne);
//     children, wildcard children, further subscribers and shared groups
//     live in a nodeExt allocated when first needed and dropped when empty.
//   - There is no parent pointer and no stored filter: Unsubscribe prunes
//     on its way back up the recursion, and Walk rebuilds filters from the
//     labels.
type node[K comparable, V any] struct {
	label  string
	ext    *nodeExt[K, V]
	one    Member[K, V] // the ordinary subscriber, when hasOne
	hasOne bool
}

// nodeExt is the part of a node that a unicast leaf does not need.
type nodeExt[K comparable, V any] struct {
	children childSet[*node[K, V]] // literal children, by first level
	plus     *node[K, V]           // '+' child
	hash     *node[K, V]           // '#' child

	// subs holds the ordinary subscribers once there are two or more
	// (node.hasOne is then false), so Match iterates one dense slice.
	subs   []Member[K, V]
	index  map[K]int // position in subs; see memberSet
	groups map[string]*Group[K, V]
}

// key is the first level of n's label: its key in the parent's childSet.
func (n *node[K, V]) key() string {
	if i := strings.IndexByte(n.label, '/'); i >= 0 {
		return n.label[:i]
	}
	return n.label
}

func (n *node[K, V]) hasKey(level string) bool { return hasLevels(n.label, level) }

func (n *node[K, V]) extend() *nodeExt[K, V] {
	if n.ext == nil {
		n.ext = new(nodeExt[K, V])
	}
	return n.ext
}

func (e *nodeExt[K, V]) members() memberSet[K, V] {
	return memberSet[K, V]{list: &e.subs, index: &e.index}
}

func (e *nodeExt[K, V]) empty() bool {
	return e.children.len() == 0 && e.plus == nil && e.hash == nil && len(e.subs) == 0 && len(e.groups) == 0
}

// tidy drops n's extension once nothing is left in it.
func (n *node[K, V]) tidy() {
	if n.ext != nil && n.ext.empty() {
		n.ext = nil
	}
}

// empty reports whether n holds nothing and can be pruned; call tidy first.
func (n *node[K, V]) empty() bool { return !n.hasOne && n.ext == nil }

// foldable reports whether n holds nothing but one literal child, so the
// two can be one node.
func (n *node[K, V]) foldable() bool {
	e := n.ext
	return !n.hasOne && e != nil && e.children.len() == 1 && e.plus == nil && e.hash == nil &&
		len(e.subs) == 0 && len(e.groups) == 0
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
//
// The trie's node labels are substrings of the filters subscribed (not
// copies: a copy per subscription is memory a broker holding a million
// filters does not need), so filter should not share memory with a larger
// buffer, such as a decoded packet, that the trie would then keep alive.
func (t *Trie[K, V]) Subscribe(filter, group string, client K, v V) (replaced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := t.root
	for rest, more := filter, true; more; {
		n, rest, more = n.child(rest)
	}
	if group == "" {
		replaced = n.put(client, v)
	} else {
		e := n.extend()
		g := e.groups[group]
		if g == nil {
			if e.groups == nil {
				e.groups = make(map[string]*Group[K, V])
			}
			// Copies, so the trie never pins the caller's packet buffer.
			g = &Group[K, V]{Name: strings.Clone(group), Filter: strings.Clone(filter)}
			e.groups[g.Name] = g
		}
		replaced = g.members().put(client, v)
	}
	if !replaced {
		t.count++
	}
	return replaced
}

// child returns the node for the leading levels of the filter levels in
// rest, creating or splitting nodes as needed, and the levels left below it
// (more is false when there are none).
func (n *node[K, V]) child(rest string) (c *node[K, V], tail string, more bool) {
	e := n.extend()
	level, tail, more := strings.Cut(rest, "/")
	switch level {
	case "+":
		if e.plus == nil {
			e.plus = &node[K, V]{label: "+"}
		}
		return e.plus, tail, more
	case "#":
		if e.hash == nil {
			e.hash = &node[K, V]{label: "#"}
		}
		return e.hash, tail, more
	}
	var end int // bytes of rest that c stands for
	if c = e.children.get(level); c == nil {
		// A new branch takes every literal level up to the next wildcard.
		// The label is a substring of filter (see Subscribe).
		end = literalLevels(rest)
		c = &node[K, V]{label: rest[:end]}
		e.children.add(c)
	} else if end = sharedLevels(c.label, rest); end < len(c.label) {
		// The filter leaves c's label part way: split c into the shared
		// levels and, below them, the rest of its label.
		mid := &node[K, V]{label: c.label[:end]}
		e.children.remove(c)
		c.label = c.label[end+1:]
		mid.extend().children.add(c)
		e.children.add(mid)
		c = mid
	}
	if end == len(rest) {
		return c, "", false
	}
	return c, rest[end+1:], true
}

// literalLevels returns the length of the leading levels of filter, which
// starts with a literal level, up to the first wildcard level.
func literalLevels(filter string) int {
	// In a valid filter '+' and '#' are whole levels, so the byte before
	// one is a '/'.
	if i := strings.IndexAny(filter, "+#"); i > 0 {
		return i - 1
	}
	return len(filter)
}

// sharedLevels returns the length of the longest run of whole leading
// levels that label and rest have in common. The caller has checked that
// the first levels are equal.
func sharedLevels(label, rest string) int {
	shared := 0
	for i := 0; ; i++ {
		labelEnd := i == len(label) || label[i] == '/'
		restEnd := i == len(rest) || rest[i] == '/'
		switch {
		case labelEnd && restEnd:
			shared = i
			if i == len(label) || i == len(rest) {
				return shared
			}
		case labelEnd || restEnd || label[i] != rest[i]:
			return shared
		}
	}
}

// hasLevels reports whether name starts with the levels of label: whole
// levels, so "a/bc" does not start with "a/b".
func hasLevels(name, label string) bool {
	return strings.HasPrefix(name, label) && (len(name) == len(label) || name[len(label)] == '/')
}

// put adds client as an ordinary subscriber of n, or replaces its value; it
// reports whether it replaced.
func (n *node[K, V]) put(client K, v V) (replaced bool) {
	switch {
	case n.hasOne && n.one.Client == client:
		n.one.Value = v
		return true
	case n.hasOne:
		e := n.extend()
		e.subs = append(make([]Member[K, V], 0, 2), n.one, Member[K, V]{Client: client, Value: v})
		n.one, n.hasOne = Member[K, V]{}, false
		return false
	case n.ext == nil || len(n.ext.subs) == 0:
		n.one, n.hasOne = Member[K, V]{Client: client, Value: v}, true
		return false
	}
	return n.ext.members().put(client, v)
}

// drop removes client's ordinary subscription at n and reports whether
// there was one.
func (n *node[K, V]) drop(client K) bool {
	switch {
	case n.hasOne:
		if n.one.Client != client {
			return false
		}
		n.one, n.hasOne = Member[K, V]{}, false
		return true
	case n.ext == nil || !n.ext.members().remove(client):
		return false
	}
	if e := n.ext; len(e.subs) == 1 {
		// Back inline, so the extension can go once nothing else needs it.
		n.one, n.hasOne = e.subs[0], true
		e.subs = nil
	}
	return true
}

// Unsubscribe removes client's subscription to filter in group ("" for an
// ordinary subscription) and reports whether it existed. Nodes left empty
// are removed and chains left bare are folded, so a trie that churns
// through unicast topics does not grow.
func (t *Trie[K, V]) Unsubscribe(filter, group string, client K) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.root.unsubscribe(filter, group, client) {
		return false
	}
	t.root.tidy()
	t.count--
	return true
}

// unsubscribe removes the subscription whose filter levels below n are
// rest, then prunes or folds the child of n it went through. Recursion
// rather than parent pointers: its depth is the number of nodes on the
// path, and it saves a word in every node.
func (n *node[K, V]) unsubscribe(rest, group string, client K) bool {
	e := n.ext
	if e == nil {
		return false
	}
	level, tail, more := strings.Cut(rest, "/")
	var c *node[K, V]
	switch level {
	case "+":
		c = e.plus
	case "#":
		c = e.hash
	default:
		if c = e.children.get(level); c != nil {
			if !hasLevels(rest, c.label) {
				return false
			}
			if more = len(rest) > len(c.label); more {
				tail = rest[len(c.label)+1:]
			}
		}
	}
	if c == nil {
		return false
	}
	if more {
		if !c.unsubscribe(tail, group, client) {
			return false
		}
	} else if !c.remove(group, client) {
		return false
	}
	c.tidy()
	switch {
	case c == e.plus:
		if c.empty() {
			e.plus = nil
		}
	case c == e.hash:
		if c.empty() {
			e.hash = nil
		}
	case c.empty():
		e.children.remove(c)
	case c.foldable():
		var only *node[K, V]
		c.ext.children.each(func(o *node[K, V]) bool { only = o; return false })
		e.children.remove(c)
		only.label = c.label + "/" + only.label
		e.children.add(only)
	}
	return true
}

// remove deletes client's subscription at n, in group or ordinary, and
// reports whether it was there.
func (n *node[K, V]) remove(group string, client K) bool {
	if group == "" {
		return n.drop(client)
	}
	if n.ext == nil {
		return false
	}
	e := n.ext
	g := e.groups[group]
	if g == nil || !g.members().remove(client) {
		return false
	}
	if len(g.Members) == 0 {
		delete(e.groups, group)
		if len(e.groups) == 0 {
			e.groups = nil
		}
	}
	return true
}
