#!/bin/sh
# The README's first command ends in contrib/demo.sh: run it as a newcomer would and
# check that the offline writes landed.
set -eu
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! "$top_srcdir/contrib/demo.sh" "$top_builddir" > "$out" 2>&1; then
	cat "$out"
	echo "demo.sh failed"
	exit 1
fi
for want in 'walk the dog' 'call mum' 'done: every offline write landed'; do
	grep -q "$want" "$out" || { cat "$out"; echo "demo output lacks: $want"; exit 1; }
done
# The server must hold the three offline writes (the dump section).
[ "$(grep -c '^[0-9a-f]\{8\} todos.text' "$out")" -eq 3 ] || { cat "$out"; echo "the server lacks a todo"; exit 1; }
echo "ok - the demo runs and its offline writes land"
