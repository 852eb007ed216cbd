#!/bin/bash
# Runs clang-tidy with the checks in .clang-tidy over all C code and exits
# non-zero on any warning.  Needs the config.h that tools/build.sh makes.
set -eu
cd "$(dirname "$0")/.."

if [ ! -f config.h ]; then
	echo "run-clang-tidy: config.h not found; run tools/build.sh first" >&2
	exit 1
fi
if ! command -v clang-tidy > /dev/null; then
	echo "run-clang-tidy: clang-tidy not found; run tools/install-deps.sh" >&2
	exit 1
fi

# The preprocessor flags of the build (Makefile.am's AM_CPPFLAGS and the
# libraries' pkg-config flags), for every file at once.
flags=(-D_GNU_SOURCE -DHAVE_CONFIG_H -I. -Icommon -Idaemon
	'-DCLOUDAPP_CONFIG_FILE="/etc/cloudapp/cloudapp.conf"'
	'-DCLOUDAPP_TICKETD_PATH="/usr/sbin/cloudapp-ticketd"')
read -r -a pkg_flags <<< "$(pkg-config --cflags libcurl openssl libsystemd \
	libconfig json-c cmocka)"
flags+=("${pkg_flags[@]}")

# One clang-tidy process per file, because clang-tidy 14.0.6 reports false
# clang-analyzer-valist.Uninitialized warnings in every file after the
# first when it checks several in one process.  Each file's output is
# printed in one piece, and only when it has warnings.
find daemon common client pam_module tests/unit tests/sdk tests/fuzz bench -name '*.c' -print0 |
	sort -z |
	xargs -0 -I '{}' -P "$(nproc)" sh -c '
		file=$1
		shift
		# The corpus replayer gets its corpus name from the Makefile.
		case $file in tests/fuzz/replay.c)
			set -- "$@" -DFUZZ_CORPUS_NAME="\"protocol\"" ;;
		esac
		output=$(clang-tidy --quiet "$file" -- "$@" 2>&1) ||
			{ printf "%s\n" "$output"; exit 1; }' sh '{}' "${flags[@]}" ||
	{
		echo "run-clang-tidy: clang-tidy found problems (above)" >&2
		exit 1
	}
echo "clang-tidy found nothing"
