#!/bin/bash
# SPDX-License-Identifier: MIT
# The shipped units, as the build made them (arguments: their paths):
#  - systemd-analyze verify prints nothing at all (many mistakes are only
#    warnings with exit status 0), with ExecStart= pointed at the binaries
#    under test (verify checks that the programs exist) and MANPATH at the
#    built man pages (verify checks Documentation=man: pages);
#  - systemd-analyze security --offline=yes rates p2sd.service and
#    p2s-fetch@.service below 2.0;
#  - every Exec*= runs an absolute path; enabling p2sd.service does not start
#    it at boot (its [Install] only has Also=p2sd.socket); p2s-fetch@ runs as
#    a dynamic user in its StateDirectory and restarts on failure, boundedly.
# Exit 77 when systemd-analyze is missing.
set -uo pipefail

: "${P2SD:?}" "${P2S_FETCH:?}" "${P2S_MAN_DIR:?}"
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2s-units.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }

# units with the build's binaries in place of the installed paths
units=()
for u in "$@"; do
	name=${u##*/}
	sed -e "s#^\(Exec[A-Za-z]*=[-+!@:]*\)/[^ ]*/p2sd\( \|\$\)#\1$P2SD\2#" \
	    -e "s#^\(Exec[A-Za-z]*=[-+!@:]*\)/[^ ]*/p2s-fetch\( \|\$\)#\1$P2S_FETCH\2#" "$u" > "$tmp/$name"
	units+=("$tmp/$name")
done
grep -q "^ExecStart=$P2SD --config " "$tmp/p2sd.service" || bad "p2sd.service: ExecStart= not substituted"
grep -q "^ExecStart=$P2S_FETCH " "$tmp/p2s-fetch@.service" || bad "p2s-fetch@.service: ExecStart= not substituted"

# man pages where man(1) finds them: MANPATH/manN/PAGE.N
for page in "$P2S_MAN_DIR"/*.[0-9]; do
	[ -e "$page" ] || continue
	sec=${page##*.}
	mkdir -p "$tmp/man/man$sec"
	ln -s "$page" "$tmp/man/man$sec/"
done

verify() {      # prints what verify said; status 0 only for silence and success
	local out rc
	out=$(cd "$tmp" && MANPATH="$tmp/man" systemd-analyze verify "$@" 2>&1)
	rc=$?
	printf '%s' "$out"
	[ $rc -eq 0 ] && [ -z "$out" ]
}

for u in "${units[@]}"; do
	if out=$(verify "$u"); then ok "verify ${u##*/}"; else bad "verify ${u##*/}:"; printf '#   %s\n' "$out"; fi
done
if out=$(verify "${units[@]}"); then ok "verify all units together"; else bad "verify all:"; printf '#   %s\n' "$out"; fi

# the check itself works: a typo that verify only warns about must show
sed 's/^ListenDatagram=/ListenDatagramm=/' "$tmp/p2sd.socket" > "$tmp/typo.socket"
sed -i '/^\[Install\]/,$d' "$tmp/typo.socket"
printf '[Socket]\nService=p2sd.service\n' >> "$tmp/typo.socket"
if out=$(verify "$tmp/typo.socket"); then bad "verify did not notice a typo"; else ok "verify notices a typo (${out%%$'\n'*})"; fi

# exposure score
sec=$(systemd-analyze security --offline=yes --no-pager "$tmp/p2sd.service" 2>&1)
score=$(sed -n 's/.*Overall exposure level for p2sd.service: \([0-9.]*\).*/\1/p' <<<"$sec")
if [ -z "$score" ]; then
	bad "no exposure score:"; printf '#   %s\n' "$sec"
elif awk -v s="$score" 'BEGIN { exit !(s < 2.0) }'; then
	ok "systemd-analyze security p2sd.service: $score (< 2.0)"
else
	bad "systemd-analyze security p2sd.service: $score, not below 2.0:"; grep '✗' <<<"$sec" | sed 's/^/#   /'
fi
cp "$tmp/p2s-fetch@.service" "$tmp/p2s-fetch@example.service"
fscore=$(systemd-analyze security --offline=yes --no-pager "$tmp/p2s-fetch@example.service" 2>&1 |
	sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
if [ -n "$fscore" ] && awk -v s="$fscore" 'BEGIN { exit !(s < 2.0) }'; then
	ok "systemd-analyze security p2s-fetch@.service: $fscore (< 2.0)"
else
	bad "systemd-analyze security p2s-fetch@.service: ${fscore:-no score}, not below 2.0"
fi

# the settings themselves, in the shipped files
for u in "$@"; do
	rel=$(grep -E '^Exec[A-Za-z]*=' "$u" | sed -E 's/^[^=]*=[-+!@:]*//' | grep -v '^/')
	if [ -z "$rel" ]; then ok "${u##*/}: every Exec*= is an absolute path"; else bad "${u##*/}: relative Exec*=: $rel"; fi
done
svc=$(printf '%s\n' "$@" | grep '/p2sd\.service$')
fetch=$(printf '%s\n' "$@" | grep '/p2s-fetch@\.service$')
install=$(sed -n '/^\[Install\]/,/^\[/p' "$svc" | grep -vE '^(\[|#|$)')
if [ "$install" = "Also=p2sd.socket" ]; then
	ok "p2sd.service: enabling it enables the socket, not a start at boot"
else
	bad "p2sd.service [Install] is not just Also=p2sd.socket: $install"
fi
for want in DynamicUser=yes User=p2s-fetch StateDirectory=p2s/downloads Restart=on-failure \
	    StartLimitBurst=3 StartLimitIntervalSec=10min RestartPreventExitStatus=2; do
	if grep -qx "$want" "$fetch"; then ok "p2s-fetch@.service: $want"; else bad "p2s-fetch@.service lacks $want"; fi
done
if grep -qE '^User=root|^DynamicUser=no' "$fetch"; then bad "p2s-fetch@.service runs as root"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
