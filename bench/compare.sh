#!/usr/bin/env bash
# compare.sh: Herald side by side with Mosquitto and NATS (issue 5).
#
# Starts one broker at a time on a loopback port (never two during a
# measurement), runs each scenario against it with `herald bench --json`,
# samples the broker process (/proc/PID/stat utime+stime, /proc/PID/status
# VmRSS, open fds) every 0.1 s, stops it, and prints one table of
# Herald/Mosquitto and Herald/NATS ratios. Every broker is restarted for
# every run, so each run starts from an empty process.
#
# It installs nothing. It needs: go, jq, mosquitto (Debian package
# mosquitto), nats-server (Debian package nats-server).
#
#   bench/compare.sh                 full sizes (about 10-15 minutes)
#   QUICK=1 bench/compare.sh         tiny sizes (under 2 minutes)
#
# Environment (defaults are the full sizes of issue 5):
#   BROKERS="herald mosquitto nats"   which brokers, in this order; add
#                                     mosquitto-defaults for Mosquitto with
#                                     its packaged configuration (reported
#                                     in a table of its own)
#   SCENARIOS="idle storm fanout fanin unicast"
#   HERALD_STORE=memory|pebble        Herald's store (default memory)
#   BUILD_FROM=head|tree              build Herald from HEAD (a clean `git
#                                     archive`, the default) or from the
#                                     working tree as it is
#   OUT=DIR                           keep JSON reports, samples and logs here
#   INFLIGHT=128 QUEUED=1000000       outbound window and per-session queue,
#                                     the same for every broker
#   IDLE_CLIENTS=15000 IDLE_RATE=1000 IDLE_QOS=1 IDLE_HOLD=10s
#   STORM_CLIENTS=15000 STORM_RATE=1000000 STORM_HOLD=3s STORM_WINDOW=64
#   STORM_REPEATS=3                   the storm runs STORM_REPEATS times per
#                                     broker, brokers taking turns, and the
#                                     table gives the median; dials start
#                                     at STORM_RATE with at most
#                                     STORM_WINDOW handshakes (dial to
#                                     CONNACK) in progress at once, which
#                                     opens connections as fast as an
#                                     unbounded burst does here without
#                                     queueing thousands inside the client
#                                     (whose backlog would then be what
#                                     CONNACK latency measures); one more
#                                     run per broker is the unbounded burst
#   FANOUT_SUBS=10000 FANOUT_RATES="2 4 8 16 32 48 64 96 128" FANOUT_DURATION=6s
#                                     messages/s of the one publisher, step
#                                     by step (x subscribers = deliveries/s)
#   FANIN_PUBS=1000 FANIN_RATES="20 25 30 35 40 45 50 55 60 70 80 90 100"
#   FANIN_DURATION=8s FANIN_DRAIN=15s  (steps of 5 where the brokers here
#                                     saturate: the sustained figure is the
#                                     last step that held, so coarse steps
#                                     would understate either broker)
#   FANIN_PROCS=2                     bench processes for fan-in: the
#                                     consumer gets one to itself (in one
#                                     process it waits behind a thousand
#                                     runnable publisher goroutines)
#                                     messages/s of each publisher, step by step
#   SAT_MIN_RATIO=0.99 SAT_MAX_P99_MS=500   a step is sustained when the
#                                     publishers kept the offered rate
#                                     (published/scheduled >= ratio: a
#                                     broker that holds them back through
#                                     a full window or TCP back-pressure
#                                     is offered less than the step's
#                                     rate), distinct delivered/expected
#                                     >= ratio (duplicates do not count)
#                                     and the delivery p99, measured from
#                                     when each message was due, <= this;
#                                     the first step that is not ends the
#                                     climb
#   UNICAST_SUBS=5000 UNICAST_PUBS=20
#   UNICAST_RATES="1000 1250 1500 1750 2000 2500 3000 3500 4000 5000 6000 8500"
#   UNICAST_DURATION=10s              messages/s of each publisher, step by
#                                     step (fine where the brokers here
#                                     saturate, as for fan-in); the figure
#                                     is the best sustained step (a
#                                     publisher whose window fills slows
#                                     down, so an overloaded broker can
#                                     deliver less at a higher step)
#   SCALE_SUBS="1000 2000 5000 10000 15000" SCALE_DELIVERIES=100000
#   SCALE_DURATION=6s                 the scale scenario (not in the default
#                                     SCENARIOS): QoS 0 fan-out at the same
#                                     deliveries/s to a growing audience;
#                                     reports CPU per delivery, RSS per
#                                     subscriber and SUBACK latency per size
#   RUN_TIMEOUT=180                   seconds, hard bound on one bench run
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

