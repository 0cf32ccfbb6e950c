package auth

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/packet"
)

// stubMethod decides for one username.
type stubMethod struct {
	user  string
	code  packet.ReasonCode
	calls int
}

func (s *stubMethod) Check(info *broker.ClientInfo, _ []byte) (packet.ReasonCode, bool) {
	s.calls++
	return s.code, info.Username == s.user
}

func TestChainOrder(t *testing.T) {
	for _, tc := range []struct {
		name      string
		chain     Chain
		info      broker.ClientInfo
		password  string
		want      packet.ReasonCode
		wantUser  string
		wantCalls int // calls to the first stub
	}{
		{"anonymous allowed", Chain{AllowAnonymous: true, Methods: []Method{&stubMethod{}}}, broker.ClientInfo{}, "", packet.Success, "", 0},
		{"anonymous refused", Chain{Methods: []Method{&stubMethod{}}}, broker.ClientInfo{}, "", packet.NotAuthorized, "", 0},
		{"first deciding method wins", Chain{Methods: []Method{&stubMethod{user: "a", code: packet.BadUsernameOrPassword}, &stubMethod{user: "a"}}}, broker.ClientInfo{Username: "a"}, "p", packet.BadUsernameOrPassword, "a", 1},
		{"undecided falls through", Chain{Methods: []Method{&stubMethod{user: "x"}, &stubMethod{user: "a"}}}, broker.ClientInfo{Username: "a"}, "p", packet.Success, "a", 1},
		{"nobody decides", Chain{AllowAnonymous: true, Methods: []Method{&stubMethod{user: "x"}}}, broker.ClientInfo{Username: "a"}, "p", packet.BadUsernameOrPassword, "a", 1},
		{"password without username still checked", Chain{AllowAnonymous: true, Methods: []Method{&stubMethod{user: "x"}}}, broker.ClientInfo{}, "p", packet.BadUsernameOrPassword, "", 1},
		{"no methods, anonymous: open broker", Chain{AllowAnonymous: true}, broker.ClientInfo{Username: "a"}, "p", packet.Success, "a", 0},
		{"certificate CN on a cn_as_username listener", Chain{CNAsUsername: map[string]bool{"tls": true}, Methods: []Method{&stubMethod{}}}, broker.ClientInfo{Listener: "tls", CertCN: "device-9", Username: "claimed"}, "", packet.Success, "device-9", 0},
		{"certificate CN on another listener is ignored", Chain{CNAsUsername: map[string]bool{"tls": true}, Methods: []Method{&stubMethod{}}}, broker.ClientInfo{Listener: "tls2", CertCN: "device-9"}, "", packet.NotAuthorized, "", 0},
		{"cn listener without a certificate", Chain{CNAsUsername: map[string]bool{"tls": true}, Methods: []Method{&stubMethod{user: "a"}}}, broker.ClientInfo{Listener: "tls", Username: "a"}, "p", packet.Success, "a", 1},
		{"certificates only, anonymous allowed: a claimed username is not taken as sent", Chain{AllowAnonymous: true, CNAsUsername: map[string]bool{"tls": true}}, broker.ClientInfo{Listener: "tcp", Username: "device-42"}, "x", packet.BadUsernameOrPassword, "device-42", 0},
		{"certificates only, anonymous allowed: anonymous still admitted", Chain{AllowAnonymous: true, CNAsUsername: map[string]bool{"tls": true}}, broker.ClientInfo{Listener: "tcp"}, "", packet.Success, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := tc.info
			if got := tc.chain.Authenticate(&info, []byte(tc.password)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if info.Username != tc.wantUser {
				t.Errorf("username %q, want %q", info.Username, tc.wantUser)
			}
			if len(tc.chain.Methods) > 0 {
				if c := tc.chain.Methods[0].(*stubMethod).calls; c != tc.wantCalls {
					t.Errorf("first method called %d times, want %d", c, tc.wantCalls)
				}
			}
		})
	}
}

