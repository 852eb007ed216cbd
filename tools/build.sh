#!/bin/bash
# Configures and builds cloudapp-login in the source tree, with warnings as
# errors.  Extra arguments go to ./configure.
set -eu
cd "$(dirname "$0")/.."
if [ ! -x configure ]; then
	./autogen.sh
fi
if [ ! -f Makefile ]; then
	./configure --enable-werror --sysconfdir=/etc --localstatedir=/var "$@"
fi
make -j"$(nproc)"
