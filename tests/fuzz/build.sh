#!/bin/sh
# Build fetchd's libFuzzer harnesses with Debian's clang:
#   tests/fuzz/build.sh [OUTDIR]        (default: tests/fuzz/out)
# Each harness is compiled together with the src/*.c files it needs, with
# ASan, UBSan (aborting) and libFuzzer. Works from any directory.
# Lists held in variables (packages, flags, sources) are split on purpose.
# shellcheck disable=SC2086
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=${1:-$here/out}

# The compiler and libFuzzer's runtime (libclang_rt.fuzzer) come from
# Debian; this script never installs anything (scripts/test does).
need=
for pkg in clang libclang-rt-14-dev; do
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
		need="$need $pkg"
done
if [ -n "$need" ]; then
	echo "build.sh: missing$need; install with: apt-get install$need" >&2
	exit 1
fi

# The version, from its one home: AC_INIT in configure.ac.
version=$(sed -n 's/^AC_INIT(\[fetchd\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
[ -n "$version" ] || {
	echo "build.sh: no version in $top/configure.ac" >&2
	exit 1
}

CC=${FUZZ_CC:-clang}
DEPS="jansson libcurl inih uchardet"
pkg-config --exists $DEPS || {
	echo "build.sh: missing development packages for: $DEPS" >&2
	exit 1
}

SAN="-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=c11 -D_GNU_SOURCE -I$top/src -g -O1 $SAN -fno-omit-frame-pointer
	-Wall -Wextra $(pkg-config --cflags $DEPS)"
LIBS=$(pkg-config --libs $DEPS)

mkdir -p "$out"

# build NAME SRC...: tests/fuzz/fuzz_NAME.c plus src/SRC.c -> OUTDIR/fuzz_NAME
build() {
	name=$1
	shift
	srcs=
	for s in "$@"; do
		srcs="$srcs $top/src/$s.c"
	done
	echo "  CCLD     $out/fuzz_$name"
	$CC '-DSYSCONFDIR="/etc"' "-DPACKAGE_VERSION=\"$version\"" $CFLAGS -o "$out/fuzz_$name" "$here/fuzz_$name.c" $srcs $LIBS
}

CONFIG_SRCS="config units netguard log capacity retry"
build request request url base64 $CONFIG_SRCS
build config $CONFIG_SRCS
build links links charset
build charset charset
build jsonw jsonw budget
build jsoncopy jsoncopy jsonw budget charset
