#!/usr/bin/env bash
# demo.sh - why zcrelay exists, on one screen: the same transfers over
# loopback direct and through zcrelay, with throughput, the relay's CPU
# time per GB and how many bytes it spliced or copied, and every transfer
# checked with SHA-256 at the receiving end.
#
# The ends are build/zcdemo (demo/zcdemo.c): a sender writing from memory
# and a receiver hashing as it reads, so the relay is what is measured.
# No root, no network: everything listens on 127.0.0.1.
#
# usage: scripts/demo.sh [path/to/zcrelay [path/to/zcdemo]]   (or: make demo)
# DEMO_MB=N sets the MiB per transfer (default 512), DEMO_RUNS=N how
# many times each runs (default 3; the fastest is shown).
set -euo pipefail

ZCRELAY=${1:-./build/zcrelay}
ZCDEMO=${2:-./build/zcdemo}
MB=${DEMO_MB:-512}
RUNS=${DEMO_RUNS:-3}
for b in "$ZCRELAY" "$ZCDEMO"; do
	[ -x "$b" ] || { echo "demo: $b not built (run make demo)" >&2; exit 1; }
done
[[ $MB =~ ^[1-9][0-9]*$ ]] || { echo "demo: DEMO_MB must be a number of MiB" >&2; exit 2; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "demo: DEMO_RUNS must be a positive number" >&2; exit 2; }

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

die() {
	echo "demo: FAILED: $*" >&2
	[ -f "$dir/relay.log" ] && sed 's/^/  relay: /' "$dir/relay.log" >&2
	exit 1
}

# Waits (10 s at most) until file $1 has at least $3 lines matching $2.
wait_lines() {
	local _ n
	for _ in $(seq 200); do
		n=$(grep -c -- "$2" "$1" 2>/dev/null || true)
		[ "${n:-0}" -ge "$3" ] && return 0
		sleep 0.05
	done
	die "no \"$2\" in $1"
}

# Three relay ports below the ephemeral range, nobody listening.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for base in 24000 24100 24200 24300 24400 24500; do
	port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) && break
done

want=$("$ZCDEMO" digest "$MB")

# The upstreams: a receiver (uploads end here) and a sender (downloads).
"$ZCDEMO" listen 127.0.0.1:0 recv >"$dir/sink.out" 2>&1 &
pids+=($!)
"$ZCDEMO" listen 127.0.0.1:0 send "$MB" >"$dir/source.out" 2>&1 &
pids+=($!)
wait_lines "$dir/sink.out" "^listening on" 1
wait_lines "$dir/source.out" "^listening on" 1
sink=$(sed -n 's/^listening on //p' "$dir/sink.out")
source=$(sed -n 's/^listening on //p' "$dir/source.out")

# One worker, three routes: the default mover (auto: splice once a read
# fills the buffer), the same for downloads, and copy for comparison.
cat >"$dir/zcrelay.conf" <<EOF
workers = 1;
routes = (
	{ name = "up";   listen = "127.0.0.1:$base";       upstreams = "$sink"; },
	{ name = "down"; listen = "127.0.0.1:$((base + 1))"; upstreams = "$source"; },
	{ name = "copy"; listen = "127.0.0.1:$((base + 2))"; upstreams = "$sink"; mover = "copy"; }
);
EOF
"$ZCRELAY" -c "$dir/zcrelay.conf" >"$dir/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
wait_lines "$dir/relay.log" " listening on " 1

