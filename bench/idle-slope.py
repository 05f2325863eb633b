#!/usr/bin/env python3
"""bench/idle-slope.py ZCRELAY ENGINE [MOVER [N1 N2]]

Marginal memory of an idle session through the zcrelay daemon: starts an
echo server and `ZCRELAY --workers 2 --engine ENGINE --mover MOVER` on
loopback, opens N1 (default 1000) sessions, each proven with a 1-byte
round trip, reads the daemon's VmRSS, opens more up to N2 (default 3000),
reads it again and prints the slope in KiB per session. Needs only
python3; ENGINE is epoll or uring, MOVER defaults to auto."""
import os, socket, subprocess, sys, time, selectors, signal

def echo_server(lsock):
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lsock:
                c, _ = lsock.accept(); c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
            else:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b''
                if d:
                    s.send(d)
                else:
                    sel.unregister(s); s.close()

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])

def open_conns(port, n, out):
    for _ in range(n):
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"i")
        assert c.recv(1) == b"i"
        out.append(c)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def main():
    zc, engine = sys.argv[1], sys.argv[2]
    mover = sys.argv[3] if len(sys.argv) > 3 else "auto"
    n1 = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
    n2 = int(sys.argv[5]) if len(sys.argv) > 5 else 3000
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0)); ls.listen(4096)
    up = ls.getsockname()[1]
    epid = os.fork()
    if epid == 0:
        echo_server(ls); os._exit(0)
    ls.close()
    port = free_port()
    d = subprocess.Popen([zc, "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{up}",
                          "--workers", "2", "--engine", engine, "--mover", mover, "-q"])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)
        conns = []
        open_conns(port, n1, conns); time.sleep(1)
        r1 = rss_kib(d.pid)
        open_conns(port, n2 - n1, conns); time.sleep(1)
        r2 = rss_kib(d.pid)
        print(f"engine={engine} mover={mover} rss@{n1}={r1} KiB rss@{n2}={r2} KiB "
              f"slope={(r2 - r1) / (n2 - n1):.3f} KiB/session")
        for c in conns: c.close()
    finally:
        d.send_signal(signal.SIGINT)
        try: d.wait(10)
        except subprocess.TimeoutExpired: d.kill()
        os.kill(epid, signal.SIGKILL); os.waitpid(epid, 0)

main()
