#!/bin/bash
# SPDX-License-Identifier: MIT
# Real systemd: boots systemd as PID 1 in systemd-nspawn on a Debian bookworm
# root (debootstrap, cached in /var/tmp between runs), installs the build
# into it as a package would (meson install, then "systemctl enable
# p2sd.socket"), and checks what users do: socket activation by a swarm of
# host-built clients entering the container's network namespace, STATUS=,
# journald priorities, reload, Type=notify fetches with systemd-run and the
# p2s-fetch@ template, a clean stop, a restart on failure, and a starved
# watchdog.
#
# Needs root. Exits 77 (skip) with the reason when not root, or when
# systemd-nspawn/debootstrap or the Debian archive cannot be had; exits 1
# when it can run and something is wrong. Prints "N passed, N failed".
#
# Environment: P2S_BUILD_ROOT, P2S_FETCH (meson sets them); P2S_NSPAWN_BASE
# to put the cached root elsewhere; P2S_NSPAWN_KEEP=1 to keep the run
# directory for a post-mortem.
set -uo pipefail

BUILD=${P2S_BUILD_ROOT:?run through meson test}
FETCH=${P2S_FETCH:?run through meson test}
BASE=${P2S_NSPAWN_BASE:-/var/tmp/p2s-nspawn-bookworm}
# what the cached root holds; a change rebuilds it
BASE_SPEC="bookworm minbase systemd,systemd-sysv,dbus,libsystemd0,libssl3,procps v1"

skip() { echo "SKIP: $*"; exit 77; }
t0=$(date +%s.%N)
elapsed() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

[ "$(id -u)" -eq 0 ] || skip "not root: systemd-nspawn needs root"
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
	command -v apt-get >/dev/null || skip "systemd-nspawn or debootstrap missing, and no apt-get"
	echo "# installing systemd-container and debootstrap"
	{ DEBIAN_FRONTEND=noninteractive apt-get -qq update &&
	  DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends \
		systemd-container debootstrap; } >/dev/null 2>&1 ||
		skip "cannot install systemd-container and debootstrap (no package archive?)"
fi
for t in nsenter meson tar flock; do
	command -v $t >/dev/null || skip "$t is not installed"
done

