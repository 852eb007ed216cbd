#!/bin/bash
# Checks what "make install" puts in place: every program, the PAM module,
# the units, the sysusers.d file, the man pages and the example
# configuration.  It also runs "systemd-analyze verify" and "systemd-analyze
# security" on the installed units, and checks the PAM module's libraries
# and exported symbols.
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
		cloudapp-ticketd.conf \
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

# Largest overall exposure that "systemd-analyze security" may give the
# service unit, on its scale from 0 (most protected) to 10.
SECURITY_EXPOSURE_MAX=2.0

# The service unit's exposure is at most SECURITY_EXPOSURE_MAX.  The table
# of every setting goes to the log.
unit_security_exposure() {
	local service exposure
	if ! systemd-analyze security --help 2>&1 | grep -q -- --offline; then
		echo "SKIP: $(systemd-analyze --version | head -n 1) has no" \
			"security --offline, so the unit is not rated"
		return 0
	fi
	service=$(installed cloudapp-ticketd.service) || return 1
	systemd-analyze security --offline=yes --no-pager "$service" \
		> "$WORK/security.out" 2>&1
	cat "$WORK/security.out"
	exposure=$(sed -n 's/^.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' \
		"$WORK/security.out")
	[ -n "$exposure" ] ||
		{ echo "no overall exposure level in the output"; return 1; }
	echo "overall exposure $exposure, at most $SECURITY_EXPOSURE_MAX allowed"
	awk -v e="$exposure" -v max="$SECURITY_EXPOSURE_MAX" \
		'BEGIN { exit !(e <= max) }'
}

# systemd-sysusers creates the service user, as the units name it, from
# the installed sysusers.d file.
sysusers_creates_user() {
	local file user sysroot=$WORK/sysroot
	command -v systemd-sysusers > /dev/null ||
		{ echo "SKIP: systemd-sysusers is not installed"; return 0; }
	file=$(installed cloudapp-ticketd.conf) || return 1
	user=$(sed -n 's/^User=//p' "$(installed cloudapp-ticketd.service)")
	[ "$user" = "$TEST_SERVICE_USER" ] ||
		{ echo "the unit runs as '$user', not $TEST_SERVICE_USER"; return 1; }
	mkdir -p "$sysroot/etc"
	systemd-sysusers --root="$sysroot" "$file" || return 1
	awk -F: -v u="$user" '$1 == u && $3 < 1000 && $7 ~ /nologin$/ { found = 1 }
		END { exit !found }' "$sysroot/etc/passwd" ||
		{ cat "$sysroot/etc/passwd"; return 1; }
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
check "service unit exposure at most 2.0" unit_security_exposure
check "sysusers file creates service user" sysusers_creates_user
check "PAM module links few libraries" pam_module_libraries
check "PAM module exports pam_sm only" pam_module_exports

check_summary
