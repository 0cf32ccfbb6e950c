package broker

// subSet is a session's subscriptions keyed by full filter (including any
// "$share/group/" prefix). Most clients hold a handful, so it is a slice
// searched linearly; past subSetIndexAt an index map takes over the
// lookups, keeping subscribe cost independent of the count.
type subSet struct {
	list  []*subscription
	index map[string]int // full filter -> position in list; nil while small
}

const subSetIndexAt = 16

func (s *subSet) len() int { return len(s.list) }

func (s *subSet) find(full string) int {
	if s.index != nil {
		if i, ok := s.index[full]; ok {
			return i
		}
		return -1
	}
	for i, sub := range s.list {
		if sub.full == full {
			return i
		}
	}
	return -1
}

func (s *subSet) get(full string) (*subscription, bool) {
	if i := s.find(full); i >= 0 {
		return s.list[i], true
	}
	return nil, false
}

// put adds or replaces the subscription with sub.full.
func (s *subSet) put(sub *subscription) {
	if i := s.find(sub.full); i >= 0 {
		s.list[i] = sub
		return
	}
	s.list = append(s.list, sub)
	if s.index != nil {
		s.index[sub.full] = len(s.list) - 1
	} else if len(s.list) > subSetIndexAt {
		s.index = make(map[string]int, len(s.list))
		for i, x := range s.list {
			s.index[x.full] = i
		}
	}
}

// remove deletes the subscription with full filter, reporting whether it existed.
func (s *subSet) remove(full string) bool {
	i := s.find(full)
	if i < 0 {
		return false
	}
	last := len(s.list) - 1
	if s.index != nil {
		delete(s.index, full)
		if i != last {
			s.index[s.list[last].full] = i
		}
	}
	s.list[i] = s.list[last]
	s.list[last] = nil
	s.list = s.list[:last]
	if len(s.list) == 0 {
		*s = subSet{}
	}
	return true
}
