#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs what the build and the tests need, builds, and runs every test
# suite. Arguments go to meson test:
#
#   contrib/test.sh                   (every suite)
#   contrib/test.sh --suite unit      (only the unit suites)
#
# Exits with meson test's status.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=contrib/lib.sh
source "$here/lib.sh"

p2s_install_deps --optional "${P2S_OPTIONAL_TEST_DEPS[@]}" -- \
	"${P2S_BUILD_DEPS[@]}" "${P2S_TEST_DEPS[@]}"
p2s_build --reconfigure

p2s_say "running: meson test -C $P2S_BUILD_DIR --print-errorlogs --num-processes 2 $*"
rc=0
meson test -C "$P2S_BUILD_DIR" --print-errorlogs --num-processes 2 "$@" || rc=$?
# one plain closing line any CI reads: "N passed, N failed, N skipped"
log=$P2S_BUILD_DIR/meson-logs/testlog.txt
if [[ -f $log ]]; then
	count() { awk -v k="$1" '$1 == k { n = $2 } END { print n + 0 }' "$log"; }
	echo "$(count Ok:) passed, $(( $(count Fail:) + $(count Timeout:) )) failed, $(count Skipped:) skipped"
fi
if ((rc != 0)); then
	p2s_say "error: meson test failed with status $rc (logs: $P2S_ROOT/$P2S_BUILD_DIR/meson-logs/testlog.txt)"
fi
exit "$rc"
