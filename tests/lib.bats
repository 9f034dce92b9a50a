#!/usr/bin/env bats
# Shared code that no tool's input can drive into its corner cases: the C
# programs of tests/unit (built beside the tools, in ../test of the tools'
# directory; each exits 0 when right) and the scripts' shell library.

load helpers/common
bats_require_minimum_version 1.5.0

unit() {
	local t=$TBL_BINDIR/../test/$1
	[[ -x $t ]] || flunk "$t: not built (make)"
	run --separate-stderr "$t"
	((status == 0)) || flunk "$1 exited $status: $stderr"
}

@test "zin_read asked for more than 1 GiB returns what it decompressed" {
	unit zin_big_read
}

@test "lib/json.c: decoded comparison (file_\u0063omplete), lone surrogates, value ends, the writer's commas" {
	unit json_api
}

@test "log.bash writes every control character escaped: each line is one JSON object" {
	local s= i c
	for ((i = 1; i < 32; i++)); do
		printf -v c "\\$(printf %03o "$i")"
		s+="<$c>"
	done
	s+=' é"\'
	run --separate-stderr bash -c 'source "$1/scripts/lib/log.bash"; log INFO "event $2" key "$2"' \
		_ "$TBL_ROOT" "$s"
	assert_equal 1 "${#stderr_lines[@]}"
	assert_equal "event $s" "$(jq -j .event <<<"$stderr")"
	assert_equal "$s" "$(jq -j .key <<<"$stderr")"
	run -0 bash -c 'source "$1/scripts/lib/log.bash"; json_str v "$2"; printf "%s\n" "$v"' \
		_ "$TBL_ROOT" "$s"
	assert_equal "$s" "$(jq -j . <<<"$output")"
}
