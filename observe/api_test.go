package observe

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/internal/mqtttest"
	"github.com/herald-mqtt/herald/packet"
)

const testToken = "s3cret-token"

// /api/ needs the bearer token; the probes and metrics do not.
func TestAdminAPIRequiresToken(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		want   int
	}{
		{"stats without token", "GET", "/api/stats", "", http.StatusUnauthorized},
		{"stats with wrong token", "GET", "/api/stats", "guess", http.StatusUnauthorized},
		{"stats with token", "GET", "/api/stats", testToken, http.StatusOK},
		{"clients without token", "GET", "/api/clients", "", http.StatusUnauthorized},
		{"clients with token", "GET", "/api/clients", testToken, http.StatusOK},
		{"kick without token", "DELETE", "/api/clients/x", "", http.StatusUnauthorized},
		{"topics with token", "GET", "/api/topics", testToken, http.StatusOK},
		{"retained with token", "GET", "/api/retained", testToken, http.StatusOK},
		{"unknown API path without token", "GET", "/api/nope", "", http.StatusUnauthorized},
		{"pprof without token", "GET", "/debug/pprof/", "", http.StatusUnauthorized},
		{"pprof with token", "GET", "/debug/pprof/", testToken, http.StatusOK},
		{"unknown API path with token", "GET", "/api/nope", testToken, http.StatusNotFound},
		{"metrics open", "GET", "/metrics", "", http.StatusOK},
		{"healthz open", "GET", "/healthz", "", http.StatusOK},
		{"readyz open", "GET", "/readyz", "", http.StatusOK},
		{"dashboard open", "GET", "/", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body, hdr := r.do(t, tt.method, tt.path, tt.token)
			if code != tt.want {
				t.Fatalf("%s %s: %d %s, want %d", tt.method, tt.path, code, body, tt.want)
			}
			if code == http.StatusUnauthorized && hdr.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// With no token configured the API and pprof answer loopback requests to
// a loopback host only: not other addresses, not a rebound DNS name, not
// other web pages open in the operator's browser, and not what a reverse
// proxy on the same host relays.
func TestAdminAPIWithoutTokenOnlyForLoopback(t *testing.T) {
	r := startRig(t, rigOptions{})
	tests := []struct {
		name   string
		remote string
		host   string
		header map[string]string
		want   int
	}{
		{"loopback v4", "127.0.0.1:5000", "127.0.0.1:8080", nil, http.StatusOK},
		{"loopback v6", "[::1]:5000", "[::1]:8080", nil, http.StatusOK},
		{"localhost name", "127.0.0.1:5000", "localhost:8080", nil, http.StatusOK},
		{"remote address", "192.0.2.7:5000", "127.0.0.1:8080", nil, http.StatusUnauthorized},
		{"rebound host name", "127.0.0.1:5000", "attacker.example:8080", nil, http.StatusUnauthorized},
		{"the dashboard", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"}, http.StatusOK},
		{"an address typed in", "127.0.0.1:5000", "localhost:8080",
			map[string]string{"Sec-Fetch-Site": "none"}, http.StatusOK},
		{"another site's page", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a page on another port of localhost", "127.0.0.1:5000", "localhost:8080",
			map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:3000"}, http.StatusForbidden},
		{"another origin, no fetch metadata", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
		{"a sandboxed or file page", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"Origin": "null"}, http.StatusForbidden},
		// A reverse proxy on this host connects from loopback, often with
		// a loopback Host: what it relays is not from this machine.
		{"through a reverse proxy (X-Forwarded-For)", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"X-Forwarded-For": "198.51.100.9"}, http.StatusUnauthorized},
		{"through a reverse proxy (Forwarded)", "127.0.0.1:5000", "127.0.0.1:8080",
			map[string]string{"Forwarded": "for=198.51.100.9"}, http.StatusUnauthorized},
		{"through a reverse proxy (X-Real-IP)", "127.0.0.1:5000", "localhost:8080",
			map[string]string{"X-Real-IP": "198.51.100.9"}, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		for _, path := range []string{"/api/stats", "/debug/pprof/"} {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				req := httptest.NewRequest("GET", path, nil)
				req.RemoteAddr = tt.remote
				req.Host = tt.host
				for k, v := range tt.header {
					req.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				r.handler.ServeHTTP(w, req)
				if w.Code != tt.want {
					t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.want)
				}
			})
		}
	}
}

// With a token, a request from another origin is judged by its token
// alone: a page cannot make the browser send it.
func TestAdminAPIWithTokenIgnoresOrigin(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	req := httptest.NewRequest("GET", "/api/stats", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Origin", "http://proxy.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	w := httptest.NewRecorder()
	r.handler.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", w.Code, w.Body)
	}
}

// DELETE /api/clients/{id} closes a v5 client with DISCONNECT 0x98
// Administrative action, and a 3.1.1 client without a DISCONNECT (it has
// none from the server).
func TestKickDisconnectsClient(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	tests := []struct {
		name    string
		version byte
		id      string
	}{
		{"v5 gets 0x98", packet.Version5, "kick/v5"},
		{"3.1.1 is closed", packet.Version311, "kick-311"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mqtttest.Connect(t, r.mqtt, &packet.Connect{ProtocolVersion: tt.version, ClientID: tt.id, CleanStart: true})
			code, body, _ := r.do(t, "DELETE", "/api/clients/"+tt.id, testToken)
			if code != http.StatusNoContent {
				t.Fatalf("DELETE: %d %s", code, body)
			}
			got := c.ExpectClosed(waitFor)
			switch tt.version {
			case packet.Version5:
				if len(got) != 1 {
					t.Fatalf("got %v before close, want one DISCONNECT", got)
				}
				d, ok := got[0].(*packet.Disconnect)
				if !ok || d.ReasonCode != packet.AdministrativeAction {
					t.Fatalf("got %+v, want DISCONNECT 0x98", got[0])
				}
			default:
				if len(got) != 0 {
					t.Fatalf("3.1.1 client got %v before close", got)
				}
			}
			eventually(t, "the client to be offline", func() bool {
				var s statsJSON
				r.getJSON(t, "/api/stats", testToken, &s)
				return s.Connections.Connected == 0
			})
		})
	}
	if code, _, _ := r.do(t, "DELETE", "/api/clients/nobody", testToken); code != http.StatusNotFound {
		t.Errorf("kick of an unknown client: %d, want 404", code)
	}
}

// /api/clients pages through every session in client id order, and
// /api/clients/{id} shows one with its subscriptions (ids with '/' too).
func TestClientsPagingAndDetail(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	var ids []string
	for i := range 11 {
		id := fmt.Sprintf("dev/%02d", (i*7)%11) // connect out of order
		ids = append(ids, id)
		mqtttest.Connect(t, r.mqtt, mqtttest.V5(id))
	}
	slices.Sort(ids)

	var seen []string
	after := ""
	for page := 0; ; page++ {
		var out struct {
			Total   int          `json:"total"`
			Clients []clientJSON `json:"clients"`
			Next    string       `json:"next"`
		}
		r.getJSON(t, "/api/clients?limit=4&after="+after, testToken, &out)
		if out.Total != 11 {
			t.Fatalf("total %d, want 11", out.Total)
		}
		for _, c := range out.Clients {
			if !c.Online || c.ProtocolVersion != 5 || c.Listener != "tcp-test" || c.ConnectedAt == nil || c.RemoteAddr == "" {
				t.Errorf("client %+v: want online v5 on tcp-test with address and connect time", c)
			}
			seen = append(seen, c.ClientID)
		}
		if out.Next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		after = out.Next
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("paged ids %v, want %v", seen, ids)
	}
	// A last page that is exactly full has no next either.
	for _, path := range []string{"/api/clients?limit=11", "/api/clients?limit=3&after=" + ids[7]} {
		var out struct {
			Clients []clientJSON `json:"clients"`
			Next    *string      `json:"next"`
		}
		r.getJSON(t, path, testToken, &out)
		if len(out.Clients) == 0 || out.Clients[len(out.Clients)-1].ClientID != ids[10] || out.Next != nil {
			t.Errorf("GET %s: %d clients, next %v; want the last page without next", path, len(out.Clients), out.Next)
		}
	}

	c, _ := mqtttest.Connect(t, r.mqtt, &packet.Connect{ProtocolVersion: packet.Version5, ClientID: "user/7", CleanStart: true, UsernameFlag: true, Username: "alice"})
	c.SubscribeOne("user/7/#", 1)
	c.SubscribeOne("$share/workers/jobs", 0)
	var detail struct {
		clientJSON
		Filters []subscriptionJSON `json:"filters"`
	}
	r.getJSON(t, "/api/clients/user/7", testToken, &detail)
	if detail.ClientID != "user/7" || detail.Username != "alice" || detail.Subscriptions != 2 {
		t.Errorf("detail %+v", detail.clientJSON)
	}
	want := []subscriptionJSON{{Filter: "$share/workers/jobs", QoS: 0}, {Filter: "user/7/#", QoS: 1}}
	if !slices.Equal(detail.Filters, want) {
		t.Errorf("filters %+v, want %+v", detail.Filters, want)
	}
	if code, _, _ := r.do(t, "GET", "/api/clients/nobody", testToken); code != http.StatusNotFound {
		t.Errorf("unknown client: %d, want 404", code)
	}
	if code, _, _ := r.do(t, "GET", "/api/clients?limit=0", testToken); code != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", code)
	}
}

