#!/usr/bin/env bash
# Compare Floodgate with nginx as reverse proxies in one run, as ratios.
#
#   bash test/bench/compare.sh [duration-seconds] [connections]
#
# Starts (loopback only) a fasthttp origin, Floodgate and nginx in front of
# it, drives each with wrk for the same duration, prints requests/s and
# latency, then stops exactly the processes it started. Needs wrk and nginx:
#   apt-get install -y wrk nginx-light
# All three share this machine's cores with wrk, so absolute numbers mean
# little; the ratio between proxies measured back to back is the figure.
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
CONNS=${2:-64}
ORIGIN=127.0.0.1:19200
FG=127.0.0.1:19280
NGX=127.0.0.1:19281
FG_ADMIN=127.0.0.1:19282
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk not installed: apt-get install -y wrk" >&2; exit 2; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "nginx not installed: apt-get install -y nginx-light" >&2; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

go build -o "$work/origin" ./test/bench/origin
go build -o "$work/floodgate" ./cmd/gateway

"$work/origin" -addr "$ORIGIN" & pids+=($!)

cat > "$work/floodgate.yaml" <<YAML
server: {listen: "$FG"}
admin: {listen: "$FG_ADMIN"}
access_log: {enabled: ${FG_ACCESS_LOG:-false}, options: {output: "$work/access.log", sample_successes: 0}}   # nginx runs with access_log off too
origins:
  bench:
    instances: [{address: "$ORIGIN"}]
routes:
  - name: bench
    match: {path_prefix: /}
    origin: bench
YAML
"$work/floodgate" -config "$work/floodgate.yaml" -log-level warn 2> "$work/floodgate.log" & pids+=($!)

cat > "$work/nginx.conf" <<NGX
worker_processes auto;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  upstream bench { server $ORIGIN; keepalive 256; }
  server {
    listen $NGX;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_buffering off;
    }
  }
}
NGX
"$NGINX" -c "$work/nginx.conf" -p "$work" & pids+=($!)

for addr in "$ORIGIN" "$FG" "$NGX"; do
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://$addr/" && break
    sleep 0.1
  done
done

run() { # name addr
  local out rps p50 p99
  out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "http://$2/" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  printf '%-10s %12s req/s   p50 %8s   p99 %8s\n' "$1" "$rps" "$p50" "$p99"
  echo "$rps" > "$work/$1.rps"
}

echo "wrk -t2 -c$CONNS -d${DUR}s, 1 KiB responses, loopback, $(nproc) cores shared by all processes"
run origin "$ORIGIN"
run nginx "$NGX"
run floodgate "$FG"
run nginx "$NGX"
run floodgate "$FG"
awk -v f="$(cat "$work/floodgate.rps")" -v n="$(cat "$work/nginx.rps")" \
  'BEGIN { printf "floodgate / nginx throughput ratio (last round): %.2f\n", f/n }'
# Anything but success is a correctness problem, not a speed figure.
echo "floodgate outcomes during the runs:"
curl -s "http://$FG_ADMIN/metrics" | grep -E '^floodgate_(requests_total|origin_requests_total)' | sed 's/^/  /'
if [ -s "$work/access.log" ]; then echo "failed requests (first 5):"; head -5 "$work/access.log" | cut -c1-600 | sed "s/^/  /"; fi
if [ -s "$work/floodgate.log" ]; then echo "floodgate warnings:"; sed 's/^/  /' "$work/floodgate.log"; fi
