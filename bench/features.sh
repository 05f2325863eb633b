#!/usr/bin/env bash
# bench/features.sh: what the production features cost in throughput.
#
# Two zcrelay hops in a chain, client -> A -> B -> iperf3 server, all on
# 127.0.0.1, measured in alternating passes:
#   plain: A and B with nothing but a route;
#   full:  idle, half-closed and connect timeouts, route and per-client
#          limits, A sends a PROXY v2 header that B accepts from a trusted
#          sender, passive and active health checks, and both serve
#          /metrics (scraped during the run).
# PROXY needs a sender and a receiver, hence two hops in both set-ups.
# Prints a markdown table: the median Gbit/s of each, full / plain, and
# the bytes each hop moved by splice and by copy (from /metrics).
#
# Usage: bench/features.sh [PASSES] (default 3; 10 s iperf3 runs,
# BENCH_TIME to change). Needs iperf3 and curl.
set -euo pipefail

PASSES=${1:-3}
T=${BENCH_TIME:-10}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZC=${ZCRELAY:-$HERE/../build/zcrelay}
BASE=${BENCH_PORT_BASE:-23000}
UP=$((BASE)) B=$((BASE + 1)) A=$((BASE + 2)) MB=$((BASE + 3)) MA=$((BASE + 4))
TMPD=$(mktemp -d)
PIDS=()

cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMPD"
}
trap cleanup EXIT

for t in iperf3 curl "$ZC"; do
	command -v "$t" >/dev/null || { echo "features.sh: $t not found" >&2; exit 2; }
done

# conf NAME LISTEN UPSTREAM FULL ADMIN ROLE: write a config file.
conf() {
	local name=$1 listen=$2 up=$3 full=$4 admin=$5 role=$6 extra=""
	if [[ $full == 1 ]]; then
		extra="idle-timeout = \"60s\"; halfclose-timeout = \"60s\";
		  connect-timeout = 2000; max-conns = 10000;
		  max-conns-per-client = 1000;
		  health = { fail-max = 3; cooldown = 1000;
		             check-interval = 1000; check-timeout = 500; };"
		if [[ $role == sender ]]; then
			extra+=" proxy-protocol = { send = 2; };"
		else
			extra+=" proxy-protocol = { accept = true;
			  trusted = [ \"127.0.0.1\" ]; timeout = 3000; };"
		fi
	fi
	cat >"$TMPD/$name.conf" <<EOF
workers = 1;
$([[ $full == 1 ]] && echo "admin = \"127.0.0.1:$admin\";")
log = { sessions = false; };
routes = ( { name = "$name"; listen = "127.0.0.1:$listen";
  upstreams = "127.0.0.1:$up"; $extra } );
EOF
}

start() { # start CONF
	"$ZC" -c "$TMPD/$1.conf" 2>>"$TMPD/$1.log" &
	PIDS+=($!)
}

stop_relays() {
	local p
	for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]:1}"; do wait "$p" 2>/dev/null || true; done
	PIDS=("${PIDS[0]}")
}

wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		ss -Hltn "( sport = :$1 )" | grep -q . && return 0
		sleep 0.05
	done
	echo "features.sh: nothing listens on $1" >&2
	exit 1
}

metric() { # metric PORT NAME: sum of the samples of NAME
	curl -s "http://127.0.0.1:$1/metrics" |
		awk -v n="$2" 'index($0, n) == 1 { s += $NF } END { printf "%.0f", s }'
}

run() { # run plain|full: Gbit/s into $TMPD/gbps
	local full=$([[ $1 == full ]] && echo 1 || echo 0) gbps scraper=
	conf b "$B" "$UP" "$full" "$MB" receiver
	conf a "$A" "$B" "$full" "$MA" sender
	start b
	start a
	wait_port "$A"
	wait_port "$B"
	if [[ $full == 1 ]]; then # scrape while the bytes flow
		(for ((i = 0; i < T; i++)); do
			sleep 1
			curl -s "http://127.0.0.1:$MA/metrics" >/dev/null || true
		done) &
		scraper=$!
	fi
	gbps=$(iperf3 -c 127.0.0.1 -p "$A" -t "$T" -J |
		awk -F'[:,]' '/"sum_received"/ { f = 1 } f && /"bits_per_second"/ { printf "%.2f", $2 / 1e9; exit }')
	if [[ $full == 1 ]]; then
		wait "$scraper"
		echo "$(metric "$MA" zcrelay_route_spliced_bytes_total)+$(metric "$MB" zcrelay_route_spliced_bytes_total)" >"$TMPD/spliced"
		echo "$(metric "$MA" zcrelay_route_copied_bytes_total)+$(metric "$MB" zcrelay_route_copied_bytes_total)" >"$TMPD/copied"
	fi
	stop_relays
	echo "$gbps" >"$TMPD/gbps"
}

median() { tr ' ' '\n' | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

iperf3 -s -p "$UP" -B 127.0.0.1 >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$UP"
P=() F=()
for ((i = 1; i <= PASSES; i++)); do
	run plain
	P+=("$(cat "$TMPD/gbps")")
	run full
	F+=("$(cat "$TMPD/gbps")")
	echo "pass $i: plain ${P[-1]} Gbit/s, full ${F[-1]} Gbit/s" >&2
done
mp=$(echo "${P[*]}" | median)
mf=$(echo "${F[*]}" | median)
echo "| set-up | Gbit/s (median of $PASSES × ${T} s) | full ÷ plain | spliced bytes A+B (last full pass) | copied bytes A+B |"
echo "|---|---|---|---|---|"
echo "| plain | $mp | | | |"
echo "| full  | $mf | $(awk -v f="$mf" -v p="$mp" 'BEGIN { printf "%.3f", f / p }') | $(cat "$TMPD/spliced") | $(cat "$TMPD/copied") |"
