package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// JWTOptions configures JWT authentication.
type JWTOptions struct {
	// HMACSecretFile holds the shared secret of HS256/384/512 tokens.
	// Trailing white space (a newline left by an editor or echo) is not
	// part of the secret. RFC 7518 §3.2 requires a key at least as long as
	// the hash, so a secret shorter than 32 bytes is refused.
	HMACSecretFile string
	// PublicKeyFile holds one or more PEM public keys ("PUBLIC KEY",
	// "RSA PUBLIC KEY" or "CERTIFICATE" blocks): RSA keys verify RS* and
	// PS* tokens, ECDSA keys ES*, Ed25519 keys EdDSA. Several keys allow a
	// rotation: a token is accepted if any key of its kind verifies it.
	PublicKeyFile string
	// UsernameClaim is the claim that becomes the MQTT username; "" means
	// "sub".
	UsernameClaim string
	// ACLClaim, when set, is a claim holding per-connection rules in the
	// GrantList form; a token without the claim gets the operator's rules
	// only.
	ACLClaim string
	// Audience and Issuer, when set, are required of the token's "aud"
	// (one of its values) and "iss" claims.
	Audience, Issuer string
	// ClockSkew is the tolerance for "nbf" and "iat" against this host's
	// clock; 0 means 30s. "exp" gets none: the broker closes the
	// connection at exp, so admitting a token past it would be pointless.
	ClockSkew time.Duration
	// Grants receives the ACL claim's rules; required with ACLClaim.
	Grants *Grants
	Logger *slog.Logger
	now    func() time.Time // tests
}

// JWT authenticates clients that send a JSON Web Token as their MQTT
// password. The token must be signed with an accepted key (alg "none" and
// algorithms of another key kind are refused) and carry "exp"; a token
// without it would never expire. The MQTT username may be empty or equal
// to the username claim; any other username is refused, because a client
// that states an identity its token does not hold has a bug or bad
// intentions. (3.1.1 clients must send a username with a password
// [MQTT-3.1.2-22], so they send the claim's value.)
type JWT struct {
	opts    JWTOptions
	keys    atomic.Pointer[jwtKeys]
	log     *slog.Logger
	skew    time.Duration
	claim   string
	aclName string
}

type jwtKeys struct {
	methods []string
	keys    []jwt.VerificationKey
}

// NewJWT loads the key file named in o.
func NewJWT(o JWTOptions) (*JWT, error) {
	j := &JWT{opts: o, log: o.Logger, skew: o.ClockSkew, claim: o.UsernameClaim, aclName: o.ACLClaim}
	if j.log == nil {
		j.log = slog.New(slog.DiscardHandler)
	}
	if j.skew == 0 {
		j.skew = 30 * time.Second
	}
	if j.claim == "" {
		j.claim = "sub"
	}
	if j.aclName != "" && o.Grants == nil {
		return nil, errors.New("jwt: an ACL claim needs Grants")
	}
	if j.opts.now == nil {
		j.opts.now = time.Now
	}
	if err := j.Reload(); err != nil {
		return nil, err
	}
	return j, nil
}

// Reload reads the key file again (a key rotation); on error the keys
// loaded before stay in force.
func (j *JWT) Reload() error {
	var (
		k   *jwtKeys
		err error
	)
	switch {
	case j.opts.HMACSecretFile != "" && j.opts.PublicKeyFile != "":
		return errors.New("jwt: set a secret file or a public key file, not both")
	case j.opts.HMACSecretFile != "":
		k, err = loadHMACSecret(j.opts.HMACSecretFile)
	case j.opts.PublicKeyFile != "":
		k, err = loadPublicKeys(j.opts.PublicKeyFile)
	default:
		return errors.New("jwt: no secret file or public key file")
	}
	if err != nil {
		return err
	}
	j.keys.Store(k)
	return nil
}

func loadHMACSecret(path string) (*jwtKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) < 32 {
		return nil, fmt.Errorf("jwt secret %s: %d bytes; HS256 needs at least 32 (RFC 7518 §3.2)", path, len(b))
	}
	return &jwtKeys{methods: []string{"HS256", "HS384", "HS512"}, keys: []jwt.VerificationKey{b}}, nil
}