// /api/clients/{id} lists at most maxClientFilters filters, the first in
// order, and says that it left the others out.
func TestClientDetailCapsFilters(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("many"))
	const n = maxClientFilters + 5
	subs := make([]packet.Subscription, n)
	for i := range subs {
		subs[i] = packet.Subscription{Filter: fmt.Sprintf("f/%04d", n-1-i)}
	}
	if codes := c.Subscribe(1, packet.Properties{}, subs...); len(codes) != n {
		t.Fatalf("SUBACK with %d codes, want %d", len(codes), n)
	}
	var detail struct {
		clientJSON
		Filters   []subscriptionJSON `json:"filters"`
		Truncated bool               `json:"filters_truncated"`
	}
	r.getJSON(t, "/api/clients/many", testToken, &detail)
	if detail.Subscriptions != n || len(detail.Filters) != maxClientFilters || !detail.Truncated {
		t.Fatalf("%d subscriptions, %d filters, truncated %v; want %d, %d, true",
			detail.Subscriptions, len(detail.Filters), detail.Truncated, n, maxClientFilters)
	}
	if detail.Filters[0].Filter != "f/0000" || detail.Filters[maxClientFilters-1].Filter != fmt.Sprintf("f/%04d", maxClientFilters-1) {
		t.Errorf("filters from %s to %s, want the first %d in order", detail.Filters[0].Filter, detail.Filters[maxClientFilters-1].Filter, maxClientFilters)
	}
}

