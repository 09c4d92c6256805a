#!/bin/sh
# `make install` puts the Python module where the installed prefix's Python
# finds it: install into the prefix of a fresh virtual environment and import
# it with that environment's python, with no PYTHONPATH.
set -eu
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
PYTHON=${PYTHON:-python3}
fail() { echo "python-install: $*" >&2; exit 1; }
[ "$PYTHON" != : ] || fail "configure found no Python 3.7 or newer"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/instantd-pyinstall.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
"$PYTHON" -m venv --without-pip "$tmp/venv" || fail "cannot create a virtual environment"
${MAKE:-make} -s -C "$top_builddir/contrib" install-pythonPYTHON prefix="$tmp/venv" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log" >&2; fail "installing the module failed"; }
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP
out=$(cd "$tmp" && "$tmp/venv/bin/python" -c 'import instantd; print(instantd.__file__)') ||
	fail "the prefix's python cannot import instantd"
case $out in
"$tmp/venv/"*) ;;
*) fail "imported $out, not the installed module" ;;
esac
echo "python-install: ok ($out)"
