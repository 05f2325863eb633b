#!/usr/bin/env bash
# bench/run.sh: benchmark zcrelay against peer L4 relays on loopback.
#
# Starts the upstream servers (iperf3, sockperf, a Go echo server, nginx for
# HTTP), then for each measurement, row after row (direct, zcrelay variants,
# haproxy, nginx stream, socat, a Go io.Copy relay), starts a fresh relay,
# measures, stops it, and prints two markdown tables on stdout (progress
# goes to stderr).
# Everything binds to 127.0.0.1 only, on fixed ports below 32768.
#
# Usage: bench/run.sh [--quick] [--help]     (see bench/README.md)
set -euo pipefail

usage() {
	cat <<'EOF'
usage: bench/run.sh [--quick] [--help]

  --quick   smoke run (~2 min): 1 s tests, 1000 idle connections

Environment (defaults in brackets):
  ZCRELAY        relay binary under test [./build/zcrelay]
  ZC_VARIANTS    space-separated ENGINE:MOVER[:BUSYPOLL] rows
                 [auto:splice auto:copy auto:auto:auto]
                 (ring-zc runs --mover ring with ZC_RING_ZC=16384:
                 SEND_ZC from 16 KiB;
                 uring-splice is the daemon's own --mover uring-splice;
                 BUSYPOLL is passed to --busy-poll: off, auto or US)
  ZCRELAY_BASE   a second build (say, main before a change): each ZC_VARIANTS
                 row runs on it too, labelled "zcrelay base ...", in the same
                 passes, for an A/B of two builds in one run [none]
  ZC_NONROOT     ENGINE:MOVER for the non-root row, empty to skip [auto:splice]
  BENCH_TIME     iperf3 -t seconds [5; quick 1]
  BENCH_SHORT    seconds for sockperf / connrate / wrk [BENCH_TIME]
  IDLE_CONNS     idle connections to hold [9000; quick 1000]
  IDLE_CPU_SECS  seconds the relay's CPU is measured while it holds them
                 [10; quick 2]
  BENCH_REPEAT   passes over all rows; tables show the median [1]
  BENCH_ONLY     extended regex: only rows whose label matches
  BENCH_MEASURES the measurements to run, in this order
                 [iperf sockperf connrate wrk redis idle]
  BENCH_PORT_BASE first port [21000]; uses BASE+1..5 and BASE+100..BASE+999
  BENCH_OUT      also write the tables to this file
  BENCH_KEEP=1   keep the temp dir (configs and logs) and print its path
  BENCH_RETRY    rerun a measurement of a row up to this many times when others used
                 > 5 % of the CPUs during it; keep the least disturbed [0]
  BENCH_WAIT_QUIET before each measurement, wait up to this many s for other load
                 on the machine to stop (CPUs <= 10 % busy) [0]
  BENCH_DEADLINE watchdog: abort the whole run after this many s
                 [900 (quick 300) + 10 * BENCH_WAIT_QUIET + 600 (quick 150) * BENCH_RETRY]
EOF
}

QUICK=0
BENCH_WAIT_QUIET=${BENCH_WAIT_QUIET:-0}
[[ $BENCH_WAIT_QUIET =~ ^[0-9]+$ ]] || { echo "run.sh: BENCH_WAIT_QUIET must be a number of seconds" >&2; exit 2; }
for a in "$@"; do
	case "$a" in
	--quick) QUICK=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument: $a" >&2; usage >&2; exit 2 ;;
	esac
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
cd "$ROOT"

ZCRELAY=${ZCRELAY:-./build/zcrelay}
ZCRELAY_BASE=${ZCRELAY_BASE:-}
ZC_VARIANTS=${ZC_VARIANTS-auto:splice auto:copy auto:auto:auto}
ZC_NONROOT=${ZC_NONROOT-auto:splice}
if ((QUICK)); then
	BENCH_TIME=${BENCH_TIME:-1}
	IDLE_CONNS=${IDLE_CONNS:-1000}
	IDLE_CPU_SECS=${IDLE_CPU_SECS:-2}
	BENCH_DEADLINE=${BENCH_DEADLINE:-$((300 + 10 * BENCH_WAIT_QUIET + 150 * ${BENCH_RETRY:-0}))}
else
	BENCH_TIME=${BENCH_TIME:-5}
	IDLE_CONNS=${IDLE_CONNS:-9000}
	IDLE_CPU_SECS=${IDLE_CPU_SECS:-10}
	BENCH_DEADLINE=${BENCH_DEADLINE:-$((900 + 10 * BENCH_WAIT_QUIET + 600 * ${BENCH_RETRY:-0}))}
fi
BENCH_SHORT=${BENCH_SHORT:-$BENCH_TIME}
BENCH_REPEAT=${BENCH_REPEAT:-1}
BENCH_RETRY=${BENCH_RETRY:-0}
BENCH_ONLY=${BENCH_ONLY:-}
BENCH_OUT=${BENCH_OUT:-}
BENCH_KEEP=${BENCH_KEEP:-0}
BASE=${BENCH_PORT_BASE:-21000}
CONNRATE_CONC=50
REDIS_N=$((BENCH_SHORT * 100000)) # about BENCH_SHORT s per test direct
IDLE_HOLD=$((120 + IDLE_CONNS / 100)) # idle tool releases by itself after this

