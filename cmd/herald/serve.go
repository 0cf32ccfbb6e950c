package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/herald-mqtt/herald/auth"
	"github.com/herald-mqtt/herald/broker"
	"github.com/herald-mqtt/herald/config"
	"github.com/herald-mqtt/herald/store"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// override sets *field to v if the flag name was given on the command
// line: a flag left out keeps the value from the file or environment.
func override[T any](given map[string]bool, name string, field *T, v T) {
	if given[name] {
		*field = v
	}
}

// runServe is `herald serve`: load the configuration, apply flag
// overrides, open the store, start the listeners, and stop cleanly on
// SIGINT/SIGTERM.
func runServe(args []string) int {
	// Caught from the start: Go's default for SIGHUP is to exit, and a
	// reload sent while the store is recovered would kill the broker. One
	// that arrives before the node runs is served once it does.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var (
		cfgPath     = fs.String("config", "", "YAML config file (see herald.example.yaml); default $HERALD_CONFIG")
		checkOnly   = fs.Bool("check-config", false, "validate the configuration and exit")
		listen      = fs.String("listen", "", "MQTT TCP listen address (replaces the configured listeners' first tcp address)")
		dataDir     = fs.String("data", "", "directory of the durable store (default ./data)")
		storeKind   = fs.String("store", "", "storage engine: pebble or memory")
		logLevel    = fs.String("log-level", "", "debug, info, warn or error")
		logFormat   = fs.String("log-format", "", "text or json")
		maxPacket   = fs.String("max-packet-size", "", "largest packet accepted, e.g. 1MiB")
		recvMax     = fs.Int("receive-maximum", 0, "inbound QoS 1/2 publishes a client may have unacknowledged")
		maxInflight = fs.Int("max-inflight", 0, "outbound QoS 1/2 publishes in flight per client")
		maxQueued   = fs.Int("max-queued-messages", 0, "QoS 1/2 messages queued per session")
		maxKA       = fs.Int("max-keepalive", -1, "longest keep alive a client may use, seconds (0: clients choose)")
		serverKA    = fs.Int("server-keepalive", -1, "keep alive imposed on MQTT 5 clients, seconds (0: none)")
		aliasMax    = fs.Int("topic-alias-maximum", -1, "topic aliases a client may use towards the broker")
		sysInterval = fs.Duration("sys-interval", -1, "$SYS publish period (0 disables)")
		aclDeny     stringList
	)
	fs.Var(&aclDeny, "acl-deny", "deny publish and subscribe on this topic filter (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}

	path := *cfgPath
	if path == "" {
		path = os.Getenv("HERALD_CONFIG") // the one variable that names the file rather than a key
	}
	cfg, err := config.LoadWithEnv(path, os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "herald: %v\n", err)
		return 1
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["listen"] {
		replaced := false
		for i := range cfg.Listeners {
			if cfg.Listeners[i].Type == config.ListenerTCP {
				cfg.Listeners[i].Address = *listen
				cfg.Listeners[i].Name = "tcp://" + *listen
				replaced = true
				break
			}
		}
		if !replaced {
			cfg.Listeners = append(cfg.Listeners, config.Listener{Type: config.ListenerTCP, Address: *listen, Name: "tcp://" + *listen})
		}
	}
	override(set, "data", &cfg.DataDir, *dataDir)
	override(set, "store", &cfg.Store, *storeKind)
	override(set, "log-level", &cfg.Log.Level, *logLevel)
	override(set, "log-format", &cfg.Log.Format, *logFormat)
	if set["max-packet-size"] {
		n, err := config.ParseByteSize(*maxPacket)
		if err != nil {
			fmt.Fprintf(os.Stderr, "herald: --max-packet-size: %v\n", err)
			return 1
		}
		cfg.MQTT.MaxPacketSize = n
	}
	override(set, "receive-maximum", &cfg.MQTT.ReceiveMaximum, *recvMax)
	override(set, "max-inflight", &cfg.MQTT.MaxInflight, *maxInflight)
	override(set, "max-queued-messages", &cfg.MQTT.MaxQueuedMessages, *maxQueued)
	override(set, "max-keepalive", &cfg.MQTT.MaxKeepAlive, *maxKA)
	override(set, "server-keepalive", &cfg.MQTT.ServerKeepAlive, *serverKA)
	override(set, "topic-alias-maximum", &cfg.MQTT.TopicAliasMaximum, *aliasMax)
	override(set, "sys-interval", &cfg.MQTT.SysInterval, config.Duration(*sysInterval))
	cfg.ACL.Rules = withFlagDenies(cfg.ACL.Rules, aclDeny)
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "herald: invalid configuration (after flags):\n%v\n", err)
		return 1
	}
	if err := notBuilt(cfg); err != nil {
		fmt.Fprintf(os.Stderr, "herald: %v\n", err)
		return 1
	}
	if *checkOnly {
		if _, err := auth.FromConfig(cfg, nil); err != nil {
			fmt.Fprintf(os.Stderr, "herald: invalid configuration: %v\n", err)
			return 1
		}
		fmt.Println("configuration ok")
		return 0
	}

	log := newLogger(cfg.Log)
	n, err := startNode(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		fmt.Fprintf(os.Stderr, "herald: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		for range hup {
			if err := n.auth.Reload(); err != nil {
				log.Error("SIGHUP reload failed; the previous contents stay in force", "err", err)
			} else {
				log.Info("SIGHUP: reloaded the password, ACL and key files")
			}
		}
	}()
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("shutdown", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// brokerOptions maps the configuration onto the broker's options.
func brokerOptions(cfg *config.Config, log *slog.Logger) broker.Options {
	m := cfg.MQTT
	o := broker.Options{
		MaxPacketSize:     uint32(m.MaxPacketSize),
		ReceiveMaximum:    uint16(m.ReceiveMaximum),
		MaxInflight:       uint16(m.MaxInflight),
		MaxQueuedMessages: m.MaxQueuedMessages,
		MaxQueuedBytes:    int(m.MaxQueuedBytes),
		MaxKeepAlive:      uint16(m.MaxKeepAlive),
		ServerKeepAlive:   uint16(m.ServerKeepAlive),
		TopicAliasMaximum: uint16(m.TopicAliasMaximum),
		MaxSessionExpiry:  uint32(time.Duration(m.MaxSessionExpiry) / time.Second),
		MaxTopicLevels:    m.MaxTopicLevels,
		MaxClientIDLength: m.MaxClientIDLength,
		ConnectTimeout:    time.Duration(m.ConnectTimeout),
		MaximumQoS:        byte(m.MaximumQoS),
		RetainAvailable:   m.RetainAvailable,
		WildcardSubs:      m.WildcardSubscriptions,
		SharedSubs:        m.SharedSubscriptions,
		SubIDs:            m.SubscriptionIdentifiers,
		SysInterval:       time.Duration(m.SysInterval),
		MaxSubsPerClient:  cfg.Limits.MaxSubscriptionsPerClient,
		Limits: broker.Limits{
			MaxConnections:   cfg.Limits.MaxConnections,
			ConnectRate:      cfg.Limits.ConnectRate,
			ConnectBurst:     cfg.Limits.ConnectBurst,
			PublishRate:      cfg.Limits.PublishRate,
			PublishBandwidth: int64(cfg.Limits.PublishBandwidth),
			MemoryBudget:     int64(cfg.Limits.MemoryBudget),
		},
		Logger: log,
	}
	if f := cfg.Limits.FlapDetection; f.Enabled {
		o.Limits.FlapMaxConnects = f.MaxConnects
		o.Limits.FlapWindow = time.Duration(f.Window)
		o.Limits.FlapBan = time.Duration(f.Ban)
	}
	if m.SysInterval == 0 {
		o.SysInterval = 0
	}
	// Auth and ACL come from auth.FromConfig (startNode), which reads files.
	return o
}

// openStore opens the configured store; a directory that cannot be used
// is an error, never a silently empty broker.
func openStore(cfg *config.Config) (store.Store, error) {
	if cfg.Store == config.StoreMemory {
		return store.NewMemory(), nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	return store.OpenPebble(cfg.DataDir, store.PebbleOptions{})
}

// withFlagDenies puts a rule denying publish and subscribe on each
// --acl-deny filter before rules: the first matching rule decides, so a
// deny behind the configured allows would never apply.
func withFlagDenies(rules []config.ACLRule, filters []string) []config.ACLRule {
	if len(filters) == 0 {
		return rules
	}
	out := make([]config.ACLRule, 0, len(filters)+len(rules))
	for _, f := range filters {
		out = append(out, config.ACLRule{Action: config.ACLAll, Allow: false, Topic: f})
	}
	return append(out, rules...)
}

// notBuilt refuses a configuration that turns on a part of the design
// this version does not have yet (docs/architecture.md, "Not built yet"):
// a node started with cluster.enabled would otherwise run alone while its
// operator believes it shares client ids and messages with its peers, and
// a Kafka bridge would silently copy nothing.
func notBuilt(cfg *config.Config) error {
	var errs []error
	if cfg.Cluster.Enabled {
		errs = append(errs, errors.New("cluster.enabled: clustering through NATS is not built into this version of Herald; set it to false to run a single node"))
	}
	if cfg.Kafka.Enabled {
		errs = append(errs, errors.New("kafka.enabled: the Kafka bridges are not built into this version of Herald; set it to false"))
	}
	return errors.Join(errs...)
}
