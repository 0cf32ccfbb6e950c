package topic

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzValidateFilter(f *testing.F) {
	for _, s := range []string{"#", "+", "a/b", "sport/tennis#", "sport/+/player1", "/", "$share/g/a/#", "$share//a", "a/#/b", "++", "\x00", "\xff/+"} {
		f.Add(s)
	}
	for _, tt := range matchCases {
		f.Add(tt.filter)
	}
	f.Fuzz(func(t *testing.T, filter string) {
		err := ValidateFilter(filter)
		want := filter != "" && len(filter) <= MaxLength && !strings.ContainsRune(filter, 0) &&
			utf8.ValidString(filter) && refValidFilter(filter)
		if (err == nil) != want {
			t.Fatalf("ValidateFilter(%q) = %v, want ok=%v", filter, err, want)
		}
		group, inner, shared, perr := ParseShared(filter)
		if shared != strings.HasPrefix(filter, "$share/") {
			t.Fatalf("ParseShared(%q) shared = %v", filter, shared)
		}
		if perr == nil {
			if ValidateFilter(inner) != nil {
				t.Fatalf("ParseShared(%q) accepted invalid inner filter %q", filter, inner)
			}
			if shared && (group == "" || strings.ContainsAny(group, "/+#") || "$share/"+group+"/"+inner != filter) {
				t.Fatalf("ParseShared(%q) = %q, %q", filter, group, inner)
			}
		}
		if err != nil {
			return
		}
		// A valid filter without wildcards is a valid name that it matches.
		if !strings.ContainsAny(filter, "+#") {
			if ValidateName(filter) != nil || !Match(filter, filter) {
				t.Fatalf("wildcard-free filter %q is not a name matching itself", filter)
			}
		}
	})
}

// FuzzMatch checks Match against refMatch, and the Trie and Retained
// indexes against Match, for any valid filter and name.
func FuzzMatch(f *testing.F) {
	for _, tt := range matchCases {
		f.Add(tt.filter, tt.topic)
	}
	others := []string{"#", "+/+", "a/#", "$SYS/#", "+"}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if ValidateFilter(filter) != nil || ValidateName(name) != nil {
			return
		}
		want := Match(filter, name)
		if ref := refMatch(filter, name); want != ref {
			t.Fatalf("Match(%q, %q) = %v, refMatch says %v", filter, name, want, ref)
		}
		tr := NewTrie[int, string]()
		tr.Subscribe(filter, "", 0, filter)
		tr.Subscribe(filter, "g", 0, filter)
		for i, o := range others {
			tr.Subscribe(o, "", i+1, o)
		}
		var ordinary, shared int
		tr.Match(name, func(c int, f string) {
			if c == 0 {
				ordinary++
			} else if !Match(f, name) {
				t.Fatalf("Trie.Match(%q) visited non-matching %q", name, f)
			}
		}, func(*Group[int, string]) { shared++ })
		if w := btoi(want); ordinary != w || shared != w {
			t.Fatalf("Trie.Match(%q) for filter %q: %d ordinary, %d shared visits, want %d", name, filter, ordinary, shared, w)
		}
		r := NewRetained[int]()
		r.Set(name, 1)
		r.Set(name+"/x", 2) // a child, which "#" would also match
		var visits int
		r.Match(filter, func(n string, v int) bool {
			if n == name {
				visits++
			}
			return true
		})
		if visits != btoi(want) {
			t.Fatalf("Retained.Match(%q) visited %q %d times, want %v", filter, name, visits, want)
		}
		if !tr.Unsubscribe(filter, "", 0) || !tr.Unsubscribe(filter, "g", 0) || tr.Len() != len(others) {
			t.Fatalf("Unsubscribe(%q) failed", filter)
		}
	})
}
