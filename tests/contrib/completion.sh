#!/bin/sh
# Checks the bash completion for instantctl: syntax (bash -n) and a few
# completions computed by sourcing it in a plain bash.
set -eu
: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$srcdir/..}"
f=$top_srcdir/contrib/bash-completion/instantctl

fail() { echo "completion: $*" >&2; exit 1; }
command -v bash >/dev/null 2>&1 || fail "bash not found"
bash -n "$f" || fail "syntax error in $f"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/instantd-completion.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/instantd"
printf '[profile notes]\napp-id = x\n\n[ profile  work ]   # a comment\napp-id = y\n' > "$tmp/instantd/instantd.conf"

out=$(XDG_CONFIG_HOME=$tmp bash --norc --noprofile -c '
	. "$1"
	c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _instantctl; echo "${COMPREPLY[*]}"; }
	c instantctl ""
	c instantctl --app x mu
	c instantctl mutations ""
	c instantctl --j
	c instantctl --app ""
	c instantctl --profile ""
	c instantctl -p n
	c instantctl status ""
	c instantctl --profile notes rooms ""
	c instantctl rooms join main --
	c instantctl rooms join main --presence ""
	c instantctl auth ""
	c instantctl auth sign-in ""
	c instantctl login --
	c instantctl query -p ""
	c instantctl query --policy cache-o
	c instantctl transact --
	c instantctl --timeout 5 w
	c instantctl broad
	c instantctl --w
	c instantctl log-level ""
	c instantctl log-level d
	c instantctl doctor ""
	complete -p instantctl
' sh "$f") || fail "sourcing $f failed"

expect='status query watch transact mutations rooms login logout whoami auth doctor log-level
mutations
list retry discard
--json

notes work
notes

join broadcast
--type --presence --count --help

send-code sign-in sign-out whoami
code guest token
--email --code --guest --token-file --help
cache-first network-only cache-only
cache-only
--steps --wait --help
watch whoami


error warning notice info debug
debug
notes work
complete -F _instantctl instantctl'
if [ "$out" != "$expect" ]; then
	printf 'got:\n%s\nwant:\n%s\n' "$out" "$expect" >&2
	fail "unexpected completions"
fi
echo "completion: ok"
