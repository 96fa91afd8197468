#!/bin/bash
# SPDX-License-Identifier: MIT
# Every man page (arguments: the built pages) renders without a single
# warning: groff -man -ww -z, again as man(1) renders it for a terminal
# (-Tutf8), and mandoc -T lint -W warning when mandoc is installed.
# Exit 77 when groff is missing.
set -uo pipefail

[ $# -ge 1 ] || { echo "usage: $0 PAGE..." >&2; exit 2; }
command -v groff >/dev/null || { echo "SKIP: groff is not installed"; exit 77; }
pass=0 fail=0
ok()  { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }

# run LABEL COMMAND...: ok only when COMMAND succeeds and prints nothing on stderr
run() {
	local label=$1 out rc
	shift
	out=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ $rc -eq 0 ] && [ -z "$out" ]; then
		ok "$label"
	else
		bad "$label (exit $rc):"
		printf '#   %s\n' "$out"
	fi
}

for page in "$@"; do
	name=${page##*/}
	[ -s "$page" ] || { bad "$name: missing or empty"; continue; }
	run "groff -man -ww -z $name" groff -man -ww -z "$page"
	run "groff -man -ww -Tutf8 $name" groff -man -ww -Tutf8 "$page"
	if command -v mandoc >/dev/null; then
		run "mandoc -T lint -W warning $name" mandoc -T lint -W warning "$page"
	fi
done

# the check itself works: a mangled font escape must be noticed
printf '.TH X 1\n.SH NAME\nx \\- y\n.SH OPTIONS\n.BI \\-D " \\fIBYTES\\fQ"\n' >"${TMPDIR:-/tmp}/p2s-man-lint.$$.1"
if out=$(groff -man -ww -z "${TMPDIR:-/tmp}/p2s-man-lint.$$.1" 2>&1) && [ -z "$out" ]; then
	bad "groff -ww did not notice a bad font escape"
else
	ok "groff -ww notices a bad font escape (${out%%$'\n'*})"
fi
rm -f "${TMPDIR:-/tmp}/p2s-man-lint.$$.1"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