for v in BENCH_TIME BENCH_SHORT IDLE_CONNS IDLE_CPU_SECS BENCH_DEADLINE BENCH_REPEAT BASE; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || { echo "run.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $BENCH_RETRY =~ ^[0-9]+$ ]] || { echo "run.sh: BENCH_RETRY must be a number" >&2; exit 2; }
((BASE + 999 < 32768)) || { echo "run.sh: BENCH_PORT_BASE too high (must stay below the ephemeral range)" >&2; exit 2; }

PORT_IPERF=$((BASE + 1))
PORT_SOCKPERF=$((BASE + 2))
PORT_ECHO=$((BASE + 3))
PORT_HTTP=$((BASE + 4))
PORT_ECHO64=$((BASE + 5)) # echo server that closes first after 64 bytes (connrate)
PORT_REDIS=$((BASE + 6))
HOST=127.0.0.1

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { echo "run.sh: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tool checks
read -r -a MEASURES <<<"${BENCH_MEASURES:-iperf sockperf connrate wrk redis idle}"
for m in "${MEASURES[@]}"; do
	[[ $m =~ ^(iperf|sockperf|connrate|wrk|redis|idle)$ ]] || die "BENCH_MEASURES: unknown measurement '$m'"
done
need() { # need TOOL PACKAGE
	command -v "$1" >/dev/null 2>&1 || die "'$1' not found in PATH (Debian package: $2)"
}
need iperf3 iperf3
need sockperf sockperf
need wrk wrk
need haproxy haproxy
need nginx nginx-light
need socat socat
need go golang-go
need jq jq
need redis-server redis-server
need redis-benchmark redis-tools
need ss iproute2
need setpriv util-linux
need setsid util-linux
need timeout coreutils
need awk mawk
need getconf libc-bin
NGX_STREAM_SO=/usr/lib/nginx/modules/ngx_stream_module.so
[[ -f $NGX_STREAM_SO ]] || die "$NGX_STREAM_SO missing (Debian package: libnginx-mod-stream)"

CLK_TCK=$(getconf CLK_TCK)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if ((NOFILE < IDLE_CONNS * 2 + 100)); then
	log "warning: RLIMIT_NOFILE is $NOFILE; relays may not be able to hold $IDLE_CONNS idle connections"
fi

ZC_OK=0
if [[ -x $ZCRELAY ]]; then
	ZC_OK=1
	ZCRELAY=$(cd "$(dirname "$ZCRELAY")" && pwd)/$(basename "$ZCRELAY")
else
	log "warning: zcrelay binary '$ZCRELAY' not found or not executable: zcrelay rows will read n/a (set ZCRELAY=... or run make)"
fi

# ---------------------------------------------------------------- temp dir, cleanup
TMPD=$(mktemp -d /tmp/zcbench.XXXXXX)
chmod 755 "$TMPD" # nginx workers and the non-root relay run as nobody
declare -a STARTED=()
WATCHDOG=

kill_tree() { # kill_tree PID: TERM the process group we created with setsid, then KILL
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	for p in "${STARTED[@]}"; do kill_tree "$p"; done
	if [[ -n $WATCHDOG ]]; then kill_tree "$WATCHDOG"; fi
	if [[ $BENCH_KEEP == 1 ]]; then
		log "kept temp dir $TMPD"
	else
		rm -rf "$TMPD"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated (watchdog or signal)"; exit 143' TERM

# Watchdog: the whole run ends by itself even if something hangs. It runs in
# its own process group so cleanup can stop it together with its sleep.
setsid bash -c "sleep $BENCH_DEADLINE; echo 'run.sh: watchdog: run exceeded ${BENCH_DEADLINE}s, aborting' >&2; kill -TERM $$" </dev/null &
WATCHDOG=$!

# spawn LOGFILE CMD...: start CMD in its own session/process group; sets SPAWNED.
# (In a non-interactive shell the background child is not a group leader, so
# setsid execs in place and $! is the command's own pid.)
spawn() {
	local logf=$1
	shift
	setsid "$@" >"$logf" 2>&1 </dev/null &
	SPAWNED=$!
	STARTED+=("$SPAWNED")
}

forget() { # forget PID: stop it and drop it from STARTED
	local pid=$1 i
	kill_tree "$pid"
	for i in "${!STARTED[@]}"; do [[ ${STARTED[$i]} == "$pid" ]] && unset 'STARTED[i]'; done
	STARTED=("${STARTED[@]}")
}

listening() { [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]; }

port_free_or_die() {
	if listening "$1"; then die "port $1 on is already in use (set BENCH_PORT_BASE)"; fi
}

wait_listen() { # wait_listen PORT PID: up to 5 s
	local port=$1 pid=$2 i
	for ((i = 0; i < 100; i++)); do
		listening "$port" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- Go tools
BIN=$HERE/tools/bin
build_tools() {
	log "building Go tools into bench/tools/bin"
	mkdir -p "$BIN" /tmp/zcbench-go
	(
		cd "$HERE/tools"
		export GOPATH=/tmp/zcbench-go/gopath GOCACHE=/tmp/zcbench-go/cache GOPROXY=off GOFLAGS='' GO111MODULE=on
		timeout 300 go build -o "$BIN/" ./echo ./connrate ./idle ./gorelay ./procstat
	) || die "go build of bench/tools failed"
}
build_tools

procstat() { "$BIN/procstat" -pid "$1"; }

# Other load on the machine skews every number on 2 vCPUs, so it is watched:
# cpu_ticks prints "total busy" ticks of all CPUs from /proc/stat (total =
# user..steal; busy = user+nice+system+steal, leaving out irq/softirq time,
# which is our own loopback traffic but not charged to any process).
# busy_pct samples 0.5 s. other_pct: share of all CPUs used during a row by
# processes that are not this script's tree (harness_ticks: our bash, every
# tool we ran and reaped, every server and relay still running).
cpu_ticks() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $2 + $3 + $4 + $9 }' /proc/stat; }
busy_pct() {
	local t0 b0 t1 b1
	read -r t0 b0 < <(cpu_ticks)
	sleep 0.5
	read -r t1 b1 < <(cpu_ticks)
	awk -v t="$((t1 - t0))" -v b="$((b1 - b0))" 'BEGIN { printf "%.0f", (t > 0) ? 100 * b / t : 0 }'
}
harness_ticks() { kv ticks "$("$BIN/procstat" -pid $$)"; }
ROW_T0=0 ROW_B0=0 ROW_H0=0
row_begin() {
	read -r ROW_T0 ROW_B0 < <(cpu_ticks)
	ROW_H0=$(harness_ticks)
}
other_pct() { # after row_begin: percent of all CPUs used by others since then
	local t1 b1 h1
	read -r t1 b1 < <(cpu_ticks)
	h1=$(harness_ticks)
	awk -v t="$((t1 - ROW_T0))" -v o="$((b1 - ROW_B0 - (h1 - ROW_H0)))" 'BEGIN { v = (t > 0) ? 100 * o / t : 0; printf "%.0f", (v < 0) ? 0 : v }'
}
wait_quiet() { # before a row: up to BENCH_WAIT_QUIET s for the CPUs to be <= 10 % busy
	local waited=0 busy
	busy=$(busy_pct)
	while ((busy > 10 && waited < BENCH_WAIT_QUIET)); do
		((waited == 0)) && log "  CPUs ${busy}% busy with other work: waiting up to ${BENCH_WAIT_QUIET}s for quiet"
		sleep 2
		waited=$((waited + 3))
		busy=$(busy_pct)
	done
	if ((busy > 10)); then log "  warning: CPUs ${busy}% busy with other work before this row"; fi
}
kv() { # kv KEY "k=v k=v ...": print value of KEY
	local k=$1 s=$2 f
	for f in $s; do
		if [[ $f == "$k="* ]]; then echo "${f#*=}"; return 0; fi
	done
	return 0
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# ---------------------------------------------------------------- upstream servers
for p in "$PORT_IPERF" "$PORT_SOCKPERF" "$PORT_ECHO" "$PORT_HTTP" "$PORT_ECHO64" "$PORT_REDIS"; do port_free_or_die "$p"; done

IPERF_PID=
start_iperf_server() {
	if [[ -n $IPERF_PID ]]; then forget "$IPERF_PID"; fi
	spawn "$TMPD/iperf3-server.log" iperf3 -s -B "$HOST" -p "$PORT_IPERF" --rcv-timeout 10000
	IPERF_PID=$SPAWNED
	wait_listen "$PORT_IPERF" "$IPERF_PID" || die "iperf3 server did not start (see $TMPD/iperf3-server.log)"
}

mkdir -p "$TMPD/www" "$TMPD/nginx-tmp"
head -c 1024 /dev/zero | tr '\0' 'z' >"$TMPD/www/small.bin"
chmod 644 "$TMPD/www/small.bin"
cat >"$TMPD/nginx-http.conf" <<EOF
# Upstream HTTP server for the wrk test (not a relay under test).
worker_processes 1;
daemon off;
pid $TMPD/nginx-http.pid;
error_log $TMPD/nginx-http.err warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMPD/nginx-tmp/body;
    proxy_temp_path $TMPD/nginx-tmp/proxy;
    fastcgi_temp_path $TMPD/nginx-tmp/fastcgi;
    uwsgi_temp_path $TMPD/nginx-tmp/uwsgi;
    scgi_temp_path $TMPD/nginx-tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {
        listen $HOST:$PORT_HTTP;
        root $TMPD/www;
        location / { }
    }
}
EOF

log "starting upstream servers (iperf3 :$PORT_IPERF, sockperf :$PORT_SOCKPERF, echo :$PORT_ECHO, nginx http :$PORT_HTTP, echo-64-close :$PORT_ECHO64, redis :$PORT_REDIS)"
start_iperf_server
spawn "$TMPD/sockperf-server.log" sockperf sr --tcp -i "$HOST" -p "$PORT_SOCKPERF"
wait_listen "$PORT_SOCKPERF" "$SPAWNED" || die "sockperf server did not start (see $TMPD/sockperf-server.log)"
spawn "$TMPD/echo.log" "$BIN/echo" -listen "$HOST:$PORT_ECHO"
wait_listen "$PORT_ECHO" "$SPAWNED" || die "echo server did not start (see $TMPD/echo.log)"
spawn "$TMPD/echo64.log" "$BIN/echo" -listen "$HOST:$PORT_ECHO64" -close-after 64
wait_listen "$PORT_ECHO64" "$SPAWNED" || die "echo server did not start (see $TMPD/echo64.log)"
spawn "$TMPD/nginx-http.log" nginx -p "$TMPD/" -e "$TMPD/nginx-http.err" -c "$TMPD/nginx-http.conf"
wait_listen "$PORT_HTTP" "$SPAWNED" || die "nginx http server did not start (see $TMPD/nginx-http.err)"
spawn "$TMPD/redis.log" redis-server --bind "$HOST" --port "$PORT_REDIS" --save '' --appendonly no --protected-mode no --daemonize no
wait_listen "$PORT_REDIS" "$SPAWNED" || die "redis-server did not start (see $TMPD/redis.log)"

# ---------------------------------------------------------------- rows
# Each row: LABEL|KIND|ARG. KIND selects how start_relay runs it.
declare -a ROWS=("direct (no relay)|direct|")
for v in $ZC_VARIANTS; do
	[[ $v == *:* ]] || die "ZC_VARIANTS entry '$v' is not ENGINE:MOVER[:BUSYPOLL]"
	e=${v%%:*} m=${v#*:} bp=
	[[ $m == *:* ]] && bp=" busy-poll ${m#*:}" m=${m%%:*}
	if [[ $e == auto ]]; then ROWS+=("zcrelay $m$bp|zcrelay|$v"); else ROWS+=("zcrelay $e/$m$bp|zcrelay|$v"); fi
	[[ -n $ZCRELAY_BASE ]] && ROWS+=("zcrelay base $e/$m$bp|zcbase|$v")
done
ROWS+=(
	"haproxy tcp|haproxy|tcp"
	"haproxy tcp + splice-auto|haproxy|splice"
	"haproxy tcp + busy-polling|haproxy|busy"
	"nginx stream|nginx|"
	"socat fork|socat|"
	"Go io.Copy|gorelay|"
)
if [[ -n $ZC_NONROOT ]]; then
	e=${ZC_NONROOT%%:*} m=${ZC_NONROOT#*:}
	if [[ $e == auto ]]; then l="zcrelay $m, non-root"; else l="zcrelay $e/$m, non-root"; fi
	ROWS+=("$l|zcnonroot|$ZC_NONROOT")
fi

row_label() { echo "${1%%|*}"; }
row_kind() { local r=${1#*|}; echo "${r%%|*}"; }
row_arg() { echo "${1##*|}"; }
is_peer() { case $1 in haproxy | nginx | socat | gorelay) return 0 ;; *) return 1 ;; esac; }
is_zc() { case $1 in zcrelay | zcnonroot | zcbase) return 0 ;; *) return 1 ;; esac; }

# Run a snapshot of the binary, so a rebuild during the run changes nothing;
# it sits in the world-readable temp dir, so the non-root row can run it too.
# (Fall back to the original path if the copy does not run, e.g. an rpath.)
ZC_BIN=$ZCRELAY
if ((ZC_OK)); then
	cp "$ZCRELAY" "$TMPD/zcrelay" && chmod 755 "$TMPD/zcrelay"
	if "$TMPD/zcrelay" --version >/dev/null 2>&1; then
		ZC_BIN=$TMPD/zcrelay
	fi
	log "zcrelay: $("$ZC_BIN" --version 2>&1 | head -n 1) ($ZC_BIN)"
fi
BASE_BIN=
if [[ -n $ZCRELAY_BASE ]]; then
	cp "$ZCRELAY_BASE" "$TMPD/zcrelay-base" && chmod 755 "$TMPD/zcrelay-base" || die "ZCRELAY_BASE '$ZCRELAY_BASE' cannot be copied"
	BASE_BIN=$TMPD/zcrelay-base
	"$BASE_BIN" --version >/dev/null 2>&1 || die "ZCRELAY_BASE '$ZCRELAY_BASE' does not run"
	log "zcrelay base: $("$BASE_BIN" --version 2>&1 | head -n 1) ($ZCRELAY_BASE)"
fi

# start_relay KIND ARG LISTEN_PORT UPSTREAM_PORT TAG: sets RELAY_PID (empty
# for direct) and RELAY_PORT (the port clients should connect to).
RELAY_PID=
RELAY_PORT=
start_relay() {
	local kind=$1 arg=$2 lp=$3 up=$4 tag=$5 cfg logf
	logf=$TMPD/$tag.log
	RELAY_PID=
	RELAY_PORT=$lp
	case $kind in
	direct) RELAY_PORT=$up; return 0 ;;
	zcrelay | zcnonroot | zcbase)
		((ZC_OK)) || return 1
		local e=${arg%%:*} m=${arg#*:} bp=off
		[[ $m == *:* ]] && bp=${m#*:} m=${m%%:*}
		local -a cmd=("$ZC_BIN")
		[[ $kind == zcbase ]] && cmd=("$BASE_BIN")
		[[ $kind == zcnonroot ]] && cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups "$ZC_BIN")
		# ring-zc: the ring mover with SEND_ZC for sends from 16 KiB.
		[[ $m == ring-zc ]] && cmd=(env ZC_RING_ZC=16384 "${cmd[@]}") m=ring
		spawn "$logf" "${cmd[@]}" --listen "$HOST:$lp" --upstream "$HOST:$up" --workers 2 \
			--engine "$e" --mover "$m" --busy-poll "$bp" --connect-timeout 5000 --idle-timeout 300000 --drain-timeout 1000 -q
		;;
	haproxy)
		cfg=$TMPD/$tag.haproxy.cfg
		{
			echo "# generated by bench/run.sh"
			echo "global"
			echo "    nbthread 2"
			[[ $arg == busy ]] && echo "    busy-polling"
			echo "    maxconn $((IDLE_CONNS + 200))"
			# Pipes are a shared pool in haproxy; cap them so maxconn fits in RLIMIT_NOFILE.
			[[ $arg == splice ]] && echo "    maxpipes 256"
			echo "defaults"
			echo "    mode tcp"
			echo "    timeout connect 5s"
			echo "    timeout client 300s"
			echo "    timeout server 300s"
			[[ $arg == splice ]] && echo "    option splice-auto"
			echo "frontend fe_$tag"
			echo "    bind $HOST:$lp"
			echo "    default_backend be_$tag"
			echo "backend be_$tag"
			echo "    server up $HOST:$up"
		} >"$cfg"
		spawn "$logf" haproxy -db -f "$cfg"
		;;
	nginx)
		cfg=$TMPD/$tag.nginx.conf
		cat >"$cfg" <<EOF
# generated by bench/run.sh
load_module $NGX_STREAM_SO;
worker_processes 2;
worker_rlimit_nofile $((NOFILE - 100));
daemon off;
pid $TMPD/$tag.nginx.pid;
error_log $TMPD/$tag.nginx.err warn;
events { worker_connections $((NOFILE - 200)); }
stream {
    server {
        listen $HOST:$lp reuseport;
        proxy_pass $HOST:$up;
        proxy_connect_timeout 5s;
        proxy_timeout 300s;
    }
}
EOF
		spawn "$logf" nginx -p "$TMPD/" -e "$TMPD/$tag.nginx.err" -c "$cfg"
		;;
	socat)
		spawn "$logf" socat "TCP-LISTEN:$lp,bind=$HOST,fork,reuseaddr,backlog=1024" "TCP:$HOST:$up"
		;;
	gorelay)
		spawn "$logf" "$BIN/gorelay" -listen "$HOST:$lp" -upstream "$HOST:$up"
		;;
	*) die "unknown row kind $kind" ;;
	esac
	RELAY_PID=$SPAWNED
	if ! wait_listen "$lp" "$RELAY_PID"; then
		log "  $tag: relay did not start listening on :$lp; log:"
		tail -n 5 "$logf" >&2 || true
		forget "$RELAY_PID"
		RELAY_PID=
		return 1
	fi
}
stop_relay() {
	if [[ -n $RELAY_PID ]]; then forget "$RELAY_PID"; fi
	RELAY_PID=
}

