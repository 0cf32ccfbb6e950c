//go:build linux

package transport

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// interest reads fd's epoll interest set from the kernel
// (/proc/self/fdinfo of the epoll descriptor lists one "tfd:" line per
// watched descriptor, with its events in hex).
func interest(epfd int, fd int32) (uint32, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		return 0, err
	}
	return interestIn(b, fd)
}

// interestIn finds fd's epoll interest set in fdinfo, the contents of an
// epoll descriptor's /proc/self/fdinfo file.
func interestIn(fdinfo []byte, fd int32) (uint32, error) {
	for line := range strings.Lines(string(fdinfo)) {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "tfd:" && f[1] == strconv.Itoa(int(fd)) && f[2] == "events:" {
			ev, err := strconv.ParseUint(f[3], 16, 32)
			return uint32(ev), err
		}
	}
	return 0, fmt.Errorf("fd %d is not in the epoll set", fd)
}

// TestEpollPauseSwapsEPOLLINForEPOLLRDHUP proves that a pause is made in
// the kernel's interest set, not by ignoring events (which, level-triggered,
// would spin the loop), and that it composes with EPOLLOUT for a paused
// conn whose writes back up.
func TestEpollPauseSwapsEPOLLINForEPOLLRDHUP(t *testing.T) {
	rs := newRecorders(false)
	rs.onData = func(c Conn, p []byte) error {
		c.(Pauser).PauseRead()
		return nil
	}
	s := startEpoll(t, EpollOptions{Loops: 1}, rs.accept)
	c := dial(t, s.Addr().String())
	r := rs.next(t)
	epfd, fd := s.loops[0].set.FD, r.conn.(*econn).fd
	const mask = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT
	waitInterest := func(want uint32) {
		t.Helper()
		var got uint32
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
			ev, err := interest(epfd, fd)
			if err != nil {
				t.Fatal(err)
			}
			if got = ev & mask; got == want {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("interest set %#x, want %#x", got, want)
	}

	waitInterest(unix.EPOLLIN)
	c.Write([]byte("x"))
	waitInterest(unix.EPOLLRDHUP)

	// The client does not read, so the server's writes fill the socket.
	for range 64 {
		r.conn.Write(make([]byte, 256<<10))
	}
	waitInterest(unix.EPOLLRDHUP | unix.EPOLLOUT)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 64*256<<10)); err != nil {
		t.Fatal(err)
	}
	waitInterest(unix.EPOLLRDHUP)

	r.conn.(Pauser).ResumeRead()
	waitInterest(unix.EPOLLIN)
}
