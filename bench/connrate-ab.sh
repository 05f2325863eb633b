#!/usr/bin/env bash
# bench/connrate-ab.sh - short connections per second through zcrelay
# set-ups compared in one run, passes alternating so that drift of the
# machine hits every set-up alike.
#
#   bench/connrate-ab.sh [PASSES] [SETUP...]
#
# A SETUP is LABEL=BINARY:ENGINE:MOVER[:NET[:CONF]], e.g.
#   new-uring=build/zcrelay:uring:auto  old-uring=/tmp/old/zcrelay:uring:auto
# NET "poll" sets ZC_URING_NET=poll; CONF is a config file run with -c
# instead of -l/-u, in which @RELAY@ and @ECHO@ stand for the relay's and
# the echo server's addresses (see bench/routing/). BENCH_PAYLOAD=FILE
# sends that file's bytes instead of 64 'z's (a TLS ClientHello:
# bench/routing/hello.bin), e.g. for content routing with and without a
# match in one run:
#   BENCH_PAYLOAD=bench/routing/hello.bin bench/connrate-ab.sh 5 \
#     plain=build/zcrelay:epoll:auto::bench/routing/plain.conf \
#     sni=build/zcrelay:epoll:auto::bench/routing/sni.conf
# A SETUP "LABEL=haproxy" (or "LABEL=haproxy:busy", with HAProxy's
# busy-polling) runs HAProxy in TCP mode as a peer in the same passes.
# BENCH_WORKERS (default 1): zcrelay's workers and HAProxy's nbthread.
# Default: build/zcrelay on epoll and on uring (mover auto), and on uring
# with ZC_URING_NET=poll (accept4/connect instead of io_uring requests).
# Each pass runs bench/tools/bin/connrate (50 workers, 64-byte echo, the
# server closes first) for BENCH_SHORT seconds (default 5) against each
# set-up; one worker per relay; output: a markdown table of conn/s and
# of the relay's CPU time per connection (utime+stime from /proc; the
# client and server share the 2 CPUs, so conn/s alone hides what the
# relay saves), per pass, median, and each median's ratio to the first
# set-up's.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PASSES=${1:-5}
[[ $PASSES =~ ^[0-9]+$ && $PASSES -gt 0 ]] || { echo "usage: $0 [PASSES] [LABEL=BIN:ENGINE:MOVER...]" >&2; exit 2; }
shift || true
SECS=${BENCH_SHORT:-5}
WORKERS=${BENCH_WORKERS:-1}
BASE=${BENCH_PORT_BASE:-23000}
BIN=$HERE/tools/bin
ECHO_PORT=$((BASE + 1))
RELAY_PORT=$((BASE + 2))

