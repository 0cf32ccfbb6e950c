package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
)

// Service is a node's authentication and ACL, built from the
// configuration, with the files it read so that Reload can read them again.
type Service struct {
	log       *slog.Logger
	chain     *Chain // nil: every client admitted, nothing checked
	authz     *Authorizer
	passwords *PasswordFile
	jwt       *JWT
	hook      *Hook

	mu        sync.Mutex // serialises Reload
	baseRules []Rule     // config acl.rules
	aclFile   string
	fileRules []Rule
	allow     bool // acl.default
}

// FromConfig builds the Service that cfg describes, reading the password,
// ACL and key files; an unreadable or malformed file is an error.
func FromConfig(cfg *config.Config, log *slog.Logger) (*Service, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := cfg.Auth
	s := &Service{log: log, aclFile: a.ACLFile, allow: cfg.ACL.Default != config.ACLDeny}
	for _, r := range cfg.ACL.Rules {
		s.baseRules = append(s.baseRules, RuleFromConfig(r))
	}
	var grants *Grants
	if (a.JWT.Enabled && a.JWT.ACLClaim != "") || a.HTTPHook.URL != "" {
		grants = NewGrants()
	}

	var methods []Method
	if a.JWT.Enabled {
		j, err := NewJWT(JWTOptions{
			HMACSecretFile: a.JWT.HMACSecretFile,
			PublicKeyFile:  a.JWT.PublicKeyFile,
			UsernameClaim:  a.JWT.UsernameClaim,
			ACLClaim:       a.JWT.ACLClaim,
			Audience:       a.JWT.Audience,
			Issuer:         a.JWT.Issuer,
			Grants:         grants,
			Logger:         log,
		})
		if err != nil {
			return nil, err
		}
		s.jwt = j
		methods = append(methods, j)
	}
	if a.PasswordFile != "" {
		p, err := OpenPasswordFile(a.PasswordFile)
		if err != nil {
			return nil, err
		}
		s.passwords = p
		methods = append(methods, p)
	}
	if a.HTTPHook.URL != "" {
		s.hook = NewHook(HookOptions{
			URL:      a.HTTPHook.URL,
			Timeout:  time.Duration(a.HTTPHook.Timeout),
			CacheTTL: time.Duration(a.HTTPHook.CacheTTL),
			Grants:   grants,
			Logger:   log,
		})
		methods = append(methods, s.hook)
	}
	if s.passwords != nil && s.hook == nil {
		s.passwords.final = true // nothing after it could admit an unknown username
	}
	cn := map[string]bool{}
	for _, l := range cfg.Listeners {
		if l.Type.UsesTLS() && l.TLS.CNAsUsername {
			cn[l.Name] = true
		}
	}
	if len(methods) > 0 || len(cn) > 0 || !cfg.AllowAnonymous() {
		s.chain = &Chain{AllowAnonymous: cfg.AllowAnonymous(), CNAsUsername: cn, Methods: methods}
	}

	if s.aclFile != "" {
		rules, err := LoadACL(s.aclFile)
		if err != nil {
			return nil, err
		}
		s.fileRules = rules
	}
	if len(s.baseRules) > 0 || s.aclFile != "" || !s.allow || grants != nil {
		s.authz = NewAuthorizer(s.rules(), grants)
	}
	return s, nil
}

// RuleFromConfig converts one configured acl.rules entry.
func RuleFromConfig(r config.ACLRule) Rule {
	act := All
	switch r.Action {
	case config.ACLPublish:
		act = Publish
	case config.ACLSubscribe:
		act = Subscribe
	}
	return Rule{Action: act, Allow: r.Allow, Topic: r.Topic, Username: r.Username, ClientID: r.ClientID}
}

// rules is the operator's ACL: config rules first, then the file's.
func (s *Service) rules() *ACL {
	return &ACL{Rules: slices.Concat(s.baseRules, s.fileRules), Default: s.allow}
}

// Authenticator returns the broker.Authenticator, or nil when every client
// is admitted without a check (allow_anonymous and nothing configured).
func (s *Service) Authenticator() broker.Authenticator {
	if s.chain == nil {
		return nil
	}
	return s.chain
}

// Authorizer returns the broker.Authorizer, or nil when there are no rules
// at all and everything is allowed.
func (s *Service) Authorizer() broker.Authorizer {
	if s.authz == nil {
		return nil
	}
	return s.authz
}

// Describe returns log attributes summing up what is configured.
func (s *Service) Describe() []any {
	var methods []string
	if s.jwt != nil {
		methods = append(methods, "jwt")
	}
	if s.passwords != nil {
		methods = append(methods, fmt.Sprintf("password_file (%d users)", s.passwords.Users()))
	}
	if s.hook != nil {
		methods = append(methods, "http_hook")
	}
	anon := s.chain == nil || s.chain.AllowAnonymous
	attrs := []any{"anonymous", anon, "methods", methods}
	if s.authz != nil {
		attrs = append(attrs, "acl_rules", len(s.authz.Rules().Rules), "acl_default_allow", s.allow)
	}
	return attrs
}

// Reload reads the password file, the ACL file and the JWT key file again
// and forgets the HTTP hook's cached answers. A file that fails to load
// keeps what was loaded from it before; the errors are returned together.
func (s *Service) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if s.passwords != nil {
		if err := s.passwords.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.jwt != nil {
		if err := s.jwt.Reload(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.hook != nil {
		s.hook.Flush()
	}
	if s.aclFile != "" && s.authz != nil {
		if rules, err := LoadACL(s.aclFile); err != nil {
			errs = append(errs, err)
		} else {
			s.fileRules = rules
			s.authz.SetRules(s.rules())
		}
	}
	return errors.Join(errs...)
}