# CPU time of every thread of the relay, in nanoseconds: from schedstat
# (nanoseconds), or from /proc/PID/stat (clock ticks) without it.
tick_ns=$((1000000000 / $(getconf CLK_TCK)))
relay_cpu() {
	if [ -r "/proc/$relay/schedstat" ]; then
		cat /proc/"$relay"/task/*/schedstat | awk '{ s += $1 } END { print s }'
	else
		sed 's/.*) //' "/proc/$relay/stat" |
			awk -v t="$tick_ns" '{ print ($12 + $13) * t }'
	fi
}

# once ROUTE|- ADDR send|recv LABEL: one transfer, checked; sets gbit,
# and cpu (relay CPU seconds per GB) unless ROUTE is -. The receiving
# end's "recv BYTES NS SHA256" line gives time and digest.
once() {
	local route=$1 addr=$2 how=$3 label=$4 line bytes ns sha cpu0
	cpu0=$(relay_cpu)
	if [ "$how" = send ]; then
		"$ZCDEMO" connect "$addr" send "$MB" >/dev/null || die "$label: send"
		wait_lines "$dir/sink.out" "^recv " $((++nrecv))
		line=$(grep "^recv " "$dir/sink.out" | tail -n 1)
	else
		line=$("$ZCDEMO" connect "$addr" recv) || die "$label: recv"
	fi
	read -r _ bytes ns sha <<<"$line"
	[ "$bytes" = $((MB << 20)) ] || die "$label: $bytes bytes arrived, not $((MB << 20))"
	[ "$sha" = "$want" ] || die "$label: sha256 $sha, want $want"
	gbit=$(awk -v b="$bytes" -v ns="$ns" 'BEGIN { printf "%.2f", b * 8 / ns }')
	cpu=-
	[ "$route" = - ] && return
	wait_lines "$dir/relay.log" " session " $((++nsessions))
	cpu=$(awk -v a="$cpu0" -v b="$(relay_cpu)" -v n="$bytes" \
		'BEGIN { printf "%.2f", (b - a) / n }')
}

# row LABEL ROUTE|- ADDR send|recv: RUNS transfers, the fastest printed
# (other processes on the machine slow some down); sets gbit and cpu.
row() {
	local label=$1 best=0 best_cpu=- split i
	for ((i = 0; i < RUNS; i++)); do
		once "$2" "$3" "$4" "$label"
		if awk -v a="$gbit" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$gbit best_cpu=$cpu
		fi
	done
	gbit=$best cpu=$best_cpu
	split=$(printf '%7s  %7s' - -)
	if [ "$2" != - ]; then
		split=$(grep " session .*route=$2 " "$dir/relay.log" | tail -n 1 |
			sed -n 's/.* spliced=\([0-9]*\) copied=\([0-9]*\).*/\1 \2/p' |
			awk '{ t = $1 + $2; printf "%5.1f %%  %5.1f %%", 100 * $1 / t, 100 * $2 / t }')
	fi
	printf '%-34s %7s  %10s   %s   ok\n' "$label" "$gbit" \
		"$([ "$cpu" = - ] && echo - || echo "$cpu s")" "$split"
}
nrecv=0 nsessions=0

echo "demo: $MB MiB per transfer over loopback (fastest of $RUNS), zcrelay with 1 worker;"
echo "      the receiver checks every byte with SHA-256 ($want)"
echo
printf '%-34s %7s  %10s   %7s  %7s   %s\n' transfer Gbit/s "relay CPU" spliced copied sha256
printf '%-34s %7s  %10s\n' "" "" "per GB"
row "direct       client -> upstream" - "$sink" send
up_direct=$gbit
row "zcrelay auto client -> upstream" up "127.0.0.1:$base" send
up_relay=$gbit up_cpu=$cpu
row "direct       upstream -> client" - "$source" recv
down_direct=$gbit
row "zcrelay auto upstream -> client" down "127.0.0.1:$((base + 1))" recv
down_relay=$gbit
row "zcrelay copy client -> upstream" copy "127.0.0.1:$((base + 2))" send
copy_cpu=$cpu
echo
awk -v ud="$up_direct" -v ur="$up_relay" -v dd="$down_direct" -v dr="$down_relay" \
	-v uc="$up_cpu" -v cc="$copy_cpu" 'BEGIN {
	printf "demo: OK, every transfer byte-exact. Through zcrelay the bytes moved at\n"
	printf "      %.0f %% (upload) and %.0f %% (download) of the direct rate, and the relay\n",
		100 * ur / ud, 100 * dr / dd
	printf "      spent %.2f s of CPU per GB splicing them through kernel pipes, where\n", uc
	printf "      copying them through user space (mover copy) costs %.2f s (%.1fx).\n",
		cc, (uc > 0 ? cc / uc : 0)
	printf "      The ends share the CPUs with the relay and the receiver hashes every\n"
	printf "      byte: on a machine with few CPUs they limit the rates as much as it.\n" }'
