#!/usr/bin/env bats
# The replay path end to end: dumps of message bodies through
# `tblhash --type T | tblbatch | tblload` into PostgreSQL (issue 2, "Done
# when"): complete and exact tables, idempotent replays, duplicates, poison,
# a PostgreSQL outage, a killed loader, a 50 MB line and broken input.
# needs: postgres

load helpers/common
load helpers/replay
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=120

# Records of the large input: the fixtures repeated with new ids (bench/gen-records).
BIG=20000

setup_file() {
	require_bin tblhash tblbatch tblload
	# A test stops the server: a cluster of this suite's own, so that suites
	# run beside it (TBL_JOBS) never see it go, and its tests one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	pg_start replay
	# The large input, hashed, and the tables a clean load of it gives.
	"$TBL_ROOT/bench/gen-records" "$MSG" "$BIG" | tblhash 2>/dev/null >"$BATS_FILE_TMPDIR/big.env"
	pg_newdb "$(tbl_name ref)"
	tblbatch <"$BATS_FILE_TMPDIR/big.env" 2>/dev/null | tblload 2>/dev/null
	checksum >"$BATS_FILE_TMPDIR/big.sum"
}

teardown_file() {
	pg_stop
}

setup() {
	pg_newdb
	T=$BATS_TEST_TMPDIR
}

teardown() {
	local p
	for p in ${BG_PIDS-}; do
		kill -9 "$p" 2>/dev/null || true
	done
	pg_start_again
}

# replay TYPE [TBLLOAD OPTIONS...] < bodies: the pipeline, each stage's log
# in $T/{hash,batch,load}.log, their exit statuses in $rcs (124: the stage
# did not finish within 60 s).
replay() {
	local t=$1 to=(timeout -k 5 60)
	shift
	{
		"${to[@]}" tblhash --type "$t" 2>"$T/hash.log" | "${to[@]}" tblbatch 2>"$T/batch.log" |
			"${to[@]}" tblload "$@" 2>"$T/load.log"
		rcs="${PIPESTATUS[*]}"
	} || true
}

# replay_fixture TYPE [DIALECT]: replay a fixture dump (discogs or python-dialect).
replay_fixture() {
	replay "$1" < <(zcat "$MSG/${2:-discogs}_20200806_$1.ndjson.gz")
}

# all_versions: row versions of every table.
all_versions() {
	local t
	for t in "${TYPES[@]}" release_labels release_artists; do
		echo "== $t"
		versions "$t"
	done
}

# start_big_load [TBLLOAD OPTIONS...]: tblbatch | tblload of the large input
# in the background, logs in $T/{batch,load}.log; tblload's pid in $LOAD_PID.
start_big_load() {
	mkfifo "$T/batches"
	tblbatch <"$BATS_FILE_TMPDIR/big.env" 2>"$T/batch.log" >"$T/batches" 3>&- &
	BG_PIDS="$!"
	tblload "$@" <"$T/batches" 2>"$T/load.log" 3>&- &
	LOAD_PID=$!
	BG_PIDS="$BG_PIDS $LOAD_PID"
}

# has_rows TABLE: status 0 once TABLE has a row.
has_rows() {
	(($(count "$1") > 0))
}