// /api/topics ranks filters by subscribers, shared groups apart.
func TestTopicsRankedBySubscribers(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	subs := map[string][]string{
		"a": {"chat/#", "news"},
		"b": {"chat/#", "$share/g/jobs"},
		"c": {"chat/#", "$share/g/jobs"},
	}
	for id, filters := range subs {
		c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5(id))
		for _, f := range filters {
			c.SubscribeOne(f, 0)
		}
	}
	var out struct {
		Distinct int `json:"distinct"`
		Topics   []struct {
			Filter      string `json:"filter"`
			Group       string `json:"group"`
			Subscribers int    `json:"subscribers"`
		} `json:"topics"`
	}
	r.getJSON(t, "/api/topics?limit=2", testToken, &out)
	if out.Distinct != 3 {
		t.Errorf("distinct %d, want 3", out.Distinct)
	}
	if len(out.Topics) != 2 ||
		out.Topics[0].Filter != "chat/#" || out.Topics[0].Subscribers != 3 ||
		out.Topics[1].Filter != "jobs" || out.Topics[1].Group != "g" || out.Topics[1].Subscribers != 2 {
		t.Errorf("top topics %+v", out.Topics)
	}
}

// However many callers ask, /api/topics walks the subscriptions at most
// once per interval, and every limit gets its prefix of one ranking.
func TestTopicsWalkOncePerInterval(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	for i, f := range []string{"a", "b", "b", "c", "c", "c"} {
		c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5(fmt.Sprint("s", i)))
		c.SubscribeOne(f, 0)
	}
	var walks atomic.Int32
	walk := r.handler.ranks.compute
	r.handler.ranks.compute = func() topicRanking { walks.Add(1); return walk() }
	r.handler.ranks.ttl = time.Hour

	type topics struct {
		Distinct int `json:"distinct"`
		Topics   []struct {
			Filter      string `json:"filter"`
			Subscribers int    `json:"subscribers"`
		} `json:"topics"`
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var out topics
			r.getJSON(t, "/api/topics", testToken, &out)
		})
	}
	wg.Wait()
	for limit, want := range map[int]string{1: "c", 2: "c b", 3: "c b a", 1000: "c b a"} {
		var out topics
		r.getJSON(t, fmt.Sprint("/api/topics?limit=", limit), testToken, &out)
		var got []string
		for _, tc := range out.Topics {
			got = append(got, tc.Filter)
		}
		if strings.Join(got, " ") != want || out.Distinct != 3 {
			t.Errorf("limit %d: %v of %d distinct, want %s of 3", limit, got, out.Distinct, want)
		}
	}
	if n := walks.Load(); n != 1 {
		t.Errorf("%d walks over the subscriptions for 12 requests, want 1", n)
	}
}