# --- what is needed --------------------------------------------------------

missing=()
command -v go >/dev/null || missing+=("go (https://go.dev/dl)")
command -v jq >/dev/null || missing+=("jq (apt-get install jq)")
MOSQUITTO=$(command -v mosquitto || ls /usr/sbin/mosquitto 2>/dev/null || true)
NATS=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null || true)
BROKERS=${BROKERS:-herald mosquitto nats}
[[ $BROKERS == *mosquitto* && -z $MOSQUITTO ]] && missing+=("mosquitto (apt-get install mosquitto)")
[[ $BROKERS == *nats* && -z $NATS ]] && missing+=("nats-server (apt-get install nats-server)")
if ((${#missing[@]})); then
	printf 'compare.sh: missing, install it first (this script installs nothing):\n' >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 2
fi

# --- sizes -----------------------------------------------------------------

if [[ ${QUICK:-0} == 1 ]]; then
	: "${IDLE_CLIENTS:=500}" "${IDLE_HOLD:=2s}" "${STORM_CLIENTS:=500}" "${STORM_HOLD:=1s}" "${STORM_REPEATS:=1}"
	: "${FANOUT_SUBS:=300}" "${FANOUT_RATES:=20 80}" "${FANOUT_DURATION:=3s}"
	: "${FANIN_PUBS:=50}" "${FANIN_RATES:=100}" "${FANIN_DURATION:=2s}" "${FANIN_DRAIN:=10s}"
	: "${UNICAST_SUBS:=200}" "${UNICAST_PUBS:=5}" "${UNICAST_RATES:=1000}" "${UNICAST_DURATION:=2s}"
	: "${SCALE_SUBS:=100 300}" "${SCALE_DELIVERIES:=6000}" "${SCALE_DURATION:=2s}"
fi
: "${SCENARIOS:=idle storm fanout fanin unicast}"
: "${HERALD_STORE:=memory}" "${BUILD_FROM:=head}" "${INFLIGHT:=128}" "${QUEUED:=1000000}"
: "${IDLE_CLIENTS:=15000}" "${IDLE_RATE:=1000}" "${IDLE_QOS:=1}" "${IDLE_HOLD:=10s}"
: "${STORM_CLIENTS:=15000}" "${STORM_RATE:=1000000}" "${STORM_HOLD:=3s}" "${STORM_WINDOW:=64}" "${STORM_REPEATS:=3}"
: "${FANOUT_SUBS:=10000}" "${FANOUT_RATES:=2 4 8 16 32 48 64 96 128}" "${FANOUT_DURATION:=6s}"
: "${SAT_MIN_RATIO:=0.99}" "${SAT_MAX_P99_MS:=500}"
: "${FANIN_PROCS:=2}" "${FANIN_PUBS:=1000}" "${FANIN_RATES:=20 25 30 35 40 45 50 55 60 70 80 90 100}" "${FANIN_DURATION:=8s}" "${FANIN_DRAIN:=15s}"
: "${UNICAST_SUBS:=5000}" "${UNICAST_PUBS:=20}" "${UNICAST_RATES:=1000 1250 1500 1750 2000 2500 3000 3500 4000 5000 6000 8500}" "${UNICAST_DURATION:=10s}"
: "${SCALE_SUBS:=1000 2000 5000 10000 15000}" "${SCALE_DELIVERIES:=100000}" "${SCALE_DURATION:=6s}"
: "${RUN_TIMEOUT:=180}"

OUT=${OUT:-$(mktemp -d /tmp/herald-compare.XXXXXX)}
mkdir -p "$OUT"
TICK=$(getconf CLK_TCK)

# --- cleanup: every process this script starts is killed ------------------

broker_pid="" sampler_pid="" bench_pid=""
cleanup() {
	for p in $bench_pid $sampler_pid $broker_pid; do
		kill "$p" 2>/dev/null
	done
	sleep 0.5
	for p in $bench_pid $sampler_pid $broker_pid; do
		kill -9 "$p" 2>/dev/null
	done
	true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build -----------------------------------------------------------------

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
HERALD=$OUT/herald
if [[ $BUILD_FROM == head ]]; then
	src=$OUT/src
	rm -rf "$src" && mkdir -p "$src"
	git -C "$repo" archive HEAD | tar -x -C "$src" || exit 1
	(cd "$src" && go build -o "$HERALD" ./cmd/herald) || exit 1
	rm -rf "$src"
else
	(cd "$repo" && go build -o "$HERALD" ./cmd/herald) || exit 1
	[[ -n $(git -C "$repo" status --porcelain 2>/dev/null) ]] && commit="$commit+dirty"
fi

# --- brokers ---------------------------------------------------------------

free_port() {
	local p
	for _ in $(seq 200); do
		p=$((20000 + RANDOM % 10000))
		[[ -z $(ss -Htln "sport = :$p") ]] && { echo "$p"; return; }
	done
	echo "compare.sh: no free port" >&2
	exit 1
}

# start_broker NAME DIR: starts NAME on a fresh loopback port; sets
# broker_pid and port, and waits until it accepts connections.
start_broker() {
	local name=$1 dir=$2
	port=$(free_port)
	mkdir -p "$dir"
	case $name in
	herald)
		# The per-session queue in bytes must hold QUEUED 64-byte messages.
		HERALD_MQTT_MAX_QUEUED_BYTES=512MiB HERALD_LIMITS_MEMORY_BUDGET=2GiB \
			"$HERALD" serve --listen "127.0.0.1:$port" --store "$HERALD_STORE" --data "$dir/data" \
			--max-inflight "$INFLIGHT" --max-queued-messages "$QUEUED" --log-level warn \
			>"$dir/broker.log" 2>&1 &
		;;
	mosquitto)
		cat >"$dir/mosquitto.conf" <<-EOF
			listener $port 127.0.0.1
			allow_anonymous true
			persistence false
			max_inflight_messages $INFLIGHT
			max_queued_messages $QUEUED
			max_connections -1
			log_dest stderr
			log_type error
			log_type warning
		EOF
		"$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
		;;
	mosquitto-defaults)
		# Mosquitto as packaged: a listener and anonymous access, nothing
		# else. Its defaults include max_queued_messages 1000 and
		# max_inflight_messages 20, so under load it drops what it queued.
		cat >"$dir/mosquitto.conf" <<-EOF
			listener $port 127.0.0.1
			allow_anonymous true
			log_dest stderr
			log_type error
			log_type warning
		EOF
		"$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/broker.log" 2>&1 &
		;;
	nats)
		local np
		np=$(free_port)
		cat >"$dir/nats.conf" <<-EOF
			server_name: herald_compare
			listen: 127.0.0.1:$np
			jetstream { store_dir: "$dir/js" }
			mqtt { listen: 127.0.0.1:$port, max_ack_pending: $INFLIGHT }
		EOF
		"$NATS" -c "$dir/nats.conf" >"$dir/broker.log" 2>&1 &
		;;
	esac
	broker_pid=$!
	for _ in $(seq 300); do
		if ! kill -0 "$broker_pid" 2>/dev/null; then
			echo "compare.sh: $name exited at start; log $dir/broker.log:" >&2
			tail -5 "$dir/broker.log" >&2
			return 1
		fi
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { sleep 1; return 0; }
		sleep 0.1
	done
	echo "compare.sh: $name did not listen on $port within 30 s" >&2
	return 1
}

