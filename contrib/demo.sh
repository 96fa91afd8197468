#!/bin/bash
# SPDX-License-Identifier: MIT
# The p2s demo: builds p2sd and p2s-fetch, serves a generated file to five
# clients on this machine, and checks that every copy equals the source.
#
#   contrib/demo.sh              (from any directory; root or sudo for apt)
#   P2S_DEMO_SIZE=256 contrib/demo.sh   (file size in MiB, default 32)
#
# Exits 0 only when all five copies match the source.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=contrib/lib.sh
source "$here/lib.sh"

clients=5
size_mib=${P2S_DEMO_SIZE:-32}
[[ $size_mib =~ ^[0-9]+$ && $size_mib -ge 1 ]] \
	|| p2s_die "P2S_DEMO_SIZE must be a whole number of MiB, at least 1 (got '$size_mib')"

p2s_install_deps -- "${P2S_BUILD_DEPS[@]}"
p2s_build --keep
p2sd=$P2S_BUILD_ABS/src/daemon/p2sd
fetch=$P2S_BUILD_ABS/src/fetch/p2s-fetch
[[ -x $p2sd ]] || p2s_die "$p2sd was not built"
[[ -x $fetch ]] || p2s_die "$fetch was not built"

# Everything the demo makes lives in $tmp; every process it starts is in
# $pids. Both go away on exit, however the script ends.
tmp=
pids=()
# Sends SIGTERM to the PIDs given, waits up to 5 s for them to exit, then
# sends SIGKILL to those left.
terminate() {
	local pid tries=50 alive
	kill -TERM "$@" 2>/dev/null || true
	while ((tries-- > 0)); do
		alive=0
		for pid in "$@"; do
			if kill -0 "$pid" 2>/dev/null; then alive=1; fi
		done
		((alive)) || return 0
		sleep 0.1
	done
	p2s_say "warning: still running 5 s after SIGTERM, sending SIGKILL: $*"
	kill -KILL "$@" 2>/dev/null || true
}
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	local pid
	if [[ ${#pids[@]} -gt 0 ]]; then
		terminate "${pids[@]}"
		for pid in "${pids[@]}"; do
			wait "$pid" 2>/dev/null || true
		done
	fi
	if [[ -n $tmp ]]; then
		rm -rf -- "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2s-demo.XXXXXX") || p2s_die "mktemp failed"

# Removes a PID from $pids once it has been waited for.
forget() {
	local pid keep=()
	for pid in "${pids[@]}"; do
		[[ $pid == "$1" ]] || keep+=("$pid")
	done
	pids=("${keep[@]}")
}

show_log() { # FILE TITLE: the last lines of a log, to explain a failure
	[[ -s $1 ]] || return 0
	printf -- '--- %s (last 20 lines) ---\n' "$2" >&2
	tail -n 20 -- "$1" >&2
}

p2s_say "generating $size_mib MiB of random data"
src=$tmp/sample.bin
head -c "$((size_mib * 1024 * 1024))" /dev/urandom >"$src" \
	|| p2s_die "could not write $src"

# Start the server on a free port and learn the port from its log.
log=$tmp/p2sd.log
"$p2sd" --port 0 --min-clients "$clients" --gather-timeout 10 --log-level notice \
	"$src" >"$log" 2>&1 &
p2sd_pid=$!
pids+=("$p2sd_pid")

port=
deadline=$((SECONDS + 10))
while :; do
	line=$(grep -m1 -E 'listening on .* port [0-9]+' "$log" || true)
	if [[ -n $line ]]; then
		if [[ $line =~ .*port\ ([0-9]+) ]]; then
			port=${BASH_REMATCH[1]}
		fi
		break
	fi
	if ! kill -0 "$p2sd_pid" 2>/dev/null; then
		rc=0
		wait "$p2sd_pid" || rc=$?
		forget "$p2sd_pid"
		show_log "$log" "p2sd log"
		p2s_die "p2sd exited with status $rc before it was listening"
	fi
	if ((SECONDS >= deadline)); then
		show_log "$log" "p2sd log"
		p2s_die "p2sd did not log 'listening on ... port N' within 10 s"
	fi
	sleep 0.1
done
[[ -n $port && $port -gt 0 ]] || p2s_die "could not read the port from p2sd's line: $line"
p2s_say "p2sd (pid $p2sd_pid) listening on port $port; starting $clients clients"

# Start the clients, all at once, each writing copyK.bin in $tmp.
start=$EPOCHREALTIME
fetch_pids=()
for k in $(seq 1 "$clients"); do
	(cd "$tmp" && exec "$fetch" --quiet "127.0.0.1:$port" sample.bin -o "copy$k.bin") \
		>"$tmp/copy$k.log" 2>&1 &
	fetch_pids+=("$!")
	pids+=("$!")
done

failed=0
for k in $(seq 1 "$clients"); do
	pid=${fetch_pids[k - 1]}
	rc=0
	wait "$pid" || rc=$?
	forget "$pid"
	if ((rc != 0)); then
		failed=$((failed + 1))
		p2s_say "client $k (pid $pid) exited with status $rc"
		show_log "$tmp/copy$k.log" "client $k log"
	fi
done
end=$EPOCHREALTIME

# Stop the server.
terminate "$p2sd_pid"
rc=0
wait "$p2sd_pid" || rc=$?
forget "$p2sd_pid"
if ((rc != 0)); then
	p2s_say "p2sd exited with status $rc after SIGTERM (expected 0)"
	show_log "$log" "p2sd log"
fi

# Compare every copy with the source.
src_md5=$(md5sum <"$src" | cut -d' ' -f1)
src_sha=$(sha256sum <"$src" | cut -d' ' -f1)
row() { printf '%-12s %12s  %-32s  %-64s  %s\n' "$@"; }
echo
row name bytes MD5 SHA-256 result
row sample.bin "$(stat -c %s "$src")" "$src_md5" "$src_sha" source
good=0
for k in $(seq 1 "$clients"); do
	f=$tmp/copy$k.bin
	if [[ -f $f ]]; then
		md5=$(md5sum <"$f" | cut -d' ' -f1)
		sha=$(sha256sum <"$f" | cut -d' ' -f1)
		if [[ $md5 == "$src_md5" && $sha == "$src_sha" ]]; then
			result=OK
			good=$((good + 1))
		else
			result=DIFFERS
		fi
		row "copy$k.bin" "$(stat -c %s "$f")" "$md5" "$sha" "$result"
	else
		row "copy$k.bin" - - - MISSING
	fi
done
echo

# Wall time of the swarm, from the first client's start to the last exit.
us=$((10#${end//[^0-9]/} - 10#${start//[^0-9]/}))
secs=$(printf '%d.%03d' $((us / 1000000)) $(((us % 1000000) / 1000)))
mbps=$(awk -v b="$((size_mib * clients))" -v us="$us" 'BEGIN { if (us > 0) printf "%.1f", b * 1e6 / us; else print "-" }')
echo "swarm of $clients clients, $size_mib MiB each: $secs s ($mbps MiB/s delivered in total)"

if ((good == clients && failed == 0)); then
	echo "all $clients copies match the source"
	exit 0
fi
p2s_die "$((clients - good)) of $clients copies missing or different"