func loadPublicKeys(path string) (*jwtKeys, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt public key: %w", err)
	}
	k := &jwtKeys{}
	var rsaSeen, ecSeen, edSeen bool
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = c.PublicKey
			}
		default:
			err = fmt.Errorf("PEM block %q is not a public key or certificate", block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("jwt public key %s: block %d: %w", path, n, err)
		}
		switch pub := pub.(type) {
		case *rsa.PublicKey:
			rsaSeen = true
			k.keys = append(k.keys, pub)
		case *ecdsa.PublicKey:
			ecSeen = true
			k.keys = append(k.keys, pub)
		case ed25519.PublicKey:
			edSeen = true
			k.keys = append(k.keys, pub)
		default:
			return nil, fmt.Errorf("jwt public key %s: block %d: unsupported key type %T", path, n, pub)
		}
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("jwt public key %s: no PEM public key found", path)
	}
	if rsaSeen {
		k.methods = append(k.methods, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	}
	if ecSeen {
		k.methods = append(k.methods, "ES256", "ES384", "ES512")
	}
	if edSeen {
		k.methods = append(k.methods, "EdDSA")
	}
	return k, nil
}

// Check implements Method: it decides only for passwords shaped like a
// JWT (three base64url segments, the first a JSON header naming "alg").
func (j *JWT) Check(info *broker.ClientInfo, password []byte) (packet.ReasonCode, bool) {
	if !looksLikeJWT(password) {
		return 0, false
	}
	if err := j.verify(info, string(password)); err != nil {
		j.log.Debug("jwt refused", "client", info.ClientID, "remote", info.RemoteAddr, "err", err)
		return packet.BadUsernameOrPassword, true
	}
	return packet.Success, true
}

func (j *JWT) verify(info *broker.ClientInfo, token string) error {
	k := j.keys.Load()
	claims := jwt.MapClaims{}
	// Time claims are checked below rather than by the library, so that
	// exp gets no leeway while nbf and iat get ClockSkew.
	p := jwt.NewParser(jwt.WithValidMethods(k.methods), jwt.WithoutClaimsValidation())
	if _, err := p.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		return jwt.VerificationKeySet{Keys: k.keys}, nil
	}); err != nil {
		return err
	}
	now := j.opts.now()
	exp, err := claims.GetExpirationTime()
	switch {
	case err != nil:
		return err
	case exp == nil:
		return errors.New("token has no exp claim")
	case !now.Before(exp.Time):
		return fmt.Errorf("token expired at %s", exp.Time.UTC().Format(time.RFC3339))
	}
	if nbf, err := claims.GetNotBefore(); err != nil {
		return err
	} else if nbf != nil && now.Add(j.skew).Before(nbf.Time) {
		return fmt.Errorf("token not valid before %s", nbf.Time.UTC().Format(time.RFC3339))
	}
	if iat, err := claims.GetIssuedAt(); err != nil {
		return err
	} else if iat != nil && now.Add(j.skew).Before(iat.Time) {
		return fmt.Errorf("token issued in the future (%s)", iat.Time.UTC().Format(time.RFC3339))
	}
	if want := j.opts.Audience; want != "" {
		aud, err := claims.GetAudience()
		if err != nil {
			return err
		}
		if !slices.Contains(aud, want) {
			return fmt.Errorf("token audience %q does not include %q", []string(aud), want)
		}
	}
	if want := j.opts.Issuer; want != "" {
		if iss, _ := claims.GetIssuer(); iss != want {
			return fmt.Errorf("token issuer %q is not %q", iss, want)
		}
	}
	user, _ := claims[j.claim].(string)
	if user == "" {
		return fmt.Errorf("claim %q is missing or not a non-empty string", j.claim)
	}
	if info.Username != "" && info.Username != user {
		return fmt.Errorf("username %q differs from the token's %q claim %q", info.Username, j.claim, user)
	}
	var grants *ACL
	if raw, ok := claims[j.aclName]; ok && j.aclName != "" {
		b, _ := json.Marshal(raw)
		if grants, err = ParseGrants(b); err != nil {
			return fmt.Errorf("claim %q: %w", j.aclName, err)
		}
	}
	info.Username = user
	info.AuthExpiry = exp.Time
	if grants != nil {
		j.opts.Grants.Set(info, grants)
	}
	return nil
}

// looksLikeJWT reports whether password has a JWS compact form's shape,
// cheaply, so that other Methods can have passwords that are not tokens.
func looksLikeJWT(password []byte) bool {
	if bytes.Count(password, []byte{'.'}) != 2 {
		return false
	}
	head, _, _ := bytes.Cut(password, []byte{'.'})
	if len(head) > 1024 {
		return false
	}
	buf := make([]byte, base64.RawURLEncoding.DecodedLen(len(head)))
	n, err := base64.RawURLEncoding.Decode(buf, head)
	if err != nil {
		return false
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(buf[:n], &h) == nil && h.Alg != nil
}
