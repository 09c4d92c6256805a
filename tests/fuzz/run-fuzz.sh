#!/bin/sh
# run-fuzz.sh: build the libFuzzer targets in a build directory of their own
# (clang, ASan + UBSan everywhere, coverage in every library) and run each for
# FUZZ_SECONDS (default 60). Exit 0 when no target crashed.
#
#   tests/fuzz/run-fuzz.sh [BUILD_DIR]      (default: $TMPDIR/instantd-fuzz-build)
#
# A crash leaves its input in BUILD_DIR/tests/fuzz-out/<target>/crash-*: fix
# the bug, then commit the input under tests/fuzz/crashes/<target>/ so the
# replay tests of make check keep it fixed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=${1:-${TMPDIR:-/tmp}/instantd-fuzz-build}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

command -v clang >/dev/null || { echo "run-fuzz.sh: clang is needed" >&2; exit 1; }
[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
mkdir -p "$build"
cd "$build"
if [ ! -f config.status ]; then
	# fuzzer-no-link instruments the libraries for coverage; the targets
	# themselves get -fsanitize=fuzzer from tests/fuzz.mk.
	CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link" \
		"$top/configure" --enable-fuzzing --enable-sanitizers \
		--with-node-modules="$top/tests/node_modules" >configure.log 2>&1 ||
		{ tail -n 30 configure.log; exit 1; }
fi
make -j"$jobs" -C store >/dev/null
make -j"$jobs" -C ipc >/dev/null
make -j"$jobs" -C daemon libupstream.la libsupport.la >/dev/null
make -C tests fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
