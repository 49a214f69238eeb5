#!/usr/bin/env bash
# Issue 21: a misbehaving neighbour behind the same address cannot slow down or lock out a
# legitimate client's valid token and API key (row 4 covers passwords by address; tokens and
# keys only meet the address's budget of failed verifications when the gateway does not know
# them).
#
# usage: bench/neighbours.sh        (RUNS=3 by default; GATEHOUSE=path measures another build)
#
# What it does (results in docs/benchmarks.md):
#   - builds `cargo build --release -p gatehouse` if target/release/gatehouse is missing;
#   - upstream: nginx `return 200 "ok"`, pinned to CPU 1;
#   - Gatehouse with a Bearer route (our own EdDSA tokens and an HS256 `[[issuers]]` entry)
#     and an API-key route, default `[throttle]` (so the tarpit holds the flood's 429s for 1 s),
#     SQLite store, pinned to CPU 0;
#   - the legitimate client: wrk (4 connections, 5 s, `--latency`) with a valid HS256 token,
#     then with a valid API key, all from 127.0.0.1 — alone ("quiet"), and while a second wrk
#     (32 connections, `nice -n 19` on CPU 1) from the SAME address sends, alternately, HS256
#     tokens with a fresh random signature (each one costs a verification until the budget is
#     spent) and the valid key with its last character changed (a store lookup and a hash);
#   - runs the four scenarios RUNS times, interleaved, and prints per scenario the median p99
#     and p50 latency, requests/s, and the legitimate client's non-2xx answers (must be 0).
# Everything listens on 127.0.0.1; every process started here is killed on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
RUNS=${RUNS:-3}
GATEHOUSE=${GATEHOUSE:-"$ROOT/target/release/gatehouse"}

for tool in nginx wrk curl taskset ss openssl python3; do
  command -v "$tool" >/dev/null || { echo "neighbours.sh: \`$tool\` is required" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "neighbours.sh: needs 2 CPUs" >&2; exit 1; }
if [ ! -x "$GATEHOUSE" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi

TMP=$(mktemp -d /tmp/gatehouse-neighbours.XXXXXX)
PIDS=()
. "$BENCH/lib.sh"
trap bench_cleanup EXIT

UP=$(free_port)
start_nginx upstream 1 "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } }"
wait_http "http://127.0.0.1:$UP/"

GP=$(free_port)
HS_SECRET="bench-hs256-secret-$RANDOM$RANDOM-0123456789abcdef"
cat >"$TMP/gatehouse.toml" <<EOF
[server]
listen = "127.0.0.1:$GP"
realm = "bench"

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
name = "bearer"
path = "/bearer/**"
auth = ["bearer"]

[[route]]
name = "key"
path = "/key/**"
auth = ["api_key"]
EOF
printf '%s\n' "bench-password-$RANDOM$RANDOM" | "$GATEHOUSE" user add bench --role bench \
  --password-stdin --config "$TMP/gatehouse.toml" >/dev/null
KEY=$("$GATEHOUSE" key create --user bench --scope bench:read --config "$TMP/gatehouse.toml" | tail -n 1)
# The key with its last character changed: a real prefix, a wrong secret.
case "$KEY" in *A) WRONG_KEY="${KEY%?}B" ;; *) WRONG_KEY="${KEY%?}A" ;; esac
now=$(date +%s)
TOKEN=$(hs256_jwt '{"alg":"HS256","typ":"JWT"}' \
  "$(printf '{"iss":"https://hs.bench.invalid","sub":"bench","aud":"api","iat":%d,"exp":%d}' \
    "$now" "$((now + 3600))")" "$HS_SECRET")
# The flood's tokens: the same header and claims, a random signature each.
UNSIGNED=${TOKEN%.*}

GATEHOUSE_LOG=error taskset -c 0 "$GATEHOUSE" serve --config "$TMP/gatehouse.toml" \
  >"$TMP/gatehouse.log" 2>&1 &
PIDS+=("$!")
wait_http "http://127.0.0.1:$GP/bearer/x"
for check in "bearer/x Authorization: Bearer $TOKEN" "key/x X-API-Key: $KEY"; do
  path=${check%% *}
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "${check#* }" "http://127.0.0.1:$GP/$path")
  [ "$code" = 200 ] || { echo "neighbours.sh: /$path answered $code, not 200" >&2; exit 1; }
done

cat >"$TMP/flood.lua" <<EOF
local n = 0
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
request = function()
  n = n + 1
  if n % 2 == 0 then
    return wrk.format("GET", "/key/x", { ["X-API-Key"] = "$WRONG_KEY" })
  end
  local sig = {}
  for i = 1, 43 do
    local k = math.random(1, #alphabet)
    sig[i] = alphabet:sub(k, k)
  end
  return wrk.format("GET", "/bearer/x",
    { ["Authorization"] = "Bearer $UNSIGNED." .. table.concat(sig) })
end
EOF

# One run: LABEL PATH HEADER FLOOD(0|1) → "label p50_us p99_us rps non2xx"
run() {
  local label=$1 path=$2 header=$3 flood=$4 fpid=""
  if [ "$flood" = 1 ]; then
    nice -n 19 taskset -c 1 wrk -t1 -c32 -d7s -s "$TMP/flood.lua" "http://127.0.0.1:$GP/" \
      >"$TMP/flood.out" 2>&1 &
    fpid=$!
    sleep 1
  fi
  taskset -c 1 wrk -t1 -c4 -d5s --latency -H "$header" "http://127.0.0.1:$GP/$path" >"$TMP/legit.out"
  [ -n "$fpid" ] && wait "$fpid"
  python3 - "$label" "$TMP/legit.out" <<'PY'
import re, sys
label, text = sys.argv[1], open(sys.argv[2]).read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s)", v)
    return float(m[1]) * {"us": 1, "ms": 1e3, "s": 1e6}[m[2]]
lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", text, re.M))
rps = re.search(r"Requests/sec:\s+([\d.]+)", text)[1]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(label, round(us(lat["50"])), round(us(lat["99"])), rps, bad[1] if bad else 0)
PY
}

echo "# legitimate client: 4 connections from 127.0.0.1; flood: 32 connections from 127.0.0.1"
echo "# $RUNS interleaved runs; columns: p50 µs, p99 µs, requests/s, non-2xx (median; non-2xx summed)"
for i in $(seq "$RUNS"); do
  run token-quiet bearer/x "Authorization: Bearer $TOKEN" 0
  run token-flood bearer/x "Authorization: Bearer $TOKEN" 1
  run key-quiet key/x "X-API-Key: $KEY" 0
  run key-flood key/x "X-API-Key: $KEY" 1
done >"$TMP/results"
python3 - "$TMP/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, *vals = line.split()
    rows.setdefault(label, []).append([float(v) for v in vals])
print(f"{'scenario':<12} {'p50_us':>8} {'p99_us':>8} {'req/s':>9} {'non2xx':>7}")
for label, runs in rows.items():
    med = [statistics.median(c) for c in zip(*runs)]
    print(f"{label:<12} {med[0]:>8.0f} {med[1]:>8.0f} {med[2]:>9.0f} {sum(r[3] for r in runs):>7.0f}")
PY
echo "# the flood's last run:"; grep -E "Requests/sec|Non-2xx" "$TMP/flood.out" || true