# ---------------------------------------------------------------- measurements
last() { local v=${RES["$1|$2"]:-n/a}; echo "${v##* }"; } # this pass's value

# RES[label|column] holds every value measured (one per pass); get prints the
# median, keeping the number of decimals of the first value.
declare -A RES=()
put() { local k="$1|$2"; RES[$k]="${RES[$k]:+${RES[$k]} }$3"; }
get() {
	local v=${RES["$1|$2"]:-}
	if [[ -z $v ]]; then echo n/a; return 0; fi
	printf '%s\n' $v | sort -g | awk -v first="${v%% *}" '
		{ a[NR] = $1 }
		END {
			d = index(first, ".") ? length(first) - index(first, ".") : 0
			m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.*f\n", d, m
		}'
}

# iperf_run PORT OUTFILE [extra args]: sets IPERF_BPS and IPERF_BYTES (received).
# Not for use in $(...): on failure it restarts the iperf3 server.
iperf_run() {
	local port=$1 out=$2 r
	shift 2
	IPERF_BPS='' IPERF_BYTES=''
	if ! timeout $((BENCH_TIME + 20)) iperf3 -c "$HOST" -p "$port" -t "$BENCH_TIME" -J --connect-timeout 3000 "$@" >"$out" 2>&1 ||
		! r=$(jq -er '"\(.end.sum_received.bits_per_second) \(.end.sum_received.bytes)"' "$out" 2>/dev/null); then
		log "  iperf3 $* failed: $(jq -r '.error // empty' "$out" 2>/dev/null || tail -n 1 "$out")"
		start_iperf_server # it may be stuck mid-test
		return 1
	fi
	read -r IPERF_BPS IPERF_BYTES <<<"$r"
}

