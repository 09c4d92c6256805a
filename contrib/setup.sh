#!/bin/sh
# Set up a Debian 12 machine for instantd and optionally build, test or demo it.
#   contrib/setup.sh                 install build and test dependencies only
#   contrib/setup.sh check [ARGS]    ... then build in build/ and run every test
#                                    (ARGS go to configure; --enable-sanitizers
#                                    builds in build-sanitizers/ instead)
#   contrib/setup.sh demo            ... then build and run the offline demo
# Safe to run again: installed packages and node modules are left as they are.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-deps}
[ $# -gt 0 ] && shift

APT_PACKAGES="build-essential autoconf automake libtool pkg-config
libsqlite3-dev libwebsockets-dev libcjson-dev libssl-dev libsystemd-dev
systemd sqlite3 openssl ca-certificates nodejs npm clang valgrind python3
groff-base man-db zsh fish"

need_pkgs=""
for p in $APT_PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		need_pkgs="$need_pkgs $p"
done
# A machine whose Node came from elsewhere has node and npm already; do not fight it.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
	need_pkgs=$(echo "$need_pkgs" | tr ' ' '\n' | grep -vx -e nodejs -e npm | tr '\n' ' ')
fi
if [ -n "$(echo "$need_pkgs" | tr -d ' ')" ]; then
	echo "setup: installing:$need_pkgs"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need_pkgs
fi

# Node packages for the mock server and the differential tests, from the lockfile.
if [ ! -f "$top/tests/node_modules/.package-lock.json" ] ||
   ! cmp -s "$top/tests/package-lock.json" "$top/tests/node_modules/.instantd-lock"; then
	(cd "$top/tests" && npm ci --no-audit --no-fund --loglevel=error)
	cp "$top/tests/package-lock.json" "$top/tests/node_modules/.instantd-lock"
fi

build() { # build DIR [configure args]
	dir=$1; shift
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
	mkdir -p "$top/$dir"
	cd "$top/$dir"
	[ -f Makefile ] || "$top/configure" --enable-werror "$@"
	make -j"$(nproc)"
}

case "$mode" in
deps)
	;;
check)
	dir=build
	for a in "$@"; do [ "$a" = --enable-sanitizers ] && dir=build-sanitizers; done
	build "$dir" "$@"
	make -j"$(nproc)" check
	;;
demo)
	build build
	exec "$top/contrib/demo.sh" "$top/build"
	;;
*)
	echo "usage: $0 [deps | check [configure args] | demo]" >&2
	exit 2
	;;
esac
