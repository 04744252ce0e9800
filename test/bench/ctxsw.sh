#!/usr/bin/env bash
# Thread sleeps and wake-ups per request: minproxy, Floodgate with every
# built-in filter off (floodgate-bare) and Floodgate with compare.sh's
# production-like chain, in interleaved rounds of wrk -t1 at 64 B on
# loopback. Per request it prints the process's CPU time and its context
# switches (voluntary + nonvoluntary, summed over all its threads from
# /proc/PID/task/*/status): where the chain's cost grows with contention,
# this shows it (docs/PERFORMANCE.md, "The chain under contention").
#
#   bash test/bench/ctxsw.sh        # ROUNDS=3 DUR=4 CONNS=64 PORT_BASE=23400
#
# With SCHED=1 (needs perf and the sched tracepoints; run as root) each
# measurement also records the scheduler system-wide (perf record -a) and
# prints, per request of the target: its syscalls, how often its threads
# were switched out asleep or preempted while runnable, how often they were
# woken, and how many wake-ups they issued (each socket write that finds
# the peer asleep is one): where the extra kernel time of a slower proxy
# goes (docs/PERFORMANCE.md, sixth session).
#
# Needs wrk (compare.sh installs it). Stops exactly the PIDs it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-4}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-23400}
ORIGIN=127.0.0.1:$PORT_BASE

source test/bench/lib.sh
bench_need wrk ctxsw
bench_init ctxsw
trace=$(mktemp /tmp/floodgate-ctxsw-sched.XXXXXX)
BENCH_TMP+=("$trace" "$trace.old") # perf renames an existing output to .old
declare -A ADDR=()

go build -o "$work/" ./test/bench/origin ./test/bench/minproxy
go build -o "$work/floodgate" ./cmd/gateway
# compare.sh's two Floodgate configs, on this script's ports.
config() { # heredoc-name listen admin out
  fg_config "$1" "$2" "$3" "$work/$4.yaml" "$work/access.log"
  "$work/floodgate" validate -config "$work/$4.yaml" >/dev/null
}
config floodgate "127.0.0.1:$((PORT_BASE + 2))" "127.0.0.1:$((PORT_BASE + 3))" full
config floodgate-bare "127.0.0.1:$((PORT_BASE + 4))" "127.0.0.1:$((PORT_BASE + 5))" bare

"$work/origin" -addr "$ORIGIN" 2>"$work/origin.log" & PID[origin]=$!
"$work/minproxy" -addr "127.0.0.1:$((PORT_BASE + 1))" -upstream "$ORIGIN" 2>"$work/minproxy.log" & PID[minproxy]=$!
ADDR[minproxy]=127.0.0.1:$((PORT_BASE + 1))
for t in bare full; do
  "$work/floodgate" -config "$work/$t.yaml" -log-level warn 2>"$work/$t.log" & PID[$t]=$!
done
ADDR[full]=127.0.0.1:$((PORT_BASE + 2))
ADDR[bare]=127.0.0.1:$((PORT_BASE + 4))
for t in minproxy bare full; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://${ADDR[$t]}/64" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://${ADDR[$t]}/64" || { echo "ctxsw.sh: $t did not come up" >&2; cat "$work/$t.log" >&2 || true; exit 1; }
done

TICK=$(getconf CLK_TCK)
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s}'; }
echo "wrk -t1 -c$CONNS -d${DUR}s, 64 B; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# sched_events PID REQUESTS: the SCHED=1 line for the trace in $trace.
# The trace is written outside $work: the gateway watches its config's
# directory for live reload, and perf writing there would wake the watcher
# on every write and count as the gateway's.
sched_events() {
  local tids
  tids=$(ls /proc/"$1"/task | tr '\n' ' ')
  perf script -i "$trace" -F pid,event,trace 2>/dev/null | awk -v p="$1" -v n="$2" -v tids="$tids" '
    BEGIN { split(tids, a, " "); for (i in a) mine[a[i]] = 1 }
    $1 == p && $2 ~ /sys_enter/ { sc++ }
    $1 == p && $2 ~ /sched_switch/ { if ($0 ~ /prev_state=R/) pre++; else slept++ }
    $2 ~ /sched_wakeup/ {
      if ($1 == p) issued++
      if (match($0, / pid=[0-9]+/) && (substr($0, RSTART + 5, RLENGTH - 5) in mine)) woken++
    }
    END { printf "      sched: syscalls %.2f, switched out asleep %.3f, preempted %.3f, woken %.3f, wake-ups issued %.3f per request\n", sc / n, slept / n, pre / n, woken / n, issued / n }'
}
for r in $(seq 1 "$ROUNDS"); do
  for t in minproxy bare full; do
    if [ "${SCHED:-0}" = 1 ]; then
      perf record -q -a -e sched:sched_switch -e sched:sched_wakeup -e raw_syscalls:sys_enter -o "$trace" -- sleep $((DUR + 1)) >/dev/null 2>&1 &
      PID[perf]=$!
      sleep 0.3
    fi
    c0=$(ticks "${PID[$t]}"); s0=$(switches "${PID[$t]}")
    out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" "http://${ADDR[$t]}/64" 2>&1)
    c1=$(ticks "${PID[$t]}"); s1=$(switches "${PID[$t]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    awk -v r="$r" -v t="$t" -v n="$reqs" -v c="$((c1 - c0))" -v s="$((s1 - s0))" -v hz="$TICK" \
      'BEGIN { printf "  round %d %-9s %8d requests  cpu %6.1f us/req  context switches %.3f /req\n", r, t, n, c / hz * 1e6 / n, s / n }'
    if [ "${SCHED:-0}" = 1 ]; then
      wait "${PID[perf]}" 2>/dev/null || true
      unset 'PID[perf]'
      sched_events "${PID[$t]}" "$reqs"
    fi
  done
done
