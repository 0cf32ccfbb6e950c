package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/observe"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
)

// node is a running broker with its listeners.
type node struct {
	srv     *broker.Server
	store   store.Store
	cancel  context.CancelFunc
	closers []func() error
	wg      sync.WaitGroup
	log     *slog.Logger
	auth    *auth.Service // reloaded on SIGHUP

	limitsMu sync.Mutex
	limits   map[string]*transport.ConnLimit // listeners with a max_connections
}

// listenerRefusals reports what each listener's max_connections refused.
func (n *node) listenerRefusals() map[string]uint64 {
	n.limitsMu.Lock()
	defer n.limitsMu.Unlock()
	out := make(map[string]uint64, len(n.limits))
	for name, l := range n.limits {
		out[name] = l.Refused()
	}
	return out
}

// startNode opens the store, recovers state and starts every listener.
func startNode(cfg *config.Config, log *slog.Logger) (*node, error) {
	sec, err := auth.FromConfig(cfg, log)
	if err != nil {
		return nil, err
	}
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	opts := brokerOptions(cfg, log)
	opts.Auth, opts.ACL = sec.Authenticator(), sec.Authorizer()
	opts.Store = st
	routed := &observe.RouteCounter{} // herald_messages_routed_total
	opts.Hooks = append(opts.Hooks, routed)
	srv := broker.New(opts)
	if err := srv.Recover(); err != nil {
		st.Close()
		return nil, fmt.Errorf("recover from %s: %w", cfg.DataDir, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go trimWhenIdle(ctx, 3*time.Second, 1<<20)
	n := &node{srv: srv, store: st, cancel: cancel, log: log, auth: sec}
	if cfg.AllowAnonymous() {
		log.Info("anonymous clients allowed", "why", "all listeners are on loopback or auth.allow_anonymous is true")
	}
	log.Info("authentication", sec.Describe()...)
	for _, lc := range cfg.Listeners {
		if err := n.listen(ctx, lc); err != nil {
			n.shutdown(context.Background())
			return nil, fmt.Errorf("listener %s: %w", lc.Name, err)
		}
	}
	if cfg.HTTP.Listen != "" {
		// Started after the listeners, so /readyz answering means they are up.
		hs, err := observe.Listen(cfg.HTTP.Listen, observe.Options{Server: srv, Store: st, Routed: routed, AdminToken: cfg.HTTP.AdminToken, Logger: log,
			ListenerRefusals: n.listenerRefusals})
		if err != nil {
			n.shutdown(context.Background())
			return nil, err
		}
		n.closers = append(n.closers, hs.Close)
		log.Info("http endpoint", "address", hs.Addr().String(), "admin_token", cfg.HTTP.AdminToken != "")
	}
	if cfg.Store == config.StoreMemory {
		log.Info("herald started", "version", broker.Version, "store", cfg.Store)
	} else {
		log.Info("herald started", "version", broker.Version, "store", cfg.Store, "data", cfg.DataDir)
	}
	return n, nil
}

// listen starts one configured listener.
func (n *node) listen(ctx context.Context, lc config.Listener) error {
	var tlsConf *tls.Config
	if lc.Type.UsesTLS() {
		var err error
		if tlsConf, err = loadTLS(lc.TLS); err != nil {
			return err
		}
	}
	// max_connections applies alike to every listener type.
	accept := n.connLimit(lc).Accepter(n.srv.AcceptWith(lc.Name, broker.ListenerOptions{MaxPacketSize: uint32(lc.MaxPacketSize)}))
	if lc.Type.UsesWebSocket() {
		return n.listenWebSocket(ctx, lc, tlsConf, accept)
	}
	if lc.Type == config.ListenerTCP {
		// Plain TCP is the mass-connection path: the epoll server holds no
		// goroutine and no read buffer per idle connection.
		es, err := transport.ListenEpoll(ctx, lc.Address, transport.EpollOptions{ProxyProtocol: lc.ProxyProtocol}, accept)
		if err != nil {
			return err
		}
		n.closers = append(n.closers, es.Close)
		n.log.Info("listening", "listener", lc.Name, "address", es.Addr().String(), "transport", "epoll")
		return nil
	}
	l, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return err
	}
	if lc.ProxyProtocol {
		l = transport.ProxyListener(l, 0)
	}
	if tlsConf != nil {
		l = tls.NewListener(l, tlsConf)
	}
	n.closers = append(n.closers, l.Close)
	n.log.Info("listening", "listener", lc.Name, "address", l.Addr().String())
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := transport.Serve(ctx, l, accept); err != nil && ctx.Err() == nil {
			n.log.Error("listener stopped", "listener", lc.Name, "err", err)
		}
	}()
	return nil
}

// loadTLS builds the server TLS configuration of a listener.
func loadTLS(c config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pem, err := os.ReadFile(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls client_ca_file %s: no PEM certificates", c.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	return conf, nil
}

// shutdown stops accepting, closes every client and flushes the store.
func (n *node) shutdown(ctx context.Context) error {
	// The broker first, while the transports still run: it refuses new
	// connections, tells every v5 client 0x8B Server shutting down, lets
	// the transports flush and close them, and publishes wills. Only then
	// are the listeners (and any connection left) closed.
	err := n.srv.Shutdown(ctx)
	n.cancel()
	for _, c := range n.closers {
		c()
	}
	n.wg.Wait()
	return err
}
