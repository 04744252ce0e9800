#!/usr/bin/env bash
# Fuzz every go test -fuzz target in the repository for SECONDS each (default
# 60), one after another, and report per target how long it ran and whether
# it found a crasher. A crasher is written by Go under the target package's
# testdata/fuzz/<Target>/ and then replays in every plain `go test` run.
#
#   test/fuzz/run.sh 600            # ten minutes per target
#   FUZZ_TARGETS='FuzzRequestFraming' test/fuzz/run.sh 60   # only those named
#
# Exit status: 0 when no target failed, 1 otherwise.
set -u
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

failed=0
total_start=$(date +%s)
# Every "func FuzzXxx(f *testing.F)" in a _test.go file, as "dir name".
targets=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
	while read -r file; do
		dir=$(dirname "$file"); dir=${dir#./}
		grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed 's/^func //' | while read -r name; do
			echo "$dir $name"
		done
	done | sort -u)

printf '%-50s %-40s %8s  %s\n' package target seconds result
while read -r dir name; do
	[ -z "$dir" ] && continue
	if [ -n "${FUZZ_TARGETS:-}" ] && ! grep -qw "$name" <<<"$FUZZ_TARGETS"; then
		continue
	fi
	before=$(ls "$dir/testdata/fuzz/$name" 2>/dev/null | wc -l)
	start=$(date +%s)
	log=$(mktemp)
	if go test "./$dir" -run '^$' -fuzz "^${name}\$" -fuzztime "${seconds}s" >"$log" 2>&1; then
		result=ok
	else
		result="FAILED (see below)"
		failed=1
	fi
	ran=$(( $(date +%s) - start ))
	after=$(ls "$dir/testdata/fuzz/$name" 2>/dev/null | wc -l)
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1)
	printf '%-50s %-40s %8s  %s %s, new crashers: %s\n' "$dir" "$name" "$ran" "$result" "${execs:-}" "$((after - before))"
	if [ "$result" != ok ]; then
		tail -30 "$log"
	fi
	rm -f "$log"
done <<<"$targets"
echo "total wall time: $(( $(date +%s) - total_start ))s"
exit $failed
