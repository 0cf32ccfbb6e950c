package observe

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/packet"
	"github.com/herald-mqtt/herald/store"
)

// storeStats is what a store exposes for metrics: store.Pebble has it,
// store.Memory does not.
type storeStats interface {
	Stats() store.Stats
}

// gaugeTTL is how long a walk over every session is reused. The dashboard
// polls every second and Prometheus scrapes every few seconds: both share
// one walk instead of each paying O(sessions).
const gaugeTTL = time.Second

// cache computes a value at most once per ttl.
type cache[T any] struct {
	compute func() T
	ttl     time.Duration

	mu sync.Mutex // held while computing, so concurrent readers wait for one computation
	at time.Time
	v  T
}

func (c *cache[T]) get() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.at.IsZero() || now.Sub(c.at) >= c.ttl {
		c.v = c.compute()
		c.at = now
	}
	return c.v
}

// RouteCounter is a broker.Hook that counts routed messages by QoS and
// origin. Register it in broker.Options.Hooks before broker.New and pass it
// in Options.Routed; it costs one atomic add per message.
type RouteCounter struct {
	n [2][3]atomic.Int64 // [origin][qos]; origin 0 = client, 1 = broker
}

// OnPublish implements broker.Hook.
func (rc *RouteCounter) OnPublish(info *broker.ClientInfo, m *broker.Message) {
	origin := 0
	if info == nil {
		origin = 1 // Server.Publish: $SYS, bridges, delayed wills
	}
	rc.n[origin][min(m.QoS, 2)].Add(1)
}

// Routed returns the messages routed at a QoS, from clients and from the
// broker itself.
func (rc *RouteCounter) Routed(qos byte) (fromClients, fromBroker int64) {
	q := min(qos, 2)
	return rc.n[0][q].Load(), rc.n[1][q].Load()
}

var originNames = [2]string{"client", "broker"}

// desc builds a herald_* descriptor.
func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("herald_"+name, help, labels, nil)
}

// Metric descriptors. docs/metrics.md lists the same names: keep them in
// step.
var (
	descBuildInfo        = desc("build_info", "Always 1; the version label is the broker version.", "version")
	descStartTime        = desc("start_time_seconds", "Unix time the broker was started.")
	descConnected        = desc("clients_connected", "MQTT clients connected now (CONNACK sent, connection open).")
	descAccepted         = desc("connections_accepted_total", "Network connections accepted since start, whether or not they completed CONNECT.")
	descListenerClients  = desc("listener_clients_connected", "Online sessions by the listener their connection arrived on.", "listener")
	descSessions         = desc("sessions", "Sessions known to the broker, by state: online (a connection attached) or offline (kept for their expiry interval).", "state")
	descMessagesIn       = desc("messages_received_total", "PUBLISH packets received from clients, including ones then refused.")
	descMessagesOut      = desc("messages_sent_total", "PUBLISH packets sent to clients, redeliveries included.")
	descRouted           = desc("messages_routed_total", "Application messages routed to subscribers, by QoS as published and by origin: client (PUBLISH and wills of connections) or broker ($SYS, bridges, delayed wills).", "qos", "origin")
	descBytesIn          = desc("bytes_received_total", "Bytes read from client connections (MQTT frames, all packet types).")
	descBytesOut         = desc("bytes_sent_total", "Bytes written to client connections (MQTT frames, all packet types).")
	descDropped          = desc("messages_dropped_total", "Deliveries not made, by cause: qos0 (QoS 0 to an offline session, or to a slow consumer whose unwritten bytes are over the limit), queue_full (QoS 1/2 refused by a full session queue), too_large (above the client's Maximum Packet Size), expired (Message Expiry passed before delivery), acl (PUBLISH refused by ACL, or to $SYS).", "cause")
	descQueued           = desc("queued_messages", "QoS 1/2 messages waiting in session queues (window full or client offline), summed over sessions.")
	descQueuedBytes      = desc("queued_bytes", "Bytes (topic, payload, properties) of queued_messages.")
	descQueuedMax        = desc("queued_messages_max", "Length of the longest session queue.")
	descInflight         = desc("inflight_messages", "Outbound QoS 1/2 messages sent and not yet acknowledged, summed over sessions.")
	descIncomingQoS2     = desc("incoming_qos2_pending", "Inbound QoS 2 packet ids awaiting PUBREL, summed over sessions.")
	descSubscriptions    = desc("subscriptions", "Subscriptions, ordinary and shared.")
	descRetained         = desc("retained_messages", "Retained messages.")
	descLimitRefusals    = desc("limit_refusals_total", "Times an overload limit refused a client: max_connections, connect_rate and flapping refuse a CONNECT; publish_rate refuses a PUBLISH over the per-client rate or bandwidth; max_subscriptions refuses a SUBSCRIBE filter beyond the per-client cap.", "limit")
	descPaused           = desc("publishers_paused_total", "Times a publishing client stopped being read because queued bytes exceeded the memory budget.")
	descBudgetUsed       = desc("memory_budget_used_bytes", "Bytes (topic, payload, properties) queued for sessions node-wide, as the memory budget counts them.")
	descBudget           = desc("memory_budget_bytes", "The memory budget (limits.memory_budget); 0 means none.")
	descMessagesOutQoS   = desc("messages_sent_by_qos_total", "PUBLISH packets sent to clients, by the QoS they were sent at.", "qos")
	descConnectsRefused  = desc("connects_refused_total", "CONNECTs refused, by the v5 reason code of the CONNACK (3.1.1 clients get the mapped return code).", "reason")
	descDisconnects      = desc("disconnects_total", "Connections of connected clients that ended, by who ended them: client (sent DISCONNECT), broker (with the v5 reason code in reason; 3.1.1 clients are closed for the same reasons without a DISCONNECT), lost (closed with no DISCONNECT either way).", "by", "reason")
	descListenerRefused  = desc("listener_connections_refused_total", "Network connections a listener refused because it was at its max_connections, by listener.", "listener")
	descStoreCommit      = desc("store_commit_duration_seconds", "Time spent committing write batches to the store (count and sum; mean = rate(sum)/rate(count)).")
	descStoreSyncCommits = desc("store_sync_commits_total", "Store commits that waited for durability (fsync).")
	descStoreWALSync     = desc("store_wal_sync_duration_seconds", "Time spent in fsyncs of the store's write-ahead log (count and sum); sync_commits / count is the group-commit factor.")
)

