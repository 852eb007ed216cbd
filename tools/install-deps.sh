#!/bin/bash
# Installs the Debian 12 packages that building and testing cloudapp-login
# need, skipping those already installed.  Run as root.
set -eu

packages=(
	autoconf automake libtool pkg-config make gcc
	libcurl4-openssl-dev libssl-dev libsystemd-dev libconfig-dev
	libjson-c-dev libpam0g-dev
	libcmocka-dev libpam-wrapper libnss-wrapper pamtester
	systemd util-linux openssl python3 groff-base binutils gdb cppcheck
	valgrind clang-tidy strace
)

missing=()
for package in "${packages[@]}"; do
	if ! dpkg-query -W -f '${Status}' "$package" 2>/dev/null |
		grep -q "install ok installed"; then
		missing+=("$package")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "install-deps: all build and test packages are installed"
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages: ${missing[*]}; run this as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"${missing[@]}"
