#!/usr/bin/env python3
"""Sign-in latency quiet and beside a CPU hog (docs/benchmarks.md, "Sign-ins beside a CPU hog").

usage: bench/signin-hog.py GATEHOUSE_BINARY [LABEL]   (RUNS=3 LOGINS=30 by default)

Runs `gatehouse demo` (seeded argon2id users) pinned to CPU 0 on free loopback ports and, per
run, measures sequentially: a Basic sign-in of each of two demo users (the first use of
each pair, so a real hash: the verified-pair cache is new with each gateway) and LOGINS
`POST /auth/login` (every one hashes). Quiet first, then with a hog: one busy loop per CPU the
gateway may use, pinned to the same CPU 0, at the same (normal) priority. Prints p50/p99/max
per mode and the hog/quiet ratio of the p99. Everything listens on 127.0.0.1; every process
started here is stopped on exit.
"""

import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

TIMEOUT = float(os.environ.get("TIMEOUT", 20))

# The demo's users that sign in with a password alone (carol is suspended, dave has MFA).
USERS = [("alice", "alice-password"), ("bob", "bob-password")]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def timed(req):
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        e.read()
        status = e.code
    except TimeoutError:
        # Starved: counted as the timeout (the answer took at least this long).
        return TIMEOUT * 1000, 200
    return (time.perf_counter() - t) * 1000, status


def start(binary):
    listen, upstream = free_port(), free_port()
    p = subprocess.Popen(
        ["taskset", "-c", "0", binary, "demo", "--listen", f"127.0.0.1:{listen}",
         "--upstream", f"127.0.0.1:{upstream}", "--log", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{listen}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            return p, base
        except Exception:
            time.sleep(0.1)
    p.kill()
    sys.exit("gatehouse demo did not start")


def measure(binary, logins):
    p, base = start(binary)
    try:
        basic = []
        for user, pw in USERS:
            cred = base64.b64encode(f"{user}:{pw}".encode()).decode()
            req = urllib.request.Request(base + "/api/posts",
                                         headers={"Authorization": "Basic " + cred})
            ms, status = timed(req)
            assert status == 200, status
            basic.append(ms)
        login = []
        for i in range(logins):
            user, pw = USERS[i % len(USERS)]
            body = json.dumps({"username": user, "password": pw}).encode()
            req = urllib.request.Request(base + "/auth/login", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            ms, status = timed(req)
            assert status == 200, status
            login.append(ms)
        return basic, login
    finally:
        p.terminate()
        p.wait()


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    binary = sys.argv[1]
    label = sys.argv[2] if len(sys.argv) > 2 else binary
    runs, logins = int(os.environ.get("RUNS", 3)), int(os.environ.get("LOGINS", 30))
    hogs_n = len(os.sched_getaffinity(0))
    res = {"quiet": ([], []), "hog": ([], [])}
    for _ in range(runs):
        for mode in ("quiet", "hog"):
            hogs = []
            if mode == "hog":
                hogs = [subprocess.Popen(["taskset", "-c", "0", sys.executable, "-c",
                                          "while True: pass"]) for _ in range(hogs_n)]
                time.sleep(0.5)
            try:
                b, l = measure(binary, logins)
            finally:
                for h in hogs:
                    h.terminate()
                    h.wait()
            res[mode][0].extend(b)
            res[mode][1].extend(l)
    for kind, i in (("Basic (first use)", 0), ("/auth/login", 1)):
        q, h = res["quiet"][i], res["hog"][i]
        print(f"{label} | {kind} | quiet p50 {statistics.median(q):.1f} ms p99 {pct(q, .99):.1f} ms"
              f" max {max(q):.1f} | hog p50 {statistics.median(h):.1f} ms p99 {pct(h, .99):.1f} ms"
              f" max {max(h):.1f} | p99 hog/quiet {pct(h, .99) / pct(q, .99):.1f}x | n={len(q)}/{len(h)}")


if __name__ == "__main__":
    main()
