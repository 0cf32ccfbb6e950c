package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-herald")

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pemPublic(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// claims returns valid claims for user, expiring in an hour, with extra
// merged in (a nil value deletes a claim).
func claims(user string, extra jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{"sub": user, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func TestJWTHMAC(t *testing.T) {
	dir := t.TempDir()
	secretFile := writeFile(t, dir, "secret", append(append([]byte{}, testSecret...), '\n'))
	grants := NewGrants()
	j, err := NewJWT(JWTOptions{HMACSecretFile: secretFile, ACLClaim: "acl", Grants: grants})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	other := []byte("another-secret-that-is-long-enough-0123456789")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, tc := range []struct {
		name     string
		username string
		token    string
		want     packet.ReasonCode
		wantUser string
	}{
		{"HS256 accepted", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", nil)), packet.Success, "alice"},
		{"HS384 accepted", "", sign(t, jwt.SigningMethodHS384, testSecret, claims("alice", nil)), packet.Success, "alice"},
		{"HS512 with matching username", "alice", sign(t, jwt.SigningMethodHS512, testSecret, claims("alice", nil)), packet.Success, "alice"},
		{"username differs from claim", "mallory", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", nil)), packet.BadUsernameOrPassword, "mallory"},
		{"expired", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()})), packet.BadUsernameOrPassword, ""},
		{"no exp", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"exp": nil})), packet.BadUsernameOrPassword, ""},
		{"not yet valid", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), packet.BadUsernameOrPassword, ""},
		{"nbf within clock skew", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"nbf": now.Add(5 * time.Second).Unix()})), packet.Success, "alice"},
		{"issued in the future", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"iat": now.Add(time.Hour).Unix()})), packet.BadUsernameOrPassword, ""},
		{"exp not a number", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"exp": "tomorrow"})), packet.BadUsernameOrPassword, ""},
		{"forged: other secret", "", sign(t, jwt.SigningMethodHS256, other, claims("alice", nil)), packet.BadUsernameOrPassword, ""},
		{"wrong algorithm: RS256 against a secret", "", sign(t, jwt.SigningMethodRS256, rsaKey, claims("alice", nil)), packet.BadUsernameOrPassword, ""},
		{"alg none", "", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("alice", nil)), packet.BadUsernameOrPassword, ""},
		{"no sub", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("", nil)), packet.BadUsernameOrPassword, ""},
		{"tampered payload", "", tamper(t, sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", nil)), claims("admin", nil)), packet.BadUsernameOrPassword, ""},
		{"bad acl claim", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"acl": map[string]any{"pub": []string{"a/#/b"}}})), packet.BadUsernameOrPassword, ""},
		{"unknown acl key", "", sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", jwt.MapClaims{"acl": map[string]any{"publish": []string{"a"}}})), packet.BadUsernameOrPassword, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := &broker.ClientInfo{ClientID: "c1", Username: tc.username}
			code, decided := j.Check(info, []byte(tc.token))
			if !decided || code != tc.want {
				t.Fatalf("got %v (decided %v), want %v", code, decided, tc.want)
			}
			if tc.want == packet.Success {
				if info.Username != tc.wantUser {
					t.Errorf("username %q, want %q", info.Username, tc.wantUser)
				}
				if d := time.Until(info.AuthExpiry); d < 59*time.Minute || d > time.Hour {
					t.Errorf("AuthExpiry in %v, want the token's exp", d)
				}
			} else if !info.AuthExpiry.IsZero() || info.Username != tc.username {
				t.Errorf("a refused token changed the client: %+v", info)
			}
			if tc.want != packet.Success && grants.Lookup(info) != nil {
				t.Error("a refused token left rules behind")
			}
		})
	}
}