# io_uring io-wq worker threads (named iou-wrk-TID) of process PID now.
# An idle worker exits after 5 s, so right after a run this is the number
# the run needed (at least).
iowq_threads() { # PID
	local n=0 f c
	for f in /proc/"$1"/task/*/comm; do
		read -r c 2>/dev/null <"$f" || continue
		[[ $c == iou-wrk-* ]] && n=$((n + 1))
	done
	echo "$n"
}

IOWQ_MAX=0
iowq_sample() { # after each iperf3 run: the most io-wq threads seen
	local n
	[[ -n $RELAY_PID ]] || return 0
	n=$(iowq_threads "$RELAY_PID")
	((n > IOWQ_MAX)) && IOWQ_MAX=$n
	return 0
}

measure_iperf() { # ROWIDX KIND ARG LABEL [single-only]
	local i=$1 kind=$2 arg=$3 label=$4 only=${5:-} lp b0='' b1='' t0 t1
	lp=$((BASE + 100 + i * 10))
	IOWQ_MAX=0
	if start_relay "$kind" "$arg" "$lp" "$PORT_IPERF" "r$i-iperf"; then
		# single stream, with relay CPU accounting around it
		if [[ -n $RELAY_PID ]]; then b0=$(procstat "$RELAY_PID") || b0=; fi
		if iperf_run "$RELAY_PORT" "$TMPD/r$i-iperf1.json"; then
			iowq_sample
			put "$label" single "$(calc %.2f "$IPERF_BPS / 1e9")"
			if [[ -n $RELAY_PID && -n $b0 ]]; then
				sleep 0.3 # let forked children (socat) exit and be reaped
				if b1=$(procstat "$RELAY_PID"); then
					t0=$(kv ticks "$b0") t1=$(kv ticks "$b1")
					put "$label" cpu "$(calc %.3f "($t1 - $t0) / $CLK_TCK / ($IPERF_BYTES / 1e9)")"
				fi
			fi
		fi
		if [[ -z $only ]]; then
			sleep 0.3
			if iperf_run "$RELAY_PORT" "$TMPD/r$i-iperfR.json" -R; then iowq_sample; put "$label" reverse "$(calc %.2f "$IPERF_BPS / 1e9")"; fi
			sleep 0.3
			if iperf_run "$RELAY_PORT" "$TMPD/r$i-iperfP4.json" -P 4; then iowq_sample; put "$label" p4 "$(calc %.2f "$IPERF_BPS / 1e9")"; fi
		fi
		[[ -n $RELAY_PID ]] && put "$label" iowq "$IOWQ_MAX"
		stop_relay
	fi
	log "  iperf3: 1=$(last "$label" single) R=$(last "$label" reverse) P4=$(last "$label" p4) Gbit/s, cpu=$(last "$label" cpu) s/GB, io-wq threads=$(last "$label" iowq)"
}

measure_sockperf() {
	local i=$1 kind=$2 arg=$3 label=$4 lp out p50 p99
	lp=$((BASE + 100 + i * 10 + 1))
	out=$TMPD/r$i-sockperf.txt
	start_relay "$kind" "$arg" "$lp" "$PORT_SOCKPERF" "r$i-sockperf" || return 0
	if timeout $((BENCH_SHORT + 20)) sockperf pp --tcp -i "$HOST" -p "$RELAY_PORT" -t "$BENCH_SHORT" -m 64 --full-rtt >"$out" 2>&1; then
		p50=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 50.000 =/ { print $NF }')
		p99=$(sed 's/\x1b\[[0-9;]*m//g' "$out" | awk '/percentile 99.000 =/ { print $NF }')
		if [[ -n $p50 ]]; then put "$label" p50 "$(calc %.1f "$p50")"; fi
		if [[ -n $p99 ]]; then put "$label" p99 "$(calc %.1f "$p99")"; fi
	else
		log "  sockperf failed: $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
	stop_relay
	log "  sockperf RTT: p50=$(last "$label" p50) p99=$(last "$label" p99) usec"
}

measure_connrate() {
	local i=$1 kind=$2 arg=$3 label=$4 lp out line
	lp=$((BASE + 100 + i * 10 + 2))
	out=$TMPD/r$i-connrate.txt
	start_relay "$kind" "$arg" "$lp" "$PORT_ECHO64" "r$i-connrate" || return 0
	# The server closes first (-close-after 64 / -wait-eof): see bench/tools/echo.
	if timeout $((BENCH_SHORT + 30)) "$BIN/connrate" -addr "$HOST:$RELAY_PORT" -c "$CONNRATE_CONC" -d "${BENCH_SHORT}s" -wait-eof >"$out" 2>&1; then
		line=$(tail -n 1 "$out")
		put "$label" conns "$(kv rate "$line")"
		if [[ $(kv failed "$line") != 0 ]]; then log "  connrate: $line"; fi
	else
		log "  connrate failed: $(tail -n 1 "$out")"
	fi
	stop_relay
	log "  connrate: $(last "$label" conns) conn/s"
}

measure_wrk() {
	local i=$1 kind=$2 arg=$3 label=$4 lp out rps
	lp=$((BASE + 100 + i * 10 + 3))
	out=$TMPD/r$i-wrk.txt
	start_relay "$kind" "$arg" "$lp" "$PORT_HTTP" "r$i-wrk" || return 0
	if timeout $((BENCH_SHORT + 30)) wrk -t 2 -c 50 -d "${BENCH_SHORT}s" --timeout 2s "http://$HOST:$RELAY_PORT/small.bin" >"$out" 2>&1; then
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		if [[ -n $rps ]]; then put "$label" rps "$(calc %.0f "$rps")"; fi
		if grep -qE 'Non-2xx|Socket errors' "$out"; then log "  wrk: $(grep -E 'Non-2xx|Socket errors' "$out" | tr '\n' ' ')"; fi
	else
		log "  wrk failed: $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
	stop_relay
	log "  wrk: $(last "$label" rps) req/s"
}

# redis-benchmark SET and GET, 50 clients pipelining 16 requests each: many
# small messages per system call. Sets the mean of the two rates.
measure_redis() {
	local i=$1 kind=$2 arg=$3 label=$4 lp out set get
	lp=$((BASE + 100 + i * 10 + 5))
	out=$TMPD/r$i-redis.txt
	start_relay "$kind" "$arg" "$lp" "$PORT_REDIS" "r$i-redis" || return 0
	if timeout $((BENCH_SHORT * 4 + 60)) redis-benchmark -h "$HOST" -p "$RELAY_PORT" -t set,get -n "$REDIS_N" -c 50 -P 16 -q >"$out" 2>&1; then
		set=$(tr '\r' '\n' <"$out" | awk '/^SET:/ { print $2 }' | tail -n 1)
		get=$(tr '\r' '\n' <"$out" | awk '/^GET:/ { print $2 }' | tail -n 1)
		if [[ -n $set && -n $get ]]; then put "$label" redis "$(calc %.0f "($set + $get) / 2")"; fi
	else
		log "  redis-benchmark failed: $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
	stop_relay
	log "  redis: $(last "$label" redis) req/s (mean of SET and GET)"
}

measure_idle() {
	local i=$1 kind=$2 arg=$3 label=$4 lp out ipid b0 b1 b2 line held n
	lp=$((BASE + 100 + i * 10 + 4))
	out=$TMPD/r$i-idle.txt
	start_relay "$kind" "$arg" "$lp" "$PORT_ECHO" "r$i-idle" || return 0
	if [[ -z $RELAY_PID ]]; then stop_relay; return 0; fi
	sleep 0.3
	b0=$(procstat "$RELAY_PID") || { stop_relay; return 0; }
	spawn "$out" timeout $((IDLE_HOLD + 30)) "$BIN/idle" -addr "$HOST:$RELAY_PORT" -n "$IDLE_CONNS" -hold "${IDLE_HOLD}s"
	ipid=$SPAWNED
	for ((n = 0; n < IDLE_HOLD * 10; n++)); do
		grep -q '^ready' "$out" 2>/dev/null && break
		kill -0 "$ipid" 2>/dev/null || break
		sleep 0.1
	done
	line=$(grep '^ready' "$out" || true)
	if [[ -n $line ]]; then
		sleep 1 # let the relay settle
		if b1=$(procstat "$RELAY_PID"); then
			sleep "$IDLE_CPU_SECS"
			if b2=$(procstat "$RELAY_PID"); then
				put "$label" idlecpu "$(calc %.1f "100 * ($(kv ticks "$b2") - $(kv ticks "$b1")) / $CLK_TCK / $IDLE_CPU_SECS")"
			fi
			held=$(kv held "$line")
			put "$label" held "$held"
			if [[ $(kv failed "$line") != 0 ]]; then log "  idle: $line"; fi
			if ((held > 0)); then
				put "$label" rss "$(calc %.1f "($(kv rss_kib "$b1") - $(kv rss_kib "$b0")) / $held")"
				put "$label" pss "$(calc %.1f "($(kv pss_kib "$b1") - $(kv pss_kib "$b0")) / $held")"
				put "$label" fds "$(calc %.2f "($(kv fds "$b1") - $(kv fds "$b0")) / $held")"
				put "$label" pipes "$(calc %.2f "($(kv pipes "$b1") - $(kv pipes "$b0")) / $held")"
			fi
		else
			log "  idle: relay died while holding connections"
		fi
	else
		log "  idle tool did not get ready: $(tail -n 2 "$out" | tr '\n' ' ')"
	fi
	forget "$ipid"
	# Let per-connection processes (socat) exit and be reaped by the relay,
	# so their CPU time stays in the relay's tree (see other_pct).
	for ((n = 0; n < 150; n++)); do
		b1=$(procstat "$RELAY_PID") || break
		(($(kv procs "$b1") <= $(kv procs "$b0"))) && break
		sleep 0.1
	done
	stop_relay
	log "  idle: cpu=$(last "$label" idlecpu) % held=$(last "$label" held) rss=$(last "$label" rss) pss=$(last "$label" pss) KiB/conn fds=$(last "$label" fds) pipes=$(last "$label" pipes) per conn"
}

# ---------------------------------------------------------------- run
OTHER_MAX=5
ROW_KEYS=(single reverse p4 cpu iowq p50 p99 conns rps redis idlecpu held rss pss fds pipes other)
# shellcheck disable=SC2034 # filled and read through namerefs
declare -A SAVED=() BEST_ATTEMPT=()
# shellcheck disable=SC2178
snapshot_row() { # snapshot_row LABEL ARRAYNAME: copy the row's cells
	local -n snap=$2
	local k
	snap=()
	for k in "${ROW_KEYS[@]}"; do
		if [[ -v RES["$1|$k"] ]]; then snap[$k]=${RES["$1|$k"]}; fi
	done
}
# shellcheck disable=SC2178
restore_row() { # restore_row LABEL ARRAYNAME
	local -n snap=$2
	local k
	for k in "${ROW_KEYS[@]}"; do
		if [[ -v snap[$k] ]]; then RES["$1|$k"]=${snap[$k]}; else unset 'RES[$1|$k]'; fi
	done
}
log "BENCH_TIME=${BENCH_TIME}s BENCH_SHORT=${BENCH_SHORT}s IDLE_CONNS=$IDLE_CONNS BENCH_REPEAT=$BENCH_REPEAT ZCRELAY=$ZCRELAY ZC_VARIANTS='$ZC_VARIANTS' tmp=$TMPD"
# measure M ROWIDX KIND ARG LABEL: one measurement of one row (the
# non-root row measures one iperf3 stream only).
measure() {
	if [[ $1 == iperf && $3 == zcnonroot ]]; then set -- "$@" single-only; fi
	"measure_$1" "${@:2}"
}

# run_cell M ROWIDX: measurement M of row ROWIDX, run again up to
# BENCH_RETRY times while other load (> OTHER_MAX %) skews it; the attempt
# with the least other load is kept.
run_cell() {
	local m=$1 i=$2 row label kind arg attempt best_o='' o
	row=${ROWS[$i]}
	label=$(row_label "$row") kind=$(row_kind "$row") arg=$(row_arg "$row")
	[[ $m == iperf || $kind != zcnonroot ]] || return 0
	[[ $m != idle || $kind != direct ]] || return 0
	snapshot_row "$label" SAVED
	for ((attempt = 0; attempt <= BENCH_RETRY; attempt++)); do
		if ((attempt > 0)); then
			restore_row "$label" SAVED
			log "row $i: $label: $m (attempt $((attempt + 1)) of $((BENCH_RETRY + 1)))"
		else
			log "row $i: $label: $m"
		fi
		wait_quiet
		row_begin
		measure "$m" "$i" "$kind" "$arg" "$label"
		o=$(other_pct)
		put "$label" other "$o"
		if [[ -z $best_o ]] || ((o < best_o)); then
			best_o=$o
			snapshot_row "$label" BEST_ATTEMPT
		fi
		((o > OTHER_MAX)) || break
		log "  warning: other processes used ${o}% of the CPUs during this measurement"
		if ((SECONDS > BENCH_DEADLINE * 7 / 10)); then
			((attempt < BENCH_RETRY)) && log "  no time left for retries"
			break
		fi
	done
	restore_row "$label" BEST_ATTEMPT
}

# Measurement by measurement, each through every row in turn: the rows a
# ratio compares are measured within a minute of each other, so drift of
# the machine (its speed changes between sittings, and within one) skews
# them alike.
for ((pass = 1; pass <= BENCH_REPEAT; pass++)); do
	((BENCH_REPEAT == 1)) || log "pass $pass of $BENCH_REPEAT"
	for m in "${MEASURES[@]}"; do
		for i in "${!ROWS[@]}"; do
			label=$(row_label "${ROWS[$i]}") kind=$(row_kind "${ROWS[$i]}")
			if [[ -n $BENCH_ONLY ]] && ! [[ $label =~ $BENCH_ONLY ]]; then continue; fi
			if is_zc "$kind" && ((!ZC_OK)); then
				[[ $pass != 1 || $m != iperf ]] || log "row $i: $label: skipped (zcrelay not built)"
				continue
			fi
			run_cell "$m" "$i"
		done
	done
done

# added latency = row p50 - direct p50
DIRECT=$(row_label "${ROWS[0]}")
d50=$(get "$DIRECT" p50)
for row in "${ROWS[@]}"; do
	label=$(row_label "$row")
	v=$(get "$label" p50)
	if [[ $label != "$DIRECT" && $v != n/a && $d50 != n/a ]]; then put "$label" added "$(calc %.1f "$v - $d50")"; fi
done

# ---------------------------------------------------------------- tables
# column key | header | better (hi/lo/-)
COLS=(
	"single|1 stream Gbit/s|hi"
	"reverse|reverse (-R) Gbit/s|hi"
	"p4|4 streams Gbit/s|hi"
	"cpu|relay CPU s/GB|lo"
	"iowq|io-wq threads|-"
	"p50|RTT p50 µs|lo"
	"p99|RTT p99 µs|lo"
	"added|added p50 µs|lo"
	"conns|short conn/s|hi"
	"rps|wrk req/s|hi"
	"redis|redis req/s|hi"
	"idlecpu|relay CPU % idle|lo"
	"held|idle conns held|-"
	"rss|RSS KiB/conn|lo"
	"pss|PSS KiB/conn|lo"
	"fds|fds/conn|lo"
	"pipes|pipe fds/conn|lo"
	"other|other load %|-"
)
arrow() { case $1 in hi) echo " ↑" ;; lo) echo " ↓" ;; *) echo "" ;; esac; }

print_tables() {
	local c key hdr dir row label kind line v
	echo "### Results"
	echo
	local med=""
	((BENCH_REPEAT == 1)) || med=", median of $BENCH_REPEAT passes"
	echo "iperf3 -t ${BENCH_TIME}, sockperf/connrate/wrk ${BENCH_SHORT} s, redis-benchmark -n $REDIS_N -c 50 -P 16 (SET and GET, mean), $IDLE_CONNS idle connections (relay CPU % while holding them, over ${IDLE_CPU_SECS} s)$med; ↑ higher is better, ↓ lower is better."
	echo "Last column: share of all $(nproc) CPUs used by processes outside the benchmark while the row's measurements ran (median); above ~5 % that row is skewed."
	echo
	line="| relay |"
	for c in "${COLS[@]}"; do IFS='|' read -r key hdr dir <<<"$c"; line+=" $hdr$(arrow "$dir") |"; done
	echo "$line"
	line="|---|"
	for c in "${COLS[@]}"; do line+="---:|"; done
	echo "$line"
	for row in "${ROWS[@]}"; do
		label=$(row_label "$row") kind=$(row_kind "$row")
		[[ -n $BENCH_ONLY ]] && ! [[ $label =~ $BENCH_ONLY ]] && continue
		line="| $label |"
		if is_zc "$kind" && ((!ZC_OK)); then line+=" not built |"; fi
		for c in "${COLS[@]}"; do
			IFS='|' read -r key hdr dir <<<"$c"
			if is_zc "$kind" && ((!ZC_OK)); then continue; fi
			v=$(get "$label" "$key")
			[[ $kind == direct && $key =~ ^(cpu|added|idlecpu|held|rss|pss|fds|pipes)$ ]] && v="—"
			[[ $kind == zcnonroot && ! $key =~ ^(single|cpu|other)$ ]] && v="—"
			line+=" $v |"
		done
		echo "$line"
	done
	echo

	# Ratio table: each zcrelay row vs the best peer in each column.
	local -a rcols=()
	for c in "${COLS[@]}"; do
		IFS='|' read -r key hdr dir <<<"$c"
		[[ $dir == - || $key == added || $key == other ]] && continue
		rcols+=("$c")
	done
	echo "### zcrelay vs the best peer (peers: haproxy ×3, nginx stream, socat, Go io.Copy)"
	echo
	echo "Each cell is zcrelay ÷ best peer. ↑ columns: higher is better, so > 1.00 means zcrelay wins. ↓ columns: lower is better, so < 1.00 means zcrelay wins."
	echo
	line="| row |"
	for c in "${rcols[@]}"; do IFS='|' read -r key hdr dir <<<"$c"; line+=" $hdr$(arrow "$dir") |"; done
	echo "$line"
	line="|---|"
	for c in "${rcols[@]}"; do line+="---:|"; done
	echo "$line"
	declare -A BEST=() BESTN=()
	for c in "${rcols[@]}"; do
		IFS='|' read -r key hdr dir <<<"$c"
		for row in "${ROWS[@]}"; do
			label=$(row_label "$row") kind=$(row_kind "$row")
			is_peer "$kind" || continue
			v=$(get "$label" "$key")
			[[ $v =~ ^-?[0-9.]+$ ]] || continue
			if [[ -z ${BEST[$key]:-} ]] || awk -v a="$v" -v b="${BEST[$key]}" -v d="$dir" 'BEGIN { exit !((d == "hi" && a > b) || (d == "lo" && a < b)) }'; then
				BEST[$key]=$v BESTN[$key]=$label
			fi
		done
	done
	line="| best peer |"
	for c in "${rcols[@]}"; do
		IFS='|' read -r key hdr dir <<<"$c"
		if [[ -n ${BEST[$key]:-} ]]; then line+=" ${BEST[$key]} (${BESTN[$key]}) |"; else line+=" n/a |"; fi
	done
	echo "$line"
	for row in "${ROWS[@]}"; do
		label=$(row_label "$row") kind=$(row_kind "$row")
		is_zc "$kind" || continue
		[[ -n $BENCH_ONLY ]] && ! [[ $label =~ $BENCH_ONLY ]] && continue
		line="| $label |"
		for c in "${rcols[@]}"; do
			IFS='|' read -r key hdr dir <<<"$c"
			v=$(get "$label" "$key")
			b=${BEST[$key]:-}
			if [[ ! $v =~ ^-?[0-9.]+$ || -z $b ]]; then
				line+=" n/a |"
			else
				line+=" $(awk -v a="$v" -v b="$b" 'BEGIN { if (b == 0) { print (a == 0) ? "1.00 (both 0)" : "∞ (best 0)" } else printf "%.2f", a / b }') |"
			fi
		done
		echo "$line"
	done
	if ((!ZC_OK)); then
		echo
		echo "zcrelay was not built ($ZCRELAY missing): zcrelay rows have no data; peer numbers are preliminary."
	fi
}

TABLES=$(print_tables)
echo "$TABLES"
if [[ -n $BENCH_OUT ]]; then printf '%s\n' "$TABLES" >"$BENCH_OUT"; fi
log "done"
