#!/bin/bash
# SPDX-License-Identifier: MIT
# Benchmark: one p2sd and N p2s-fetch clients on a generated file, then the
# same N downloads with curl from a local nginx (the yardstick), RUNS times
# each, every copy verified. Prints each run and the medians.
#
#   contrib/bench.sh [-s SIZE_MB] [-n CLIENTS] [-r RUNS] [-k CHUNK] [--no-nginx] [-- P2SD_ARGS...]
#
# Defaults: 100 MB, 20 clients, 3 runs, 64K chunks.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=contrib/lib.sh
source "$here/lib.sh"

size_mb=100 clients=20 runs=3 chunk=64K nginx=1
extra=()
while (($#)); do
	case $1 in
	-s) size_mb=$2; shift 2 ;;
	-n) clients=$2; shift 2 ;;
	-r) runs=$2; shift 2 ;;
	-k) chunk=$2; shift 2 ;;
	--no-nginx) nginx=0; shift ;;
	--) shift; extra=("$@"); break ;;
	*) echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done

deps=("${P2S_BUILD_DEPS[@]}")
((nginx)) && deps+=(nginx-light curl)
p2s_install_deps -- "${deps[@]}"
p2s_build --keep
p2sd=$P2S_BUILD_ABS/src/daemon/p2sd
fetch=$P2S_BUILD_ABS/src/fetch/p2s-fetch

work=$(mktemp -d /tmp/p2s-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

src=$work/src/bench.bin
mkdir -p "$work/src"
chmod 755 "$work" "$work/src"   # nginx workers run unprivileged
# random data that no step can compress or dedupe
{ openssl enc -aes-128-ctr -pass pass:p2s -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
	head -c $((size_mb * 1000000)) >"$src"
want=$(sha256sum "$src" | cut -d' ' -f1)
clk=$(getconf CLK_TCK)

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

verify_outputs() {
	local bad=0 f
	for f in "$work"/out/*; do
		[[ $(sha256sum "$f" | cut -d' ' -f1) == "$want" ]] || bad=$((bad + 1))
	done
	local n
	n=$(find "$work/out" -type f | wc -l)
	((n == clients && bad == 0))
}

run_p2s() {
	rm -rf "$work/out" && mkdir -p "$work/out"
	local log=$work/p2sd.log port
	"$p2sd" --port 0 --min-clients "$clients" --gather-timeout 60 --chunk-size "$chunk" \
		--log-level notice "${extra[@]}" "$src" 2>"$log" &
	local sp=$!
	pids+=("$sp")
	for _ in $(seq 100); do
		port=$(grep -o 'port [0-9]*' "$log" 2>/dev/null | tail -1 | cut -d' ' -f2) || true
		[[ -n $port ]] && break
		kill -0 "$sp" 2>/dev/null || { cat "$log" >&2; return 1; }
		sleep 0.1
	done
	[[ -n $port ]] || { echo "p2sd did not report its port" >&2; return 1; }
	local t0 t1 cps=() fails=0 p
	t0=$(now)
	for i in $(seq "$clients"); do
		"$fetch" --quiet "127.0.0.1:$port" bench.bin -o "$work/out/c$i.bin" 2>>"$work/fetch.log" &
		cps+=($!)
	done
	for p in "${cps[@]}"; do wait "$p" || fails=$((fails + 1)); done
	t1=$(now)
	local rss cpu
	rss=$(awk '/VmHWM/{print $2}' "/proc/$sp/status")
	cpu=$(awk -v t="$clk" '{printf "%.2f", ($14 + $15) / t}' "/proc/$sp/stat")
	kill -TERM "$sp"
	wait "$sp" || true
	pids=()
	((fails == 0)) || { echo "p2s run: $fails clients failed" >&2; tail -5 "$work/fetch.log" >&2; return 1; }
	verify_outputs || { echo "p2s run: a copy differs" >&2; return 1; }
	echo "$(elapsed "$t0" "$t1") $((rss / 1024)) $cpu"
}

run_nginx() {
	rm -rf "$work/out" && mkdir -p "$work/out" "$work/nginx"
	local port=$((20000 + RANDOM % 20000))
	cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	client_body_temp_path $work/nginx;
	proxy_temp_path $work/nginx;
	fastcgi_temp_path $work/nginx;
	uwsgi_temp_path $work/nginx;
	scgi_temp_path $work/nginx;
	server { listen 127.0.0.1:$port; root $work/src; }
}
EOF
	nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
	local np=$!
	pids+=("$np")
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$port/" && break
		sleep 0.1
	done
	local t0 t1 cps=() fails=0 p
	t0=$(now)
	for i in $(seq "$clients"); do
		curl -s -f -o "$work/out/c$i.bin" "http://127.0.0.1:$port/bench.bin" &
		cps+=($!)
	done
	for p in "${cps[@]}"; do wait "$p" || fails=$((fails + 1)); done
	t1=$(now)
	kill -TERM "$np"
	wait "$np" || true
	pids=()
	((fails == 0)) && verify_outputs || { echo "nginx run failed" >&2; return 1; }
	elapsed "$t0" "$t1"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "p2s bench: ${size_mb} MB to $clients clients, chunk $chunk, $runs runs${extra:+, p2sd ${extra[*]}}"
p2s_t=() rss=() cpu=() ng_t=()
# Which goes first alternates: on a VM the first writes into fresh page
# cache can cost several times more than writes into pages just freed by
# the run before, and neither side should get the warm pages every time.
for r in $(seq "$runs"); do
	n=
	if ((nginx && r % 2 == 0)); then
		n=$(run_nginx)
	fi
	read -r t m c < <(run_p2s)
	p2s_t+=("$t") rss+=("$m") cpu+=("$c")
	if ((nginx && r % 2 == 1)); then
		n=$(run_nginx)
	fi
	line="run $r: p2s ${t}s (p2sd peak RSS ${m} MiB, CPU ${c}s)"
	if ((nginx)); then
		ng_t+=("$n")
		line+="; nginx+curl ${n}s ($( ((r % 2)) && echo second || echo first))"
	fi
	echo "$line"
done
echo "median: p2s $(printf '%s\n' "${p2s_t[@]}" | median)s, p2sd peak RSS $(printf '%s\n' "${rss[@]}" | median) MiB, p2sd CPU $(printf '%s\n' "${cpu[@]}" | median)s${ng_t:+, nginx+curl $(printf '%s\n' "${ng_t[@]}" | median)s}"
echo "all copies verified (sha256 $want)"