# no_loader: status 0 when no tblload session is left on the database.
no_loader() {
	[[ $(psqlq -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tblload'") == 0 ]]
}

# loaders_are N: N tblload sessions are connected to the database.
loaders_are() {
	[[ $(psqlq -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'tblload'") == "$1" ]]
}

# table_counts: "table rows" of the six tables.
table_counts() {
	checksum | cut -d'|' -f1,2 | tr '|' ' ' | xargs
}

@test "the four discogs_20200806 dumps load: 1000 rows per table, every column as docs/design.md#schema says" {
	local t all=$T/all
	for t in "${TYPES[@]}"; do
		replay_fixture "$t"
		assert_equal "0 0 0" "$rcs"
		final_log "$(cat "$T/load.log")" | jq -e '.inserted == 1000 and .updated == 0 and .unchanged == 0 and .rejected == 0'
		assert_equal 10 "$(grep -c '"event":"✅ Batch committed"' "$T/load.log")"
		cat "$(envelopes "$t")" >>"$all"
	done
	assert_equal "artists 1000 labels 1000 masters 1000 releases 1000 release_labels 1135 release_artists 5053" "$(table_counts)"
	for t in "${TYPES[@]}" release_labels release_artists; do
		diff <(expected_rows "$t" <"$all") <(stored_rows "$t") >"$T/diff" || flunk "table $t: $(head -c 2000 "$T/diff")"
	done
	for t in "${TYPES[@]}"; do
		diff <(canonical_bodies "$t" <"$all") <(stored_data "$t") >/dev/null || flunk "data of $t differs"
		# The hash column is the sha256 the extractor sent.
		diff <(zcat "$MSG/discogs_20200806_$t.ndjson.gz" | jq -r '"\(.id) \(.sha256)"' | sort -n) \
			<(psqlq -F ' ' -c "SELECT id, hash FROM $t ORDER BY id") || flunk "hash of $t differs"
	done
	# Spot checks against the bodies: artist 1, release 43 (two labels).
	local b
	b=$(body artists 1)
	assert_equal "$(jq -r '[.name, .realname, (.aliases.name | map(."#text") | join(";"))] | join("|")' <<<"$b")" \
		"$(psqlq -c "SELECT name, real_name, array_to_string(aliases, ';') FROM artists WHERE id = 1")"
	b=$(body releases 43)
	assert_equal "$(jq -r '[(.released[0:4]), (.genres.genre), (.labels.label | map(."@id" + "/" + ."@catno") | sort | join(";"))] | join("|")' <<<"$b")" \
		"$(psqlq -c "SELECT year, array_to_string(genres, ';'), (SELECT string_agg(label_id || '/' || catno, ';' ORDER BY label_id || '/' || catno) FROM release_labels WHERE release_id = 43) FROM releases WHERE id = 43")"
	assert_equal "2000|Electronic|38/MT 002;38/Mt-002" "$(psqlq -c "SELECT year, array_to_string(genres, ';'), (SELECT string_agg(label_id || '/' || catno, ';' ORDER BY label_id || '/' || catno) FROM release_labels WHERE release_id = 43) FROM releases WHERE id = 43")"
}

@test "loading the same dumps again inserts and updates nothing, and no row version changes" {
	local t before
	for t in "${TYPES[@]}"; do
		replay_fixture "$t"
		assert_equal "0 0 0" "$rcs"
	done
	before=$(all_versions)
	for t in "${TYPES[@]}"; do
		replay_fixture "$t"
		assert_equal "0 0 0" "$rcs"
		assert_equal "$(for i in $(seq 10); do echo "$t 100 0 0 100 0 0"; done)" "$(batch_logs "$(cat "$T/load.log")")"
		final_log "$(cat "$T/load.log")" | jq -e '.inserted == 0 and .updated == 0 and .unchanged == 1000 and .rejected == 0'
	done
	assert_equal "$before" "$(all_versions)"
	# Every row was compared: 4000 records, 1135 label and 5053 artist links.
	assert_equal 10188 "$(($(wc -l <<<"$before") - 6))"
	# Nothing was updated or deleted in any table.
	assert_equal "0" "$(psqlq -c "SELECT sum(n_tup_upd + n_tup_del) FROM pg_stat_user_tables")"
}

@test "the Python dialect of the same records loads as unchanged" {
	local t before
	for t in "${TYPES[@]}"; do
		replay_fixture "$t"
	done
	before=$(all_versions)
	for t in "${TYPES[@]}"; do
		replay_fixture "$t" python-dialect
		assert_equal "0 0 0" "$rcs"
		assert_equal "$t 100 0 0 100 0 0" "$(batch_logs "$(cat "$T/load.log")")"
	done
	assert_equal "$before" "$(all_versions)"
	# Loaded alone, the Python dialect stores the same hashes as the compact one.
	pg_newdb
	for t in "${TYPES[@]}"; do
		replay_fixture "$t" python-dialect
		assert_equal "0 0 0" "$rcs"
		diff <(zcat "$MSG/discogs_20200806_$t.ndjson.gz" | head -n 100 | jq -r '"\(.id) \(.sha256)"' | sort -n) \
			<(psqlq -F ' ' -c "SELECT id, hash FROM $t ORDER BY id") || flunk "hashes of $t differ"
	done
}

@test "a batch with duplicate ids stores the last; a changed body updates its row and its links" {
	local r1
	r1=$(zcat "$MSG/discogs_20200806_releases.ndjson.gz" | head -n 1)
	{
		zcat "$MSG/discogs_20200806_releases.ndjson.gz" | head -n 5
		jq -c '.title = "Stockholm (second)"' <<<"$r1"
		jq -c '.title = "Stockholm (last)" | .labels.label."@catno" = "LAST"' <<<"$r1"
	} >"$T/in"
	replay releases --acks "$T/acks" <"$T/in"
	assert_equal "0 0 0" "$rcs"
	assert_equal "releases 7 5 0 0 0 2" "$(batch_logs "$(cat "$T/load.log")")"
	assert_equal "Stockholm (last)|LAST" "$(psqlq -c 'SELECT title, catno FROM releases JOIN release_labels ON release_id = id WHERE id = 1')"
	assert_equal "$(tail -n 1 "$T/in" | tblhash --type releases 2>/dev/null | jq -r .sha256)" "$(psqlq -c 'SELECT hash FROM releases WHERE id = 1')"
	[[ ! -s $T/acks ]]	# no delivery tags: nothing to settle

	# The original body again: release 1 and its label link change back.
	local others
	others=$(psqlq -c 'SELECT id, xmin FROM releases WHERE id <> 1 ORDER BY id')
	replay releases <<<"$r1"
	assert_equal "0 0 0" "$rcs"
	assert_equal "releases 1 0 1 0 0 0" "$(batch_logs "$(cat "$T/load.log")")"
	assert_equal "Stockholm|SK032" "$(psqlq -c 'SELECT title, catno FROM releases JOIN release_labels ON release_id = id WHERE id = 1')"
	assert_equal 1 "$(count release_labels 'release_id = 1')"
	assert_equal 2 "$(count release_artists 'release_id = 1')"
	assert_equal "$others" "$(psqlq -c 'SELECT id, xmin FROM releases WHERE id <> 1 ORDER BY id')"
}

@test "a stream with poison lines stores all the others; each poison is rejected with its reason" {
	# Line 500 is not JSON; line 600 is JSON that PostgreSQL refuses (a
	# number beyond numeric), found by bisection inside its batch.
	local id600
	id600=$(zcat "$MSG/discogs_20200806_labels.ndjson.gz" | sed -n 600p | jq -r .id)
	zcat "$MSG/discogs_20200806_labels.ndjson.gz" |
		awk -v id="$id600" 'NR == 500 { print "{\"id\": \"500\", oops"; next }
			NR == 600 { print "{\"id\":\"" id "\",\"name\":\"big\",\"n\":1e200000}"; next } { print }' >"$T/in"
	replay labels --rejects "$T/rejects" <"$T/in"
	assert_equal 998 "$(count labels)"
	assert_equal 0 "$(count labels "id = $id600 OR name = 'big'")"
	diff <(grep -v -e oops -e 1e200000 "$T/in" | jq -r .id | sort -n) <(psqlq -c 'SELECT id FROM labels ORDER BY id')
	run -0 jq -r '"\(.id) \(.reason)"' "$T/rejects"
	assert_line 0 "null not JSON: quoted object property name expected"
	[[ ${lines[1]} == "$id600 PostgreSQL refused the row: 22003 value overflows numeric format"* ]] || flunk "${lines[1]}"
	assert_equal 2 "${#lines[@]}"
	jq -e '.raw == "{\"id\": \"500\", oops"' <(head -n 1 "$T/rejects")
	final_log "$(cat "$T/load.log")" | jq -e '.inserted == 998 and .rejected == 2'
	# tblhash exits 1 too: it saw the line that is not JSON.
	assert_equal "1 0 1" "$rcs"
}

@test "PostgreSQL stopped in the middle of a load and started again: retried, nothing lost or doubled" {
	start_big_load
	local pid=$LOAD_PID
	wait_until 30 has_rows artists
	pg_stop_for 3
	local t0=$SECONDS
	# tblload waits for the server and goes on.
	wait_until 30 grep -q 'PostgreSQL unavailable, retrying' "$T/load.log"
	with_timeout 100 tail --pid="$pid" -f /dev/null
	local rc=0
	wait "$pid" || rc=$?
	assert_equal 0 "$rc"
	((SECONDS - t0 >= 3))
	grep -q '"event":"✅ Connected to PostgreSQL again after' "$T/load.log"
	# A batch whose COMMIT went through as the connection was cut is
	# retried and found unchanged: every record is counted once either way.
	final_log "$(cat "$T/load.log")" | jq -e --argjson n "$BIG" '.inserted + .unchanged == $n and .updated == 0 and .rejected == 0'
	assert_equal "$(cat "$BATS_FILE_TMPDIR/big.sum")" "$(checksum)"
}

# kill_and_rerun JOBS [TBLLOAD OPTIONS...]: the large input loaded with
# --jobs JOBS and these options, tblload killed with SIGKILL in the middle (once its connections
# are all open), then the same input again: exactly the tables of a clean
# load, every record stored before the kill found unchanged. $stderr is the
# second tblload's.
kill_and_rerun() {
	local jobs=$1
	shift
	set -- --jobs "$jobs" "$@"
	local pid attempt
	for attempt in 1 2 3; do
		start_big_load "$@"
		pid=$LOAD_PID
		wait_until 30 has_rows releases
		wait_until 10 loaders_are "$jobs"
		kill -KILL "$pid" 2>/dev/null && break
		# The load was over before the kill (the machine had a quick
		# moment): again, into a new database.
		wait "$pid" || true
		((attempt < 3)) || flunk "the load ended before the kill, three times"
		rm -f "$T/batches"
		pg_newdb
	done
	wait "$pid" || true
	# The server has ended the killed sessions (committing what they had received).
	wait_until 10 no_loader
	local done_before total=0 t
	done_before=$(table_counts)
	for t in "${TYPES[@]}"; do total=$((total + $(count "$t"))); done
	((total > 0 && total < BIG)) || flunk "not killed in the middle: $total of $BIG rows"
	# The same input again.
	run -0 --separate-stderr bash -c 'f=$1; shift; tblbatch <"$f" 2>/dev/null | tblload "$@"' _ \
		"$BATS_FILE_TMPDIR/big.env" "$@"
	final_log "$stderr" | jq -e --argjson n "$BIG" --argjson t "$total" \
		'.inserted == $n - $t and .unchanged == $t and .updated == 0 and .rejected == 0'
	assert_equal "$(cat "$BATS_FILE_TMPDIR/big.sum")" "$(checksum)"
	[[ $done_before != "$(table_counts)" ]]
}

@test "tblload killed with SIGKILL in the middle of a load: running the same input again gives exactly the expected tables" {
	kill_and_rerun 1
}

@test "tblload with four connections killed with SIGKILL: the same input again gives exactly the expected tables, in bounded memory" {
	kill_and_rerun 4 --merge 0
	# Four connections and the batches read ahead stay well under 64 MB
	# (not so under a sanitizer, which keeps memory of its own).
	! grep -qaE '__(a|t)san_init' "$(command -v tblload)" || return 0
	final_log "$stderr" | jq -e '.peak_rss_kb < 65536' >/dev/null ||
		flunk "peak RSS: $(final_log "$stderr" | jq .peak_rss_kb) kB"
}

@test "two loaders at once on the same records: no deadlock, no error, each record inserted once" {
	tblload </dev/null 2>/dev/null	# the schema, before both start
	(tblbatch <"$BATS_FILE_TMPDIR/big.env" 2>/dev/null | timeout 100 tblload 2>"$T/a.log") 3>&- &
	local a=$!
	(tac "$BATS_FILE_TMPDIR/big.env" | tblbatch 2>/dev/null | timeout 100 tblload 2>"$T/b.log") 3>&- &
	local b=$! rca=0 rcb=0
	BG_PIDS="$a $b"
	wait "$a" || rca=$?
	wait "$b" || rcb=$?
	assert_equal "0 0" "$rca $rcb"
	local ia ib
	ia=$(final_log "$(cat "$T/a.log")" | jq '.inserted')
	ib=$(final_log "$(cat "$T/b.log")" | jq '.inserted')
	assert_equal "$BIG" "$((ia + ib))"
	final_log "$(cat "$T/a.log")" | jq -e --argjson n "$BIG" '.inserted + .unchanged == $n and .updated == 0 and .rejected == 0'
	final_log "$(cat "$T/b.log")" | jq -e --argjson n "$BIG" '.inserted + .unchanged == $n and .updated == 0 and .rejected == 0'
	# Not even a retried deadlock: every log line is a batch, the start or the end.
	assert_equal "" "$(cat "$T/a.log" "$T/b.log" | jq -r 'select(.level != "info") | .event')"
	assert_equal "$(cat "$BATS_FILE_TMPDIR/big.sum")" "$(checksum)"
}

@test "a 50 MB line is rejected with a clear reason, quickly and in bounded memory; the lines around it load" {
	{
		zcat "$MSG/discogs_20200806_artists.ndjson.gz" | head -n 3
		printf '{"id":"77","name":"'
		head -c 50000000 /dev/zero | tr '\0' a
		printf '"}\n'
		zcat "$MSG/discogs_20200806_artists.ndjson.gz" | sed -n '4,6p'
	} >"$T/in"
	local n
	n=$(($(sed -n 4p "$T/in" | wc -c) - 1))
	SECONDS=0
	replay artists --rejects "$T/rejects" <"$T/in"
	((SECONDS < 30)) || flunk "took $SECONDS s"
	assert_equal "1 0 1" "$rcs"
	assert_equal 6 "$(count artists)"
	assert_equal 0 "$(count artists 'id = 77')"
	run -0 cat "$T/rejects"
	assert_output "{\"type\":\"artists\",\"reason\":\"line too long ($n bytes, limit 16777216)\"}"
	# Each tool's peak memory stays under the 64 MB of the issue (ASan's
	# quarantine keeps freed buffers: a looser bound there).
	local s peak limit=65536
	! ldd "$TBL_BINDIR/tblhash" | grep -q libasan || limit=262144
	for s in hash batch load; do
		peak=$(tail -n 1 "$T/$s.log" | jq .peak_rss_kb)
		((peak < limit)) || flunk "$s: peak RSS $peak kB"
	done
	final_log "$(cat "$T/load.log")" | jq -e '.inserted == 6 and .rejected == 1'
	# Given straight to tblload in a batch, over its --max-line, the same answer.
	{
		echo '{"batch":"artists","n":2}'
		printf '{"type":"artists","id":77,"sha256":"%064d","body":{"id":"77","name":"' 0
		head -c 2000000 /dev/zero | tr '\0' a
		printf '"}}\n'
		head -n 1 "$(envelopes artists)"
	} >"$T/in2"
	n=$(($(sed -n 2p "$T/in2" | wc -c) - 1))
	pg_newdb
	run -1 --separate-stderr tblload --max-line 1048576 <"$T/in2"
	where '.event == "❌ Message rejected"' '.id == 77 and .reason == "line too long (\($n) bytes, limit 1048576)"' --argjson n "$n" <<<"$stderr"
	assert_equal "1" "$(psqlq -c 'SELECT id FROM artists')"
}

@test "broken input gets the documented answers: empty, no last newline, NUL bytes, invalid UTF-8" {
	# Empty input: nothing to do, every stage exits 0.
	replay labels </dev/null
	assert_equal "0 0 0" "$rcs"
	final_log "$(cat "$T/load.log")" | jq -e '.inserted == 0 and .rejected == 0'
	assert_equal 0 "$(count labels)"
	# No newline after the last line: it is loaded.
	zcat "$MSG/discogs_20200806_labels.ndjson.gz" | head -n 3 | head -c -1 >"$T/in"
	replay labels <"$T/in"
	assert_equal "0 0 0" "$rcs"
	assert_equal "1 2 3" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	# A raw NUL byte and invalid UTF-8 inside bodies: rejected with the reason,
	# the stream goes on; an escaped U+0000 is removed and counted.
	{
		printf '{"id":"10","name":"a\0b"}\n'
		printf '{"id":"11","name":"caf\xe9"}\n'
		printf '{"id":"12","name":"nul \\u0000 escaped"}\n'
		printf '{"id":"13","name":"fine"}\n'
	} >"$T/in"
	replay labels --rejects "$T/rejects" <"$T/in"
	assert_equal "1 0 1" "$rcs"
	run -0 jq -r '.reason' "$T/rejects"
	assert_output - <<-'EOF'
		not JSON: raw control character U+0000
		not JSON: invalid utf-8 string
	EOF
	assert_equal '{"type":"labels","reason":"not JSON: invalid utf-8 string","raw":"{\"id\":\"11\",\"name\":\"caf\ufffd\"}"}' "$(sed -n 2p "$T/rejects")"
	assert_equal "1 2 3 12 13" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	assert_equal "nul  escaped" "$(psqlq -c 'SELECT name FROM labels WHERE id = 12')"
	final_log "$(cat "$T/load.log")" | jq -e '.inserted == 2 and .rejected == 2 and .nul_removed == 1'
}
