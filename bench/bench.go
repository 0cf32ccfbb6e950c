// Package bench is herald bench, the load generator that proves Herald's
// numbers: scenarios named after the traffic they model, HDR histograms of
// CONNACK, SUBACK, delivery (from the time each message was due) and
// acknowledgement latency, exact delivery accounting per publisher, and a
// pass/fail verdict.
//
// Run executes one scenario against any MQTT broker and returns a Result.
// The load itself is produced by workers: one in this process by default,
// K child processes with Options.Procs, or remote `herald bench worker`
// processes with Options.Workers. The director (Run) coordinates their
// phases (connect, publish, drain, stop) over a JSON-lines protocol and
// merges their histograms and counters exactly.
package bench

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/herald-mqtt/herald/bench/client"
)

// Scenario names.
const (
	Conn    = "conn"    // open connections at a rate and hold them
	Fanout  = "fanout"  // few publishers, one topic, many subscribers
	Fanin   = "fanin"   // many publishers, one subscriber or a shared group
	Unicast = "unicast" // a topic per user; publishers address users in turn
	Churn   = "churn"   // connect/disconnect storm while others publish
	Chat    = "chat"    // rooms of k members, plus a private topic each
)

// Scenarios lists the scenario names in the order the usage shows them.
var Scenarios = []string{Conn, Fanout, Fanin, Unicast, Churn, Chat}

// Scenario is what traffic to model. Zero fields take the scenario's
// default (see Defaults).
type Scenario struct {
	Name        string `json:"name"`
	Clients     int    `json:"clients,omitempty"`     // conn: connections to open
	Subscribers int    `json:"subscribers,omitempty"` // fanout, churn: subscribers; fanin: consumers; unicast, chat: users
	Publishers  int    `json:"publishers,omitempty"`  // fanout, fanin, unicast, churn
	Shared      bool   `json:"shared,omitempty"`      // fanin: consumers form one $share group
	RoomSize    int    `json:"room_size,omitempty"`   // chat: members per room
	// PrivateEvery makes every n-th chat message go to another member's
	// private topic instead of the room (chat; 0 means 5).
	PrivateEvery int     `json:"private_every,omitempty"`
	ChurnRate    float64 `json:"churn_rate,omitempty"` // churn: connect+disconnect cycles per second
	// Subscribe makes each conn client subscribe to a topic of its own
	// (P/conn/i) before it holds, so that an idle client costs the broker
	// what a real device does: a session with one subscription.
	Subscribe bool `json:"subscribe,omitempty"`
}

// Options is how to run a scenario: where, with which protocol, how fast
// and for how long, and the pass/fail thresholds.
type Options struct {
	Targets     []string      `json:"targets"`            // round-robin, see client.ParseTarget
	TLS         bool          `json:"tls,omitempty"`      // plain host:port targets use TLS
	Insecure    bool          `json:"insecure,omitempty"` // skip TLS certificate verification
	MQTT        int           `json:"mqtt"`               // 3 (3.1.1) or 5
	QoS         byte          `json:"qos"`                // for publishes and subscriptions
	Size        int           `json:"size"`               // payload bytes (at least the 24-byte header)
	Rate        float64       `json:"rate"`               // messages per second per publisher
	Count       int           `json:"count,omitempty"`    // messages per publisher; 0 = until Duration
	Duration    time.Duration `json:"duration,omitempty"` // publish (or hold) phase; 0 with Count = until Count
	ConnectRate float64       `json:"connect_rate"`       // new connections per second, all workers together
	// ConnectWindow bounds the connection attempts between dial and
	// CONNACK at once, all workers together (0 = no bound). A storm at an
	// unbounded rate otherwise queues thousands of handshakes inside the
	// client itself, and CONNACK latency then measures the client's
	// backlog (Little's law), not the broker. Each worker process takes
	// its share, so it must be at least the number of processes.
	ConnectWindow int      `json:"connect_window,omitempty"`
	KeepAlive     int      `json:"keepalive"`            // seconds
	Username      string   `json:"username,omitempty"`   //
	Password      string   `json:"password,omitempty"`   //
	ClientIDs     string   `json:"client_prefix"`        // client id prefix
	Topics        string   `json:"topic_prefix"`         // topic prefix
	Inflight      int      `json:"inflight"`             // QoS 1/2 publishes in flight per publisher
	SourceIPs     []string `json:"source_ips,omitempty"` // bind client sockets round-robin over these
	// ReadLoop is how clients' read sides run: "epoll" (the default) on a
	// few event loops per process for plain TCP targets (TLS and
	// WebSocket clients always get a goroutine each), or "goroutine", one
	// per client. A goroutine per client costs the bench about as much
	// CPU per message as the broker it measures spends.
	ReadLoop string `json:"read_loop,omitempty"`

	Procs   int      `json:"procs,omitempty"`   // local worker processes (1 = in this process)
	Workers []string `json:"workers,omitempty"` // remote workers host:port

	ConnectTimeout time.Duration `json:"connect_timeout"` // per connection (dial to CONNACK)
	// Drain is the longest wait for deliveries after publishing. What has
	// not arrived when it ends counts as lost, or as cut off if
	// deliveries were still arriving in its last second.
	Drain   time.Duration `json:"drain"`
	Timeout time.Duration `json:"timeout"` // hard bound on the whole run

	Thresholds Thresholds `json:"thresholds"`

	// DropEvery makes subscribers discard every n-th message they receive
	// as if it were lost: for tests that prove a lossy run FAILs.
	DropEvery int `json:"drop_every,omitempty"`

	// WorkerCommand is the command that starts a local worker speaking the
	// protocol on stdin/stdout; nil means this executable with
	// "bench worker --stdio". Tests point it at their own binary.
	WorkerCommand []string `json:"-"`
	// OnSecond, when set, is called by Run once per second of the run with
	// the second just merged and the running totals (for progress lines and
	// metrics endpoints). It must not block.
	OnSecond func(s Second, c Counters) `json:"-"`
}

