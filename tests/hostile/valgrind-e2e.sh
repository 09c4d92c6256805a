#!/bin/sh
# valgrind-e2e.sh: the end-to-end scenarios test-sync and test-offline
# (E2E_OFFLINE_WRITES=100) with the daemon under valgrind (memcheck, definite
# leaks count as errors). Slow, so not part of make check: `make valgrind`.
# Exit 0 when every scenario passed and valgrind found nothing.
set -u
: "${top_srcdir:?}" "${top_builddir:?}"
NODE=${NODE:-node}
out=$(mktemp -d "${TMPDIR:-/tmp}/instantd-valgrind-XXXXXX")
command -v valgrind >/dev/null || { echo "valgrind-e2e: valgrind is not installed" >&2; exit 77; }
export top_srcdir top_builddir
export srcdir="${srcdir:-$top_srcdir/tests}"
export INSTANTD_NODE_MODULES="${INSTANTD_NODE_MODULES:-$top_srcdir/tests/node_modules}"
export E2E_OFFLINE_WRITES="${E2E_OFFLINE_WRITES:-100}"
# valgrind's own exit code 99 means "errors"; the logs, one per daemon process,
# say which. A daemon killed with -9 leaves a log without a summary, so the
# logs are searched for error reports too.
export INSTANTD_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --num-callers=30 --log-file=$out/valgrind.%p.log"

fail=0
for t in test-sync test-offline; do
	echo "valgrind-e2e: $t"
	if ! "$NODE" "$top_srcdir/tests/e2e/$t.mjs" >"$out/$t.log" 2>&1; then
		echo "valgrind-e2e: $t FAILED (log: $out/$t.log)"
		tail -n 40 "$out/$t.log"
		fail=1
	fi
	grep '^ok\|^not ok' "$out/$t.log" | sed 's/^/    /'
done

logs=0 bad=0
for f in "$out"/valgrind.*.log; do
	[ -f "$f" ] || continue
	logs=$((logs + 1))
	if grep -q 'ERROR SUMMARY: [1-9]' "$f" ||
	   grep -Eq '^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|[0-9,]+ bytes in [0-9,]+ blocks are definitely lost)' "$f"; then
		bad=$((bad + 1))
		echo "valgrind-e2e: errors in $f:"
		grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall|Mismatched|Source|[0-9,]+ bytes in)|ERROR SUMMARY' "$f" | head -n 20
	fi
done
summaries=$(grep -h 'ERROR SUMMARY' "$out"/valgrind.*.log 2>/dev/null | sed 's/^==[0-9]*== //' | sort | uniq -c)
echo "valgrind-e2e: $logs daemon processes ran under valgrind; $bad with errors"
echo "$summaries" | sed 's/^/    /'
[ "$logs" -gt 0 ] || { echo "valgrind-e2e: no valgrind logs: was the wrapper used?"; fail=1; }
[ "$bad" -eq 0 ] || fail=1
[ "$fail" -eq 0 ] && rm -rf "$out" || echo "valgrind-e2e: logs kept in $out"
exit $fail
