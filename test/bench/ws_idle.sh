#!/usr/bin/env bash
# RSS per idle open WebSocket tunnel: the gateway's resident memory growth
# while N tunnels are held open and idle, divided by N.
#
#   bash test/bench/ws_idle.sh          # N=9000, about a minute
#
#   N=9000     tunnels held. A tunnel costs the gateway two descriptors
#              (client and origin side); with the usual 20,000 per-process
#              limit 9,000 tunnels (18,000 fds) is what fits, so N tunnels
#              are held and the figure is per tunnel.
#   HOLD=120s  how long the holder keeps them at most (it is stopped as
#              soon as the figure is taken)
#
# Three processes on loopback only (ports 24110-24112): the WebSocket origin
# (test/bench/wsorigin, github.com/coder/websocket), the gateway built from
# ./cmd/gateway, and the holder (test/bench/holder -websocket) that opens the
# tunnels, exchanges one message on each and keeps them idle. The script
# stops exactly the PIDs it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

N=${N:-9000}
HOLD=${HOLD:-120s}
GW=127.0.0.1:24110
ADMIN=127.0.0.1:24111
ORIGIN=127.0.0.1:24112

work=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/" ./cmd/gateway ./test/bench/wsorigin ./test/bench/holder

cat >"$work/floodgate.yaml" <<YAML
server:
  listen: "$GW"
  tunnel: {idle_timeout: 10m}
admin: {listen: "$ADMIN"}
access_log: {enabled: false}
origins:
  ws:
    instances: [{address: "$ORIGIN"}]
    timeouts: {connect: 2s, response: 10s}
routes:
  - name: ws
    match: {path_prefix: /ws}
    origin: ws
YAML

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
metric() { # value of a metric line from the admin listener
  curl -fsS "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

"$work/wsorigin" -addr "$ORIGIN" &
PIDS+=($!)
wait_port "$ORIGIN"
"$work/gateway" -config "$work/floodgate.yaml" >"$work/gateway.log" 2>&1 &
GWPID=$!
PIDS+=($GWPID)
wait_port "$GW"

# Warm up: open and close some tunnels so pools and the runtime settle.
"$work/holder" -websocket -path /ws -addr "$GW" -n 200 -hold 0s >/dev/null
for _ in $(seq 1 100); do
  [ "$(metric 'floodgate_tunnels_open{route="ws"}')" = "0" ] && break
  sleep 0.1
done
before=$(rss_kib "$GWPID")
fds_before=$(fds "$GWPID")
heap_before=$(metric go_memstats_heap_inuse_bytes)
stack_before=$(metric go_memstats_stack_inuse_bytes)
gr_before=$(metric go_goroutines)

"$work/holder" -websocket -path /ws -addr "$GW" -n "$N" -hold "$HOLD" >"$work/holder.out" 2>&1 &
HOLDER=$!
PIDS+=($HOLDER)
for _ in $(seq 1 1200); do
  grep -q '^held' "$work/holder.out" && break
  kill -0 "$HOLDER" 2>/dev/null || break
  sleep 0.1
done
cat "$work/holder.out"
held=$(awk '/^held/ {print $2}' "$work/holder.out")
open=$(metric 'floodgate_tunnels_open{route="ws"}')
sleep 2 # let the tunnels settle idle before sampling
after=$(rss_kib "$GWPID")
fds_after=$(fds "$GWPID")
heap_after=$(metric go_memstats_heap_inuse_bytes)
stack_after=$(metric go_memstats_stack_inuse_bytes)
gr_after=$(metric go_goroutines)
kill "$HOLDER"

echo "gateway RSS before: ${before} KiB, with ${held} tunnels held (floodgate_tunnels_open ${open}): ${after} KiB"
echo "gateway fds: ${fds_before} -> ${fds_after}"
if [ "${held:-0}" -gt 0 ]; then
  awk -v b="$before" -v a="$after" -v n="$held" \
    'BEGIN { printf "RSS per idle open WebSocket tunnel: %.1f KiB (%d tunnels)\n", (a - b) / n, n }'
  awk -v hb="$heap_before" -v ha="$heap_after" -v sb="$stack_before" -v sa="$stack_after" \
      -v gb="$gr_before" -v ga="$gr_after" -v n="$held" \
    'BEGIN { printf "  of which Go heap in use %.1f KiB, goroutine stacks %.1f KiB, goroutines %.2f per tunnel\n", (ha - hb) / n / 1024, (sa - sb) / n / 1024, (ga - gb) / n }'
fi
