package observe

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/herald-mqtt/herald/broker"
)

// Page sizes of the list endpoints: the default, and the most one request
// may ask for.
const (
	defaultClientsLimit  = 100
	maxClientsLimit      = 1000
	defaultTopicsLimit   = 20
	maxTopicsLimit       = 1000
	defaultRetainedLimit = 100
	maxRetainedLimit     = 10000
	// maxClientFilters caps the filters of /api/clients/{id}:
	// max_subscriptions_per_client is unlimited by default.
	maxClientFilters = 1000
	// retainedBudget caps the topic and payload bytes of one
	// /api/retained answer: 10,000 payloads of up to max_packet_size
	// (256 MiB at most) would otherwise be built in memory, encoded.
	retainedBudget = 16 << 20
)

// statsJSON is the body of GET /api/stats. Counters are totals since start;
// the dashboard derives rates from two polls and NowMillis.
type statsJSON struct {
	Version       string           `json:"version"`
	NowMillis     int64            `json:"now_ms"`
	Started       time.Time        `json:"started"`
	UptimeSeconds int64            `json:"uptime_seconds"`
	Connections   connectionsJSON  `json:"connections"`
	Sessions      sessionsJSON     `json:"sessions"`
	Messages      messagesJSON     `json:"messages"`
	Bytes         bytesJSON        `json:"bytes"`
	Dropped       map[string]int64 `json:"dropped"`
	Subscriptions int              `json:"subscriptions"`
	Retained      int              `json:"retained"`
	Queues        queuesJSON       `json:"queues"`
	Limits        map[string]int64 `json:"limit_refusals"`
	MemoryBudget  budgetJSON       `json:"memory_budget"`
	Store         *storeJSON       `json:"store,omitempty"`
}

type connectionsJSON struct {
	Connected     int64          `json:"connected"`
	AcceptedTotal int64          `json:"accepted_total"`
	ByListener    map[string]int `json:"by_listener"`
}

type sessionsJSON struct {
	Total   int `json:"total"`
	Online  int `json:"online"`
	Offline int `json:"offline"`
}

type messagesJSON struct {
	Received int64 `json:"received"`
	Sent     int64 `json:"sent"`
	// RoutedByQoS counts routed messages from clients and the broker by
	// published QoS ("0", "1", "2"); absent without a RouteCounter.
	RoutedByQoS map[string]int64 `json:"routed_by_qos,omitempty"`
}

type bytesJSON struct {
	Received int64 `json:"received"`
	Sent     int64 `json:"sent"`
}

type queuesJSON struct {
	QueuedMessages  int    `json:"queued_messages"`
	QueuedBytes     int    `json:"queued_bytes"`
	MaxQueued       int    `json:"max_queued"`
	MaxQueuedClient string `json:"max_queued_client,omitempty"`
	Inflight        int    `json:"inflight"`
	IncomingQoS2    int    `json:"incoming_qos2"`
}

type budgetJSON struct {
	UsedBytes             int64 `json:"used_bytes"`
	BudgetBytes           int64 `json:"budget_bytes"` // 0: no budget
	PausedPublishersTotal int64 `json:"paused_publishers_total"`
}

type storeJSON struct {
	Commits             uint64  `json:"commits"`
	SyncCommits         uint64  `json:"sync_commits"`
	CommitSecondsTotal  float64 `json:"commit_seconds_total"`
	WALSyncs            uint64  `json:"wal_syncs"`
	WALSyncSecondsTotal float64 `json:"wal_sync_seconds_total"`
}

