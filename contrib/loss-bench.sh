#!/bin/bash
# SPDX-License-Identifier: MIT
# Times a swarm under random UDP loss: p2s-bench (p2sd and N clients on
# loopback) inside a network namespace of its own where iptables drops a
# share of incoming UDP, at each loss rate and in both control modes, and
# prints the median wall time of the rounds and its ratio to the lossless
# median. The namespace is made and removed here (EXIT trap). Needs root.
#
# usage: contrib/loss-bench.sh [BENCH] (default build/src/bench/p2s-bench)
# env: CLIENTS (10), SIZE (8M), ROUNDS (3), LOSSES ("0 5 20"), MODES ("udp tcp"),
#      OUT (/dev/shm), EXTRA (more p2s-bench options),
#      GSO (off: the namespace's loopback segments UDP GSO batches before
#      iptables sees them, so each datagram is lost on its own, as on a real
#      link; on: a batch of up to 64 KiB is lost or kept whole, which is how
#      --control tcp was measured before 2026-12-02, fourth session)
set -u
bench=${1:-build/src/bench/p2s-bench}
clients=${CLIENTS:-10} size=${SIZE:-8M} rounds=${ROUNDS:-3}
losses=${LOSSES:-0 5 20} modes=${MODES:-udp tcp} out=${OUT:-/dev/shm}
ns=p2s-lossbench-$$

[[ $(id -u) -eq 0 ]] || { echo "loss-bench: needs root (ip netns, iptables)" >&2; exit 1; }
[[ -x $bench ]] || { echo "loss-bench: no p2s-bench at $bench" >&2; exit 1; }
gso=${GSO:-off}
for t in ip iptables $([[ $gso == off ]] && echo ethtool); do
	command -v $t >/dev/null || { echo "loss-bench: $t is not installed" >&2; exit 1; }
done
bench=$(realpath "$bench")
cleanup() { ip netns del "$ns" 2>/dev/null; }
trap cleanup EXIT
ip netns add "$ns" || exit 1
ip netns exec "$ns" ip link set lo up || exit 1
if [[ $gso == off ]]; then
	ip netns exec "$ns" ethtool -K lo tx-udp-segmentation off >/dev/null ||
		{ echo "loss-bench: cannot turn UDP segmentation offload off on the namespace's lo" >&2; exit 1; }
fi

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-5s %5s %10s %7s  %s\n' mode loss median ratio rounds
for mode in $modes; do
	base=
	for loss in $losses; do
		ip netns exec "$ns" iptables -F INPUT
		if [[ $loss != 0 ]]; then
			p=$(awk -v l="$loss" 'BEGIN { printf "%.4f", l / 100 }')
			ip netns exec "$ns" iptables -A INPUT -p udp -m statistic --mode random \
				--probability "$p" -j DROP || exit 1
		fi
		times=()
		for ((r = 0; r < rounds; r++)); do
			# shellcheck disable=SC2086
			t=$(ip netns exec "$ns" nice "$bench" --clients "$clients" --size "$size" --control "$mode" \
				--out "$out" --timeout 120 ${EXTRA:-} 2>&1 |
				awk -v n="$clients" '/^round 1 p2s :/ && index($0, ", " n "/" n " copies verified") { t = $5 }
				     END { print (t != "" ? t : "fail") }')
			times+=("$t")
		done
		if printf '%s\n' "${times[@]}" | grep -q fail; then
			med=fail ratio=-
		else
			med=$(printf '%s\n' "${times[@]}" | median)
			[[ -z $base ]] && base=$med
			ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
		fi
		printf '%-5s %4s%% %9ss %7s  %s\n' "$mode" "$loss" "$med" "$ratio" "${times[*]}"
	done
done
