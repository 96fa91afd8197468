#!/bin/bash
# SPDX-License-Identifier: MIT
# The course's analysis in one command: runs the original study of the swarm
# with p2s-bench and writes, into doc/results/, one CSV per experiment (every
# round, then medians with their range), PNG plots made with gnuplot, and
# REPORT.md saying what each plot shows, on which machine, with which commands.
#
#   contrib/study.sh                    (root or sudo: apt-get, network namespace)
#   STUDY_SIZE=4M STUDY_NLIST="5 10 20" STUDY_ROUNDS=1 contrib/study.sh
#
# The experiments (STUDY_EXPERIMENTS picks a subset, in this order):
#   control  mean relay RTT over all chunks, and per chunk index, in both
#            control modes (udp, tcp): STUDY_CLIENTS clients
#   nclients total time against N, for each N in STUDY_NLIST
#   cache    total time against p2sd's cache size: STUDY_CACHE_CLIENTS clients,
#            STUDY_CACHE_SIZES (default: ten sizes, geometric, from one chunk
#            to the whole file)
#   order    sequential against random request order: STUDY_CLIENTS clients
#   query    directed against broadcast queries: STUDY_CLIENTS clients
#   loss     both control modes at each UDP loss in STUDY_LOSSES (percent),
#            STUDY_LOSS_CLIENTS clients, in a network namespace this script
#            makes (iptables drops that share of UDP packets at random) and
#            removes on exit; skipped, with the reason in the report, without
#            root or sudo
#
# Parameters (environment variables; sizes in bytes or with K/M/G, powers of
# 1024). The defaults take about 10 minutes on an idle 2-core machine:
#   STUDY_SIZE=20M            the file, generated once from /dev/urandom
#   STUDY_CHUNK=64K           p2sd --chunk-size (p2sd's default)
#   STUDY_ROUNDS=3            p2s-bench --rounds for every point (medians and
#                             min-max ranges are over these)
#   STUDY_CLIENTS=10          clients for control, order and query
#   STUDY_NLIST="5 10 50 100" the N of the nclients experiment
#   STUDY_CACHE_CLIENTS=100   clients for the cache experiment
#   STUDY_CACHE_SIZES=        explicit list of cache sizes instead of the ten
#   STUDY_CACHE=              p2sd --cache for control, order, query and loss
#                             (default: a quarter of the file, whole chunks, so
#                             that some requests miss and go to the members)
#   STUDY_LOSSES="0 1 5"      UDP loss percentages of the loss experiment
#   STUDY_LOSS_CLIENTS=10     clients for the loss experiment
#   STUDY_COPIES=/dev/shm     p2s-bench --out: where the copies are written
#                             (empty: p2s-bench's own directory under /tmp)
#   STUDY_TIMEOUT=300         p2s-bench --timeout, per round and side
#   STUDY_OUT=doc/results     where the CSV, PNG and REPORT.md go (relative to
#                             the repository root, or absolute)
#   STUDY_EXPERIMENTS="control nclients cache order query loss"
#   STUDY_SMOKE=0             1: the report says it is a smoke run with
#                             reduced sizes, not figures to quote
#   STUDY_NO_INSTALL=0        1: install nothing, fail if a tool is missing
#   P2S_BENCH=                a built p2s-bench to use (it finds p2sd and
#                             p2s-fetch itself, see p2s-bench(1)); empty: build
#                             the project in build/ and use its p2s-bench
#
# Builds the project (contrib/lib.sh), installs gnuplot-nox, jq, iproute2 and
# iptables when missing. Exits 0 when every run verified every copy; a failed
# run is recorded (ok=false) and the study goes on, then exits 1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=contrib/lib.sh
source "$here/lib.sh"

size=${STUDY_SIZE:-20M}
chunk=${STUDY_CHUNK:-64K}
rounds=${STUDY_ROUNDS:-3}
clients=${STUDY_CLIENTS:-10}
read -r -a nlist <<<"${STUDY_NLIST:-5 10 50 100}"
cache_clients=${STUDY_CACHE_CLIENTS:-100}
read -r -a cache_sizes <<<"${STUDY_CACHE_SIZES:-}"
base_cache=${STUDY_CACHE:-}
read -r -a losses <<<"${STUDY_LOSSES:-0 1 5}"
loss_clients=${STUDY_LOSS_CLIENTS:-10}
copies=${STUDY_COPIES-/dev/shm}
timeout=${STUDY_TIMEOUT:-300}
outdir=${STUDY_OUT:-doc/results}
read -r -a experiments <<<"${STUDY_EXPERIMENTS:-control nclients cache order query loss}"
smoke=${STUDY_SMOKE:-0}

