#!/bin/bash
# SPDX-License-Identifier: MIT
# contrib/study.sh runs end to end on a tiny swarm (1 MiB, 2 and 3 clients,
# one round, the control and nclients experiments: no root needed) and
# writes what it promises: the CSV with every run verified, PNG plots and a
# report. Correctness only: no figure is compared with anything. Skipped
# (77) when gnuplot or jq is missing; it installs nothing.
set -uo pipefail
study=${1:?path to contrib/study.sh}
: "${P2S_BENCH:?P2S_BENCH must point at the p2s-bench binary}"

fail() { echo "FAIL: $*"; exit 1; }
for tool in gnuplot jq; do
	command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

out=$(mktemp -d "${TMPDIR:-/tmp}/p2s-study-smoke.XXXXXX") || fail "mktemp"
trap 'rm -rf -- "$out"' EXIT

STUDY_NO_INSTALL=1 STUDY_OUT=$out STUDY_COPIES=$out STUDY_SIZE=1M STUDY_ROUNDS=1 STUDY_CLIENTS=3 \
	STUDY_NLIST="2 3" STUDY_EXPERIMENTS="control nclients" STUDY_SMOKE=1 \
	"$study" >"$out/study.log" 2>&1
rc=$?
sed 's/^/# /' "$out/study.log"
[[ $rc == 0 ]] || fail "contrib/study.sh exited with $rc"

for f in control.csv control-summary.csv rtt-by-chunk.csv nclients.csv nclients-summary.csv REPORT.md; do
	[[ -s $out/$f ]] || fail "$f is missing or empty"
done
for f in rtt-mean.png rtt-by-chunk.png nclients.png; do
	[[ $(head -c 8 "$out/$f" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$f is not a PNG"
done
# a header and one row per round and key, every one verified
[[ $(grep -c ',true,' "$out/control.csv") == 2 ]] || fail "control.csv lacks a verified row per mode: $(cat "$out/control.csv")"
[[ $(grep -c ',true,' "$out/nclients.csv") == 2 ]] || fail "nclients.csv lacks a verified row per N: $(cat "$out/nclients.csv")"
[[ $(awk -F, 'NR > 1 && $3 + 0 > 0' "$out/rtt-by-chunk.csv" | wc -l) -ge 1 ]] || fail "rtt-by-chunk.csv has no udp RTT"
grep -q '^> \*\*Smoke run' "$out/REPORT.md" || fail "the report does not say it is a smoke run"
grep -q '^## 3. Total time against N' "$out/REPORT.md" || fail "the report lacks the nclients section"
grep -q 'p2s-bench --json' "$out/REPORT.md" || fail "the report lacks the commands"
if grep -q '^## 4' "$out/REPORT.md"; then fail "the report has an experiment that was not asked for"; fi
echo ok
