#!/usr/bin/env bash
# bench/admin-ab.sh - what polling the admin API costs the relay: the
# round-trip latency through zcrelay with and without 50 clients polling
# GET /sessions every 100 ms, while 9,000 sessions are open.
#
#   bench/admin-ab.sh [ROUNDS]    (default 15; BENCH_SHORT=SECS per run, 2;
#                                  POLLERS=normal|idle; ZC=BINARY)
#
# Set-up: bench/tools/echo behind route "idle", which bench/tools/idle
# fills with 9,000 sessions (each proved with a round trip); sockperf's
# server behind route "pp". A round is three sockperf ping-pong runs
# (TCP, 64 B) through "pp": quiet (A), while bench/tools/adminpoll polls
# (GET /sessions: the 1,000 oldest of the 9,001, the API's default
# limit), quiet again (B). The round's effect is the polled p99 over the
# geometric mean of A's and B's; its noise is B/A, two runs in the same
# conditions seconds apart (an A/A ratio): on a machine shared with
# other work the quiet p99 alone moves by several times from one run to
# the next. The effect is within noise when its median lies inside the
# spread (Q1..Q3) of the noise ratios, taken both ways (A/B and B/A).
# POLLERS=idle runs the 50 pollers under SCHED_IDLE (chrt -i 0): clients
# that in production sit on other machines then take no CPU from the
# relay or sockperf, and what remains is what the daemon's own admin
# work costs the relay.
# It prints each run's p50/p99, the effect and noise quartiles, the
# pollers' answer times, then the answer time of one client listing all
# 9,001 sessions (limit=100000) and the default page, the session errors
# the daemon logged (must be 0), and the load average.
# Needs go, sockperf, ss (iproute2), chrt (util-linux) for POLLERS=idle.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
ROUNDS=${1:-15}
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -gt 0 ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
SECS=${BENCH_SHORT:-2}
POLLERS=${POLLERS:-normal}
case $POLLERS in
normal) PRIO=() ;;
idle) PRIO=(chrt -i 0) ;;
*) echo "POLLERS must be normal or idle" >&2; exit 2 ;;
esac
BASE=${BENCH_PORT_BASE:-25000}
ECHO_PORT=$((BASE + 1)) SP_PORT=$((BASE + 2)) IDLE_PORT=$((BASE + 3)) PP_PORT=$((BASE + 4))
ZC=${ZC:-$ROOT/build/zcrelay}
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
trap 'exec 3>&-; exit 130' INT TERM # the EXIT trap stops the rest; idle ends at EOF

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
# quartiles: "Q1 median Q3" of the numbers on stdin (nearest rank).
quartiles() {
	tr ' ' '\n' | sort -g | awk '{ a[NR] = $1 } END {
		q1 = int((NR + 3) / 4); q3 = NR + 1 - q1
		print a[q1], a[int((NR + 1) / 2)], a[q3] }'
}

# polled: one ping while the 50 pollers run; their summary in POLL_OUT.
polled() {
	local poll
	"${PRIO[@]}" "$TMPD/adminpoll" -unix "$SOCK" -path /sessions -n 50 -every 100ms \
		-for $((SECS + 2))s >"$TMPD/poll.out" 2>&1 &
	poll=$!
	sleep 1
	ping
	wait $poll || { echo "adminpoll: $(cat "$TMPD/poll.out")" >&2; exit 1; }
	POLL_OUT=$(cat "$TMPD/poll.out")
}

Q50=() Q99=() L50=() L99=() POLLS=() EFF=() NOISE=()
for ((r = 1; r <= ROUNDS; r++)); do
	ping
	A50=$P50 A99=$P99
	polled
	L50+=("$P50") L99+=("$P99")
	ping
	Q50+=("$A50" "$P50") Q99+=("$A99" "$P99")
	POLLS+=("$POLL_OUT")
	EFF+=("$(awk -v l="${L99[-1]}" -v a="$A99" -v b="$P99" 'BEGIN { printf "%.2f", l / sqrt(a * b) }')")
	NOISE+=("$(awk -v a="$A99" -v b="$P99" 'BEGIN { printf "%.2f %.2f", b / a, a / b }')")
	log "round $r: quiet p99 $A99 and $P99, polled p99 ${L99[-1]} µs (p50 $A50, $P50, ${L50[-1]}); effect ${EFF[-1]}; ${POLLS[-1]}"
done
# Every 300 ms: longer than a listing is shared (250 ms), so that each
# of these answers is a listing made for it.
ONE_ALL=$("$TMPD/adminpoll" -unix "$SOCK" -n 1 -every 300ms -for 12s)
ONE_PAGE=$("$TMPD/adminpoll" -unix "$SOCK" -path /sessions -n 1 -every 300ms -for 12s)
exec 3>&-

MQ99=$(echo "${Q99[*]}" | median) ML99=$(echo "${L99[*]}" | median)
MQ50=$(echo "${Q50[*]}" | median) ML50=$(echo "${L50[*]}" | median)
ERRS=$(grep -c ' warn \| err ' "$TMPD/zcrelay.log" || true)
echo "sockperf ping-pong, TCP, 64 B, ${SECS} s per run, $ROUNDS rounds of quiet, polled, quiet; 9000 other sessions open;"
echo "polled: 50 clients GET /sessions (default limit 1000) every 100 ms over the Unix admin socket;"
echo "pollers' scheduling: $POLLERS."
echo
echo "| | p50 per run (µs) | p99 per run (µs) | p50 median | p99 median |"
echo "|---|---|---|---:|---:|"
echo "| quiet | ${Q50[*]} | ${Q99[*]} | $MQ50 | $MQ99 |"
echo "| polled | ${L50[*]} | ${L99[*]} | $ML50 | $ML99 |"
echo
awk -v a="$ML99" -v b="$MQ99" -v c="$ML50" -v d="$MQ50" 'BEGIN { printf "p99 medians polled/quiet %.2f, p50 medians polled/quiet %.2f\n", a / b, c / d }'
echo "effect per round (polled p99 / geometric mean of the round's two quiet p99): ${EFF[*]}"
echo "effect Q1 median Q3: $(echo "${EFF[*]}" | quartiles)"
echo "noise (quiet p99 B/A and A/B) Q1 median Q3: $(echo "${NOISE[*]}" | quartiles)"
echo
echo "pollers per round:"
printf '  %s\n' "${POLLS[@]}"
echo "one client, all 9001 sessions (limit=100000), quiet: $ONE_ALL"
echo "one client, GET /sessions (1000), quiet: $ONE_PAGE"
echo "session warnings/errors in the daemon's log: $ERRS"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
