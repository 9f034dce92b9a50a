# Loaded by every suite (`load helpers/common`) and by setup_suite.bash:
# paths, PATH, the server helpers, and a small rbenv-style assertion set.
# See tests/README.md.

TBL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FIXTURES=$TBL_ROOT/tests/fixtures
# tests/run sets TBL_BINDIR; a suite run alone with bats tests the default build.
TBL_BINDIR=${TBL_BINDIR:-$TBL_ROOT/build/bin}
export TBL_ROOT FIXTURES TBL_BINDIR
case ":$PATH:" in
*":$TBL_BINDIR:$TBL_ROOT/scripts:"*) ;;
*) PATH=$TBL_BINDIR:$TBL_ROOT/scripts:$PATH ;;
esac
export PATH LC_ALL=C.UTF-8

# A test that hangs fails instead of holding up the run; a file may lower it.
BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

source "$TBL_ROOT/scripts/lib/servers.bash"
source "$TBL_ROOT/tests/helpers/pg.bash"
source "$TBL_ROOT/tests/helpers/rabbitmq.bash"

# require_bin NAME...: fail unless each tool is the one built in TBL_BINDIR,
# so a suite never tests an installed copy by accident.
require_bin() {
	local b
	for b; do
		[[ -x $TBL_BINDIR/$b ]] ||
			flunk "$b is not built in $TBL_BINDIR (run make, or tests/run BINDIR)" || return
		[[ $(command -v "$b") == "$TBL_BINDIR/$b" ]] ||
			flunk "$b resolves to $(command -v "$b"), not $TBL_BINDIR/$b" || return
	done
}

# flunk [MESSAGE]: fail the test with MESSAGE (or stdin), temp paths shortened.
flunk() {
	{
		if (($#)); then printf '%s\n' "$*"; else cat; fi
	} | sed "s:${TBL_TEST_TMP:-/nonexistent}:\$TBL_TEST_TMP:g" >&2
	return 1
}

# assert_success [OUTPUT]: the last `run` exited 0 (and printed OUTPUT).
assert_success() {
	if ((status != 0)); then
		{
			echo "command failed with exit status $status"
			echo "output: $output"
		} | flunk
	elif (($#)); then
		assert_output "$1"
	fi
}

# assert_failure [STATUS]: the last `run` exited non-zero (with STATUS).
assert_failure() {
	if ((status == 0)); then
		flunk "command succeeded, but it should have failed; output: $output"
	elif (($#)) && ((status != $1)); then
		flunk "command exited $status, expected $1; output: $output"
	fi
}

# assert_equal EXPECTED ACTUAL
assert_equal() {
	if [[ $1 != "$2" ]]; then
		{
			echo "expected: $1"
			echo "actual:   $2"
		} | flunk
	fi
}

# assert_output [EXPECTED | -]: $output is EXPECTED (or stdin).
assert_output() {
	local expected
	if (($#)) && [[ $1 != - ]]; then expected=$1; else expected=$(cat); fi
	assert_equal "$expected" "$output"
}

# assert_line [INDEX] LINE: line INDEX of $output (or any line) is LINE.
assert_line() {
	if (($# > 1)); then
		assert_equal "$2" "${lines[$1]-<no line $1>}"
		return
	fi
	local l
	for l in "${lines[@]}"; do
		[[ $l == "$1" ]] && return 0
	done
	flunk "expected line '$1' in output: $output"
}

# refute_line [INDEX] LINE: line INDEX (or every line) is not LINE.
refute_line() {
	if (($# > 1)); then
		[[ ${lines[$1]-} != "$2" ]] || flunk "line $1 should not be '$2'"
		return
	fi
	local l
	for l in "${lines[@]}"; do
		[[ $l != "$1" ]] || flunk "expected no line '$1' in output: $output" || return
	done
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
	[[ $1 == *"$2"* ]] || flunk "expected to find '$2' in: $1"
}

# with_timeout SECONDS COMMAND...: run COMMAND (a program or a shell
# function) and kill it with everything it started if it is not done in
# time; then exit 124. A function runs in a child shell, so variables it sets
# do not come back.
with_timeout() {
	local secs=$1 rc=0 fns
	shift
	if [[ $(type -t "$1") == function ]]; then
		fns=$(mktemp "${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}/fns.XXXXXX")
		declare -f >"$fns"
		timeout -k 5 "$secs" bash -c 'source "$0"; rm -f "$0"; "$@"' "$fns" "$@" || rc=$?
		rm -f "$fns"
	else
		timeout -k 5 "$secs" "$@" || rc=$?
	fi
	((rc != 124 && rc != 137)) || echo "with_timeout: '$*' did not finish within ${secs}s" >&2
	return $rc
}

# wait_until SECONDS COMMAND...: retry COMMAND every 0.2 s until it succeeds;
# fails after SECONDS.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || {
			echo "wait_until: '$*' still fails" >&2
			return 1
		}
		sleep 0.2
	done
}

# tbl_name [PREFIX]: a name unique to this test within the run, usable as a
# database, vhost or queue name: t<suite test number>_<file>_<test number>.
tbl_name() {
	local file=${BATS_TEST_FILENAME##*/}
	file=${file%.bats}
	local n="${1:-t}${BATS_SUITE_TEST_NUMBER:-0}_${file}_${BATS_TEST_NUMBER:-0}"
	n=${n,,}
	n=${n//[^a-z0-9_]/_}
	printf '%s\n' "${n:0:63}"
}

# --- servers: the run's directory and ports (the rest: scripts/lib/servers.bash) ---

_tbl_need_run_dir() {
	[[ -n ${TBL_TEST_TMP-} && -d $TBL_TEST_TMP ]] && return
	echo "no run directory: servers are started by tests/setup_suite.bash" >&2
	return 1
}

# tbl_free_port: a TCP port nothing listens on, below the ephemeral range
# (so no outgoing connection takes it later) and not handed out before in
# this run.
tbl_free_port() {
	_tbl_free_port "$TBL_TEST_TMP/ports"
}
