package topic

import "sync/atomic"

// Member is one subscriber in a trie node or a shared Group: the client and
// the value it subscribed with.
type Member[K comparable, V any] struct {
	Client K
	Value  V
}

// Group is the shared subscription "$share/{Name}/{Filter}": every member
// holds the same group name and filter, and each matching message goes to
// one of them. The Trie hands a Group to Match's visitShared callback; its
// fields are valid, and must be treated as read-only, only during that
// callback.
type Group[K comparable, V any] struct {
	// Name is the share name, the group part of "$share/{Name}/{Filter}".
	Name string
	// Filter is the inner topic filter the members subscribed to.
	Filter string
	// Members is the group's subscribers, in no particular order.
	Members []Member[K, V]

	index map[K]int // see memberSet; nil while the group is small
	next  atomic.Uint64
}

// Next returns the index in g.Members of the member to try next, going
// round the members in turn. Callers skip a member they find offline by
// calling Next again; calls from concurrent publishers are safe. Next
// returns -1 if the group has no members.
func (g *Group[K, V]) Next() int {
	n := len(g.Members)
	if n == 0 {
		return -1
	}
	return int((g.next.Add(1) - 1) % uint64(n))
}

func (g *Group[K, V]) members() memberSet[K, V] {
	return memberSet[K, V]{list: &g.Members, index: &g.index}
}

// indexAbove is the number of members beyond which a memberSet keeps a map
// from client to position. Below it a scan of the dense slice is as fast and
// saves a map per node, which matters with millions of unicast topics
// (user/N/inbox) of one subscriber each.
const indexAbove = 8

// memberSet is the storage of a node's ordinary subscribers and of a
// Group's members: a dense slice that Match iterates, plus an index so that
// adding and removing a member costs O(1) whatever the set's size.
// Removal swaps the last member into the hole.
type memberSet[K comparable, V any] struct {
	list  *[]Member[K, V]
	index *map[K]int
}

func (s memberSet[K, V]) find(client K) int {
	if *s.index != nil {
		if i, ok := (*s.index)[client]; ok {
			return i
		}
		return -1
	}
	for i := range *s.list {
		if (*s.list)[i].Client == client {
			return i
		}
	}
	return -1
}

// put adds client, or replaces its value; it reports whether it replaced.
func (s memberSet[K, V]) put(client K, v V) (replaced bool) {
	if i := s.find(client); i >= 0 {
		(*s.list)[i].Value = v
		return true
	}
	*s.list = append(*s.list, Member[K, V]{Client: client, Value: v})
	switch n := len(*s.list); {
	case *s.index != nil:
		(*s.index)[client] = n - 1
	case n > indexAbove:
		idx := make(map[K]int, n)
		for i, m := range *s.list {
			idx[m.Client] = i
		}
		*s.index = idx
	}
	return false
}

// remove deletes client and reports whether it was there.
func (s memberSet[K, V]) remove(client K) bool {
	i := s.find(client)
	if i < 0 {
		return false
	}
	list := *s.list
	last := len(list) - 1
	if i != last {
		list[i] = list[last]
		if *s.index != nil {
			(*s.index)[list[i].Client] = i
		}
	}
	var zero Member[K, V]
	list[last] = zero // release the client and value to the collector
	list = list[:last]
	if *s.index != nil {
		delete(*s.index, client)
		// Go maps do not shrink: drop the index (and its memory) once the
		// set is small again. Hysteresis keeps a set hovering at the
		// threshold from rebuilding it on every call.
		if len(list) <= indexAbove/2 {
			*s.index = nil
		}
	}
	switch {
	case len(list) == 0:
		list = nil
	case cap(list) > 32 && len(list) < cap(list)/4:
		// Shrink after a crowd leaves; amortised O(1) per removal.
		list = append(make([]Member[K, V], 0, 2*len(list)), list...)
	}
	*s.list = list
	return true
}
