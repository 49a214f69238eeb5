#!/usr/bin/env bash
# Side-by-side load test: Gatehouse (release) against nginx, both proxying to the same upstream.
#
# usage: bench/proxy.sh            (RUNS=3 by default; RUNS=5 bench/proxy.sh for more)
#
# What it does (see docs/benchmarks.md for the method and the results):
#   - builds `cargo build --release -p gatehouse` if target/release/gatehouse is missing
#     (REBUILD=1 forces the build);
#   - upstream: nginx `return 200 "ok"` (a static 2-byte body), pinned to CPU 1;
#   - reference: a second nginx with `return 200`, `proxy_pass` (upstream keep-alive) and a
#     `return 401` carrying a WWW-Authenticate challenge and a problem+json body, pinned to CPU 0;
#   - Gatehouse with a public, a Bearer and a Basic route proxying to the upstream, SQLite store
#     in a temporary directory, one user (`gatehouse user add`) and one EdDSA access token
#     (`gatehouse token issue`), pinned to CPU 0;
#   - checks each scenario's status code once with curl, then runs every scenario RUNS times,
#     interleaved (A B C … A B C …), with bench/cpu-per-request.sh (wrk on CPU 1, 5 s, 32
#     connections), and prints the median and min–max of each figure;
#   - with PERF_DIR=dir, afterwards runs each scenario once more under `perf record -p` (a flat
#     profile of the server, dir/<scenario>.data); these runs are not in the table, since
#     sampling adds to the server's own CPU time.
# Only the server's own CPU time counts in cpu_us/req (from /proc/PID/stat); the upstream's does
# not. Everything listens on 127.0.0.1; every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
RUNS=${RUNS:-3}
GATEHOUSE="$ROOT/target/release/gatehouse"

for tool in nginx wrk curl taskset ss; do
  command -v "$tool" >/dev/null || { echo "proxy.sh: \`$tool\` is required" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "proxy.sh: needs 2 CPUs (server on CPU 0, wrk on CPU 1)" >&2; exit 1; }

if [ ! -x "$GATEHOUSE" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi

TMP=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on (checked, not reserved: good enough on a loopback-only bench).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
  echo "proxy.sh: no free port found" >&2; exit 1
}

wait_http() { # URL: up to 10 s for any HTTP answer
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "proxy.sh: $1 did not come up" >&2; exit 1
}

# nginx in the foreground of a background job: one process, no daemon, its own prefix.
start_nginx() { # NAME CPU CONF_BODY  → sets NGINX_PID
  local name=$1 cpu=$2 body=$3 dir="$TMP/$1"
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  keepalive_requests 1000000;
$body
}
EOF
  taskset -c "$cpu" nginx -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

UP=$(free_port)
start_nginx upstream 1 "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } }"
wait_http "http://127.0.0.1:$UP/"

NX=$(free_port)
# The 401 body mirrors the size and shape of Gatehouse's problem+json answer.
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
      default_type application/problem+json;
      if (\$http_authorization = \"\") {
        add_header WWW-Authenticate 'Bearer realm=\"bench\"' always;
        add_header Cache-Control no-store always;
        return 401 '{\"type\":\"urn:gatehouse:problem:missing_credentials\",\"title\":\"Authentication required\",\"status\":401,\"detail\":\"This resource requires authentication.\",\"error\":\"missing_credentials\",\"message\":\"This resource requires authentication.\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"request_id\":\"01J9Z8Q4W5X6Y7Z8A9B0C1D2E3\",\"accepted_schemes\":[\"bearer\"]}';
      }
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
    }
  }"
NGINX=$NGINX_PID
wait_http "http://127.0.0.1:$NX/bare"

GP=$(free_port)
HS_SECRET="bench-hs256-secret-$RANDOM$RANDOM-0123456789abcdef"
cat >"$TMP/gatehouse.toml" <<EOF
[server]
listen = "127.0.0.1:$GP"
realm = "bench"
# Lets the forward-auth endpoint answer wrk (a loopback "proxy").
trusted_proxies = ["127.0.0.1"]

[upstream]
url = "http://127.0.0.1:$UP"

[store]
url = "sqlite://$TMP/gatehouse.db"

[[issuers]]
name = "bench-hs"
issuer = "https://hs.bench.invalid"
audience = "api"
secret = "$HS_SECRET"
algorithms = ["HS256"]

[[route]]
name = "public"
path = "/public/**"
access = "public"

[[route]]
name = "bearer"
path = "/bearer/**"
auth = ["bearer"]
roles = ["bench"]
scopes = ["bench:read"]

[[route]]
name = "basic"
path = "/basic/**"
auth = ["basic"]
roles = ["bench"]
EOF
PASSWORD="bench-password-$RANDOM$RANDOM"
printf '%s\n' "$PASSWORD" | "$GATEHOUSE" user add bench --role bench --password-stdin \
  --config "$TMP/gatehouse.toml" >/dev/null
TOKEN=$("$GATEHOUSE" token issue bench --scope bench:read --ttl 1h --config "$TMP/gatehouse.toml" | tail -n 1)
BASIC=$(printf '%s' "bench:$PASSWORD" | base64 -w0)
# An external HS256 token (RFC 7519), signed here with openssl: the shape of a typical IdP token.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
jwt_h=$(printf '%s' '{"alg":"HS256","typ":"JWT","kid":"k1"}' | b64url)
jwt_p=$(printf '{"iss":"https://hs.bench.invalid","sub":"bench","aud":"api","iat":%d,"exp":%d,"roles":["bench"],"scope":"openid bench:read","tenant":"acme","jti":"b1"}' \
  "$now" "$((now + 3600))" | b64url)