// With audience and issuer configured, a token must name both: one
// signed with the same key for another application is refused.
func TestJWTAudienceAndIssuer(t *testing.T) {
	secretFile := writeFile(t, t.TempDir(), "secret", testSecret)
	j, err := NewJWT(JWTOptions{HMACSecretFile: secretFile, Audience: "mqtt", Issuer: "https://idp.example"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra jwt.MapClaims
		want  packet.ReasonCode
	}{
		{"both", jwt.MapClaims{"aud": "mqtt", "iss": "https://idp.example"}, packet.Success},
		{"audience in a list", jwt.MapClaims{"aud": []string{"web", "mqtt"}, "iss": "https://idp.example"}, packet.Success},
		{"other audience", jwt.MapClaims{"aud": "web", "iss": "https://idp.example"}, packet.BadUsernameOrPassword},
		{"no audience", jwt.MapClaims{"iss": "https://idp.example"}, packet.BadUsernameOrPassword},
		{"other issuer", jwt.MapClaims{"aud": "mqtt", "iss": "https://evil.example"}, packet.BadUsernameOrPassword},
		{"no issuer", jwt.MapClaims{"aud": "mqtt"}, packet.BadUsernameOrPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := sign(t, jwt.SigningMethodHS256, testSecret, claims("alice", tc.extra))
			if code, _ := j.Check(&broker.ClientInfo{ClientID: "c"}, []byte(token)); code != tc.want {
				t.Fatalf("got %v, want %v", code, tc.want)
			}
		})
	}
}

// tamper replaces a token's payload, keeping header and signature.
func tamper(t testing.TB, token string, c jwt.MapClaims) string {
	parts := strings.Split(token, ".")
	other := sign(t, jwt.SigningMethodHS256, []byte("x"), c)
	parts[1] = strings.Split(other, ".")[1]
	return strings.Join(parts, ".")
}

func TestJWTPublicKeys(t *testing.T) {
	dir := t.TempDir()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaOther, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecOther, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	_, edOther, _ := ed25519.GenerateKey(rand.Reader)

	rsaPEM := pemPublic(t, &rsaKey.PublicKey)
	rsaFile := writeFile(t, dir, "rsa.pem", rsaPEM)
	pkcs1File := writeFile(t, dir, "rsa1.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)}))
	ecFile := writeFile(t, dir, "ec.pem", pemPublic(t, &ecKey.PublicKey))
	// Two keys in one file: a rotation.
	bothFile := writeFile(t, dir, "both.pem", append(pemPublic(t, &ecKey.PublicKey), pemPublic(t, edPub)...))

	for _, tc := range []struct {
		name, file, token string
		want              packet.ReasonCode
	}{
		{"RS256", rsaFile, sign(t, jwt.SigningMethodRS256, rsaKey, claims("u", nil)), packet.Success},
		{"PS384", rsaFile, sign(t, jwt.SigningMethodPS384, rsaKey, claims("u", nil)), packet.Success},
		{"RS512 with a PKCS#1 key file", pkcs1File, sign(t, jwt.SigningMethodRS512, rsaKey, claims("u", nil)), packet.Success},
		{"RS256 forged", rsaFile, sign(t, jwt.SigningMethodRS256, rsaOther, claims("u", nil)), packet.BadUsernameOrPassword},
		{"RS256 expired", rsaFile, sign(t, jwt.SigningMethodRS256, rsaKey, claims("u", jwt.MapClaims{"exp": time.Now().Add(-time.Second).Unix()})), packet.BadUsernameOrPassword},
		// The classic confusion: HS256 keyed with the public key's bytes.
		{"HS256 keyed with the RSA public key", rsaFile, sign(t, jwt.SigningMethodHS256, rsaPEM, claims("u", nil)), packet.BadUsernameOrPassword},
		{"ES256", ecFile, sign(t, jwt.SigningMethodES256, ecKey, claims("u", nil)), packet.Success},
		{"ES256 forged", ecFile, sign(t, jwt.SigningMethodES256, ecOther, claims("u", nil)), packet.BadUsernameOrPassword},
		{"RS256 against an ECDSA key", ecFile, sign(t, jwt.SigningMethodRS256, rsaKey, claims("u", nil)), packet.BadUsernameOrPassword},
		{"EdDSA from a two-key file", bothFile, sign(t, jwt.SigningMethodEdDSA, edKey, claims("u", nil)), packet.Success},
		{"ES256 from a two-key file", bothFile, sign(t, jwt.SigningMethodES256, ecKey, claims("u", nil)), packet.Success},
		{"EdDSA forged", bothFile, sign(t, jwt.SigningMethodEdDSA, edOther, claims("u", nil)), packet.BadUsernameOrPassword},
		{"alg none", bothFile, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("u", nil)), packet.BadUsernameOrPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := NewJWT(JWTOptions{PublicKeyFile: tc.file})
			if err != nil {
				t.Fatal(err)
			}
			info := &broker.ClientInfo{}
			if code, decided := j.Check(info, []byte(tc.token)); code != tc.want || !decided {
				t.Fatalf("got %v (decided %v), want %v", code, decided, tc.want)
			}
		})
	}
}

func TestJWTKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		opts    JWTOptions
		wantErr string
	}{
		{"short secret", JWTOptions{HMACSecretFile: writeFile(t, dir, "short", []byte("tooshort\n"))}, "at least 32"},
		{"missing secret", JWTOptions{HMACSecretFile: filepath.Join(dir, "nope")}, "no such file"},
		{"no PEM", JWTOptions{PublicKeyFile: writeFile(t, dir, "empty.pem", []byte("hello"))}, "no PEM public key"},
		{"private key", JWTOptions{PublicKeyFile: writeFile(t, dir, "priv.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}))}, "not a public key"},
		{"both", JWTOptions{HMACSecretFile: "a", PublicKeyFile: "b"}, "not both"},
		{"acl claim without grants", JWTOptions{HMACSecretFile: "a", ACLClaim: "acl"}, "needs Grants"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewJWT(tc.opts); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestJWTUsernameClaimAndACLClaim(t *testing.T) {
	grants := NewGrants()
	j, err := NewJWT(JWTOptions{HMACSecretFile: writeFile(t, t.TempDir(), "s", testSecret), UsernameClaim: "preferred_username", ACLClaim: "mqtt", Grants: grants})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, testSecret, claims("id-1", jwt.MapClaims{
		"preferred_username": "ann",
		"mqtt":               map[string]any{"pub": []string{"rooms/42/messages"}, "sub": []string{"users/%u/#"}},
	}))
	info := &broker.ClientInfo{ClientID: "phone"}
	if code, _ := j.Check(info, []byte(tok)); code != packet.Success {
		t.Fatalf("refused: %v", code)
	}
	if info.Username != "ann" {
		t.Fatalf("username %q, want the preferred_username claim", info.Username)
	}
	acl := grants.Lookup(info)
	if acl == nil {
		t.Fatal("no rules from the ACL claim")
	}
	if !acl.CanPublish(info, "rooms/42/messages") || acl.CanPublish(info, "rooms/43/messages") ||
		!acl.CanSubscribe(info, "users/ann/inbox") || acl.CanSubscribe(info, "users/bob/inbox") || acl.CanSubscribe(info, "rooms/42/messages") {
		t.Fatal("claim rules not as granted")
	}
}

func TestLooksLikeJWT(t *testing.T) {
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	for _, tc := range []struct {
		pw   string
		want bool
	}{
		{hdr + ".e30.sig", true},
		{"hunter2", false},
		{"a.b.c", false},
		{hdr + ".e30", false},
		{base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT"}`)) + ".e30.sig", false},
	} {
		if got := looksLikeJWT([]byte(tc.pw)); got != tc.want {
			t.Errorf("looksLikeJWT(%q) = %v", tc.pw, got)
		}
	}
}
