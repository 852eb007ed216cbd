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
if [ ! -f Makefile ] || ! grep -q -- '--enable-werror' config.status; then
	./configure --enable-werror --sysconfdir=/etc --localstatedir=/var "$@"
fi
make -j"$(nproc)"
