#!/usr/bin/env bash
# bench/latency-ab.sh - added round-trip latency of relays, in alternating
# rounds, so that the drift of the machine hits every set-up alike.
#
#   bench/latency-ab.sh [ROUNDS] [SETUP...]
#
# Each round runs, for every set-up in turn, sockperf ping-pong (TCP,
# 64-byte messages, BENCH_SHORT seconds, default 5) through it to one
# sockperf server, plus the direct path. The added latency of a set-up in
# a round is its p50 minus the direct p50 of the same round. On 2 vCPUs
# every relay is bimodal (a fast mode when its thread stays awake, a slow
# one when it sleeps between messages), so the output shows every round,
# the median and the best round, p99, the relay's CPU use during the run,
# and the ratio of each zcrelay set-up to the best peer (median and best).
#
# A SETUP is LABEL=KIND[:ARGS]:
#   zcrelay:BIN:ENGINE:MOVER:BUSYPOLL   e.g. zc-auto=zcrelay:build/zcrelay:uring:auto:auto
#   haproxy:plain | haproxy:busy        nbthread 2; busy adds busy-polling
#   nginx                               nginx stream, 2 workers
#   floor                               bench/tools/spinfloor.c: one client,
#                                       no event system, spins on recv();
#                                       the least a user-space relay adds
#                                       here (neither zcrelay nor a peer)
# Default: zcrelay (uring/auto) with busy-poll off and auto, zcrelay
# epoll/auto with busy-poll auto, haproxy plain and busy-polling, nginx.
# Needs sockperf, haproxy, nginx-light and libnginx-mod-stream.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${1:-7}
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || { echo "usage: $0 [ROUNDS] [LABEL=KIND:ARGS...]" >&2; exit 2; }
shift || true
SECS=${BENCH_SHORT:-5}
BASE=${BENCH_PORT_BASE:-24000}
SP_PORT=$((BASE + 1))
RELAY_PORT=$((BASE + 2))
ZC=$ROOT/build/zcrelay
TMPD=$(mktemp -d /tmp/zclat.XXXXXX)

SETUPS=("$@")
if ((${#SETUPS[@]} == 0)); then
	SETUPS=("zcrelay-bp-off=zcrelay:$ZC:uring:auto:off"
		"zcrelay-bp-auto=zcrelay:$ZC:uring:auto:auto"
		"zcrelay-epoll-bp-auto=zcrelay:$ZC:epoll:auto:auto"
		"haproxy=haproxy:plain"
		"haproxy-busy-polling=haproxy:busy"
		"nginx-stream=nginx")
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
for t in sockperf haproxy nginx ss; do
	command -v "$t" >/dev/null || { echo "$t not found (Debian: sockperf haproxy nginx-light libnginx-mod-stream iproute2)" >&2; exit 1; }
done
NGX_SO=$(ls /usr/lib/nginx/modules/ngx_stream_module.so 2>/dev/null || true)

BENCH_RM=$TMPD
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # PIDS, cleanup on exit, wait_port
wait_free() { # wait_port PORT: until nothing listens (5 s)
	local i
	for ((i = 0; i < 100; i++)); do
		ss -Hltn "sport = :$1" | grep -q . || return 0
		sleep 0.05
	done
	return 1
}

sockperf sr --tcp -i 127.0.0.1 -p "$SP_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$SP_PORT" || { echo "sockperf server did not start" >&2; exit 1; }

# utime + stime of a process and its children (nginx's workers), with
# all their threads, in clock ticks.
cputicks() {
	local p t=0 v
	for p in "$1" $(pgrep -P "$1" || true); do
		v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + v))
	done
	echo "$t"
}

start() { # start KIND ARGS...: sets PID (empty for direct)
	local kind=$1
	shift
	PID=
	case $kind in
	direct) return 0 ;;
	zcrelay)
		local bin=$1 engine=$2 mover=$3 bp=$4
		"$bin" -q -w 2 -e "$engine" -m "$mover" --busy-poll "$bp" \
			-l "127.0.0.1:$RELAY_PORT" -u "127.0.0.1:$SP_PORT" 2>"$TMPD/zcrelay.log" &
		;;
	haproxy)
		{
			echo "global"
			echo "    nbthread 2"
			[[ $1 == busy ]] && echo "    busy-polling"
			echo "defaults"
			echo "    mode tcp"
			echo "    timeout connect 5s"
			echo "    timeout client 300s"
			echo "    timeout server 300s"
			echo "listen l"
			echo "    bind 127.0.0.1:$RELAY_PORT"
			echo "    server s 127.0.0.1:$SP_PORT"
		} >"$TMPD/haproxy.cfg"
		haproxy -db -f "$TMPD/haproxy.cfg" >"$TMPD/haproxy.log" 2>&1 &
		;;
	nginx)
		cat >"$TMPD/nginx.conf" <<EOF
load_module $NGX_SO;
worker_processes 2;
daemon off;
pid $TMPD/nginx.pid;
error_log $TMPD/nginx.err warn;
events { worker_connections 1024; }
stream { server { listen 127.0.0.1:$RELAY_PORT reuseport; proxy_pass 127.0.0.1:$SP_PORT; } }
EOF
		nginx -p "$TMPD/" -e "$TMPD/nginx.err" -c "$TMPD/nginx.conf" 2>/dev/null &
		;;
	floor)
		[[ -x $TMPD/spinfloor ]] || cc -O2 -o "$TMPD/spinfloor" "$HERE/tools/spinfloor.c" || exit 1
		"$TMPD/spinfloor" "$RELAY_PORT" "$SP_PORT" 2>"$TMPD/spinfloor.log" &
		;;
	*) echo "unknown kind $kind" >&2; exit 2 ;;
	esac
	PID=$!
	wait_port "$RELAY_PORT" || { echo "$kind did not start" >&2; exit 1; }
}

