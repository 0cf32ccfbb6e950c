package broker

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// startSys starts the $SYS publisher if SysInterval is positive.
func (s *Server) startSys() {
	if s.opts.SysInterval > 0 { // negative disables too
		s.wg.Add(1)
		go s.publishSys()
	}
}

// publishSys publishes the broker statistics under $SYS/broker/ every
// SysInterval as retained messages, the topics Mosquitto and most
// dashboards know.
func (s *Server) publishSys() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.SysInterval)
	defer t.Stop()
	s.Publish(&Message{Topic: "$SYS/broker/version", Payload: []byte("herald " + Version), Retain: true})
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.publishSysOnce()
		}
	}
}

// sysTopic reports whether name is under $SYS, the broker's own topics:
// no client may publish there or leave a will there, whatever the ACL
// says, or it could replace or delete the broker's retained values.
func sysTopic(name string) bool {
	return name == "$SYS" || strings.HasPrefix(name, "$SYS/")
}

func (s *Server) publishSysOnce() {
	st := &s.stats
	s.mu.Lock()
	sessions := s.sessions.len()
	s.mu.Unlock()
	values := []struct {
		topic string
		value int64
	}{
		{"$SYS/broker/clients/connected", st.Connected.Load()},
		{"$SYS/broker/clients/total", int64(sessions)},
		{"$SYS/broker/messages/received", st.MessagesIn.Load()},
		{"$SYS/broker/messages/sent", st.MessagesOut.Load()},
		{"$SYS/broker/messages/dropped", st.Dropped()},
		{"$SYS/broker/bytes/received", st.BytesIn.Load()},
		{"$SYS/broker/bytes/sent", st.BytesOut.Load()},
		{"$SYS/broker/subscriptions/count", int64(s.subs.Len())},
		{"$SYS/broker/retained messages/count", int64(s.retained.Len())},
		{"$SYS/broker/uptime", int64(time.Since(s.started) / time.Second)},
	}
	for _, v := range values {
		s.Publish(&Message{Topic: v.topic, Payload: strconv.AppendInt(nil, v.value, 10), Retain: true})
	}
}

// dropLogEvery limits drop logs to one per interval; the counters keep the
// exact numbers.
const dropLogEvery = 10 * time.Second

var lastDropLog atomic.Int64

// logDrop logs a refused delivery at most once per dropLogEvery.
func (s *Server) logDrop(why, clientID, topic string) {
	now := time.Now().UnixNano()
	last := lastDropLog.Load()
	if now-last < int64(dropLogEvery) || !lastDropLog.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("message dropped", "why", why, "client", clientID, "topic", topic,
		"dropped_queue_full_total", s.stats.DroppedQueueFull.Load())
}
