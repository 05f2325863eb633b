#!/usr/bin/env bash
# bench/admin-ab.sh - what polling the admin API costs the relay: the
# round-trip latency through zcrelay with and without 50 clients polling
# GET /sessions every 100 ms, while 9,000 sessions are open, in
# alternating rounds (so that the machine's drift hits both alike).
#
#   bench/admin-ab.sh [ROUNDS]       (default 5; BENCH_SHORT=SECS per run, 5)
#
# Set-up: bench/tools/echo behind route "idle", which bench/tools/idle
# fills with 9,000 sessions (each proved with a round trip); sockperf's
# server behind route "pp". Each round runs sockperf ping-pong (TCP, 64 B)
# through "pp" once quiet and once while bench/tools/adminpoll polls
# (GET /sessions: the 1,000 oldest of the 9,001, the API's default
# limit). It prints each round's p50/p99, the medians, the ratio
# polled/quiet, the pollers' answer times, then the answer time of one
# client listing all 9,001 sessions (limit=100000) and the default page,
# the session errors the daemon logged (must be 0), and the load average.
# Needs go, sockperf, ss (iproute2).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${1:-5}
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
SECS=${BENCH_SHORT:-5}
BASE=${BENCH_PORT_BASE:-25000}
ECHO_PORT=$((BASE + 1)) SP_PORT=$((BASE + 2)) IDLE_PORT=$((BASE + 3)) PP_PORT=$((BASE + 4))
ZC=$ROOT/build/zcrelay
TMPD=$(mktemp -d /tmp/zcadmin.XXXXXX)
SOCK=$TMPD/admin.sock

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
for t in go sockperf ss; do
	command -v "$t" >/dev/null || { echo "$t not found" >&2; exit 1; }
done
[[ -x $ZC ]] || { echo "build zcrelay first (make)" >&2; exit 1; }

BENCH_RM=$TMPD
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # PIDS, cleanup on exit, wait_port

log "building bench/tools (echo, idle, adminpoll)"
(
	cd "$HERE/tools"
	export GOPATH=$TMPD/gopath GOCACHE=/tmp/zcbench-go/cache GOPROXY=off GOFLAGS='' GO111MODULE=on
	timeout 300 go build -o "$TMPD/" ./echo ./idle ./adminpoll
)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

"$TMPD/echo" -listen "127.0.0.1:$ECHO_PORT" >/dev/null 2>&1 & PIDS+=($!)
sockperf sr --tcp -i 127.0.0.1 -p "$SP_PORT" >/dev/null 2>&1 & PIDS+=($!)
cat >"$TMPD/zcrelay.conf" <<CONF
workers = 2;
admin = "unix:$SOCK";
log = { sessions = false; };
routes = (
  { name = "idle"; listen = "127.0.0.1:$IDLE_PORT"; upstreams = "127.0.0.1:$ECHO_PORT"; },
  { name = "pp"; listen = "127.0.0.1:$PP_PORT"; upstreams = "127.0.0.1:$SP_PORT"; }
);
CONF
"$ZC" -c "$TMPD/zcrelay.conf" 2>"$TMPD/zcrelay.log" & PIDS+=($!)
for p in $ECHO_PORT $SP_PORT $PP_PORT; do
	wait_port "$p" || { echo "port $p did not open" >&2; exit 1; }
done

log "opening 9000 sessions"
exec 3> >("$TMPD/idle" -addr "127.0.0.1:$IDLE_PORT" -n 9000 -stdin -hold 1h >"$TMPD/idle.out")
for ((i = 0; i < 600; i++)); do
	grep -q '^ready' "$TMPD/idle.out" 2>/dev/null && break
	sleep 0.1
done
READY=$(cat "$TMPD/idle.out")
log "$READY"
[[ $READY == *"failed=0 "* ]] || { echo "idle: $READY" >&2; exit 1; }

# ping: sets P50 and P99 (µs) of one sockperf run through the relay.
ping() {
	local out
	out=$(timeout $((SECS + 20)) sockperf pp --tcp -i 127.0.0.1 -p "$PP_PORT" -t "$SECS" -m 64 --full-rtt 2>&1 |
		sed 's/\x1b\[[0-9;]*m//g')
	P50=$(awk '/percentile 50.000 =/ { print $NF }' <<<"$out")
	P99=$(awk '/percentile 99.000 =/ { print $NF }' <<<"$out")
	[[ -n $P50 && -n $P99 ]] || { echo "sockperf failed: $out" >&2; exit 1; }
}

median() { tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

Q50=() Q99=() L50=() L99=() POLLS=()
for ((r = 1; r <= ROUNDS; r++)); do
	ping
	Q50+=("$P50") Q99+=("$P99")
	"$TMPD/adminpoll" -unix "$SOCK" -path /sessions -n 50 -every 100ms \
		-for $((SECS + 2))s >"$TMPD/poll.out" 2>&1 &
	POLL=$!
	sleep 1
	ping
	L50+=("$P50") L99+=("$P99")
	wait $POLL || { echo "adminpoll: $(cat "$TMPD/poll.out")" >&2; exit 1; }
	POLLS+=("$(cat "$TMPD/poll.out")")
	log "round $r: quiet p50 ${Q50[-1]} p99 ${Q99[-1]} µs; polled p50 ${L50[-1]} p99 ${L99[-1]} µs; ${POLLS[-1]}"
done
ONE_ALL=$("$TMPD/adminpoll" -unix "$SOCK" -n 1 -every 250ms -for 10s)
ONE_PAGE=$("$TMPD/adminpoll" -unix "$SOCK" -path /sessions -n 1 -every 250ms -for 10s)
exec 3>&-

MQ99=$(echo "${Q99[*]}" | median) ML99=$(echo "${L99[*]}" | median)
MQ50=$(echo "${Q50[*]}" | median) ML50=$(echo "${L50[*]}" | median)
ERRS=$(grep -c ' warn \| err ' "$TMPD/zcrelay.log" || true)
echo "sockperf ping-pong, TCP, 64 B, ${SECS} s per run, $ROUNDS alternating rounds, 9000 other sessions open;"
echo "polled: 50 clients GET /sessions (default limit 1000) every 100 ms over the Unix admin socket."
echo
echo "| | p50 per round (µs) | p99 per round (µs) | p50 median | p99 median |"
echo "|---|---|---|---:|---:|"
echo "| quiet | ${Q50[*]} | ${Q99[*]} | $MQ50 | $MQ99 |"
echo "| polled | ${L50[*]} | ${L99[*]} | $ML50 | $ML99 |"
echo
awk -v a="$ML99" -v b="$MQ99" -v c="$ML50" -v d="$MQ50" 'BEGIN { printf "p99 polled/quiet %.2f, p50 polled/quiet %.2f\n", a / b, c / d }'
echo
echo "pollers per round:"
printf '  %s\n' "${POLLS[@]}"
echo "one client, all 9001 sessions (limit=100000), quiet: $ONE_ALL"
echo "one client, GET /sessions (1000), quiet: $ONE_PAGE"
echo "session warnings/errors in the daemon's log: $ERRS"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