SETUPS=("$@")
if ((${#SETUPS[@]} == 0)); then
	SETUPS=("epoll=$ROOT/build/zcrelay:epoll:auto"
		"uring=$ROOT/build/zcrelay:uring:auto"
		"uring-syscalls=$ROOT/build/zcrelay:uring:auto:poll")
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [[ ! -x $BIN/connrate || ! -x $BIN/echo ]]; then
	log "building Go tools into bench/tools/bin"
	mkdir -p "$BIN" /tmp/zcbench-go
	(cd "$HERE/tools" && GOPATH=/tmp/zcbench-go/gopath GOCACHE=/tmp/zcbench-go/cache \
		GOPROXY=off GOFLAGS='' GO111MODULE=on timeout 300 go build -o "$BIN/" ./echo ./connrate)
fi

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh" # PIDS, cleanup on exit, wait_port

PAYLOAD=()
SIZE=64
if [[ -n ${BENCH_PAYLOAD:-} ]]; then
	PAYLOAD=(-payload "$BENCH_PAYLOAD")
	SIZE=$(stat -c %s "$BENCH_PAYLOAD")
fi
"$BIN/echo" -listen "127.0.0.1:$ECHO_PORT" -close-after "$SIZE" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$ECHO_PORT" || { echo "echo server did not start" >&2; exit 1; }

# CPU busy % of the whole machine over 0.5 s (from /proc/stat).
busy() {
	local a b
	a=($(head -n 1 /proc/stat))
	sleep 0.5
	b=($(head -n 1 /proc/stat))
	awk -v u=$((b[1] + b[2] + b[3] + b[6] + b[7] + b[8] - a[1] - a[2] - a[3] - a[6] - a[7] - a[8])) \
		-v i=$((b[4] + b[5] - a[4] - a[5])) 'BEGIN {printf "%d", (u + i > 0 ? 100 * u / (u + i) : 0)}'
}

# Waits up to BENCH_WAIT_QUIET seconds (default 120) for other load to
# stop: on 2 vCPUs a build or a test suite skews every number.
wait_quiet() {
	local t0=$SECONDS b
	while (($(b=$(busy); echo "$b") > 10)); do
		if ((SECONDS - t0 > ${BENCH_WAIT_QUIET:-120})); then
			log "machine still busy; measuring anyway"
			return
		fi
	done
}

# utime + stime of a process, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# haproxy_conf FILE BUSY: a TCP-mode HAProxy from RELAY_PORT to ECHO_PORT.
haproxy_conf() {
	{
		echo "global"
		echo "    nbthread $WORKERS"
		[[ $2 == busy ]] && echo "    busy-polling"
		echo "    maxconn 4000"
		echo "defaults"
		echo "    mode tcp"
		echo "    timeout connect 5s"
		echo "    timeout client 60s"
		echo "    timeout server 60s"
		echo "frontend fe"
		echo "    bind 127.0.0.1:$RELAY_PORT"
		echo "    default_backend be"
		echo "backend be"
		echo "    server up 127.0.0.1:$ECHO_PORT"
	} >"$1"
}

declare -A RES CPU
run_one() { # run_one SETUP PASS
	local label=${1%%=*} spec=${1#*=} bin engine mover net conf pid out t0 t1 ok
	local args=()
	IFS=: read -r bin engine mover net conf <<<"$spec"
	wait_quiet
	if [[ $bin == haproxy ]]; then
		haproxy_conf "/tmp/zcbench-$label.haproxy.cfg" "$engine"
		bin=haproxy args=(-db -f "/tmp/zcbench-$label.haproxy.cfg")
	elif [[ -n $conf ]]; then # engine and mover from the file
		sed -e "s/@RELAY@/127.0.0.1:$RELAY_PORT/g" \
			-e "s/@ECHO@/127.0.0.1:$ECHO_PORT/g" "$conf" >"/tmp/zcbench-$label.conf"
		args=(-q -c "/tmp/zcbench-$label.conf")
	else
		args=(-q -w "$WORKERS" -e "$engine" -m "$mover" -l "127.0.0.1:$RELAY_PORT" \
			-u "127.0.0.1:$ECHO_PORT")
	fi
	if [[ $net == poll ]]; then
		ZC_URING_NET=poll "$bin" "${args[@]}" &
	else
		"$bin" "${args[@]}" >/dev/null 2>&1 &
	fi
	pid=$!
	wait_port "$RELAY_PORT" || { kill "$pid"; echo "$label did not start" >&2; exit 1; }
	t0=$(cputicks "$pid")
	out=$(timeout $((SECS + 30)) "$BIN/connrate" -addr "127.0.0.1:$RELAY_PORT" \
		-c 50 -d "${SECS}s" -size "$SIZE" "${PAYLOAD[@]}" -wait-eof 2>&1 | tail -n 1)
	t1=$(cputicks "$pid")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	# "rate=R ok=N failed=F ...": keep R, and the relay's CPU per client.
	RES[$label,$2]=$(sed -n 's/^rate=\([0-9.]*\) .*/\1/p' <<<"$out")
	ok=$(sed -n 's/.* ok=\([0-9]*\) .*/\1/p' <<<"$out")
	[[ -n ${RES[$label,$2]} ]] || RES[$label,$2]=0
	CPU[$label,$2]=$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v n="${ok:-0}" \
		'BEGIN {printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0)}')
	log "pass $2 $label: ${RES[$label,$2]} conn/s, relay ${CPU[$label,$2]} µs CPU/conn ($out)"
}

for ((p = 1; p <= PASSES; p++)); do
	for s in "${SETUPS[@]}"; do run_one "$s" "$p"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.1f\n", (v[NR/2]+v[NR/2+1])/2}'; }
echo "| set-up | conn/s per pass | median | ÷ ${SETUPS[0]%%=*} | relay µs CPU/conn per pass | median | ÷ ${SETUPS[0]%%=*} |"
echo "|---|---|---:|---:|---|---:|---:|"
first= cfirst=
for s in "${SETUPS[@]}"; do
	label=${s%%=*}
	vals=() cpus=()
	for ((p = 1; p <= PASSES; p++)); do
		vals+=("${RES[$label,$p]}")
		cpus+=("${CPU[$label,$p]}")
	done
	med=$(printf '%s\n' "${vals[@]}" | median)
	cmed=$(printf '%s\n' "${cpus[@]}" | median)
	[[ -n $first ]] || { first=$med; cfirst=$cmed; }
	echo "| $label | $(IFS=,; echo "${vals[*]}" | sed 's/,/, /g') | $med | $(ratio "$med" "$first") |" \
		"$(IFS=,; echo "${cpus[*]}" | sed 's/,/, /g') | $cmed | $(ratio "$cmed" "$cfirst") |"
done