stop_broker() {
	[[ -z $broker_pid ]] && return
	kill "$broker_pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$broker_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$broker_pid" 2>/dev/null
	wait "$broker_pid" 2>/dev/null
	broker_pid=""
}

# sampler PID FILE: every 0.1 s, "unix-seconds cpu-ticks rss-kB open-fds".
sampler() {
	local pid=$1 out=$2 line f rss k v _
	while [[ -r /proc/$pid/stat ]]; do
		read -r line <"/proc/$pid/stat" || break
		line=${line##*) } # fields from 3 (state) on; comm may hold spaces
		read -ra f <<<"$line"
		rss=0
		while read -r k v _; do [[ $k == VmRSS: ]] && { rss=$v; break; }; done <"/proc/$pid/status"
		echo "$EPOCHREALTIME $((f[11] + f[12])) $rss $(ls -U "/proc/$pid/fd" 2>/dev/null | wc -l)"
		sleep 0.1
	done >"$out"
}

# --- one run ---------------------------------------------------------------

# run_one KEY BROKER SCENARIO ARGS...: a fresh broker, one bench run, the
# measurements appended to $OUT/runs.tsv as KEY BROKER field=value...
run_one() {
	local key=$1 name=$2 scen=$3
	shift 3
	local dir=$OUT/$key.$name
	rm -rf "$dir"
	start_broker "$name" "$dir" || { echo -e "$key\t$name\tstatus=nostart" >>"$OUT/runs.tsv"; stop_broker; return; }
	sampler "$broker_pid" "$dir/samples" &
	sampler_pid=$!
	sleep 0.5
	local launch=$EPOCHREALTIME
	echo "$HERALD bench $scen --target 127.0.0.1:PORT $* --quiet --json $key.$name.json" >"$dir/command"
	timeout -k 10 "$RUN_TIMEOUT" "$HERALD" bench "$scen" --target "127.0.0.1:$port" "$@" \
		--quiet --json "$dir/result.json" >"$dir/bench.txt" 2>&1 &
	bench_pid=$!
	wait "$bench_pid"
	local rc=$?
	bench_pid=""
	sleep 0.5
	kill "$sampler_pid" 2>/dev/null
	wait "$sampler_pid" 2>/dev/null
	sampler_pid=""
	local alive=1
	kill -0 "$broker_pid" 2>/dev/null || alive=0
	stop_broker
	if [[ ! -s $dir/result.json ]]; then
		echo -e "$key\t$name\tstatus=norun\tbench_exit=$rc\tbroker_alive=$alive" >>"$OUT/runs.tsv"
		return
	fi
	analyse "$key" "$name" "$dir" "$launch" "$rc" "$alive" >>"$OUT/runs.tsv"
}

# analyse: the run's numbers as one TSV line. rate is deliveries per
# second from the start of the publish phase to the last delivery, whose
# exact time the bench records (last_delivery in its JSON; here
# last_delivery_s, seconds after the publish phase began), so a broker
# that falls behind and catches up in the drain is credited with what it
# delivered, at the time it took; or to the end of the publish phase if
# that is later (a broker that keeps up delivers the last message, due
# up to one interval before the end, before it ends: counting to then
# would credit it with more than the offered rate). lost_acked is what
# the broker acknowledged and never delivered; cut_off, what was still
# arriving when --drain ended (deliveries in its last second), which the
# broker drops only because the bench then disconnects: not a loss. The
# broker's CPU is counted over a window: from the bench's launch (conn
# scenarios) or from the start of the publish phase (the others) to the
# last sample before the broker's open fds drop, i.e. before the bench's
# DISCONNECTs, so neither connecting (traffic scenarios) nor
# disconnecting is charged to delivery.
analyse() {
	local key=$1 name=$2 dir=$3 launch=$4 rc=$5 alive=$6 j=$3/result.json
	local started pf pt from
	started=$(date -d "$(jq -r .started "$j")" +%s.%N)
	pf=$(jq -r .publish_from "$j")
	pt=$(jq -r .publish_to "$j")
	if [[ $(jq -r .scenario.name "$j") == conn ]]; then
		from=$launch
	else
		from=$(awk -v a="$started" -v b="$pf" 'BEGIN { printf "%.6f", a + b }')
	fi
	local window
	window=$(awk -v from="$from" -v tick="$TICK" '
		{ t[NR] = $1; cpu[NR] = $2; rss[NR] = $3; fd[NR] = $4; if ($4 > peak) peak = $4 }
		END {
			thr = peak - (peak / 100 > 3 ? peak / 100 : 3)
			for (i = 1; i <= NR; i++) if (fd[i] >= thr) last = i
			base = 1; first = 1
			for (i = 1; i <= NR; i++) if (t[i] <= from) first = i
			printf "cpu_s=%.3f\twindow_s=%.3f\trss_base_kb=%d\trss_kb=%d\tpeak_fds=%d",
				(cpu[last] - cpu[first]) / tick, t[last] - t[first], rss[base], rss[last], peak
		}' "$dir/samples")
	# Steady delivery rate: the mean of the per-second deliveries of the
	# whole seconds inside the publish phase, skipping the first (ramp);
	# a short phase falls back to all deliveries over the phase.
	local fields
	fields=$(jq -r --argjson pf "$pf" --argjson pt "$pt" '
		def steady: [.series[] | select(.t >= (($pf|ceil) + 1) and (.t + 1) <= ($pt|floor)) | .counters.delivered];
		(steady) as $s
		| [ "status=ok",
		    "pass=\(.pass)",
		    "clients=\(.counters.clients)", "connected=\(.counters.connected)",
		    "sub_acked=\(.counters.sub_acked)", "connect_errors=\(.counters.connect_errors)",
		    "disconnects=\(.counters.disconnects)",
		    "scheduled=\(.counters.scheduled // 0)",
		    "published=\(.counters.published)", "acked=\(.counters.pub_acked)",
		    "expected=\(.counters.expected)", "delivered=\(.counters.delivered)",
		    "dups=\(.counters.duplicates)", "lost=\(.counters.lost)",
		    "lost_acked=\([0, .counters.lost - (.counters.published - .counters.pub_acked)] | max)",
		    "cut_off=\(.counters.cut_off // 0)",
		    "rate=\((.last_delivery // 0) as $e | if $e <= 0 then 0 else ((.counters.delivered - (.counters.duplicates // 0)) / ([$e - $pf, $pt - $pf, 0.001] | max)) end | floor)",
		    "last_delivery_s=\((.last_delivery // 0) - $pf)",
		    "rate_steady=\(if ($s|length) > 0 then (($s|add) / ($s|length)) else (.counters.delivered / ([($pt - $pf), 0.001]|max)) end | floor)",
		    "connack_p99_ms=\(.latency.connack.p99_ms // 0)",
		    "connect_s=\($pf)",
		    "deliver_p50_ms=\(.latency.deliver.p50_ms // 0)",
		    "deliver_p99_ms=\(.latency.deliver.p99_ms // 0)",
		    "suback_mean_ms=\(.latency.suback.mean_ms // 0)",
		    "suback_p99_ms=\(.latency.suback.p99_ms // 0)",
		    "timed_out=\(.timed_out // false)",
		    "failed=\([.checks[]? | select(.pass | not) | .name] | join(",") | gsub("[\t ]"; "_"))",
		    "errors=\(.errors // {} | to_entries | map("\(.key):\(.value)") | join(",") | gsub("[\t ]"; "_"))"
		  ] | join("\t")' "$j")
	echo -e "$key\t$name\t$fields\t$window\tbench_exit=$rc\tbroker_alive=$alive"
}

# --- scenarios -------------------------------------------------------------

common=(--connect-timeout 20s --drain 10s --max-connack-mean 10s --max-latency-mean 10s)

run_idle() {
	for b in $BROKERS; do
		echo "idle: $b, $IDLE_CLIENTS subscribed clients" >&2
		run_one idle "$b" conn --clients "$IDLE_CLIENTS" --subscribe --qos "$IDLE_QOS" \
			--connect-rate "$IDLE_RATE" --duration "$IDLE_HOLD" "${common[@]}"
	done
}

run_storm() {
	local i b
	for ((i = 1; i <= STORM_REPEATS; i++)); do
		for b in $BROKERS; do
			echo "storm $i/$STORM_REPEATS: $b, $STORM_CLIENTS connections at --connect-rate $STORM_RATE, --connect-window $STORM_WINDOW" >&2
			run_one "storm-$i" "$b" conn --clients "$STORM_CLIENTS" --connect-rate "$STORM_RATE" \
				--connect-window "$STORM_WINDOW" --duration "$STORM_HOLD" "${common[@]}"
		done
	done
	for b in $BROKERS; do
		echo "storm burst: $b, $STORM_CLIENTS connections at --connect-rate $STORM_RATE, no window" >&2
		run_one storm-burst "$b" conn --clients "$STORM_CLIENTS" --connect-rate "$STORM_RATE" \
			--duration "$STORM_HOLD" "${common[@]}"
	done
}

# field KEY BROKER NAME: a field of a run's line in runs.tsv.
field() {
	awk -F'\t' -v k="$1" -v b="$2" -v f="$3" '$1 == k && $2 == b {
		for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) v = substr($i, length(f) + 2) } }
		END { print v }' "$OUT/runs.tsv"
}

