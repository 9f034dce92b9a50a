#!/usr/bin/env bats
# The fuzz targets (fuzz/README.md), briefly: every regression input of
# fuzz/regress replays clean, and each target runs for TBL_FUZZ_SECONDS
# (default 20) from its seeds and regression inputs, on a corpus of its own in
# the test's directory. A crash, a sanitizer report, a leak, a timeout or an
# oracle failure fails the test with libFuzzer's report (and the input, in
# Base64). The targets are built by make fuzz-build (make check does it);
# without clang's libFuzzer and without a build, the suite is skipped.
# Not one of the per-tool suites (TBL_SUITES=unit): the targets carry their
# own sanitizers.

load helpers/common
bats_require_minimum_version 1.5.0

FUZZ_SECONDS=${TBL_FUZZ_SECONDS:-20}
BATS_TEST_TIMEOUT=$((FUZZ_SECONDS + 100))
export FUZZ_BUILD=${FUZZ_BUILD:-$TBL_ROOT/build-fuzz}
TARGETS=(tblhash envelope frame settle rows batch xrec amqurl state)

# Can clang build a libFuzzer program here?
have_libfuzzer() {
	printf 'int LLVMFuzzerTestOneInput(const char *p, unsigned long n) { return p[0] * 0 + (int)n * 0; }\n' |
		"${FUZZ_CC:-clang}" -fsanitize=fuzzer,address,undefined -x c -o "$1/probe" - 2>/dev/null
}

setup_file() {
	if have_libfuzzer "$BATS_FILE_TMPDIR"; then
		# Up to date with the sources: nothing to do after make check's fuzz-build.
		make -s -C "$TBL_ROOT" FUZZ_BUILD="$FUZZ_BUILD" fuzz-build >&2 ||
			flunk "make fuzz-build failed"
	elif [[ ! -x $FUZZ_BUILD/bin/tblhash ]]; then
		skip "clang's libFuzzer is not installed (scripts/install-deps installs it)"
	fi
}

# smoke TARGET: fuzz it for FUZZ_SECONDS on a copy of its seeds. A failing
# input and its report are kept in $FUZZ_BUILD/crashes/TARGET/ (the test's
# directory goes), to be added to fuzz/regress/TARGET/ once fixed.
smoke() {
	local keep=$FUZZ_BUILD/crashes/$1
	run --separate-stderr "$TBL_ROOT/fuzz/run" --seconds "$FUZZ_SECONDS" \
		--work "$BATS_TEST_TMPDIR" "$1"
	echo "$output"
	if ((status != 0)); then
		mkdir -p "$keep"
		cp "$BATS_TEST_TMPDIR/crashes/$1"/* "$BATS_TEST_TMPDIR/logs/$1.log" "$keep"/ 2>/dev/null || true
		flunk "fuzz target $1 failed (input and report kept in $keep): $output"
	fi
	[[ $output == *"fuzz/run: $1: "*" executions in "*", crashes 0"* ]] ||
		flunk "no summary line: $output"
}

@test "fuzz/run fails on a crash, a sanitizer report and an oracle failure" {
	have_libfuzzer "$BATS_TEST_TMPDIR" || skip "no libFuzzer to build a broken target with"
	local b=$BATS_TEST_TMPDIR/build r=$BATS_TEST_TMPDIR/regress kind
	mkdir -p "$b/bin" "$b/seeds/broken"
	cat >"$BATS_TEST_TMPDIR/broken.c" <<-'EOF'
		#include <stdint.h>
		#include <stdio.h>
		#include <stdlib.h>
		#include <string.h>
		void *volatile kept;
		int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
		{
			volatile int big = 2147483647;
			char *volatile p;

			if (n >= 3 && memcmp(d, "ORA", 3) == 0) {
				fprintf(stderr, "==ORACLE== the two paths differ\n");
				abort();
			}
			if (n >= 3 && memcmp(d, "UBS", 3) == 0)
				return big + (int)n;
			if (n >= 3 && memcmp(d, "ASN", 3) == 0) {
				p = malloc(2);
				p[n] = 0;
				free(p);
			}
			if (n >= 3 && memcmp(d, "LSN", 3) == 0) {
				kept = malloc(n);
				kept = NULL;
			}
			return 0;
		}
	EOF
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o "$b/bin/broken" "$BATS_TEST_TMPDIR/broken.c"
	for kind in ORA UBS ASN LSN; do
		rm -rf "$r" && mkdir -p "$r/broken" && printf '%sxx' "$kind" >"$r/broken/input"
		run -1 env FUZZ_BUILD="$b" FUZZ_REGRESS="$r" "$TBL_ROOT/fuzz/run" --replay broken
		assert_contains "$output" "fuzz/run: broken: a regression input fails"
		case $kind in
		ORA) assert_contains "$output" "==ORACLE== the two paths differ" ;;
		UBS) assert_contains "$output" "runtime error: signed integer overflow" ;;
		ASN) assert_contains "$output" "AddressSanitizer: heap-buffer-overflow" ;;
		LSN) assert_contains "$output" "LeakSanitizer" ;;
		esac
	done
	# Fuzzing from a seed that crashes: the crash is counted and kept.
	printf 'ORAyy' >"$b/seeds/broken/seed"
	run -1 env FUZZ_BUILD="$b" FUZZ_REGRESS="$r" "$TBL_ROOT/fuzz/run" --seconds 5 \
		--work "$BATS_TEST_TMPDIR/work" broken
	assert_contains "$output" "crashes 1"
	assert_contains "$output" "fuzz/run: broken: FAILED"
	[[ -n $(ls "$BATS_TEST_TMPDIR/work/crashes/broken") ]]
}

@test "every regression input replays clean" {
	run "$TBL_ROOT/fuzz/run" --replay "${TARGETS[@]}"
	echo "$output"
	((status == 0)) || flunk "$output"
}

@test "every fuzz target is built and run by this suite" {
	local built=() t
	for t in "$FUZZ_BUILD"/bin/*; do
		built+=("${t##*/}")
	done
	assert_equal "$(printf '%s\n' "${TARGETS[@]}" | sort)" "$(printf '%s\n' "${built[@]}" | sort)"
	assert_equal "$(printf '%s\n' "${TARGETS[@]}" | sort)" \
		"$(cd "$TBL_ROOT/fuzz" && ls -- *.c | grep -vx common.c | sed 's/\.c$//' | sort)"
}

@test "fuzz tblhash: the fast path and json-c write the same bytes" {
	smoke tblhash
}

@test "fuzz envelope: scan, write, scan back; a cut never names another delivery" {
	smoke envelope
}

@test "fuzz frame: batch headers read back as written" {
	smoke frame
}

@test "fuzz settle: settle lines read back as written; the window never settles twice" {
	smoke settle
}

@test "fuzz rows: valid COPY text from any body tblhash accepts" {
	smoke rows
}

@test "fuzz batch: tblload's batches of any lines" {
	smoke batch
}

@test "fuzz xrec: tblxml writes canonical records with their own hash" {
	smoke xrec
}

@test "fuzz amqurl: AMQP_CONNECTION parts parse back; no password leaks" {
	smoke amqurl
}

@test "fuzz state: tblhealth serves valid /health and /metrics from any state files" {
	smoke state
}