// /api/retained lists matching retained messages by topic, text as text
// and binary as base64, and says when the limit or the byte budget cut
// the list.
func TestRetainedByFilter(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	c, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("pub"))
	binary := []byte{0xff, 0x00, 0xfe}
	c.Publish(&packet.Publish{Topic: "status/b", QoS: 1, Retain: true, Payload: binary})
	c.Publish(&packet.Publish{Topic: "status/a", QoS: 1, Retain: true, Payload: []byte("online")})
	c.Publish(&packet.Publish{Topic: "other", QoS: 1, Retain: true, Payload: []byte("x")})

	type list struct {
		Messages  []retainedJSON `json:"messages"`
		Truncated bool           `json:"truncated"`
	}
	var out list
	r.getJSON(t, "/api/retained?filter=status/%2B", testToken, &out)
	if len(out.Messages) != 2 || out.Truncated {
		t.Fatalf("got %+v, want status/a and status/b", out)
	}
	a, b := out.Messages[0], out.Messages[1]
	if a.Topic != "status/a" || a.PayloadEncoding != "utf8" || a.Payload != "online" || a.QoS != 1 {
		t.Errorf("first %+v", a)
	}
	if b.Topic != "status/b" || b.PayloadEncoding != "base64" || b.Payload != base64.StdEncoding.EncodeToString(binary) || b.PayloadBytes != 3 {
		t.Errorf("second %+v", b)
	}

	out = list{}
	r.getJSON(t, "/api/retained?limit=2", testToken, &out) // default filter "#"
	if len(out.Messages) != 2 || !out.Truncated {
		t.Errorf("limit 2 of 3: got %d messages, truncated %v", len(out.Messages), out.Truncated)
	}
	// The byte budget cuts the list too: status/a fits, status/b does not.
	r.handler.retainedBudget = len("status/a") + len("online") + len("status/b") + len(binary) - 1
	out = list{}
	r.getJSON(t, "/api/retained?filter=status/%2B", testToken, &out)
	if len(out.Messages) != 1 || out.Messages[0].Topic != "status/a" || !out.Truncated {
		t.Errorf("over the byte budget: got %+v, want status/a only, truncated", out)
	}
	if code, _, _ := r.do(t, "GET", "/api/retained?filter=a/%23/b", testToken); code != http.StatusBadRequest {
		t.Errorf("invalid filter: %d, want 400", code)
	}
}

// /api/stats reports the counters and levels the dashboard draws.
func TestStatsReportsCountersAndLevels(t *testing.T) {
	r := startRig(t, rigOptions{token: testToken})
	sub, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V5("sub"))
	sub.SubscribeOne("t", 1)
	pub, _ := mqtttest.Connect(t, r.mqtt, mqtttest.V311("pub"))
	pub.Publish(&packet.Publish{Topic: "t", QoS: 1, Payload: []byte("hi")})
	if _, ok := sub.Next().(*packet.Publish); !ok {
		t.Fatal("no PUBLISH to the subscriber")
	}
	var s statsJSON
	eventually(t, "the sent counter", func() bool { // counted just after the write
		r.getJSON(t, "/api/stats", testToken, &s)
		return s.Messages.Sent == 1
	})
	if s.Connections.Connected != 2 || s.Sessions.Online != 2 || s.Subscriptions != 1 ||
		s.Messages.Received != 1 || s.Messages.Sent != 1 || s.Messages.RoutedByQoS["1"] != 1 ||
		s.Bytes.Received == 0 || s.Connections.ByListener["tcp-test"] != 2 || len(s.Dropped) != 5 ||
		len(s.Limits) != 5 || s.MemoryBudget.BudgetBytes != 0 {
		t.Errorf("stats %+v", s)
	}
	if s.Store != nil {
		t.Errorf("memory store reported store stats %+v", s.Store)
	}
}

// /readyz fails once the broker shuts down or an extra check fails, while
// /healthz keeps answering.
func TestReadyzFollowsBrokerAndChecks(t *testing.T) {
	var failing atomic.Bool
	r := startRig(t, rigOptions{ready: func() error {
		if failing.Load() {
			return errors.New("listeners not started")
		}
		return nil
	}})
	if code, body, _ := r.do(t, "GET", "/readyz", ""); code != http.StatusOK {
		t.Fatalf("readyz %d %s", code, body)
	}
	failing.Store(true)
	if code, _, _ := r.do(t, "GET", "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a failing check: %d, want 503", code)
	}
	failing.Store(false)
	r.srv.Shutdown(t.Context())
	if code, body, _ := r.do(t, "GET", "/readyz", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after shutdown: %d %s, want 503", code, body)
	}
	if code, _, _ := r.do(t, "GET", "/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz after shutdown: %d, want 200", code)
	}
}
