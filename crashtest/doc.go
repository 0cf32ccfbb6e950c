// Package crashtest proves that Herald's durable state survives a crash:
// its tests run the real `herald serve` binary on a data directory, kill
// it with SIGKILL in the middle of a stream of QoS 1 and QoS 2 messages,
// restart it on the same directory and check with third-party MQTT clients
// (paho.golang for MQTT 5, paho.mqtt.golang for 3.1.1) and raw sockets that
// every acknowledged message is delivered, QoS 2 exactly once.
//
// The package also measures what durability costs: restart time with 100k
// stored messages (HERALD_BIG=1) and QoS 1 publish throughput with the
// Pebble store against the in-memory one (BenchmarkQoS1Publish). The
// figures are recorded in docs/benchmarks.md.
package crashtest