RUN=
NSPID=
LEADER=
MACH=p2s-test-$$
pass=0
fail=0
ok()    { echo "ok   - $*"; pass=$((pass + 1)); }
bad()   { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { local d=$1; shift; if "$@"; then ok "$d"; else bad "$d"; fi; }
show()  { sed 's/^/#   /'; }

cleanup() {
	if [ -n "$LEADER" ] && kill -0 "$LEADER" 2>/dev/null; then
		nsenter -t "$LEADER" -a systemctl poweroff >/dev/null 2>&1 || true
	fi
	if [ -n "$NSPID" ]; then
		for _ in $(seq 100); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
		# nspawn asks the container to halt on SIGTERM
		kill -0 "$NSPID" 2>/dev/null && kill -TERM "$NSPID"
		for _ in $(seq 100); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$NSPID" 2>/dev/null && kill -KILL "$NSPID"
		wait "$NSPID" 2>/dev/null
	fi
	local j
	for j in $(jobs -p); do kill "$j" 2>/dev/null; done
	if [ -n "$RUN" ]; then
		if [ "${P2S_NSPAWN_KEEP:-0}" = 1 ]; then echo "# kept $RUN"; else rm -rf "$RUN"; fi
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- 1. the base root, built once per machine ------------------------------
mkdir -p "$(dirname "$BASE")"
exec 9>"$BASE.lock"
flock 9         # parallel runs wait for one debootstrap
if [ "$(cat "$BASE/.p2s-base" 2>/dev/null)" != "$BASE_SPEC" ]; then
	mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
	[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
	echo "# building $BASE with debootstrap from $mirror (once per machine)"
	built=
	for attempt in 1 2; do
		rm -rf "$BASE" "$BASE.tmp"
		if debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,libsystemd0,libssl3,procps \
			bookworm "$BASE.tmp" "$mirror" >"$BASE.log" 2>&1; then
			built=1
			break
		fi
		echo "# debootstrap attempt $attempt failed:"; tail -5 "$BASE.log" | show
	done
	[ -n "$built" ] || skip "debootstrap of bookworm failed twice (no package archive?); see $BASE.log"
	echo "$BASE_SPEC" > "$BASE.tmp/.p2s-base"
	mv "$BASE.tmp" "$BASE"
fi
flock -u 9
exec 9>&-
echo "# base root ready after $(elapsed) s"

# ---- 2. a copy for this run, with the build installed as a package would ---
RUN=$(mktemp -d /var/tmp/p2s-nspawn-run.XXXXXX)
ROOT=$RUN/root
mkdir -p "$ROOT" "$RUN/stage" "$RUN/host"
cp -a "$BASE/." "$ROOT/"
if ! out=$(meson install -C "$BUILD" --no-rebuild --destdir "$RUN/stage" 2>&1); then
	bad "meson install --destdir"; show <<<"$out"; exit 1
fi
# like dpkg: into the root, following its /lib -> usr/lib symlinks
tar -C "$RUN/stage" -cf - . | tar -C "$ROOT" -xf - --keep-directory-symlink
conf=$(cd "$RUN/stage" && find . -path '*/p2s/p2sd.conf' | head -1)
fconf=$(cd "$RUN/stage" && find . -path '*/p2s/fetch.conf' | head -1)
sbin_p2sd=$(cd "$RUN/stage" && find . -path '*bin/p2sd' | head -1)
bin_fetch=$(cd "$RUN/stage" && find . -path '*bin/p2s-fetch' | head -1)
conf=${conf#.}; fconf=${fconf#.}; sbin_p2sd=${sbin_p2sd#.}; bin_fetch=${bin_fetch#.}
check "meson install put p2sd, p2s-fetch, p2sd.conf, fetch.conf in place" \
	test -n "$conf" -a -n "$fconf" -a -x "$ROOT$sbin_p2sd" -a -x "$ROOT$bin_fetch"
for u in p2sd.socket p2sd.service p2s-fetch@.service; do
	check "unit $u installed in systemd's unit directory" test -f "$ROOT/usr/lib/systemd/system/$u"
done
check "tmpfiles snippet installed" test -f "$ROOT/usr/lib/tmpfiles.d/p2s.conf"
check "ExecStart= of the installed p2sd.service is the installed p2sd" \
	grep -q "^ExecStart=$sbin_p2sd --config $conf\$" "$ROOT/usr/lib/systemd/system/p2sd.service"
out=$(systemctl --root="$ROOT" enable p2sd.socket 2>&1)
check "systemctl enable p2sd.socket" test -L "$ROOT/etc/systemd/system/sockets.target.wants/p2sd.socket"
out=$(systemd-analyze verify --root="$ROOT" --man=no p2sd.socket p2sd.service p2s-fetch@.service 2>&1)
rc=$?
check "systemd-analyze verify --root of the installed units (rc=$rc, no output)" test $rc -eq 0 -a -z "$out"
[ -n "$out" ] && show <<<"$out"

# what an administrator would do: name resolution, a swarm size, the files
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' > "$ROOT/etc/hosts"
printf '\n# test: start once 4 members joined\nmin-clients = 4\ngather-timeout = 60\n' >> "$ROOT$conf"
check "/srv/p2s not there before boot" test ! -e "$ROOT/srv/p2s"

# ---- 3. boot ------------------------------------------------------------------
timeout 600 systemd-nspawn -q -D "$ROOT" -M "$MACH" --boot --register=no --keep-unit \
	--private-network --console=read-only >"$RUN/boot.log" 2>&1 </dev/null &
NSPID=$!
for _ in $(seq 300); do         # the leader: the process named "systemd" under nspawn
	for p in $(pgrep -P "$NSPID") $(for c in $(pgrep -P "$NSPID"); do pgrep -P "$c"; done); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && LEADER=$p && break 2
	done
	kill -0 "$NSPID" 2>/dev/null || break
	sleep 0.1
done
[ -n "$LEADER" ] || { bad "container did not start"; show <"$RUN/boot.log"; exit 1; }
IN="nsenter -t $LEADER -a"       # every namespace: the container's systemctl, journalctl
NET="nsenter -t $LEADER -n"      # the network namespace only: host-built clients
st=
for _ in $(seq 150); do
	st=$($IN systemctl is-system-running --wait 2>/dev/null) && break
	case $st in running|degraded) break;; esac
	sleep 0.2
done
check "container booted (state=$st, $(elapsed) s)" test "$st" = running
[ "$st" = running ] || $IN systemctl --failed --no-legend 2>&1 | show

check "systemd-tmpfiles made /srv/p2s and /var/lib/p2s" \
	test -d "$ROOT/srv/p2s" -a -d "$ROOT/var/lib/p2s"
check "p2sd.socket listening" test "$($IN systemctl is-active p2sd.socket)" = active
check "p2sd.service not started before the first request" test "$($IN systemctl is-active p2sd.service)" = inactive

# files readable by the dynamic user, one in a subdirectory
mkdir -p "$ROOT/srv/p2s/sub"
head -c $((8 << 20)) /dev/urandom > "$ROOT/srv/p2s/one.bin"
head -c $((3 << 20)) /dev/urandom > "$ROOT/srv/p2s/sub/two.bin"
chmod 0755 "$ROOT/srv/p2s/sub"
chmod 0644 "$ROOT/srv/p2s/one.bin" "$ROOT/srv/p2s/sub/two.bin"

# ---- 4. a swarm of host-built clients activates p2sd through the socket ----
pids=()
for i in 1 2 3 4; do
	$NET "$FETCH" --timeout 30 127.0.0.1 one.bin -o "$RUN/host/one.$i" 2>"$RUN/host/one.$i.log" &
	pids+=($!)
done
okc=0
for i in 1 2 3 4; do
	wait "${pids[$((i - 1))]}" && cmp -s "$ROOT/srv/p2s/one.bin" "$RUN/host/one.$i" && okc=$((okc + 1))
done
check "4 clients in the container's netns fetched one.bin through the activated p2sd ($okc/4 identical)" test $okc -eq 4
[ $okc -eq 4 ] || { cat "$RUN"/host/one.*.log; $IN journalctl -u p2sd.service -n 8 --no-pager -o cat; } | show
check "p2sd.service active, Type=notify READY reached (SubState=running)" \
	test "$($IN systemctl show -P SubState p2sd.service)" = running
mainpid=$($IN systemctl show -P MainPID p2sd.service)
# shellcheck disable=SC2016  # awk's $2
uid=$($IN awk '/^Uid:/ { print $2 }' "/proc/$mainpid/status" 2>/dev/null)
check "p2sd runs as a dynamic user (uid $uid)" test -n "$uid" -a "${uid:-0}" != 0
status=
for _ in $(seq 50); do          # STATUS= is refreshed every 2 s
	status=$($IN systemctl show -P StatusText p2sd.service)
	out_mib=$(sed -n 's/^0 swarms, 0 members, [0-9]* MiB in, \([0-9]*\) MiB out, cache hits [0-9]*%$/\1/p' <<<"$status")
	[ -n "$out_mib" ] && [ "$out_mib" -ge 24 ] && break
	sleep 0.2
done
check "systemctl show -P StatusText p2sd: '$status'" test -n "${out_mib:-}" -a "${out_mib:-0}" -ge 24

j_notice=$($IN journalctl -u p2sd.service -p notice..notice --no-pager -o cat 2>&1)
j_info=$($IN journalctl -u p2sd.service -p info..info --no-pager -o cat 2>&1)
check "journal: 'listening' at priority notice" grep -q "listening on .*(activated) port 7700" <<<"$j_notice"
check "journal: swarm complete at notice" grep -q "'one.bin' complete" <<<"$j_notice"
joins_at_info() { grep -q "joined from" <<<"$j_info" && ! grep -q "joined from" <<<"$j_notice"; }
check "journal: member joins at info, not notice" joins_at_info

# ---- 5. reload -----------------------------------------------------------------
sed -i 's/^gather-timeout = 60$/gather-timeout = 45/' "$ROOT$conf"
out=$($IN systemctl reload p2sd.service 2>&1)
rc=$?
check "systemctl reload p2sd (rc=$rc)" test $rc -eq 0
[ $rc -eq 0 ] || show <<<"$out"
check "journal: reload logged what changed" \
	grep -q "reload: gather-timeout changed from 60 to 45" <<<"$($IN journalctl -u p2sd.service --no-pager -o cat)"
check "p2sd still running after the reload" test "$($IN systemctl show -P SubState p2sd.service)" = running

# ---- 6. Type=notify fetches: systemd-run and the p2s-fetch@ template --------
inst=$($IN systemd-escape sub/two.bin)
out=$($IN systemd-run --unit=p2s-run-fetch -p Type=notify -p RemainAfterExit=yes \
	"$bin_fetch" --timeout 30 127.0.0.1 sub/two.bin -o /var/tmp/two.bin 2>&1)
rc=$?
check "systemd-run -p Type=notify p2s-fetch returned after READY (rc=$rc)" test $rc -eq 0
[ $rc -eq 0 ] || show <<<"$out"
st=$($IN systemctl show -P StatusText p2s-run-fetch.service)
check "p2s-run-fetch StatusText: '$st'" grep -q "^joined swarm [0-9]* for sub/two.bin" <<<"$st"
out=$($IN systemctl start "p2s-fetch@$inst.service" 2>&1)
rc=$?
check "systemctl start p2s-fetch@$inst (rc=$rc)" test $rc -eq 0
[ $rc -eq 0 ] || { show <<<"$out"; $IN journalctl -u "p2s-fetch@$inst.service" --no-pager -o cat | show; }
st=$($IN systemctl show -P StatusText "p2s-fetch@$inst.service")
check "p2s-fetch@ StatusText: '$st'" grep -q "^joined swarm [0-9]* for sub/two.bin" <<<"$st"
pids=()
for i in 1 2; do
	$NET "$FETCH" --timeout 30 127.0.0.1 sub/two.bin -o "$RUN/host/two.$i" 2>"$RUN/host/two.$i.log" &
	pids+=($!)
done
okc=0
for i in 1 2; do wait "${pids[$((i - 1))]}" && cmp -s "$ROOT/srv/p2s/sub/two.bin" "$RUN/host/two.$i" && okc=$((okc + 1)); done
check "2 host clients completed the swarm of 4 ($okc/2)" test $okc -eq 2
for _ in $(seq 100); do
	a=$($IN systemctl show -P SubState p2s-run-fetch.service)
	b=$($IN systemctl show -P ActiveState "p2s-fetch@$inst.service")
	[ "$a" = exited ] && [ "$b" = inactive ] && break
	sleep 0.2
done
check "systemd-run unit exited with success (SubState=$a)" \
	test "$a" = exited -a "$($IN systemctl show -P Result p2s-run-fetch.service)" = success
check "p2s-run-fetch's last STATUS=: complete" \
	grep -q "^complete" <<<"$($IN systemctl show -P StatusText p2s-run-fetch.service)"
check "template unit ended with success (ActiveState=$b)" \
	test "$b" = inactive -a "$($IN systemctl show -P Result "p2s-fetch@$inst.service")" = success
check "systemd-run copy identical" cmp -s "$ROOT/srv/p2s/sub/two.bin" "$ROOT/var/tmp/two.bin"
check "template copy in P2S_DIR, directories kept" \
	cmp -s "$ROOT/srv/p2s/sub/two.bin" "$ROOT/var/lib/p2s/downloads/sub/two.bin"
check "template unit ran as its dynamic user, not root (owner uid $(stat -c %u "$ROOT/var/lib/p2s/downloads/sub/two.bin"))" \
	test "$(stat -c %u "$ROOT/var/lib/p2s/downloads/sub/two.bin")" -ne 0
check "P2S_DIR is the StateDirectory: a link into /var/lib/private" \
	test -L "$ROOT/var/lib/p2s/downloads" -a -d "$ROOT/var/lib/private/p2s/downloads"
check "journal of the template unit has the summary" \
	grep -q "bytes verified" <<<"$($IN journalctl -u "p2s-fetch@$inst.service" --no-pager -o cat)"

# ---- 7. Restart=on-failure, then a clean stop -------------------------------
before=$($IN systemctl show -P MainPID p2sd.service)
$IN systemctl kill -s SIGKILL p2sd.service
for _ in $(seq 100); do
	now=$($IN systemctl show -P MainPID p2sd.service)
	[ "$($IN systemctl show -P SubState p2sd.service)" = running ] && [ "$now" != "$before" ] && [ "$now" != 0 ] && break
	sleep 0.1
done
check "Restart=on-failure: killed p2sd came back (NRestarts=$($IN systemctl show -P NRestarts p2sd.service))" \
	test "$($IN systemctl show -P NRestarts p2sd.service)" -ge 1 -a "$($IN systemctl is-active p2sd.service)" = active
out=$($IN systemctl stop p2sd.service 2>&1)
check "systemctl stop p2sd: Result=success" test "$($IN systemctl show -P Result p2sd.service)" = success
check "p2sd stopped (ActiveState=inactive)" test "$($IN systemctl show -P ActiveState p2sd.service)" = inactive
check "journal: SIGTERM handled at notice" \
	grep -q "got Terminated, telling members and stopping" <<<"$($IN journalctl -u p2sd.service -p notice..notice --no-pager -o cat)"
check "p2sd.socket still listening for the next request" test "$($IN systemctl is-active p2sd.socket)" = active

# ---- 8. a starved watchdog ------------------------------------------------------
out=$($IN systemd-run --unit=p2sd-watchdog -p Type=notify -p WatchdogSec=2 -p LimitCORE=0 \
	"$sbin_p2sd" --port 7701 --root /srv/p2s 2>&1)
rc=$?
check "transient p2sd with WatchdogSec=2 started (rc=$rc)" test $rc -eq 0
[ $rc -eq 0 ] || show <<<"$out"
w0=$($IN systemctl show -P WatchdogTimestampMonotonic p2sd-watchdog.service)
for _ in $(seq 50); do
	w1=$($IN systemctl show -P WatchdogTimestampMonotonic p2sd-watchdog.service)
	[ "$w1" != "$w0" ] && break
	sleep 0.1
done
check "systemd received WATCHDOG=1 (timestamp $w0 -> $w1)" test "$w1" != "$w0"
$IN systemctl kill -s SIGSTOP p2sd-watchdog.service
for _ in $(seq 100); do
	r=$($IN systemctl show -P Result p2sd-watchdog.service)
	[ "$r" = watchdog ] && break
	sleep 0.1
done
check "stopped p2sd starves the watchdog: Result=$r" test "$r" = watchdog

# ---- 9. power off ---------------------------------------------------------------
$IN systemctl poweroff >/dev/null 2>&1
for _ in $(seq 200); do kill -0 "$NSPID" 2>/dev/null || break; sleep 0.1; done
wait "$NSPID" 2>/dev/null
rc=$?
check "container powered off (nspawn exit $rc)" test $rc -eq 0
NSPID=
LEADER=
# the journal outlives the container
j=$(journalctl -D "$ROOT/var/log/journal" -u p2sd.service --no-pager -o cat 2>/dev/null)
check "persistent journal readable from the host" grep -q "listening on" <<<"$j"

echo "# total $(elapsed) s"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
