#!/usr/bin/env bash
# bench/bulk-ab.sh - bulk throughput and relay CPU per GB of zcrelay set-ups,
# in alternating rounds, so that the machine's drift hits every set-up
# alike (one iperf3 stream through a daemon with two workers).
#
#   bench/bulk-ab.sh ROUNDS "LABEL|BINARY|ARGS" ...
#
# e.g. bench/bulk-ab.sh 3 "off|build/zcrelay|--busy-poll off" \
#                         "auto|build/zcrelay|--busy-poll auto"
# Prints one line per set-up and round: Gbit/s and the relay's CPU
# (utime + stime from /proc) per GB. Needs iperf3. Ports 25201-25202.
set -euo pipefail

R=${1:-}
[[ $R =~ ^[0-9]+$ && $R -gt 0 && $# -ge 2 ]] || { echo "usage: $0 ROUNDS 'LABEL|BINARY|ARGS'..." >&2; exit 2; }
shift
command -v iperf3 >/dev/null || { echo "iperf3 not found (Debian: iperf3)" >&2; exit 1; }
SECS=${BENCH_TIME:-4}
HZ=$(getconf CLK_TCK)
iperf3 -s -B 127.0.0.1 -p 25201 >/dev/null 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null || true' EXIT
sleep 0.5
for ((r = 1; r <= R; r++)); do
	for s in "$@"; do
		IFS='|' read -r label bin args <<<"$s"
		# shellcheck disable=SC2086
		"$bin" -q -w 2 $args -l 127.0.0.1:25202 -u 127.0.0.1:25201 2>/dev/null &
		p=$!
		sleep 0.4
		c0=$(awk '{print $14 + $15}' "/proc/$p/stat")
		out=$(iperf3 -c 127.0.0.1 -p 25202 -t "$SECS" -J 2>/dev/null)
		c1=$(awk '{print $14 + $15}' "/proc/$p/stat")
		kill "$p"
		wait "$p" 2>/dev/null || true
		python3 -c '
import json, sys
j = json.loads(sys.argv[1])
b = j["end"]["sum_received"]["bytes"]
s = j["end"]["sum_received"]["seconds"]
print("round %s %-24s %6.2f Gbit/s  %.3f s/GB" % (sys.argv[2], sys.argv[3], b * 8 / s / 1e9,
      int(sys.argv[4]) / int(sys.argv[5]) / (b / 1e9)))' "$out" "$r" "$label" $((c1 - c0)) "$HZ"
	done
done
