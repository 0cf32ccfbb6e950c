package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// Passwords is a parsed password file: one `username:bcrypt-hash` per
// line; blank lines and lines starting with '#' are ignored.
type Passwords struct {
	hashes map[string][]byte

	// verified remembers, per user, a keyed digest of the last password
	// that bcrypt accepted, so that a reconnect storm costs one HMAC per
	// client instead of one bcrypt (tens of milliseconds of CPU each). The
	// key is random per process, so the digests are of no use outside it.
	mu       sync.Mutex
	verified map[string][sha256.Size]byte

	// dummy is a hash at the file's highest cost, made on first use, that
	// unknown usernames are compared against when the file decides for
	// them (PasswordFile.final).
	dummyOnce sync.Once
	dummy     []byte
}

// cacheKey keys the digests of verified passwords.
var cacheKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// ParsePasswords reads a password file from r; name is used in errors,
// which cite the line: `passwd:3: ...`.
func ParsePasswords(r io.Reader, name string) (*Passwords, error) {
	p := &Passwords{hashes: map[string][]byte{}, verified: map[string][sha256.Size]byte{}}
	firstLine := map[string]int{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want username:bcrypt-hash", name, n)
		}
		if err := checkUsername(user); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			hint := ""
			if strings.HasPrefix(hash, "$6$") || strings.HasPrefix(hash, "$7$") {
				hint = " (mosquitto's hashes are not supported; set the password again with herald passwd)"
			}
			return nil, fmt.Errorf("%s:%d: user %q: not a bcrypt hash%s", name, n, user, hint)
		}
		if first, dup := firstLine[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %q already defined on line %d", name, n, user, first)
		}
		firstLine[user] = n
		p.hashes[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// LoadPasswords reads and parses the password file at path.
func LoadPasswords(path string) (*Passwords, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	return ParsePasswords(f, path)
}

// checkUsername refuses names that cannot be written on a line of the file.
func checkUsername(user string) error {
	switch {
	case user == "":
		return errors.New("empty username")
	case strings.ContainsAny(user, ":\r\n"):
		return fmt.Errorf("username %q contains ':' or a line break", user)
	case strings.TrimSpace(user) != user || user[0] == '#':
		return fmt.Errorf("username %q starts with '#' or starts or ends with a space", user)
	}
	return nil
}

// Len returns the number of users.
func (p *Passwords) Len() int { return len(p.hashes) }

// Verify checks a user's password: known reports whether the user is in
// the file, ok whether the password is theirs.
func (p *Passwords) Verify(user string, password []byte) (known, ok bool) {
	hash, known := p.hashes[user]
	if !known {
		return false, false
	}
	mac := hmac.New(sha256.New, cacheKey)
	mac.Write(hash)
	mac.Write([]byte{0})
	mac.Write(password)
	var sum [sha256.Size]byte
	mac.Sum(sum[:0])
	p.mu.Lock()
	prev, seen := p.verified[user]
	p.mu.Unlock()
	if seen && hmac.Equal(prev[:], sum[:]) {
		return true, true
	}
	if bcrypt.CompareHashAndPassword(hash, password) != nil {
		return true, false
	}
	p.mu.Lock()
	p.verified[user] = sum
	p.mu.Unlock()
	return true, true
}

// refuseUnknown spends on an unknown username the bcrypt comparison a known
// one costs, so that how long a refusal takes does not tell which
// usernames are in the file.
func (p *Passwords) refuseUnknown(password []byte) {
	p.dummyOnce.Do(func() {
		cost := bcrypt.MinCost
		for _, h := range p.hashes {
			if c, err := bcrypt.Cost(h); err == nil && c > cost {
				cost = c
			}
		}
		// The password is random: nothing a client sends matches it.
		secret := make([]byte, 16)
		rand.Read(secret)
		p.dummy, _ = bcrypt.GenerateFromPassword(secret, cost)
	})
	bcrypt.CompareHashAndPassword(p.dummy, password)
}

// PasswordFile authenticates users listed in a password file, which Reload
// reads again.
type PasswordFile struct {
	path string
	cur  atomic.Pointer[Passwords]
	// final: no Method follows this one in the Chain, so Check decides
	// for unknown usernames too, refusing them as slowly as a wrong
	// password. With a Method after it (the HTTP hook), an unknown
	// username is passed on at once rather than delay every user that
	// method admits.
	final bool
}

// OpenPasswordFile loads the password file at path.
func OpenPasswordFile(path string) (*PasswordFile, error) {
	f := &PasswordFile{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the file again; on error the users loaded before stay in
// force.
func (f *PasswordFile) Reload() error {
	p, err := LoadPasswords(f.path)
	if err != nil {
		return err
	}
	f.cur.Store(p)
	return nil
}

// Path returns the file's path.
func (f *PasswordFile) Path() string { return f.path }

// Users returns the number of users loaded.
func (f *PasswordFile) Users() int { return f.cur.Load().Len() }

// Check implements Method: it decides for usernames in the file, and for
// every username when it is the Chain's last Method.
func (f *PasswordFile) Check(info *broker.ClientInfo, password []byte) (packet.ReasonCode, bool) {
	if info.Username == "" {
		return 0, false
	}
	p := f.cur.Load()
	known, ok := p.Verify(info.Username, password)
	switch {
	case !known && f.final:
		p.refuseUnknown(password)
		return packet.BadUsernameOrPassword, true
	case !known:
		return 0, false
	case !ok:
		return packet.BadUsernameOrPassword, true
	}
	return packet.Success, true
}

// HashPassword returns the bcrypt hash of password at cost (0 means
// bcrypt.DefaultCost).
func HashPassword(password []byte, cost int) ([]byte, error) {
	if cost == 0 {
		cost = bcrypt.DefaultCost
	}
	// bcrypt itself takes a cost below its minimum as its default.
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d: want %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	return bcrypt.GenerateFromPassword(password, cost)
}

// UpdatePasswordFile sets user's hash in the password file at path (hash
// nil deletes the user), keeping every other line and comment as it is,
// and replaces the file atomically: a new file written beside it, synced,
// then renamed over it. A missing file is created with mode 0600. It
// reports whether the user was present before.
func UpdatePasswordFile(path, user string, hash []byte) (existed bool, err error) {
	if err := checkUsername(user); err != nil {
		return false, err
	}
	old, err := os.ReadFile(path)
	mode := os.FileMode(0o600)
	switch {
	case err == nil:
		if st, err := os.Stat(path); err == nil {
			mode = st.Mode().Perm()
		}
		// Refuse to rewrite a file the broker could not load.
		if _, err := ParsePasswords(bytes.NewReader(old), path); err != nil {
			return false, err
		}
	case errors.Is(err, os.ErrNotExist):
		if hash == nil {
			return false, fmt.Errorf("%s: %w", path, err)
		}
	default:
		return false, err
	}

	var out bytes.Buffer
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if u, _, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && u == user {
			existed = true
			if hash != nil {
				fmt.Fprintf(&out, "%s:%s\n", user, hash)
			}
			continue
		}
		out.WriteString(line)
	}
	if !existed && hash != nil {
		if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
			out.WriteByte('\n')
		}
		fmt.Fprintf(&out, "%s:%s\n", user, hash)
	}
	if hash == nil && !existed {
		return false, fmt.Errorf("%s: no user %q", path, user)
	}
	return existed, writeAtomic(path, out.Bytes(), mode)
}

// writeAtomic replaces path with data so that a reader (the broker on
// SIGHUP) sees either the old file or the new one, never a part.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
