# Shell helpers shared by the bench scripts (sourced, not run).

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

