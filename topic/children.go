package topic

// levelled is a trie node that knows its own topic level.
type levelled interface {
	comparable
	key() string
	// hasKey reports whether key() == level, without making the key.
	hasKey(level string) bool
}

// inlineChildren is how many children a node keeps in a slice before it
// switches to a levelTable. Most nodes with children have few, and
// scanning a handful of levels is as fast as hashing one.
const inlineChildren = 8

// childSet holds a node's literal (non-wildcard) children by level.
type childSet[N levelled] struct {
	list  []N            // while there are at most inlineChildren
	table *levelTable[N] // beyond that; then list is nil
}

func (s *childSet[N]) len() int {
	if s.table != nil {
		return s.table.count
	}
	return len(s.list)
}

func (s *childSet[N]) get(level string) N {
	if s.table != nil {
		return s.table.get(level)
	}
	for _, c := range s.list {
		if c.hasKey(level) {
			return c
		}
	}
	var none N
	return none
}

// add inserts c, whose key must not be there yet.
func (s *childSet[N]) add(c N) {
	switch {
	case s.table != nil:
		s.table.add(c)
	case len(s.list) < inlineChildren:
		s.list = append(s.list, c)
	default:
		s.table = newLevelTable(append(s.list, c))
		s.list = nil
	}
}

// remove deletes c, which must be there.
func (s *childSet[N]) remove(c N) {
	if s.table != nil {
		s.table.remove(c)
		// Back to a slice once small, with hysteresis, so the table's
		// memory (which, like a Go map's, never shrinks) is freed after a
		// crowd of topics goes.
		if s.table.count <= inlineChildren/2 {
			list := make([]N, 0, inlineChildren)
			s.table.each(func(o N) bool { list = append(list, o); return true })
			s.list, s.table = list, nil
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
	if s.table != nil {
		return s.table.each(fn)
	}
	for _, c := range s.list {
		if !fn(c) {
			return false
		}
	}
	return true
}
