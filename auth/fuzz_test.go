package auth

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/topic"
)

// FuzzJWTCheck feeds JWT.Check two kinds of input: arbitrary passwords
// (whatever a client sends), which must never be accepted, and tokens
// properly signed with the broker's secret around an arbitrary claims
// payload, which reach the claim checks. Neither may panic; an accepted
// token must have set a username from its claim, an expiry in the
// future, and valid filters in its ACL claim.
func FuzzJWTCheck(f *testing.F) {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	exp := time.Now().Add(time.Hour).Unix()
	for _, seed := range []struct {
		password string
		claims   string
	}{
		{"hunter2", `{"sub":"alice","exp":` + strconv.FormatInt(exp, 10) + `}`},
		{hdr + ".e30.sig", `{"sub":"alice","exp":` + strconv.FormatInt(exp, 10) + `,"acl":{"pub":["a/b"],"sub":["users/%u/#"]}}`},
		{hdr + "..", `{"sub":"","exp":"tomorrow"}`},
		{"a.b.c", `{"sub":"bob","exp":1e300,"nbf":-1e300,"iat":null,"aud":["x",1]}`},
		{"", `{"sub":{"x":1},"exp":` + strconv.FormatInt(exp, 10) + `,"acl":{"all":["#"],"pub":"x"}}`},
		{"", `[]`},
		{"", `{"sub":"alice","exp":` + strconv.FormatInt(exp, 10) + `,"acl":{"pub":["a/#/b"]}}`},
	} {
		f.Add(seed.password, seed.claims)
	}
	grants := NewGrants()
	j, err := NewJWT(JWTOptions{HMACSecretFile: writeFile(f, f.TempDir(), "secret", testSecret), ACLClaim: "acl", Grants: grants})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, password, claims string) {
		info := &broker.ClientInfo{ClientID: "fuzz"}
		if code, decided := j.Check(info, []byte(password)); decided && code == packet.Success {
			t.Fatalf("an unsigned password was accepted: %q", password)
		}
		// The same claims bytes, signed: jwt's own encoding of the
		// header, the payload as given.
		payload := base64.RawURLEncoding.EncodeToString([]byte(claims))
		signingString := hdr + "." + payload
		sig, err := jwt.SigningMethodHS256.Sign(signingString, testSecret)
		if err != nil {
			t.Fatal(err)
		}
		token := signingString + "." + base64.RawURLEncoding.EncodeToString(sig)
		info = &broker.ClientInfo{ClientID: "fuzz"}
		code, decided := j.Check(info, []byte(token))
		if !decided {
			t.Fatalf("a signed token was not recognised as one: %q", token)
		}
		if code != packet.Success {
			if !info.AuthExpiry.IsZero() || info.Username != "" {
				t.Fatalf("a refused token changed the client: %+v", info)
			}
			return
		}
		if info.Username == "" || !info.AuthExpiry.After(time.Now()) {
			t.Fatalf("accepted %s: username %q, expiry %v", claims, info.Username, info.AuthExpiry)
		}
		if acl := grants.Lookup(info); acl != nil {
			for _, r := range acl.Rules {
				if err := topic.ValidateFilter(r.Topic); err != nil || !r.Allow {
					t.Fatalf("accepted %s with rule %+v", claims, r)
				}
			}
		}
	})
}

// FuzzParseGrants: any JSON an HTTP hook or a token claim may hold either
// fails with an error or gives allow rules over valid filters only.
func FuzzParseGrants(f *testing.F) {
	for _, s := range []string{`{"pub":["a/b"],"sub":["users/%u/#"],"all":["x/+"]}`, `{"publish":["a"]}`, `{"pub":["a/#/b"]}`, `[]`, `{"pub":null}`, `{"pub":["a"]} trailing`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		acl, err := ParseGrants(raw)
		if err != nil {
			return
		}
		for _, r := range acl.Rules {
			if err := topic.ValidateFilter(r.Topic); err != nil || !r.Allow {
				t.Fatalf("ParseGrants(%q) gave rule %+v", raw, r)
			}
		}
	})
}

// FuzzParseACL: an ACL file either parses or fails with an error that
// cites the file and line; it never panics.
func FuzzParseACL(f *testing.F) {
	for _, s := range []string{
		"allow publish users/%u/# user alice\n",
		"deny subscribe # \n# comment\n\nallow all \"a b/c\" client x\n",
		"allow read\n", "allow write a/#/b\n", "permit all a\n", "allow all \"unterminated\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseACL(strings.NewReader(s), "acl")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "acl:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, r := range rules {
			if err := topic.ValidateFilter(r.Topic); err != nil {
				t.Fatalf("ParseACL(%q) accepted filter %q: %v", s, r.Topic, err)
			}
		}
	})
}

// FuzzParsePasswords: a password file either parses or fails with an
// error citing the file; it never panics, and every user it keeps has a
// bcrypt hash.
func FuzzParsePasswords(f *testing.F) {
	for _, s := range []string{
		"alice:$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy\n",
		"bob:$6$salt$hash\n", "# comment\n\n", "nocolon\n", ":$2a$10$x\n",
		"alice:$2a$04$abcdefghijklmnopqrstuu5Ra9c8WpUzj8YvnIRyvtx6/o0XuCiGC\nalice:$2a$04$abcdefghijklmnopqrstuu5Ra9c8WpUzj8YvnIRyvtx6/o0XuCiGC\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePasswords(strings.NewReader(s), "passwd")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "passwd") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for user, hash := range p.hashes {
			if user == "" || bytes.IndexByte(hash, '$') != 0 {
				t.Fatalf("ParsePasswords(%q) kept %q: %q", s, user, hash)
			}
		}
	})
}