# sustained KEY BROKER: whether a climbing step kept up (see SAT_*).
sustained() {
	awk -v s="$(field "$1" "$2" scheduled)" -v u="$(field "$1" "$2" published)" \
		-v e="$(field "$1" "$2" expected)" -v d="$(field "$1" "$2" delivered)" -v x="$(field "$1" "$2" dups)" \
		-v p="$(field "$1" "$2" deliver_p99_ms)" -v r="$SAT_MIN_RATIO" -v m="$SAT_MAX_P99_MS" \
		'BEGIN { exit !(s > 0 && u / s >= r && e > 0 && (d - x) / e >= r && p != "" && p <= m) }'
}

# climb NAME RATES ARGS...: runs NAME-RATE for each rate in turn, for each
# broker, until a step is not sustained: that broker is saturated.
climb() {
	local name=$1 rates=$2
	shift 2
	for b in $BROKERS; do
		for r in $rates; do
			echo "$name: $b at --rate $r ($*)" >&2
			run_one "$name-$r" "$b" "$name" --rate "$r" "$@"
			if ! sustained "$name-$r" "$b"; then
				echo "$name: $b not sustained at --rate $r (published $(field "$name-$r" "$b" published) of $(field "$name-$r" "$b" scheduled) scheduled, delivered $(field "$name-$r" "$b" delivered) of $(field "$name-$r" "$b" expected), p99 $(field "$name-$r" "$b" deliver_p99_ms) ms): saturated" >&2
				break
			fi
		done
	done
}

