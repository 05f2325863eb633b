#!/usr/bin/env bash
# demo.sh - zcrelay's main job on a built-in default: a local upstream,
# zcrelay in front of it, 512 MiB of random data through it both ways,
# checked end to end with SHA-256, and the relay's per-session stats.
#
# usage: scripts/demo.sh [path/to/zcrelay]   (or: make demo)
set -euo pipefail

ZCRELAY=${1:-./build/zcrelay}
SIZE_MB=${DEMO_MB:-512}
for tool in socat sha256sum; do
	command -v "$tool" >/dev/null || { echo "demo: $tool is missing (apt-get install socat coreutils)" >&2; exit 1; }
done
[ -x "$ZCRELAY" ] || { echo "demo: $ZCRELAY not built (run make)" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

# Ports below the ephemeral range; pick a free pair.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for base in 24000 24100 24200 24300 24400; do
	if port_free "$base" && port_free $((base + 1)); then break; fi
done
RELAY=$base UP=$((base + 1))

# Waits (5 s at most) until something listens on PORT, from
# /proc/net/tcp: a probing connect would use up socat's only accept.
wait_listen() {
	local hex
	hex=$(printf ':%04X 00000000:0000 0A' "$1")
	for _ in $(seq 50); do
		grep -q "$hex" /proc/net/tcp && return 0
		sleep 0.1
	done
	echo "demo: nothing listens on port $1" >&2
	return 1
}

head -c "${SIZE_MB}M" /dev/urandom >"$dir/data"
want=$(sha256sum <"$dir/data" | cut -d' ' -f1)

# Upstream: stores what it receives, then answers with the same file.
socat -b 1048576 -u "TCP-LISTEN:$UP,reuseaddr" "OPEN:$dir/up.out,creat,trunc" &
pids+=($!)
wait_listen "$UP"
"$ZCRELAY" --listen "127.0.0.1:$RELAY" --upstream "127.0.0.1:$UP" 2>"$dir/relay.log" &
pids+=($!)
for _ in $(seq 50); do grep -q listening "$dir/relay.log" && break; sleep 0.1; done

echo "demo: client -> zcrelay :$RELAY -> upstream :$UP, ${SIZE_MB} MiB upload"
socat -b 1048576 -u "OPEN:$dir/data" "TCP:127.0.0.1:$RELAY"
for _ in $(seq 100); do grep -q ' session ' "$dir/relay.log" && break; sleep 0.1; done
got=$(sha256sum <"$dir/up.out" | cut -d' ' -f1)

# Download: the upstream now sends, the client stores.
socat -b 1048576 -u "OPEN:$dir/data" "TCP-LISTEN:$UP,reuseaddr" &
pids+=($!)
wait_listen "$UP"
socat -b 1048576 -u "TCP:127.0.0.1:$RELAY" "OPEN:$dir/down.out,creat,trunc"
for _ in $(seq 100); do [ "$(grep -c ' session ' "$dir/relay.log")" -ge 2 ] && break; sleep 0.1; done
got2=$(sha256sum <"$dir/down.out" | cut -d' ' -f1)

echo "demo: relay log:"
sed 's/^/  /' "$dir/relay.log"
grep ' session .* up=' "$dir/relay.log" | while read -r line; do
	bytes=$(sed -n 's/.* up=\([0-9]*\) down=\([0-9]*\).*/\1 \2/p' <<<"$line")
	secs=$(sed -n 's/.* duration=\([0-9.]*\)s.*/\1/p' <<<"$line")
	awk -v b="$bytes" -v s="$secs" 'BEGIN { split(b, a, " "); t = a[1] + a[2];
		printf "demo: session moved %d bytes in %.3f s = %.2f Gbit/s\n", t, s, (s > 0 ? t * 8 / s / 1e9 : 0) }'
done
echo "demo: sha256 sent       $want"
echo "demo: sha256 upstream   $got"
echo "demo: sha256 client     $got2"
if [ "$want" = "$got" ] && [ "$want" = "$got2" ]; then
	echo "demo: OK, both directions byte-exact"
else
	echo "demo: FAILED, digests differ" >&2
	exit 1
fi
