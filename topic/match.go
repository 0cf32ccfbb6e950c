package topic

import "strings"

// Match reports whether the topic filter matches the topic name. Both must be
// valid (ValidateFilter, ValidateName); Match does not check them. It is the
// reference the Trie and Retained indexes agree with, and it does not
// allocate.
func Match(filter, name string) bool {
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a name
	// starting with '$' ($SYS and other server topics).
	if name != "" && name[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		nl, nrest, nmore := strings.Cut(name, "/")
		if fl != "+" && fl != nl {
			return false
		}
		switch {
		case !fmore:
			return !nmore
		case !nmore:
			// [MQTT-4.7.1-2] "sport/#" also matches the parent level "sport".
			return frest == "#"
		}
		filter, name = frest, nrest
	}
}
