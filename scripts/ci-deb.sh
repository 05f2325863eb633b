#!/usr/bin/env bash
# ci-deb.sh - the package stage of CI (root, Debian 12): build the .debs
# from a copy of the tree with dpkg-buildpackage, lintian them (errors and
# warnings fail), install them with apt-get, use them (config check, the
# zcrelay user, a byte-exact relay by the daemon running as that user, the
# man pages, the examples built with pkg-config against the installed
# library), purge them, and check that nothing is left behind. The machine
# is left as it was found: packages purged, a zcrelay user this script
# made removed, scratch files deleted.
#
# usage: scripts/ci-deb.sh
# Needs debhelper lintian pkg-config socat and the build dependencies of
# debian/control; without logrotate, man-db or systemd the checks that use
# them skip and say so.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/zcrelay-deb.XXXXXX)
pkgs=(zcrelay libzcrelay0 libzcrelay-dev)
had_user=0 had_run=0
getent passwd zcrelay >/dev/null && had_user=1
[ -e /run/zcrelay ] && had_run=1
pids=()

say() { echo "ci-deb: $*"; }
die() {
	echo "ci-deb: FAILED: $*" >&2
	exit 1
}

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	apt-get -o DPkg::Lock::Timeout=300 purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
	if [ "$had_user" = 0 ] && getent passwd zcrelay >/dev/null; then
		deluser --system --quiet zcrelay >/dev/null 2>&1 || true
		delgroup --system --quiet zcrelay >/dev/null 2>&1 || true
	fi
	rm -f /var/cache/man/cat*/*zcrelay*
	[ "$had_run" = 1 ] || rm -rf /run/zcrelay # tmpfiles.d made it
	rm -rf "$work"
}
trap cleanup EXIT

# Paths with zcrelay in their name outside the source tree and /tmp:
# what the packages may add, and what purge must take back. man-db's
# cache of formatted pages (/var/cache/man, filled by the man check) is
# man-db's to expire; cleanup removes our pages from it.
leftovers() {
	find /etc /usr /lib /var /opt /srv -xdev \( -path "$src" -o \
		-path /var/cache/man \) -prune -o -name '*zcrelay*' -print \
		2>/dev/null | sort
}

# A TCP port on 127.0.0.1 nobody listens on (from /proc/net/tcp).
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		grep -qi "$(printf '0100007F:%04X' "$p")" /proc/net/tcp || {
			echo "$p"
			return
		}
	done
	die "no free port from $1"
}

# Waits (10 s at most) until file $1 contains $2.
wait_for() {
	local _
	for _ in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	cat "$1" >&2 || true
	die "no \"$2\" in $1"
}

apt-get -o DPkg::Lock::Timeout=300 purge -y -qq "${pkgs[@]}" >/dev/null 2>&1 || true
leftovers >"$work/before"

say "dpkg-buildpackage -us -uc -b (in a copy of the tree)"
mkdir "$work/src"
tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./config.mk \
	--exclude=./config.h -cf - . | tar -C "$work/src" -xf -
(cd "$work/src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
	dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
	{ tail -n 40 "$work/build.log"; die "dpkg-buildpackage"; }
ver=$(sed -n 's/^VERSION := //p' "$src/Makefile")
for p in "${pkgs[@]}"; do
	[ -f "$work/${p}_${ver}_$(dpkg --print-architecture).deb" ] ||
		die "no $p package of version $ver"
done

say "lintian (errors and warnings fail)"
lintian --fail-on error,warning "$work"/zcrelay_*.changes ||
	die "lintian"

say "apt-get install ./zcrelay_*.deb ./libzcrelay0_*.deb ./libzcrelay-dev_*.deb"
(cd "$work" && apt-get -o DPkg::Lock::Timeout=300 install -y -qq ./zcrelay_*.deb ./libzcrelay0_*.deb \
	./libzcrelay-dev_*.deb >"$work/install.log" 2>&1) ||
	{ cat "$work/install.log"; die "apt-get install"; }

say "zcrelay -n -c /etc/zcrelay/zcrelay.conf; the zcrelay user"
zcrelay -n -c /etc/zcrelay/zcrelay.conf || die "the default config"
getent passwd zcrelay >/dev/null || die "no zcrelay user"
[ "$(stat -c %U /var/log/zcrelay)" = zcrelay ] || die "/var/log/zcrelay"
if command -v systemd-tmpfiles >/dev/null; then
	[ -d /run/zcrelay ] || die "/run/zcrelay (tmpfiles.d) was not created"
else
	say "/run/zcrelay: no systemd-tmpfiles here; made as systemd would"
	install -d -m 0755 /run/zcrelay
fi
[ "$(stat -c '%U:%G %a' /etc/zcrelay/zcrelay.conf)" = "root:zcrelay 640" ] ||
	die "/etc/zcrelay/zcrelay.conf: $(stat -c '%U:%G %a' /etc/zcrelay/zcrelay.conf)"
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
[ "$(pkg-config --variable=libdir zcrelay)" = "/usr/lib/$multiarch" ] ||
	die "zcrelay.pc: libdir $(pkg-config --variable=libdir zcrelay)"
grep -q '^ExecStart=/usr/bin/zcrelay -c /etc/zcrelay/zcrelay.conf$' \
	/lib/systemd/system/zcrelay.service || die "zcrelay.service: ExecStart"
for u in zcrelay.service zcrelay.socket; do
	command -v systemd-analyze >/dev/null ||
		{ say "systemd-analyze verify: skipped, systemd is not installed"; break; }
	systemd-analyze verify "/lib/systemd/system/$u" >"$work/verify.log" 2>&1 ||
		{ cat "$work/verify.log"; die "systemd-analyze verify $u"; }
done
if ! command -v logrotate >/dev/null; then
	say "logrotate -d: skipped, logrotate is not installed"
else
	logrotate -d /etc/logrotate.d/zcrelay >"$work/logrotate.log" 2>&1 ||
		{ cat "$work/logrotate.log"; die "logrotate -d /etc/logrotate.d/zcrelay"; }
fi

if grep -qrs 'path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/; then
	say "man pages: skipped, dpkg excludes /usr/share/man on this machine"
elif ! command -v man >/dev/null; then
	say "man pages: skipped, man-db is not installed"
else
	say "man zcrelay, zcrelay.conf(5), libzcrelay(3)"
	for page in "8 zcrelay" "5 zcrelay.conf" "3 libzcrelay"; do
		# shellcheck disable=SC2086
		man -P cat $page 2>/dev/null | grep -q zcrelay || die "man $page"
	done
fi

say "examples built with pkg-config against the installed library"
ex=/usr/share/doc/libzcrelay-dev/examples
for e in join serve embed; do
	[ -f "$ex/$e.c" ] || die "$ex/$e.c is not installed"
	# shellcheck disable=SC2046
	cc -Wall -Werror -o "$work/$e" "$ex/$e.c" $(pkg-config --cflags --libs zcrelay) ||
		die "cc $e.c"
done
ldd "$work/join" >"$work/ldd.out" 2>&1 || true
grep -Eq "libzcrelay.so.0 => (/usr)?/lib/" "$work/ldd.out" ||
	{ cat "$work/ldd.out"; die "join is not linked with the installed libzcrelay.so.0"; }

# relay_as_zcrelay drop|runuser: the installed daemon, as user zcrelay
# (dropped to from root by the config's user, or started as it with
# runuser), relays a file from serve to a client; checked with SHA-256.
relay_as_zcrelay() {
	local up port pid daemon got uid zuid
	"$work/serve" 127.0.0.1:0 "$work/data" >"$work/serve.out" 2>&1 &
	pids+=($!)
	wait_for "$work/serve.out" "listening on"
	up=$(sed -n 's/^serve: listening on //p' "$work/serve.out")
	port=$(free_port 24600)
	if [ "$1" = drop ]; then
		cat >"$work/zcrelay.conf" <<EOF
user = "zcrelay";
routes = ( { name = "ci"; listen = "127.0.0.1:$port"; upstreams = "$up"; } );
EOF
		zcrelay -c "$work/zcrelay.conf" >"$work/zcrelay.log" 2>&1 &
	else
		runuser -u zcrelay -- zcrelay -l "127.0.0.1:$port" -u "$up" \
			>"$work/zcrelay.log" 2>&1 &
	fi
	pid=$!
	pids+=("$pid")
	wait_for "$work/zcrelay.log" "listening"
	# runuser stays the parent of the daemon; with drop it is the daemon.
	daemon=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null)
	daemon=${daemon%% *}
	[ -n "$daemon" ] || daemon=$pid
	uid=$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$daemon/status")
	zuid=$(id -u zcrelay)
	[ "$uid" = "$zuid$zuid$zuid$zuid" ] ||
		die "$1: the daemon's real/effective/saved/fs uids are not zcrelay's: $uid"
	got=$(timeout 30 socat -u "TCP:127.0.0.1:$port" - | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || die "$1: relayed bytes differ ($got, want $want)"
	wait_for "$work/serve.out" "serve: 67108864 bytes"
	wait_for "$work/zcrelay.log" " session "
	kill "$daemon"
	wait "$pid" 2>/dev/null || true
}

say "the daemon as user zcrelay relays a file byte-exact (upstream: serve)"
head -c 64M /dev/urandom >"$work/data"
want=$(sha256sum <"$work/data" | cut -d' ' -f1)
chmod 755 "$work"
chmod 644 "$work/data"
relay_as_zcrelay drop
relay_as_zcrelay runuser

say "the default config runs; zcrelay ctl status answers on its admin socket"
if grep -qi ':1F90 00000000:0000 0A' /proc/net/tcp; then
	say "skipped: 127.0.0.1:8080 (the default listener) is taken here"
else
	zcrelay -c /etc/zcrelay/zcrelay.conf >"$work/default.log" 2>&1 &
	pids+=($!)
	wait_for "$work/default.log" "listening"
	for _ in $(seq 50); do [ -S /run/zcrelay/admin.sock ] && break; sleep 0.1; done
	zcrelay ctl status >"$work/status.out" 2>&1 ||
		{ cat "$work/status.out"; die "zcrelay ctl status"; }
	zcrelay ctl upstreams >"$work/upstreams.out" 2>&1 ||
		{ cat "$work/upstreams.out"; die "zcrelay ctl upstreams"; }
	grep -q '127.0.0.1:8081' "$work/upstreams.out" ||
		{ cat "$work/upstreams.out"; die "ctl upstreams: no 127.0.0.1:8081"; }
	kill "${pids[-1]}"
	wait "${pids[-1]}" 2>/dev/null || true
fi

say "join and embed (built above) relay to a socat upstream"
for e in join embed; do
	: >"$work/up.out"
	uport=$(free_port 24800)
	socat -u "TCP-LISTEN:$uport,reuseaddr" "OPEN:$work/up.out,creat,trunc" &
	pids+=($!)
	sleep 0.2
	"$work/$e" 127.0.0.1:0 "127.0.0.1:$uport" >"$work/$e.out" 2>&1 &
	pids+=($!)
	wait_for "$work/$e.out" "listening on"
	addr=$(sed -n "s/^$e: listening on //p" "$work/$e.out")
	timeout 30 socat -u "OPEN:$work/data" "TCP:$addr"
	wait_for "$work/$e.out" "up 67108864"
	[ "$(sha256sum <"$work/up.out" | cut -d' ' -f1)" = "$want" ] ||
		die "$e: the upstream got other bytes"
	kill "${pids[-1]}" 2>/dev/null || true
done

say "apt-get purge; nothing may be left but the zcrelay user"
apt-get -o DPkg::Lock::Timeout=300 purge -y -qq "${pkgs[@]}" >"$work/purge.log" 2>&1 ||
	{ cat "$work/purge.log"; die "apt-get purge"; }
if dpkg-statoverride --list | grep -q zcrelay; then
	die "purge left a dpkg-statoverride: $(dpkg-statoverride --list | grep zcrelay)"
fi
if dpkg -l "${pkgs[@]}" 2>/dev/null | grep -q '^[a-z][a-z] '; then
	dpkg -l "${pkgs[@]}" | grep '^[a-z][a-z] ' >&2
	die "packages still known to dpkg after purge"
fi
leftovers >"$work/after"
# /run/zcrelay (tmpfiles.d) is on a tmpfs; find does not look there.
if ! diff -u "$work/before" "$work/after"; then
	die "purge left files behind (above)"
fi
say "OK: built, lintian clean, installed, used, purged"
