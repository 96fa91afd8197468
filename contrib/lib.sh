# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by contrib/demo.sh and contrib/test.sh: the one list of Debian
# packages the project needs, their installation, and the meson build.
# Source it; it defines functions and variables and runs nothing.

# The lists are used by the scripts that source this file.
# shellcheck disable=SC2034
# Needed to build p2sd and p2s-fetch (and the check unit tests).
P2S_BUILD_DEPS=(meson ninja-build pkg-config libsystemd-dev check libssl-dev gcc)
# Needed by the integration tests (network namespaces, packet loss), the
# systemd suite (systemd-analyze; systemd-nspawn on a debootstrapped root)
# and contrib/test.sh's valgrind run of the unit suites. Installing
# systemd-container upgrades the host's systemd packages to the same
# version; harmless where systemd is not PID 1. groff renders the man
# pages for the man-lint test. ethtool turns off UDP segmentation offload
# on a test namespace's loopback, so that iptables sees each datagram.
# shellcheck disable=SC2034
P2S_TEST_DEPS=(iproute2 iptables ethtool systemd systemd-container debootstrap valgrind groff-base)
# Used by the tests when present; a failure to install them is not fatal.
# clang: contrib/test.sh builds the sanitizer build with it (gcc otherwise),
# which also builds the libFuzzer targets (libclang-rt-dev holds libFuzzer).
# shellcheck disable=SC2034
# mandoc lints the man pages too; bash-completion's pkg-config file names the
# directory the completions are installed to.
P2S_OPTIONAL_TEST_DEPS=(clang libclang-rt-dev mandoc bash-completion)

# The repository root: the parent of the folder holding this file.
P2S_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The build directory, relative to the root (or absolute). Overridable for
# experiments; p2s_build sets P2S_BUILD_ABS to its absolute path.
P2S_BUILD_DIR=${P2S_BUILD_DIR:-build}

p2s_die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

p2s_say() {
	printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Runs a command as root: directly when root, through sudo otherwise.
p2s_as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		p2s_die "not root and sudo is not installed: cannot run '$*'"
	fi
}

# Prints the packages among "$@" that are not installed.
p2s_missing_pkgs() {
	local p status
	for p in "$@"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
		[[ $status == "install ok installed" ]] || printf '%s\n' "$p"
	done
}

# p2s_install_deps [--optional PKG...] -- PKG...
# Installs the missing required packages (failure is fatal), then tries the
# missing optional ones (failure is a warning). apt-get update runs only when
# something is missing.
p2s_install_deps() {
	local -a optional=() required=() missing=() missing_opt=()
	if [[ ${1:-} == --optional ]]; then
		shift
		while [[ $# -gt 0 && $1 != -- ]]; do optional+=("$1"); shift; done
	fi
	[[ ${1:-} == -- ]] && shift
	required=("$@")

	if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
		p2s_say "not a Debian system: not installing packages; make sure these are present: ${required[*]} ${optional[*]}"
		return 0
	fi
	mapfile -t missing < <(p2s_missing_pkgs "${required[@]}")
	if [[ ${#optional[@]} -gt 0 ]]; then
		mapfile -t missing_opt < <(p2s_missing_pkgs "${optional[@]}")
	fi
	if [[ ${#missing[@]} -eq 0 && ${#missing_opt[@]} -eq 0 ]]; then
		return 0
	fi

	p2s_say "installing missing packages: $(printf '%s ' "${missing[@]}" "${missing_opt[@]}")"
	p2s_as_root env DEBIAN_FRONTEND=noninteractive apt-get -qq update \
		|| p2s_die "apt-get update failed (network or apt sources?)"
	if [[ ${#missing[@]} -gt 0 ]]; then
		p2s_as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null \
			|| p2s_die "apt-get install failed for: ${missing[*]}"
	fi
	if [[ ${#missing_opt[@]} -gt 0 ]]; then
		p2s_as_root env DEBIAN_FRONTEND=noninteractive \
			apt-get -qq install -y --no-install-recommends "${missing_opt[@]}" >/dev/null \
			|| p2s_say "warning: could not install optional packages: ${missing_opt[*]} (continuing)"
	fi
}

# Runs "$@", hiding its output unless it fails; then shows the output's
# last lines and dies with the message $1.
p2s_quiet() {
	local msg=$1 out
	shift
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" | tail -n 40 >&2
		p2s_die "$msg"
	fi
}

# p2s_build --keep|--reconfigure [MESON-OPTION...]
# Configures the build directory when it is not configured yet (with
# --reconfigure: reconfigures it otherwise), then builds. The options (e.g.
# -Dwerror=true) are passed to meson setup. Leaves the shell in the
# repository root.
p2s_build() {
	local reconfigure=$1
	shift
	cd "$P2S_ROOT" || p2s_die "cannot cd to $P2S_ROOT"
	if [[ ! -f $P2S_BUILD_DIR/meson-private/coredata.dat ]]; then
		p2s_say "configuring $P2S_BUILD_DIR $*"
		p2s_quiet "meson setup $P2S_BUILD_DIR failed (output above)" \
			meson setup "$P2S_BUILD_DIR" "$@"
	elif [[ $reconfigure == --reconfigure ]]; then
		p2s_quiet "meson setup --reconfigure $P2S_BUILD_DIR failed (output above)" \
			meson setup --reconfigure "$P2S_BUILD_DIR" "$@"
	elif [[ $# -gt 0 ]]; then
		p2s_quiet "meson configure $P2S_BUILD_DIR failed (output above)" \
			meson configure "$P2S_BUILD_DIR" "$@"
	fi
	p2s_say "building in $P2S_BUILD_DIR"
	p2s_quiet "build failed (compiler output above)" ninja -C "$P2S_BUILD_DIR"
	P2S_BUILD_ABS=$(cd "$P2S_BUILD_DIR" && pwd)
}
