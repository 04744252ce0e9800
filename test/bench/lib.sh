# Shared by the bench scripts (source it after cd to the repository root):
# a work directory removed on exit together with every process the script
# started (kept in PID, stopped by PID only), a process's CPU ticks, and
# compare.sh's Floodgate configs written for other ports.

# bench_need TOOL NAME: exit unless TOOL is installed (compare.sh installs
# wrk, nginx and haproxy).
bench_need() {
  command -v "$1" >/dev/null || { echo "$2.sh: $1 is missing (bash test/bench/compare.sh installs it)" >&2; exit 1; }
}

# bench_init NAME: $work, the PID map and the exit trap. Paths added to
# BENCH_TMP are removed on exit too.
bench_init() {
  work=$(mktemp -d "/tmp/floodgate-$1.XXXXXX")
  declare -gA PID=()
  BENCH_TMP=()
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local name
  for name in "${!PID[@]}"; do kill "${PID[$name]}" 2>/dev/null || true; done
  for name in "${!PID[@]}"; do wait "${PID[$name]}" 2>/dev/null || true; done
  rm -rf "$work" "${BENCH_TMP[@]}"
}

# ticks PID: its utime + stime in clock ticks.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# fg_config HEREDOC LISTEN ADMIN OUT ACCESS_LOG: compare.sh's config of
# that name ("floodgate" is the production-like chain, "floodgate-bare"
# every built-in filter off) on the given addresses, to OUT, against the
# origin at $ORIGIN, the access log (if any) sampling 1 % of successes.
fg_config() {
  sed -n "/^cat > \"\\\$work\\/$1.yaml\" <<YAML/,/^YAML/p" test/bench/compare.sh | sed '1d;$d' |
    sed "s|\$FG_BARE_ADMIN|$3|; s|\$FG_BARE|$2|; s|\$FG_ADMIN|$3|; s|\$FG|$2|; s|\$work/access.log|$5|; s|\$SAMPLE|0.01|; s|\$ORIGIN|$ORIGIN|" > "$4"
}