func (h *Handler) stats(w http.ResponseWriter, _ *http.Request) {
	srv := h.o.Server
	st := srv.Stats()
	g := h.gauges.get()
	now := time.Now()
	out := statsJSON{
		Version:       broker.Version,
		NowMillis:     now.UnixMilli(),
		Started:       srv.Started(),
		UptimeSeconds: int64(now.Sub(srv.Started()) / time.Second),
		Connections: connectionsJSON{
			Connected:     st.Connected.Load(),
			AcceptedTotal: st.Connections.Load(),
			ByListener:    g.OnlineByListener,
		},
		Sessions:      sessionsJSON{Total: g.Sessions, Online: g.Online, Offline: g.Sessions - g.Online},
		Messages:      messagesJSON{Received: st.MessagesIn.Load(), Sent: st.MessagesOut.Load()},
		Bytes:         bytesJSON{Received: st.BytesIn.Load(), Sent: st.BytesOut.Load()},
		Dropped:       make(map[string]int64, 5),
		Subscriptions: g.Subscriptions,
		Retained:      g.Retained,
		Queues: queuesJSON{
			QueuedMessages:  g.Queued,
			QueuedBytes:     g.QueuedBytes,
			MaxQueued:       g.MaxQueued,
			MaxQueuedClient: g.MaxQueuedClient,
			Inflight:        g.Inflight,
			IncomingQoS2:    g.IncomingQoS2,
		},
	}
	for _, d := range st.Drops() {
		out.Dropped[d.Cause] = d.N
	}
	out.Limits = make(map[string]int64, 5)
	for _, l := range limitRefusals(srv.LimitStats()) {
		out.Limits[l.cause] = l.n
	}
	out.MemoryBudget = budgetJSON{
		UsedBytes:             st.QueuedBytes.Load(),
		BudgetBytes:           srv.MemoryBudget(),
		PausedPublishersTotal: st.PausedPublishers.Load(),
	}
	if rc := h.o.Routed; rc != nil {
		out.Messages.RoutedByQoS = make(map[string]int64, 3)
		for q := range byte(3) {
			c, b := rc.Routed(q)
			out.Messages.RoutedByQoS[strconv.Itoa(int(q))] = c + b
		}
	}
	if ss, ok := h.o.Store.(storeStats); ok {
		s := ss.Stats()
		out.Store = &storeJSON{
			Commits:             s.Commits,
			SyncCommits:         s.SyncCommits,
			CommitSecondsTotal:  s.CommitLatency.Seconds(),
			WALSyncs:            s.WALSyncs,
			WALSyncSecondsTotal: s.WALSyncLatency.Seconds(),
		}
	}
	writeJSON(w, out)
}

// clientJSON is one session in /api/clients.
type clientJSON struct {
	ClientID         string     `json:"client_id"`
	Online           bool       `json:"online"`
	Username         string     `json:"username,omitempty"`
	ProtocolVersion  byte       `json:"protocol_version,omitempty"`
	RemoteAddr       string     `json:"remote_addr,omitempty"`
	Listener         string     `json:"listener,omitempty"`
	ConnectedAt      *time.Time `json:"connected_at,omitempty"`
	KeepAliveSeconds int64      `json:"keep_alive_seconds"`
	SessionExpiry    uint32     `json:"session_expiry_seconds"`
	Persistent       bool       `json:"persistent"`
	Subscriptions    int        `json:"subscriptions"`
	Inflight         int        `json:"inflight"`
	Queued           int        `json:"queued"`
	QueuedBytes      int        `json:"queued_bytes"`
	IncomingQoS2     int        `json:"incoming_qos2"`
}

func clientFrom(c broker.ClientSnapshot) clientJSON {
	j := clientJSON{
		ClientID:         c.ClientID,
		Online:           c.Online,
		Username:         c.Username,
		ProtocolVersion:  c.Version,
		RemoteAddr:       c.RemoteAddr,
		Listener:         c.Listener,
		KeepAliveSeconds: int64(c.KeepAlive / time.Second),
		SessionExpiry:    c.SessionExpiry,
		Persistent:       c.Persistent,
		Subscriptions:    c.Subscriptions,
		Inflight:         c.Inflight,
		Queued:           c.Queued,
		QueuedBytes:      c.QueuedBytes,
		IncomingQoS2:     c.IncomingQoS2,
	}
	if !c.ConnectedAt.IsZero() {
		t := c.ConnectedAt
		j.ConnectedAt = &t
	}
	return j
}

// GET /api/clients?after=ID&limit=N: sessions in client id order. "next"
// is the after of the following page; absent on the last page.
func (h *Handler) clients(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, defaultClientsLimit, maxClientsLimit)
	if !ok {
		return
	}
	// One more than asked tells whether another page follows.
	page, total := h.o.Server.Clients(r.URL.Query().Get("after"), limit+1)
	more := len(page) > limit
	if more {
		page = page[:limit]
	}
	out := struct {
		Total   int          `json:"total"`
		Clients []clientJSON `json:"clients"`
		Next    string       `json:"next,omitempty"`
	}{Total: total, Clients: make([]clientJSON, len(page))}
	for i, c := range page {
		out.Clients[i] = clientFrom(c)
	}
	if more {
		out.Next = page[len(page)-1].ClientID
	}
	writeJSON(w, out)
}

type subscriptionJSON struct {
	Filter            string `json:"filter"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local,omitempty"`
	RetainAsPublished bool   `json:"retain_as_published,omitempty"`
	RetainHandling    byte   `json:"retain_handling,omitempty"`
	SubscriptionID    uint32 `json:"subscription_id,omitempty"`
}

// GET /api/clients/{id}: one session with its subscriptions, the first
// maxClientFilters by filter; "subscriptions" counts them all.
func (h *Handler) client(w http.ResponseWriter, r *http.Request) {
	snap, ok := h.o.Server.Client(r.PathValue("id"), maxClientFilters)
	if !ok {
		writeError(w, http.StatusNotFound, "no such session")
		return
	}
	out := struct {
		clientJSON
		Filters          []subscriptionJSON `json:"filters"`
		FiltersTruncated bool               `json:"filters_truncated"`
	}{
		clientJSON:       clientFrom(snap.ClientSnapshot),
		Filters:          make([]subscriptionJSON, len(snap.Filters)),
		FiltersTruncated: len(snap.Filters) < snap.Subscriptions,
	}
	for i, f := range snap.Filters {
		out.Filters[i] = subscriptionJSON(f)
	}
	writeJSON(w, out)
}

