#!/bin/bash
# SPDX-License-Identifier: MIT
# Slow is not silent: an honest member behind a slow downlink is not dropped
# and completes. p2sd and FAST members share one network namespace; the
# slow member sits in a second one, joined to it by a veth pair whose p2sd
# end has a token bucket filter (tc tbf) at RATE: all it receives, chunk
# data, QUERYs and PINGs alike, waits in that queue (or is dropped at its
# tail). A 4 MiB file, every copy compared byte for byte; the slow member's
# time is printed and must show the rate applied. --cache 1: nothing is
# kept, so the others' chunks from its share come through QUERYs to it,
# which wait behind its data.
#
#   slow-member.sh MODE [RATE_KBIT [FAST]]
#
# MODE is udp or tcp (p2sd --control). Exit 77 (skip) with the reason when
# it cannot run here (not root, no namespaces, veth or tbf); the namespaces
# are deleted whatever happens.
set -uo pipefail

mode=${1:?mode}
rate_kbit=${2:-1000}
fast=${3:-3}
size=$((4 << 20))
p2sd=${P2SD:?P2SD must point at the p2sd binary}
fetch=${P2S_FETCH:?P2S_FETCH must point at the p2s-fetch binary}

. "$(dirname "$0")/netns-lib.sh"
fail() {
	echo "FAIL: $*"
	[[ -f ${work:-}/p2sd.log ]] && sed 's/^/# p2sd: /' "$work/p2sd.log" | tail -30
	[[ -f ${work:-}/slow.log ]] && sed 's/^/# slow: /' "$work/slow.log" | tail -10
	exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root for ip netns and tc"
command -v ip >/dev/null || skip "iproute2 is not installed"
command -v tc >/dev/null || skip "tc is not installed"

ns=p2s-slow-$$
nss=p2s-slowm-$$
work=$(mktemp -d /tmp/p2s-slow.XXXXXX)
namespaces+=("$ns" "$nss")
ip netns add "$ns" || skip "cannot create a network namespace"
ip netns add "$nss" || skip "cannot create a second network namespace"
ip -n "$ns" link set lo up || fail "cannot bring lo up in $ns"
ip -n "$nss" link set lo up || fail "cannot bring lo up in $nss"
ip -n "$ns" link add vsrv type veth peer name vslow netns "$nss" || skip "cannot create a veth pair"
ip -n "$ns" addr add 10.77.0.1/24 dev vsrv && ip -n "$ns" link set vsrv up || fail "cannot set up vsrv"
ip -n "$nss" addr add 10.77.0.2/24 dev vslow && ip -n "$nss" link set vslow up || fail "cannot set up vslow"
# the slow member's downlink: what p2sd's end sends
tc -n "$ns" qdisc add dev vsrv root tbf rate "${rate_kbit}kbit" burst 32kbit latency 400ms ||
	skip "tc tbf is not available"

head -c "$size" /dev/urandom >"$work/src.bin"
# started with ip directly, not through a function: $! must be the daemon itself
ip netns exec "$ns" "$p2sd" --port 0 --control "$mode" --min-clients $((fast + 1)) --gather-timeout 30 \
	--cache 1 --log-level info "$work/src.bin" 2>"$work/p2sd.log" &
sp=$!
pids+=("$sp")
p2sd_port "$sp"

start=$(date +%s.%N)
ip netns exec "$nss" "$fetch" --quiet --timeout 60 "10.77.0.1:$port" src.bin -o "$work/slow.bin" 2>"$work/slow.log" &
slow=$!
pids+=("$slow")
cps=()
for i in $(seq "$fast"); do
	ip netns exec "$ns" "$fetch" --quiet --timeout 60 "127.0.0.1:$port" src.bin -o "$work/out$i.bin" \
		2>"$work/fetch$i.log" &
	cps+=($!)
	pids+=($!)
done
wait_members "fast member"
fast_end=$(date +%s.%N)
wait "$slow"
slow_rc=$?
slow_end=$(date +%s.%N)
kill -TERM "$sp"
wait "$sp" || fail "p2sd did not exit 0 on SIGTERM"

if grep -qE 'member [0-9]+ .*dropped' "$work/p2sd.log"; then
	fail "p2sd dropped a member: $(grep -E 'member [0-9]+ .*dropped' "$work/p2sd.log" | head -3)"
fi
((slow_rc == 0)) || fail "the slow member exited $slow_rc: $(tail -3 "$work/slow.log")"
((failed == 0)) || fail "$failed of $fast fast members failed (mode $mode)"
cmp -s "$work/src.bin" "$work/slow.bin" || fail "the slow member's copy differs from the source"
for i in $(seq "$fast"); do
	cmp -s "$work/src.bin" "$work/out$i.bin" || fail "copy $i differs from the source"
done
slow_s=$(echo "$slow_end - $start" | bc)
fast_s=$(echo "$fast_end - $start" | bc)
# the whole file crossed the bucket: anything much faster means it did not apply
min_s=$(echo "$size * 8 / ($rate_kbit * 1000) * 0.8" | bc -l)
if (($(echo "$slow_s < $min_s" | bc))); then
	fail "the slow member took $slow_s s, less than the ${min_s%%.*} s its ${rate_kbit} kbit/s allow"
fi
printf 'PASS: mode %s, slow member at %s kbit/s: %.1f s (the file at that rate: %.1f s), %d fast members: %.1f s, nobody dropped\n' \
	"$mode" "$rate_kbit" "$slow_s" "$(echo "$size * 8 / ($rate_kbit * 1000)" | bc -l)" "$fast" "$fast_s"
tc -s -n "$ns" qdisc show dev vsrv | sed 's/^/# tbf: /'
grep -h 'complete:' "$work/p2sd.log" | sed 's/^/# /'
exit 0
