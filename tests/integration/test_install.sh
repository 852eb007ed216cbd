#!/bin/bash
# Checks what "make install" puts in place: every program, the PAM module,
# the units, the man pages and the example configuration.  It also runs
# "systemd-analyze verify" on the installed units and checks the PAM
# module's libraries and exported symbols.
set -u
. "$(dirname "$0")/lib.sh"

for tool in systemd-analyze groff readelf nm; do
	command -v "$tool" >/dev/null || skip "$tool is not installed"
done
WORK=$(mktemp -d /tmp/cloudapp-install.XXXXXX)
trap lib_cleanup EXIT

ROOT=$WORK/root
make -s -C "$top_builddir" install DESTDIR="$ROOT" > "$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log"; fail "make install failed"; }

# Finds one installed file by name and prints its path.
installed() {
	local path
	path=$(find "$ROOT" -name "$1" \( -type f -o -type l \) | head -n 1)
	[ -n "$path" ] || { echo "$1 is not installed" >&2; return 1; }
	printf '%s\n' "$path"
}

all_parts_installed() {
	local name
	for name in cloudapp-ticketd cloudappctl pam_cloudapp.so \
		cloudapp-ticketd.socket cloudapp-ticketd.service \
		cloudapp-session.service cloudapp-session.desktop \
		cloudapp.conf.example cloudapp-ticketd.8 pam_cloudapp.8 \
		cloudappctl.1 cloudapp.conf.5; do
		installed "$name" > /dev/null || return 1
	done
	[ -x "$(installed cloudapp-ticketd)" ] && [ -x "$(installed cloudappctl)" ]
}

# The man pages render without a groff warning.
man_pages_render() {
	local page status=0
	for page in cloudapp-ticketd.8 pam_cloudapp.8 cloudappctl.1 \
		cloudapp.conf.5; do
		groff -man -ww -z "$(installed "$page")" 2> "$WORK/groff.err"
		if [ -s "$WORK/groff.err" ]; then
			echo "$page:"
			cat "$WORK/groff.err"
			status=1
		fi
	done
	return $status
}

# systemd-analyze verify needs the program at the path ExecStart= names,
# so the copies point ExecStart= at the program in $ROOT.
units_verify() {
	local service socket daemon
	service=$(installed cloudapp-ticketd.service) || return 1
	socket=$(installed cloudapp-ticketd.socket) || return 1
	daemon=$(installed cloudapp-ticketd) || return 1
	mkdir -p "$WORK/units"
	sed "s|^ExecStart=[^ ]*|ExecStart=$daemon|" "$service" \
		> "$WORK/units/cloudapp-ticketd.service"
	cp "$socket" "$WORK/units/"
	grep -q "^ListenStream=/run/cloudapp/ticketd.sock$" \
		"$WORK/units/cloudapp-ticketd.socket" ||
		{ echo "the socket unit does not listen on /run/cloudapp/ticketd.sock"; return 1; }
	systemd-analyze verify --man=no \
		"$WORK/units/cloudapp-ticketd.socket" \
		"$WORK/units/cloudapp-ticketd.service"
}

# The module links only libc, libpam and json-c, plus the sanitizer
# runtimes in the build of tools/run-sanitized.sh, which sets
# SANITIZER_PRELOAD.
pam_module_libraries() {
	local module needed library
	module=$(installed pam_cloudapp.so) || return 1
	needed=$(readelf -d "$module" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	for library in $needed; do
		case $library in
		libc.so.* | libpam.so.* | libjson-c.so.*) ;;
		libasan.so.* | libubsan.so.*)
			if [ -z "${SANITIZER_PRELOAD:-}" ]; then
				echo "pam_cloudapp.so needs $library"
				return 1
			fi
			;;
		*)
			echo "pam_cloudapp.so needs $library"
			return 1
			;;
		esac
	done
}

# The module exports only its pam_sm_* entry points.
pam_module_exports() {
	local module symbols
	module=$(installed pam_cloudapp.so) || return 1
	symbols=$(nm -D --defined-only "$module" | awk '$2 ~ /^[TDBRW]$/ { print $3 }')
	if printf '%s\n' "$symbols" | grep -v '^pam_sm_'; then
		echo "pam_cloudapp.so exports more than pam_sm_* (above)"
		return 1
	fi
	printf '%s\n' "$symbols" | grep -qx pam_sm_open_session
}

# Every setting the daemon accepts is described in cloudapp.conf(5) and
# appears in the example configuration.
settings_documented() {
	local names name status=0
	names=$(sed -n '/config_known_settings\[\] = {/,/^};/p' \
		"$top_srcdir/daemon/conf.c" | grep -o '"[a-z_]*"' | tr -d '"')
	[ -n "$names" ] || { echo "cannot read the settings from conf.c"; return 1; }
	for name in $names; do
		if ! grep -Eq "^\.BR? ($name|.* $name)( |,|\$)" \
			"$top_srcdir/docs/cloudapp.conf.5"; then
			echo "cloudapp.conf(5) does not describe $name"
			status=1
		fi
		if ! grep -q "^#*$name\b" "$top_srcdir/etc/cloudapp.conf.example"; then
			echo "cloudapp.conf.example does not show $name"
			status=1
		fi
	done
	return $status
}

check "all parts installed" all_parts_installed
check "every setting documented" settings_documented
check "man pages render cleanly" man_pages_render
check "units pass systemd-analyze verify" units_verify
check "PAM module links few libraries" pam_module_libraries
check "PAM module exports pam_sm only" pam_module_exports

check_summary
