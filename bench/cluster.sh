#!/usr/bin/env bash
# One node vs three nodes (design §5, issue 6): Gatehouse nodes sharing PostgreSQL and Redis,
# all proxying to the same upstream, loaded with wrk.
#
# usage: bench/cluster.sh     (RUNS=3 by default; PG_URL and REDIS_URL pick the servers,
#                              default the machine's: postgres://postgres@127.0.0.1:5432/test
#                              and redis://127.0.0.1:6379)
#
# What it does:
#   - builds `cargo build --release -p gatehouse` if target/release/gatehouse is missing
#     (REBUILD=1 forces it);
#   - upstream: nginx `return 200 "ok"`, pinned to CPU 1 (with wrk);
#   - a PostgreSQL schema of its own (created with psql, dropped on exit) and a Redis key
#     prefix of its own; one user and one EdDSA access token (`gatehouse token issue`);
#   - scenarios: `bearer` (a proxied allow with the token: the hot path, no remote call) and
#     `quota` (the same on a route with a `quota`, which costs one Redis round trip per
#     request in cluster mode);
#   - "1 node": one `gatehouse serve`, pinned to CPU 0, wrk (1 thread, 30 connections, 5 s) on
#     CPU 1; "3 nodes": three `gatehouse serve` on CPU 0 together, three wrk (10 connections
#     each) on CPU 1 at once, requests/s summed. Both give the gateway the same CPU (one core),
#     so the comparison shows what running as a cluster costs per request, not added capacity:
#     on this 2-core machine three nodes cannot have more CPU than one. On real hardware each
#     node has its own cores and throughput adds up (no request needs another node).
#   - cpu_us/req: the gateway processes' own CPU time (user+sys from /proc/PID/stat) divided
#     by the requests completed; medians of RUNS interleaved runs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${RUNS:-3}
GATEHOUSE="$ROOT/target/release/gatehouse"
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}

for tool in nginx wrk curl taskset ss psql; do
  command -v "$tool" >/dev/null || { echo "cluster.sh: \`$tool\` is required" >&2; exit 1; }
done
[ "$(nproc)" -ge 2 ] || { echo "cluster.sh: needs 2 CPUs" >&2; exit 1; }
if [ ! -x "$GATEHOUSE" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi

TMP=$(mktemp -d /tmp/gatehouse-cluster-bench.XXXXXX)
SCHEMA="bench_cluster_$$"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  psql -q "$PG_URL" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

. "$ROOT/bench/lib.sh"

UP=$(free_port)
mkdir -p "$TMP/up/logs"
cat >"$TMP/up/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; pid $TMP/up/nginx.pid;
error_log $TMP/up/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $TMP/up/cb; proxy_temp_path $TMP/up/p; fastcgi_temp_path $TMP/up/f;
  uwsgi_temp_path $TMP/up/u; scgi_temp_path $TMP/up/s;
  server { listen 127.0.0.1:$UP; location / { return 200 "ok"; } } }
EOF
taskset -c 1 nginx -p "$TMP/up" -e "$TMP/up/logs/error.log" -c "$TMP/up/nginx.conf" &
PIDS+=($!)
wait_http "http://127.0.0.1:$UP/"

psql -q "$PG_URL" -c "CREATE SCHEMA $SCHEMA" >/dev/null
sep='?'; case "$PG_URL" in *\?*) sep='&';; esac
STORE="${PG_URL}${sep}options=-c%20search_path%3D${SCHEMA}"
PREFIX="gatehouse-bench-$$"

config() { # PORT ADMIN_PORT
  cat <<EOF
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"
realm = "bench"

[store]
url = "$STORE"

[cluster]
redis_url = "$REDIS_URL"
key_prefix = "$PREFIX"

[upstream]
url = "http://127.0.0.1:$UP"

[defaults]
access = "authenticated"
auth = ["bearer"]

[[route]]
name = "quota"
path = "/quota/**"
auth = ["bearer"]
quota = { max = 4000000000, per = "1h" }
EOF
}

config 1 2 >"$TMP/cli.toml"
echo "bench-password-$RANDOM$RANDOM" | "$GATEHOUSE" user add bench --password-stdin --config "$TMP/cli.toml" >/dev/null
TOKEN=$("$GATEHOUSE" token issue bench --ttl 1h --config "$TMP/cli.toml" | tail -n 1)

NODE_PIDS=()
NODE_PORTS=()
start_nodes() { # COUNT
  NODE_PIDS=(); NODE_PORTS=()
  for i in $(seq "$1"); do
    local port admin
    port=$(free_port); admin=$(free_port)
    config "$port" "$admin" >"$TMP/node$i.toml"
    GATEHOUSE_LOG=warn taskset -c 0 "$GATEHOUSE" serve --config "$TMP/node$i.toml" 2>>"$TMP/node$i.log" &
    NODE_PIDS+=($!); NODE_PORTS+=("$port"); PIDS+=($!)
    wait_http "http://127.0.0.1:$port/healthz"
  done
}
stop_nodes() {
  for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

# One measurement: COUNT nodes, PATH; prints "rps cpu_us_per_req".
measure() {
  local n=$1 path=$2 conns=$((30 / $1)) t0 t1 total=0 rps=0 i
  sleep 1
  t0=$(ticks "${NODE_PIDS[@]}")
  for i in $(seq 0 $((n - 1))); do
    taskset -c 1 wrk -t1 -c"$conns" -d5s -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:${NODE_PORTS[$i]}$path" >"$TMP/wrk$i.out" 2>&1 &
  done
  wait $(jobs -p | tail -n "$n")
  t1=$(ticks "${NODE_PIDS[@]}")
  for i in $(seq 0 $((n - 1))); do
    if grep -q 'Non-2xx' "$TMP/wrk$i.out"; then
      echo "cluster.sh: non-2xx answers on $path:" >&2; cat "$TMP/wrk$i.out" >&2; exit 1
    fi
    total=$((total + $(awk '/requests in/{print $1}' "$TMP/wrk$i.out")))
    rps=$(awk -v a="$rps" '/Requests\/sec/{printf "%.0f", a + $2}' "$TMP/wrk$i.out")
  done
  awk -v r="$rps" -v tt=$((t1 - t0)) -v hz="$hz" -v n="$total" 'BEGIN{printf "%s %.2f\n", r, tt*1e6/hz/n}'
}

declare -A RES
for run in $(seq "$RUNS"); do
  for n in 1 3; do
    start_nodes "$n"
    for s in bearer quota; do
      path=/api/x; [ "$s" = quota ] && path=/quota/x
      RES["$n/$s/$run"]=$(measure "$n" "$path")
      echo "run $run: $n node(s), $s: ${RES["$n/$s/$run"]}" >&2
    done
    stop_nodes
  done
done

median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
printf '\n%-10s %-8s %12s %14s\n' nodes scenario "req/s" "cpu_us/req"
for n in 1 3; do
  for s in bearer quota; do
    rps=$(for r in $(seq "$RUNS"); do echo "${RES["$n/$s/$r"]}" | cut -d' ' -f1; done | median)
    cpu=$(for r in $(seq "$RUNS"); do echo "${RES["$n/$s/$r"]}" | cut -d' ' -f2; done | median)
    printf '%-10s %-8s %12s %14s\n' "$n" "$s" "$rps" "$cpu"
  done
done