run_fanout() {
	climb fanout "$FANOUT_RATES" --subscribers "$FANOUT_SUBS" --publishers 1 --qos 0 --size 64 \
		--duration "$FANOUT_DURATION" --connect-rate 5000 "${common[@]}" --drain 4s
}

run_fanin() {
	climb fanin "$FANIN_RATES" --subscribers 1 --publishers "$FANIN_PUBS" --qos 1 --size 64 \
		--duration "$FANIN_DURATION" --connect-rate 2000 --procs "$FANIN_PROCS" "${common[@]}" --drain "$FANIN_DRAIN"
}

run_scale() {
	local n rate
	for b in $BROKERS; do
		for n in $SCALE_SUBS; do
			rate=$(awk -v d="$SCALE_DELIVERIES" -v n="$n" 'BEGIN { printf "%g", d / n }')
			echo "scale: $b, $n subscribers at --rate $rate" >&2
			run_one "scale-$n" "$b" fanout --subscribers "$n" --publishers 1 --qos 0 --size 64 --rate "$rate" \
				--duration "$SCALE_DURATION" --connect-rate 5000 "${common[@]}" --drain 4s
		done
	done
}

run_unicast() {
	climb unicast "$UNICAST_RATES" --subscribers "$UNICAST_SUBS" --publishers "$UNICAST_PUBS" --qos 1 \
		--size 64 --duration "$UNICAST_DURATION" --connect-rate 5000 "${common[@]}"
}

