#!/usr/bin/env bash
# TLS termination: Floodgate against HAProxy and nginx, each terminating TLS
# in front of the same plain origin, in one run on loopback; see
# docs/PERFORMANCE.md ("TLS").
#
#   bash test/bench/tls.sh
#
# Targets: haproxy, nginx and floodgate terminating TLS, and fg-plain (the
# same Floodgate config without TLS, so the cost of TLS itself shows).
# Measures, per target, interleaved over ROUNDS rounds:
#   handshakes: wrk with "Connection: close", so every request is a new TCP
#               connection and a full TLS handshake (wrk does not resume
#               sessions), 64 B bodies, 16 connections
#   keep-alive: TLS throughput at 64 B bodies over 64 keep-alive connections
# and prints requests/s, p99, the target's own CPU time per request and
# Floodgate's ratio to each peer within a round.
#
# Environment (all optional):
#   ROUNDS=3       interleaved rounds (the order of targets rotates)
#   DUR=6          seconds per wrk measurement
#   PORT_BASE=24000 first of the 7 loopback ports used
#
# Certificates: one ECDSA P-256 certificate (openssl) served by all three,
# TLS 1.2 minimum, ALPN http/1.1. It installs wrk, nginx-light, haproxy and
# openssl from the OS packages if missing (root), builds Floodgate and the
# origin, and stops exactly the processes it started (by PID) on exit. Not
# part of the test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-6}
PORT_BASE=${PORT_BASE:-24000}
ORIGIN=127.0.0.1:$PORT_BASE
NGX=127.0.0.1:$((PORT_BASE + 1))
HAP=127.0.0.1:$((PORT_BASE + 2))
FG=127.0.0.1:$((PORT_BASE + 3))
FG_ADMIN=127.0.0.1:$((PORT_BASE + 4))
FGP=127.0.0.1:$((PORT_BASE + 5))
FGP_ADMIN=127.0.0.1:$((PORT_BASE + 6))
CORES=$(nproc)

work=$(mktemp -d /tmp/floodgate-tls-bench.XXXXXX)
declare -A PID=()
cleanup() {
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
  for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools -------------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} from the OS packages" >&2
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

go build -o "$work/" ./test/bench/origin
go build -o "$work/floodgate" ./cmd/gateway

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" > "$work/combined.pem"

