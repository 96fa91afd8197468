#!/bin/bash
# SPDX-License-Identifier: MIT
# A swarm under packet loss: p2sd and 10 p2s-fetch clients inside a network
# namespace of this test's own, where iptables drops a share of UDP (and
# optionally TCP) packets at random. Every copy is compared byte for byte.
#
#   loss-swarm.sh MODE UDP_LOSS_PERCENT [TCP_LOSS_PERCENT [P2SD_ARGS...]]
#
# With P2S_LOSS_UDP_MAX=N in the environment, UDP packets longer than N
# bytes are all dropped as well.
#
# MODE is udp or tcp (p2sd --control). Exit 77 (skip) with the reason when
# it cannot run here (not root, no namespaces); the namespace is deleted
# whatever happens.
set -uo pipefail

mode=${1:?mode}
udp_loss=${2:?udp loss percent}
tcp_loss=${3:-0}
shift $(($# < 3 ? $# : 3))
extra=("$@")
clients=${P2S_LOSS_CLIENTS:-10}
size_kb=${P2S_LOSS_SIZE_KB:-3000}
p2sd=${P2SD:?P2SD must point at the p2sd binary}
fetch=${P2S_FETCH:?P2S_FETCH must point at the p2s-fetch binary}

. "$(dirname "$0")/netns-lib.sh"
fail() {
	echo "FAIL: $*"
	[[ -f ${work:-}/p2sd.log ]] && sed 's/^/# p2sd: /' "$work/p2sd.log" | tail -20
	exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root for ip netns and iptables"
command -v ip >/dev/null || skip "iproute2 is not installed"
if ! command -v iptables >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables >/dev/null 2>&1 ||
		skip "iptables is not installed and could not be installed"
fi

ns=p2s-loss-$$-$mode-$udp_loss-$tcp_loss
work=$(mktemp -d /tmp/p2s-loss.XXXXXX)
namespaces+=("$ns")
ip netns add "$ns" || skip "cannot create a network namespace"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up || fail "cannot bring lo up in $ns"
prob() { awk -v p="$1" 'BEGIN { printf "%.4f", p / 100 }'; }
if [[ $udp_loss != 0 ]]; then
	in_ns iptables -A INPUT -p udp -m statistic --mode random --probability "$(prob "$udp_loss")" -j DROP ||
		fail "iptables rule for UDP loss"
fi
if [[ $tcp_loss != 0 ]]; then
	in_ns iptables -A INPUT -p tcp -m statistic --mode random --probability "$(prob "$tcp_loss")" -j DROP ||
		fail "iptables rule for TCP loss"
fi
# P2S_LOSS_UDP_MAX: every UDP packet longer than this many bytes is lost, a
# path narrower than its route (loopback's) says: a tunnel, an MTU black hole
udp_max=${P2S_LOSS_UDP_MAX:-}
if [[ -n $udp_max ]]; then
	if ! command -v ethtool >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ethtool >/dev/null 2>&1 ||
			skip "ethtool is not installed and could not be installed"
	fi
	# segmented before the loopback device, not after: iptables must see
	# each datagram, not a GSO batch of them
	in_ns ethtool -K lo tx-udp-segmentation off || fail "cannot turn off UDP segmentation offload on lo"
	in_ns iptables -A INPUT -p udp -m length --length "$((udp_max + 1)):65535" -j DROP ||
		fail "iptables rule for UDP packets over $udp_max bytes"
fi

head -c $((size_kb * 1024 + 123)) /dev/urandom >"$work/src.bin"
# started with ip directly, not through a function: $! must be the daemon itself
ip netns exec "$ns" "$p2sd" --port 0 --control "$mode" --min-clients "$clients" --gather-timeout 60 "${extra[@]}" \
	--cache 256K --log-level info "$work/src.bin" 2>"$work/p2sd.log" &
sp=$!
pids+=("$sp")
p2sd_port "$sp"

start=$(date +%s.%N)
cps=()
for i in $(seq "$clients"); do
	ip netns exec "$ns" "$fetch" --quiet --timeout 60 "127.0.0.1:$port" src.bin -o "$work/out$i.bin" 2>"$work/fetch$i.log" &
	cps+=($!)
	pids+=($!)
done
wait_members client
end=$(date +%s.%N)
kill -TERM "$sp"
wait "$sp" || fail "p2sd did not exit 0 on SIGTERM"

((failed == 0)) || fail "$failed of $clients clients failed (mode $mode, UDP loss $udp_loss%, TCP loss $tcp_loss%)"
for i in $(seq "$clients"); do
	cmp -s "$work/src.bin" "$work/out$i.bin" || fail "copy $i differs from the source"
done
dropped=$(in_ns iptables -L INPUT -v -n -x | awk '/DROP/ { s += $1 } END { print s + 0 }')
if [[ $udp_loss != 0 || $tcp_loss != 0 || -n $udp_max ]]; then
	((dropped > 0)) || fail "no packet was dropped: the loss rule did not apply"
fi
printf 'PASS: mode %s%s, UDP loss %s%%, TCP loss %s%%%s: %d clients, %d KiB each, %.2f s, %d packets dropped\n' \
	"$mode" "${extra[*]:+ ${extra[*]}}" "$udp_loss" "$tcp_loss" "${udp_max:+, UDP over $udp_max bytes lost}" "$clients" "$size_kb" "$(echo "$end - $start" | bc)" "$dropped"
grep -h 'complete:' "$work/p2sd.log" | sed 's/^/# /'
exit 0
