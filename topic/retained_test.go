package topic

import (
	"slices"
	"testing"
)

// retainedMatch returns the names r.Match visits for filter, sorted.
func retainedMatch(r *Retained[string], filter string) []string {
	var names []string
	r.Match(filter, func(name, v string) bool {
		if name != v {
			panic("retained value is not its name: " + name + " " + v)
		}
		names = append(names, name)
		return true
	})
	slices.Sort(names)
	return names
}

// TestRetainedMatchSpecExamples retains every name of matchCases and checks
// that each filter finds exactly the names Match accepts.
func TestRetainedMatchSpecExamples(t *testing.T) {
	r := NewRetained[string]()
	names := map[string]bool{}
	for _, tt := range matchCases {
		names[tt.topic] = true
		r.Set(tt.topic, tt.topic)
	}
	if r.Len() != len(names) {
		t.Fatalf("Len = %d, want %d", r.Len(), len(names))
	}
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			got := retainedMatch(r, tt.filter)
			if slices.Contains(got, tt.topic) != tt.want {
				t.Fatalf("Retained.Match(%q) = %v; want %q included: %v", tt.filter, got, tt.topic, tt.want)
			}
			var want []string
			for n := range names {
				if Match(tt.filter, n) {
					want = append(want, n)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("Retained.Match(%q) = %v, want %v", tt.filter, got, want)
			}
		})
	}
}

func TestRetainedSetGetDelete(t *testing.T) {
	r := NewRetained[int]()
	if _, ok := r.Get("a/b"); ok {
		t.Fatal("Get on empty index found a value")
	}
	r.Set("a/b", 1)
	r.Set("a/b", 2) // [MQTT-3.3.1-5] replaces
	r.Set("a/b/c", 3)
	r.Set("a", 4)
	if v, ok := r.Get("a/b"); !ok || v != 2 {
		t.Fatalf("Get(a/b) = %v, %v; want 2, true", v, ok)
	}
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	if _, ok := r.Get("a/b/c/d"); ok {
		t.Fatal("Get(a/b/c/d) found a value")
	}
	if r.Delete("a/x") || r.Delete("a/b/c/d") {
		t.Fatal("Delete of a missing name reported true")
	}
	if !r.Delete("a/b") || r.Delete("a/b") {
		t.Fatal("Delete(a/b) twice did not report true then false")
	}
	if _, ok := r.Get("a/b"); ok {
		t.Fatal("Get(a/b) after Delete found a value")
	}
	if v, ok := r.Get("a/b/c"); !ok || v != 3 {
		t.Fatal("deleting a/b lost a/b/c")
	}
	r.Delete("a/b/c")
	r.Delete("a")
	if r.Len() != 0 || r.root.children.len() != 0 {
		t.Fatalf("index not empty and pruned after deleting all: Len %d, root %+v", r.Len(), r.root)
	}
}

func TestRetainedMatchStops(t *testing.T) {
	r := NewRetained[int]()
	for _, n := range []string{"a", "a/b", "a/c", "a/b/c", "x"} {
		r.Set(n, 0)
	}
	for _, filter := range []string{"#", "a/#", "+", "a/+"} {
		calls := 0
		r.Match(filter, func(string, int) bool { calls++; return false })
		if calls != 1 {
			t.Fatalf("Match(%q) called visit %d times after it returned false", filter, calls)
		}
	}
}

// DeleteIf removes a value only if it is still the one the caller looked
// at: a value replaced since stays, and a removed one prunes its levels.
func TestRetainedDeleteIfKeepsAReplacedValue(t *testing.T) {
	r := NewRetained[*int]()
	old, newer := new(int), new(int)
	r.Set("a/b", old)
	r.Set("a/b", newer)
	if r.DeleteIf("a/b", func(v *int) bool { return v == old }) {
		t.Fatal("deleted a value that replaced the one asked about")
	}
	if v, ok := r.Get("a/b"); !ok || v != newer || r.Len() != 1 {
		t.Fatalf("after a refused DeleteIf: %v %v, len %d", v, ok, r.Len())
	}
	if !r.DeleteIf("a/b", func(v *int) bool { return v == newer }) || r.Len() != 0 {
		t.Fatal("DeleteIf of the current value failed")
	}
	if r.root.children.len() != 0 {
		t.Fatal("levels left behind")
	}
}
