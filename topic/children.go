package topic

// levelled is a trie node that knows its own topic level.
type levelled interface {
	comparable
	key() string
}

// inlineChildren is how many children a node keeps in a slice before it
// switches to a map. Most nodes of a broker's tries have one child (the
// "inbox" under each "user/N"): a slice of one pointer costs 8 bytes where
// the smallest map costs a few hundred, which is most of a unicast
// subscription's memory, and scanning a handful of levels is as fast as
// hashing one.
const inlineChildren = 8

// childSet holds a node's literal (non-wildcard) children by level.
type childSet[N levelled] struct {
	list    []N          // while there are at most inlineChildren
	byLevel map[string]N // beyond that; then list is nil
}

func (s *childSet[N]) len() int { return len(s.list) + len(s.byLevel) }

func (s *childSet[N]) get(level string) N {
	if s.byLevel != nil {
		return s.byLevel[level]
	}
	for _, c := range s.list {
		if c.key() == level {
			return c
		}
	}
	var none N
	return none
}

// add inserts c, which must not be there yet.
func (s *childSet[N]) add(c N) {
	switch {
	case s.byLevel != nil:
		s.byLevel[c.key()] = c
	case len(s.list) < inlineChildren:
		s.list = append(s.list, c)
	default:
		s.byLevel = make(map[string]N, 2*inlineChildren)
		for _, o := range s.list {
			s.byLevel[o.key()] = o
		}
		s.byLevel[c.key()] = c
		s.list = nil
	}
}

// remove deletes c, which must be there.
func (s *childSet[N]) remove(c N) {
	if s.byLevel != nil {
		delete(s.byLevel, c.key())
		// Back to a slice once small, with hysteresis, so the map's memory
		// (Go maps never shrink) is freed after a crowd of topics goes.
		if len(s.byLevel) <= inlineChildren/2 {
			list := make([]N, 0, inlineChildren)
			for _, o := range s.byLevel {
				list = append(list, o)
			}
			s.list, s.byLevel = list, nil
		}
		return
	}
	for i, o := range s.list {
		if o == c {
			last := len(s.list) - 1
			s.list[i] = s.list[last]
			var none N
			s.list[last] = none
			s.list = s.list[:last]
			break
		}
	}
	if len(s.list) == 0 {
		s.list = nil
	}
}

// each calls fn for every child until it returns false, and reports
// whether it went through all of them.
func (s *childSet[N]) each(fn func(N) bool) bool {
	for _, c := range s.list {
		if !fn(c) {
			return false
		}
	}
	for _, c := range s.byLevel {
		if !fn(c) {
			return false
		}
	}
	return true
}
