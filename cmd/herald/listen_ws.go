package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/transport"
)

// refusalLogEvery bounds how often one listener logs refused connections.
const refusalLogEvery = 10 * time.Second

// listenWebSocket starts a ws or wss listener: an HTTP server that serves
// MQTT over WebSocket on lc.Path and nothing else. Its connections end with
// ctx, like those of transport.Serve.
func (n *node) listenWebSocket(ctx context.Context, lc config.Listener, tlsConf *tls.Config, accept transport.Accepter) error {
	path := lc.Path
	if path == "" {
		path = config.DefaultWebSocketPath
	}
	l, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return err
	}
	if lc.ProxyProtocol {
		l = transport.ProxyListener(l, 0)
	}
	if tlsConf != nil {
		// HTTP/1.1 only: WebSocket over HTTP/2 (RFC 8441) is not served.
		tlsConf = tlsConf.Clone()
		tlsConf.NextProtos = []string{"http/1.1"}
		l = tls.NewListener(l, tlsConf)
	}
	hs := transport.WebSocketServer(ctx, path, accept, transport.WSOptions{})
	hs.ErrorLog = slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)
	n.closers = append(n.closers, hs.Close)
	n.log.Info("listening", "listener", lc.Name, "address", l.Addr().String(), "transport", string(lc.Type), "path", path)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
			n.log.Error("listener stopped", "listener", lc.Name, "err", err)
		}
	}()
	return nil
}

// connLimit returns the listener's max_connections limit (nil when
// unlimited), which logs refusals at most once per refusalLogEvery.
func (n *node) connLimit(lc config.Listener) *transport.ConnLimit {
	if lc.MaxConnections <= 0 {
		return nil
	}
	limit := transport.NewConnLimit(lc.MaxConnections)
	var lastLog atomic.Int64
	limit.OnRefuse = func(total uint64) {
		now := time.Now().UnixNano()
		last := lastLog.Load()
		if now-last < int64(refusalLogEvery) || !lastLog.CompareAndSwap(last, now) {
			return
		}
		n.log.Warn("connection refused: listener at max_connections",
			"listener", lc.Name, "max_connections", lc.MaxConnections, "refused_total", total)
	}
	n.limitsMu.Lock()
	if n.limits == nil {
		n.limits = make(map[string]*transport.ConnLimit)
	}
	n.limits[lc.Name] = limit
	n.limitsMu.Unlock()
	return limit
}
