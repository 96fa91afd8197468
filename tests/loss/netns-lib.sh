# SPDX-License-Identifier: MIT
# Sourced by the scripts of the loss and slow-link suites, which run p2sd and
# p2s-fetch in network namespaces of their own. The script sets work (its
# temporary directory) before p2sd starts, defines fail, and adds what it
# starts to pids and what it creates to namespaces: cleanup, the EXIT trap,
# kills and deletes them all, whatever happens.

skip() { echo "SKIP: $*"; exit 77; }

pids=()
namespaces=()
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null; done
	[[ -n ${work:-} ]] && rm -rf "$work"
}
trap cleanup EXIT

# Sets port to the one p2sd (pid $1) logs in $work/p2sd.log; fails if it
# exits first or has said nothing within 10 s.
p2sd_port() {
	port=
	for _ in $(seq 200); do
		port=$(grep -o 'port [0-9]*' "$work/p2sd.log" 2>/dev/null | tail -1 | cut -d' ' -f2)
		[[ -n $port ]] && break
		kill -0 "$1" 2>/dev/null || fail "p2sd exited early: $(cat "$work/p2sd.log")"
		sleep 0.05
	done
	[[ -n $port ]] || fail "p2sd did not report its port"
}

# Waits for every p2s-fetch in cps (the i-th, from 1, logging to
# $work/fetch$i.log); sets failed to how many did not exit 0 and names
# each as "$1 i", with its last lines.
wait_members() {
	failed=0
	for i in "${!cps[@]}"; do
		if ! wait "${cps[$i]}"; then
			failed=$((failed + 1))
			echo "$1 $((i + 1)) failed: $(tail -2 "$work/fetch$((i + 1)).log")"
		fi
	done
}
