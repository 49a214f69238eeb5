# Shell helpers shared by the bench scripts (sourced, not run).

# The scripts' EXIT trap: kills every process in PIDS and removes TMP.
bench_cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}

# A port nobody listens on (checked, not reserved: good enough on a loopback-only bench).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 20000))
    if ! ss -Htln "sport = :$p" | grep -q .; then echo "$p"; return; fi
  done
  echo "bench: no free port found" >&2; exit 1
}

wait_http() { # URL: up to 10 s for any HTTP answer
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "bench: $1 did not come up" >&2; exit 1
}


# nginx in the foreground of a background job: one process, no daemon, its own prefix.
start_nginx() { # NAME CPU CONF_BODY  → sets NGINX_PID (needs TMP and the PIDS array)
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

# The routes bench/proxy.sh and bench/callgrind.sh both configure: a public one and a Bearer
# one with a role and a scope (the tokens are issued with `--scope bench:read`).
bench_routes() {
  cat <<EOF
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
EOF
}

# The Gatehouse bench/callgrind.sh and bench/syscalls.sh measure: the bench routes on
# 127.0.0.1:PORT proxying to the upstream on 127.0.0.1:UPSTREAM_PORT, SQLite in $TMP, user
# `bench` with role `bench`; prints an access token for it (scope `bench:read`).
bench_gatehouse_setup() { # GATEHOUSE PORT UPSTREAM_PORT → $TMP/gatehouse.toml; prints a token
  cat >"$TMP/gatehouse.toml" <<EOF
[server]
listen = "127.0.0.1:$2"
realm = "bench"
trusted_proxies = ["127.0.0.1"]

[upstream]
url = "http://127.0.0.1:$3"

[store]
url = "sqlite://$TMP/gatehouse.db"

$(bench_routes)
EOF
  printf '%s\n' "bench-password-$RANDOM$RANDOM" | "$1" user add bench --role bench \
    --password-stdin --config "$TMP/gatehouse.toml" >/dev/null 2>&1
  "$1" token issue bench --scope bench:read --ttl 1h --config "$TMP/gatehouse.toml" | tail -n 1
}

# An HS256 JWT (RFC 7519), signed with openssl: `hs256_jwt HEADER_JSON PAYLOAD_JSON SECRET`.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
hs256_jwt() {
  local h p s
  h=$(printf '%s' "$1" | b64url)
  p=$(printf '%s' "$2" | b64url)
  s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -hmac "$3" -binary | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
