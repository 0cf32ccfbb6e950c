package observe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/store"
)

// waitFor bounds what must happen: generous under -race on a loaded machine.
const waitFor = 5 * time.Second

// rig is an in-process broker on a real TCP listener with the
// observability handler in front of it on an httptest server.
type rig struct {
	srv     *broker.Server
	st      store.Store
	mqtt    string // MQTT address
	http    *httptest.Server
	handler *Handler
	routed  *RouteCounter
}

type rigOptions struct {
	token string
	store store.Store // default: memory
	ready func() error
	mod   func(*broker.Options) // applied last

	listenerRefusals func() map[string]uint64
}

func startRig(t *testing.T, ro rigOptions) *rig {
	t.Helper()
	rc := &RouteCounter{}
	opts := mqtttest.Options() // no $SYS: its publishes would move the counters under the tests
	if ro.store != nil {
		opts.Store = ro.store
	}
	st := opts.Store
	opts.Hooks = []broker.Hook{rc}
	if ro.mod != nil {
		ro.mod(&opts)
	}
	srv := broker.New(opts)
	mb := mqtttest.Serve(t, srv, "tcp-test")
	h := NewHandler(Options{Server: srv, Store: st, Routed: rc, AdminToken: ro.token, Ready: ro.ready, ListenerRefusals: ro.listenerRefusals})
	h.gauges.ttl, h.ranks.ttl = 0, 0 // every request sees the state of the moment
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close) // before the broker's shutdown
	return &rig{srv: srv, st: st, mqtt: mb.Addr, http: hs, handler: h, routed: rc}
}

// do sends a request to the handler's server with an optional bearer
// token and returns the status and body.
func (r *rig) do(t *testing.T, method, path, token string) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, r.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header
}

// getJSON GETs path, requires 200 and decodes the body into v.
func (r *rig) getJSON(t *testing.T, path, token string, v any) {
	t.Helper()
	code, body, _ := r.do(t, http.MethodGet, path, token)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// scrape returns every sample of /metrics by its series ("name{labels}"
// as the text format prints it), and the HELP lines by family name.
func (r *rig) scrape(t *testing.T) (samples map[string]float64, help map[string]string) {
	t.Helper()
	code, body, _ := r.do(t, http.MethodGet, "/metrics", "")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	samples, help = make(map[string]float64), make(map[string]string)
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, text, _ := strings.Cut(rest, " ")
			help[name] = text
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, help
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pahoClient is a connected paho.golang (MQTT 5) client.
type pahoClient struct {
	*paho.Client
	msgs chan *paho.Publish
}

func connectPaho(t *testing.T, addr, id string) *pahoClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	pc := &pahoClient{msgs: make(chan *paho.Publish, 100)}
	pc.Client = paho.NewClient(paho.ClientConfig{
		ClientID: id,
		Conn:     packets.NewThreadSafeConn(conn), // paho writes a packet in several Writes, from more than one goroutine
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			pc.msgs <- pr.Packet
			return true, nil
		}},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if _, err := pc.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil {
		conn.Close()
		t.Fatalf("paho connect %s: %v", id, err)
	}
	t.Cleanup(func() {
		pc.Disconnect(&paho.Disconnect{ReasonCode: 0})
		conn.Close()
	})
	return pc
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func (pc *pahoClient) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-pc.msgs:
		return m
	case <-time.After(waitFor):
		t.Fatal("paho: no message received")
		return nil
	}
}

func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	for i := 0; i+1 < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", labels[i], labels[i+1])
	}
	return name + "{" + b.String() + "}"
}
