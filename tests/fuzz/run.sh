#!/bin/sh
# Build and run fetchd's fuzzers:
#   tests/fuzz/run.sh [SECONDS] [NAME...]
# SECONDS per fuzzer (default 60); NAME among request config links charset jsonw jsoncopy
# (default all). Each fuzzer runs on a copy of tests/fuzz/corpus/NAME in a
# temp dir, so the committed corpus never grows. Binaries go to $FUZZ_OUT
# (default tests/fuzz/out). Crash, leak, timeout and OOM inputs are kept in
# $FUZZ_ARTIFACTS (default a new /tmp/fetchd-fuzz.XXXXXX). Prints one line
# per fuzzer; exits 1 if any fuzzer reported a finding.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
secs=${1:-60}
[ $# -gt 0 ] && shift
names=${*:-request config links charset jsonw jsoncopy}
out=${FUZZ_OUT:-$here/out}

case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS] [request|config|links|charset|jsonw|jsoncopy ...]" >&2
	exit 2
	;;
esac

"$here/build.sh" "$out"

work=$(mktemp -d /tmp/fetchd-fuzz-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
arts=${FUZZ_ARTIFACTS:-$(mktemp -d /tmp/fetchd-fuzz.XXXXXX)}
mkdir -p "$arts"

failed=0
summary=
for name in $names; do
	bin=$out/fuzz_$name
	if [ ! -x "$bin" ] || [ ! -d "$here/corpus/$name" ]; then
		echo "run.sh: unknown fuzzer '$name'" >&2
		exit 2
	fi
	corpus=$work/$name
	mkdir -p "$corpus" "$arts/$name"
	cp "$here/corpus/$name"/* "$corpus/"
	log=$arts/$name.log
	echo "  FUZZ     $name (${secs}s)"
	rc=0
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$arts/$name/" \
		"$corpus" >"$log" 2>&1 || rc=$?

	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
	cov=$(printf '%s\n' "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
	line="$name: runs ${runs:-?}, ${eps:-?} exec/s, cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}"
	if [ "$rc" -ne 0 ]; then
		failed=1
		what=$(grep -m 1 -E '^(==[0-9]+==ERROR|SUMMARY): |runtime error:|ALARM: working on|out-of-memory' "$log" || true)
		input=
		for f in "$arts/$name"/*; do
			if [ -e "$f" ]; then
				input=$f
				break
			fi
		done
		line="$line: FAILED (exit $rc) ${what:-?}; input ${input:-?}, log $log"
	else
		line="$line: ok"
	fi
	summary="$summary$line
"
done

printf '%s' "$summary"
if [ "$failed" -ne 0 ]; then
	echo "run.sh: findings kept in $arts" >&2
	exit 1
fi
[ -n "${FUZZ_ARTIFACTS:-}" ] || rm -rf "$arts"
exit 0
