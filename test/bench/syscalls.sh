#!/usr/bin/env bash
# Syscalls per proxied request: strace -c attached to each proxy while wrk
# drives 64 B bodies over 64 connections on loopback.
#
#   bash test/bench/syscalls.sh [extra-gateway-binary ...]
#
# Measures Floodgate (built from this tree, with the chain of compare.sh),
# the minimal fasthttp proxy and HAProxy, plus any gateway binaries given
# (e.g. one built from an older commit, to compare). strace slows the traced
# process, so requests/s here mean nothing; counts per request are the
# figure. Needs strace, wrk and haproxy (compare.sh installs the latter two).
# Stops exactly the PIDs it started. Ports 23300-23309, loopback only.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v strace >/dev/null || { echo "strace not installed: apt-get install -y strace" >&2; exit 2; }
DUR=${DUR:-4}
ORIGIN=127.0.0.1:23300
work=$(mktemp -d /tmp/floodgate-syscalls.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/" ./test/bench/origin ./test/bench/minproxy
go build -o "$work/floodgate" ./cmd/gateway
# The Floodgate config of compare.sh, on this script's ports.
sed -n '/^cat > "\$work\/floodgate.yaml" <<YAML/,/^YAML/p' test/bench/compare.sh | sed '1d;$d' |
  sed "s|\$FG_ADMIN|127.0.0.1:23309|; s|\$FG|127.0.0.1:PORT|; s|\$work|$work|; s|\$SAMPLE|0.01|; s|\$ORIGIN|$ORIGIN|" > "$work/fg.tmpl"

"$work/origin" -addr "$ORIGIN" 2>/dev/null & pids+=($!)
targets=()
port=23301
for bin in "$work/floodgate" "$@"; do
  sed "s|PORT|$port|" "$work/fg.tmpl" | sed "s|127.0.0.1:23309|127.0.0.1:$((port + 4))|" > "$work/fg$port.yaml"
  "$bin" -config "$work/fg$port.yaml" -log-level warn 2>/dev/null & pids+=($!)
  targets+=("floodgate:$(basename "$bin"):$! $port")
  port=$((port + 1))
done
"$work/minproxy" -addr 127.0.0.1:23308 -upstream "$ORIGIN" 2>/dev/null & pids+=($!)
targets+=("minproxy:$! 23308")
cat > "$work/haproxy.cfg" <<HAP
global
  nbthread $(nproc)
defaults
  mode http
  option http-keep-alive
  http-reuse always
  timeout connect 5s
  timeout client 60s
  timeout server 30s
frontend fe
  bind 127.0.0.1:23307
  option forwardfor
  default_backend be
backend be
  server origin $ORIGIN
HAP
"$(command -v haproxy || echo /usr/sbin/haproxy)" -db -f "$work/haproxy.cfg" 2>/dev/null & pids+=($!)
targets+=("haproxy:$! 23307")
sleep 2

printf '%-28s %9s %7s %7s %7s %9s %8s %7s %9s %7s\n' target requests write sendto read recvfrom "EAGAIN" futex nanosleep epoll
for t in "${targets[@]}"; do
  name=${t%%:*}; rest=${t#*:}; pid=${rest##*:}; pid=${pid%% *}; port=${t##* }
  [ "$name" = floodgate ] && name="floodgate:$(cut -d: -f2 <<<"$t")"
  wrk -t2 -c64 -d1s "http://127.0.0.1:$port/64" >/dev/null 2>&1
  strace -c -f -p "$pid" -o "$work/strace.out" 2>/dev/null & spid=$!
  sleep 0.5
  reqs=$(wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$port/64" | awk '/requests in/ {print $1}')
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  awk -v n="$reqs" -v name="$name" '
    $NF == "write" { w += $4 } $NF == "sendto" { st += $4 } $NF == "read" { r += $4; if (NF == 6) e += $5 }
    $NF == "recvfrom" { rf += $4; if (NF == 6) e += $5 } $NF == "futex" { f += $4 } $NF == "nanosleep" { s += $4 }
    $NF ~ /^epoll_(p)?wait$/ { ep += $4 }
    END { printf "%-28s %9d %7.2f %7.2f %7.2f %9.2f %8.2f %7.2f %9.2f %7.2f\n", name, n, w/n, st/n, r/n, rf/n, e/n, f/n, s/n, ep/n }' "$work/strace.out"
done
echo "(per request; EAGAIN counts reads and recvfroms that found nothing, including Floodgate's idle-connection probes;"
echo " strace counts from 0.5 s before to the end of a ${DUR} s wrk run, so idle-time calls are included)"