# Bytes from SIZE[K|M|G].
to_bytes() {
	[[ $1 =~ ^([0-9]+)([KMG]?)$ ]] || p2s_die "'$1' is not a size (bytes, or with K, M or G)"
	local n=${BASH_REMATCH[1]}
	case ${BASH_REMATCH[2]} in
	K) n=$((n * 1024)) ;;
	M) n=$((n * 1024 * 1024)) ;;
	G) n=$((n * 1024 * 1024 * 1024)) ;;
	esac
	printf '%s\n' "$n"
}
count() { # NAME VALUE: a whole number from 1
	[[ $2 =~ ^[0-9]+$ && $2 -ge 1 ]] || p2s_die "$1 must be a whole number from 1 (got '$2')"
}
size_b=$(to_bytes "$size")
chunk_b=$(to_bytes "$chunk")
((size_b >= chunk_b)) || p2s_die "STUDY_SIZE ($size) is smaller than one chunk ($chunk)"
count STUDY_ROUNDS "$rounds"
count STUDY_CLIENTS "$clients"
count STUDY_CACHE_CLIENTS "$cache_clients"
count STUDY_LOSS_CLIENTS "$loss_clients"
for n in "${nlist[@]}"; do count "STUDY_NLIST entry" "$n"; done
for l in "${losses[@]}"; do
	if ! [[ $l =~ ^[0-9]+(\.[0-9]+)?$ ]] || ! awk -v l="$l" 'BEGIN { exit !(l < 100) }'; then
		p2s_die "STUDY_LOSSES entries must be percentages below 100 (got '$l')"
	fi
done
for e in "${experiments[@]}"; do
	[[ " control nclients cache order query loss " == *" $e "* ]] \
		|| p2s_die "unknown experiment '$e' in STUDY_EXPERIMENTS"
done
want() { [[ " ${experiments[*]} " == *" $1 "* ]]; }
nchunks=$(((size_b + chunk_b - 1) / chunk_b))
if [[ -z $base_cache ]]; then
	q=$((nchunks / 4))
	((q >= 1)) || q=1
	base_cache=$((q * chunk_b))
else
	base_cache=$(to_bytes "$base_cache")
