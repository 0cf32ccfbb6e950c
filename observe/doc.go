// Package observe is Herald's window for operators: Prometheus metrics,
// health and readiness probes, an admin HTTP API and a live dashboard page,
// all served by one HTTP endpoint (config http.listen).
//
// It reads the broker through broker.Server's introspection methods and
// counters and adds nothing to the message path except, optionally, the
// RouteCounter hook (one atomic add per routed message). Values that need
// a walk over every session (queue depths, sessions online and offline)
// are computed at most once a second and shared between /metrics and
// /api/stats; the topic ranking of /api/topics, a walk over every
// subscription, at most once every five seconds.
//
// # Security
//
// /metrics, /healthz, /readyz and the dashboard's static files are open:
// they reveal counts, not client ids or topics. /api/ and /debug/pprof/
// require "Authorization: Bearer <http.admin_token>". With no token
// configured (allowed only when http.listen is a loopback address), they
// answer only requests from a loopback address whose Host header also
// names a loopback host, so that a web page open in the operator's browser
// cannot reach them through DNS rebinding, and that no other page sent
// (Sec-Fetch-Site, Origin). The dashboard page asks for the token when the
// API answers 401 and keeps it in the tab's sessionStorage.
//
// # Metrics
//
// All broker metrics are named herald_*; docs/metrics.md is the reference
// with example queries. Besides them the registry holds the Go runtime
// (go_*) and process (process_*) collectors.
//
//	herald_build_info{version}                    gauge    1, labelled with the version
//	herald_start_time_seconds                     gauge    Unix time the broker started
//	herald_clients_connected                      gauge    clients connected now
//	herald_connections_accepted_total             counter  connections accepted
//	herald_listener_clients_connected{listener}   gauge    online sessions by listener
//	herald_sessions{state=online|offline}         gauge    sessions
//	herald_messages_received_total                counter  PUBLISH packets received
//	herald_messages_sent_total                    counter  PUBLISH packets sent
//	herald_messages_sent_by_qos_total{qos}        counter  the same by the QoS they were sent at
//	herald_messages_routed_total{qos,origin}      counter  messages routed (with RouteCounter)
//	herald_bytes_received_total                   counter  bytes read from clients
//	herald_bytes_sent_total                       counter  bytes written to clients
//	herald_messages_dropped_total{cause}          counter  qos0, queue_full, too_large, expired, acl
//	herald_queued_messages                        gauge    QoS 1/2 messages queued, all sessions
//	herald_queued_bytes                           gauge    their bytes (topic, payload, properties)
//	herald_queued_messages_max                    gauge    longest session queue
//	herald_inflight_messages                      gauge    outbound QoS 1/2 awaiting acknowledgement
//	herald_incoming_qos2_pending                  gauge    inbound QoS 2 ids awaiting PUBREL
//	herald_subscriptions                          gauge    subscriptions
//	herald_retained_messages                      gauge    retained messages
//	herald_connects_refused_total{reason}         counter  CONNECTs refused, by reason code
//	herald_disconnects_total{by,reason}           counter  connections ended: client, broker (reason), lost
//	herald_limit_refusals_total{limit}            counter  max_connections, connect_rate, flapping, publish_rate, max_subscriptions
//	herald_listener_connections_refused_total     counter  by listener: refused at its max_connections
//	herald_publishers_paused_total                counter  publishers paused by the memory budget
//	herald_memory_budget_used_bytes               gauge    queued bytes the budget counts
//	herald_memory_budget_bytes                    gauge    the budget; 0 = none
//	herald_store_commit_duration_seconds          summary  store batch commits (Pebble only)
//	herald_store_sync_commits_total               counter  commits that waited for fsync (Pebble only)
//	herald_store_wal_sync_duration_seconds        summary  WAL fsyncs (Pebble only)
package observe
