#!/usr/bin/env python3
"""The soak with faults (issue 18); run it through bench/soak.sh, which says what it checks.

Environment: GATEHOUSE (the binary), DURATION (default 30m), FAULT_EVERY, KEEP=1.
Standard library only.
"""

import base64
import collections
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

GATEHOUSE = os.environ.get("GATEHOUSE", "target/release/gatehouse")
PASSWORD = "soak correct horse battery"
REALM = "soak"
GRACE = 5.0  # seconds after a fault's recovery in which its 502/503/504 still count as its own


def seconds(text):
    m = re.fullmatch(r"(\d+)(s|m|h)?", text.strip())
    if not m:
        sys.exit(f"soak: bad duration `{text}` (e.g. 90s, 30m, 1h)")
    return int(m[1]) * {"s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


DURATION = seconds(os.environ.get("DURATION", "30m"))
FAULT_EVERY = seconds(os.environ["FAULT_EVERY"]) if os.environ.get("FAULT_EVERY") else (
    60 if DURATION >= 600 else max(10, DURATION // 8))
WARMUP = max(60, DURATION // 10)


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what, limit=30):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"soak: {what} did not listen on {port}")


TMP = tempfile.mkdtemp(prefix="gatehouse-soak.")
os.chmod(TMP, 0o755)
CHILDREN = []


# --- PostgreSQL, Redis, the upstream: our own, on loopback -----------------------------------

def pg_bin():
    if shutil.which("initdb"):
        return os.path.dirname(shutil.which("initdb"))
    versions = sorted((int(v), v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
    if not versions:
        sys.exit("soak: PostgreSQL's initdb/pg_ctl not found")
    return f"/usr/lib/postgresql/{versions[-1][1]}/bin"


class Postgres:
    def __init__(self):
        self.bin = pg_bin()
        self.dir = os.path.join(TMP, "pg")
        os.makedirs(self.dir)
        self.root = os.geteuid() == 0
        if self.root:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = free_port()
        self.tool("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "-E",
                  "UTF8", "--no-sync")
        self.start()

    def tool(self, name, *args):
        cmd = [f"{self.bin}/{name}", *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)

    def start(self):
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=100")
        self.tool("pg_ctl", "-D", f"{self.dir}/data", "-o", opts, "-w", "-t", "60", "-l",
                  f"{self.dir}/log", "start")

    def stop(self, mode="fast"):
        subprocess.run(
            (["runuser", "-u", "postgres", "--"] if self.root else [])
            + [f"{self.bin}/pg_ctl", "-D", f"{self.dir}/data", "-m", mode, "-w", "-t", "60",
               "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def query(self, sql):
        out = subprocess.run(["psql", "-qAt", self.url(), "-c", sql], check=True,
                             capture_output=True, text=True)
        return out.stdout.splitlines()


class Redis:
    def __init__(self):
        self.port = free_port()
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CHILDREN.append(self.proc)
        wait_port(self.port, "redis-server")

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Upstream:
    """nginx answering 200 with the identity the gateway forwarded."""

    def __init__(self):
        self.port = free_port()
        self.dir = os.path.join(TMP, "upstream")
        os.makedirs(f"{self.dir}/logs")
        d = self.dir
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(f"""daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{ access_log off; keepalive_requests 1000000;
  client_body_temp_path {d}/cb; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  server {{ listen 127.0.0.1:{self.port};
    location / {{ return 200 "upstream saw $http_x_gatehouse_user"; }} }} }}
""")
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir, "-e", f"{self.dir}/logs/error.log", "-c",
             f"{self.dir}/nginx.conf"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CHILDREN.append(self.proc)
        wait_port(self.port, "nginx")

    def kill(self):
        self.proc.kill()
        self.proc.wait()


# --- the two nodes ----------------------------------------------------------------------------

HS_SECRET = "soak-hs256-secret-" + os.urandom(12).hex()
PREFIX = f"gh-soak-{os.getpid()}"


def config(port, admin, name, pg, redis, up, reload_gen):
    # `[[route]] reload`'s quota changes with every SIGHUP (the generation), to show the
    # reload took; its max stays far above what the soak sends.
    return f"""[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
realm = "{REALM}"
trusted_proxies = ["127.0.0.1/32"]

[store]
url = "{pg.url()}"

[cluster]
redis_url = "redis://127.0.0.1:{redis.port}"
key_prefix = "{PREFIX}"

[upstream]
url = "http://127.0.0.1:{up.port}"
connect_timeout = "1s"
timeout = "10s"

[tokens]
access_ttl = "{max(3600, DURATION + 1800)}s"

[[issuers]]
name = "soak-hs"
issuer = "https://hs.soak.invalid"
audience = "api"
secret = "{HS_SECRET}"
algorithms = ["HS256"]

[throttle]
failed_per_ip = {{ max = 20, per = "1m" }}
failed_per_account = {{ max = 5, per = "15m" }}
tarpit = "1s"

[audit]
file = "{TMP}/audit-{name}.jsonl"

[defaults]
access = "authenticated"
auth = ["bearer", "api_key"]

[[route]]
name = "deny"
path = "/deny/**"
access = "deny"

[[route]]
name = "internal"
path = "/internal/**"
networks = ["10.0.0.0/8"]

[[route]]
name = "basic"
path = "/basic/**"
auth = ["basic"]

[[route]]
name = "digest"
path = "/digest/**"
auth = ["digest"]

[[route]]
name = "admin"
path = "/admin-area/**"
roles = ["admin"]

[[route]]
name = "scoped"
path = "/scoped/**"
scopes = ["orders:write"]

[[route]]
name = "mfa"
path = "/mfa/**"
auth = ["bearer"]
mfa = true

[[route]]
name = "tenant"
path = "/tenants/{{tenant}}/**"
tenant_param = "tenant"

[[route]]
name = "owner"
path = "/users/{{user_id}}/**"
owner_param = "user_id"

[[route]]
name = "hidden"
path = "/hidden/**"
roles = ["admin"]
hidden = true

[[route]]
name = "quota"
path = "/quota/**"
quota = {{ max = 5, per = "1m" }}

[[route]]
name = "reload"
path = "/reload/**"
quota = {{ max = {1_000_000 + reload_gen}, per = "1h" }}
"""


class Node:
    def __init__(self, name, pg, redis, up):
        self.name = name
        self.port, self.admin = free_port(), free_port()
        self.path = os.path.join(TMP, f"{name}.toml")
        self.deps = (pg, redis, up)
        self.write(0)
        self.log = open(os.path.join(TMP, f"{name}.log"), "w")
        self.proc = subprocess.Popen(
            [GATEHOUSE, "serve", "--config", self.path], stdout=self.log, stderr=self.log,
            env={**os.environ, "GATEHOUSE_LOG": "info"}, cwd=TMP)
        CHILDREN.append(self.proc)

    def write(self, gen):
        with open(self.path, "w") as f:
            f.write(config(self.port, self.admin, self.name, *self.deps, gen))

    def wait_ready(self):
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"soak: node {self.name} exited; see {TMP}/{self.name}.log")
            try:
                if get(self.port, "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"soak: node {self.name} not ready")

    def reloads(self):
        with open(os.path.join(TMP, f"{self.name}.log"), errors="replace") as f:
            return f.read().count("config reloaded")

    def metric(self, name):
        _, _, body = get(self.admin, "/metrics")
        for line in body.splitlines():
            k, _, v = line.partition(" ")
            if k == name:
                return float(v)
        return None

    def rss_fds(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{self.proc.pid}/fd"))


def get(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode("utf-8", "replace")
    finally:
        c.close()


def cli(node, *args, stdin=""):
    out = subprocess.run([GATEHOUSE, *args, "--config", node.path], input=stdin,
                         capture_output=True, text=True, cwd=TMP,
                         env={**os.environ, "GATEHOUSE_LOG": "warn"})
    if out.returncode != 0:
        raise RuntimeError(f"gatehouse {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


# --- bookkeeping ------------------------------------------------------------------------------

class Book:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()      # (class, status, error)
        self.refusals = {}                       # request id -> (node, status, error, class)
        self.no_id = 0
        self.wrong = collections.Counter()       # (class, status, error, in a fault?)
        self.wrong_examples = []
        self.conn_errors = collections.Counter()  # (class, in a fault?)
        self.fivexx = collections.Counter()      # (status, error, fault name or "none")
        self.faults = []                         # [name, start, end]
        self.revocations = []                    # dicts
        self.events = collections.Counter()

    def fault_at(self, t0, t1):
        with self.lock:
            for name, s, e in self.faults:
                if t0 <= (e if e else float("inf")) + GRACE and t1 >= s:
                    return name
        return None


BOOK = Book()
STOP = threading.Event()
NODES = []


class Client:
    """One keep-alive connection per node, reopened after errors or `Connection: close`."""

    def __init__(self):
        self.conns = {}

    def send(self, cls, node, method, path, headers=None, body=None, expect=(),
             store=False, proxied=False):
        """Sends, checks the answer against `expect` [(status, error or None)], records it.

        `store`: the answer needs the store (may be 503 auth_unavailable while PostgreSQL is
        down); `proxied`: an allowed answer comes from the upstream (may be 502/504 while it
        is down). Returns (status, error, json body or None, headers) or None on a
        connection error."""
        headers = dict(headers or {})
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        t0 = time.time()
        for attempt in (1, 2):
            c = self.conns.get(node.name)
            if c is None:
                c = self.conns[node.name] = http.client.HTTPConnection(
                    "127.0.0.1", node.port, timeout=30)
            try:
                c.request(method, path, body=body, headers=headers)
                r = c.getresponse()
                raw = r.read()
                hdrs = {}
                for k, v in r.getheaders():
                    k = k.lower()
                    hdrs[k] = f"{hdrs[k]}, {v}" if k in hdrs else v
                if r.will_close:
                    c.close()
                    self.conns.pop(node.name, None)
                break
            except (OSError, http.client.HTTPException):
                c.close()
                self.conns.pop(node.name, None)
                # A keep-alive connection the server closed while idle: once more, fresh.
                if attempt == 2:
                    fault = BOOK.fault_at(t0, time.time())
                    with BOOK.lock:
                        BOOK.conn_errors[(cls, fault is not None)] += 1
                    return None
        t1 = time.time()
        status = r.status
        doc = None
        if hdrs.get("content-type", "").startswith(("application/problem+json",
                                                    "application/json")):
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
        error = doc.get("error") if isinstance(doc, dict) else None
        fault = None
        if status >= 500 or (expect and (status, error) not in expect
                             and (status, None) not in expect):
            fault = BOOK.fault_at(t0, t1)
        ok = not expect or (status, error) in expect or (status, None) in expect
        if not ok and fault:
            # The documented answers to our faults: 503 auth_unavailable (the store is
            # down), 502/504 (the upstream is down).
            ok = (store and fault == "postgres" and (status, error) == (503, "auth_unavailable")) \
                or (proxied and fault == "upstream"
                    and (status, error) in ((502, "upstream_unavailable"),
                                            (504, "upstream_timeout")))
        with BOOK.lock:
            BOOK.counts[(cls, status, error)] += 1
            if status >= 400:
                rid = hdrs.get("x-request-id")
                if rid:
                    BOOK.refusals[rid] = (node.name, status, error, cls)
                else:
                    BOOK.no_id += 1
            if status >= 500:
                BOOK.fivexx[(status, error, fault or "none")] += 1
            if not ok:
                BOOK.wrong[(cls, status, error, fault or "none")] += 1
                if len(BOOK.wrong_examples) < 20:
                    BOOK.wrong_examples.append(
                        (time.strftime("%H:%M:%S"), cls, node.name, method, path, status,
                         raw[:300].decode("utf-8", "replace"), fault))
        return status, error, doc, hdrs


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims):
    head = b64u(b'{"alg":"HS256","typ":"JWT"}') + "." + b64u(json.dumps(claims).encode())
    sig = hmac.new(HS_SECRET.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64u(sig)


def basic(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def xff(kind):
    """A client address per kind of traffic (the nodes trust 127.0.0.1's X-Forwarded-For):
    legitimate clients each their own, guessers from addresses that never repeat."""
    if kind == "random":
        return f"100.{64 + random.randrange(64)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    return kind


# --- the load ---------------------------------------------------------------------------------

class Fixtures:
    pass


FX = Fixtures()


def node():
    return random.choice(NODES)


def rows_worker(wid):
    """Allowed requests and one request per refusal row, in random order."""
    c = Client()
    me = {"X-Forwarded-For": f"198.51.100.{10 + wid}"}
    now = lambda: int(time.time())
    cases = [
        # allowed: own token, issuer token, API key, Basic
        ("allow-own-token", lambda: ("GET", "/api/orders", {"Authorization": f"Bearer {FX.alice}"}),
         [(200, None)], False, True),
        ("allow-hs256", lambda: ("GET", "/api/orders", {"Authorization": f"Bearer {FX.hs_t1}"}),
         [(200, None)], False, True),
        ("allow-api-key", lambda: ("GET", "/api/orders", {"X-API-Key": FX.key}),
         [(200, None)], True, True),
        ("allow-basic", lambda: ("GET", "/basic/x", {"Authorization": basic("alice", PASSWORD)}),
         [(200, None)], True, True),
        ("allow-tenant", lambda: ("GET", "/tenants/t1/x", {"Authorization": f"Bearer {FX.hs_t1}"}),
         [(200, None)], False, True),
        ("allow-owner", lambda: ("GET", "/users/alice/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(200, None)], False, True),
        ("allow-reload", lambda: ("GET", "/reload/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(200, None)], False, True),
        # the refusal rows
        ("r2-deny", lambda: ("GET", "/deny/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(403, "forbidden_path")], False, False),
        ("r3-network", lambda: ("GET", "/internal/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(403, "ip_blocked")], False, False),
        ("r5-missing", lambda: ("GET", "/api/orders", {}),
         [(401, "missing_credentials")], False, False),
        ("r6-scheme", lambda: ("GET", "/api/orders", {"Authorization": basic("alice", PASSWORD)}),
         [(401, "unsupported_scheme")], False, False),
        ("r7-malformed", lambda: ("GET", "/api/orders", {"Authorization": "Bearer"}),
         [(400, "invalid_request")], False, False),
        ("r8-garbage", lambda: ("GET", "/api/orders",
                                {"Authorization": "Bearer " + FX.hs_t1[:-6] + b64u(os.urandom(4)),
                                 "X-Forwarded-For": xff("random")}),
         [(401, "invalid_token")], False, False),
        ("r9-expired", lambda: ("GET", "/api/orders", {"Authorization": f"Bearer {FX.hs_expired}"}),
         [(401, "token_expired")], False, False),
        ("r11-wrong-password", lambda: ("GET", "/basic/x",
                                        {"Authorization": basic(f"nobody{random.randrange(10**9)}", "x"),
                                         "X-Forwarded-For": xff("random")}),
         [(401, "invalid_credentials")], True, False),
        ("r11-unknown-key", lambda: ("GET", "/api/orders",
                                     {"X-API-Key": FX.key[:-4] + "AAAA", "X-Forwarded-For": xff("random")}),
         [(401, "invalid_credentials")], True, False),
        ("r14-mfa", lambda: ("GET", "/mfa/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(401, "insufficient_user_authentication")], False, False),
        ("r15-role", lambda: ("GET", "/admin-area/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(403, "insufficient_role")], False, False),
        ("r16-scope", lambda: ("GET", "/scoped/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(403, "insufficient_scope")], False, False),
        ("r17-tenant", lambda: ("GET", "/tenants/t2/x", {"Authorization": f"Bearer {FX.hs_t1}"}),
         [(403, "tenant_mismatch")], False, False),
        ("r18-owner", lambda: ("GET", "/users/bob/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(403, "not_owner")], False, False),
        ("r19-read-only", lambda: ("POST", "/api/orders", {"X-API-Key": FX.ro_key,
                                                           "Content-Length": "0"}),
         [(403, "read_only")], True, False),
        ("r20-hidden", lambda: ("GET", "/hidden/x", {"Authorization": f"Bearer {FX.alice}"}),
         [(404, "not_found")], False, False),
    ]
    while not STOP.is_set():
        name, make, expect, store, proxied = random.choice(cases)
        method, path, headers = make()
        headers = {**me, **headers}
        c.send(name, node(), method, path, headers, expect=expect, store=store, proxied=proxied)
        time.sleep(0.005)


def quota_worker():
    """Row 24: a subject sending more than its quota (5 a minute) on one route."""
    c = Client()
    while not STOP.is_set():
        c.send("r24-quota", node(), "GET", "/quota/x",
               {"Authorization": f"Bearer {FX.quinn}", "X-Forwarded-For": "198.51.100.60"},
               expect=[(200, None), (429, "rate_limited")], proxied=True)
        STOP.wait(1.0)


def digest_worker():
    """Digest (RFC 7616, SHA-256) with nonce reuse and increasing `nc`; row 12 with a nonce
    kept from the start once it is older than the nonce lifetime (300 s)."""
    c = Client()
    me = {"X-Forwarded-For": "198.51.100.70"}
    ha1 = hashlib.sha256(f"dora:{REALM}:{PASSWORD}".encode()).hexdigest()
    first = None
    nonce = None

    def challenge():
        r = c.send("r5-digest-challenge", node(), "GET", "/digest/x", me,
                   expect=[(401, "missing_credentials")])
        if not r:
            return None
        for part in r[3].get("www-authenticate", "").split("Digest ")[1:]:
            if "SHA-256" in part and "-sess" not in part:
                n = re.search(r'nonce="([^"]+)"', part)[1]
                o = re.search(r'opaque="([^"]+)"', part)[1]
                return [n, o, 0, time.time()]
        return None

    def answer(state, cls, expect, store=True):
        n, o, _, _ = state
        state[2] += 1
        nc = f"{state[2]:08x}"
        cnonce = os.urandom(8).hex()
        uri = "/digest/x"
        ha2 = hashlib.sha256(f"GET:{uri}".encode()).hexdigest()
        resp = hashlib.sha256(f"{ha1}:{n}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
        h = (f'Digest username="dora", realm="{REALM}", nonce="{n}", uri="{uri}", '
             f'algorithm=SHA-256, qop=auth, nc={nc}, cnonce="{cnonce}", response="{resp}", '
             f'opaque="{o}"')
        return c.send(cls, node(), "GET", uri, {**me, "Authorization": h}, expect=expect,
                      store=store, proxied=True)

    while not STOP.is_set():
        if nonce is None or nonce[2] >= 20:
            nonce = challenge()
            if first is None:
                first = nonce and list(nonce)
            if nonce is None:
                STOP.wait(1)
                continue
        if first and time.time() - first[3] > 320:
            first[2] = 1000  # past every `nc` the nonce was used with: only its age is wrong
            answer(first, "r12-stale-nonce", [(401, "stale_nonce")])
            first = None  # once is enough; the next challenge starts another
        answer(nonce, "allow-digest", [(200, None)])
        STOP.wait(0.2)


def session_worker(wid):
    """Sign-ins, refreshes, refresh-token reuse and logouts; every revocation is checked on
    both nodes until enforced."""
    c = Client()
    me = {"X-Forwarded-For": f"198.51.100.{80 + wid}"}
    user = f"sam{wid}"
    while not STOP.is_set():
        a, b = random.sample(NODES, 2)
        r = c.send("signin", a, "POST", "/auth/login", me,
                   {"username": user, "password": PASSWORD}, expect=[(200, None)], store=True)
        if not r or r[0] != 200:
            STOP.wait(1)
            continue
        access, refresh = r[2]["access_token"], r[2]["refresh_token"]
        for n in NODES:
            c.send("allow-signed-in", n, "GET", "/api/orders",
                   {**me, "Authorization": f"Bearer {access}"}, expect=[(200, None)],
                   proxied=True)
        r = c.send("refresh", b, "POST", "/auth/refresh", me, {"refresh_token": refresh},
                   expect=[(200, None)], store=True)
        if not r or r[0] != 200:
            continue
        access2 = r[2]["access_token"]
        if random.random() < 0.25:
            # Reuse of the spent refresh token: theft detection revokes the family.
            r = c.send("refresh-reuse", a, "POST", "/auth/refresh", me,
                       {"refresh_token": refresh}, expect=[(401, "invalid_token")], store=True)
            if r and r[0] == 401:
                enforce("refresh-reuse", access2, me, c)
            continue
        r = c.send("logout", a, "POST", "/auth/logout",
                   {**me, "Authorization": f"Bearer {access2}"}, expect=[(200, None), (204, None)],
                   store=True)
        if r and r[0] in (200, 204):
            enforce("logout", access2, me, c)
        STOP.wait(0.2)


def enforce(kind, token, me, c, want=(401, "token_revoked"), limit=10.0):
    """Polls both nodes until each refuses `token` with `want`; records how long it took."""
    t0 = time.time()
    rec = {"kind": kind, "token": token, "want": want, "at": t0, "took": {}, "ok": True}
    for n in NODES:
        while True:
            r = c.send(f"r{10 if want[1] == 'token_revoked' else 13}-{kind}-check", n, "GET",
                       "/api/orders", {**me, "Authorization": f"Bearer {token}"})
            if r and (r[0], r[1]) == want:
                rec["took"][n.name] = time.time() - t0
                break
            if time.time() - t0 > limit:
                rec["ok"] = False
                rec["took"][n.name] = None
                log(f"soak: {kind} not enforced on node {n.name} after {limit}s: {r and r[:2]}")
                break
            time.sleep(0.02)
    with BOOK.lock:
        BOOK.revocations.append(rec)


def suspend_worker():
    """Row 13: `gatehouse user suspend` on one node's config, enforced on both; then lifted."""
    c = Client()
    me = {"X-Forwarded-For": "198.51.100.90"}
    while not STOP.is_set():
        STOP.wait(15)
        if STOP.is_set():
            break
        try:
            cli(random.choice(NODES), "user", "suspend", "sue", "--reason", "soak")
        except RuntimeError as e:
            log(f"soak: suspend failed (a fault?): {e}")
            BOOK.events["suspend failed"] += 1
            continue
        enforce("suspend", FX.sue, me, c, want=(403, "account_suspended"))
        for _ in range(60):
            try:
                cli(random.choice(NODES), "user", "unsuspend", "sue")
                break
            except RuntimeError:
                STOP.wait(1)
        enforce("unsuspend", FX.sue, me, c, want=(200, None))


def stuffing_worker(wid):
    """A credential-stuffing flood: random user/password pairs against the sign-in form and
    Basic, from a few addresses (so they lock: 429, held 1 s by the tarpit)."""
    c = Client()
    while not STOP.is_set():
        me = {"X-Forwarded-For": f"203.0.113.{random.randrange(1, 33)}"}
        user = f"victim{random.randrange(10**6)}"
        pw = os.urandom(6).hex()
        expect = [(401, "invalid_credentials"), (429, "too_many_attempts")]
        if random.random() < 0.5:
            c.send("r4-stuffing-login", node(), "POST", "/auth/login", me,
                   {"username": user, "password": pw}, expect=expect, store=True)
        else:
            c.send("r4-stuffing-basic", node(), "GET", "/basic/x",
                   {**me, "Authorization": basic(user, pw)}, expect=expect, store=True)


# --- faults -----------------------------------------------------------------------------------

def fault_loop(pg, redis, up):
    kinds = ["redis", "postgres", "sighup", "upstream", "rotate"]
    gen = 0
    i = 0
    while not STOP.wait(FAULT_EVERY):
        kind = kinds[i % len(kinds)]
        i += 1
        rec = [kind, time.time(), None]
        with BOOK.lock:
            BOOK.faults.append(rec)
        log(f"fault: {kind}")
        if kind == "redis":
            redis.kill()
            time.sleep(3)
            redis.start()
        elif kind == "postgres":
            pg.stop("fast")
            time.sleep(5)
            pg.start()
            for n in NODES:
                n.wait_ready()
        elif kind == "sighup":
            gen += 1
            before = [n.reloads() for n in NODES]
            for n in NODES:
                n.write(gen)
                n.proc.send_signal(signal.SIGHUP)
            end = time.time() + 10
            while time.time() < end and any(n.reloads() <= b for n, b in zip(NODES, before)):
                time.sleep(0.1)
            for n, b in zip(NODES, before):
                if n.reloads() <= b:
                    BOOK.events["reload not seen"] += 1
                    log(f"soak: node {n.name} did not log `config reloaded`")
            BOOK.events["reloads"] += 1
        elif kind == "upstream":
            up.kill()
            time.sleep(2)
            up.start()
        elif kind == "rotate":
            try:
                cli(random.choice(NODES), "keys", "rotate")
                BOOK.events["key rotations"] += 1
            except RuntimeError as e:
                BOOK.events["key rotation failed"] += 1
                log(f"soak: keys rotate failed: {e}")
        rec[2] = time.time()
        BOOK.events[f"fault {kind}"] += 1


def sampler(samples):
    while not STOP.is_set():
        t = time.time()
        row = [t]
        for n in NODES:
            try:
                row.extend(n.rss_fds())
            except (OSError, StopIteration):
                row.extend([None, None])
        samples.append(row)
        STOP.wait(10)


# --- main -------------------------------------------------------------------------------------

def main():
    started = time.time()
    log(f"soak: {DURATION}s, a fault every {FAULT_EVERY}s, warm-up {WARMUP}s, in {TMP}")
    pg, redis, up = Postgres(), Redis(), Upstream()
    for name in ("a", "b"):
        NODES.append(Node(name, pg, redis, up))
    for n in NODES:
        n.wait_ready()
    first = NODES[0]
    for user, extra in [("alice", ["--role", "staff", "--tenant", "t1"]), ("bob", ["--role", "staff"]),
                        ("sue", ["--role", "staff"]), ("quinn", ["--role", "staff"]),
                        ("dora", ["--role", "staff", "--digest"])] + \
            [(f"sam{i}", ["--role", "staff"]) for i in range(2)]:
        cli(first, "user", "add", user, "--password-stdin", *extra, stdin=PASSWORD + "\n")
    FX.alice = cli(first, "token", "issue", "alice", "--ttl", f"{DURATION + 1800}s")
    FX.sue = cli(first, "token", "issue", "sue", "--ttl", f"{DURATION + 1800}s")
    FX.quinn = cli(first, "token", "issue", "quinn", "--ttl", f"{DURATION + 1800}s")
    FX.key = cli(first, "key", "create", "--user", "bob")
    FX.ro_key = cli(first, "key", "create", "--user", "bob", "--read-only")
    now = int(time.time())
    base = {"iss": "https://hs.soak.invalid", "aud": "api", "sub": "carol"}
    FX.hs_t1 = hs256({**base, "tenant": "t1", "iat": now, "exp": now + DURATION + 1800})
    FX.hs_expired = hs256({**base, "iat": now - 7200, "exp": now - 3600})

    threads = [threading.Thread(target=rows_worker, args=(i,)) for i in range(3)]
    threads += [threading.Thread(target=session_worker, args=(i,)) for i in range(2)]
    threads += [threading.Thread(target=stuffing_worker, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=f) for f in (quota_worker, digest_worker, suspend_worker)]
    samples = []
    threads.append(threading.Thread(target=sampler, args=(samples,)))
    faults = threading.Thread(target=fault_loop, args=(pg, redis, up))
    t_load = time.time()
    for t in threads + [faults]:
        t.daemon = True
        t.start()
    while time.time() - t_load < DURATION:
        time.sleep(min(30, max(0.1, DURATION - (time.time() - t_load))))
        with BOOK.lock:
            total = sum(BOOK.counts.values())
        log(f"soak: {int(time.time() - t_load)}s, {total} requests")
    STOP.set()
    faults.join()
    for t in threads:
        t.join(timeout=60)

    # Every revocation still holds, on both nodes, at the end.
    c = Client()
    still = 0
    for rec in BOOK.revocations:
        if rec["kind"] == "unsuspend" or rec["kind"] == "suspend":
            continue
        for n in NODES:
            r = c.send("r10-final-check", n, "GET", "/api/orders",
                       {"X-Forwarded-For": "198.51.100.99", "Authorization": f"Bearer {rec['token']}"})
            if not r or (r[0], r[1]) != rec["want"]:
                rec["ok"] = False
                log(f"soak: {rec['kind']} revocation no longer enforced on {n.name}: {r and r[:2]}")
            else:
                still += 1
    metrics = {n.name: {m: n.metric(m) for m in (
        "gatehouse_audit_dropped_total", "gatehouse_audit_store_failures_total",
        "gatehouse_audit_file_failures_total")} for n in NODES}
    # Stop the nodes (SIGTERM drains the audit queue), then count the audit records.
    for n in NODES:
        n.proc.send_signal(signal.SIGTERM)
    for n in NODES:
        n.proc.wait(timeout=60)
    in_file = {}
    for n in NODES:
        with open(os.path.join(TMP, f"audit-{n.name}.jsonl")) as f:
            for line in f:
                rid = json.loads(line).get("request_id")
                if rid:
                    in_file[rid] = n.name
    in_store = set(pg.query("SELECT request_id FROM audit"))
    report(started, in_file, in_store, samples, metrics, still)


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def report(started, in_file, in_store, samples, metrics, still):
    b = BOOK
    failed = []
    seen = b.refusals
    miss_file = [r for r in seen if r not in in_file]
    miss_store = [r for r in seen if r not in in_store]
    wrong_node = [r for r in seen if r in in_file and in_file[r] != seen[r][0]]
    total = sum(b.counts.values())
    print(f"\n## Soak: {DURATION // 60} min {DURATION % 60} s of load, "
          f"{int(time.time() - started)} s in all; {total} requests")
    print("\n| check | result |\n|---|---|")
    print(f"| refusals the load generator saw (with `X-Request-Id`) | {len(seen)} (without an id: {b.no_id}) |")
    print(f"| … with their record in the nodes' audit files | {len(seen) - len(miss_file)} (missing {len(miss_file)}, on the wrong node {len(wrong_node)}) |")
    print(f"| … with their record in the store's `audit` table | {len(seen) - len(miss_store)} (missing {len(miss_store)}) |")
    print(f"| records in the files / in the table (all requests, checks included) | {len(in_file)} / {len(in_store)} |")
    for name, m in metrics.items():
        print(f"| node {name}: audit dropped / store failures / file failures | "
              f"{m['gatehouse_audit_dropped_total']} / {m['gatehouse_audit_store_failures_total']} / "
              f"{m['gatehouse_audit_file_failures_total']} |")
    kinds = collections.Counter(r["kind"] for r in b.revocations)
    bad_rev = [r for r in b.revocations if not r["ok"]]
    took = [t for r in b.revocations for t in r["took"].values() if t is not None]
    print(f"| revocations and suspensions made | {dict(kinds)} |")
    print(f"| … enforced on both nodes | {len(b.revocations) - len(bad_rev)} of {len(b.revocations)}; "
          f"slowest {max(took, default=0) * 1000:.0f} ms, p50 {pct(took, 0.5) * 1000:.0f} ms |")
    print(f"| … still enforced at the end (token × node) | {still} |")
    print(f"| faults injected | {dict((k, v) for k, v in b.events.items() if k.startswith('fault'))} |")
    print(f"| other events | {dict((k, v) for k, v in b.events.items() if not k.startswith('fault'))} |")
    print(f"| 5xx answers (status, error, during) | {dict(b.fivexx) or 0} |")
    print(f"| answers outside the contract (class, status, error, during) | {dict(b.wrong) or 0} |")
    print(f"| connection errors (class, during a fault) | {dict(b.conn_errors) or 0} |")
    # RSS and fds after warm-up: the first and last minute's medians.
    warm = [s for s in samples if s[0] - samples[0][0] >= WARMUP] if samples else []
    flat_ok = True
    for i, n in enumerate(NODES):
        rss = [s[1 + 2 * i] for s in warm if s[1 + 2 * i] is not None]
        fds = [s[2 + 2 * i] for s in warm if s[2 + 2 * i] is not None]
        if len(rss) >= 6:
            r0, r1 = statistics.median(rss[:6]), statistics.median(rss[-6:])
            f0, f1 = statistics.median(fds[:6]), statistics.median(fds[-6:])
            grow = (r1 - r0) / r0 * 100
            print(f"| node {n.name}: RSS after warm-up, first → last minute (max) | "
                  f"{r0 / 1024:.1f} → {r1 / 1024:.1f} MiB ({max(rss) / 1024:.1f}), {grow:+.1f} % |")
            print(f"| node {n.name}: open fds, first → last minute (max) | {f0:.0f} → {f1:.0f} ({max(fds)}) |")
            if grow > 15 or f1 > f0 + 20:
                flat_ok = False
        else:
            print(f"| node {n.name}: RSS / fds | too short a run to judge ({len(rss)} samples after warm-up) |")
    print("\nAnswers per kind of request (status error: count):")
    per = collections.defaultdict(list)
    for (cls, st, err), k in sorted(b.counts.items()):
        per[cls].append(f"{st} {err or ''}: {k}".replace("  ", " "))
    for cls in sorted(per):
        print(f"  {cls}: {', '.join(per[cls])}")
    if b.wrong_examples:
        print("\nFirst answers outside the contract:")
        for e in b.wrong_examples:
            print("  ", e)
    if miss_file or miss_store:
        print("\nMissing audit records (first 10):")
        for r in (miss_file + miss_store)[:10]:
            print("  ", r, seen[r])
    bad_5xx = {k: v for k, v in b.fivexx.items() if k[2] == "none" or k[0] not in (502, 503, 504)}
    if miss_file:
        failed.append("refusals missing from the audit files")
    if miss_store:
        failed.append("refusals missing from the audit table")
    if bad_rev:
        failed.append("revocations not enforced")
    if bad_5xx:
        failed.append("5xx outside faults")
    if b.wrong:
        failed.append("answers outside the contract")
    if not flat_ok:
        failed.append("RSS or fds grew")
    print("\nresult:", "PASS" if not failed else "FAIL: " + "; ".join(failed))
    sys.stdout.flush()
    if failed:
        sys.exit(1)


def cleanup():
    for p in CHILDREN:
        if p.poll() is None:
            p.kill()
            p.wait()
    pg = os.path.join(TMP, "pg", "data", "postmaster.pid")
    if os.path.exists(pg):
        with open(pg) as f:
            pid = int(f.readline())
        try:
            os.kill(pid, signal.SIGQUIT)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            pass
    if os.environ.get("KEEP") == "1":
        print(f"kept {TMP}", file=sys.stderr)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        main()
    finally:
        cleanup()
