#!/bin/sh
# Runs the Python client's unit test (python-client.py) with python3.
set -eu
: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$srcdir/..}"
export top_srcdir
PYTHON=${PYTHON:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
	echo "python-client: $PYTHON not found (install python3)" >&2
	exit 1
fi
exec "$PYTHON" -B "$srcdir/contrib/python-client.py"
