#!/usr/bin/env bash
# wave-cost.sh: the CPU one fan-out wave costs the broker and the bench.
#
# Runs `herald bench fanout` (QoS 0, 64-byte payload, one publisher) at a
# low rate against one broker and samples the utime+stime of the broker
# and of the bench over a window in the middle of the publish phase. At a
# low rate every message is its own wave (one send per subscriber, nothing
# batched), so the figures are the unbatched cost of delivering to N
# subscribers, sender and receiver, and their sum bounds the waves per
# second the machine can deliver unbatched:
#
#   ceiling = cores x 1000 / (broker ms + bench ms per wave)
#
# Above that rate each send must carry several messages, so each message
# waits for the ones after it. It installs nothing (needs go; mosquitto
# for BROKER=mosquitto).
#
#   bench/wave-cost.sh                       Herald, 10,000 subscribers, 1 message/s
#   BROKER=mosquitto bench/wave-cost.sh      the same against Mosquitto
#   SUBS=10000 RATE=1 REPEATS=3 PORT=18890   the defaults
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
: "${BROKER:=herald}" "${SUBS:=10000}" "${RATE:=1}" "${REPEATS:=3}" "${PORT:=18890}"
out=$(mktemp -d /tmp/herald-wave.XXXXXX)
tick=$(getconf CLK_TCK)
cores=$(nproc)

(cd "$repo" && go build -o "$out/herald" ./cmd/herald) || exit 1

broker_pid="" bench_pid=""
cleanup() { kill $bench_pid $broker_pid 2>/dev/null; true; }
trap cleanup EXIT

cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

for ((i = 1; i <= REPEATS; i++)); do
	case $BROKER in
	herald)
		"$out/herald" serve --listen "127.0.0.1:$PORT" --store memory --data "$out/data" --log-level warn >"$out/broker.log" 2>&1 &
		;;
	mosquitto)
		printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\n' "$PORT" >"$out/mosquitto.conf"
		mosquitto -c "$out/mosquitto.conf" >"$out/broker.log" 2>&1 &
		;;
	*) echo "wave-cost.sh: BROKER is herald or mosquitto" >&2; exit 2 ;;
	esac
	broker_pid=$!
	sleep 1
	# Subscribers connect at 5,000/s; the publish phase starts once all
	# have their SUBACK, so the window from 3 + SUBS/5000 s on is inside it.
	"$out/herald" bench fanout --target "127.0.0.1:$PORT" --subscribers "$SUBS" --publishers 1 --qos 0 --size 64 \
		--connect-rate 5000 --duration 12s --drain 2s --rate "$RATE" --quiet >"$out/bench.out" 2>&1 &
	bench_pid=$!
	sleep $((3 + SUBS / 5000))
	b0=$(cpu $broker_pid) c0=$(cpu $bench_pid)
	sleep 6
	b1=$(cpu $broker_pid) c1=$(cpu $bench_pid)
	wait $bench_pid
	bench_pid=""
	kill $broker_pid
	wait $broker_pid 2>/dev/null
	broker_pid=""
	awk -v name="$BROKER" -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v t="$tick" -v r="$RATE" -v n="$SUBS" -v k="$cores" -v lat="$(grep 'scheduled→deliver' "$out/bench.out" | awk '{print $4"/"$6}')" \
		'BEGIN { bw = b * 1000 / t / 6 / r; cw = c * 1000 / t / 6 / r
		         printf "%s %d subscribers at %s/s: broker %.0f ms + bench %.0f ms of CPU per wave (%.1f + %.1f us per delivery); unbatched ceiling %.1f waves/s (%.0f deliveries/s); p50/p99 %s ms\n",
		                name, n, r, bw, cw, bw * 1000 / n, cw * 1000 / n, k * 1000 / (bw + cw), k * 1000 / (bw + cw) * n, lat }'
	sleep 1
done
rm -rf "$out"
