#!/bin/sh
# Checks the man pages: groff -man -ww must print no warning, man -l must
# render them, and instantd.conf(5) must document every key config.c knows.
set -eu
: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$srcdir/..}"

fail() { echo "man: $*" >&2; exit 1; }
command -v groff >/dev/null 2>&1 || fail "groff not found (install the Debian package groff-base)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/instantd-man.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mandir=$top_srcdir/contrib/man

for page in instantd.8 instantctl.1 instantd.conf.5; do
	f=$mandir/$page
	[ -f "$f" ] || fail "$f is missing"
	groff -man -Tutf8 -ww -z "$f" >"$tmp/out" 2>"$tmp/err" || fail "groff failed on $page"
	if [ -s "$tmp/err" ]; then
		cat "$tmp/err" >&2
		fail "groff warned about $page"
	fi
	if command -v man >/dev/null 2>&1; then
		MANWIDTH=80 man --warnings=w -l "$f" >"$tmp/out" 2>"$tmp/err" ||
			fail "man -l failed on $page"
		if [ -s "$tmp/err" ]; then
			cat "$tmp/err" >&2
			fail "man -l warned about $page"
		fi
		grep -q 'SEE ALSO' "$tmp/out" || fail "man -l rendered no SEE ALSO section for $page"
	fi
	# The page's section matches its file name.
	sect=${page##*.}
	grep -q "^\.TH [^ ]* $sect " "$f" || fail "$page: .TH does not say section $sect"
done

# Every configuration key (global and profile) is documented.
keys=$(sed -n '/^static const char \*const config_\(global\|profile\)_keys/,/};/p' \
	"$top_srcdir/daemon/config.c" | grep -o '"[a-z-]*"' | tr -d '"')
[ -n "$keys" ] || fail "found no keys in daemon/config.c"
n=0
for k in $keys; do
	esc=$(printf '%s' "$k" | sed 's/-/\\\\-/g')
	grep -q "^\.BI \"$esc = \"" "$mandir/instantd.conf.5" ||
		fail "instantd.conf(5) does not document the key '$k'"
	grep -Eq "^#?$k = " "$top_srcdir/contrib/instantd.conf.example" ||
		fail "instantd.conf.example does not mention the key '$k'"
	n=$((n + 1))
done
[ "$n" -ge 23 ] || fail "only $n keys found in daemon/config.c"

# instantctl(1) describes every command and global option instantctl has
# (the tagged paragraph heading after .TP names it).
tp=$(awk 'prev == ".TP" { print } { prev = $0 }' "$mandir/instantctl.1")
for c in status profiles forget query watch transact mutations rooms login logout whoami auth doctor log\\\\-level; do
	printf '%s\n' "$tp" | grep -q "^\.B[IR]\? \"\?$c\( \|\"\|\$\)" ||
		fail "instantctl(1) does not describe the command '$c'"
done
for sc in "rooms join" "rooms broadcast" "mutations retry" "mutations discard" "cache export" "cache clear"; do
	printf '%s\n' "$tp" | grep -q "^\.B[IR]\? \"$sc\"" ||
		fail "instantctl(1) does not describe '$sc'"
done
for o in socket app profile api\\\\-uri server token\\\\-env json timeout help version; do
	printf '%s\n' "$tp" | grep -q "^\.B[IR]\? .*\\\\-\\\\-$o\( \|\$\)" ||
		fail "instantctl(1) does not describe --$o"
done
# ... and nothing it does not have.
for gone in '^\.BI\? broadcast' '^\.B \\-\\-wait$'; do
	if printf '%s\n' "$tp" | grep -q "$gone"; then
		fail "instantctl(1) describes something instantctl lacks ($gone)"
	fi
done
for o in config socket state\\\\-dir verbose help version foreground check\\\\-config; do
	grep -q "\\\\-\\\\-$o" "$mandir/instantd.8" || fail "instantd(8) does not describe --$o"
done
echo "man: ok ($n configuration keys documented)"
