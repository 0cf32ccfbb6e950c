package auth

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
)

// hookServer answers as answer says for each password, counting requests.
type hookServer struct {
	*httptest.Server
	calls atomic.Int32
	mu    sync.Mutex
	last  HookRequest
}

func newHookServer(t testing.TB, answer func(w http.ResponseWriter, r HookRequest)) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.calls.Add(1)
		var req HookRequest
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.last = req
		h.mu.Unlock()
		answer(w, req)
	}))
	t.Cleanup(h.Close)
	return h
}

func passwordAnswers(w http.ResponseWriter, r HookRequest) {
	switch r.Password {
	case "good":
		w.Write([]byte(`{"allow": true}`))
	case "granted":
		w.Write([]byte(`{"allow": true, "acl": {"sub": ["users/%u/#"]}}`))
	case "bad":
		w.Write([]byte(`{"allow": false}`))
	case "forbidden":
		w.WriteHeader(http.StatusForbidden)
	case "broken":
		w.WriteHeader(http.StatusInternalServerError)
	case "garbage":
		w.Write([]byte(`<html>`))
	case "badacl":
		w.Write([]byte(`{"allow": true, "acl": {"sub": ["a/#/b"]}}`))
	case "slow":
		time.Sleep(500 * time.Millisecond)
		w.Write([]byte(`{"allow": true}`))
	}
}

func TestHookAnswers(t *testing.T) {
	srv := newHookServer(t, passwordAnswers)
	grants := NewGrants()
	h := NewHook(HookOptions{URL: srv.URL, Timeout: 200 * time.Millisecond, Grants: grants})
	for _, tc := range []struct {
		password string
		want     packet.ReasonCode
	}{
		{"good", packet.Success},
		{"granted", packet.Success},
		{"bad", packet.BadUsernameOrPassword},
		{"forbidden", packet.BadUsernameOrPassword},
		{"broken", packet.ServerUnavailable},
		{"garbage", packet.ServerUnavailable},
		{"badacl", packet.ServerUnavailable},
		{"slow", packet.ServerUnavailable}, // timeout
	} {
		t.Run(tc.password, func(t *testing.T) {
			info := &broker.ClientInfo{ClientID: "c1", Username: "ann", Listener: "tcp", RemoteAddr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5555}}
			code, decided := h.Check(info, []byte(tc.password))
			if !decided || code != tc.want {
				t.Fatalf("got %v (decided %v), want %v", code, decided, tc.want)
			}
			if (grants.Lookup(info) != nil) != (tc.password == "granted") {
				t.Fatalf("rules present: %v", grants.Lookup(info) != nil)
			}
		})
	}
	srv.mu.Lock()
	last := srv.last
	srv.mu.Unlock()
	if last != (HookRequest{ClientID: "c1", Username: "ann", Password: "slow", RemoteAddr: "10.0.0.7:5555", Listener: "tcp"}) {
		t.Fatalf("request body %+v", last)
	}
}

func TestHookCachesAllowAndDenyButNotFailures(t *testing.T) {
	var down atomic.Bool
	srv := newHookServer(t, func(w http.ResponseWriter, r HookRequest) {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		passwordAnswers(w, r)
	})
	now := time.Now()
	h := NewHook(HookOptions{URL: srv.URL, Timeout: time.Second, CacheTTL: time.Minute})
	h.opts.now = func() time.Time { return now }
	check := func(user, pw string, port int) packet.ReasonCode {
		code, _ := h.Check(&broker.ClientInfo{ClientID: "c", Username: user, RemoteAddr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: port}}, []byte(pw))
		return code
	}
	steps := []struct {
		name      string
		user, pw  string
		port      int
		advance   time.Duration
		down      bool
		want      packet.ReasonCode
		wantCalls int32
	}{
		{"allow asked", "ann", "good", 1000, 0, false, packet.Success, 1},
		{"allow cached, other source port", "ann", "good", 1001, 0, false, packet.Success, 1},
		{"deny asked", "ann", "bad", 1000, 0, false, packet.BadUsernameOrPassword, 2},
		{"deny cached", "ann", "bad", 1000, 0, false, packet.BadUsernameOrPassword, 2},
		{"other user asked", "bob", "good", 1000, 0, false, packet.Success, 3},
		{"failure not cached", "cid", "good", 1000, 0, true, packet.ServerUnavailable, 4},
		{"failure asked again", "cid", "good", 1000, 0, true, packet.ServerUnavailable, 5},
		{"still cached while down", "ann", "good", 1000, 0, true, packet.Success, 5},
		{"expired: asked again", "ann", "good", 1000, 2 * time.Minute, false, packet.Success, 6},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		down.Store(s.down)
		if got := check(s.user, s.pw, s.port); got != s.want {
			t.Fatalf("%s: got %v, want %v", s.name, got, s.want)
		}
		if c := srv.calls.Load(); c != s.wantCalls {
			t.Fatalf("%s: %d requests to the hook, want %d", s.name, c, s.wantCalls)
		}
	}
	h.Flush()
	check("ann", "good", 1000)
	if c := srv.calls.Load(); c != 7 {
		t.Fatalf("after Flush: %d requests, want 7", c)
	}
}

func TestHookCacheIsBounded(t *testing.T) {
	srv := newHookServer(t, passwordAnswers)
	now := time.Now()
	h := NewHook(HookOptions{URL: srv.URL, CacheTTL: time.Minute, MaxCached: 2})
	h.opts.now = func() time.Time { return now }
	for _, u := range []string{"a", "b", "c"} {
		h.Check(&broker.ClientInfo{Username: u}, []byte("good"))
	}
	if n := len(h.cache); n != 2 {
		t.Fatalf("%d cached answers, want the bound 2", n)
	}
	now = now.Add(2 * time.Minute)
	h.Check(&broker.ClientInfo{Username: "d"}, []byte("good"))
	if n := len(h.cache); n != 1 {
		t.Fatalf("%d cached answers after expiry, want 1", n)
	}
}

// A hook that redirects does not get the request, password included,
// resent where it points (307 and 308 would resend the body): the
// redirect is an answer the hook does not understand, and refuses.
func TestHookDoesNotFollowRedirects(t *testing.T) {
	elsewhere := newHookServer(t, passwordAnswers)
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/auth", http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	h := NewHook(HookOptions{URL: redirecting.URL + "/auth", Timeout: time.Second})
	if code, _ := h.Check(&broker.ClientInfo{Username: "u"}, []byte("good")); code == packet.Success {
		t.Fatal("admitted through a redirect")
	}
	if n := elsewhere.calls.Load(); n != 0 {
		t.Fatalf("the redirect target got %d requests with the password", n)
	}
}

func TestHookUnreachableIsServerUnavailable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	h := NewHook(HookOptions{URL: "http://" + addr + "/auth", Timeout: time.Second})
	if code, _ := h.Check(&broker.ClientInfo{Username: "u"}, []byte("p")); code != packet.ServerUnavailable {
		t.Fatalf("got %v, want 0x88", code)
	}
}