: >"$OUT/runs.tsv"
begin=$SECONDS
for s in $SCENARIOS; do
	"run_$s"
done

# --- the table -------------------------------------------------------------

# best NAME RATES BROKER: the key of the highest sustained step of a
# climb, and of the highest step at no more than half its --rate, as
# "best half".
best() {
	local best="" top=0 half="" r
	for r in $2; do
		[[ -z $(field "$1-$r" "$3" expected) ]] && break
		sustained "$1-$r" "$3" && best="$1-$r" top=$r
	done
	for r in $2; do
		awk -v r="$r" -v t="$top" 'BEGIN { exit !(r * 2 <= t) }' && half="$1-$r"
	done
	echo "${best:-none} ${half:-none}"
}

# top NAME RATES BROKER: the key of the sustained step that delivered the
# most per second ("none" if no step was sustained).
top() {
	local key=none rate=-1 r v
	for r in $2; do
		[[ -z $(field "$1-$r" "$3" expected) ]] && break
		sustained "$1-$r" "$3" || continue
		v=$(field "$1-$r" "$3" rate)
		if awk -v a="$v" -v b="$rate" 'BEGIN { exit !(a > b) }'; then
			key="$1-$r" rate=$v
		fi
	done
	echo "$key"
}

# peak NAME RATES BROKER: the highest delivery rate of any step.
peak() {
	for r in $2; do field "$1-$r" "$3" rate; done | sort -n | tail -1
}

per() { # per NUMERATOR DENOMINATOR SCALE FORMAT
	awk -v a="$1" -v b="$2" -v s="$3" -v f="$4" 'BEGIN { if (a != "" && b > 0) printf f, a * s / b }'
}

# metric BROKER NAME: one number of the table for BROKER ("" if absent).
metric() {
	local b=$1 m=$2 k v rates i
	case $m in
	idle_bytes)
		[[ $(field idle "$b" connected) == "$(field idle "$b" clients)" ]] || return
		per "$(awk -v a="$(field idle "$b" rss_kb)" -v z="$(field idle "$b" rss_base_kb)" 'BEGIN { if (a != "") print a - z }')" \
			"$(field idle "$b" connected)" 1024 %.0f
		;;
	storm_cpu_us | storm_p99 | storm_rate)
		for ((i = 1; i <= STORM_REPEATS; i++)); do storm_metric "storm-$i" "$b" "$m"; done | median
		;;
	burst_p99 | burst_rate) storm_metric storm-burst "$b" "storm_${m#burst_}" ;;
	fan*_best | fan*_cpu_ns | fan*_p99_half | fan*_peak)
		rates=$FANOUT_RATES
		[[ $m == fanin* ]] && rates=$FANIN_RATES
		read -r k v <<<"$(best "${m%%_*}" "$rates" "$b")"
		case $m in
		*_best) [[ $k != none ]] && field "$k" "$b" rate ;;
		*_peak) peak "${m%%_*}" "$rates" "$b" ;;
		*_cpu_ns) [[ $k != none ]] && per "$(field "$k" "$b" cpu_s)" "$(field "$k" "$b" delivered)" 1e9 %.0f ;;
		*_p99_half) [[ $v != none ]] && field "$v" "$b" deliver_p99_ms ;;
		esac
		;;
	fanin_lost | fanin_cut_off | unicast_lost | unicast_cut_off)
		# lost: acknowledged and never delivered; cut_off: still
		# arriving when the drain ended (see analyse)
		k=lost_acked rates=$FANIN_RATES
		[[ $m == *_cut_off ]] && k=cut_off
		[[ $m == unicast_* ]] && rates=$UNICAST_RATES
		for r in $rates; do field "${m%%_*}-$r" "$b" "$k"; done | awk 'NF { s += $1; n++ } END { if (n) print s }'
		;;
	unicast_peak) peak unicast "$UNICAST_RATES" "$b" ;;
	unicast_rate | unicast_cpu_ns | unicast_p99)
		k=$(top unicast "$UNICAST_RATES" "$b")
		[[ $k == none ]] && return
		case $m in
		unicast_rate) field "$k" "$b" rate ;;
		unicast_cpu_ns) per "$(field "$k" "$b" cpu_s)" "$(field "$k" "$b" delivered)" 1e9 %.0f ;;
		unicast_p99) field "$k" "$b" deliver_p99_ms ;;
		esac
		;;
	esac
}

