package observe

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/store"
)

// Options configure the HTTP endpoint.
type Options struct {
	// Server is the broker observed. Required.
	Server *broker.Server
	// Store, if set, is probed by /readyz and, when it keeps stats (Pebble),
	// reported in the store metrics.
	Store store.Store
	// Routed, if set, is the RouteCounter registered as a broker hook; it
	// adds herald_messages_routed_total.
	Routed *RouteCounter
	// AdminToken is the bearer token /api/ requires. Empty means the API
	// answers only loopback requests addressed to a loopback host (see
	// authorized).
	AdminToken string
	// ListenerRefusals, if set, returns the connections each listener
	// refused at its max_connections, by listener name; it adds
	// herald_listener_connections_refused_total.
	ListenerRefusals func() map[string]uint64
	// Ready, if set, is one more readiness check for /readyz (listeners
	// up, cluster joined): a non-nil error means not ready.
	Ready func() error
	// Logger receives admin actions and server errors.
	Logger *slog.Logger
}

// Handler serves every observability route:
//
//	GET    /metrics             Prometheus text format
//	GET    /healthz             200 while the process serves HTTP
//	GET    /readyz              200 when the broker runs and the store answers, else 503
//	GET    /api/stats           counters and levels (JSON)
//	GET    /api/clients         sessions, paged: ?after=ID&limit=N
//	GET    /api/clients/{id}    one session with its first 1000 subscriptions
//	DELETE /api/clients/{id}    disconnect a client (v5: 0x98 Administrative action)
//	GET    /api/topics          most subscribed filters: ?limit=N
//	GET    /api/retained        retained messages: ?filter=F&limit=N
//	GET    /debug/pprof/...     Go profiling (net/http/pprof)
//	GET    /, /dashboard        live dashboard (assets embedded)
//
// /api/ and /debug/pprof/ require the admin token; the dashboard page asks
// for it when the API answers 401. Without a token they answer loopback
// requests that no other web page sent (see authorized and fromItself).
type Handler struct {
	o      Options
	log    *slog.Logger
	mux    *http.ServeMux
	gauges *cache[broker.Gauges]
	ranks  *cache[topicRanking]

	retainedBudget int // bytes of topics and payloads per /api/retained answer
}

// NewHandler returns the Handler of o.
func NewHandler(o Options) *Handler {
	if o.Server == nil {
		panic("observe: Options.Server is nil")
	}
	h := &Handler{o: o, log: o.Logger, mux: http.NewServeMux(), retainedBudget: retainedBudget}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.gauges = &cache[broker.Gauges]{compute: o.Server.Gauges, ttl: gaugeTTL}
	h.ranks = &cache[topicRanking]{compute: func() topicRanking {
		top, distinct := o.Server.Topics(maxTopicsLimit)
		return topicRanking{top, distinct}
	}, ttl: topicsTTL}
	col := newCollector(o.Server, o.Store, o.Routed, h.gauges)
	col.listenerRefusals = o.ListenerRefusals
	reg := newRegistry(col)
	h.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(h.log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	h.mux.HandleFunc("GET /healthz", h.healthz)
	h.mux.HandleFunc("GET /readyz", h.readyz)
	h.mux.Handle("GET /api/stats", h.admin(h.stats))
	h.mux.Handle("GET /api/clients", h.admin(h.clients))
	h.mux.Handle("GET /api/clients/{id...}", h.admin(h.client))
	h.mux.Handle("DELETE /api/clients/{id...}", h.admin(h.kick))
	h.mux.Handle("GET /api/topics", h.admin(h.topics))
	h.mux.Handle("GET /api/retained", h.admin(h.retained))
	h.mux.Handle("/api/", h.admin(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	}))
	// Go profiling, behind the admin token like the rest of the admin API.
	h.mux.Handle("GET /debug/pprof/", h.admin(pprof.Index))
	h.mux.Handle("GET /debug/pprof/cmdline", h.admin(pprof.Cmdline))
	h.mux.Handle("GET /debug/pprof/profile", h.admin(pprof.Profile))
	h.mux.Handle("GET /debug/pprof/symbol", h.admin(pprof.Symbol))
	h.mux.Handle("GET /debug/pprof/trace", h.admin(pprof.Trace))
	h.mux.HandleFunc("GET /{$}", h.dashboard)
	h.mux.HandleFunc("GET /dashboard", h.dashboard)
	h.mux.Handle("GET /assets/", assetHandler())
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// readyzProbeID is a client id no MQTT client can hold in practice; reading
// its (empty) records proves the store answers without touching real data.
const readyzProbeID = "$herald/readyz"

func (h *Handler) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := h.ready(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ready")
}

func (h *Handler) ready() error {
	if !h.o.Server.Running() {
		return errors.New("broker shutting down")
	}
	if h.o.Store != nil {
		if _, err := h.o.Store.LoadIncoming(readyzProbeID); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	if h.o.Ready != nil {
		return h.o.Ready()
	}
	return nil
}

// admin wraps an API handler with the token check.
func (h *Handler) admin(fn http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if h.o.AdminToken == "" && !fromItself(r) {
			writeError(w, http.StatusForbidden, "cross-origin request refused: without an admin token only this endpoint's own pages may use it")
			return
		}
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
			writeError(w, http.StatusUnauthorized, "admin token required")
			return
		}
		fn(w, r)
	})
}

