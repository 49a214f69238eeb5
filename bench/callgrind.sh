#!/usr/bin/env bash
# Instructions per request of a Gatehouse build, counted by callgrind (exact from run to run
# within about 1 %, unlike CPU time on a shared machine).
#
# usage: bench/callgrind.sh                 (target/release/gatehouse)
#        GATEHOUSE=/path/to/gatehouse bench/callgrind.sh   (another build, for an A/B)
#        ONLY=regex bench/callgrind.sh      (a subset of the scenarios, by label)
#        KEEP=dir bench/callgrind.sh        (keep the callgrind dumps, one per scenario, for
#                                            callgrind_annotate)
#
# The server runs under `valgrind --tool=callgrind --instr-atstart=no` (pinned to CPU 0) with
# the config of bench/proxy.sh's public and Bearer routes, proxying to an nginx `return 200`
# upstream on CPU 1. For each scenario the counters are zeroed, instrumentation is switched on
# for one `wrk -t1 -c8 -d10s` run (CPU 1), then off, and the dump's total (user space of all
# threads, the audit writer and the SQLite worker included) is divided by the requests wrk
# completed. valgrind hides the SHA extensions from the sha2 crate's CPU detection, so a Bearer
# request counts ≈ 27 000 instructions of software SHA-256 the real run does not execute.
# Run it under the bench lock: flock /tmp/gatehouse-bench.lock bench/callgrind.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
GATEHOUSE=${GATEHOUSE:-"$ROOT/target/release/gatehouse"}
for tool in valgrind callgrind_control nginx wrk curl taskset ss; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: \`$tool\` is required" >&2; exit 1; }
done
[ -x "$GATEHOUSE" ] || { echo "callgrind.sh: no $GATEHOUSE (cargo build --release -p gatehouse)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/gatehouse-callgrind.XXXXXX)
PIDS=()
. "$BENCH/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

UP=$(free_port)
start_nginx upstream 1 "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } }"
wait_http "http://127.0.0.1:$UP/"

GP=$(free_port)
TOKEN=$(bench_gatehouse_setup "$GATEHOUSE" "$GP" "$UP")

GATEHOUSE_LOG=warn taskset -c 0 valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$TMP/cg.out" "$GATEHOUSE" serve --config "$TMP/gatehouse.toml" \
  >"$TMP/gatehouse.log" 2>&1 &
VG=$!
PIDS+=("$VG")
for _ in $(seq 600); do
  curl -s -o /dev/null "http://127.0.0.1:$GP/public/x" && break
  sleep 0.1
done
# Warm: the token's cache entry, the upstream connections.
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GP/bearer/x"

FA="http://127.0.0.1:$GP/_gatehouse/forward-auth"
# label | url | headers separated by ^
SCENARIOS=(
  "proxied public|http://127.0.0.1:$GP/public/x|"
  "proxied Bearer EdDSA (cached)|http://127.0.0.1:$GP/bearer/x|Authorization: Bearer $TOKEN"
  "401 missing credentials|http://127.0.0.1:$GP/bearer/x|"
  "fwd-auth public (200)|$FA|X-Original-Method: GET^X-Original-URI: /public/x"
  "fwd-auth Bearer EdDSA (cached)|$FA|X-Original-Method: GET^X-Original-URI: /bearer/x^Authorization: Bearer $TOKEN"
)
n=0
for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label url hdr <<<"$s"
  [ -n "${ONLY:-}" ] && ! [[ $label =~ $ONLY ]] && continue
  HARGS=()
  rest=$hdr
  while [ -n "$rest" ]; do
    h=${rest%%^*}
    HARGS+=(-H "$h")
    [ "$h" = "$rest" ] && rest="" || rest=${rest#*^}
  done
  n=$((n + 1))
  callgrind_control -z "$VG" >/dev/null 2>&1
  callgrind_control -i on "$VG" >/dev/null 2>&1
  out=$(taskset -c 1 wrk -t1 -c8 -d10s --timeout 30s "${HARGS[@]}" "$url" 2>&1)
  callgrind_control -i off "$VG" >/dev/null 2>&1
  callgrind_control -d "s$n" "$VG" >/dev/null 2>&1
  dump=$(ls -t "$TMP"/cg.out.* | head -n 1)
  ir=$(awk '/^totals:/{print $2; exit}' "$dump")
  req=$(echo "$out" | awk '/requests in/{print $1}')
  non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
  awk -v l="$label" -v ir="$ir" -v r="$req" -v x="${non2xx:-0}" \
    'BEGIN{printf "%-34s instructions/req=%8.0f  req=%s non2xx=%s\n", l, ir / r, r, x}'
  if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP"
    cp "$dump" "$KEEP/$(echo "$label" | tr -c 'A-Za-z0-9\n' '_').callgrind"
  fi
done
