#!/usr/bin/env bash
# Syscalls and context switches per request, for Gatehouse's proxied public route, a cached
# Bearer token, a 401 and the hyper floor (examples/hyper_floor.rs) — counts, not times, so
# they hold on a busy machine.
#
# usage: bench/syscalls.sh                 (target/release/gatehouse and .../examples/hyper_floor)
#        GATEHOUSE=/path/to/gatehouse bench/syscalls.sh   (another build, for an A/B)
#        ONLY=regex bench/syscalls.sh      (a subset of the scenarios, by label)
#
# Each scenario runs twice under `wrk -t1 -c8 -d5s` (CPU 1; the server on CPU 0, the nginx
# upstream on CPU 1): once under `perf stat -e context-switches,cpu-migrations` (the
# server's threads, its own switches: a switch is a thread going to sleep or being preempted,
# i.e. a wakeup to come), once under `strace -c -f` (every syscall of every thread, slowed
# down by the tracing — batching under load makes `epoll_wait` per request lower than in a
# free run). Both are divided by the requests wrk completed in that run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH="$ROOT/bench"
GATEHOUSE=${GATEHOUSE:-"$ROOT/target/release/gatehouse"}
FLOOR=${FLOOR:-"$ROOT/target/release/examples/hyper_floor"}
for tool in strace perf nginx wrk curl taskset ss; do
  command -v "$tool" >/dev/null || { echo "syscalls.sh: \`$tool\` is required" >&2; exit 1; }
done
[ -x "$GATEHOUSE" ] || { echo "syscalls.sh: no $GATEHOUSE (cargo build --release -p gatehouse)" >&2; exit 1; }
[ -x "$FLOOR" ] || echo "syscalls.sh: no $FLOOR (cargo build --release -p gatehouse-server --example hyper_floor): the floor is left out" >&2

TMP=$(mktemp -d /tmp/gatehouse-syscalls.XXXXXX)
PIDS=()
. "$BENCH/lib.sh"
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

UP=$(free_port)
start_nginx upstream 1 "  server { listen 127.0.0.1:$UP; location / { return 200 \"ok\"; } }"
wait_http "http://127.0.0.1:$UP/"

HF=$(free_port)
FLOOR_PID=
if [ -x "$FLOOR" ]; then
  taskset -c 0 "$FLOOR" "127.0.0.1:$HF" "http://127.0.0.1:$UP" >"$TMP/floor.log" 2>&1 &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  wait_http "http://127.0.0.1:$HF/bare"
fi

GP=$(free_port)
TOKEN=$(bench_gatehouse_setup "$GATEHOUSE" "$GP" "$UP")
GATEHOUSE_LOG=warn taskset -c 0 "$GATEHOUSE" serve --config "$TMP/gatehouse.toml" >"$TMP/gatehouse.log" 2>&1 &
GH=$!
PIDS+=("$GH")
wait_http "http://127.0.0.1:$GP/public/x"
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GP/bearer/x"

# label | pid | url | header
SCENARIOS=(
  "hyper floor (proxied)|$FLOOR_PID|http://127.0.0.1:$HF/x|"
  "proxied public|$GH|http://127.0.0.1:$GP/public/x|"
  "proxied Bearer EdDSA (cached)|$GH|http://127.0.0.1:$GP/bearer/x|Authorization: Bearer $TOKEN"
  "401 missing credentials|$GH|http://127.0.0.1:$GP/bearer/x|"
)

load() { # URL HEADER → requests completed
  local args=()
  [ -n "$2" ] && args=(-H "$2")
  taskset -c 1 wrk -t1 -c8 -d5s --timeout 30s "${args[@]}" "$1" 2>&1 | awk '/requests in/{print $1}'
}

for s in "${SCENARIOS[@]}"; do
  IFS='|' read -r label pid url hdr <<<"$s"
  [ -n "${ONLY:-}" ] && ! [[ $label =~ $ONLY ]] && continue
  [ -z "$pid" ] && continue
  load "$url" "$hdr" >/dev/null # warm: connections, pools, caches

  perf stat -e context-switches,cpu-migrations -p "$pid" -x, -o "$TMP/perf.txt" &
  PERF=$!
  sleep 0.2
  req=$(load "$url" "$hdr")
  kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
  cs=$(awk -F, '/context-switches/{print $1}' "$TMP/perf.txt")

  strace -c -f -p "$pid" -o "$TMP/strace.txt" 2>/dev/null &
  ST=$!
  sleep 0.5
  sreq=$(load "$url" "$hdr")
  kill -INT "$ST"; wait "$ST" 2>/dev/null || true
  printf '%-32s context-switches/req=%.3f (req=%s)\n' "$label" "$(echo "$cs / $req" | bc -l)" "$req"
  # strace -c's table: calls in column 4 (column 5 is errors when present), name last.
  awk -v r="$sreq" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { n[$NF] = $4; tot += $4 }
    END {
      printf "  syscalls/req=%.2f (req=%s):", tot / r, r
      for (k in n) if (n[k] / r >= 0.005) printf " %s=%.2f", k, n[k] / r
      printf "\n"
    }' "$TMP/strace.txt"
done
