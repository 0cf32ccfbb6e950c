//go:build linux

package transport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// exhaustFDs lowers the process's soft limit on open descriptors and opens
// descriptors up to it but spare, so that accept fails with EMFILE once
// spare more are open. release, also run at cleanup, closes them and
// restores the limit.
func exhaustFDs(t *testing.T, spare int) (release func()) {
	t.Helper()
	var limit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &limit); err != nil {
		t.Fatal(err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	lowered := limit
	lowered.Cur = uint64(len(open)) + 64 // a few to fill, not a million
	if lowered.Cur > limit.Cur {
		t.Skipf("descriptor limit %d is already below %d", limit.Cur, lowered.Cur)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lowered); err != nil {
		t.Fatal(err)
	}
	var fds []int
	var once sync.Once
	release = func() {
		once.Do(func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
			unix.Setrlimit(unix.RLIMIT_NOFILE, &limit)
		})
	}
	t.Cleanup(release)
	for {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EMFILE) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, fd)
	}
	if len(fds) < spare {
		t.Fatalf("only %d descriptors below the limit", len(fds))
	}
	for _, fd := range fds[:spare] {
		unix.Close(fd)
	}
	fds = fds[spare:]
	return release
}

// epollInfo is the open /proc/self/fdinfo file of an epoll descriptor,
// opened before the descriptors run out and re-read in place.
type epollInfo struct{ f *os.File }

func openEpollInfo(t *testing.T, epfd int) epollInfo {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return epollInfo{f}
}

// watches reports whether fd is in the epoll set.
func (e epollInfo) watches(t *testing.T, fd int) bool {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(e.f, 0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	_, err = interestIn(b, int32(fd))
	return err == nil
}

// waitUnwatched waits until fd is out of the epoll set.
func (e epollInfo) waitUnwatched(t *testing.T, fd int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); e.watches(t, fd); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("descriptor %d still in the epoll set", fd)
		}
	}
}

// echoes checks that c is served: what it writes comes back.
func echoes(t *testing.T, c io.ReadWriter) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
		t.Fatalf("echo: %q, %v", got, err)
	}
}

// TestEpollAcceptResumesAfterAPause proves that the listener, taken out of
// the epoll set when accept fails with EMFILE (it would stay readable and
// spin the loop), is watched again: the connection that could not be
// accepted is served once descriptors are free.
func TestEpollAcceptResumesAfterAPause(t *testing.T) {
	rs := newRecorders(true)
	s := startEpoll(t, EpollOptions{Loops: 1}, rs.accept)
	ep := openEpollInfo(t, s.loops[0].set.FD)
	if !ep.watches(t, s.lfd) {
		t.Fatal("the listener is not in the epoll set to begin with")
	}
	release := exhaustFDs(t, 1)
	c := dial(t, s.Addr().String()) // the last descriptor; the server's accept gets EMFILE
	ep.waitUnwatched(t, s.lfd)
	release()
	rs.next(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	echoes(t, c)
}

// TestEpollRetriesAFailedAcceptRearm proves that when putting the listener
// back into the epoll set after an accept pause fails, it is tried again
// later rather than never: accepting resumes once it succeeds.
//
// The failure is real, not injected: while the listener is out of the set,
// its descriptor number is made to name /dev/null (dup3 replaces it in one
// step), which epoll refuses with EPERM; then the listening socket is put
// back under the same number.
func TestEpollRetriesAFailedAcceptRearm(t *testing.T) {
	rs := newRecorders(true)
	s := startEpoll(t, EpollOptions{Loops: 1}, rs.accept)
	lfd := s.lfd
	ep := openEpollInfo(t, s.loops[0].set.FD)
	listener, err := unix.Dup(lfd) // holds the listening socket while lfd names /dev/null
	if err != nil {
		t.Fatal(err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	swapped := false
	swap := func(fd int) {
		if err := unix.Dup3(fd, lfd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		swapped = fd != listener
	}
	t.Cleanup(func() { // before the server closes lfd
		if swapped {
			swap(listener)
		}
		unix.Close(listener)
	})

	release := exhaustFDs(t, 1)
	c := dial(t, s.Addr().String())
	for {
		ep.waitUnwatched(t, lfd)
		swap(int(devNull.Fd()))
		// Swapped out of the set, lfd cannot be added back. Swapped
		// while the loop had just re-armed it, the entry stays (epoll
		// keys it by the listening socket, which is still open): undo
		// and wait for the next pause.
		if !ep.watches(t, lfd) {
			break
		}
		swap(listener)
	}
	time.Sleep(5 * acceptPause) // a re-arm or more fails with EPERM
	swap(listener)
	release()
	rs.next(t)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	echoes(t, c)
}