// DELETE /api/clients/{id}: disconnect the client; 204 when a connection
// was closed, 404 when the client is not connected.
func (h *Handler) kick(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !h.o.Server.Kick(id) {
		writeError(w, http.StatusNotFound, "client not connected")
		return
	}
	h.log.Info("admin: client kicked", "client", id, "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

// topicsTTL is how long a topic ranking is reused. Ranking walks every
// subscription under the subscription index's read lock, which a
// SUBSCRIBE waiting for it turns into a pause of all routing: however
// many dashboards poll, the walk happens at most once per topicsTTL.
const topicsTTL = 5 * time.Second

// topicRanking is the maxTopicsLimit most subscribed filters, from which
// every smaller limit is a prefix, and the number of distinct filters.
type topicRanking struct {
	top      []broker.TopicCount
	distinct int
}

// GET /api/topics?limit=N: the most subscribed filters.
func (h *Handler) topics(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, defaultTopicsLimit, maxTopicsLimit)
	if !ok {
		return
	}
	rank := h.ranks.get()
	top := rank.top[:min(limit, len(rank.top))]
	type topicJSON struct {
		Filter      string `json:"filter"`
		Group       string `json:"group,omitempty"`
		Subscribers int    `json:"subscribers"`
	}
	out := struct {
		Distinct int         `json:"distinct"`
		Topics   []topicJSON `json:"topics"`
	}{Distinct: rank.distinct, Topics: make([]topicJSON, len(top))}
	for i, t := range top {
		out.Topics[i] = topicJSON(t)
	}
	writeJSON(w, out)
}

// retainedJSON is one retained message. Payload is the text when it is
// valid UTF-8, else base64 (PayloadEncoding says which).
type retainedJSON struct {
	Topic           string     `json:"topic"`
	QoS             byte       `json:"qos"`
	PayloadBytes    int        `json:"payload_bytes"`
	PayloadEncoding string     `json:"payload_encoding"`
	Payload         string     `json:"payload"`
	ContentType     string     `json:"content_type,omitempty"`
	Created         time.Time  `json:"created"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
}

// GET /api/retained?filter=F&limit=N: retained messages matching F
// (default "#", which like any wildcard filter leaves out $ topics), in
// topic order as long as their topics and payloads fit in retainedBudget.
func (h *Handler) retained(w http.ResponseWriter, r *http.Request) {
	limit, ok := limitParam(w, r, defaultRetainedLimit, maxRetainedLimit)
	if !ok {
		return
	}
	filter := r.URL.Query().Get("filter")
	if filter == "" {
		filter = "#"
	}
	// One more than asked tells whether the list was cut.
	msgs, err := h.o.Server.Retained(filter, limit+1)
	if err != nil {
		writeError(w, http.StatusBadRequest, "filter: "+err.Error())
		return
	}
	truncated := len(msgs) > limit
	if truncated {
		msgs = msgs[:limit]
	}
	for i, size := 0, 0; i < len(msgs); i++ {
		if size += len(msgs[i].Topic) + len(msgs[i].Payload); size > h.retainedBudget {
			msgs, truncated = msgs[:i], true
			break
		}
	}
	out := struct {
		Filter    string         `json:"filter"`
		Messages  []retainedJSON `json:"messages"`
		Truncated bool           `json:"truncated"`
	}{Filter: filter, Messages: make([]retainedJSON, len(msgs)), Truncated: truncated}
	for i, m := range msgs {
		j := retainedJSON{
			Topic:        m.Topic,
			QoS:          m.QoS,
			PayloadBytes: len(m.Payload),
			ContentType:  m.ContentType,
			Created:      m.Created,
		}
		if utf8.Valid(m.Payload) {
			j.PayloadEncoding, j.Payload = "utf8", string(m.Payload)
		} else {
			j.PayloadEncoding, j.Payload = "base64", base64.StdEncoding.EncodeToString(m.Payload)
		}
		if !m.ExpiresAt.IsZero() {
			t := m.ExpiresAt
			j.ExpiresAt = &t
		}
		out.Messages[i] = j
	}
	writeJSON(w, out)
}

// limitParam reads ?limit=, answering 400 itself when it is not a positive
// integer; values above max are capped.
func limitParam(w http.ResponseWriter, r *http.Request, def, max int) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		writeError(w, http.StatusBadRequest, "limit must be a positive integer")
		return 0, false
	}
	return min(n, max), true
}
