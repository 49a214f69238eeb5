#!/usr/bin/env bash
# Side-by-side load test: Gatehouse (release) against nginx, both proxying to the same upstream.
#
# usage: bench/proxy.sh            (RUNS=3 by default; RUNS=5 bench/proxy.sh for more;
#                                    ONLY=regex runs the scenarios whose label matches;
#                                    GATEHOUSE=path measures another gatehouse binary;
#                                    GATEHOUSE_B=path adds a second build's gatehouse
#                                    scenarios, labelled "B:", interleaved with the first's:
#                                    an A/B of two builds in one run)
#
# What it does (see docs/benchmarks.md for the method and the results):
#   - builds `cargo build --release -p gatehouse` if target/release/gatehouse is missing
#     (REBUILD=1 forces the build); builds bench/bindsrc.c (an LD_PRELOAD shim that makes wrk
#     connect from another loopback address) with gcc;
#   - upstream: nginx `return 200 "ok"` (a static 2-byte body), pinned to CPU 1;
#   - floor: crates/gatehouse-server/examples/hyper_floor (hyper + tokio, no routing or policy,
#     one upstream connection per client connection), pinned to CPU 0;
#   - reference: a second nginx with `return 200`, `proxy_pass` (upstream keep-alive), a
#     `return 401` carrying a WWW-Authenticate challenge and a problem+json body (once with
#     `access_log off`, once with nginx's default access log on: Gatehouse audits every refusal), and
#     `auth_basic` over a bcrypt (cost 10, `htpasswd -B -C 10`) file in front of `proxy_pass`,
#     pinned to CPU 0;
#   - Gatehouse with a public, a Bearer and a Basic route proxying to the upstream, SQLite store
#     in a temporary directory, user `bench` imported with `gatehouse import-htpasswd` from the
#     SAME bcrypt file nginx reads, user `argon` from `gatehouse user add` (argon2id), one EdDSA
#     access token (`gatehouse token issue`) and one HS256 token from an `[[issuers]]` entry,
#     default `[throttle]`, pinned to CPU 0;
#   - checks each scenario's status code once with curl, then runs every scenario RUNS times,
#     interleaved (A B C … A B C …), with bench/cpu-per-request.sh (wrk on CPU 1, 5 s, 32
#     connections unless the scenario says otherwise), and prints the median and min–max;
#   - flood scenarios: a legitimate Basic user (wrk, 4 connections, from 127.0.0.2, cache warmed
#     by one request) measured alone and while a second wrk (32 connections, `nice -n 19` on the
#     load generator's CPU) floods wrong Basic passwords (half for the
#     real account, half for unknown users) from 127.0.0.3 — or, in the "distributed" variant,
#     from 127.0.0.4 with a different X-Forwarded-For address on every request (127.0.0.4 is a
#     trusted proxy in Gatehouse's config), i.e. a flood from many clients;
#   - with PERF_DIR=dir, afterwards runs each non-flood scenario once more under `perf record -p`
#     (dir/<scenario>.data); these runs are not in the table.
# Only the server's own CPU time counts in cpu_us/req (from /proc/PID/stat); the upstream's does
# not. Everything listens on 127.0.0.1; every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
RUNS=${RUNS:-3}
GATEHOUSE=${GATEHOUSE:-"$ROOT/target/release/gatehouse"} # GATEHOUSE=path: another build (A/B)
GATEHOUSE_B=${GATEHOUSE_B:-} # GATEHOUSE_B=path: a second build beside the first, in the same run
[ -z "$GATEHOUSE_B" ] || [ -x "$GATEHOUSE_B" ] || { echo "proxy.sh: GATEHOUSE_B=$GATEHOUSE_B is not executable" >&2; exit 1; }

for tool in nginx wrk curl taskset ss htpasswd gcc python3; do
  command -v "$tool" >/dev/null || { echo "proxy.sh: \`$tool\` is required" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "proxy.sh: needs 2 CPUs (server on CPU 0, wrk on CPU 1)" >&2; exit 1; }

