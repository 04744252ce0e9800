#!/usr/bin/env bash
# What each built-in filter of the production-like chain costs: one gateway
# build serves compare.sh's production-like config and variants of it with
# one filter (or one group of filters) turned off, plus the bare endpoint;
# in interleaved rounds (order shuffled each round) wrk loads each in turn
# and the gateway process's own CPU time per request is read from /proc.
# A filter's cost is the full chain's CPU per request minus the variant's
# without it; see docs/PERFORMANCE.md.
#
#   bash test/bench/filtercost.sh        # ~4 minutes
#
# Environment (all optional):
#   ROUNDS=5        interleaved rounds
#   DUR=4           seconds per wrk measurement (after 1 s of warm-up)
#   SIZE=64 CONNS=64  response body bytes and wrk connections
#   PORT_BASE=23300 first of the 21 loopback ports used
#
# Read differences under ~1 us per request as noise unless the spread of
# the rounds says otherwise (it is printed). Stops exactly the processes
# it started (by PID). Not part of the test run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
DUR=${DUR:-4}
SIZE=${SIZE:-64}
CONNS=${CONNS:-64}
PORT_BASE=${PORT_BASE:-23300}
ORIGIN=127.0.0.1:$PORT_BASE

source test/bench/lib.sh
bench_need wrk filtercost
bench_init filtercost

go build -o "$work/floodgate" ./cmd/gateway
go build -o "$work/" ./test/bench/origin

# variant name and the YAML that turns its filters off (appended to, or
# replacing a top-level key of, the production-like config).
VARIANTS=(full passport access_log metrics request_id shedding chaos rate_limit bare)
declare -A OFF=(
  [passport]='passport: {enabled: false}
passport_header: {enabled: false}'
  [access_log]='access_log: {enabled: false}'
  [metrics]='metrics: {enabled: false}'
  [request_id]='request_id: {enabled: false}'
  [shedding]='shed_global: {enabled: false}
shed_origin: {enabled: false}
shed_origin_release: {enabled: false}'
  [chaos]='chaos_global: {enabled: false}
chaos_origin: {enabled: false}'
)
declare -A ADDR=()
i=0
for v in "${VARIANTS[@]}"; do
  i=$((i + 1))
  listen=127.0.0.1:$((PORT_BASE + 2 * i - 1))
  admin=127.0.0.1:$((PORT_BASE + 2 * i))
  cfg=$work/$v.yaml
  if [ "$v" = bare ]; then
    fg_config floodgate-bare "$listen" "$admin" "$cfg" ""
  else
    fg_config floodgate "$listen" "$admin" "$cfg" "$work/access-$v.log"
  fi
  case $v in
    full | bare) ;;
    rate_limit) # the policy stays configured; only the filter goes
      sed -i '/^filters:/,/^origins:/{/^origins:/!d}' "$cfg" ;;
    *)
      key=${OFF[$v]%%:*}
      if grep -q "^$key:" "$cfg"; then
        sed -i "/^$key:/d" "$cfg"
      fi
      printf '%s\n' "${OFF[$v]}" >>"$cfg" ;;
  esac
  "$work/floodgate" validate -config "$cfg" >/dev/null
  ADDR[$v]=$listen
done

"$work/origin" -addr "$ORIGIN" 2>"$work/origin.log" &
PID[origin]=$!
for v in "${VARIANTS[@]}"; do
  "$work/floodgate" -config "$work/$v.yaml" -log-level warn 2>"$work/$v.log" &
  PID[$v]=$!
done
for v in "${VARIANTS[@]}"; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://${ADDR[$v]}/$SIZE" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://${ADDR[$v]}/$SIZE" || { echo "filtercost.sh: $v did not come up:" >&2; cat "$work/$v.log" >&2; exit 1; }
done

TICK=$(getconf CLK_TCK)
: >"$work/results"
echo "filter cost: wrk -t2 -c$CONNS -d${DUR}s, ${SIZE} B bodies, $ROUNDS rounds, load average at start $(cut -d' ' -f1 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  for v in $(printf '%s\n' "${VARIANTS[@]}" | shuf); do
    wrk -t2 -c"$CONNS" -d1s "http://${ADDR[$v]}/$SIZE" >/dev/null 2>&1
    c0=$(ticks "${PID[$v]}")
    out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" "http://${ADDR[$v]}/$SIZE" 2>&1)
    c1=$(ticks "${PID[$v]}")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" -v t="$TICK" 'BEGIN { printf "%.2f", (n > 0) ? (b - a) / t * 1e6 / n : 0 }')
    echo "$v $r $cpu" >>"$work/results"
  done
done
echo "load average at end $(cut -d' ' -f1 /proc/loadavg)"
# Per variant: median CPU per request, and the filter's cost as the median
# of the per-round differences to the full chain (with their range).
awk -v order="${VARIANTS[*]}" '
  { cpu[$1, $2] = $3; rounds[$2] = 1 }
  function median(a, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    n = split(order, vs, " ")
    printf "%-12s %14s %32s\n", "without", "cpu us/req", "cost = full - variant, us/req"
    for (k = 1; k <= n; k++) {
      v = vs[k]; m = 0; delete c; delete d
      for (r in rounds) { m++; c[m] = cpu[v, r]; d[m] = cpu["full", r] - cpu[v, r] }
      lo = d[1]; hi = d[1]; for (i = 1; i <= m; i++) { if (d[i] < lo) lo = d[i]; if (d[i] > hi) hi = d[i] }
      if (v == "full") printf "%-12s %14.1f %32s\n", "(nothing)", median(c, m), "-"
      else printf "%-12s %14.1f %17.1f [%5.1f - %4.1f]\n", v == "bare" ? "every filter" : v, median(c, m), median(d, m), lo, hi
    }
  }' "$work/results"
