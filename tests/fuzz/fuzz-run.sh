#!/bin/bash
# SPDX-License-Identifier: MIT
# A bounded libFuzzer run (meson suite 'fuzz', which CI runs in the clang
# build): FUZZER for SECONDS from a copy of CORPUS in a temporary directory,
# so nothing it finds or grows is written into the repository. Any crash,
# leak, timeout or sanitizer report fails the test; the input that caused it
# is shown in hex, to be added to CORPUS by hand (see README.md).
#
#   fuzz-run.sh FUZZER CORPUS SECONDS
set -uo pipefail

fuzzer=$(realpath -- "${1:?fuzzer binary}") || exit 1
corpus=$(realpath -- "${2:?corpus directory}") || exit 1
seconds=${3:?seconds}

work=$(mktemp -d /tmp/p2s-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/found"
cp -- "$corpus"/* "$work/corpus/" || exit 1
cd "$work" || exit 1

# -max_len as README.md runs it: a datagram and its reassembly fit in 64 KiB
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/found/" "$work/corpus" >"$work/log" 2>&1
rc=$?
grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' "$work/log"
shopt -s nullglob
found=("$work"/found/*)
if ((rc != 0 || ${#found[@]} > 0)); then
	echo "FAIL: $(basename "$fuzzer") exited $rc after fuzzing $corpus"
	tail -n 60 "$work/log"
	for f in "${found[@]}"; do
		echo "--- $(basename "$f") ($(stat -c %s "$f") bytes):"
		od -An -tx1 -v "$f" | head -n 64
	done
	exit 1
fi
echo "$(basename "$fuzzer"): no crash in ${seconds} s ($(ls "$work/corpus" | wc -l) inputs in the corpus at the end)"
