#!/usr/bin/env bash
# A/B of two Floodgate builds: the gateway process's own CPU time per
# request (and requests/s) under wrk, the two builds alternating in
# interleaved rounds against the same origin, with compare.sh's
# production-like config; see docs/PERFORMANCE.md.
#
#   BASE=main bash test/bench/ab.sh
#
# Environment (all optional):
#   BASE=main       git revision built as "base"; "new" is the working tree
#   ROUNDS=6        interleaved rounds (which build goes first alternates)
#   DUR=5           seconds per wrk measurement
#   SIZE=64 CONNS=64  response body bytes and wrk connections
#   WARM_SIZE=      if set, each measurement follows DUR seconds (unmeasured)
#                   of WARM_SIZE-byte bodies, as compare.sh alternates 64 B
#                   and 16 KiB phases: what a mix of sizes does to the pools
#   PORT_BASE=23100 first of the 5 loopback ports used
#
# CPU per request is utime + stime of the gateway process from /proc over a
# measurement divided by the requests wrk reports, which a busy machine
# disturbs far less than requests/s. Needs wrk (compare.sh installs it).
# Stops exactly the processes it started (by PID). Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
BASE=${BASE:-main}
ROUNDS=${ROUNDS:-6}
DUR=${DUR:-5}
SIZE=${SIZE:-64}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-23100}
ORIGIN=127.0.0.1:$PORT_BASE

source test/bench/lib.sh
bench_need wrk ab
bench_init ab

mkdir "$work/base-src"
git archive "$BASE" | tar -x -C "$work/base-src"
(cd "$work/base-src" && go build -o "$work/base" ./cmd/gateway)
go build -o "$work/new" ./cmd/gateway
go build -o "$work/" ./test/bench/origin

# compare.sh's Floodgate config, one copy per build on its own ports.
config() { # name listen admin
  fg_config floodgate "$2" "$3" "$work/$1.yaml" "$work/access-$1.log"
  "$work/$1" validate -config "$work/$1.yaml" >/dev/null
}
config base "127.0.0.1:$((PORT_BASE + 1))" "127.0.0.1:$((PORT_BASE + 2))"
config new "127.0.0.1:$((PORT_BASE + 3))" "127.0.0.1:$((PORT_BASE + 4))"
declare -A ADDR=([base]=127.0.0.1:$((PORT_BASE + 1)) [new]=127.0.0.1:$((PORT_BASE + 3)))

"$work/origin" -addr "$ORIGIN" 2>"$work/origin.log" &
PID[origin]=$!
for b in base new; do
  "$work/$b" -config "$work/$b.yaml" -log-level warn 2>"$work/$b.log" &
  PID[$b]=$!
done
for b in base new; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://${ADDR[$b]}/$SIZE" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://${ADDR[$b]}/$SIZE" || { echo "ab.sh: $b did not come up:" >&2; cat "$work/$b.log" >&2; exit 1; }
  wrk -t2 -c"$CONNS" -d2s "http://${ADDR[$b]}/$SIZE" >/dev/null 2>&1 # warm-up
done

TICK=$(getconf CLK_TCK)
: > "$work/results"
# Bytes allocated and GC cycles so far, from the gateway's own metrics.
heap() { # build
  local admin=$((PORT_BASE + 2))
  [ "$1" = new ] && admin=$((PORT_BASE + 4))
  curl -sf "http://127.0.0.1:$admin/metrics" |
    awk '/^go_memstats_alloc_bytes_total / {a = $2} /^go_gc_duration_seconds_count / {g = $2} END {printf "%.0f %d\n", a, g}'
}
measure() { # build round
  local c0 c1 out reqs rps cpu a0 g0 a1 g1
  if [ -n "${WARM_SIZE:-}" ]; then wrk -t2 -c"$CONNS" -d"${DUR}s" "http://${ADDR[$1]}/$WARM_SIZE" >/dev/null 2>&1; fi
  read -r a0 g0 < <(heap "$1")
  c0=$(ticks "${PID[$1]}")
  out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" "http://${ADDR[$1]}/$SIZE" 2>&1)
  c1=$(ticks "${PID[$1]}")
  read -r a1 g1 < <(heap "$1")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  cpu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v t="$TICK" 'BEGIN { printf "%.1f", (n > 0) ? (b - a) / t * 1e6 / n : 0 }')
  echo "$1 $2 $rps $cpu" >> "$work/results"
  printf '  round %d %-4s %10.0f req/s  cpu %6.1f us/req  %7.0f B allocated/req  %3d GCs  (load %s)\n' "$2" "$1" "$rps" "$cpu" \
    "$(awk -v a="$a0" -v b="$a1" -v n="$reqs" 'BEGIN { print (n > 0) ? (b - a) / n : 0 }')" "$((g1 - g0))" "$(cut -d' ' -f1 /proc/loadavg)"
}
echo "A/B: base = $BASE ($(git rev-parse --short "$BASE")), new = working tree; wrk -t2 -c$CONNS -d${DUR}s, ${SIZE} B bodies${WARM_SIZE:+, each after ${DUR}s of $WARM_SIZE B}, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then measure base "$r"; measure new "$r"; else measure new "$r"; measure base "$r"; fi
done
awk '{ rps[$1] += $3; cpu[$1] += $4; n[$1]++; if ($1 == "base") b[$2] = $4; else w[$2] = $4 }
  END {
    for (k in n) printf "%-4s mean %10.0f req/s  cpu %6.1f us/req\n", k, rps[k] / n[k], cpu[k] / n[k]
    for (r in b) { s += w[r] / b[r]; m++ }
    if (m > 0) printf "new / base CPU per request, mean of per-round ratios: %.3f\n", s / m
  }' "$work/results"