FLOOR="$ROOT/target/release/examples/hyper_floor"
if [ ! -x "$GATEHOUSE" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi
if [ ! -x "$FLOOR" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse-server --example hyper_floor)
fi

TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()
. "$BENCH/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

export BINDSRC_SO="$TMP/bindsrc.so"
gcc -O2 -shared -fPIC -o "$BINDSRC_SO" "$BENCH/bindsrc.c" -ldl

UP=$(free_port)
start_nginx upstream 1 "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } }"
wait_http "http://127.0.0.1:$UP/"

PASSWORD="bench-password-$RANDOM$RANDOM"
ARGON_PASSWORD="argon-password-$RANDOM$RANDOM"
# One bcrypt (cost 10) htpasswd file, read by nginx and imported into Gatehouse.
htpasswd -c -b -B -C 10 "$TMP/htpasswd" bench "$PASSWORD" 2>/dev/null
# `cold` is used by one scenario per round only, so its cache entry (30 s) has always expired.
COLD_PASSWORD="cold-password-$RANDOM$RANDOM"
htpasswd -b -B -C 10 "$TMP/htpasswd" cold "$COLD_PASSWORD" 2>/dev/null

NX=$(free_port)
# The location body of nginx's `return 401` (used with and without an access log below); the
# body mirrors the size and shape of Gatehouse's problem+json answer.
NGINX_401="
      default_type application/problem+json;
      if (\$http_authorization = \"\") {
        add_header WWW-Authenticate 'Bearer realm=\"bench\"' always;
        add_header Cache-Control no-store always;
        return 401 '{\"type\":\"urn:gatehouse:problem:missing_credentials\",\"title\":\"Authentication required\",\"status\":401,\"detail\":\"This resource requires authentication.\",\"error\":\"missing_credentials\",\"message\":\"This resource requires authentication.\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"request_id\":\"01J9Z8Q4W5X6Y7Z8A9B0C1D2E3\",\"accepted_schemes\":[\"bearer\"]}';
      }
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
"
start_nginx reference 0 "
  upstream up { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NX;
    location = /bare { return 200 \"ok\"; }
    location /proxy/ {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
    location /auth/ {
      access_log off;$NGINX_401    }
    location /auth-logged/ {
      # nginx's default: one access-log line per request (Gatehouse audits every refusal).
      access_log $TMP/reference/logs/access.log;$NGINX_401    }
    location /basic/ {
      auth_basic \"bench\";
      auth_basic_user_file $TMP/htpasswd;
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
NGINX=$NGINX_PID
wait_http "http://127.0.0.1:$NX/bare"

# The floor of a hyper/tokio proxy (crates/gatehouse-server/examples/hyper_floor.rs): the same
# crates as Gatehouse with nothing else — what Gatehouse's proxy leg could cost at best.
HF=$(free_port)
taskset -c 0 "$FLOOR" "127.0.0.1:$HF" "http://127.0.0.1:$UP" >"$TMP/floor.log" 2>&1 &
HYPER=$!
PIDS+=("$HYPER")
wait_http "http://127.0.0.1:$HF/bare"

HS_SECRET="bench-hs256-secret-$RANDOM$RANDOM-0123456789abcdef"
# Starts one gatehouse build BIN as NAME (its own config, store and token), pinned to CPU 0;
# sets GP (port), GH (pid) and TOKEN (an EdDSA access token of its store).
start_gatehouse() { # BIN NAME
  local bin=$1 name=$2
  GP=$(free_port)
  cat >"$TMP/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$GP"
realm = "bench"
# 127.0.0.1 lets the forward-auth endpoint answer wrk (a loopback "proxy"); 127.0.0.4 is the
# distributed flood's "proxy", whose X-Forwarded-For names a different client each request.
trusted_proxies = ["127.0.0.1", "127.0.0.4"]

[upstream]
url = "http://127.0.0.1:$UP"

[store]
url = "sqlite://$TMP/$name.db"

[[issuers]]
name = "bench-hs"
issuer = "https://hs.bench.invalid"
audience = "api"
secret = "$HS_SECRET"
algorithms = ["HS256"]

$(bench_routes)

[[route]]
name = "basic"
path = "/basic/**"
auth = ["basic"]
roles = ["bench"]
EOF
  "$bin" import-htpasswd --config "$TMP/$name.toml" --role bench "$TMP/htpasswd" >/dev/null
  printf '%s\n' "$ARGON_PASSWORD" | "$bin" user add argon --role bench --password-stdin \
    --config "$TMP/$name.toml" >/dev/null
  TOKEN=$("$bin" token issue bench --scope bench:read --ttl 1h --config "$TMP/$name.toml" | tail -n 1)
  GATEHOUSE_LOG=warn taskset -c 0 "$bin" serve --config "$TMP/$name.toml" \
    >"$TMP/$name.log" 2>&1 &
  GH=$!
  PIDS+=("$GH")
  wait_http "http://127.0.0.1:$GP/public/x"
}
BASIC=$(printf '%s' "bench:$PASSWORD" | base64 -w0)
ARGON=$(printf '%s' "argon:$ARGON_PASSWORD" | base64 -w0)
COLD=$(printf '%s' "cold:$COLD_PASSWORD" | base64 -w0)
# An external HS256 token (RFC 7519), signed here with openssl: the shape of a typical IdP token.
now=$(date +%s)
HS_TOKEN=$(hs256_jwt '{"alg":"HS256","typ":"JWT","kid":"k1"}' \
  "$(printf '{"iss":"https://hs.bench.invalid","sub":"bench","aud":"api","iat":%d,"exp":%d,"roles":["bench"],"scope":"openid bench:read","tenant":"acme","jti":"b1"}' \
    "$now" "$((now + 3600))")" "$HS_SECRET")
if [ -n "$GATEHOUSE_B" ]; then
  start_gatehouse "$GATEHOUSE_B" gatehouse-b
  GPB=$GP GHB=$GH TOKENB=$TOKEN
fi
start_gatehouse "$GATEHOUSE" gatehouse

# The floods' requests: wrong Basic passwords, alternately for the real account `bench` and for
# an unknown user; the distributed variant adds an X-Forwarded-For from 198.18.0.0/15 (RFC 2544's
# benchmarking range), a different client for each of 65 536 requests. A response counter
# prints the status mix when wrk is done (one thread: `-t1`).
python3 - "$TMP" <<'PY'
import base64, sys
tmp = sys.argv[1]
auths = []
for i in range(1024):
    user = "bench" if i % 2 == 0 else f"nobody-{i}"
    auths.append("Basic " + base64.b64encode(f"{user}:wrong-{i}".encode()).decode())
def lua(xff):
    out = ["local auths = {" + ",".join(f'"{a}"' for a in auths) + "}"]
    out.append("local i = 0")
    out.append("counts = {}")
    out.append("request = function()")
    out.append("  i = i + 1")
    out.append("  local h = { Authorization = auths[(i % #auths) + 1] }")
    if xff:
        out.append('  h["X-Forwarded-For"] = "198." .. (18 + math.floor(i / 65536) % 2) .. "." .. (math.floor(i / 256) % 256) .. "." .. (i % 256)')
    out.append("  return wrk.format(nil, nil, h)")
    out.append("end")
    out.append("response = function(status) counts[status] = (counts[status] or 0) + 1 end")
    out.append("local threads = {}")
    out.append("setup = function(t) table.insert(threads, t) end")
    out.append("done = function()")
    out.append("  local parts = {}")
    out.append("  for _, t in ipairs(threads) do for k, v in pairs(t:get('counts')) do table.insert(parts, k .. 'x' .. v) end end")
    out.append("  table.sort(parts)")
    out.append("  io.write('statuses: ' .. table.concat(parts, ',') .. '\\n')")
    out.append("end")
    return "\n".join(out) + "\n"
open(f"{tmp}/flood.lua", "w").write(lua(False))
open(f"{tmp}/flood-dist.lua", "w").write(lua(True))
PY

# label | pid | expected status | url | request headers, separated by ^ (or empty) | options:
# c=N (wrk connections), src=ADDR (wrk's source address), flood=single|dist (run the flood
# beside it against the same URL: from 127.0.0.3, or from 127.0.0.4 with X-Forwarded-For),
# warm=1 (one curl request first, so the verified-credential cache holds the credential),
# nocheck=1 (no status check up front, which would warm the cache).
FA="http://127.0.0.1:$GP/_gatehouse/forward-auth"
LEGIT="c=4 src=127.0.0.2 warm=1"
SCENARIOS=(
  "nginx return 200 (baseline)|$NGINX|200|http://127.0.0.1:$NX/bare||"
  "nginx proxy_pass|$NGINX|200|http://127.0.0.1:$NX/proxy/x||"
  "hyper floor return 200|$HYPER|200|http://127.0.0.1:$HF/bare||"
  "hyper floor proxy|$HYPER|200|http://127.0.0.1:$HF/x||"
  "gatehouse proxied public|$GH|200|http://127.0.0.1:$GP/public/x||"
  "gatehouse proxied Bearer EdDSA|$GH|200|http://127.0.0.1:$GP/bearer/x|Authorization: Bearer $TOKEN|"
  "nginx auth_basic bcrypt proxied|$NGINX|200|http://127.0.0.1:$NX/basic/x|Authorization: Basic $BASIC|"
  "gatehouse proxied Basic bcrypt|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $BASIC|warm=1"
  "gatehouse proxied Basic argon2|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $ARGON|warm=1"
  "gatehouse Basic bcrypt, cold cache|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $COLD|nocheck=1"
  "nginx return 401 + challenge|$NGINX|401|http://127.0.0.1:$NX/auth/x||"
  "nginx return 401 + challenge, access_log on|$NGINX|401|http://127.0.0.1:$NX/auth-logged/x||"
  "nginx auth_basic 401 no creds|$NGINX|401|http://127.0.0.1:$NX/basic/x||"
  "gatehouse 401 missing creds|$GH|401|http://127.0.0.1:$GP/bearer/x||"
  "gatehouse fwd-auth public (200)|$GH|200|$FA|X-Original-Method: GET^X-Original-URI: /public/x|"
  "gatehouse fwd-auth Bearer EdDSA|$GH|200|$FA|X-Original-Method: GET^X-Original-URI: /bearer/x^Authorization: Bearer $TOKEN|"
  "gatehouse fwd-auth Bearer HS256|$GH|200|$FA|X-Original-Method: GET^X-Original-URI: /bearer/x^Authorization: Bearer $HS_TOKEN|"
  "gatehouse legit Basic, quiet|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $BASIC|$LEGIT"
  "gatehouse legit Basic, flood|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $BASIC|$LEGIT flood=single"
  "gatehouse legit Basic, dist flood|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $BASIC|$LEGIT flood=dist"
  "nginx legit Basic, quiet|$NGINX|200|http://127.0.0.1:$NX/basic/x|Authorization: Basic $BASIC|$LEGIT"
  "nginx legit Basic, flood|$NGINX|200|http://127.0.0.1:$NX/basic/x|Authorization: Basic $BASIC|$LEGIT flood=single"
)
if [ -n "$GATEHOUSE_B" ]; then # each gatehouse scenario, then the same on the B build
  ab=()
  for s in "${SCENARIOS[@]}"; do
    ab+=("$s")
    if [[ $s == gatehouse* ]]; then
      b="B: $s"
      b=${b//|$GH|/|$GHB|}
      b=${b//127.0.0.1:$GP\//127.0.0.1:$GPB\/}
      b=${b//Bearer $TOKEN|/Bearer $TOKENB|}
      b=${b//Bearer $TOKEN^/Bearer $TOKENB^}
      ab+=("$b")
    fi
  done
  SCENARIOS=("${ab[@]}")
fi
if [ -n "${ONLY:-}" ]; then # ONLY=regex: a subset of the scenarios (by label)
  sel=()
  for s in "${SCENARIOS[@]}"; do [[ ${s%%|*} =~ $ONLY ]] && sel+=("$s"); done
  SCENARIOS=("${sel[@]}")
fi
# Splits a scenario's header field into repeated `-H value` arguments (curl and wrk alike).
header_args() {
  HARGS=()
  local h rest=$1
  while [ -n "$rest" ]; do
    h=${rest%%^*}
    HARGS+=(-H "$h")
    [ "$h" = "$rest" ] && rest="" || rest=${rest#*^}
  done
}
# Reads a scenario's options into CONNS, SRC, FLOOD.
options() {
  CONNS=32 SRC="" FLOOD="" WARM="" NOCHECK=""
  local kv
  for kv in $1; do
    case $kv in
      c=*) CONNS=${kv#c=} ;;
      src=*) SRC=${kv#src=} ;;
      flood=*) FLOOD=${kv#flood=} ;;
      warm=*) WARM=${kv#warm=} ;;
      nocheck=*) NOCHECK=${kv#nocheck=} ;;
    esac
  done
}

for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label _ want url hdr opts <<<"$s"
  header_args "$hdr"
  options "$opts"
  [ -n "$NOCHECK" ] && continue
  pre=()
  [ -n "$SRC" ] && pre=(env LD_PRELOAD="$BINDSRC_SO" BIND_SRC="$SRC")
  got=$("${pre[@]}" curl -s -o /dev/null -w '%{http_code}' "${HARGS[@]}" "$url")
  [ "$got" = "$want" ] || { echo "proxy.sh: $label: expected $want, got $got" >&2; exit 1; }
done

# Waits (up to 15 s) until PID uses no CPU for half a second: after a bcrypt run, nginx still
# hashes the requests it had read before wrk closed the connections, and that CPU time must
# not land in the next scenario's figures.
settle() {
  local t0 t1
  for _ in $(seq 30); do
    t0=$(awk '{print $14+$15}' "/proc/$1/stat"); sleep 0.5; t1=$(awk '{print $14+$15}' "/proc/$1/stat")
    [ $((t1 - t0)) -le 1 ] && return 0
  done
}

# One measurement: prints cpu-per-request.sh's line, plus the flood's figures when there is one.
measure() { # LABEL PID URL OPTS
  local label=$1 pid=$2 url=$3 fl line fsrc lua pre=()
  options "$4"
  if [ -n "$WARM" ]; then
    [ -n "$SRC" ] && pre=(env LD_PRELOAD="$BINDSRC_SO" BIND_SRC="$SRC")
    "${pre[@]}" curl -s -o /dev/null "${HARGS[@]}" "$url"
  fi
  if [ -z "$FLOOD" ]; then
    CONNS=$CONNS SRC_ADDR=$SRC "$BENCH/cpu-per-request.sh" "$pid" "$label" "$url" "${HARGS[@]}"
    return
  fi
  if [ "$FLOOD" = dist ]; then fsrc=127.0.0.4 lua="$TMP/flood-dist.lua"; else fsrc=127.0.0.3 lua="$TMP/flood.lua"; fi
  # 8 s: covers cpu-per-request.sh's 1 s settle and 5 s run, started 1 s in. The flood's wrk
  # shares CPU 1 with the legitimate user's wrk and the upstream: `nice -n 19` keeps it from
  # slowing the legitimate client itself (the server's CPU is what the flood should contend for).
  env LD_PRELOAD="$BINDSRC_SO" BIND_SRC="$fsrc" nice -n 19 taskset -c 1 \
    wrk -t1 -c32 -d8s --timeout 10s -s "$lua" "$url" >"$TMP/flood.out" 2>&1 &
  fl=$!
  sleep 1
  line=$(CONNS=$CONNS SRC_ADDR=$SRC "$BENCH/cpu-per-request.sh" "$pid" "$label" "$url" "${HARGS[@]}")
  wait "$fl" || true
  echo "$line flood_rps=$(awk '/Requests\/sec/{print $2}' "$TMP/flood.out") flood=$(awk '/^statuses:/{print $2}' "$TMP/flood.out")"
}

echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# servers on CPU 0, wrk and the upstream on CPU 1; $RUNS interleaved runs of 5 s each"
[ -z "$GATEHOUSE_B" ] || echo "# gatehouse: $GATEHOUSE ($("$GATEHOUSE" --version 2>/dev/null)); B: $GATEHOUSE_B ($("$GATEHOUSE_B" --version 2>/dev/null))"
RAW="$TMP/raw.txt"
for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r label pid _ url hdr opts <<<"$s"
    header_args "$hdr"
    line=$(measure "$label" "$pid" "$url" "$opts")
    settle "$pid"
    echo "run $run: $line"
    echo "$label|$line" >>"$RAW"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median and min–max per scenario, in scenario order. wrk prints latencies with units.
summary() { # LABEL → one table row
  awk -F'|' -v l="$1" '$1 == l' "$RAW" | cut -d'|' -f2- | awk -v l="$1" '
    function us(v) { # wrk latency "812.00us" / "1.20ms" / "2.01s" -> µs
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v
    }
    function sort(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    }
    function med(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function fmt(x) { return x >= 10000 ? sprintf("%.0f", x) : x >= 100 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
    function lat(x) { return x >= 1e6 ? sprintf("%.2fs", x / 1e6) : x >= 1000 ? sprintf("%.2fms", x / 1000) : sprintf("%.0fus", x) }
    function range(a, n, f,   m) { m = f == "lat" ? lat(med(a, n)) " (" lat(a[1]) "-" lat(a[n]) ")" : \
      f == "rps" ? sprintf("%.0f (%.0f-%.0f)", med(a, n), a[1], a[n]) : fmt(med(a, n)) " (" fmt(a[1]) "-" fmt(a[n]) ")"; return m }
    {
      gsub(/= +/, "=")
      delete f
      for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[2] != "") f[kv[1]] = kv[2] }
      if ("flood_rps" in f) { fr[++nf] = f["flood_rps"] + 0; flood = 1; fs = fs (fs == "" ? "" : " / ") f["flood"] }
      if (f["cpu_us/req"] + 0 < 0) { none++; next } # no request completed in the 5 s
      n++; r[n] = f["rps"] + 0; c[n] = f["cpu_us/req"] + 0; p5[n] = us(f["p50"]); p9[n] = us(f["p99"])
    }
    END {
      if (n == 0) row = sprintf("| %s | - | 0 (no request completed in 5 s, %d runs) | > 5 s | > 5 s |", l, none)
      else row = sprintf("| %s | %s | %s%s | %s | %s |", l, range(c, n), range(r, n, "rps"),
        none ? sprintf(" (and %d runs with none completed)", none) : "", range(p5, n, "lat"), range(p9, n, "lat"))
      if (flood) row = row sprintf(" %s | %s |", range(fr, nf, "rps"), fs)
      print row
    }'
}
echo
echo "| scenario | CPU µs/req med (min-max) | req/s med (min-max) | p50 med (min-max) | p99 med (min-max) |"
echo "|---|---|---|---|---|"
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label _ _ _ _ opts <<<"$s"
  options "$opts"
  [ -z "$SRC" ] && summary "$label"
done
echo
echo "Legitimate user (4 connections from 127.0.0.2); CPU/request counts only its requests but the server's whole CPU time:"
echo "| scenario | CPU µs/legit req | legit req/s | legit p50 | legit p99 | flood req/s | flood answers per run (status x count) |"
echo "|---|---|---|---|---|---|---|"
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label _ _ _ _ opts <<<"$s"
  options "$opts"
  [ -n "$SRC" ] && summary "$label"
done

if [ -n "${PERF_DIR:-}" ]; then
  command -v perf >/dev/null || { echo "proxy.sh: PERF_DIR needs \`perf\`" >&2; exit 1; }
  mkdir -p "$PERF_DIR"
  echo
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r label pid _ url hdr opts <<<"$s"
    options "$opts"
    [ -n "$SRC" ] && continue
    name=$(printf '%s' "$label" | tr -c 'A-Za-z0-9' '-')
    perf record -q -F 999 -p "$pid" -o "$PERF_DIR/$name.data" -- sleep 6 >/dev/null 2>&1 &
    rec=$!
    header_args "$hdr"
    line=$("$BENCH/cpu-per-request.sh" "$pid" "$label" "$url" "${HARGS[@]}")
    wait "$rec" || true
    echo "under perf (not comparable): $line -> $PERF_DIR/$name.data"
  done
fi
