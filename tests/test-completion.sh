#!/bin/bash
# SPDX-License-Identifier: MIT
# The bash completions (arguments: contrib/bash-completion/p2sd and
# contrib/bash-completion/p2s-fetch; the binaries from $P2SD and $P2S_FETCH):
#  - sourced, "complete -p" shows each program's function;
#  - completing "--" offers every long option --help lists, and nothing else;
#  - after an option that takes an argument no option is offered;
#  - the values of --control, --order, --query, --progress and --log-level,
#    as "--opt val" and "--opt=val", with COMP_WORDBREAKS splitting at "=" and not;
#  - files for FILE arguments, directories for p2sd --root.
set -uo pipefail

: "${P2SD:?}" "${P2S_FETCH:?}"
[ $# -eq 2 ] || { echo "usage: $0 p2sd-completion p2s-fetch-completion" >&2; exit 2; }
pass=0 fail=0
ok()  { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p2s-completion.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/dir.d" "$tmp/other"
touch "$tmp/disk.img" "$tmp/dir.d/inner" "$tmp/conf.conf"

# comp FILE LINE: the completions, sorted, one a line, for LINE (the word
# being completed is the last; a trailing space starts an empty one), as
# bash would call the function that FILE registers. WORDBREAKS is the
# COMP_WORDBREAKS to split with (default: bash's, which has "=").
comp() {
	local file=$1 line=$2
	WORDBREAKS=${WORDBREAKS-$' \t\n"\x27><=;|&(:'} bash --norc --noprofile -c '
		source "$1" || exit 1
		line=$2
		# split as readline does: at blanks, and at each COMP_WORDBREAKS
		# character other than blanks, which is a word of its own
		COMP_WORDBREAKS=$WORDBREAKS
		words=() w=
		for ((i = 0; i < ${#line}; i++)); do
			c=${line:i:1}
			if [[ $c == " " ]]; then
				[[ -n $w ]] && words+=("$w")
				w=
			elif [[ $c == "=" && $COMP_WORDBREAKS == *=* ]]; then
				[[ -n $w ]] && words+=("$w")
				words+=("=")
				w=
			else
				w+=$c
			fi
		done
		words+=("$w")
		[[ ${words[-1]} == "" && ${words[-2]-} == "=" ]] && unset "words[-1]"
		COMP_WORDS=("${words[@]}")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		COMP_LINE=$line
		COMP_POINT=${#line}
		fn=$(complete -p "${COMP_WORDS[0]}" | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
		COMPREPLY=()
		"$fn" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		printf "%s\n" "${COMPREPLY[@]}" | sort
	' bash "$file" "$line"
}

# expect FILE LINE WORD...: the completions of LINE are exactly WORDs
expect() {
	local file=$1 line=$2 got want
	shift 2
	got=$(comp "$file" "$line" | sed '/^$/d' | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | sed '/^$/d' | sort | tr '\n' ' ')
	if [ "$got" = "$want" ]; then ok "'$line' -> ${want:-nothing}"; else bad "'$line': got '$got', want '$want'"; fi
}

# "name<TAB>1 if it takes an argument" per long option of --help
help_options() {
	"$1" --help | sed -n 's/^  \(-[A-Za-z], \|    \)--\([a-z][a-z0-9-]*\)\( [^ ]\)\?.*/\2\t\3/p' |
		awk -F'\t' '{ print $1 "\t" ($2 != "") }'
}

check_program() {
	local prog=$1 file=$2 name arg opts
	out=$(bash --norc --noprofile -c 'source "$1" && complete -p "$2"' bash "$file" "$prog" 2>&1)
	if [[ $out == "complete -F "*" $prog" ]]; then ok "complete -p $prog: $out"; else bad "complete -p $prog: $out"; fi
	opts=$(help_options "$(declare -n v=$3; echo "$v")")
	[ "$(wc -l <<<"$opts")" -ge 5 ] || bad "$prog --help lists too few options: $opts"
	expect "$file" "$prog --" $(cut -f1 <<<"$opts" | sed 's/^/--/')
	while IFS=$'\t' read -r name arg; do
		if [ "$arg" = 1 ]; then
			got=$(comp "$file" "$prog --$name -" | sed '/^$/d')
			[ -z "$got" ] && ok "'$prog --$name -': no option where the argument goes" ||
				bad "'$prog --$name -' offers options: $got"
		fi
	done <<<"$opts"
}

check_program p2sd "$1" P2SD
check_program p2s-fetch "$2" P2S_FETCH

for wb in default no-equals; do
	if [ $wb = no-equals ]; then export WORDBREAKS=$' \t\n"\x27><;|&(:'; else unset WORDBREAKS; fi
	expect "$1" "p2sd --control " udp tcp
	expect "$1" "p2sd -c t" tcp
	expect "$1" "p2sd --control=" udp tcp
	expect "$1" "p2sd --control=u" udp
	expect "$1" "p2sd --query " directed broadcast
	expect "$1" "p2sd -q b" broadcast
	expect "$1" "p2sd --log-level d" debug
	expect "$2" "p2s-fetch --order " sequential random
	expect "$2" "p2s-fetch --order=r" random
	expect "$2" "p2s-fetch --progress " bar plain json none
	expect "$2" "p2s-fetch --progress=j" json
	expect "$2" "p2s-fetch --log-level=" err warning notice info debug
done
unset WORDBREAKS
expect "$1" "p2sd --log-level err --min-clients " ""
expect "$1" "p2sd --root $tmp/d" "$tmp/dir.d"
expect "$1" "p2sd -r $tmp/" "$tmp/dir.d" "$tmp/other"
expect "$1" "p2sd --config $tmp/c" "$tmp/conf.conf"
expect "$1" "p2sd --port 7700 $tmp/di" "$tmp/dir.d" "$tmp/disk.img"
expect "$2" "p2s-fetch -o $tmp/dis" "$tmp/disk.img"
expect "$2" "p2s-fetch --output=$tmp/dir.d/" "$tmp/dir.d/inner"
expect "$2" "p2s-fetch --rtt-log $tmp/co" "$tmp/conf.conf"
expect "$2" "p2s-fetch --window 4 host.example " ""

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
