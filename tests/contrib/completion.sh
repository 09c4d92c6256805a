#!/bin/sh
# Checks the completions for instantctl: bash (syntax, and completions computed
# by sourcing it in a plain bash), zsh and fish (syntax when the shell is
# installed; fish's completions computed too), and that all three offer the
# same commands.
set -eu
: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$srcdir/..}"
f=$top_srcdir/contrib/bash-completion/instantctl
zf=$top_srcdir/contrib/zsh-completion/_instantctl
ff=$top_srcdir/contrib/fish-completion/instantctl.fish

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
	c instantctl status --
	c instantctl forget ""
	c instantctl forget --
	c instantctl forget notes ""
	c instantctl cache ""
	c instantctl cache export ""
	c instantctl cache clear w
	c instantctl log-level ""
	c instantctl log-level d
	c instantctl doctor ""
	complete -p instantctl
' sh "$f") || fail "sourcing $f failed"

commands='status profiles forget cache query watch transact mutations rooms login logout whoami auth doctor log-level'
expect="$commands
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


--watch --count --help
notes work
--discard-queued --help

export clear
notes work
work
error warning notice info debug
debug
notes work
complete -F _instantctl instantctl"
if [ "$out" != "$expect" ]; then
	printf 'got:\n%s\nwant:\n%s\n' "$out" "$expect" >&2
	fail "unexpected bash completions"
fi

# The same commands in every shell, in the order bash lists them.
sorted() { tr ' ' '\n' | sed '/^$/d' | sort; }
want=$(printf '%s\n' "$commands" | sorted)
zcmds=$(sed -n '/^	commands=(/,/^	)/s/^		'"'"'\([a-z-]*\):.*/\1/p' "$zf" | sorted)
[ "$zcmds" = "$want" ] || fail "zsh offers other commands than bash: $(echo $zcmds)"
fcmds=$(sed -n 's/^set -l commands //p' "$ff" | sorted)
[ "$fcmds" = "$want" ] || fail "fish's command list differs from bash's: $(echo $fcmds)"
fdescribed=$(sed -n 's/.*__fish_seen_subcommand_from $commands" -a \([a-z-]*\) -d.*/\1/p' "$ff" | sorted)
[ "$fdescribed" = "$want" ] || fail "fish describes other commands than bash: $(echo $fdescribed)"

if command -v zsh >/dev/null 2>&1; then
	zsh -n "$zf" || fail "syntax error in $zf"
else
	echo "completion: zsh not installed, its syntax is not checked"
fi
if command -v fish >/dev/null 2>&1; then
	fish --no-execute "$ff" || fail "syntax error in $ff"
	fc() { XDG_CONFIG_HOME=$tmp HOME=$tmp fish --no-config -c "source $ff; complete -C '$1'" | cut -f1 | tr '\n' ' ' | sed 's/ $//'; }
	got=$(fc 'instantctl ' | sorted)
	[ "$got" = "$want" ] || fail "fish completes other commands: $(echo $got)"
	[ "$(fc 'instantctl cache ')" = "clear export" ] || fail "fish: cache: $(fc 'instantctl cache ')"
	[ "$(fc 'instantctl forget ')" = "notes work" ] || fail "fish: forget: $(fc 'instantctl forget ')"
	[ "$(fc 'instantctl query --policy ')" = "cache-first cache-only network-only" ] ||
		fail "fish: policy: $(fc 'instantctl query --policy ')"
else
	echo "completion: fish not installed, its completions are not checked"
fi
echo "completion: ok"
