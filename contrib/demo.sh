#!/bin/sh
# The offline demo: instantd against a local mock Instant server. Subscribe, go
# offline, write, restart the daemon, come back online, watch the writes land.
# Usage: contrib/demo.sh BUILD_DIR   (contrib/setup.sh demo builds and calls it)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
instantd=$build/daemon/instantd
ctl=$build/ipc/instantctl
mockctl="node $top/tests/mock/ctl.mjs"
app=11111111-1111-4111-8111-111111111111
work=$(mktemp -d /tmp/instantd-demo.XXXXXX)
export XDG_RUNTIME_DIR=$work/run XDG_STATE_HOME=$work/state XDG_CONFIG_HOME=$work/config
export INSTANT_APP_ID=$app
mkdir -p "$XDG_RUNTIME_DIR" "$XDG_CONFIG_HOME/instantd"
printf 'backoff-base-ms = 100\nbackoff-cap-ms = 1000\n' > "$XDG_CONFIG_HOME/instantd/instantd.conf"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
status() { "$ctl" status | grep -E '^(state|app-status|last-error|queue\.pending|queue\.failed):' | sed 's/^/   /'; }
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT INT TERM

say "starting the mock Instant server"
node "$top/tests/mock/server.mjs" --port 0 --state "$work/mock-state.json" > "$work/mock.out" &
pids="$pids $!"
while [ ! -s "$work/mock.out" ]; do sleep 0.1; done
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$work/mock.out")
cport=$(sed -n 's/.*"controlPort":\([0-9]*\).*/\1/p' "$work/mock.out")
echo "mock server at $url"

start_daemon() {
	"$instantd" --server "$url" > "$work/instantd.log" 2>&1 &
	dpid=$!
	pids="$pids $dpid"
	while ! "$ctl" status >/dev/null 2>&1; do sleep 0.1; done
}

say "starting instantd (socket $XDG_RUNTIME_DIR/instantd/socket)"
start_daemon
status

watch() {
	"$ctl" watch '{"todos":{}}' > "$work/watch.out" 2>&1 &
	wpid=$!
	pids="$pids $wpid"
	sleep 1
}

say "program A subscribes to {\"todos\":{}}"
watch

say "writing one todo while online"
"$ctl" transact '[["update","todos","6f1c8c2e-1f0a-4b4e-9c55-0a1b2c3d4e5f",{"text":"buy milk","done":false}]]'
sleep 1

say "the network goes away (the mock refuses connections)"
$mockctl "$cport" refuse '{"ms":-1,"drop":true}' > /dev/null
sleep 1
status

say "three writes while offline: each is acknowledged once it is on disk"
"$ctl" transact '[["update","todos","6f1c8c2e-1f0a-4b4e-9c55-0a1b2c3d4e5f",{"done":true}]]'
"$ctl" transact '[["update","todos","a2b3c4d5-e6f7-4a8b-9c0d-1e2f3a4b5c6d",{"text":"walk the dog","done":false}]]'
"$ctl" transact '[["update","todos","b3c4d5e6-f7a8-4b9c-8d0e-2f3a4b5c6d7e",{"text":"call mum","done":false}]]'
"$ctl" mutations

say "instantd is killed with SIGKILL and started again, still offline"
kill -9 "$dpid"; wait "$dpid" 2>/dev/null || true
start_daemon
"$ctl" mutations
say "reads still work: the cached result with the pending writes layered on top"
"$ctl" query --policy cache-only '{"todos":{}}'
watch

say "the network comes back"
$mockctl "$cport" refuse '{"ms":0}' > /dev/null
i=0
while "$ctl" --json mutations | grep -q mutation-id; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "writes did not land"; exit 1; }
	sleep 0.2
done
status

say "what the server has now"
$mockctl "$cport" dump '{}' | node -e '
let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const d=JSON.parse(s);
const lab=Object.fromEntries(d.attrs.map(a=>[a.id,a["forward-identity"].slice(1).join(".")]));
for(const t of d.triples) if((lab[t[1]]||"").startsWith("todos.")) console.log(t[0].slice(0,8), lab[t[1]], JSON.stringify(t[2]));})'

say "what program A sees now: the server's result, no pending writes"
sleep 1
kill "$wpid" 2>/dev/null || true
awk 'BEGIN{RS="# "} END{print "# " $0}' "$work/watch.out"
say "done: every offline write landed, in order, after a kill -9"
