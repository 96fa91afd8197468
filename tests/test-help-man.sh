#!/bin/bash
# SPDX-License-Identifier: MIT
# --help and the man pages describe the same options (arguments: the built
# man pages, p2sd.8 p2s-fetch.1 p2sd.conf.5; the binaries from $P2SD and
# $P2S_FETCH):
#  - every long option --help lists has an entry in the page's OPTIONS, and
#    every entry there is an option --help lists;
#  - the range --help gives an option ("(1 to 64") is written in its entry;
#  - the keys of p2sd.conf(5) are p2sd's options but --config, --help and
#    --version, plus "file", with the same ranges.
set -uo pipefail

: "${P2SD:?}" "${P2S_FETCH:?}"
[ $# -eq 3 ] || { echo "usage: $0 p2sd.8 p2s-fetch.1 p2sd.conf.5" >&2; exit 2; }
pass=0 fail=0
ok()  { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }

# "name<TAB>range" per option of --help; range empty when it has none
help_options() {
	"$1" --help | awk '
		function flush() { if (name != "") print name "\t" range; name = ""; range = "" }
		/^  (-[A-Za-z], |    )--[a-z]/ {
			flush()
			match($0, /--[a-z][a-z0-9-]*/)
			name = substr($0, RSTART + 2, RLENGTH - 2)
		}
		name != "" && match($0, /\([0-9.]+[KMGT]? to [0-9.]+[KMGT]?/) {
			range = substr($0, RSTART + 1, RLENGTH - 1)
		}
		END { flush() }'
}

# "name<TAB>text of its entry" per .TP entry of section $2 of man page $1;
# the name is the first --option (or "key =") of the line after .TP
man_entries() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1" | awk -v section="$2" -v keys="$3" '
		function flush() { if (name != "") print name "\t" text; name = ""; text = "" }
		/^\.SH / { flush(); insec = ($0 == ".SH " section); next }
		!insec { next }
		/^\.TP/ { flush(); want = 1; next }
		want {
			want = 0
			if (keys) {
				if (match($0, /"[a-z][a-z0-9-]* = /)) name = substr($0, RSTART + 1, RLENGTH - 4)
			} else if (match($0, /--[a-z][a-z0-9-]*/)) {
				name = substr($0, RSTART + 2, RLENGTH - 2)
			}
			next
		}
		name != "" && !/^\./ { text = text " " $0 }
		name != "" && /^\.[BIR]+ / { line = $0; sub(/^\.[BIR]+ /, "", line); gsub(/"/, "", line); text = text " " line }
		END { flush() }'
}

# compare LABEL HELP-LIST MAN-LIST [PREFIX]: PREFIX names an entry in messages
compare() {
	local label=$1 help=$2 man=$3 p=${4---} name range text
	while IFS=$'\t' read -r name range; do
		text=$(awk -F'\t' -v n="$name" '$1 == n { print $2; exit }' <<<"$man")
		if ! awk -F'\t' -v n="$name" '$1 == n { f = 1 } END { exit !f }' <<<"$man"; then
			bad "$label: $p$name is in --help but not in the man page"
			continue
		fi
		# "1 to 1T" is written "from 1 to 1T", "1 byte to 1T" or "(1 to 1T)"
		text=$(sed -e 's/ bytes\? / /g' -e 's/  */ /g' <<<"$text")
		if [ -n "$range" ] && ! grep -qF -- "$range" <<<"$text"; then
			bad "$label: the entry of $p$name does not give its range '$range':$text"
		else
			ok "$label: $p$name${range:+ ($range)}"
		fi
	done <<<"$help"
	while IFS=$'\t' read -r name text; do
		[ -n "$name" ] || continue
		awk -F'\t' -v n="$name" '$1 == n { f = 1 } END { exit !f }' <<<"$help" ||
			bad "$label: the man page has $p$name, which --help does not list"
	done <<<"$man"
}

p2sd_help=$(help_options "$P2SD")
fetch_help=$(help_options "$P2S_FETCH")
[ "$(wc -l <<<"$p2sd_help")" -ge 10 ] || bad "p2sd --help lists too few options: $p2sd_help"
[ "$(wc -l <<<"$fetch_help")" -ge 5 ] || bad "p2s-fetch --help lists too few options: $fetch_help"

compare "p2sd.8" "$p2sd_help" "$(man_entries "$1" OPTIONS "")"
compare "p2s-fetch.1" "$fetch_help" "$(man_entries "$2" OPTIONS "")"
# the keys: p2sd's options less the command-line-only ones, plus "file"
conf_help=$(grep -vE '^(config|help|version)	' <<<"$p2sd_help"; printf 'file\t\n')
compare "p2sd.conf.5" "$conf_help" "$(man_entries "$3" KEYS 1)" "key "

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
