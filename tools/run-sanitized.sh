#!/bin/bash
# Builds cloudapp-login out of tree with AddressSanitizer (leak checking
# included) and UndefinedBehaviorSanitizer, and runs "make check" there.
# Any sanitizer report fails the run, also one from a process whose exit
# status no test looks at, such as a daemon stopped with SIGTERM.  The
# integration tests need root.
#
# Usage: tools/run-sanitized.sh [BUILD_DIR]	(default: build-asan)
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
build=$(realpath -m "${1:-build-asan}")
src=$build/src
obj=$build/obj

sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all"

# configure refuses a VPATH build from a configured source tree, and make
# would find that tree's objects through VPATH, so the build reads a copy
# of the sources: the files git tracks plus new ones it does not ignore.
copy_sources() {
	mkdir -p "$src"
	if git -C "$top" rev-parse --git-dir > /dev/null 2>&1; then
		git -C "$top" ls-files -z --cached --others --exclude-standard |
			tar -C "$top" --null -T - -cf - | tar -C "$src" -xf -
	elif [ ! -e "$top/config.status" ]; then
		src=$top
	else
		echo "run-sanitized: $top is configured and not a git checkout;" \
			"run \"make distclean\" there first" >&2
		exit 1
	fi
	# tests/sdk/test_sdk.sh finds the official SDK under bench/.
	if [ -d "$top/bench/node_modules" ] && [ "$src" != "$top" ]; then
		ln -sfn "$top/bench/node_modules" "$src/bench/node_modules"
	fi
}

configure_build() {
	if [ ! -x "$src/configure" ]; then
		(cd "$src" && ./autogen.sh)
	fi
	mkdir -p "$obj"
	if [ ! -f "$obj/Makefile" ]; then
		(cd "$obj" && "$src/configure" --enable-werror --sysconfdir=/etc \
			--localstatedir=/var \
			CFLAGS="-O1 -g -fno-omit-frame-pointer $sanitize" \
			LDFLAGS="$sanitize")
	fi
}

copy_sources
configure_build
make -C "$obj" -j"$(nproc)"

# Sanitizer reports go to files in a folder that the test users can write
# to, because cloudappctl also runs under their uids.
reports=$(mktemp -d /tmp/cloudapp-sanitizer.XXXXXX)
chmod 1777 "$reports"

# halt_on_error and -fno-sanitize-recover: the first error ends the
# process.  verify_asan_link_order=0: the daemon and cloudappctl run with
# nss_wrapper preloaded ahead of libasan, which interposes no function
# that ASan intercepts.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0"`
	`":verify_asan_link_order=0:detect_stack_use_after_return=1"`
	`":check_initialization_order=1:log_path=$reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"`
	`":log_path=$reports/ubsan"
# pamtester and python3 are not built with ASan but load the PAM module
# that is; tests/integration/lib.sh puts this first in their LD_PRELOAD.
SANITIZER_PRELOAD=$(ldd "$obj/cloudapp-ticketd" |
	awk '$1 ~ /^libasan\.so/ { print $3 }')
[ -n "$SANITIZER_PRELOAD" ] || {
	echo "run-sanitized: cloudapp-ticketd is not linked with libasan" >&2
	exit 1
}
export SANITIZER_PRELOAD
# nss_wrapper opens libc with RTLD_DEEPBIND, which ASan rejects.
export NSS_WRAPPER_DISABLE_DEEPBIND=1

status=0
make -C "$obj" -j"$(nproc)" check || status=$?
if [ "$status" != 0 ]; then
	echo "run-sanitized: make check failed; the logs:" >&2
	tools/print-failed-logs.sh "$obj/tests"
fi

count=0
for report in "$reports"/asan.* "$reports"/ubsan.*; do
	[ -f "$report" ] || continue
	count=$((count + 1))
	echo "----- sanitizer report $report" >&2
	cat "$report" >&2
done
echo "run-sanitized: $count sanitizer reports"
if [ "$count" != 0 ]; then
	status=1
else
	rm -rf "$reports"
fi
exit "$status"
