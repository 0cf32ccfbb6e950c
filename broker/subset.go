package broker

// subSet is a session's subscriptions keyed by full filter (including any
// "$share/group/" prefix). A session with one subscription (a phone on its
// own inbox topic) keeps it inline, with nothing else allocated; two or
// more go to a slice searched linearly, and past subSetIndexAt an index
// map takes over the lookups, keeping subscribe cost independent of the
// count.
type subSet struct {
	one  *subscription // the only subscription; nil when there are none or several
	many *subList      // two or more; nil otherwise
}

type subList struct {
	list  []*subscription
	index map[string]int // full filter -> position in list; nil while small
}

const subSetIndexAt = 16

func (s *subSet) len() int {
	switch {
	case s.many != nil:
		return len(s.many.list)
	case s.one != nil:
		return 1
	}
	return 0
}

// all returns the subscriptions, valid until the set next changes.
func (s *subSet) all() []*subscription {
	switch {
	case s.many != nil:
		return s.many.list
	case s.one != nil:
		return []*subscription{s.one}
	}
	return nil
}

func (l *subList) find(full string) int {
	if l.index != nil {
		if i, ok := l.index[full]; ok {
			return i
		}
		return -1
	}
	for i, sub := range l.list {
		if sub.full == full {
			return i
		}
	}
	return -1
}

func (s *subSet) get(full string) (*subscription, bool) {
	if s.many == nil {
		return s.one, s.one != nil && s.one.full == full
	}
	if i := s.many.find(full); i >= 0 {
		return s.many.list[i], true
	}
	return nil, false
}

// put adds or replaces the subscription with sub.full.
func (s *subSet) put(sub *subscription) {
	if s.many == nil {
		if s.one == nil || s.one.full == sub.full {
			s.one = sub
			return
		}
		s.many = &subList{list: []*subscription{s.one, sub}}
		s.one = nil
		return
	}
	l := s.many
	if i := l.find(sub.full); i >= 0 {
		l.list[i] = sub
		return
	}
	l.list = append(l.list, sub)
	if l.index != nil {
		l.index[sub.full] = len(l.list) - 1
	} else if len(l.list) > subSetIndexAt {
		l.index = make(map[string]int, len(l.list))
		for i, x := range l.list {
			l.index[x.full] = i
		}
	}
}

// remove deletes the subscription with full filter, reporting whether it existed.
func (s *subSet) remove(full string) bool {
	if s.many == nil {
		if s.one == nil || s.one.full != full {
			return false
		}
		s.one = nil
		return true
	}
	l := s.many
	i := l.find(full)
	if i < 0 {
		return false
	}
	last := len(l.list) - 1
	if l.index != nil {
		delete(l.index, full)
		if i != last {
			l.index[l.list[last].full] = i
		}
	}
	l.list[i] = l.list[last]
	l.list[last] = nil
	l.list = l.list[:last]
	if len(l.list) == 1 {
		*s = subSet{one: l.list[0]}
	}
	return true
}