// Collector is a prometheus.Collector that reads the broker's counters at
// scrape time: nothing is added to the message path.
type Collector struct {
	srv    *broker.Server
	store  storeStats    // nil when the store keeps no stats
	routed *RouteCounter // nil when not registered
	gauges *cache[broker.Gauges]

	listenerRefusals func() map[string]uint64 // nil when not wired
}

// NewCollector returns a Collector for srv. st and routed may be nil.
func NewCollector(srv *broker.Server, st store.Store, routed *RouteCounter) *Collector {
	return newCollector(srv, st, routed, &cache[broker.Gauges]{compute: srv.Gauges, ttl: gaugeTTL})
}

func newCollector(srv *broker.Server, st store.Store, routed *RouteCounter, gc *cache[broker.Gauges]) *Collector {
	c := &Collector{srv: srv, routed: routed, gauges: gc}
	if ss, ok := st.(storeStats); ok {
		c.store = ss
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descBuildInfo, descStartTime, descConnected, descAccepted, descListenerClients,
		descSessions, descMessagesIn, descMessagesOut, descBytesIn, descBytesOut,
		descMessagesOutQoS, descConnectsRefused, descDisconnects, descListenerRefused,
		descDropped, descQueued, descQueuedBytes, descQueuedMax, descInflight,
		descIncomingQoS2, descSubscriptions, descRetained,
		descLimitRefusals, descPaused, descBudgetUsed, descBudget,
	} {
		ch <- d
	}
	if c.routed != nil {
		ch <- descRouted
	}
	if c.store != nil {
		ch <- descStoreCommit
		ch <- descStoreSyncCommits
		ch <- descStoreWALSync
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	st := c.srv.Stats()
	gauge(descBuildInfo, 1, broker.Version)
	gauge(descStartTime, float64(c.srv.Started().UnixNano())/1e9)
	gauge(descConnected, float64(st.Connected.Load()))
	counter(descAccepted, st.Connections.Load())
	counter(descMessagesIn, st.MessagesIn.Load())
	counter(descMessagesOut, st.MessagesOut.Load())
	counter(descBytesIn, st.BytesIn.Load())
	counter(descBytesOut, st.BytesOut.Load())
	for _, d := range st.Drops() {
		counter(descDropped, d.N, d.Cause)
	}
	for _, l := range limitRefusals(c.srv.LimitStats()) {
		counter(descLimitRefusals, l.n, l.cause)
	}
	for q := range st.MessagesOutQoS {
		counter(descMessagesOutQoS, st.MessagesOutQoS[q].Load(), strconv.Itoa(q))
	}
	for code := range st.ConnectsRefused {
		if n := st.ConnectsRefused[code].Load(); n > 0 {
			counter(descConnectsRefused, n, reasonName(packet.ReasonCode(code)))
		}
	}
	counter(descDisconnects, st.DisconnectsByClient.Load(), "client", "")
	counter(descDisconnects, st.ConnectionsLost.Load(), "lost", "")
	for code := range st.DisconnectsByBroker {
		if n := st.DisconnectsByBroker[code].Load(); n > 0 {
			counter(descDisconnects, n, "broker", reasonName(packet.ReasonCode(code)))
		}
	}
	if c.listenerRefusals != nil {
		for l, n := range c.listenerRefusals() {
			counter(descListenerRefused, int64(n), l)
		}
	}
	counter(descPaused, st.PausedPublishers.Load())
	gauge(descBudgetUsed, float64(st.QueuedBytes.Load()))
	gauge(descBudget, float64(c.srv.MemoryBudget()))
	if c.routed != nil {
		for q := range byte(3) {
			client, brk := c.routed.Routed(q)
			qs := strconv.Itoa(int(q))
			counter(descRouted, client, qs, originNames[0])
			counter(descRouted, brk, qs, originNames[1])
		}
	}

	g := c.gauges.get()
	gauge(descSessions, float64(g.Online), "online")
	gauge(descSessions, float64(g.Sessions-g.Online), "offline")
	for l, n := range g.OnlineByListener {
		gauge(descListenerClients, float64(n), l)
	}
	gauge(descQueued, float64(g.Queued))
	gauge(descQueuedBytes, float64(g.QueuedBytes))
	gauge(descQueuedMax, float64(g.MaxQueued))
	gauge(descInflight, float64(g.Inflight))
	gauge(descIncomingQoS2, float64(g.IncomingQoS2))
	gauge(descSubscriptions, float64(g.Subscriptions))
	gauge(descRetained, float64(g.Retained))

	if c.store != nil {
		s := c.store.Stats()
		ch <- prometheus.MustNewConstSummary(descStoreCommit, s.Commits, s.CommitLatency.Seconds(), nil)
		ch <- prometheus.MustNewConstMetric(descStoreSyncCommits, prometheus.CounterValue, float64(s.SyncCommits))
		ch <- prometheus.MustNewConstSummary(descStoreWALSync, s.WALSyncs, s.WALSyncLatency.Seconds(), nil)
	}
}

// drop is one refusal cause with its count.
type drop struct {
	cause string
	n     int64
}

// limitRefusals reads the overload limit counters in a fixed order.
func limitRefusals(ls *broker.LimitStats) [5]drop {
	return [5]drop{
		{"max_connections", ls.MaxConnections.Load()},
		{"connect_rate", ls.ConnectRate.Load()},
		{"flapping", ls.Flapping.Load()},
		{"publish_rate", ls.PublishRate.Load()},
		{"max_subscriptions", ls.MaxSubscriptions.Load()},
	}
}

// newRegistry returns a registry with the broker collector and the Go
// runtime and process collectors.
func newRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// reasonNames label the reason codes the broker sends.
var reasonNames = map[packet.ReasonCode]string{
	packet.UnspecifiedError:            "unspecified_error",
	packet.MalformedPacket:             "malformed_packet",
	packet.ProtocolError:               "protocol_error",
	packet.ImplementationSpecific:      "implementation_specific",
	packet.UnsupportedProtocolVersion:  "unsupported_protocol_version",
	packet.ClientIDNotValid:            "client_id_not_valid",
	packet.BadUsernameOrPassword:       "bad_username_or_password",
	packet.NotAuthorized:               "not_authorized",
	packet.ServerUnavailable:           "server_unavailable",
	packet.ServerBusy:                  "server_busy",
	packet.Banned:                      "banned",
	packet.ServerShuttingDown:          "server_shutting_down",
	packet.BadAuthenticationMethod:     "bad_authentication_method",
	packet.KeepAliveTimeout:            "keep_alive_timeout",
	packet.SessionTakenOver:            "session_taken_over",
	packet.TopicFilterInvalid:          "topic_filter_invalid",
	packet.TopicNameInvalid:            "topic_name_invalid",
	packet.ReceiveMaximumExceeded:      "receive_maximum_exceeded",
	packet.TopicAliasInvalid:           "topic_alias_invalid",
	packet.PacketTooLarge:              "packet_too_large",
	packet.MessageRateTooHigh:          "message_rate_too_high",
	packet.QuotaExceeded:               "quota_exceeded",
	packet.AdministrativeAction:        "administrative_action",
	packet.PayloadFormatInvalid:        "payload_format_invalid",
	packet.RetainNotSupported:          "retain_not_supported",
	packet.QoSNotSupported:             "qos_not_supported",
	packet.SharedSubNotSupported:       "shared_subscriptions_not_supported",
	packet.ConnectionRateExceeded:      "connection_rate_exceeded",
	packet.SubscriptionIDsNotSupported: "subscription_identifiers_not_supported",
	packet.WildcardSubNotSupported:     "wildcard_subscriptions_not_supported",
}

// reasonName is the metric label of a reason code.
func reasonName(rc packet.ReasonCode) string {
	if n, ok := reasonNames[rc]; ok {
		return n
	}
	return fmt.Sprintf("0x%02x", byte(rc))
}