// The values of Options.ReadLoop.
const (
	ReadLoopEpoll     = "epoll"
	ReadLoopGoroutine = "goroutine"
)

// Thresholds are the pass/fail criteria. Defaults follow the published
// fan-out test (see DefaultThresholds).
type Thresholds struct {
	// MinConnections is how many of the scenario's lasting clients must
	// connect; 0 means all of them.
	MinConnections int `json:"min_connections"`
	// MaxConnectErrors bounds failed connection attempts (all clients,
	// churners included).
	MaxConnectErrors int64 `json:"max_connect_errors"`
	// MaxDisconnects bounds connections lost before the end of the run.
	MaxDisconnects int64         `json:"max_disconnects"`
	MaxConnackMean time.Duration `json:"max_connack_mean"`
	MaxLatencyMean time.Duration `json:"max_latency_mean"`
	// Latency is "rising" when the mean of the per-second mean latencies
	// over the last third of the publish phase exceeds the first third's
	// by more than MaxLatencyGrowth times AND by more than
	// LatencyGrowthFloor: the floor keeps a rise from 1 ms to 3 ms from
	// failing a run. MaxLatencyGrowth <= 0 disables the check.
	MaxLatencyGrowth   float64       `json:"max_latency_growth"`
	LatencyGrowthFloor time.Duration `json:"latency_growth_floor"`
	// MinRateKept is the share of the messages the rate called for
	// (Scheduled) that the publishers must have sent: a publisher held
	// back by the broker (a full inflight window, TCP back-pressure)
	// offers less than the step claims. 0 disables the check.
	MinRateKept float64 `json:"min_rate_kept"`
	// MaxLossQoS0 is the largest loss, in percent of expected deliveries,
	// accepted at QoS 0; negative means QoS 0 loss is only reported.
	// At QoS 1 and 2 no loss is accepted, and at QoS 2 no duplicate.
	MaxLossQoS0 float64 `json:"max_loss_qos0"`
}

// DefaultThresholds returns the default pass/fail criteria.
func DefaultThresholds() Thresholds {
	return Thresholds{
		MaxConnackMean:     100 * time.Millisecond,
		MaxLatencyMean:     500 * time.Millisecond,
		MaxLatencyGrowth:   2,
		LatencyGrowthFloor: 50 * time.Millisecond,
		MinRateKept:        0.99,
		MaxLossQoS0:        -1,
	}
}

// DefaultOptions returns Options with every default filled in.
func DefaultOptions() Options {
	return Options{
		Targets:        []string{"127.0.0.1:1883"},
		MQTT:           3,
		Size:           64,
		Rate:           10,
		ConnectRate:    1000,
		KeepAlive:      60,
		Inflight:       32,
		Procs:          1,
		ConnectTimeout: 10 * time.Second,
		Drain:          5 * time.Second,
		Thresholds:     DefaultThresholds(),
	}
}

