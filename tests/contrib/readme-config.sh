#!/bin/sh
# The README's example configuration, verbatim: instantd --check-config accepts it
# (end-of-line comments are comments), and the daemon starts with it and serves
# its profile. Only --server differs, pointing the sync socket at loopback.
set -u
b=${top_builddir:-..}
s=${top_srcdir:-../..}
dir=$(mktemp -d /tmp/readme-config-XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && cat "$dir/log"; exit 1; }

export HOME="$dir/home" XDG_CONFIG_HOME="$dir/home/.config" XDG_RUNTIME_DIR="$dir/run" \
	XDG_STATE_HOME="$dir/home/.local/state"
unset INSTANTD_SOCKET NOTIFY_SOCKET LISTEN_FDS JOURNAL_STREAM INSTANT_APP_ID
mkdir -p "$XDG_CONFIG_HOME/instantd" "$XDG_RUNTIME_DIR"
chmod 700 "$XDG_RUNTIME_DIR"
conf=$XDG_CONFIG_HOME/instantd/instantd.conf
# The first ```ini block of the README, as a user would copy it.
sed -n '/^```ini$/,/^```$/p' "$s/README.md" | sed '1d;$d' >"$conf"
grep -q '^\[profile notes\]' "$conf" || fail "no example configuration found in README.md"
grep -q ' # ' "$conf" || fail "the README example no longer has an end-of-line comment to test"
(umask 077; echo "refresh-token-of-notes" >"$HOME/.config/instantd/notes.token")

"$b/daemon/instantd" --check-config >"$dir/out" 2>"$dir/err" || { cat "$dir/err"; fail "--check-config rejects the README example"; }
grep -qx "token-file = $HOME/.config/instantd/notes.token" "$dir/out" || { cat "$dir/out"; fail "token-file did not resolve to the file"; }
grep -qx "server = wss://instant.example.org/runtime/session" "$dir/out" || { cat "$dir/out"; fail "server did not resolve to the URL"; }
grep -qx "app-id = 8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b" "$dir/out" || { cat "$dir/out"; fail "app-id"; }

# A broken line is reported with file and line, exit 1.
printf 'server = ws://a b\n' >"$dir/bad.conf"
"$b/daemon/instantd" --check-config --config "$dir/bad.conf" >/dev/null 2>"$dir/err"
[ $? = 1 ] || fail "--check-config accepted a bad file"
grep -q "$dir/bad.conf:1: " "$dir/err" || { cat "$dir/err"; fail "no file:line in the error"; }

# Start it as written (a closed loopback port stands in for the server).
"$b/daemon/instantd" --server ws://127.0.0.1:9/runtime/session >"$dir/log" 2>&1 &
pid=$!
sock=$XDG_RUNTIME_DIR/instantd/socket
for i in $(seq 1 400); do
	[ -S "$sock" ] && break
	kill -0 "$pid" 2>/dev/null || fail "instantd exited at start"
	sleep 0.05
done
[ -S "$sock" ] || fail "no socket"
"$b/ipc/instantctl" --json --profile notes status >"$dir/out" 2>&1 || { cat "$dir/out"; fail "status of profile notes"; }
grep -q '"profile":"notes"' "$dir/out" || { cat "$dir/out"; fail "status lacks the profile"; }
grep -q '"app-id":"8f3a2b1c-4d5e-4f60-9a7b-1c2d3e4f5a6b"' "$dir/out" || { cat "$dir/out"; fail "status lacks the app id"; }
kill "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] || fail "instantd stopped with $rc"
echo "ok - the README's example configuration starts the daemon"
