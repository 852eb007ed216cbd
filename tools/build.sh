#!/bin/bash
# Configures and builds cloudapp-login in the source tree, with warnings as
# errors.  Extra arguments go to ./configure.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x configure ]; then
	./autogen.sh
fi
# Reconfigure a tree that was configured without --enable-werror, such as
# one built by hand, so that the tests always build with warnings as errors.
# The options it was configured with, such as --prefix, are kept.
if [ ! -f Makefile ]; then
	./configure --enable-werror --sysconfdir=/etc --localstatedir=/var "$@"
elif ! grep -q -- '--enable-werror' config.status; then
	eval "set -- $(./config.status --config) \"\$@\""
	echo "build: reconfiguring with --enable-werror, keeping $*" >&2
	./configure --enable-werror "$@"
fi
make -j"$(nproc)"
