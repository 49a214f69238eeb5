#!/usr/bin/env bash
# Issue 18: a soak with faults. Two `gatehouse serve` nodes on a PostgreSQL and a Redis of
# their own (started here on loopback, in a temp dir, as crates/gatehouse/tests/cluster.rs
# starts them), in front of an nginx upstream, under mixed traffic for DURATION while
# Redis, PostgreSQL and the upstream are restarted, the config is reloaded with SIGHUP and
# the signing keys are rotated. Then it checks that
#   - every refusal the load generator saw has its audit record, in the nodes' JSON-lines
#     files and in the store's `audit` table (both counted, by request id);
#   - every revocation (logout, refresh-token reuse, suspension) was enforced on both nodes,
#     at once and again at the end;
#   - RSS and open file descriptors stayed flat after warm-up;
#   - no 5xx other than the documented 502/503/504 during a fault, and no answer other than
#     the contract's for each kind of request.
# It prints a table (recorded in docs/operations.md, "Soak") and exits 1 if a check failed.
#
# Not in CI. It runs DURATION (default 30m) plus about a minute of set-up and checks; the
# faults come every FAULT_EVERY (default 60s, or DURATION/8 for runs under 10 minutes), in
# the order redis, postgres, sighup, upstream, rotate. Short run: DURATION=3m bash bench/soak.sh
#
# usage: bench/soak.sh   (GATEHOUSE=path picks the binary, default target/release/gatehouse,
#                         built if missing; KEEP=1 keeps the temp dir with every log)
# Needs: PostgreSQL's server binaries (initdb, pg_ctl; Debian's `postgresql`), psql,
# redis-server, nginx, python3. Everything listens on 127.0.0.1; every process started here
# is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GATEHOUSE=${GATEHOUSE:-"$ROOT/target/release/gatehouse"}
for tool in psql redis-server nginx python3; do
  command -v "$tool" >/dev/null || { echo "soak.sh: \`$tool\` is required" >&2; exit 1; }
done
if [ ! -x "$GATEHOUSE" ] || [ "${REBUILD:-0}" = 1 ]; then
  (cd "$ROOT" && cargo build --release -p gatehouse)
fi
export GATEHOUSE
exec python3 "$ROOT/bench/soak.py"
