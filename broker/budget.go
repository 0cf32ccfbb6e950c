package broker

import (
	"sync"
)

// The global memory budget bounds the payload bytes queued for sessions
// across the node (Limits.MemoryBudget). Beyond it the broker does not drop
// what it acknowledged: it stops reading from clients that publish, so TCP
// flow control slows them down, and resumes them once the queues drain
// below the low watermark (90% of the budget).

// pauser is implemented by transport connections that can stop reading.
type pauser interface {
	PauseRead()
	ResumeRead()
}

// budget tracks queued bytes and the clients paused because of them.
type budget struct {
	mu     sync.Mutex
	paused map[*client]struct{}
}

// queued adjusts the node-wide queued byte count.
func (s *Server) queued(delta int) {
	n := s.stats.QueuedBytes.Add(int64(delta))
	if delta < 0 && s.opts.Limits.MemoryBudget > 0 && n < s.opts.Limits.MemoryBudget*9/10 {
		s.resumePublishers()
	}
}

// overBudget reports whether queued bytes exceed the memory budget.
func (s *Server) overBudget() bool {
	b := s.opts.Limits.MemoryBudget
	return b > 0 && s.stats.QueuedBytes.Load() > b
}

// throttle pauses reading from c while the node is over its memory budget.
// Called on c's read side after it published.
func (c *client) throttle() {
	p, ok := c.conn.(pauser)
	if !ok || !c.srv.overBudget() {
		return
	}
	s := c.srv
	s.budget.mu.Lock()
	if s.budget.paused == nil {
		s.budget.paused = make(map[*client]struct{})
	}
	_, already := s.budget.paused[c]
	s.budget.paused[c] = struct{}{}
	s.budget.mu.Unlock()
	if !already {
		s.stats.PausedPublishers.Add(1)
		s.logLimit("memory budget exceeded: pausing publishers", c.info.ClientID)
		c.set(fReadPaused)
		p.PauseRead()
	}
	// The queues may have drained between the check and the pause.
	if !s.overBudget() {
		s.resumePublishers()
	}
}

// resumePublishers resumes every paused client once below the low watermark.
func (s *Server) resumePublishers() {
	s.budget.mu.Lock()
	if len(s.budget.paused) == 0 {
		s.budget.mu.Unlock()
		return
	}
	paused := s.budget.paused
	s.budget.paused = nil
	s.budget.mu.Unlock()
	now := s.millis()
	for c := range paused {
		c.lastPacket.Store(now) // the keepalive clock restarts
		c.unset(fReadPaused)
		c.conn.(pauser).ResumeRead()
	}
}

// budgetPaused reports whether the memory budget has c paused.
func (s *Server) budgetPaused(c *client) bool {
	s.budget.mu.Lock()
	_, paused := s.budget.paused[c]
	s.budget.mu.Unlock()
	return paused
}

// forgetPaused drops a closed client from the paused set.
func (s *Server) forgetPaused(c *client) {
	s.budget.mu.Lock()
	delete(s.budget.paused, c)
	s.budget.mu.Unlock()
}
