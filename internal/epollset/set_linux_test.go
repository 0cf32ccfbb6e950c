//go:build linux

package epollset

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Wait parks until a watched descriptor is ready, returns on its timeout
// with nothing, returns with the wake-up after a Wake and at once, with
// nothing, after a Kick from another goroutine; Wake after Close does
// nothing.
func TestWaitReadyTimeoutKick(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	if err := s.Ctl(unix.EPOLL_CTL_ADD, efd, unix.EPOLLIN); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)

	start := time.Now()
	if n, err := s.Wait(events, 50*time.Millisecond); n != 0 || err != nil {
		t.Fatalf("nothing ready: Wait = %d, %v", n, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 500*time.Millisecond {
		t.Fatalf("the 50ms timeout returned after %v", d)
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	n, err := s.Wait(events, -1)
	if n != 1 || err != nil || events[0].Fd != int32(efd) {
		t.Fatalf("eventfd written: Wait = %d, %v, %+v", n, err, events[0])
	}
	var buf [8]byte
	unix.Read(efd, buf[:])

	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Wake()
	}()
	if n, err := s.Wait(events, -1); n != 1 || err != nil || !s.Woken(events[0]) {
		t.Fatalf("woken: Wait = %d, %v, %+v", n, err, events[0])
	}
	s.Wake()
	s.Wake()
	if n, err := s.Wait(events, -1); n != 1 || err != nil || !s.Woken(events[0]) {
		t.Fatalf("woken twice: Wait = %d, %v, %+v", n, err, events[0])
	}
	if n, err := s.Poll(events); n != 0 || err != nil {
		t.Fatalf("after Woken consumed the wake-ups: Poll = %d, %v", n, err)
	}

	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Kick()
	}()
	start = time.Now()
	if n, err := s.Wait(events, -1); n != 0 || err != nil {
		t.Fatalf("kicked: Wait = %d, %v", n, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("the kick took %v (the park limit is 1s)", d)
	}
	// After a kick Wait parks again (it does not keep finding the past
	// deadline): the next wake-up is what ends it.
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.Wake()
	}()
	if n, err := s.Wait(events, -1); n != 1 || err != nil || !s.Woken(events[0]) {
		t.Fatalf("after the kick: Wait = %d, %v, %+v; want the wake-up", n, err, events[0])
	}
}

// Parking allocates nothing.
func TestWaitAllocatesNothing(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := make([]unix.EpollEvent, 4)
	if n := testing.AllocsPerRun(20, func() { s.Wait(events, time.Microsecond) }); n != 0 {
		t.Fatalf("Wait allocates %v times per call", n)
	}
}

func TestWakeAfterCloseDoesNothing(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Wake() {
		t.Fatal("Wake wrote after Close")
	}
}