# storm_metric KEY BROKER METRIC: one storm run's CPU per connection,
# CONNACK p99 or connections per second over the connect phase.
storm_metric() {
	local n
	n=$(field "$1" "$2" connected)
	[[ -n $n && $n == "$(field "$1" "$2" clients)" && $(field "$1" "$2" broker_alive) == 1 ]] || return
	case $3 in
	storm_cpu_us) per "$(field "$1" "$2" cpu_s)" "$(field "$1" "$2" connected)" 1e6 %.1f ;;
	storm_p99) field "$1" "$2" connack_p99_ms ;;
	storm_rate) per "$(field "$1" "$2" connected)" "$(field "$1" "$2" connect_s)" 1 %.0f ;;
	esac
	echo
}

# median: the median of the numbers on stdin, one a line ("" if none).
median() {
	sort -g | awk 'NF { v[n++] = $1 } END { if (n) print (n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 != 0) printf "%.2f", a / b; else printf "-" }'
}

rows=(
	"idle_bytes|idle: broker bytes per subscribed idle client|lower"
	"storm_cpu_us|connect storm: broker CPU µs per accepted connection (median of complete runs)|lower"
	"storm_p99|connect storm: CONNACK p99 ms (median of complete runs)|lower"
	"storm_rate|connect storm: connections/s opened (median of complete runs)|higher"
	"burst_p99|connect burst, no window: CONNACK p99 ms|lower"
	"burst_rate|connect burst, no window: connections/s opened|higher"
	"fanout_best|fan-out QoS 0: deliveries/s, highest sustained step|higher"
	"fanout_peak|fan-out QoS 0: deliveries/s, best of any step|higher"
	"fanout_cpu_ns|fan-out: broker CPU ns per delivery (sustained step)|lower"
	"fanout_p99_half|fan-out: delivery p99 ms at half that rate|lower"
	"fanin_best|fan-in QoS 1: deliveries/s, highest sustained step|higher"
	"fanin_peak|fan-in QoS 1: deliveries/s, best of any step|higher"
	"fanin_lost|fan-in QoS 1: acknowledged, not delivered (all steps)|lower"
	"fanin_cut_off|fan-in QoS 1: still arriving when the drain ended, not counted lost (all steps)|lower"
	"fanin_cpu_ns|fan-in: broker CPU ns per delivery (sustained step)|lower"
	"unicast_rate|unicast QoS 1: deliveries/s, best sustained step|higher"
	"unicast_peak|unicast QoS 1: deliveries/s, best of any step|higher"
	"unicast_lost|unicast QoS 1: acknowledged, not delivered (all steps)|lower"
	"unicast_cut_off|unicast QoS 1: still arriving when the drain ended, not counted lost (all steps)|lower"
	"unicast_cpu_ns|unicast: broker CPU ns per delivery (that step)|lower"
	"unicast_p99|unicast: delivery p99 ms (that step)|lower"
)

