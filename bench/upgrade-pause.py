#!/usr/bin/env python3
"""upgrade-pause.py [--idle N] [--engine E] [--mover M] [--rounds R]

Measures what an upgrade (SIGUSR2) costs the sessions of a running
zcrelay: N idle sessions and one busy one (a stream the receiver reads
as fast as it can) go through the daemon; then, per round, SIGUSR2 and

  - exit ms:  from SIGUSR2 until the old process has exited (all its
              sessions handed over);
  - pause ms: the longest gap between two reads of the busy session
              around the upgrade (bytes stop moving for that long);
  - alive:    how many idle sessions still relay afterwards (a byte each
              way through every one of them).

Loopback only; needs root or RLIMIT_NOFILE >= 2 N + 100 for the test
process (the daemon gets the same limit). Run from the source tree after
`make`: uses build/zcrelay.
"""
import argparse
import ctypes
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "zcrelay")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Busy(threading.Thread):
    """Streams through the relay; records when each read returned."""

    def __init__(self, c, u):
        super().__init__(daemon=True)
        self.c, self.u, self.stop = c, u, False
        self.times = []
        self.sender = threading.Thread(target=self.send, daemon=True)

    def send(self):
        buf = b"x" * 65536
        while not self.stop:
            try:
                self.c.sendall(buf)
            except OSError:
                return

    def run(self):
        self.sender.start()
        self.u.settimeout(5)
        while not self.stop:
            try:
                if not self.u.recv(1 << 20):
                    return
            except OSError:
                return
            self.times.append(time.monotonic())

    def gap_ms(self, t0, t1):
        ts = [t for t in self.times if t0 - 0.5 <= t <= t1 + 0.5]
        return max((b - a for a, b in zip(ts, ts[1:])), default=0) * 1000


def zombie(pid):
    """An exited process its parent has not reaped yet."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def wait_exit(pid, limit):
    """Whether pid exited within limit seconds. From the second round on
    the old process is not our child: it counts as gone once it is a
    zombie, whoever reaps it (we do, as PR_SET_CHILD_SUBREAPER)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if zombie(pid):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.001)
    return False


def read_pid(path, old, limit=10):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            p = int(open(path).read().strip() or 0)
            if p and p != old:
                return p
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    return None


def alive(pairs):
    ok = 0
    for c, u in pairs:
        try:
            c.sendall(b"p")
            u.settimeout(5)
            if u.recv(1) == b"p":
                u.sendall(b"q")
                c.settimeout(5)
                ok += c.recv(1) == b"q"
        except OSError:
            pass
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--mover", default="auto")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    # Later generations become our children when their parent exits.
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # SUBREAPER
    need = 2 * a.idle + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), max(hard, need)))
    tmp = tempfile.mkdtemp(prefix="zcup-")
    ul = socket.socket()
    ul.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ul.bind(("127.0.0.1", 0))
    ul.listen(4096)
    lport = free_port()
    pidf = os.path.join(tmp, "zcrelay.pid")
    cfg = os.path.join(tmp, "zcrelay.conf")
    with open(cfg, "w") as f:
        f.write('workers = 2;\nlog = { sessions = false; };\n'
                'engine = "%s";\npid-file = "%s";\ndrain-timeout = 60000;\n'
                'routes = ({ name = "r"; mover = "%s"; listen = "127.0.0.1:%d";'
                ' upstreams = ["127.0.0.1:%d"]; });\n'
                % (a.engine, pidf, a.mover, lport, ul.getsockname()[1]))
    d = subprocess.Popen([BIN, "-c", cfg], stderr=subprocess.DEVNULL)
    pid = read_pid(pidf, 0)
    pairs = []
    for _ in range(a.idle + 1):
        c = socket.create_connection(("127.0.0.1", lport))
        u, _ = ul.accept()
        pairs.append((c, u))
    busy = Busy(*pairs.pop())
    busy.start()
    time.sleep(1)
    print("upgrade-pause: %d idle sessions and 1 busy one through zcrelay "
          "(engine %s, mover %s)" % (a.idle, a.engine, a.mover))
    print("%-6s %10s %10s %8s" % ("round", "exit ms", "pause ms", "alive"))
    for r in range(a.rounds):
        t0 = time.monotonic()
        os.kill(pid, signal.SIGUSR2)
        new = read_pid(pidf, pid)
        exited = wait_exit(pid, 30)
        t1 = time.monotonic()
        time.sleep(0.5)
        n = alive(pairs)
        print("%-6d %10.1f %10.1f %8s" % (
            r + 1, (t1 - t0) * 1000 if exited else float("nan"),
            busy.gap_ms(t0, t1), "%d/%d" % (n, len(pairs))))
        pid = new or pid
    busy.stop = True
    os.kill(pid, signal.SIGTERM)
    wait_exit(pid, 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
