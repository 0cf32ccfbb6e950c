package transport

import (
	"sync"
	"testing"
)

func TestFDTable(t *testing.T) {
	var tab fdTable
	conns := map[int32]*econn{}
	for _, fd := range []int32{0, 1, 4095, 4096, 70000, fdTableMax - 1} {
		c := &econn{fd: fd}
		if !tab.set(fd, c) {
			t.Fatalf("set(%d) refused", fd)
		}
		conns[fd] = c
	}
	for _, fd := range []int32{-1, fdTableMax, fdTableMax + 5} {
		if tab.set(fd, &econn{}) {
			t.Errorf("set(%d) accepted beyond the table", fd)
		}
		if tab.get(fd) != nil {
			t.Errorf("get(%d) found a conn", fd)
		}
		tab.clear(fd) // must not panic
	}
	for fd, c := range conns {
		if tab.get(fd) != c {
			t.Errorf("get(%d) = %p, want %p", fd, tab.get(fd), c)
		}
	}
	if tab.get(2) != nil || tab.get(5000) != nil {
		t.Error("an empty slot holds a conn")
	}
	seen := 0
	last := int32(-1)
	tab.each(func(c *econn) {
		if c.fd <= last {
			t.Errorf("each: %d after %d, not in descriptor order", c.fd, last)
		}
		last = c.fd
		tab.clear(c.fd)
		seen++
	})
	if seen != len(conns) {
		t.Errorf("each visited %d, want %d", seen, len(conns))
	}
	for fd := range conns {
		if tab.get(fd) != nil {
			t.Errorf("slot %d not cleared", fd)
		}
	}
}

// Loops set and clear their own descriptors concurrently, some in the
// same chunk being created at the same moment (run with -race).
func TestFDTableConcurrent(t *testing.T) {
	var tab fdTable
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 20000 {
				fd := int32(i*4 + w)
				c := &econn{fd: fd}
				tab.set(fd, c)
				if tab.get(fd) != c {
					t.Errorf("get(%d) lost its conn", fd)
					return
				}
				if i%2 == 0 {
					tab.clear(fd)
				}
			}
		})
	}
	wg.Wait()
}
