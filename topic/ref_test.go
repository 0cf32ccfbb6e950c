package topic

import "strings"

// refMatch is a second, deliberately naive matcher, written from the spec
// text by splitting into levels, that Match, Trie and Retained are checked
// against.
func refMatch(filter, name string) bool {
	f := strings.Split(filter, "/")
	n := strings.Split(name, "/")
	if strings.HasPrefix(name, "$") && (f[0] == "+" || f[0] == "#") {
		return false
	}
	for i, fl := range f {
		if fl == "#" {
			return i == len(f)-1 && len(n) >= i
		}
		if i >= len(n) {
			return false
		}
		if fl != "+" && fl != n[i] {
			return false
		}
	}
	return len(f) == len(n)
}

// refValidFilter is ValidateFilter's level rules written the obvious way.
func refValidFilter(filter string) bool {
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
	}
	return true
}
