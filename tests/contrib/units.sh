#!/bin/sh
# Checks the systemd user units with systemd-analyze --user verify: the
# generated instantd.service (ExecStart pointed at the built binary) and
# instantd.socket, with the man pages they cite made findable, plus the
# settings the daemon relies on.
set -eu
: "${srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$srcdir/..}"
: "${top_builddir:=$top_srcdir}"

fail() { echo "units: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null 2>&1 ||
	fail "systemd-analyze not found (install the Debian package systemd)"
service=$top_builddir/contrib/instantd.service
socket=$top_srcdir/contrib/instantd.socket
isocket=$top_srcdir/contrib/instantd-instant.socket
binary=$top_builddir/daemon/instantd
[ -f "$service" ] || fail "$service is missing: run make in contrib/ first"
[ -x "$binary" ] || fail "$binary is missing: run make in daemon/ first"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/instantd-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# The generated unit names the configured bindir.
grep -Eq '^ExecStart=/[^ ]*/instantd$' "$service" ||
	fail "ExecStart in $service is not an absolute path to instantd: $(grep ExecStart= "$service")"

# Copies under their real names; the service runs the binary we just built.
mkdir -p "$tmp/units" "$tmp/runtime" "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8" "$tmp/config"
chmod 700 "$tmp/runtime"
sed "s|^ExecStart=.*|ExecStart=$(cd "$(dirname "$binary")" && pwd)/instantd|" "$service" \
	> "$tmp/units/instantd.service"
cp "$socket" "$tmp/units/instantd.socket"
cp "$isocket" "$tmp/units/instantd-instant.socket"
cp "$top_srcdir/contrib/man/instantctl.1" "$tmp/man/man1/"
cp "$top_srcdir/contrib/man/instantd.conf.5" "$tmp/man/man5/"
cp "$top_srcdir/contrib/man/instantd.8" "$tmp/man/man8/"

# Documentation=man:... is checked with man(1); without man-db installed the
# check cannot pass, so then the units are verified without that one line.
if ! command -v man >/dev/null 2>&1; then
	echo "units: man(1) not found: verifying without the Documentation= lines" >&2
	sed -i '/^Documentation=/d' "$tmp/units/instantd.service" "$tmp/units/instantd.socket" \
		"$tmp/units/instantd-instant.socket"
fi

# --user needs only XDG_RUNTIME_DIR (for %t), not a running user manager; it
# works as root in a container too. Output goes to a file: verify prints
# problems but does not always fail on them.
(
	cd "$tmp/units"
	XDG_RUNTIME_DIR=$tmp/runtime XDG_CONFIG_HOME=$tmp/config MANPATH=$tmp/man \
	SYSTEMD_LOG_LEVEL=notice \
		systemd-analyze --user verify "$tmp/units/instantd.socket" "$tmp/units/instantd-instant.socket" \
			"$tmp/units/instantd.service"
) >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out" >&2; fail "systemd-analyze --user verify failed"; }
if [ -s "$tmp/verify.out" ]; then
	cat "$tmp/verify.out" >&2
	fail "systemd-analyze --user verify reported problems"
fi

# A unit with an unknown key must fail the same check: proves that verify
# really parsed our files.
cp "$tmp/units/instantd.service" "$tmp/units/bogus.service"
echo "BogusDirective=1" >> "$tmp/units/bogus.service"
if (cd "$tmp/units" && XDG_RUNTIME_DIR=$tmp/runtime MANPATH=$tmp/man \
	systemd-analyze --user verify "$tmp/units/bogus.service") >"$tmp/bogus.out" 2>&1 &&
	! grep -q BogusDirective "$tmp/bogus.out"; then
	fail "verify accepted an unknown key; the check above proves nothing"
fi

# What the daemon and the docs depend on.
need() { grep -qx "$2" "$1" || fail "$(basename "$1") lacks '$2'"; }
for line in 'Type=notify' 'NotifyAccess=main' 'Restart=on-failure' 'WatchdogSec=30s' \
	'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK' \
	'Requires=instantd.socket' 'After=instantd.socket' 'UMask=0077' 'NoNewPrivileges=yes' \
	'Also=instantd.socket' 'WantedBy=default.target'; do
	need "$tmp/units/instantd.service" "$line"
done
for line in 'ListenStream=%t/instantd/socket' 'SocketMode=0600' 'DirectoryMode=0700' \
	'FileDescriptorName=ipc' 'WantedBy=sockets.target'; do
	need "$socket" "$line"
done
for line in 'ListenStream=%t/instantd/instant.sock' 'SocketMode=0600' 'DirectoryMode=0700' \
	'FileDescriptorName=instant' 'Service=instantd.service'; do
	need "$isocket" "$line"
done
need "$tmp/units/instantd.service" 'Sockets=instantd.socket instantd-instant.socket'
# Settings that need namespaces do not work in user units (systemd.exec(5)).
if grep -Eq '^(ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|ReadWritePaths|ProtectKernel[A-Za-z]*|PrivateNetwork|RemoveOnStop)=' \
	"$tmp/units/instantd.service" "$socket"; then
	fail "a unit uses a setting that needs a system manager or namespaces"
fi

# The drop-in's [Service] section appended to the unit: verified like the unit.
cat "$tmp/units/instantd.service" "$top_srcdir/contrib/instantd-sandbox.conf" \
	> "$tmp/units/instantd-sandboxed.service"
(
	cd "$tmp/units"
	XDG_RUNTIME_DIR=$tmp/runtime XDG_CONFIG_HOME=$tmp/config MANPATH=$tmp/man \
	SYSTEMD_LOG_LEVEL=notice \
		systemd-analyze --user verify "$tmp/units/instantd-sandboxed.service"
) >"$tmp/verify2.out" 2>&1 || { cat "$tmp/verify2.out" >&2; fail "the unit with instantd-sandbox.conf does not verify"; }
[ -s "$tmp/verify2.out" ] && { cat "$tmp/verify2.out" >&2; fail "the unit with instantd-sandbox.conf has problems"; }
# Settings that make a user unit fail at start with 218/CAPABILITIES.
if grep -Eq '^(CapabilityBoundingSet|AmbientCapabilities)=' "$tmp/units/instantd-sandboxed.service"; then
	fail "capability settings kill a user unit (218/CAPABILITIES)"
fi

# The exposure scores, as the user manager would rate them (offline: no
# running manager needed).
exposure() {
	XDG_RUNTIME_DIR=$tmp/runtime systemd-analyze security --user --offline=true "$1" 2>/dev/null |
		sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
base=$(exposure "$tmp/units/instantd.service")
boxed=$(exposure "$tmp/units/instantd-sandboxed.service")
echo "units: systemd-analyze security --user: instantd.service $base, with instantd-sandbox.conf $boxed"
[ -n "$base" ] && [ -n "$boxed" ] || fail "systemd-analyze security printed no exposure level"
# The drop-in must be worth installing.
awk -v a="$boxed" 'BEGIN { exit !(a <= 4.0) }' || fail "exposure with the drop-in is $boxed, above 4.0"
echo "units: ok"