stop() {
	[[ -n $PID ]] || return 0
	kill "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	wait_free "$RELAY_PORT" || true
}

# ping PORT: sets P50 and P99 (µs) of one sockperf run.
ping() {
	local out
	out=$(timeout $((SECS + 20)) sockperf pp --tcp -i 127.0.0.1 -p "$1" -t "$SECS" -m 64 --full-rtt 2>&1 |
		sed 's/\x1b\[[0-9;]*m//g')
	P50=$(awk '/percentile 50.000 =/ { print $NF }' <<<"$out")
	P99=$(awk '/percentile 99.000 =/ { print $NF }' <<<"$out")
	[[ -n $P50 && -n $P99 ]] || { echo "sockperf failed: $out" >&2; exit 1; }
}

declare -A ADD P50S P99S CPU
HZ=$(getconf CLK_TCK)
for ((r = 1; r <= ROUNDS; r++)); do
	ping "$SP_PORT"
	d50=$P50
	log "round $r: direct p50 $d50 µs"
	for s in "${SETUPS[@]}"; do
		label=${s%%=*} spec=${s#*=}
		IFS=: read -r -a a <<<"$spec"
		start "${a[@]}"
		sleep 0.5
		c0=$(cputicks "$PID") t0=$EPOCHREALTIME
		ping "$RELAY_PORT"
		c1=$(cputicks "$PID") t1=$EPOCHREALTIME
		stop
		ADD[$label,$r]=$(awk -v a="$P50" -v d="$d50" 'BEGIN {printf "%.1f", a - d}')
		P50S[$label,$r]=$P50
		P99S[$label,$r]=$P99
		# Over the whole sockperf run (its warm-up and start-up too,
		# about 1.5 s beyond SECS), not just its measured seconds.
		CPU[$label,$r]=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v a="$t0" -v b="$t1" \
			'BEGIN {printf "%.0f", 100 * t / hz / (b - a)}')
		log "round $r: $label p50 $P50 (+${ADD[$label,$r]}) p99 $P99 µs, relay CPU ${CPU[$label,$r]} %"
	done
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'; }
best() { sort -g | head -n 1; }
echo "sockperf ping-pong, TCP, 64 B, ${SECS} s per run, $ROUNDS alternating rounds; added = p50 through the relay - direct p50 of the same round (µs)."
echo
echo "| set-up | added p50 per round | median | best | p99 median | relay CPU % of one CPU, median |"
echo "|---|---|---:|---:|---:|---:|"
declare -A MED BEST AMED
for s in "${SETUPS[@]}"; do
	label=${s%%=*}
	v=() p=() c=() a=()
	for ((r = 1; r <= ROUNDS; r++)); do
		v+=("${ADD[$label,$r]}") p+=("${P99S[$label,$r]}") c+=("${CPU[$label,$r]}")
		a+=("${P50S[$label,$r]}")
	done
	MED[$label]=$(printf '%s\n' "${v[@]}" | median)
	BEST[$label]=$(printf '%s\n' "${v[@]}" | best)
	AMED[$label]=$(printf '%s\n' "${a[@]}" | median)
	echo "| $label | $(IFS=,; echo "${v[*]}" | sed 's/,/, /g') | ${MED[$label]} | ${BEST[$label]} |" \
		"$(printf '%s\n' "${p[@]}" | median) | $(printf '%s\n' "${c[@]}" | median) |"
done
# Ratios of each zcrelay set-up to the best peer (lowest added latency,
# lowest p50). A ratio of added latencies means nothing once the best
# peer's is not above 0 (the relay made the round trip faster than the
# direct one, as when it keeps this VM's CPUs from halting): then the
# ratio of the round trips' p50 medians carries the comparison.
bm= bb= am=
for s in "${SETUPS[@]}"; do
	label=${s%%=*} kind=${s#*=}
	[[ $kind == zcrelay:* || $kind == floor ]] && continue
	if [[ -z $bm ]] || awk -v a="${MED[$label]}" -v b="$bm" 'BEGIN {exit !(a < b)}'; then bm=${MED[$label]}; fi
	if [[ -z $bb ]] || awk -v a="${BEST[$label]}" -v b="$bb" 'BEGIN {exit !(a < b)}'; then bb=${BEST[$label]}; fi
	if [[ -z $am ]] || awk -v a="${AMED[$label]}" -v b="$am" 'BEGIN {exit !(a < b)}'; then am=${AMED[$label]}; fi
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else printf "n/a (best peer %s)", b}'; }
if [[ -n $bm ]]; then
	echo
	echo "| zcrelay set-up | added: median ÷ best peer's median ($bm) | added: best ÷ best peer's best ($bb) | p50: median ÷ best peer's median ($am µs) |"
	echo "|---|---:|---:|---:|"
	for s in "${SETUPS[@]}"; do
		label=${s%%=*} kind=${s#*=}
		[[ $kind == zcrelay:* ]] || continue
		echo "| $label | $(ratio "${MED[$label]}" "$bm") | $(ratio "${BEST[$label]}" "$bb") | $(ratio "${AMED[$label]}" "$am") |"
	done
fi
