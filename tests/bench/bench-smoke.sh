#!/bin/bash
# SPDX-License-Identifier: MIT
# p2s-bench runs end to end: 3 clients, 1 MiB, one round, and its JSON says
# every copy matched the source and how busy the machine was; --cpu-trace
# writes its CSV; a bad command line exits 2 with one line.
# Correctness only: no figure is compared with anything.
set -uo pipefail
bench=${P2S_BENCH:?P2S_BENCH must point at the p2s-bench binary}

fail() { echo "FAIL: $*"; exit 1; }

trace=$(mktemp /tmp/p2s-bench-smoke.XXXXXX)
trap 'rm -f "$trace"' EXIT
out=$("$bench" --clients 3 --size 1M --rounds 1 --json --cpu-trace "$trace")
rc=$?
echo "$out"
[[ $rc == 0 ]] || fail "p2s-bench exited with $rc"
[[ $out == *'"all_verified": true'* ]] || fail "the JSON does not say all copies verified"
[[ $out == *'"copies_verified": 3'* ]] || fail "the JSON does not count 3 verified copies"
busy=$(grep -o '"machine_busy": [0-9.]*' <<<"$out" | head -1 | cut -d' ' -f2)
[[ -n $busy ]] || fail "the JSON has no machine_busy"
awk -v b="$busy" 'BEGIN { exit !(b >= 0 && b <= 1) }' || fail "machine_busy $busy is not a share"
[[ $(head -1 "$trace") == side,round,ms,busy_pct ]] || fail "--cpu-trace wrote: $(head -2 "$trace")"
# every row: p2s, round 1, a time within the round, a percentage
awk -F, 'NR > 1 && !($1 == "p2s" && $2 == 1 && $3 >= 0 && $4 >= 0 && $4 <= 100) { exit 1 }' "$trace" ||
	fail "a bad --cpu-trace row: $(cat "$trace")"

err=$("$bench" --clients 0 2>&1 >/dev/null)
rc=$?
[[ $rc == 2 ]] || fail "a bad --clients exited with $rc, not 2"
[[ $(wc -l <<<"$err") == 1 && $err == 'p2s-bench: '* ]] || fail "a bad command line said: $err"
"$bench" --clients 2001 >/dev/null 2>&1
rc=$?
[[ $rc == 2 ]] || fail "--clients 2001 exited with $rc, not 2"
echo "ok"
