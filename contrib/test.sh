#!/bin/bash
# SPDX-License-Identifier: MIT
# Installs what the build and the tests need, builds, and runs the tests.
#
#   contrib/test.sh                   (what CI runs: the three runs below)
#   contrib/test.sh --suite unit      (arguments: only meson test ARGS in build/)
#
# Without arguments it runs, one after the other:
#   1. every suite in build/ (-Dwerror=true);
#   2. the unit, integration and loss suites in build-san/, built with
#      -Db_sanitize=address,undefined (with clang when it is installed, which
#      also builds the libFuzzer targets), under the 'sanitize' test setup;
#   3. when build-san has the libFuzzer targets: the fuzz suite there, each
#      target fuzzed for 30 s (-Dfuzz_seconds) from a copy of its corpus;
#   4. the unit suites in build/ under valgrind (--setup valgrind).
# It ends with one plain line, the total over the runs:
# "N passed, N failed, N skipped", and exits non-zero if any test failed.
# P2S_BUILD_DIR and P2S_SAN_BUILD_DIR name the build directories.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=contrib/lib.sh
source "$here/lib.sh"

P2S_SAN_BUILD_DIR=${P2S_SAN_BUILD_DIR:-build-san}

p2s_install_deps --optional "${P2S_OPTIONAL_TEST_DEPS[@]}" -- \
	"${P2S_BUILD_DEPS[@]}" "${P2S_TEST_DEPS[@]}"

passed=0 failed=0 skipped=0 rc=0

# run_tests BUILD-DIR MESON-TEST-ARG...: one meson test run, added to the totals.
run_tests() {
	local dir=$1 setup='' prev='' log r=0 p f s a
	shift
	for a in "$@"; do
		if [[ $a == --setup=* ]]; then
			setup=${a#--setup=}
		elif [[ $prev == --setup ]]; then
			setup=$a
		fi
		prev=$a
	done
	# meson names the log after the test setup
	log=$dir/meson-logs/testlog${setup:+-$setup}.txt
	rm -f "$log"
	p2s_say "running: meson test -C $dir --print-errorlogs --num-processes 2 $*"
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || r=$?
	if [[ -f $log ]]; then
		count() { awk -F: -v k="$1" '$1 == k { n = $2 } END { print n + 0 }' "$log"; }
		p=$(( $(count Ok) + $(count 'Expected Fail') ))
		f=$(( $(count Fail) + $(count Timeout) + $(count 'Unexpected Pass') ))
		s=$(count Skipped)
	else
		p=0 f=1 s=0     # meson test did not get as far as running tests
	fi
	((f > 0 || r == 0)) || f=1
	p2s_say "$dir${setup:+ (--setup $setup)}: $p passed, $f failed, $s skipped"
	if ((r != 0)); then
		p2s_say "error: meson test failed with status $r (logs: $P2S_ROOT/$log)"
		rc=1
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

p2s_build --reconfigure -Dwerror=true
if [[ $# -gt 0 ]]; then
	run_tests "$P2S_BUILD_DIR" "$@"
else
	run_tests "$P2S_BUILD_DIR"
	# clang when present (its -Wall differs from gcc's, and it builds the
	# fuzz targets); CC, if set, wins. The compiler of an existing
	# build-san stays. b_lundef=false: clang does not link its sanitizer
	# runtimes into libraries.
	if [[ -z ${CC:-} ]] && command -v clang >/dev/null 2>&1; then
		export CC=clang
	fi
	P2S_BUILD_DIR=$P2S_SAN_BUILD_DIR p2s_build --reconfigure \
		-Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
	run_tests "$P2S_SAN_BUILD_DIR" --setup=sanitize --suite unit --suite integration --suite loss
	if [[ -x $P2S_SAN_BUILD_DIR/tests/fuzz/fuzz-wire ]]; then
		run_tests "$P2S_SAN_BUILD_DIR" --setup=sanitize --suite fuzz
	else
		p2s_say "no libFuzzer targets in $P2S_SAN_BUILD_DIR (clang with -fsanitize=fuzzer): not fuzzing"
	fi
	run_tests "$P2S_BUILD_DIR" --setup=valgrind --suite unit
fi
# one plain closing line any CI reads
echo "$passed passed, $failed failed, $skipped skipped"
((rc == 0 && failed == 0))
