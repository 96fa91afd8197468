#!/bin/bash
# SPDX-License-Identifier: MIT
# p2s-bench runs end to end: 3 clients, 1 MiB, one round, and its JSON says
# every copy matched the source; a bad command line exits 2 with one line.
# Correctness only: no figure is compared with anything.
set -uo pipefail
bench=${P2S_BENCH:?P2S_BENCH must point at the p2s-bench binary}

fail() { echo "FAIL: $*"; exit 1; }

out=$("$bench" --clients 3 --size 1M --rounds 1 --json)
rc=$?
echo "$out"
[[ $rc == 0 ]] || fail "p2s-bench exited with $rc"
[[ $out == *'"all_verified": true'* ]] || fail "the JSON does not say all copies verified"
[[ $out == *'"copies_verified": 3'* ]] || fail "the JSON does not count 3 verified copies"

err=$("$bench" --clients 0 2>&1 >/dev/null)
rc=$?
[[ $rc == 2 ]] || fail "a bad --clients exited with $rc, not 2"
[[ $(wc -l <<<"$err") == 1 && $err == 'p2s-bench: '* ]] || fail "a bad command line said: $err"
echo "ok"
