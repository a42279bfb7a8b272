#!/bin/sh
# README.md's sample outputs match a real run. scripts/readme-samples
# --check starts tests/upstream and ./fetchd -c etc/fetchd.conf on free
# 127.0.0.1 ports, runs each marked sample's curl command (<!-- sample: NAME
# --> before its block) and fails, with a diff, when an output in the README
# is stale; scripts/readme-samples --update rewrites them. Then the same
# check of a copy with one sample edited must fail, naming it, so a checker
# that passes everything cannot hide stale samples. Skipped (77) without
# python3 or curl (scripts/test installs curl).
set -u
srcdir=${srcdir:-.}
for tool in python3 curl; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "$tool not installed: the README samples are not checked"
		exit 77
	fi
done
tmp=$(mktemp -d /tmp/fetchd-readme-samples-XXXXXX)
pid=""
# the checker stops its own fetchd and upstream on SIGTERM; stop it by pid
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid"; fi; rm -rf "$tmp"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# run the checker on README $1, its output to $2; its exit status
samples() {
	python3 "$srcdir/scripts/readme-samples" --check --build "$(pwd)" --readme "$1" >"$2" 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	pid=""
	return $rc
}

if ! samples "$srcdir/README.md" "$tmp/out"; then
	cat "$tmp/out"
	echo "FAIL: README.md's samples are stale (scripts/readme-samples --update, then review)"
	exit 1
fi
cat "$tmp/out"

# a copy with the probes' first output changed: the check must fail on it
sed '0,/^{"status":"ok"}$/s//{"status":"stale"}/' "$srcdir/README.md" >"$tmp/README.md"
if cmp -s "$srcdir/README.md" "$tmp/README.md"; then
	echo "FAIL: no {\"status\":\"ok\"} line in README.md to edit"
	exit 1
fi
if samples "$tmp/README.md" "$tmp/out"; then
	echo "FAIL: scripts/readme-samples passed a README with an edited sample"
	exit 1
fi
if ! grep -q "sample 'probes-and-stats'.* is stale" "$tmp/out" ||
	! grep -q '^-{"status":"stale"}' "$tmp/out"; then
	cat "$tmp/out"
	echo "FAIL: the edited sample was not reported as stale"
	exit 1
fi
echo "an edited sample is reported stale"
exit 0