// Defaults fills the scenario's zero fields with its defaults.
func (s Scenario) Defaults() Scenario {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	switch s.Name {
	case Conn:
		def(&s.Clients, 1000)
	case Fanout:
		def(&s.Subscribers, 1000)
		def(&s.Publishers, 1)
	case Fanin:
		def(&s.Subscribers, 1)
		def(&s.Publishers, 100)
	case Unicast:
		def(&s.Subscribers, 1000)
		def(&s.Publishers, 1)
	case Churn:
		def(&s.Subscribers, 100)
		def(&s.Publishers, 1)
		if s.ChurnRate == 0 {
			s.ChurnRate = 100
		}
	case Chat:
		def(&s.Subscribers, 100)
		def(&s.RoomSize, 10)
		def(&s.PrivateEvery, 5)
	}
	return s
}

// payloadHeader is the size of the bench's payload header (see payload.go).
const payloadHeader = 24

// validate checks s and o after defaults and fills what depends on both.
func validate(s Scenario, o *Options) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	known := false
	for _, n := range Scenarios {
		known = known || n == s.Name
	}
	if !known {
		bad("unknown scenario %q (want one of %s)", s.Name, strings.Join(Scenarios, ", "))
	}
	if s.Clients < 0 || s.Subscribers < 0 || s.Publishers < 0 || s.RoomSize < 0 || s.ChurnRate < 0 {
		bad("client counts and rates must not be negative")
	}
	if s.Name == Chat && s.RoomSize < 2 {
		bad("--room-size must be at least 2")
	}
	if len(o.Targets) == 0 {
		bad("no --target")
	}
	for _, t := range o.Targets {
		if _, err := client.ParseTarget(t, o.TLS); err != nil {
			bad("%v", err)
		}
	}
	if o.MQTT != 3 && o.MQTT != 5 {
		bad("--mqtt must be 3 or 5, not %d", o.MQTT)
	}
	if o.QoS > 2 {
		bad("--qos must be 0, 1 or 2, not %d", o.QoS)
	}
	if o.Size < payloadHeader {
		o.Size = payloadHeader
	}
	if o.Size > 1<<20-1024 {
		bad("--size %d is over the bench's 1 MiB packet limit", o.Size)
	}
	if o.Rate <= 0 {
		bad("--rate must be positive")
	}
	if o.ConnectRate <= 0 {
		bad("--connect-rate must be positive")
	}
	if o.ConnectWindow < 0 {
		bad("--connect-window must not be negative (0 = no bound)")
	}
	switch o.ReadLoop {
	case "":
		o.ReadLoop = ReadLoopEpoll
	case ReadLoopEpoll, ReadLoopGoroutine:
	default:
		bad("--read-loop %q: want %s or %s", o.ReadLoop, ReadLoopEpoll, ReadLoopGoroutine)
	}
	if o.Count < 0 || o.Duration < 0 || o.KeepAlive < 0 || o.KeepAlive > 65535 {
		bad("--count, --duration and --keepalive must not be negative (keepalive at most 65535)")
	}
	if o.Count == 0 && o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Inflight < 1 || o.Inflight > 65535 {
		bad("--inflight must be 1..65535")
	}
	if o.Procs < 1 {
		o.Procs = 1
	}
	if o.Procs > 1 && len(o.Workers) > 0 {
		bad("--procs and --workers are exclusive: remote workers are the processes")
	}
	if n := max(o.Procs, len(o.Workers)); o.ConnectWindow > 0 && o.ConnectWindow < n {
		// Each worker needs a place of its own, so the bound would be n.
		bad("--connect-window %d is below the %d worker processes: each takes at least one place", o.ConnectWindow, n)
	}
	if _, err := parseSourceIPs(o.SourceIPs); err != nil {
		bad("%v", err)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	return errors.Join(errs...)
}

// parseSourceIPs expands "a.b.c.d", "a.b.c.d-a.b.c.e" and comma lists.
func parseSourceIPs(specs []string) ([]net.IP, error) {
	var ips []net.IP
	for _, spec := range specs {
		for _, part := range strings.Split(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			from, to, isRange := strings.Cut(part, "-")
			a := net.ParseIP(strings.TrimSpace(from)).To4()
			if a == nil {
				return nil, fmt.Errorf("source IP %q: want IPv4 or an IPv4 range a-b", part)
			}
			if !isRange {
				ips = append(ips, a)
				continue
			}
			b := net.ParseIP(strings.TrimSpace(to)).To4()
			if b == nil {
				return nil, fmt.Errorf("source IP range %q: bad end", part)
			}
			lo, hi := ipUint(a), ipUint(b)
			if hi < lo || hi-lo > 1<<16 {
				return nil, fmt.Errorf("source IP range %q: empty or over 65536 addresses", part)
			}
			for v := lo; v <= hi; v++ {
				ips = append(ips, net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4())
			}
		}
	}
	return ips, nil
}

func ipUint(ip net.IP) uint32 {
	return uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
}
