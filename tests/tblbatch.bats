#!/usr/bin/env bats
# tblbatch: envelopes in, batches of one type out, each a header line
# {"batch":"T","n":N} and exactly N envelope lines (docs/protocol.md "Batches").
# Flushed by size, bytes, age (also while the input is idle), before a
# control line of the type, and at end of input; bodies are never parsed.

load helpers/common
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=60

MSG=$FIXTURES/messages

setup_file() {
	require_bin tblbatch tblhash
}

teardown() {
	# Whatever a test left running in the background (FIFO feeders, readers).
	local p
	for p in ${BG_PIDS-}; do
		kill "$p" 2>/dev/null || true
	done
}

# envl TYPE ID [CONN TAG]: one envelope line as tblhash writes it.
envl() {
	local conn=
	(($# > 2)) && conn="\"conn\":\"$3\",\"tag\":$4,"
	printf '{"type":"%s",%s"id":%d,"sha256":"%064d","body":{"id":"%d","name":"n%d"}}\n' \
		"$1" "$conn" "$2" "$2" "$2" "$2"
}

# hdr TYPE N: a batch header.
hdr() {
	printf '{"batch":"%s","n":%d}\n' "$1" "$2"
}

# The final stderr line: the counts.
summary() {
	tail -n 1 <<<"$stderr"
}

sanitized() {
	ldd "$TBL_BINDIR/tblbatch" | grep -q libasan
}

# check_frames FILE: every header is followed by exactly n envelopes of its
# type; prints "batches envelopes" on success.
check_frames() {
	awk '
		left == 0 {
			if (!match($0, /^\{"batch":"[^"]*","n":[0-9]+\}$/)) { print "not a header at line " NR ": " $0; exit 1 }
			t = $0; sub(/^\{"batch":"/, "", t); sub(/".*/, "", t)
			left = $0; sub(/.*"n":/, "", left); sub(/\}$/, "", left); left += 0
			if (left < 1) { print "empty batch at line " NR; exit 1 }
			b++; next
		}
		{
			if (index($0, "{\"type\":\"" t "\",") != 1) { print "line " NR " is not of type " t; exit 1 }
			left--; e++
		}
		END { if (left != 0) { print "batch cut short"; exit 1 } print b + 0, e + 0 }' "$1"
}

# bodies FILE: the envelope lines of batched output, headers removed.
bodies() {
	grep -v '^{"batch":' "$1"
}

# stamp: prefix each line with the time it arrived ($EPOCHREALTIME).
stamp() {
	local l
	while IFS= read -r l; do
		printf '%s %s\n' "${EPOCHREALTIME/,/.}" "$l"
	done
}

# since T0 T1: T1 - T0 in seconds, 3 decimals.
since() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# in_range X LO HI: LO <= X < HI (decimals).
in_range() {
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }' ||
		flunk "$1 is not in [$2, $3)"
}

# feed_fifo ARGS...: start tblbatch ARGS (pid $TB_PID) reading the FIFO
# $T/fifo, its output stamped into $T/out, its log in $T/err; the test writes
# through fd $W.
feed_fifo() {
	T=$BATS_TEST_TMPDIR
	rm -f "$T/fifo" "$T/ofifo" "$T/out" "$T/err"
	mkfifo "$T/fifo" "$T/ofifo"
	tblbatch "$@" <"$T/fifo" >"$T/ofifo" 2>"$T/err" 3>&- &
	TB_PID=$!
	stamp <"$T/ofifo" >"$T/out" 3>&- &
	BG_PIDS="${BG_PIDS-} $TB_PID $!"
	exec {W}>"$T/fifo"
}

# fifo_end: close the input; tblbatch must then exit 0.
fifo_end() {
	local rc=0
	exec {W}>&-
	with_timeout 10 tail --pid="$TB_PID" -f /dev/null
	wait "$TB_PID" || rc=$?
	assert_equal 0 "$rc"
	wait_until 5 grep -q 'Batching finished' "$T/err"
}

# arrival PATTERN: the time the first output line matching PATTERN arrived.
arrival() {
	grep -m1 -F -- "$1" "$T/out" | cut -d' ' -f1
}

@test "batches by --size, the last one at end of input, lines unchanged and in order" {
	for i in 1 2 3 4 5; do envl artists "$i"; done >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch --size 2 <"$BATS_TEST_TMPDIR/in"
	assert_output - <<-EOF
		$(hdr artists 2)
		$(envl artists 1)
		$(envl artists 2)
		$(hdr artists 2)
		$(envl artists 3)
		$(envl artists 4)
		$(hdr artists 1)
		$(envl artists 5)
	EOF
	summary | jq -e '.lines == 5 and .records == 5 and .passed_singly == 0 and .batches == 3'
	# -s is --size; the default is 100.
	run -0 --separate-stderr tblbatch -s 5 <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(hdr artists 5)" "${lines[0]}"
	assert_equal 6 "${#lines[@]}"
	for i in $(seq 1 250); do envl labels "$i"; done >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch <"$BATS_TEST_TMPDIR/in"
	assert_equal "$(hdr labels 100) $(hdr labels 100) $(hdr labels 50)" "$(grep '^{"batch"' <<<"$output" | xargs -d '\n')"
}

@test "frames of real envelopes: a header, then exactly n lines of its type; nothing added or lost" {
	local out=$BATS_TEST_TMPDIR/out env=$BATS_TEST_TMPDIR/env
	for t in artists labels masters releases; do
		zcat "$MSG/discogs_20200806_$t.ndjson.gz" | tblhash --type "$t" 2>/dev/null
	done >"$env"
	run -0 --separate-stderr tblbatch --size 7 <"$env"
	printf '%s\n' "$output" >"$out"
	# 1000 per type: 142 batches of 7 and one of 6, per type.
	run -0 check_frames "$out"
	assert_output "572 4000"
	assert_equal 4 "$(grep -c '^{"batch":"[a-z]*","n":6}$' "$out")"
	for t in artists labels masters releases; do
		cmp <(bodies "$out" | grep "^{\"type\":\"$t\"") <(grep "^{\"type\":\"$t\"" "$env")
	done
	summary <<<"$stderr" | jq -e '.lines == 4000 and .records == 4000 and .batches == 572'
}

@test "types are kept apart; at end of input every type is flushed, oldest first" {
	{
		envl artists 1
		envl labels 1
		envl artists 2
		envl masters 9
		envl labels 2
		envl releases 3
		envl labels 3
	} >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch --size 3 <"$BATS_TEST_TMPDIR/in"
	assert_output - <<-EOF
		$(hdr labels 3)
		$(envl labels 1)
		$(envl labels 2)
		$(envl labels 3)
		$(hdr artists 2)
		$(envl artists 1)
		$(envl artists 2)
		$(hdr masters 1)
		$(envl masters 9)
		$(hdr releases 1)
		$(envl releases 3)
	EOF
	summary | jq -e '.records == 7 and .batches == 4'
}

@test "--max-bytes: a batch is written once it holds that many bytes" {
	# Ten envelopes of the same length L (ids 10..19), newline included.
	for i in $(seq 10 19); do envl artists "$i"; done >"$BATS_TEST_TMPDIR/in"
	local L
	L=$(($(head -n 1 "$BATS_TEST_TMPDIR/in" | wc -c)))
	run -0 --separate-stderr tblbatch --max-bytes $((2 * L)) <"$BATS_TEST_TMPDIR/in"
	assert_equal "2 2 2 2 2" "$(grep -o '"n":[0-9]*' <<<"$output" | cut -d: -f2 | xargs)"
	run -0 --separate-stderr tblbatch --max-bytes $((2 * L + 1)) <"$BATS_TEST_TMPDIR/in"
	assert_equal "3 3 3 1" "$(grep -o '"n":[0-9]*' <<<"$output" | cut -d: -f2 | xargs)"
	run -0 --separate-stderr tblbatch --max-bytes 1 <"$BATS_TEST_TMPDIR/in"
	assert_equal 20 "${#lines[@]}"
	assert_equal 10 "$(grep -cx '{"batch":"artists","n":1}' <<<"$output")"
	# --size still counts when it comes first.
	run -0 --separate-stderr tblbatch --max-bytes $((5 * L)) --size 4 <"$BATS_TEST_TMPDIR/in"
	assert_equal "4 4 2" "$(grep -o '"n":[0-9]*' <<<"$output" | cut -d: -f2 | xargs)"
}

@test "a control line flushes its type first and passes as a batch of one; other types wait" {
	local ctl='{"type":"artists","conn":"c1","tag":7,"control":"file_complete","body":{"file":"discogs_20200806_artists.xml.gz","type":"file_complete"}}'
	{
		envl artists 1
		envl labels 1
		envl artists 2
		echo "$ctl"
		envl artists 3
		echo "${ctl//artists/masters}"
	} >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch <"$BATS_TEST_TMPDIR/in"
	assert_output - <<-EOF
		$(hdr artists 2)
		$(envl artists 1)
		$(envl artists 2)
		$(hdr artists 1)
		$ctl
		$(hdr masters 1)
		${ctl//artists/masters}
		$(hdr labels 1)
		$(envl labels 1)
		$(hdr artists 1)
		$(envl artists 3)
	EOF
	summary | jq -e '.lines == 6 and .records == 4 and .passed_singly == 2 and .batches == 5'
}

@test "invalid envelopes and lines that are not envelopes pass at once, each as a batch of one" {
	local inv='{"type":"labels","conn":"c1","tag":3,"invalid":"no id","raw":"{\"name\":\"x\"}"}'
	local inv2='{"type":"","invalid":"malformed envelope: not a JSON object","raw":"not an envelope"}'
	{
		envl labels 1
		echo "$inv"
		echo 'not an envelope'
		echo '{"type":"labels","body":'
		echo ''
		echo "$inv2"
		envl labels 2
	} >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch <"$BATS_TEST_TMPDIR/in"
	assert_output - <<-EOF
		$(hdr labels 1)
		$inv
		$(hdr "" 1)
		not an envelope
		$(hdr "" 1)
		{"type":"labels","body":
		$(hdr "" 1)

		$(hdr "" 1)
		$inv2
		$(hdr labels 2)
		$(envl labels 1)
		$(envl labels 2)
	EOF
	summary | jq -e '.lines == 7 and .records == 2 and .passed_singly == 5 and .batches == 6'
	# One warning per line that is not an envelope, naming the line.
	run -0 jq -r 'select(.level == "warning") | .event' <<<"$stderr"
	assert_output - <<-'EOF'
		⚠️ Line 3 is not an envelope (not a JSON object), passed on
		⚠️ Line 4 is not an envelope (missing value), passed on
		⚠️ Line 5 is not an envelope (not a JSON object), passed on
	EOF
}

@test "a line over --max-line becomes an invalid envelope that keeps its type, conn and tag" {
	local big=$BATS_TEST_TMPDIR/in
	{
		envl labels 1
		printf '{"type":"labels","conn":"c1","tag":5,"id":2,"sha256":"%064d","body":{"id":"2","n":"' 0
		head -c 3000 /dev/zero | tr '\0' a
		printf '"}}\n'
		printf 'x%.0s' $(seq 1 2000)
		echo
		envl labels 3
	} >"$big"
	local n2 n3
	n2=$(($(sed -n 2p "$big" | wc -c) - 1))
	n3=$(($(sed -n 3p "$big" | wc -c) - 1))
	run -0 --separate-stderr tblbatch --max-line 1024 <"$big"
	assert_output - <<-EOF
		$(hdr labels 1)
		{"type":"labels","conn":"c1","tag":5,"invalid":"line too long ($n2 bytes, limit 1024)"}
		$(hdr "" 1)
		{"type":"","invalid":"line too long ($n3 bytes, limit 1024)"}
		$(hdr labels 2)
		$(envl labels 1)
		$(envl labels 3)
	EOF
	assert_equal 2 "$(jq -r 'select(.level == "warning") | .event' <<<"$stderr" | grep -c 'too long')"
	summary | jq -e '.lines == 4 and .records == 2 and .passed_singly == 2'
	# A line longer than one read (3 MB over a 256 KiB limit), and one of
	# exactly the limit, which is kept.
	{
		printf '{"type":"labels","conn":"c1","tag":6,"id":6,"sha256":"%064d","body":{"id":"6","n":"' 0
		head -c 3000000 /dev/zero | tr '\0' b
		printf '"}}\n'
		printf '{"type":"labels","id":7,"sha256":"%064d","body":{"id":"7","n":"' 7
		head -c $((262144 - 125)) /dev/zero | tr '\0' c
		printf '"}}\n'
	} >"$big"
	assert_equal 262144 "$(($(sed -n 2p "$big" | wc -c) - 1))"
	run -0 --separate-stderr tblbatch --max-line 262144 <"$big"
	assert_equal 4 "${#lines[@]}"
	assert_line 1 '{"type":"labels","conn":"c1","tag":6,"invalid":"line too long ('$(($(head -n 1 "$big" | wc -c) - 1))' bytes, limit 262144)"}'
	assert_line 2 "$(hdr labels 1)"
	assert_equal "$(sed -n 2p "$big")" "${lines[3]}"
	(($(summary | jq .peak_rss_kb) < 8000))
}

@test "a line over --max-line cut inside its raw string still keeps its conn and tag" {
	local big=$BATS_TEST_TMPDIR/in n
	{
		printf '{"type":"labels","conn":"c1","tag":9,"raw":"'
		head -c 5000 /dev/zero | tr '\0' a
		printf '"}\n'
	} >"$big"
	n=$(($(wc -c <"$big") - 1))
	run -0 --separate-stderr tblbatch --max-line 1024 <"$big"
	assert_output - <<-EOF
		$(hdr labels 1)
		{"type":"labels","conn":"c1","tag":9,"invalid":"line too long ($n bytes, limit 1024)"}
	EOF
}

@test "empty input: no output, exit 0; a last line without newline is read and ended" {
	run -0 --separate-stderr tblbatch </dev/null
	assert_output ""
	summary | jq -e '.lines == 0 and .records == 0 and .batches == 0'
	{
		envl artists 1
		envl artists 2 | tr -d '\n'
	} >"$BATS_TEST_TMPDIR/in"
	tblbatch <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>/dev/null
	assert_equal "$(hdr artists 2; envl artists 1; envl artists 2)" "$(cat "$BATS_TEST_TMPDIR/out")"
	assert_equal 3 "$(wc -l <"$BATS_TEST_TMPDIR/out")"
}

@test "--interval: a batch is written when its oldest envelope has waited that long, while the input stays open" {
	feed_fifo --interval 1
	local t0 t1 t2
	t0=${EPOCHREALTIME/,/.}
	envl artists 1 >&$W
	sleep 0.6
	envl artists 2 >&$W
	wait_until 5 grep -q '"n":2' "$T/out"
	t1=$(arrival '"batch":"artists"')
	# Due 1 s after the first envelope (not after the second, not at EOF).
	in_range "$(since "$t0" "$t1")" 0.95 1.5
	# A new envelope starts a new clock.
	t2=${EPOCHREALTIME/,/.}
	envl labels 3 >&$W
	wait_until 5 grep -q '"batch":"labels"' "$T/out"
	in_range "$(since "$t2" "$(arrival '"batch":"labels"')")" 0.95 1.6
	fifo_end
	assert_equal "$(hdr artists 2; envl artists 1; envl artists 2; hdr labels 1; envl labels 3)" "$(cut -d' ' -f2- "$T/out")"
}

@test "POSTGRES_BATCH_SIZE and POSTGRES_BATCH_FLUSH_INTERVAL set the defaults; options override them" {
	for i in 1 2 3 4 5; do envl artists "$i"; done >"$BATS_TEST_TMPDIR/in"
	POSTGRES_BATCH_SIZE=2 run -0 --separate-stderr tblbatch <"$BATS_TEST_TMPDIR/in"
	assert_equal "2 2 1" "$(grep -o '"n":[0-9]*' <<<"$output" | cut -d: -f2 | xargs)"
	POSTGRES_BATCH_SIZE=2 run -0 --separate-stderr tblbatch --size 4 <"$BATS_TEST_TMPDIR/in"
	assert_equal "4 1" "$(grep -o '"n":[0-9]*' <<<"$output" | cut -d: -f2 | xargs)"

	# The interval from the environment...
	export POSTGRES_BATCH_FLUSH_INTERVAL=0.3
	feed_fifo
	local t0
	t0=${EPOCHREALTIME/,/.}
	envl artists 1 >&$W
	wait_until 5 grep -q '"batch"' "$T/out"
	in_range "$(since "$t0" "$(arrival '"batch"')")" 0.28 0.9
	fifo_end
	# ...and --interval over it: nothing comes out while the input is open.
	feed_fifo --interval 30
	envl artists 1 >&$W
	sleep 1.2
	assert_equal "" "$(cat "$T/out")"
	fifo_end
	assert_equal "$(hdr artists 1; envl artists 1)" "$(cut -d' ' -f2- "$T/out")"
}

@test "bad option values exit 64, bad environment values 78, naming what is wrong" {
	local bad name
	for bad in "--size 0" "--size 1000001" "--size x" "-s -1" "--interval -1" \
		"--interval abc" "--interval nan" "-i 86401" "--max-bytes 0" "--max-bytes 1k" \
		"--max-line 10" "--max-line 2147483649"; do
		name=${bad%% *}
		[[ $name != -s ]] || name=--size
		[[ $name != -i ]] || name=--interval
		# shellcheck disable=SC2086
		run -64 --separate-stderr tblbatch $bad </dev/null
		assert_equal "" "$output"
		jq -e --arg o "$name" --arg v "${bad#* }" '.level == "error" and .exit_status == 64 and
			(.event | startswith("option \($o): '\''\($v)'\'' is "))' <<<"$stderr" >/dev/null ||
			flunk "tblbatch $bad: $stderr"
	done
	run -64 --separate-stderr tblbatch -x
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''-x'\'' (see tblbatch --help)"' <<<"$stderr"
	run -64 --separate-stderr tblbatch --nope
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''--nope'\'' (see tblbatch --help)"' <<<"$stderr"
	run -64 --separate-stderr tblbatch --size
	jq -e '.exit_status == 64 and .event == "option '\''--size'\'' needs an argument (see tblbatch --help)"' <<<"$stderr"
	run -64 --separate-stderr tblbatch operand
	jq -e '.exit_status == 64 and .event == "unexpected argument '\''operand'\'' (see tblbatch --help)"' <<<"$stderr"

	for bad in POSTGRES_BATCH_SIZE=0 POSTGRES_BATCH_SIZE=ten POSTGRES_BATCH_SIZE=1.5 \
		POSTGRES_BATCH_FLUSH_INTERVAL=soon POSTGRES_BATCH_FLUSH_INTERVAL=-2 POSTGRES_BATCH_FLUSH_INTERVAL=inf; do
		run -78 --separate-stderr env "$bad" tblbatch </dev/null
		assert_equal "" "$output"
		jq -e --arg v "${bad%%=*}" --arg s "${bad#*=}" '.level == "error" and .exit_status == 78 and
			(.event | startswith("\($v): '\''\($s)'\'' is "))' <<<"$stderr" >/dev/null ||
			flunk "$bad: $stderr"
	done
}

@test "--help, --version" {
	run -0 --separate-stderr tblbatch --help
	assert_line 0 "usage: tblbatch [-s size] [-i seconds] [--max-bytes n] [--max-line n]"
	assert_contains "$output" "POSTGRES_BATCH_SIZE"
	assert_contains "$output" "POSTGRES_BATCH_FLUSH_INTERVAL"
	assert_equal "" "$stderr"
	run -0 --separate-stderr tblbatch -h
	assert_line 0 "usage: tblbatch [-s size] [-i seconds] [--max-bytes n] [--max-line n]"
	run -0 --separate-stderr tblbatch --version
	assert_output "tblbatch (tableinator) $(cat "$TBL_ROOT/VERSION")"
	assert_equal "" "$stderr"
}

@test "memory stays bounded by the batch, not by the input" {
	local env=$BATS_TEST_TMPDIR/env peak
	zcat "$MSG/discogs_20200806_releases.ndjson.gz" | tblhash --type releases 2>/dev/null >"$env"
	# 100 MB of release envelopes (25 x 4 MB).
	run -0 --separate-stderr bash -c 'for i in $(seq 1 25); do cat "$1"; done | tblbatch --size 100 | wc -l' _ "$env"
	assert_output 25250
	summary | jq -e '.lines == 25000 and .batches == 250'
	peak=$(summary | jq .peak_rss_kb)
	if sanitized; then ((peak < 120000)); else ((peak < 12000)); fi ||
		flunk "peak RSS $peak kB"
	# A huge --size is held in check by --max-bytes (1 MiB here).
	run -0 --separate-stderr bash -c 'for i in $(seq 1 25); do cat "$1"; done |
		tblbatch --size 1000000 --max-bytes 1048576 | grep -c "^{\"batch\""' _ "$env"
	(($(summary | jq .batches) == output))
	((output >= 95 && output <= 101)) || flunk "$output batches"
	peak=$(summary | jq .peak_rss_kb)
	if sanitized; then ((peak < 120000)); else ((peak < 12000)); fi ||
		flunk "peak RSS $peak kB"
}

@test "SIGTERM: what is held is written at once, later lines pass straight through, exit 0 at EOF" {
	feed_fifo --interval 60 --size 100
	local t0
	envl artists 1 >&$W
	envl artists 2 >&$W
	envl labels 3 >&$W
	sleep 0.3
	assert_equal "" "$(cat "$T/out")"
	t0=${EPOCHREALTIME/,/.}
	kill -TERM "$TB_PID"
	wait_until 5 grep -q '"batch":"labels"' "$T/out"
	in_range "$(since "$t0" "$(arrival '"batch":"labels"')")" 0 1
	grep -q 'Stop requested' "$T/err"
	# Still running: a new line is not held.
	envl artists 4 >&$W
	wait_until 5 grep -qF '"id":4,' "$T/out"
	kill -0 "$TB_PID"
	fifo_end
	assert_equal "$(hdr artists 2; envl artists 1; envl artists 2; hdr labels 1; envl labels 3; hdr artists 1; envl artists 4)" \
		"$(cut -d' ' -f2- "$T/out")"
	tail -n 1 "$T/err" | jq -e '.records == 4 and .batches == 3'
}

@test "stdout closed early, closed, or full: non-zero exit and a message naming stdout" {
	run -0 bash -c 'zcat "$1" | tblhash --type releases 2>/dev/null | tblbatch --size 1 2>"$2" | head -c 100 >/dev/null
		echo "${PIPESTATUS[2]}"' _ "$MSG/discogs_20200806_releases.ndjson.gz" "$BATS_TEST_TMPDIR/err"
	assert_output 75
	jq -e '.level == "error" and .event == "stdout: Broken pipe" and .exit_status == 75' "$BATS_TEST_TMPDIR/err"
	run -75 --separate-stderr bash -c 'tblbatch >&-' < <(envl artists 1)
	jq -e '.event == "stdout: Bad file descriptor" and .exit_status == 75' <<<"$stderr"
	run -75 --separate-stderr bash -c 'tblbatch >/dev/full' < <(envl artists 1)
	jq -e '.event == "stdout: No space left on device"' <<<"$stderr"
}

@test "every stderr line is one JSON log record" {
	{
		envl artists 1
		echo 'not an envelope'
		printf 'y%.0s' $(seq 1 1100)
		echo
	} >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr tblbatch --max-line 1024 <"$BATS_TEST_TMPDIR/in"
	assert_equal 3 "${#stderr_lines[@]}"
	for l in "${stderr_lines[@]}"; do
		jq -e 'type == "object" and (.timestamp | test("^[0-9-]{10}T[0-9:.]{15}Z$")) and
			(.level | IN("info", "warning")) and .logger == "tableinator.tblbatch" and
			(.event | type == "string")' <<<"$l" >/dev/null || flunk "not a log record: $l"
	done
}
