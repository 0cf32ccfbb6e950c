package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

func mustHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := HashPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParsePasswordsReportsFileAndLine(t *testing.T) {
	h := mustHash(t, "pw")
	for _, tc := range []struct {
		name, file, wantErr string
	}{
		{"no colon", "# users\nalice\n", "passwd:2: want username:bcrypt-hash"},
		{"empty user", ":" + h + "\n", "passwd:1: empty username"},
		{"not bcrypt", "alice:plain\n", `passwd:1: user "alice": not a bcrypt hash`},
		{"mosquitto hash", "alice:$7$101$abc\n", "mosquitto's hashes are not supported"},
		{"duplicate", "alice:" + h + "\n\nalice:" + h + "\n", `passwd:3: user "alice" already defined on line 1`},
		{"ok with comments and blanks", "# comment\n\n  alice:" + h + "  \r\nbob:" + h + "\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePasswords(strings.NewReader(tc.file), "passwd")
			if tc.wantErr == "" {
				if err != nil || p.Len() != 2 {
					t.Fatalf("got %v, %v users; want 2 users", err, p)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestPasswordsVerifyBcrypt(t *testing.T) {
	p, err := ParsePasswords(strings.NewReader("alice:"+mustHash(t, "s3cret")+"\n"), "passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pw  string
		known, ok bool
	}{
		{"alice", "s3cret", true, true},
		{"alice", "s3cret", true, true}, // from the verified cache
		{"alice", "wrong", true, false},
		{"alice", "", true, false},
		{"bob", "s3cret", false, false},
	} {
		known, ok := p.Verify(tc.user, []byte(tc.pw))
		if known != tc.known || ok != tc.ok {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v, %v", tc.user, tc.pw, known, ok, tc.known, tc.ok)
		}
	}
}

func TestPasswordFileCheckDecidesOnlyForKnownUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(path, []byte("alice:"+mustHash(t, "pw")+"\n"), 0o600)
	f, err := OpenPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, pw string
		code     packet.ReasonCode
		decided  bool
	}{
		{"alice", "pw", packet.Success, true},
		{"alice", "nope", packet.BadUsernameOrPassword, true},
		{"stranger", "pw", 0, false},
		{"", "pw", 0, false},
	} {
		code, decided := f.Check(&broker.ClientInfo{Username: tc.user}, []byte(tc.pw))
		if code != tc.code || decided != tc.decided {
			t.Errorf("%q/%q: got %v, %v; want %v, %v", tc.user, tc.pw, code, decided, tc.code, tc.decided)
		}
	}
}

func TestPasswordFileReloadKeepsOldUsersOnBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(path, []byte("alice:"+mustHash(t, "pw")+"\n"), 0o600)
	f, err := OpenPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("alice:garbage\n"), 0o600)
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), path+":1") {
		t.Fatalf("reload of a bad file: %v", err)
	}
	if code, _ := f.Check(&broker.ClientInfo{Username: "alice"}, []byte("pw")); code != packet.Success {
		t.Fatalf("old users lost after a failed reload: %v", code)
	}
	os.WriteFile(path, []byte("bob:"+mustHash(t, "pw2")+"\n"), 0o600)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, decided := f.Check(&broker.ClientInfo{Username: "alice"}, []byte("pw")); decided {
		t.Fatal("alice still known after a reload without her")
	}
	if code, _ := f.Check(&broker.ClientInfo{Username: "bob"}, []byte("pw2")); code != packet.Success {
		t.Fatalf("bob after reload: %v", code)
	}
}

func TestUpdatePasswordFileAddsChangesDeletesAndKeepsComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	hash := func(pw string) []byte { return []byte(mustHash(t, pw)) }

	if _, err := UpdatePasswordFile(path, "ghost", nil); err == nil {
		t.Fatal("deleting from a missing file succeeded")
	}
	if existed, err := UpdatePasswordFile(path, "alice", hash("a1")); err != nil || existed {
		t.Fatalf("create: %v, existed %v", err, existed)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("new file mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# staff\n"), b...), 0o600)
	os.Chmod(path, 0o640)
	UpdatePasswordFile(path, "bob", hash("b1"))
	if existed, err := UpdatePasswordFile(path, "alice", hash("a2")); err != nil || !existed {
		t.Fatalf("change: %v, existed %v", err, existed)
	}
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Verify("alice", []byte("a2")); !ok {
		t.Error("alice's new password refused")
	}
	if _, ok := p.Verify("bob", []byte("b1")); !ok {
		t.Error("bob refused")
	}
	if _, err := UpdatePasswordFile(path, "bob", nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != "# staff" || !strings.HasPrefix(lines[1], "alice:") {
		t.Fatalf("file after delete:\n%s", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v not kept", st.Mode().Perm())
	}
	if _, err := UpdatePasswordFile(path, "a:b", hash("x")); err == nil {
		t.Fatal("a username with ':' was accepted")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

// Where nothing follows the password file in the chain, an unknown
// username is refused by the file itself, after a bcrypt comparison at
// the file's cost against a dummy hash, so a refusal takes as long whether
// or not the username exists. With the HTTP hook after it, the file passes
// unknown usernames on without that delay.
func TestPasswordFileLastInChainRefusesUnknownUsersAsSlowlyAsKnown(t *testing.T) {
	dir := t.TempDir()
	hash, err := HashPassword([]byte("pw"), bcrypt.MinCost+1)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.Auth.PasswordFile = writeFile(t, dir, "passwd", []byte("alice:"+string(hash)+"\n"))
	s, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	code, decided := s.passwords.Check(&broker.ClientInfo{Username: "stranger"}, []byte("pw"))
	if code != packet.BadUsernameOrPassword || !decided {
		t.Fatalf("last in chain, unknown user: got %v, %v; want %v, true", code, decided, packet.BadUsernameOrPassword)
	}
	p := s.passwords.cur.Load()
	if cost, err := bcrypt.Cost(p.dummy); err != nil || cost != bcrypt.MinCost+1 {
		t.Errorf("dummy hash cost = %d, %v; want the file's cost %d", cost, err, bcrypt.MinCost+1)
	}

	cfg.Auth.HTTPHook.URL = "http://127.0.0.1:1/auth"
	s, err = FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, decided := s.passwords.Check(&broker.ClientInfo{Username: "stranger"}, []byte("pw")); decided {
		t.Errorf("with the HTTP hook after it, unknown user: got %v, decided; want it passed on", code)
	}
	if s.passwords.cur.Load().dummy != nil {
		t.Error("the dummy comparison ran though a method follows the file")
	}
}

// A cost bcrypt cannot use is refused, not replaced by its default.
func TestHashPasswordRefusesACostOutOfRange(t *testing.T) {
	for _, cost := range []int{-1, 1, bcrypt.MinCost - 1, bcrypt.MaxCost + 1} {
		if _, err := HashPassword([]byte("pw"), cost); err == nil {
			t.Errorf("cost %d accepted", cost)
		}
	}
}