has() { [[ " $BROKERS " == *" $1 "* ]]; }
{
	echo "Herald $commit ($HERALD_STORE store), $(date -u +%Y-%m-%d), $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg), $((SECONDS - begin)) s"
	echo
	echo "| measure | better | Herald | Mosquitto | NATS | H/M | H/N |"
	echo "|---|---|---|---|---|---|---|"
	for row in "${rows[@]}"; do
		IFS='|' read -r m label better <<<"$row"
		h="" q="" n=""
		has herald && h=$(metric herald "$m")
		has mosquitto && q=$(metric mosquitto "$m")
		has nats && n=$(metric nats "$m")
		[[ -z $h && -z $q && -z $n ]] && continue
		echo "| $label | $better | ${h:--} | ${q:--} | ${n:--} | $(ratio "$h" "$q") | $(ratio "$h" "$n") |"
	done
	echo
	if has mosquitto-defaults; then
		echo "Against Mosquitto with its packaged defaults (mosquitto-defaults: max_queued_messages 1000, max_inflight_messages 20):"
		echo
		echo "| measure | better | Herald | Mosquitto (defaults) | H/M |"
		echo "|---|---|---|---|---|"
		for row in "${rows[@]}"; do
			IFS='|' read -r m label better <<<"$row"
			h=$(metric herald "$m")
			q=$(metric mosquitto-defaults "$m")
			[[ -z $q ]] && continue
			echo "| $label | $better | ${h:--} | $q | $(ratio "$h" "$q") |"
		done
		echo
	fi
	if [[ " $SCENARIOS " == *" storm "* ]]; then
		echo "Storm runs (broker CPU µs per connection, CONNACK p99 ms, connections/s; empty: not every client connected; the last is the burst without a window):"
		for b in $BROKERS; do
			printf '  %-18s' "$b"
			for k in $(seq -f 'storm-%g' 1 "$STORM_REPEATS") storm-burst; do
				printf '  %s %s %s;' "$(storm_metric "$k" "$b" storm_cpu_us)" "$(storm_metric "$k" "$b" storm_p99)" "$(storm_metric "$k" "$b" storm_rate)"
			done
			echo
		done
		echo
	fi
	for c in "fanout $FANOUT_RATES" "fanin $FANIN_RATES" "unicast $UNICAST_RATES"; do
		read -r name rates <<<"$c"
		[[ " $SCENARIOS " == *" $name "* ]] || continue
		echo "Steps of $name (--rate: deliveries/s, published/scheduled, distinct delivered/expected, delivery p99 ms from the due time, broker CPU ns per delivery):"
		for b in $BROKERS; do
			printf '  %-18s' "$b"
			for r in $rates; do
				e=$(field "$name-$r" "$b" expected)
				[[ -z $e ]] && continue
				awk -v r="$r" -v s="$(field "$name-$r" "$b" rate)" -v e="$e" -v d="$(field "$name-$r" "$b" delivered)" \
					-v x="$(field "$name-$r" "$b" dups)" -v u="$(field "$name-$r" "$b" published)" -v o="$(field "$name-$r" "$b" scheduled)" \
					-v p="$(field "$name-$r" "$b" deliver_p99_ms)" -v c="$(field "$name-$r" "$b" cpu_s)" \
					'BEGIN { printf "  %s: %d/s %.3f %.3f %.0fms %.0fns;", r, s, (o > 0 ? u / o : 0), (e > 0 ? (d - x) / e : 0), p, (d > 0 ? c * 1e9 / d : 0) }'
			done
			echo
		done
		echo
	done
	if [[ " $SCENARIOS " == *" scale "* ]]; then
		echo "Scale of cost (QoS 0 fan-out at about $SCALE_DELIVERIES deliveries/s to N subscribers: deliveries/s, broker CPU ns per delivery, broker RSS bytes per subscriber at the end, SUBACK mean / p99 ms while the N subscribed):"
		for b in $BROKERS; do
			printf '  %-18s' "$b"
			for n in $SCALE_SUBS; do
				e=$(field "scale-$n" "$b" expected)
				[[ -z $e ]] && continue
				awk -v n="$n" -v s="$(field "scale-$n" "$b" rate)" -v d="$(field "scale-$n" "$b" delivered)" \
					-v c="$(field "scale-$n" "$b" cpu_s)" -v r="$(field "scale-$n" "$b" rss_kb)" -v z="$(field "scale-$n" "$b" rss_base_kb)" \
					-v sm="$(field "scale-$n" "$b" suback_mean_ms)" -v sp="$(field "scale-$n" "$b" suback_p99_ms)" \
					'BEGIN { printf "  %d: %d/s %.0fns %.0fB %.2f/%.2fms;", n, s, (d > 0 ? c * 1e9 / d : 0), (r - z) * 1024 / n, sm, sp }'
			done
			echo
		done
		echo
	fi
	echo "Runs that did not pass their own checks, or lost connections:"
	awk -F'\t' '{ bad = 0; line = $1 " " $2 ":"
		for (i = 3; i <= NF; i++) {
			if ($i ~ /^(status=no|pass=false|bench_exit=[^0]|broker_alive=0|timed_out=true)/) bad = 1
			if ($i ~ /^(status|connected|connect_errors|disconnects|lost|lost_acked|cut_off|timed_out|broker_alive|errors|failed)=/) line = line " " $i
		}
		if (bad) print "  " line }' "$OUT/runs.tsv"
	echo
	echo "Raw measurements: $OUT/runs.tsv; per run: $OUT/<run>.<broker>/{command,result.json,bench.txt,samples,broker.log}"
} | tee "$OUT/table.md"