// authorized reports whether r may use the admin API: it carries the
// token as "Authorization: Bearer <token>", or no token is configured and
// the request both comes from and is addressed to a loopback host, and was
// not relayed by a proxy. The Host check keeps a web page in the
// operator's browser from reaching the API through DNS rebinding; the
// proxy check keeps a reverse proxy on the same host (which connects from
// loopback, often with a loopback Host) from opening it to whoever
// reaches the proxy.
func (h *Handler) authorized(r *http.Request) bool {
	if h.o.AdminToken == "" {
		return isLoopbackRemote(r.RemoteAddr) && isLoopbackHost(r.Host) && !proxied(r)
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.o.AdminToken)) == 1
}

// fromItself reports whether r comes from a page of this endpoint (the
// dashboard) or from no page at all (curl, go tool pprof, an address
// typed in). Without a token, every other page open in the operator's
// browser reaches a loopback endpoint with a loopback Host too, and
// <img src="http://127.0.0.1:8080/debug/pprof/trace?seconds=3600"> needs
// no answer to do harm. Browsers say where a request comes from in
// Sec-Fetch-Site (another port of localhost is "same-site", so only
// "same-origin" passes), and in Origin for all but plain GETs.
func fromItself(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	return origin == "" || strings.EqualFold(origin, "http://"+r.Host)
}

// proxied reports whether r carries the headers that reverse proxies add
// to say whom they relay.
func proxied(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return true
		}
	}
	return false
}

func isLoopbackRemote(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeJSON writes v with status 200.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// writeError writes {"error": msg} with status code.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// Endpoint is the running HTTP server of the observability routes.
type Endpoint struct {
	hs *http.Server
	l  net.Listener
}

// Listen starts serving NewHandler(o) on addr ("host:port"; port 0 picks
// one). It returns once the socket listens.
func Listen(addr string, o Options) (*Endpoint, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http listen: %w", err)
	}
	h := NewHandler(o)
	e := &Endpoint{l: l, hs: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := e.hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("http endpoint stopped", "address", addr, "err", err)
		}
	}()
	return e, nil
}

// Addr returns the address the endpoint listens on.
func (e *Endpoint) Addr() net.Addr { return e.l.Addr() }

// Close stops the endpoint, letting requests in progress finish for up to
// two seconds.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := e.hs.Shutdown(ctx); err != nil {
		return e.hs.Close()
	}
	return nil
}