# --- targets -----------------------------------------------------------------
cat > "$work/nginx.conf" <<NGX
worker_processes $CORES;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_timeout 120s;
  keepalive_requests 1000000;
  upstream bench { server $ORIGIN; keepalive 1024; }
  server {
    listen $NGX ssl;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
NGX

cat > "$work/haproxy.cfg" <<HAP
global
  nbthread $CORES
  maxconn 19800
  no strict-limits
  ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 120s
  timeout server 30s
  timeout http-keep-alive 120s
frontend fe
  bind $HAP ssl crt $work/combined.pem alpn http/1.1
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend be
backend be
  server origin $ORIGIN
HAP

# Floodgate: compare.sh's production-like config (request id, priority
# scoring and shedding, a rate-limit policy that never triggers, metrics,
# P2C with breakers, the access log sampling 1 % of successes, the origin's
# adaptive limit off so the figures measure TLS, not shedding), taken from
# compare.sh itself so the two benchmarks cannot drift apart. fg-plain is
# that config on this script's ports; floodgate adds TLS on the listener.
sed -n '/^cat > "\$work\/floodgate.yaml" <<YAML/,/^YAML/p' test/bench/compare.sh | sed '1d;$d' |
  sed "s|\$FG_ADMIN|$FGP_ADMIN|; s|\$FG|$FGP|; s|\$work/access.log|$work/access-plain.log|; s|\$work|$work|; s|\$SAMPLE|0.01|; s|\$ORIGIN|$ORIGIN|" > "$work/fg-plain.yaml"
sed -e "s|$FGP_ADMIN|$FG_ADMIN|" -e "s|access-plain.log|access.log|" \
  -e "s|^server: {listen: \"$FGP\"}|server:\n  listen: \"$FG\"\n  tls:\n    certificates: [{cert_file: \"$work/cert.pem\", key_file: \"$work/key.pem\"}]|" \
  "$work/fg-plain.yaml" > "$work/floodgate.yaml"
grep -q 'certificates:' "$work/floodgate.yaml" || { echo "tls.sh: could not add TLS to compare.sh's config" >&2; exit 1; }
"$work/floodgate" validate -config "$work/floodgate.yaml" >/dev/null
"$work/floodgate" validate -config "$work/fg-plain.yaml" >/dev/null

start() { # name -> sets PID[name]; waits until it answers
  local name=$1 url
  case $name in
    origin) "$work/origin" -addr "$ORIGIN" 2>"$work/origin.log" & url=http://$ORIGIN/64 ;;
    nginx) "$NGINX" -c "$work/nginx.conf" -p "$work" 2>"$work/nginx.log" & url=https://$NGX/64 ;;
    haproxy) "$HAPROXY" -db -f "$work/haproxy.cfg" 2>"$work/haproxy.log" & url=https://$HAP/64 ;;
    floodgate) "$work/floodgate" -config "$work/floodgate.yaml" -log-level warn 2>"$work/floodgate.log" & url=https://$FG/64 ;;
    fg-plain) "$work/floodgate" -config "$work/fg-plain.yaml" -log-level warn 2>"$work/fg-plain.log" & url=http://$FGP/64 ;;
  esac
  PID[$name]=$!
  for _ in $(seq 1 100); do
    curl -skf -o /dev/null "$url" && return 0
    sleep 0.1
  done
  echo "$name did not come up at $url:" >&2
  cat "$work/$name.log" >&2 || true
  exit 1
}
url_of() { case $1 in nginx) echo "https://$NGX" ;; haproxy) echo "https://$HAP" ;; floodgate) echo "https://$FG" ;; fg-plain) echo "http://$FGP" ;; esac; }
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else { sub(/s$/, "", v); printf "%.3f", v * 1000 } }'
}
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
TICK=$(getconf CLK_TCK)
measure() { # mode target round -> appends "mode target round rps p99 errors cpu_us_per_req"
  local out rps p99 errs c0 c1 reqs cpu args
  case $1 in
    handshakes) args=(-t2 -c16 -H "Connection: close") ;;
    keepalive) args=(-t2 -c64) ;;
  esac
  c0=$(cpu_ticks "${PID[$2]}")
  out=$(wrk "${args[@]}" -d"${DUR}s" --latency "$(url_of "$2")/64" 2>&1)
  c1=$(cpu_ticks "${PID[$2]}")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  cpu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v t="$TICK" 'BEGIN { printf "%.1f", (n > 0) ? (b - a) / t * 1e6 / n : 0 }')
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  errs=$(awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(/,/, ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  echo "$1 $2 $3 $rps $p99 $errs $cpu" >> "$work/results"
  printf '  round %d %-10s %-10s %9.0f req/s  p99 %7.2f ms  cpu %7.1f us/req%s\n' "$3" "$1" "$2" "$rps" "$p99" "$cpu" \
    "$([ "$errs" = 0 ] || echo "  ($errs errors)")"
}

start origin
targets=(haproxy nginx floodgate fg-plain)
for t in "${targets[@]}"; do start "$t"; done
echo "TLS: wrk -d${DUR}s, $ROUNDS interleaved rounds, loopback, $CORES cores shared by wrk, proxies and origin"
echo "(machine load average at start: $(cut -d' ' -f1-3 /proc/loadavg))"
echo "negotiated: $(curl -sk -o /dev/null -w '%{http_version} ' "https://$FG/64"; openssl s_client -connect "$FG" -servername bench.test </dev/null 2>/dev/null | awk '/Protocol *:/ {print $3} /Cipher is/ {print $NF}' | head -2 | tr '\n' ' ')"
for t in "${targets[@]}"; do wrk -t2 -c16 -d2s "$(url_of "$t")/64" >/dev/null 2>&1; done # warm-up
: > "$work/results"
for r in $(seq 1 "$ROUNDS"); do
  for mode in handshakes keepalive; do
    n=${#targets[@]}
    for i in $(seq 0 $((n - 1))); do
      measure "$mode" "${targets[$(((i + r - 1) % n))]}" "$r"
    done
  done
done

echo
echo "Summary: median over rounds [min-max]; ratios computed per round, then summarised."
echo "handshakes = new TLS connection per request (req/s = full handshakes/s); keepalive = 64 B over 64 TLS connections."
echo "fg-plain is Floodgate without TLS (new TCP connections / keep-alive): the difference is what TLS costs."
for mode in handshakes keepalive; do
  echo
  echo "$mode"
  awk -v mode="$mode" '
    function med(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t }
      return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
    function mn(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] < m) m = a[i]; return m }
    function mx(a, n,   i, m) { m = a[1]; for (i = 2; i <= n; i++) if (a[i] > m) m = a[i]; return m }
    $1 == mode { rps[$2, $3] = $4; p99[$2, $3] = $5; err[$2] += $6; cpu[$2, $3] = $7; rounds[$3] = 1; seen[$2] = 1 }
    END {
      split("haproxy nginx floodgate fg-plain", order, " ")
      printf "  %-10s %24s %20s %7s %20s %20s %20s\n", "target", "req/s", "p99 ms", "errors", "cpu us/req", "floodgate / this", "cpu: this / fg"
      for (k = 1; k <= 4; k++) {
        t = order[k]; if (!(t in seen)) continue
        n = 0; delete R; delete P; delete C; delete F; delete G
        for (r in rounds) { n++; R[n] = rps[t, r]; P[n] = p99[t, r]; C[n] = cpu[t, r]
          F[n] = rps["floodgate", r] / rps[t, r]; G[n] = cpu[t, r] / cpu["floodgate", r] }
        printf "  %-10s %9.0f [%6.0f-%6.0f] %7.2f [%5.2f-%5.2f] %7d %7.1f [%5.1f-%5.1f] %6.2f [%4.2f-%4.2f] %6.2f [%4.2f-%4.2f]\n",
          t, med(R, n), mn(R, n), mx(R, n), med(P, n), mn(P, n), mx(P, n), err[t], med(C, n), mn(C, n), mx(C, n),
          med(F, n), mn(F, n), mx(F, n), med(G, n), mn(G, n), mx(G, n)
      }
    }' "$work/results"
done
echo
echo "Floodgate outcomes during the runs:"
curl -s "http://$FG_ADMIN/metrics" | grep -E '^floodgate_(requests_total|tls_handshake_errors_total)' | awk '$NF != 0' | sed 's/^/  /' || true
if [ -s "$work/floodgate.log" ]; then echo "Floodgate warnings:"; head -20 "$work/floodgate.log" | sed 's/^/  /'; fi
