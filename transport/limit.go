package transport

import "sync/atomic"

// ConnLimit caps the open connections of one listener (or, shared, of
// several). It works at the Accepter, so it applies alike to the epoll,
// TLS and WebSocket paths: a connection above the cap is refused (closed at
// once) and counted. The zero value and a nil *ConnLimit are unlimited.
type ConnLimit struct {
	max     int64
	open    atomic.Int64
	refused atomic.Uint64

	// OnRefuse, when set before use, is called after each refusal with the
	// total refused so far; it must not block (log at a bounded rate).
	OnRefuse func(refused uint64)
}

// NewConnLimit returns a limit of max open connections; max <= 0 is
// unlimited.
func NewConnLimit(max int) *ConnLimit { return &ConnLimit{max: int64(max)} }

// Open returns the connections currently admitted and not yet closed.
func (l *ConnLimit) Open() int { return int(l.open.Load()) }

// Refused returns how many connections were refused for the limit.
func (l *ConnLimit) Refused() uint64 { return l.refused.Load() }

// Accepter wraps accept so that at most the limit's max connections are
// open at once: a new one beyond it is refused without calling accept. A
// connection stops counting when its Handler.Closed has returned. With no
// limit it returns accept itself.
func (l *ConnLimit) Accepter(accept Accepter) Accepter {
	if l == nil || l.max <= 0 {
		return accept
	}
	return func(c Conn) Handler {
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			n := l.refused.Add(1)
			if l.OnRefuse != nil {
				l.OnRefuse(n)
			}
			return nil
		}
		h := accept(c)
		if h == nil {
			l.open.Add(-1)
			return nil
		}
		return &limitedHandler{Handler: h, limit: l}
	}
}

// limitedHandler gives back its connection's slot when it closes.
type limitedHandler struct {
	Handler
	limit *ConnLimit
}

// Closed implements Handler.
func (h *limitedHandler) Closed(err error) {
	h.Handler.Closed(err)
	h.limit.open.Add(-1)
}
