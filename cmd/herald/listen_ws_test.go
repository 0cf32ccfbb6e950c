package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/internal/testcert"
)

// addrRecorder is a slog.Handler that keeps the address of every
// "listening" record by listener name.
type addrRecorder struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (h *addrRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *addrRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *addrRecorder) WithGroup(string) slog.Handler            { return h }
func (h *addrRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "listening" {
		return nil
	}
	var name, addr string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "listener":
			name = a.Value.String()
		case "address":
			addr = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	h.addrs[name] = addr
	h.mu.Unlock()
	return nil
}

// TestListenersFromConfig proves herald serve's listener wiring from a
// configuration file: tcp, tls, ws (default and custom path) and wss with
// required client certificates each accept MQTT, and max_connections holds
// on every type.
func TestListenersFromConfig(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "herald test CA")
	certFile, keyFile := testcert.WriteFiles(t, dir, "server", ca.Server(t))
	caFile := ca.WriteCA(t, dir)
	tlsKeys := fmt.Sprintf("{cert_file: %q, key_file: %q}", certFile, keyFile)
	yaml := fmt.Sprintf(`
store: memory
data_dir: %q
listeners:
  - {name: tcp, type: tcp, address: "127.0.0.1:0", max_connections: 1}
  - {name: tls, type: tls, address: "127.0.0.1:0", max_connections: 1, tls: %s}
  - {name: ws, type: ws, address: "127.0.0.1:0", max_connections: 1}
  - {name: ws-custom, type: ws, address: "127.0.0.1:0", path: /custom/mqtt, max_connections: 1}
  - name: wss
    type: wss
    address: "127.0.0.1:0"
    max_connections: 1
    tls: {cert_file: %q, key_file: %q, client_ca_file: %q, require_client_cert: true, cn_as_username: true}
`, dir, tlsKeys, certFile, keyFile, caFile)
	cfgPath := filepath.Join(dir, "herald.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &addrRecorder{addrs: map[string]string{}}
	n, err := startNode(cfg, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.shutdown(ctx)
	})
	addr := func(name string) string {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.addrs[name]
	}

	clientCert := ca.Client(t, "alice")
	trust := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
	withCert := trust.Clone()
	withCert.Certificates = []tls.Certificate{clientCert}
	for _, tc := range []struct {
		listener, url string
		conf          *tls.Config
	}{
		{"tcp", "tcp://" + addr("tcp"), nil},
		{"tls", "ssl://" + addr("tls"), trust},
		{"ws", "ws://" + addr("ws") + "/mqtt", nil},
		{"ws-custom", "ws://" + addr("ws-custom") + "/custom/mqtt", nil},
		{"wss", "wss://" + addr("wss") + "/mqtt", withCert},
	} {
		t.Run(tc.listener, func(t *testing.T) {
			c, err := dial311(tc.url, "first-"+tc.listener, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Disconnect(50)
			got := make(chan string, 1)
			if tok := c.Subscribe("wiring/"+tc.listener, 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			if tok := c.Publish("wiring/"+tc.listener, 1, false, tc.listener); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
			select {
			case p := <-got:
				if p != tc.listener {
					t.Fatalf("received %q", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("own message not received")
			}
			if c2, err := dial311(tc.url, "second-"+tc.listener, tc.conf); err == nil {
				c2.Disconnect(50)
				t.Fatal("a second client connected despite max_connections: 1")
			}
		})
	}

	t.Run("wss without a client certificate", func(t *testing.T) {
		if c, err := dial311("wss://"+addr("wss")+"/mqtt", "anon-wss", trust); err == nil {
			c.Disconnect(50)
			t.Fatal("connected without the required client certificate")
		}
	})
	t.Run("ws path is exact", func(t *testing.T) {
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: 5 * time.Second}
		ws, resp, err := d.Dial("ws://"+addr("ws-custom")+"/mqtt", nil)
		if err == nil {
			ws.Close()
			t.Fatal("upgraded on the default path of a listener with a custom one")
		}
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("response %v, err %v; want 404", resp, err)
		}
	})
	if !strings.Contains(addr("wss"), "127.0.0.1:") {
		t.Errorf("wss address %q", addr("wss"))
	}
}

// dial311 connects a paho.mqtt.golang client that does not reconnect.
func dial311(url, id string, conf *tls.Config) (mqtt.Client, error) {
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetConnectRetry(false).SetTLSConfig(conf)
	c := mqtt.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect to %s timed out", url)
	}
	return c, tok.Error()
}
