package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// HookOptions configures the HTTP auth hook.
type HookOptions struct {
	URL      string
	Timeout  time.Duration // bound on one request, connection included; 0 means 2s
	CacheTTL time.Duration // how long an answer is reused; 0 disables the cache
	// MaxCached bounds the cache; 0 means 100,000 answers. When it is full
	// and nothing in it has expired, new answers are not cached.
	MaxCached int
	Client    *http.Client // nil means a client of its own
	Grants    *Grants      // receives the "acl" of answers; nil ignores it
	Logger    *slog.Logger
	now       func() time.Time // tests
}

// HookRequest is the JSON body POSTed to the hook for each CONNECT that
// reaches it.
type HookRequest struct {
	ClientID   string `json:"clientid"`
	Username   string `json:"username"`
	Password   string `json:"password"`
	RemoteAddr string `json:"remote_addr"`
	Listener   string `json:"listener"`
	CertCN     string `json:"cert_cn,omitempty"`
}

// HookAnswer is the JSON body the hook answers with.
type HookAnswer struct {
	// Allow admits the client.
	Allow bool `json:"allow"`
	// ACL, if present, holds the connection's own rules (see GrantList and
	// Authorizer).
	ACL *GrantList `json:"acl,omitempty"`
}

// Hook asks an HTTP service whether a client may connect. The answers:
//
//   - 200 with {"allow": true}: admitted (with the rules in "acl", if any).
//   - 200 with {"allow": false}, or 401 or 403: refused with 0x86 Bad user
//     name or password (3.1.1: 4).
//   - anything else (another status, a body that is not the JSON above,
//     a timeout, a refused connection): refused with 0x88 Server
//     unavailable (3.1.1: 3), which tells the client to try again later
//     rather than that its credentials are wrong; such failures are not
//     cached.
//
// Admissions and refusals are cached for CacheTTL, keyed by a SHA-256 of
// client id, username, password, listener and the remote host (without the
// port, which changes on every connection); the cache holds no password.
// The Hook decides for every client that reaches it, so it comes last in a
// Chain.
type Hook struct {
	opts   HookOptions
	client *http.Client
	log    *slog.Logger

	mu    sync.Mutex
	cache map[[sha256.Size]byte]hookEntry

	lastWarn atomic.Int64 // unix nanos of the last "unavailable" log line
}

// warnDue reports whether an "unavailable" line may be logged now: an
// unreachable hook fails every CONNECT, and one line per CONNECT would
// flood the log.
func (h *Hook) warnDue(now time.Time) bool {
	last := h.lastWarn.Load()
	return now.UnixNano()-last >= int64(10*time.Second) && h.lastWarn.CompareAndSwap(last, now.UnixNano())
}

type hookEntry struct {
	code    packet.ReasonCode
	grants  *ACL
	expires time.Time
}

// NewHook returns a Hook for o.
func NewHook(o HookOptions) *Hook {
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.MaxCached <= 0 {
		o.MaxCached = 100_000
	}
	if o.now == nil {
		o.now = time.Now
	}
	h := &Hook{opts: o, client: o.Client, log: o.Logger, cache: map[[sha256.Size]byte]hookEntry{}}
	if h.client == nil {
		// Redirects are not followed: a 307 or 308 would send the
		// request, password included, wherever the hook's answer points.
		// A redirect is an answer the hook does not understand.
		h.client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

// Check implements Method; the Hook always decides.
func (h *Hook) Check(info *broker.ClientInfo, password []byte) (packet.ReasonCode, bool) {
	req := HookRequest{
		ClientID: info.ClientID,
		Username: info.Username,
		Password: string(password),
		Listener: info.Listener,
		CertCN:   info.CertCN,
	}
	host := ""
	if info.RemoteAddr != nil {
		req.RemoteAddr = info.RemoteAddr.String()
		host = req.RemoteAddr
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
	}
	key := hookKey(&req, host)
	now := h.opts.now()
	if e, ok := h.cached(key, now); ok {
		return h.apply(info, e), true
	}
	e, err := h.ask(&req)
	if err != nil {
		if h.warnDue(now) {
			h.log.Warn("auth hook unavailable (logged at most every 10 s)", "client", info.ClientID, "err", err)
		}
		return packet.ServerUnavailable, true
	}
	h.store(key, e, now)
	return h.apply(info, e), true
}

func (h *Hook) apply(info *broker.ClientInfo, e hookEntry) packet.ReasonCode {
	if e.code == packet.Success && e.grants != nil && h.opts.Grants != nil {
		h.opts.Grants.Set(info, e.grants)
	}
	return e.code
}

// hookKey hashes what the hook's answer may depend on. Fields are
// length-prefixed so that no two requests share an encoding.
func hookKey(r *HookRequest, host string) [sha256.Size]byte {
	d := sha256.New()
	for _, s := range []string{r.ClientID, r.Username, r.Password, r.Listener, r.CertCN, host} {
		var n [8]byte
		l := len(s)
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		d.Write(n[:])
		io.WriteString(d, s)
	}
	var k [sha256.Size]byte
	d.Sum(k[:0])
	return k
}

func (h *Hook) cached(key [sha256.Size]byte, now time.Time) (hookEntry, bool) {
	if h.opts.CacheTTL <= 0 {
		return hookEntry{}, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.cache[key]
	if !ok || !now.Before(e.expires) {
		return hookEntry{}, false
	}
	return e, true
}

func (h *Hook) store(key [sha256.Size]byte, e hookEntry, now time.Time) {
	if h.opts.CacheTTL <= 0 {
		return
	}
	e.expires = now.Add(h.opts.CacheTTL)
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.cache) >= h.opts.MaxCached {
		for k, old := range h.cache {
			if !now.Before(old.expires) {
				delete(h.cache, k)
			}
		}
		if len(h.cache) >= h.opts.MaxCached {
			return
		}
	}
	h.cache[key] = e
}

// ask POSTs the request and interprets the answer; an error means the
// service could not answer.
func (h *Hook) ask(r *HookRequest) (hookEntry, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return hookEntry{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.opts.URL, bytes.NewReader(body))
	if err != nil {
		return hookEntry{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return hookEntry{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return hookEntry{}, fmt.Errorf("read answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return hookEntry{code: packet.BadUsernameOrPassword}, nil
	default:
		return hookEntry{}, fmt.Errorf("status %s", resp.Status)
	}
	var a HookAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return hookEntry{}, fmt.Errorf("answer %.100q: %w", raw, err)
	}
	if !a.Allow {
		return hookEntry{code: packet.BadUsernameOrPassword}, nil
	}
	e := hookEntry{code: packet.Success}
	if a.ACL != nil {
		if e.grants, err = a.ACL.ACL(); err != nil {
			return hookEntry{}, fmt.Errorf("answer: %w", err)
		}
	}
	return e, nil
}

// Flush forgets every cached answer (a reload: the operator may have
// changed users in the service and wants it asked again).
func (h *Hook) Flush() {
	h.mu.Lock()
	clear(h.cache)
	h.mu.Unlock()
}
