#!/usr/bin/env bats
# tblload with one batch whose COPY data is larger than 2 GiB, the most an
# int can count: sent in pieces, it loads whole. Slow (minutes, several GB
# of memory and disk): runs only with TBL_SLOW_TESTS=1.
# needs: postgres

load helpers/common
load helpers/replay
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=1200

setup() {
	[[ ${TBL_SLOW_TESTS-} == 1 ]] || skip "slow: run with TBL_SLOW_TESTS=1"
	pg_newdb
}

@test "a batch of more than 2 GiB of COPY data loads whole" {
	local n=1100 f=$BATS_TEST_TMPDIR/in
	# Artists with a 2 MB profile: 2.2 GB in the profile column alone.
	perl -e '
		my ($n) = @ARGV;
		my $p = "x" x (2 * 1024 * 1024);
		print qq({"batch":"artists","n":$n}\n);
		for my $i (1 .. $n) {
			printf qq({"type":"artists","id":%d,"sha256":"%064x","body":{"id":"%d","name":"a%d","profile":"%s"}}\n),
				$i, $i, $i, $i, $p;
		}' "$n" >"$f"
	run -0 --separate-stderr tblload --retry-max 10 <"$f"
	assert_equal "$n" "$(count artists)"
	assert_equal "$((n * 2 * 1024 * 1024))" "$(psqlq -c 'SELECT sum(length(profile)) FROM artists')"
}
