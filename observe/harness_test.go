package observe

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
	"github.com/herald-mqtt/herald/transport"
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
}

func startRig(t *testing.T, ro rigOptions) *rig {
	t.Helper()
	st := ro.store
	if st == nil {
		st = store.NewMemory()
	}
	rc := &RouteCounter{}
	opts := broker.DefaultOptions()
	opts.Store = st
	opts.SysInterval = 0 // $SYS publishes would move the counters under the tests
	opts.Hooks = []broker.Hook{rc}
	if ro.mod != nil {
		ro.mod(&opts)
	}
	srv := broker.New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		transport.Serve(ctx, l, srv.Accept("tcp-test"))
	}()
	h := NewHandler(Options{Server: srv, Store: st, Routed: rc, AdminToken: ro.token, Ready: ro.ready})
	h.gauges.ttl = 0 // every scrape sees the state of the moment
	hs := httptest.NewServer(h)
	r := &rig{srv: srv, st: st, mqtt: l.Addr().String(), http: hs, handler: h, routed: rc}
	t.Cleanup(func() {
		hs.Close()
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, store.ErrClosed) && !strings.Contains(err.Error(), "already shut down") {
			t.Logf("shutdown: %v", err)
		}
		cancel()
		<-served
	})
	return r
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

// rawClient speaks MQTT over a socket with the project's codec, for exact
// control of the packets the broker sends.
type rawClient struct {
	t       *testing.T
	c       net.Conn
	version byte
	buf     []byte
}

// connectRaw dials addr and completes CONNECT/CONNACK.
func connectRaw(t *testing.T, addr string, p *packet.Connect) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &rawClient{t: t, c: c, version: p.ProtocolVersion}
	r.send(p)
	ack, ok := r.next().(*packet.Connack)
	if !ok || ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK: %+v", ack)
	}
	return r
}

func (r *rawClient) send(p packet.Packet) {
	r.t.Helper()
	b, err := packet.Encode(nil, r.version, p)
	if err != nil {
		r.t.Fatalf("encode %T: %v", p, err)
	}
	r.c.SetWriteDeadline(time.Now().Add(waitFor))
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// recv returns the next packet, or the read error (io.EOF once closed).
func (r *rawClient) recv() (packet.Packet, error) {
	deadline := time.Now().Add(waitFor)
	for {
		n, err := packet.SplitFrame(r.buf, 0)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			f := r.buf[:n]
			r.buf = r.buf[n:]
			return packet.Decode(r.version, f)
		}
		r.c.SetReadDeadline(deadline)
		var tmp [4096]byte
		m, err := r.c.Read(tmp[:])
		r.buf = append(r.buf, tmp[:m]...)
		if err != nil && m == 0 {
			return nil, err
		}
	}
}

func (r *rawClient) next() packet.Packet {
	r.t.Helper()
	p, err := r.recv()
	if err != nil {
		r.t.Fatalf("waiting for a packet: %v", err)
	}
	return p
}

// subscribe subscribes to filter at qos and requires it granted.
func (r *rawClient) subscribe(filter string, qos byte) {
	r.t.Helper()
	r.send(&packet.Subscribe{PacketID: 1, Subscriptions: []packet.Subscription{{Filter: filter, QoS: qos}}})
	ack, ok := r.next().(*packet.Suback)
	if !ok || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != packet.ReasonCode(qos) {
		r.t.Fatalf("SUBACK for %q: %+v", filter, ack)
	}
}

// publish sends a QoS 0 or 1 PUBLISH and waits for its PUBACK.
func (r *rawClient) publish(p *packet.Publish) {
	r.t.Helper()
	if p.QoS > 0 {
		p.PacketID = 7
	}
	r.send(p)
	if p.QoS == 1 {
		if a, ok := r.next().(*packet.Ack); !ok || a.Kind != packet.PUBACK {
			r.t.Fatalf("want PUBACK, got %+v", a)
		}
	}
}

// closedAfter reads until the broker closes the connection and returns
// the packets received before.
func (r *rawClient) closedAfter() []packet.Packet {
	r.t.Helper()
	var got []packet.Packet
	for {
		p, err := r.recv()
		if err == nil {
			got = append(got, p)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatalf("connection still open after %v (got %v)", waitFor, got)
		}
		return got
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
		Conn:     conn,
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
