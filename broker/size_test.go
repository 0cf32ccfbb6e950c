package broker

import (
	"testing"
	"unsafe"
)

// The per-connection and per-session structs dominate the memory of an
// idle broker: these limits make growth a deliberate decision.
func TestIdleStructSizes(t *testing.T) {
	for _, s := range []struct {
		name      string
		size, max uintptr
	}{
		{"client", unsafe.Sizeof(client{}), 192},
		{"session", unsafe.Sizeof(session{}), 160},
		{"subscription", unsafe.Sizeof(subscription{}), 32},
	} {
		t.Logf("%s: %d bytes", s.name, s.size)
		if s.size > s.max {
			t.Errorf("%s is %d bytes, over its %d-byte budget (a malloc size class)", s.name, s.size, s.max)
		}
	}
}