fi
if [[ ${#cache_sizes[@]} -eq 0 ]]; then
	# ten whole-chunk sizes, geometric from one chunk to the file, no repeats
	mapfile -t cache_sizes < <(awk -v n="$nchunks" -v c="$chunk_b" 'BEGIN {
		last = 0
		for (k = 0; k < 10; k++) {
			m = int(exp(log(n) * k / 9) + 0.5)
			if (m <= last) m = last + 1
			if (m > n) break
			print m * c; last = m
		}
	}')
else
	for i in "${!cache_sizes[@]}"; do cache_sizes[i]=$(to_bytes "${cache_sizes[i]}"); done
fi

# ---- tools, build, work directory --------------------------------------------

bench=${P2S_BENCH:-}
if [[ ${STUDY_NO_INSTALL:-0} != 1 ]]; then
	if [[ -n $bench ]]; then
		p2s_install_deps -- gnuplot-nox jq iproute2 iptables ethtool
	else
		p2s_install_deps -- "${P2S_BUILD_DEPS[@]}" gnuplot-nox jq iproute2 iptables ethtool
	fi
fi
for tool in gnuplot jq awk join; do
	command -v "$tool" >/dev/null 2>&1 || p2s_die "$tool is not installed (gnuplot-nox, jq)"
done
if [[ -z $bench ]]; then
	p2s_build --keep
	bench=$P2S_BUILD_ABS/src/bench/p2s-bench
fi
[[ -x $bench ]] || p2s_die "$bench was not built"
"$bench" --help | grep -q -- --keep-rtt || p2s_die "$bench has no --keep-rtt (rebuild it)"
[[ $outdir == /* ]] || outdir=$P2S_ROOT/$outdir
mkdir -p "$outdir"
if [[ -n $copies && ! -d $copies ]]; then
	p2s_say "STUDY_COPIES=$copies is not a directory: the copies go under /tmp"
	copies=
fi

tmp=
ns=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
	if [[ -n $ns ]]; then
		p2s_as_root ip netns del "$ns" 2>/dev/null || true
	fi
	if [[ -n $tmp ]]; then
		rm -rf -- "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2s-study.XXXXXX") || p2s_die "mktemp failed"
chmod 755 "$tmp"

src=$tmp/study.bin
head -c "$size_b" /dev/urandom >"$src" || p2s_die "could not write $src"
chmod 644 "$src"

# The study's own outputs (by name: doc/results holds other notes too): those
# of an earlier run go, so that the report, the CSV and the plots always come
# from one run.
# The version of the tree the study runs on: "-dirty" when anything but the
# study's own outputs differs from the commit (a rerun before those are
# committed measures the same code).
version=$(git -C "$P2S_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ $version != unknown ]] &&
	! git -C "$P2S_ROOT" diff --quiet HEAD -- . ":(exclude)${outdir#"$P2S_ROOT"/}" 2>/dev/null; then
	version+=-dirty
fi
rm -f -- "$outdir"/{control,nclients,cache,order,query,loss}{,-summary}.csv \
	"$outdir"/rtt-by-chunk.csv "$outdir"/{rtt-mean,rtt-by-chunk,nclients,cache,order,query,loss}.png \
	"$outdir/REPORT.md"

commands=$tmp/commands.txt
: >"$commands"
failures=0
study_t0=$SECONDS

# The columns of every experiment's CSV after its key columns, and the jq
# program that prints them for each round of p2s-bench's JSON.
fields=(round ok wall_s goodput_mib_s server_peak_rss_kib server_cpu_s client_max_rss_kib clients_cpu_s
	server_mib_in server_mib_out requests cache_hits cache_hit_ratio uploads dup_uploads
	rtt_samples rtt_from_cache rtt_from_peer rtt_mean_us rtt_p50_us rtt_p99_us)
jq_prog=".p2s[] | [$(printf '.%s, ' "${fields[@]}" | sed 's/, $//')] | map(if . == null then \"NaN\" else tostring end) | join(\",\")"

# The key columns of each experiment's CSV.
key_header() {
	case $1 in
	control) echo control ;;
	nclients) echo clients ;;
	cache) echo cache_bytes ;;
	order) echo order ;;
	query) echo query ;;
	loss) echo control,udp_loss_pct ;;
	esac
}

# run_bench EXP KEYS [--ns] -- P2S-BENCH-ARGS...: one p2s-bench run of
# $rounds rounds on the study's file, its rounds appended to EXP.csv with the
# comma-separated KEYS in front.
run_bench() {
	local exp=$1 keys=$2 csv=$outdir/$1.csv json=$tmp/run.json err=$tmp/run.err rc=0
	shift 2
	local -a pre=()
	if [[ $1 == --ns ]]; then
		pre=(p2s_as_root ip netns exec "$ns")
		shift
	fi
	[[ $1 == -- ]] && shift
	local -a cmd=("$bench" --json --file "$src" --chunk-size "$chunk_b" --rounds "$rounds"
		--timeout "$timeout" ${copies:+--out "$copies"} "$@")
	# the command as one would type it, relative to the repository
	local shown
	shown=$(printf '%q ' "${pre[@]:1}" "${cmd[@]}")
	shown=${shown//"$P2S_ROOT"\//}
	shown=${shown//"$tmp"/TMP}
	printf '%s\n' "${shown% }" >>"$commands"
	p2s_say "$exp [$keys]: ${shown% }"
	# p2sd --port 0 takes a free TCP port and then binds UDP to the same
	# number, which another program may hold: such a start is tried again
	local attempt
	for attempt in 1 2 3; do
		rc=0
		"${pre[@]}" "${cmd[@]}" >"$json" 2>"$err" || rc=$?
		if ((rc == 0)) || ! grep -q 'exited before it was ready' "$err"; then
			break
		fi
		p2s_say "p2sd could not start (attempt $attempt): $(grep -m1 'p2sd: error' "$err" || true)"
	done
	if [[ ! -s $csv ]]; then
		printf '%s,%s\n' "$(key_header "$exp")" "$(IFS=,; echo "${fields[*]}")" >"$csv"
	fi
	local rows i
	if ! rows=$(jq -r "$jq_prog" "$json" 2>/dev/null) || [[ -z $rows ]]; then
		rows="NaN,false"
		for ((i = 2; i < ${#fields[@]}; i++)); do rows+=",NaN"; done
	fi
	printf '%s,%s\n' "$keys" "${rows//$'\n'/$'\n'$keys,}" >>"$csv"
	if ((rc != 0)) || [[ $(jq -r .all_verified "$json" 2>/dev/null) != true ]]; then
		failures=$((failures + 1))
		p2s_say "warning: $exp [$keys] failed (p2s-bench exit $rc); its last lines:"
		tail -n 8 "$err" >&2
	fi
}

# summarize EXP NKEYS: EXP-summary.csv with, per key (in the order first
# seen), the rounds that verified and the median, min and max of the main
# figures over them.
summarize() {
	local exp=$1 nk=$2
	awk -F, -v nk="$nk" '
	# sorts the numbers of the string s into a[1..n] (POSIX awk has no asort)
	function srt(s, a,   n, i, j, v) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++) {
			v = a[i] + 0
			for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]
			a[j + 1] = v
		}
		return n
	}
	function med(s,   a, n) { n = srt(s, a); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	function lo(s,   a) { srt(s, a); return a[1] }
	function hi(s,   a, n) { n = srt(s, a); return a[n] }
	NR == 1 {
		for (i = 1; i <= NF; i++) col[$i] = i
		hdr = $1; for (i = 2; i <= nk; i++) hdr = hdr "," $i
		nm = split("wall_s rtt_mean_us rtt_p99_us server_mib_in cache_hit_ratio requests dup_uploads goodput_mib_s", m, " ")
		for (j = 1; j <= nm; j++) hdr = hdr "," m[j] "_median," m[j] "_min," m[j] "_max"
		print hdr ",rounds,rounds_ok"
		next
	}
	{
		k = $1; for (i = 2; i <= nk; i++) k = k "," $i
		if (!(k in seen)) { seen[k] = 1; order[++nkeys] = k }
		total[k]++
		if ($col["ok"] != "true") next
		ok[k]++
		for (j = 1; j <= nm; j++) {
			v = $col[m[j]]
			if (v != "NaN" && v != "") vals[k, j] = vals[k, j] " " v
		}
	}
	END {
		for (x = 1; x <= nkeys; x++) {
			k = order[x]; line = k
			for (j = 1; j <= nm; j++) {
				s = vals[k, j]
				if (s == "") line = line ",NaN,NaN,NaN"
				else line = line "," med(s) "," lo(s) "," hi(s)
			}
			print line "," total[k] "," ok[k] + 0
		}
	}' "$outdir/$exp.csv" >"$outdir/$exp-summary.csv"
}

# gnuplot with the study's common settings; the script on stdin.
plot() {
	local png=$1
	{
		printf 'set terminal pngcairo size 800,500 noenhanced font ",11"\n'
		printf 'set output "%s"\n' "$png"
		printf 'set datafile separator ","\nset datafile columnheaders\nset key top left\nset grid\n'
		cat
	} | gnuplot || p2s_die "gnuplot failed on $png"
}
# A bar per key: bars SUMMARY PNG TITLE YLABEL METRIC [SCALE]
bars() {
	local f=$1 png=$2 title=$3 ylabel=$4 metric=$5 scale=${6:-1}
	plot "$png" <<-EOF
		set title "$title"
		set ylabel "$ylabel"
		set yrange [0:*]
		set style fill solid 0.5
		set boxwidth 0.5
		set xrange [-0.5:*]
		set offsets 0, 0.5, 0, 0
		unset key
		plot "$f" using 0:(column("${metric}_median")*$scale):xtic(1) with boxes, \\
		     "" using 0:(column("${metric}_median")*$scale):(column("${metric}_min")*$scale):(column("${metric}_max")*$scale) with yerrorbars lc black
	EOF
}
# A markdown table of a summary's columns: table SUMMARY NKEYS COLUMN:LABEL:SCALE:DIGITS...
table() {
	local f=$1 nk=$2 IFS=';'
	shift 2
	awk -F, -v nk="$nk" -v specs="$*" -v r="$rounds" '
	function fmt(v, sc, d) { return v == "NaN" ? "-" : sprintf("%." d "f", v * sc) }
	NR == 1 {
		for (i = 1; i <= NF; i++) col[$i] = i
		ns = split(specs, sp, ";")
		h = "|"; sep = "|"
		for (i = 1; i <= nk; i++) { h = h " " $i " |"; sep = sep " --- |" }
		for (j = 1; j <= ns; j++) { split(sp[j], p, ":"); h = h " " p[2] " |"; sep = sep " ---: |" }
		print h " rounds ok |"; print sep " ---: |"; next
	}
	{
		l = "|"
		for (i = 1; i <= nk; i++) l = l " " $i " |"
		for (j = 1; j <= ns; j++) {
			split(sp[j], p, ":"); c = p[1]
			v = fmt($col[c "_median"], p[3], p[4])
			if (r > 1 && $col[c "_median"] != "NaN")
				v = v " (" fmt($col[c "_min"], p[3], p[4]) "-" fmt($col[c "_max"], p[3], p[4]) ")"
			l = l " " v " |"
		}
		print l " " $col["rounds_ok"] "/" $col["rounds"] " |"
	}' "$f"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

# ---- the experiments -----------------------------------------------------------

report_body=$tmp/body.md
: >"$report_body"
section() { printf '\n## %s\n\n' "$1" >>"$report_body"; }
say() { printf '%s\n' "$@" >>"$report_body"; }

if want control; then
	for mode in udp tcp; do
		run_bench control "$mode" -- --clients "$clients" --cache "$base_cache" --control "$mode" \
			--keep-rtt "$tmp/rtt-$mode"
	done
	summarize control 1
	# the mean RTT of each chunk index over every client and round
	for mode in udp tcp; do
		awk -F, 'FNR > 1 && $1 ~ /^[0-9]+$/ { s[$1] += $3; n[$1]++ }
			END { for (c in s) printf "%d,%.1f,%d\n", c, s[c] / n[c], n[c] }' \
			"$tmp/rtt-$mode"/*.csv 2>/dev/null | sort -t, -k1,1 >"$tmp/bychunk-$mode" || true
	done
	join -t, -a1 -a2 -e NaN -o 0,1.2,1.3,2.2,2.3 "$tmp/bychunk-udp" "$tmp/bychunk-tcp" 2>/dev/null \
		| sort -t, -k1,1n | { echo "chunk,udp_mean_us,udp_samples,tcp_mean_us,tcp_samples"; cat; } \
		>"$outdir/rtt-by-chunk.csv"
	bars "$outdir/control-summary.csv" "$outdir/rtt-mean.png" \
		"Mean relay RTT over all chunks, $clients clients, $(mib "$size_b"), cache $(mib "$base_cache")" \
		"mean RTT (ms)" rtt_mean_us 0.001
	plot "$outdir/rtt-by-chunk.png" <<-EOF
		set title "Mean relay RTT per chunk index, $clients clients, $rounds round(s), cache $(mib "$base_cache")"
		set xlabel "chunk index"
		set ylabel "mean RTT (ms)"
		set yrange [0:*]
		plot "$outdir/rtt-by-chunk.csv" using 1:(\$2/1000) with linespoints pt 7 ps 0.4 title "udp control", \
		     "" using 1:(\$4/1000) with linespoints pt 5 ps 0.4 title "tcp control"
	EOF
	section "1. Mean RTT over all chunks, both control modes"
	say "![mean RTT](rtt-mean.png)" "" \
		"Each bar is the mean round-trip time of the chunks the clients received through the relay (the rows of their \`--rtt-log\`: request to arrival, cache hits and chunks fetched from a member alike; a client's initial share is not in it), the median over the rounds, with the min-max range as the error bar; $clients clients, a $(mib "$size_b") file, p2sd cache $(mib "$base_cache")." \
		"Data: [control.csv](control.csv) (every round), [control-summary.csv](control-summary.csv)." ""
	table "$outdir/control-summary.csv" 1 rtt_mean_us:"mean RTT (ms)":0.001:2 rtt_p99_us:"p99 RTT (ms)":0.001:2 \
		wall_s:"total time (s)":1:3 cache_hit_ratio:"cache hit %":100:1 >>"$report_body"
	section "2. Mean RTT per chunk index"
	say "![RTT per chunk index](rtt-by-chunk.png)" "" \
		"For each chunk index, the mean RTT of that chunk over every client and round that received it through the relay, per control mode: how the round trip changes from the first chunks of the file to the last (the chunks of the clients' initial shares do not appear for the client that held them)." \
		"Data: [rtt-by-chunk.csv](rtt-by-chunk.csv) (chunk, mean and number of samples per mode); the raw logs are p2s-bench's \`--keep-rtt\` files, not kept."
fi

if want nclients; then
	for n in "${nlist[@]}"; do
		run_bench nclients "$n" -- --clients "$n"
	done
	summarize nclients 1
	plot "$outdir/nclients.png" <<-EOF
		set title "Total time against the number of clients, $(mib "$size_b"), p2sd defaults"
		set xlabel "clients (N)"
		set ylabel "total time (s)"
		set yrange [0:*]
		set xrange [0:*]
		plot "$outdir/nclients-summary.csv" using 1:(column("wall_s_median")) with linespoints pt 7 title "median", \
		     "" using 1:(column("wall_s_median")):(column("wall_s_min")):(column("wall_s_max")) with yerrorbars lc black title "min-max"
	EOF
	section "3. Total time against N"
	growth=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
		$c["wall_s_median"] != "NaN" { if (!n0) { n0 = $1; t0 = $c["wall_s_median"] } n1 = $1; t1 = $c["wall_s_median"] }
		END { if (n0 && n1 != n0 && t0 > 0) printf "From N = %d to N = %d (x%.1f clients) the median total time grew x%.2f.", n0, n1, n1 / n0, t1 / t0 }' \
		"$outdir/nclients-summary.csv")
	say "![time against N](nclients.png)" "" \
		"Total time (first client spawned to last client exited, every copy verified afterwards) against the number of clients N, median over the rounds with the min-max range; a $(mib "$size_b") file, p2sd's default cache and options. Linear growth would be a straight line through the origin. $growth" \
		"Data: [nclients.csv](nclients.csv), [nclients-summary.csv](nclients-summary.csv)." ""
	table "$outdir/nclients-summary.csv" 1 wall_s:"total time (s)":1:3 goodput_mib_s:"aggregate goodput (MiB/s)":1:1 \
		rtt_mean_us:"mean RTT (ms)":0.001:2 >>"$report_body"
fi

if want cache; then
	for c in "${cache_sizes[@]}"; do
		run_bench cache "$c" -- --clients "$cache_clients" --cache "$c"
	done
	summarize cache 1
	plot "$outdir/cache.png" <<-EOF
		set title "Total time against p2sd's cache size, $cache_clients clients, $(mib "$size_b")"
		set xlabel "cache (chunks of $(mib "$chunk_b"))"
		set ylabel "total time (s)"
		set y2label "cache hit ratio (%)"
		set logscale x
		set yrange [0:*]
		set y2range [0:100]
		set y2tics
		set key top right
		plot "$outdir/cache-summary.csv" using (\$1/$chunk_b):(column("wall_s_median")) with linespoints pt 7 title "total time (median)", \
		     "" using (\$1/$chunk_b):(column("wall_s_median")):(column("wall_s_min")):(column("wall_s_max")) with yerrorbars lc black notitle, \
		     "" using (\$1/$chunk_b):(column("cache_hit_ratio_median")*100) axes x1y2 with linespoints pt 5 dt 2 title "cache hit ratio"
	EOF
	section "4. Total time against cache size"
	say "![time against cache size](cache.png)" "" \
		"Total time of $cache_clients clients on a $(mib "$size_b") file against p2sd's \`--cache\`, ${#cache_sizes[@]} sizes from one chunk to the whole file (log scale, in chunks), median and min-max over the rounds; the dashed line (right axis) is the share of requests answered from the cache. A small cache sends more requests to the members (a query and an upload each) instead of answering from memory." \
		"Data: [cache.csv](cache.csv) (key: cache bytes), [cache-summary.csv](cache-summary.csv)." ""
	table "$outdir/cache-summary.csv" 1 wall_s:"total time (s)":1:3 cache_hit_ratio:"cache hit %":100:1 \
		server_mib_in:"MiB from members":1:0 >>"$report_body"
fi

if want order; then
	for o in sequential random; do
		run_bench order "$o" -- --clients "$clients" --cache "$base_cache" --order "$o"
	done
	summarize order 1
	bars "$outdir/order-summary.csv" "$outdir/order.png" \
		"Sequential against random order, $clients clients, $(mib "$size_b"), cache $(mib "$base_cache")" \
		"total time (s)" wall_s
	section "5. Sequential against random order"
	say "![order](order.png)" "" \
		"Total time with every client requesting the chunks it lacks in file order (\`--order sequential\`) or in a random order, median and min-max over the rounds; $clients clients, cache $(mib "$base_cache"). In sequential order the clients ask for the same chunks at about the same time, so a chunk fetched once from a member serves many requests from the cache; the table shows the hit ratio and the bytes p2sd received from the members (the file is $(mib "$size_b"))." \
		"Data: [order.csv](order.csv), [order-summary.csv](order-summary.csv)." ""
	table "$outdir/order-summary.csv" 1 wall_s:"total time (s)":1:3 cache_hit_ratio:"cache hit %":100:1 \
		server_mib_in:"MiB from members":1:0 rtt_mean_us:"mean RTT (ms)":0.001:2 >>"$report_body"
fi

if want query; then
	for q in directed broadcast; do
		run_bench query "$q" -- --clients "$clients" --cache "$base_cache" --query "$q"
	done
	summarize query 1
	bars "$outdir/query-summary.csv" "$outdir/query.png" \
		"Directed against broadcast queries, $clients clients, $(mib "$size_b"), cache $(mib "$base_cache")" \
		"total time (s)" wall_s
	section "6. Directed against broadcast queries"
	say "![query](query.png)" "" \
		"Total time when p2sd asks one member that holds a missed chunk (\`--query directed\`, the least busy one) or every member (\`broadcast\`; the first upload is kept, the others are dropped as duplicates), median and min-max over the rounds; $clients clients, cache $(mib "$base_cache"). The table has the duplicate uploads each mode cost." \
		"Data: [query.csv](query.csv), [query-summary.csv](query-summary.csv)." ""
	table "$outdir/query-summary.csv" 1 wall_s:"total time (s)":1:3 dup_uploads:"duplicate uploads":1:0 \
		server_mib_in:"MiB from members":1:0 rtt_mean_us:"mean RTT (ms)":0.001:2 >>"$report_body"
fi

loss_note=
if want loss; then
	if [[ $(id -u) -ne 0 ]] && ! sudo -n true 2>/dev/null; then
		loss_note="Skipped: the loss experiment needs root (or sudo without a password) for ip netns and iptables."
		p2s_say "$loss_note"
	else
		ns=p2s-study-$$
		p2s_as_root ip netns add "$ns" || p2s_die "cannot create the network namespace $ns"
		p2s_as_root ip -n "$ns" link set lo up || p2s_die "cannot bring lo up in $ns"
		# GSO batches segmented before iptables sees them: each datagram is
		# lost on its own, as on a real link
		p2s_as_root ip netns exec "$ns" ethtool -K lo tx-udp-segmentation off >/dev/null ||
			p2s_die "cannot turn UDP segmentation offload off on lo in $ns"
		printf '# in the namespace: ethtool -K lo tx-udp-segmentation off\n' >>"$commands"
		for l in "${losses[@]}"; do
			p2s_as_root ip netns exec "$ns" iptables -F INPUT || p2s_die "iptables does not work in $ns"
			printf '# in the namespace, for %s %% UDP loss: iptables -F INPUT\n' "$l" >>"$commands"
			if [[ $l != 0 ]]; then
				p2s_as_root ip netns exec "$ns" iptables -A INPUT -p udp -m statistic --mode random \
					--probability "$(awk -v p="$l" 'BEGIN { printf "%.4f", p / 100 }')" -j DROP \
					|| p2s_die "cannot add the iptables rule for $l % UDP loss in $ns"
				printf '%s\n' "# in the namespace: iptables -A INPUT -p udp -m statistic --mode random --probability $(awk -v p="$l" 'BEGIN { printf "%.4f", p / 100 }') -j DROP" >>"$commands"
			fi
			for mode in udp tcp; do
				run_bench loss "$mode,$l" --ns -- --clients "$loss_clients" --cache "$base_cache" --control "$mode"
			done
		done
		p2s_as_root ip netns del "$ns"
		ns=
		summarize loss 2
		plot "$outdir/loss.png" <<-EOF
			set title "Total time against UDP loss, $loss_clients clients, $(mib "$size_b"), cache $(mib "$base_cache")"
			set xlabel "UDP packets dropped (%)"
			set ylabel "total time (s)"
			set yrange [0:*]
			set offsets 0.2, 0.2, 0, 0
			set datafile nocolumnheaders
			plot "< grep '^udp,' '$outdir/loss-summary.csv'" using 2:(column(3)):(column(4)):(column(5)) with yerrorlines pt 7 title "udp control", \
			     "< grep '^tcp,' '$outdir/loss-summary.csv'" using 2:(column(3)):(column(4)):(column(5)) with yerrorlines pt 5 title "tcp control"
		EOF
	fi
	section "7. Both control modes under UDP loss"
	if [[ -n $loss_note ]]; then
		say "$loss_note"
	else
		say "![loss](loss.png)" "" \
			"Total time in each control mode while iptables, in a network namespace made for the run, drops the given share of UDP packets at random (TCP is not touched), median and min-max over the rounds; $loss_clients clients, cache $(mib "$base_cache"). In \`udp\` control mode the loss hits control messages (retried on timers), in \`tcp\` mode it hits the chunk data." \
			"Data: [loss.csv](loss.csv), [loss-summary.csv](loss-summary.csv)." ""
		table "$outdir/loss-summary.csv" 2 wall_s:"total time (s)":1:3 rtt_mean_us:"mean RTT (ms)":0.001:2 \
			rtt_p99_us:"p99 RTT (ms)":0.001:1 >>"$report_body"
	fi
fi

# ---- the report ----------------------------------------------------------------

study_s=$((SECONDS - study_t0))
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
# The backquotes below are markdown, not command substitutions.
# shellcheck disable=SC2016
{
	printf '# p2s: the study\n\n'
	if [[ $smoke == 1 ]]; then
		printf '> **Smoke run on a shared machine; rerun contrib/study.sh for real figures.** The sizes below are reduced and other work shared the CPUs: these numbers only show that the study runs end to end.\n\n'
	fi
	printf 'Made by `contrib/study.sh` on %s (UTC) in %d s, p2s `%s`.\n' "$(date -u '+%Y-%m-%d %H:%M')" "$study_s" "$version"
	printf 'Every point is one `p2s-bench` run of %d round(s) on loopback; total time runs from the first client spawned to the last client exited; every copy is checked against the source SHA-256 afterwards. Tables give the median over the rounds' "$rounds"
	if ((rounds > 1)); then printf ' with the min-max range in brackets.\n'; else printf ' (one round: no spread).\n'; fi
	if ((failures > 0)); then
		printf '\n**%d run(s) failed** (a client failed or a copy did not verify): see the `ok` column of the CSV files.\n' "$failures"
	fi
	printf '\n## Machine\n\n'
	printf -- '- CPUs (`nproc`): %s%s\n' "$(nproc)" "${cpu:+ ($cpu)}"
	printf -- '- kernel: `%s`\n' "$(uname -srm)"
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%dT%H:%M:%SZ')"
	printf -- '- memory (`free -h`):\n\n```\n%s\n```\n' "$(free -h)"
	printf '\n## Parameters\n\n'
	printf '| | |\n| --- | --- |\n'
	printf '| file (`STUDY_SIZE`) | %s (%s bytes), %d chunks of %s (`STUDY_CHUNK`) |\n' "$size" "$size_b" "$nchunks" "$chunk"
	printf '| rounds per point (`STUDY_ROUNDS`) | %d |\n' "$rounds"
	printf '| clients for control, order, query (`STUDY_CLIENTS`) | %d |\n' "$clients"
	printf '| N (`STUDY_NLIST`) | %s |\n' "${nlist[*]}"
	printf '| clients for cache (`STUDY_CACHE_CLIENTS`) | %d |\n' "$cache_clients"
	printf '| cache sizes, bytes (`STUDY_CACHE_SIZES`) | %s |\n' "${cache_sizes[*]}"
	printf '| cache for control, order, query, loss (`STUDY_CACHE`) | %s bytes |\n' "$base_cache"
	printf '| UDP loss %% (`STUDY_LOSSES`), clients (`STUDY_LOSS_CLIENTS`) | %s; %d |\n' "${losses[*]}" "$loss_clients"
	printf '| copies written under (`STUDY_COPIES`) | %s |\n' "${copies:-p2s-bench directory under /tmp}"
	printf '| experiments (`STUDY_EXPERIMENTS`) | %s |\n' "${experiments[*]}"
	cat "$report_body"
	printf '\n## Commands\n\n'
	printf 'The study as run:\n\n```\n'
	printf '%s' "${STUDY_SIZE:+STUDY_SIZE=$STUDY_SIZE }${STUDY_CHUNK:+STUDY_CHUNK=$STUDY_CHUNK }${STUDY_ROUNDS:+STUDY_ROUNDS=$STUDY_ROUNDS }"
	printf '%s' "${STUDY_CLIENTS:+STUDY_CLIENTS=$STUDY_CLIENTS }${STUDY_NLIST:+STUDY_NLIST=\"$STUDY_NLIST\" }"
	printf '%s' "${STUDY_CACHE_CLIENTS:+STUDY_CACHE_CLIENTS=$STUDY_CACHE_CLIENTS }${STUDY_CACHE_SIZES:+STUDY_CACHE_SIZES=\"$STUDY_CACHE_SIZES\" }"
	printf '%s' "${STUDY_CACHE:+STUDY_CACHE=$STUDY_CACHE }${STUDY_LOSSES:+STUDY_LOSSES=\"$STUDY_LOSSES\" }"
	printf '%s' "${STUDY_LOSS_CLIENTS:+STUDY_LOSS_CLIENTS=$STUDY_LOSS_CLIENTS }${STUDY_EXPERIMENTS:+STUDY_EXPERIMENTS=\"$STUDY_EXPERIMENTS\" }"
	printf '%s' "${STUDY_SMOKE:+STUDY_SMOKE=$STUDY_SMOKE }"
	printf 'contrib/study.sh\n```\n\n'
	printf 'which ran, from the repository root (`TMP` is the temporary directory of the study, `TMP/study.bin` the generated file; `--ns` runs were inside the namespace `ip netns add p2s-study-PID`, `ip -n NS link set lo up`):\n\n```\n'
	cat "$commands"
	printf '```\n'
} >"$outdir/REPORT.md"

p2s_say "wrote $outdir/REPORT.md, $(find "$outdir" -maxdepth 1 -name '*.csv' | wc -l) CSV files and $(find "$outdir" -maxdepth 1 -name '*.png' | wc -l) plots in ${study_s} s"
if ((failures > 0)); then
	p2s_die "$failures run(s) failed; see the ok column of the CSV files in $outdir"
fi