jwt_s=$(printf '%s' "$jwt_h.$jwt_p" | openssl dgst -sha256 -hmac "$HS_SECRET" -binary | b64url)
HS_TOKEN="$jwt_h.$jwt_p.$jwt_s"
GATEHOUSE_LOG=warn taskset -c 0 "$GATEHOUSE" serve --config "$TMP/gatehouse.toml" \
  >"$TMP/gatehouse.log" 2>&1 &
GH=$!
PIDS+=("$GH")
wait_http "http://127.0.0.1:$GP/public/x"

# label | pid | expected status | url | request headers, separated by ^ (or empty)
FA="http://127.0.0.1:$GP/_gatehouse/forward-auth"
SCENARIOS=(
  "nginx return 200 (baseline)|$NGINX|200|http://127.0.0.1:$NX/bare|"
  "nginx proxy_pass|$NGINX|200|http://127.0.0.1:$NX/proxy/x|"
  "gatehouse proxied public|$GH|200|http://127.0.0.1:$GP/public/x|"
  "gatehouse proxied Bearer EdDSA|$GH|200|http://127.0.0.1:$GP/bearer/x|Authorization: Bearer $TOKEN"
  "nginx return 401 + challenge|$NGINX|401|http://127.0.0.1:$NX/auth/x|"
  "gatehouse 401 missing creds|$GH|401|http://127.0.0.1:$GP/bearer/x|"
  "gatehouse fwd-auth public (200)|$GH|200|$FA|X-Original-URI: /public/x"
  "gatehouse fwd-auth Bearer EdDSA|$GH|200|$FA|X-Original-URI: /bearer/x^Authorization: Bearer $TOKEN"
  "gatehouse fwd-auth Bearer HS256|$GH|200|$FA|X-Original-URI: /bearer/x^Authorization: Bearer $HS_TOKEN"
  "gatehouse proxied Basic argon2|$GH|200|http://127.0.0.1:$GP/basic/x|Authorization: Basic $BASIC"
)
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

for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label _ want url hdr <<<"$s"
  header_args "$hdr"
  got=$(curl -s -o /dev/null -w '%{http_code}' "${HARGS[@]}" "$url")
  [ "$got" = "$want" ] || { echo "proxy.sh: $label: expected $want, got $got" >&2; exit 1; }
done

echo "# $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# servers on CPU 0, wrk and the upstream on CPU 1; $RUNS interleaved runs of 5 s each"
RAW="$TMP/raw.txt"
for run in $(seq "$RUNS"); do
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r label pid _ url hdr <<<"$s"
    header_args "$hdr"
    line=$("$BENCH/cpu-per-request.sh" "$pid" "$label" "$url" "${HARGS[@]}")
    echo "run $run: $line"
    echo "$label|$line" >>"$RAW"
  done
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Median and min–max per scenario, in scenario order. wrk prints latencies with units.
echo
printf '| %-32s | %-25s | %-24s | %-10s | %-10s |\n' scenario "CPU µs/req med (min-max)" "req/s med (min-max)" "p50 med" "p99 med"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..26})" \
  "$(printf -- '-%.0s' {1..26})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})"
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label _ <<<"$s"
  grep -F "$label|" "$RAW" | cut -d'|' -f2- | awk -v l="$label" '
    function us(v) { # wrk latency "812.00us" / "1.20ms" / "2.01s" -> µs
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v
    }
    function med(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(x) { return x >= 10000 ? sprintf("%.0f", x) : x >= 100 ? sprintf("%.1f", x) : sprintf("%.2f", x) }
    function lat(x) { return x >= 1000 ? sprintf("%.2fms", x / 1000) : sprintf("%.0fus", x) }
    {
      gsub(/= +/, "=")
      for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "rps") r[++n] = kv[2] + 0
        if (kv[1] == "cpu_us/req") c[n] = kv[2] + 0
        if (kv[1] == "p50") p5[n] = us(kv[2])
        if (kv[1] == "p99") p9[n] = us(kv[2])
      }
    }
    END {
      cmin = cmax = c[1]; rmin = rmax = r[1]
      for (i = 1; i <= n; i++) {
        if (c[i] < cmin) cmin = c[i]; if (c[i] > cmax) cmax = c[i]
        if (r[i] < rmin) rmin = r[i]; if (r[i] > rmax) rmax = r[i]
      }
      printf "| %-32s | %-24s | %-24s | %-10s | %-10s |\n", l,
        fmt(med(c, n)) " (" fmt(cmin) "-" fmt(cmax) ")",
        sprintf("%.0f (%.0f-%.0f)", med(r, n), rmin, rmax), lat(med(p5, n)), lat(med(p9, n))
    }'
done

if [ -n "${PERF_DIR:-}" ]; then
  command -v perf >/dev/null || { echo "proxy.sh: PERF_DIR needs \`perf\`" >&2; exit 1; }
  mkdir -p "$PERF_DIR"
  echo
  for s in "${SCENARIOS[@]}"; do
    IFS='|' read -r label pid _ url hdr <<<"$s"
    name=$(printf '%s' "$label" | tr -c 'A-Za-z0-9' '-')
    perf record -q -F 999 -p "$pid" -o "$PERF_DIR/$name.data" -- sleep 6 >/dev/null 2>&1 &
    rec=$!
    header_args "$hdr"
    line=$("$BENCH/cpu-per-request.sh" "$pid" "$label" "$url" "${HARGS[@]}")
    wait "$rec" || true
    echo "under perf (not comparable): $line -> $PERF_DIR/$name.data"
  done
fi
