//go:build linux

// Package epollset is an epoll instance whose owner waits on it the way a
// goroutine waits on a socket: parked by the Go runtime, not holding a
// thread in epoll_wait. Both of Herald's event-loop users share it: the
// broker's plain-TCP transport and the bench's client poller.
//
// A goroutine blocked in a system call keeps its thread, and the Go
// runtime's monitor then wakes every 20 µs to see whether to hand its
// processor to another thread: on a busy broker that polling and the
// hand-offs it causes cost a tenth of the CPU (seen in profiles of a
// connect storm). Instead the epoll descriptor is itself registered with
// the runtime's poller (an epoll set is readable while it has ready
// events), Wait polls it with a zero timeout, and parks when nothing is
// ready.
package epollset

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// parkLimit is the longest Wait parks without looking at the set, should
// the kernel ever drop the nested epoll set's wake-up (there have been
// such bugs).
const parkLimit = time.Second

// longAgo is a read deadline that has passed (see Kick).
var longAgo = time.Unix(1, 0)

// Set is one epoll instance, with an eventfd in it through which other
// goroutines wake its owner (Wake). Poll, Wait, Woken and Close belong to
// one goroutine, the owner; Wake and Kick may be called from any.
type Set struct {
	FD   int // the epoll descriptor, for epoll_ctl
	file *os.File
	raw  syscall.RawConn
	// deadline is the read deadline Wait last set, zero when it must set
	// one afresh (it passed, or a Kick moved it).
	deadline time.Time
	// park is Wait's callback for the runtime poller, and n and err its
	// results: fields, so that parking allocates nothing.
	park func(uintptr) bool
	n    int
	err  error
	evs  []unix.EpollEvent

	// wakeMu is read-held across the eventfd write so that Close cannot
	// close efd (and the process reuse the number) under a waker.
	wakeMu sync.RWMutex
	efd    int // -1 once closed
	efdBuf [8]byte
}

var eventfdOne = binary.NativeEndian.AppendUint64(nil, 1)

// New creates an epoll set and its eventfd (both close-on-exec).
func New() (*Set, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	// Non-blocking, so that os.NewFile hands it to the runtime poller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(fd), "epoll")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	s := &Set{FD: fd, file: file, raw: raw, efd: -1}
	s.park = func(uintptr) bool {
		s.n, s.err = s.Poll(s.evs)
		return s.n != 0 || s.err != nil // else park until the set is readable
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		file.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	s.efd = efd
	if err := s.Ctl(unix.EPOLL_CTL_ADD, efd, unix.EPOLLIN); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the set and its eventfd. Wake does nothing afterwards.
func (s *Set) Close() error {
	s.wakeMu.Lock()
	if s.efd >= 0 {
		unix.Close(s.efd)
		s.efd = -1
	}
	s.wakeMu.Unlock()
	return s.file.Close()
}

// Wake makes the owner's Wait return with the wake-up among its events
// (see Woken), or its next Wait if it is not waiting. It reports whether
// it wrote the eventfd (false after Close).
func (s *Set) Wake() bool {
	s.wakeMu.RLock()
	defer s.wakeMu.RUnlock()
	if s.efd < 0 {
		return false
	}
	unix.RawSyscall(unix.SYS_WRITE, uintptr(s.efd), uintptr(unsafe.Pointer(&eventfdOne[0])), uintptr(len(eventfdOne)))
	return true
}

// Woken reports whether ev is the wake-up; if so it is consumed (the
// eventfd read), so that one Wait reports however many Wakes came before.
func (s *Set) Woken(ev unix.EpollEvent) bool {
	if ev.Fd != int32(s.efd) || s.efd < 0 {
		return false
	}
	unix.RawSyscall(unix.SYS_READ, uintptr(s.efd), uintptr(unsafe.Pointer(&s.efdBuf[0])), uintptr(len(s.efdBuf)))
	return true
}

// Ctl is epoll_ctl: op on fd, reporting events with their Fd set to fd.
func (s *Set) Ctl(op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(s.FD), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

// Poll is epoll_wait with a zero timeout: the events ready now.
func (s *Set) Poll(events []unix.EpollEvent) (int, error) {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(s.FD), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, os.NewSyscallError("epoll_pwait", e)
	}
}

// Wait returns the events ready, parking the goroutine (not its thread)
// until some are, at most timeout. A negative timeout is no bound, but
// Wait then returns after parkLimit all the same. It returns 0 and no
// error when the timeout passed, after parkLimit, and when a Kick came.
func (s *Set) Wait(events []unix.EpollEvent, timeout time.Duration) (int, error) {
	if timeout == 0 {
		return s.Poll(events)
	}
	// The deadline is moved only when it comes near, not on every park.
	now := time.Now()
	switch {
	case timeout > 0:
		s.deadline = now.Add(timeout)
		s.file.SetReadDeadline(s.deadline)
	case s.deadline.Sub(now) < parkLimit/2:
		s.deadline = now.Add(parkLimit)
		s.file.SetReadDeadline(s.deadline)
	}
	s.evs, s.n, s.err = events, 0, nil
	err := s.raw.Read(s.park)
	s.evs = nil
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.deadline = time.Time{} // passed, or moved by a Kick: set afresh
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return s.n, s.err
}

// Kick makes the owner's Wait return now if it is parked, and start at
// once on an idle processor rather than when the runtime next polls. A
// Kick that lands before the owner parks makes its next Wait return at
// once, or is overwritten by the deadline that Wait sets.
func (s *Set) Kick() { s.file.SetReadDeadline(longAgo) }