// The configured methods work together: a JWT, a password-file user and
// an unknown user on the same broker.
func TestFromConfigChainsJWTAndPasswordFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.Auth.PasswordFile = writeFile(t, dir, "passwd", []byte("bob:"+mustHash(t, "pw")+"\n"))
	cfg.Auth.JWT = config.JWT{Enabled: true, HMACSecretFile: writeFile(t, dir, "secret", testSecret), UsernameClaim: "sub"}
	s, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := s.Authenticator()
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims("ann", nil))
	for _, tc := range []struct {
		user, pw string
		want     packet.ReasonCode
	}{
		{"", tok, packet.Success},
		{"ann", tok, packet.Success},
		{"bob", "pw", packet.Success},
		{"bob", "nope", packet.BadUsernameOrPassword},
		{"bob", tok, packet.BadUsernameOrPassword}, // the token is ann's
		{"carol", "pw", packet.BadUsernameOrPassword},
		{"", "", packet.NotAuthorized}, // allow_anonymous: false
	} {
		if got := a.Authenticate(&broker.ClientInfo{Username: tc.user}, []byte(tc.pw)); got != tc.want {
			t.Errorf("%q/%.10q: got %v, want %v", tc.user, tc.pw, got, tc.want)
		}
	}
}

func testConfig(t testing.TB) *config.Config {
	t.Helper()
	cfg, err := config.LoadWithEnv("", nil)
	if err != nil {
		t.Fatal(err)
	}
	no := false
	cfg.Auth.AllowAnonymous = &no
	return cfg
}

func TestFromConfigDefaultsAreOpen(t *testing.T) {
	cfg, err := config.LoadWithEnv("", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Authenticator() != nil || s.Authorizer() != nil {
		t.Fatal("the loopback default should check nothing (nil Authenticator and Authorizer)")
	}
}

func TestFromConfigReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		mod  func(*config.Config)
		want string
	}{
		{"password file", func(c *config.Config) { c.Auth.PasswordFile = writeFile(t, dir, "pw", []byte("x\n")) }, "pw:1:"},
		{"acl file", func(c *config.Config) { c.Auth.ACLFile = writeFile(t, dir, "acl", []byte("\nallow x a\n")) }, "acl:2:"},
		{"missing acl file", func(c *config.Config) { c.Auth.ACLFile = filepath.Join(dir, "none") }, "no such file"},
		{"jwt key", func(c *config.Config) {
			c.Auth.JWT = config.JWT{Enabled: true, PublicKeyFile: writeFile(t, dir, "k.pem", []byte("x")), UsernameClaim: "sub"}
		}, "no PEM public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			tc.mod(cfg)
			if _, err := FromConfig(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// A reload applies a good ACL file at once and keeps the previous rules
// when the file is bad.
func TestReloadKeepsOldRulesOnBadFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.ACL.Default = config.ACLDeny
	cfg.ACL.Rules = []config.ACLRule{{Action: config.ACLAll, Allow: false, Topic: "$SYS/#"}}
	aclPath := writeFile(t, dir, "acl", []byte("allow all a/#\n"))
	pwPath := writeFile(t, dir, "passwd", []byte("bob:"+mustHash(t, "pw")+"\n"))
	cfg.Auth.ACLFile, cfg.Auth.PasswordFile = aclPath, pwPath
	s, err := FromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	authz, authn := s.Authorizer(), s.Authenticator()
	info := &broker.ClientInfo{Username: "bob"}
	if !authz.CanPublish(info, "a/1") || authz.CanPublish(info, "b/1") {
		t.Fatal("initial rules not applied")
	}

	os.WriteFile(aclPath, []byte("allow all b/#\n"), 0o600)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if authz.CanPublish(info, "a/1") || !authz.CanPublish(info, "b/1") {
		t.Fatal("reloaded rules not applied")
	}

	os.WriteFile(aclPath, []byte("allow all c/#\nallow nonsense\n"), 0o600)
	os.WriteFile(pwPath, []byte("bob\n"), 0o600)
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), aclPath+":2") || !strings.Contains(err.Error(), pwPath+":1") {
		t.Fatalf("reload of bad files: %v", err)
	}
	if !authz.CanPublish(info, "b/1") || authz.CanPublish(info, "c/1") {
		t.Fatal("a bad ACL file replaced the rules in force")
	}
	if authn.Authenticate(&broker.ClientInfo{Username: "bob"}, []byte("pw")) != packet.Success {
		t.Fatal("a bad password file dropped the users in force")
	}
	if authz.CanPublish(info, "$SYS/x") {
		t.Fatal("config rules lost in a reload")
	}
}
