#!/bin/sh
# instantctl against the ipc-echo stand-in: every command, --json, --help,
# and the meaning of each exit code.
set -u
b=${top_builddir:-..}
ctl=$b/ipc/instantctl
echo_bin=$b/tests/ipc-echo
dir=$(mktemp -d /tmp/ipc-test-XXXXXX)
sock=$dir/run/socket
fail=0
echo_pid=
cleanup() {
	[ -n "$echo_pid" ] && kill "$echo_pid" 2>/dev/null && wait "$echo_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

check() {	# check WANT_RC DESCRIPTION -- command...
	want=$1; what=$2; shift 3
	"$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	if [ "$rc" != "$want" ]; then
		echo "FAIL: $what: exit $rc, wanted $want"; cat "$dir/out" "$dir/err"
		fail=1
	fi
}
grep_out() {	# grep_out DESCRIPTION PATTERN
	if ! grep -q -e "$2" "$dir/out"; then
		echo "FAIL: $1: output lacks '$2'"; cat "$dir/out"; fail=1
	fi
}

"$echo_bin" "$sock" >"$dir/ready" &
echo_pid=$!
for i in $(seq 1 200); do
	grep -q ready "$dir/ready" 2>/dev/null && break
	sleep 0.05
done

C="$ctl --socket $sock --app app-1"
check 0 "help" -- "$ctl" --help
grep_out "help" "Exit status"
for cmd in status profiles forget cache query watch transact mutations rooms auth; do
	check 0 "$cmd --help" -- "$ctl" "$cmd" --help
	grep_out "$cmd --help" "Usage: instantctl"
done
check 2 "forget without a profile" -- "$ctl" --socket "$sock" forget
check 2 "cache without an action" -- "$ctl" --socket "$sock" cache notes
check 2 "status --watch --count 0" -- "$ctl" --socket "$sock" status --watch --count 0
check 2 "no command" -- "$ctl"
check 2 "unknown command" -- $C frob
check 2 "no app id" -- env -u INSTANT_APP_ID "$ctl" --socket "$sock" mutations
check 0 "status without app id" -- env -u INSTANT_APP_ID "$ctl" --socket "$sock" status
check 2 "bad query JSON" -- $C query '{nope'
check 2 "bad policy" -- $C query --policy sometimes '{}'
check 2 "ops not an array" -- $C transact '{}'
check 3 "unreachable" -- "$ctl" --socket "$dir/none" --app a status

check 0 "status" -- $C status
grep_out "status" "state:      offline, retrying for 3 min (since "
grep_out "status" "queue:      1,200 pending, 300 sent, 1 failed"
grep_out "status" "replay:     replaying 300 of 1,200"
grep_out "status" "user:       not signed in"
check 0 "status from env" -- env INSTANT_APP_ID=app-2 INSTANTD_SOCKET="$sock" "$ctl" status
check 0 "status --json" -- $C --json status
grep_out "status --json" '"op":"status"'
check 0 "query" -- $C query --policy cache-only '{"goals":{}}'
grep_out "query" "from cache"
echo '{"goals":{}}' >"$dir/q"
check 0 "query from stdin" -- sh -c "$C query - <$dir/q"
check 0 "watch" -- $C watch --count 2 '{"goals":{}}'
grep_out "watch" "# refresh-ok"
check 0 "watch --json" -- $C --json watch -n 1 '{"goals":{}}'
grep_out "watch --json" '"op":"add-query-ok"'
check 0 "transact" -- $C transact '[["update","goals","id-1",{"title":"x"}]]'
grep_out "transact" "queued: m-1"
check 0 "transact --wait" -- $C transact --wait '[["update","goals","id-1",{}]]'
grep_out "transact --wait" "confirmed: tx 42"
echo '[["add-triple","e","a","v"]]' >"$dir/steps"
check 0 "transact --steps from stdin" -- sh -c "$C transact --steps <$dir/steps"
check 0 "mutations" -- $C mutations
grep_out "mutations" "m-1  2 min ago    failed    update goals g-1: title, done; link goals g-1: todos  -- rejected: permission-denied"
check 0 "mutations retry" -- $C mutations retry m-1
check 1 "mutations retry missing" -- $C mutations retry missing
grep -q "not-found" "$dir/err" || { echo "FAIL: error type not shown"; fail=1; }
check 0 "mutations discard" -- $C mutations discard m-1
check 0 "rooms join" -- $C rooms join room-1 --presence '{"name":"me"}' --count 1
grep_out "rooms join" "presence in room-1"
grep_out "rooms join peers" "peer-1"
check 0 "rooms broadcast" -- $C rooms broadcast room-1 hello '{"a":1}'

check 0 "auth send-code" -- $C auth send-code ada@example.com
check 0 "auth sign-in code" -- $C auth sign-in code ada@example.com 123456
grep_out "auth sign-in code" "user.email: ada@example.com"
check 1 "auth sign-in wrong code" -- $C auth sign-in code ada@example.com 000000
grep -q "auth-failed" "$dir/err" || { echo "FAIL: auth-failed not shown"; fail=1; }
check 0 "auth sign-in guest" -- $C auth sign-in guest
echo "tok-123" >"$dir/tok"
check 0 "auth sign-in token" -- sh -c "$C auth sign-in token <$dir/tok"
if grep -q "tok-123" "$dir/out" "$dir/err"; then echo "FAIL: token echoed"; fail=1; fi
check 0 "auth whoami" -- $C auth whoami
grep_out "auth whoami" "user.id: u-1"
check 0 "auth sign-out" -- $C auth sign-out
check 2 "auth nonsense" -- $C auth frob
check 0 "auth --help" -- $C auth --help

# The daemon goes away: exit 3 while watching.
kill "$echo_pid"; wait "$echo_pid" 2>/dev/null; echo_pid=
check 3 "daemon gone" -- $C status

# Timeout: a socket that never answers.
"${NODE:-node}" -e "require('net').createServer(() => {}).listen(process.argv[1]); setTimeout(() => process.exit(0), 30000)" "$dir/mute" &
mute=$!
for i in $(seq 1 100); do [ -S "$dir/mute" ] && break; sleep 0.05; done
check 4 "timeout" -- "$ctl" --socket "$dir/mute" --app a --timeout 200 status
kill $mute 2>/dev/null; wait $mute 2>/dev/null

# Every error type of the protocol has a cause and fix in instantctl's table.
src=${top_srcdir:-../..}
types=$(sed -n 's/^| `\([a-z0-9-]*\)` | .*/\1/p' "$src/ipc/PROTOCOL.md")
[ "$(echo "$types" | wc -w)" -ge 22 ] || { echo "FAIL: no error table in PROTOCOL.md"; fail=1; }
for t in $types; do
	grep -q "{ \"$t\", " "$src/ipc/instantctl.c" || { echo "FAIL: instantctl has no text for error type $t"; fail=1; }
done

exit $fail
