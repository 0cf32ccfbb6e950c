package transport

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestListenerConnLimit proves that a ConnLimit refuses connections beyond
// its cap on every transport, counts each refusal, and frees a slot when a
// connection closes.
func TestListenerConnLimit(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			limit := NewConnLimit(2)
			var onRefuse atomic.Uint64
			limit.OnRefuse = func(n uint64) { onRefuse.Store(n) }
			rs := newRecorders(false)
			addr, _ := tr.start(t, limit.Accepter(rs.accept), false)

			a := dial(t, addr)
			ra := rs.next(t)
			dial(t, addr)
			rs.next(t)
			c := dial(t, addr)
			expectEOF(t, c) // refused: closed without a word
			if got := limit.Refused(); got != 1 {
				t.Errorf("Refused = %d, want 1", got)
			}
			if got := onRefuse.Load(); got != 1 {
				t.Errorf("OnRefuse saw %d, want 1", got)
			}
			if got := rs.accepts.Load(); got != 2 {
				t.Errorf("inner Accepter called %d times, want 2", got)
			}

			a.Close()
			<-ra.closed
			waitOpen(t, limit, 1)
			dial(t, addr)
			rs.next(t) // the freed slot admits a new connection
			if got := limit.Open(); got != 2 {
				t.Errorf("Open = %d, want 2", got)
			}
		})
	}
}

func TestListenerConnLimitOnWebSocket(t *testing.T) {
	limit := NewConnLimit(1)
	rs := newRecorders(false)
	url := startWS(t, context.Background(), limit.Accepter(rs.accept))
	ws := dialWS(t, url, nil)
	r := rs.next(t)

	refused := dialWS(t, url, nil)
	refused.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := refused.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("refused connection read %v, want a close frame", err)
	}
	if got := limit.Refused(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
	ws.Close()
	<-r.closed
	waitOpen(t, limit, 0)
	dialWS(t, url, nil)
	rs.next(t)
}

func TestListenerConnLimitZeroIsUnlimited(t *testing.T) {
	accept := func(Conn) Handler { return nil }
	for _, l := range []*ConnLimit{nil, NewConnLimit(0), {}} {
		// The same function comes back: nothing is added per connection.
		if got := l.Accepter(accept); got == nil || got(nil) != nil {
			t.Error("unlimited ConnLimit changed the Accepter")
		}
	}
}

// waitOpen waits for the limit's open count to reach want: Closed returns
// before the slot is given back.
func waitOpen(t *testing.T, l *ConnLimit, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Open() != want {
		if time.Now().After(deadline) {
			t.Fatalf("Open = %d, want %d", l.Open(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
