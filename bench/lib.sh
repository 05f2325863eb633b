# bench/lib.sh - helpers the bench/*-ab.sh scripts source.
#
# PIDS: processes started in the background, killed on exit; the
# directory BENCH_RM (if the script set it before sourcing) is removed
# on exit. wait_port PORT waits (5 s) until something
# listens on the TCP port.

PIDS=()
bench_cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[[ -n ${BENCH_RM:-} ]] && rm -rf "$BENCH_RM"
	return 0
}
trap bench_cleanup EXIT

wait_port() { # wait_port PORT: until something listens (5 s)
	local i
	for ((i = 0; i < 100; i++)); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}
