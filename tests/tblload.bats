#!/usr/bin/env bats
# tblload against a real PostgreSQL: schema, one transaction per batch, the
# typed columns of docs/design.md#schema, the hash skip, duplicates, poison found by
# bisection, settle lines, rejects, NUL removal, offline modes, and the
# answers to bad configuration and an unreachable server. Each test has a
# database of its own.
# needs: postgres

load helpers/common
load helpers/replay
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=60

setup_file() {
	require_bin tblload tblbatch tblhash
}

setup() {
	pg_newdb
	T=$BATS_TEST_TMPDIR
}

@test "creates the database if it is missing and applies the schema; a second start changes nothing" {
	export POSTGRES_DATABASE=${POSTGRES_DATABASE}_new
	[[ -z $(psqlq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DATABASE'") ]]
	run -0 --separate-stderr tblload </dev/null
	assert_equal "" "$output"
	where '.event | startswith("🆕")' '.event == "🆕 Created database \($d)"' --arg d "$POSTGRES_DATABASE" <<<"$stderr"
	assert_contains "$stderr" "🐘 Connected to PostgreSQL (database $POSTGRES_DATABASE on $POSTGRES_ADDRESS), schema ready"
	assert_equal "artists labels masters release_artists release_labels releases" \
		"$(psqlq -c "SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")"
	local schema
	schema=$(psqlq -c "SELECT tablename || ' ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
	assert_equal 26 "$(wc -l <<<"$schema")"
	grep -qx 'artists artists_name_idx CREATE INDEX artists_name_idx ON public.artists USING hash (name)' <<<"$schema"
	grep -qx 'releases releases_genres_idx CREATE INDEX releases_genres_idx ON public.releases USING gin (genres)' <<<"$schema"
	final_log "$stderr" | jq -e '.inserted == 0 and .rejected == 0'

	# Again, with a record in it: nothing is created, nothing is lost.
	envl labels 1 '{"id":"1","name":"x"}' | frame >"$T/in"
	run -0 --separate-stderr tblload <"$T/in"
	run -0 --separate-stderr tblload </dev/null
	refute_line "🆕"
	[[ $stderr != *Created* ]] || flunk "created again: $stderr"
	assert_equal "$schema" "$(psqlq -c "SELECT tablename || ' ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")"
	assert_equal "1|x" "$(psqlq -c 'SELECT id, name FROM labels')"
	# An existing empty database (pg_newdb's) gets the schema too.
	pg_newdb
	run -0 --separate-stderr tblload </dev/null
	[[ $stderr != *Created* ]]
	assert_equal 0 "$(count releases)"
}

@test "loads one batch in one transaction and logs its counts" {
	head -n 5 "$(envelopes labels)" | frame >"$T/in"
	run -0 --separate-stderr tblload <"$T/in"
	assert_equal "" "$output"
	assert_equal "labels 5 5 0 0 0 0" "$(batch_logs "$stderr")"
	where '.event == "✅ Batch committed"' '(.duration_ms | type == "number") and .records_per_sec > 0' <<<"$stderr"
	final_log "$stderr" | jq -e '.inserted == 5 and .updated == 0 and .unchanged == 0 and
		.rejected == 0 and .duplicates == 0 and .controls == 0 and .nul_removed == 0'
	assert_equal "1 2 3 4 5" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	# One transaction: all five rows carry the same xmin.
	assert_equal 1 "$(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels')"
}

@test "typed columns of every fixture record are those of docs/design.md#schema; data is the canonical body" {
	local t all=$T/all
	for t in "${TYPES[@]}"; do
		run -0 --separate-stderr tblload < <(tblbatch <"$(envelopes "$t")" 2>/dev/null)
		assert_equal 1000 "$(count "$t")"
		cat "$(envelopes "$t")" >>"$all"
	done
	for t in "${TYPES[@]}" release_labels release_artists; do
		diff <(expected_rows "$t" <"$all") <(stored_rows "$t") || flunk "table $t differs"
	done
	assert_equal 1135 "$(count release_labels)"
	assert_equal 5053 "$(count release_artists)"
	for t in "${TYPES[@]}"; do
		diff <(canonical_bodies "$t" <"$all") <(stored_data "$t") || flunk "data of $t differs"
		# ... and hash is the envelope's sha256.
		diff <(jq -r '"\(.id) \(.sha256)"' "$(envelopes "$t")" | sort -n) \
			<(psqlq -F ' ' -c "SELECT id, hash FROM $t ORDER BY id") || flunk "hash of $t differs"
	done
}

@test "spot checks: artist 1, a label with parentLabel, master 113, releases 1 and 43" {
	local t
	for t in "${TYPES[@]}"; do
		tblbatch <"$(envelopes "$t")" 2>/dev/null | tblload 2>/dev/null
	done
	local b
	# Artist 1: name, real name, urls, aliases in the record's order.
	b=$(body artists 1)
	assert_equal "The Persuader|Jesper Dahlbäck" "$(psqlq -c 'SELECT name, real_name FROM artists WHERE id = 1')"
	assert_equal "$(jq -r '.name + "|" + .realname' <<<"$b")" "$(psqlq -c 'SELECT name, real_name FROM artists WHERE id = 1')"
	assert_equal "$(jq -c '[.urls.url]' <<<"$b")" "$(psqlq -c 'SELECT to_json(urls) FROM artists WHERE id = 1')"
	assert_equal "$(jq -c '[.aliases.name[]."#text"]' <<<"$b")" "$(psqlq -c 'SELECT to_json(aliases) FROM artists WHERE id = 1')"
	assert_equal '"Jesper Dahlbäck","Groove Machine","Dick Track","Lenk","Janne Me'"'"' Amazonen","Faxid","The Pinguin Man"' \
		"$(psqlq -c "SELECT array_to_string(array(SELECT '\"' || a || '\"' FROM unnest(aliases) a), ',') FROM artists WHERE id = 1")"
	assert_equal "t" "$(psqlq -c 'SELECT profile IS NULL FROM artists WHERE id = 1')"
	# Label 5 (Svek) has a parent label.
	b=$(body labels 5)
	assert_equal "$(jq -r '.name + "|" + .parentLabel."@id"' <<<"$b")" "$(psqlq -c 'SELECT name, parent_label_id FROM labels WHERE id = 5')"
	assert_equal "Svek|4711" "$(psqlq -c 'SELECT name, parent_label_id FROM labels WHERE id = 5')"
	assert_equal "$(jq '[.[] | select(.parentLabel != null)] | length' <(zcat "$MSG/discogs_20200806_labels.ndjson.gz" | jq -s .))" \
		"$(count labels 'parent_label_id IS NOT NULL')"
	# Master 113: year, genres, styles, main release.
	b=$(body masters 113)
	assert_equal "$(jq -r '"\(.title)|\(.year)|{\(.genres.genre)}|{\(.styles.style | join(","))}|\(.main_release)"' <<<"$b" | sed 's/,Tech House/,"Tech House"/')" \
		"$(psqlq -c 'SELECT title, year, genres, styles, main_release FROM masters WHERE id = 113')"
	assert_equal 'Moments In Time|2002|{Electronic}|{Techno,"Tech House"}|116925' \
		"$(psqlq -c 'SELECT title, year, genres, styles, main_release FROM masters WHERE id = 113')"
	# Release 1: the year of "1999-03-00", one format and one label made arrays.
	b=$(body releases 1)
	assert_equal "1999-03-00" "$(jq -r .released <<<"$b")"
	assert_equal 'Stockholm|1999|Sweden|{Electronic}|{"Deep House"}|5|1660109' \
		"$(psqlq -c 'SELECT title, year, country, genres, styles, label_id, master_id FROM releases WHERE id = 1')"
	assert_equal "$(jq -cS '[.formats.format]' <<<"$b")" "$(psqlq -c 'SELECT formats FROM releases WHERE id = 1' | jq -cS .)"
	assert_equal "$(jq -cS '.tracklist.track' <<<"$b")" "$(psqlq -c 'SELECT tracklist FROM releases WHERE id = 1' | jq -cS .)"
	assert_equal "1|5|SK032" "$(psqlq -c 'SELECT * FROM release_labels WHERE release_id = 1')"
	assert_equal "1|1|The Persuader||||f
1|239|Jesper Dahlbäck|||Music By [All Tracks By]|t" "$(psqlq -c 'SELECT * FROM release_artists WHERE release_id = 1 ORDER BY extra, artist_id')"
	# Release 43: two labels, two artists joined by "&", extra artists with roles.
	b=$(body releases 43)
	assert_equal "$(jq -r '.labels.label[] | "43|\(."@id")|\(."@catno")"' <<<"$b" | sort)" \
		"$(psqlq -c 'SELECT * FROM release_labels WHERE release_id = 43' | sort)"
	assert_equal "$(jq -r '.labels.label[0]."@id"' <<<"$b")" "$(psqlq -c 'SELECT label_id FROM releases WHERE id = 43')"
	assert_equal "$(jq -r '.artists.artist[] | "\(.id)|\(.name)|\(.join // "")|f"' <<<"$b" | sort)" \
		"$(psqlq -c 'SELECT artist_id, name, "join", extra FROM release_artists WHERE release_id = 43 AND NOT extra' | sort)"
	assert_equal "$(jq -r '.extraartists.artist[] | "\(.id)|\(.name)|\(.anv // "")|\(.role)"' <<<"$b" | sort)" \
		"$(psqlq -c 'SELECT artist_id, name, anv, role FROM release_artists WHERE release_id = 43 AND extra' | sort)"
	assert_equal 5 "$(count release_artists 'release_id = 43 AND extra')"
	# formats and tracklist are JSON arrays in every row; no year 0.
	assert_equal 0 "$(count releases "jsonb_typeof(formats) <> 'array' OR jsonb_typeof(tracklist) <> 'array' OR year = 0")"
	assert_equal 0 "$(count masters 'year = 0')"
}

@test "duplicate ids in one batch: the last one is stored, the others are superseded (and acked)" {
	{
		envl labels 1 '{"id":"1","name":"first"}' c1 1
		envl labels 2 '{"id":"2","name":"two"}' c1 2
		envl labels 1 '{"id":"1","name":"second"}' c1 3
		envl labels 1 '{"id":"1","name":"last"}' c1 4
	} | frame >"$T/in"
	run -0 --separate-stderr tblload --acks "$T/acks" <"$T/in"
	assert_equal "labels 4 2 0 0 0 2" "$(batch_logs "$stderr")"
	assert_equal "1|last 2|two" "$(psqlq -c 'SELECT id, name FROM labels ORDER BY id' | xargs)"
	assert_equal "$(printf '%s' '{"id":"1","name":"last"}' | sha256sum | cut -c1-64)" \
		"$(psqlq -c 'SELECT hash FROM labels WHERE id = 1')"
	assert_equal "1 2 3 4" "$(jq -r 'select(.op == "ack" and .conn == "c1") | .tag' "$T/acks" | sort -n | xargs)"
	assert_equal 4 "$(wc -l <"$T/acks")"
}

@test "a changed body updates its row and replaces its link rows; other rows stay as they were" {
	local b2 changed
	grep -E '"id":(2|43),' "$(envelopes releases)" | frame >"$T/in"
	run -0 --separate-stderr tblload <"$T/in"
	assert_equal "releases 2 2 0 0 0 0" "$(batch_logs "$stderr")"
	assert_equal 2 "$(count release_labels 'release_id = 2')"
	assert_equal 5 "$(count release_artists 'release_id = 2')"
	local before43
	before43=$(versions releases | grep '^43|'; psqlq -c 'SELECT xmin FROM release_labels WHERE release_id = 43 UNION ALL SELECT xmin FROM release_artists WHERE release_id = 43')
	# Release 2 now has one other label, one artist and no extra artists.
	b2=$(grep '"id":2,' "$(envelopes releases)" | jq -c '.body')
	changed=$(jq -c '.labels.label = {"@catno":"NEW 1","@id":"77","@name":"Other"} |
		.artists.artist = {"anv":null,"id":"999","join":null,"name":"Someone","role":null,"tracks":null} |
		del(.extraartists) | .title = "Changed"' <<<"$b2" | tblhash --type releases 2>/dev/null)
	frame <<<"$changed" >"$T/in2"
	run -0 --separate-stderr tblload <"$T/in2"
	assert_equal "releases 1 0 1 0 0 0" "$(batch_logs "$stderr")"
	assert_equal "Changed|77|$(jq -r .sha256 <<<"$changed")" "$(psqlq -c 'SELECT title, label_id, hash FROM releases WHERE id = 2')"
	assert_equal "2|77|NEW 1" "$(psqlq -c 'SELECT * FROM release_labels WHERE release_id = 2')"
	assert_equal "2|999|Someone||||f" "$(psqlq -c 'SELECT * FROM release_artists WHERE release_id = 2')"
	diff <(jq -cS .body <<<"$changed") <(psqlq -c 'SELECT data FROM releases WHERE id = 2' | jq -cS .)
	# Release 43 was not touched.
	assert_equal "$before43" "$(versions releases | grep '^43|'; psqlq -c 'SELECT xmin FROM release_labels WHERE release_id = 43 UNION ALL SELECT xmin FROM release_artists WHERE release_id = 43')"
}

@test "unchanged records write nothing: the counts say so and no row version changes" {
	local t before
	for t in labels releases; do
		tblbatch <"$(envelopes "$t")" 2>/dev/null >"$T/$t.in"
		run -0 --separate-stderr tblload <"$T/$t.in"
	done
	before=$(for t in labels releases release_labels release_artists; do versions "$t"; done)
	for t in labels releases; do
		run -0 --separate-stderr tblload <"$T/$t.in"
		assert_equal "$(for i in $(seq 10); do echo "$t 100 0 0 100 0 0"; done)" "$(batch_logs "$stderr")"
		final_log "$stderr" | jq -e '.inserted == 0 and .updated == 0 and .unchanged == 1000'
	done
	assert_equal "$before" "$(for t in labels releases release_labels release_artists; do versions "$t"; done)"
	assert_equal 0 "$(psqlq -c "SELECT n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relname = 'releases'")"
}

@test "one run of new, stored, changed and poisoned batches: each batch's records go the right way" {
	# Six batches in one run, one transaction each, in order: a record
	# stored already must not be COPYed as new (it would collide and be
	# redone), a changed one is upserted.
	local env r1
	env=$(envelopes releases)
	r1=$(head -n 1 "$env" | jq -c '.body | .title = "Changed" |
		.labels.label = {"@catno":"NEW 1","@id":"77","@name":"Other"}' | tblhash --type releases 2>/dev/null)
	{
		sed -n 1,5p "$env" | frame	# new
		sed -n 1,5p "$env" | frame	# stored: unchanged
		sed -n 6,10p "$env" | frame	# new, after a batch of stored ones
		sed -n 11,13p "$env" | frame	# new
		{ sed -n 14,16p "$env"; envl releases 999999 '{"id":"999999",'; } | frame	# new, and a poison body
		{ printf '%s\n' "$r1"; sed -n 17,18p "$env"; } | frame	# one changed, two new
	} >"$T/in"
	LOG_LEVEL=DEBUG run -1 --separate-stderr tblload --jobs 1 --merge 0 <"$T/in"
	[[ $stderr != *"stored by someone else"* ]] || flunk "stored records were COPYed as new"
	assert_equal "releases 5 5 0 0 0 0
releases 5 0 0 5 0 0
releases 5 5 0 0 0 0
releases 3 3 0 0 0 0
releases 4 3 0 0 1 0
releases 3 2 1 0 0 0" "$(batch_logs "$stderr")"
	assert_equal "Changed|77|NEW 1" "$(psqlq -c 'SELECT r.title, l.label_id, l.catno FROM releases r JOIN release_labels l ON l.release_id = r.id WHERE r.id = 1')"

	# Exactly the tables of the final records loaded at once.
	local sum
	sum=$(checksum)
	pg_newdb
	{ printf '%s\n' "$r1"; sed -n 2,18p "$env"; } | frame >"$T/ref"
	run -0 --separate-stderr tblload <"$T/ref"
	assert_equal "releases 18 18 0 0 0 0" "$(batch_logs "$stderr")"
	assert_equal "$(checksum)" "$sum"
	assert_equal 18 "$(count releases)"
}

@test "a row PostgreSQL refuses is rejected with its reason; the rest of the batch commits" {
	local bad='{"id":"3","name":"a\ud800b"}'
	{
		head -n 2 "$(envelopes labels)"
		envl labels 3 "$bad"
		sed -n '4,10p' "$(envelopes labels)"
	} | tagged c1 | frame >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" --rejects "$T/rejects" <"$T/in"
	assert_equal "labels 10 9 0 0 1 0" "$(batch_logs "$stderr")"
	assert_equal "1 2 4 5 6 7 8 9 10" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	local reason
	reason=$(jq -r 'select(.event == "❌ Message rejected") | .reason' <<<"$stderr")
	# The message and its detail, not the COPY context (staging table, row).
	assert_equal "PostgreSQL refused the row: 22P02 invalid input syntax for type json: Unicode low surrogate must follow a high surrogate." "$reason"
	where '.event == "❌ Message rejected"' '.id == 3 and .tag == 3 and .type == "labels" and .line == 4' <<<"$stderr"
	# The rejects file: one NDJSON line with the body as it came (which jq
	# itself cannot read: it refuses the lone surrogate too).
	assert_equal "{\"type\":\"labels\",\"id\":3,\"conn\":\"c1\",\"tag\":3,\"reason\":$(jq -n --arg r "$reason" '$r'),\"body\":$bad}" \
		"$(cat "$T/rejects")"
	# One settle line per delivery: the poison rejected, the others acked.
	assert_equal "$(seq 1 10 | grep -vx 3 | sed 's/.*/ack &/'; echo "reject 3")" \
		"$(jq -r '"\(.op) \(.tag)"' "$T/acks" | sort -k1,1 -k2n)"
	where '.op == "reject"' '.reason == $r' --arg r "$reason" <"$T/acks"
}

@test "bisection finds every refused row of a batch, neighbours included" {
	{
		sed -n '1,40p' "$(envelopes labels)"
		envl labels 900041 '{"id":"900041","n":1e200000}'
		envl labels 900042 '{"id":"900042","n":"\udfff"}'
		sed -n '43,90p' "$(envelopes labels)"
		envl labels 900091 '{"id":"900091","n":-1e200000}'
		sed -n '92,100p' "$(envelopes labels)"
	} | tagged c1 | frame >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" <"$T/in"
	assert_equal "labels 100 97 0 0 3 0" "$(batch_logs "$stderr")"
	assert_equal 97 "$(count labels)"
	assert_equal 0 "$(count labels 'id > 900000')"
	# Tags are line numbers: the refused rows are lines 41, 42 and 91.
	assert_equal "41 900041 22003|42 900042 22P02|91 900091 22003" \
		"$(jq -r 'select(.event == "❌ Message rejected") | "\(.tag) \(.id) \(.reason[28:33])"' <<<"$stderr" | sort -n | paste -sd'|')"
	assert_equal "$(seq 1 100 | grep -vx -e 41 -e 42 -e 91 | sed 's/^/ack /'; printf 'reject %s\n' 41 42 91)" \
		"$(jq -r '"\(.op) \(.tag)"' "$T/acks" | sort -k1,1 -k2n)"
}

@test "a body tblload cannot read is rejected, not acked as unchanged" {
	{
		envl labels 1 '{"id":"1","name":"one"}' c1 1
		envl labels 2 '{"id":"2","name":"x",}' c1 2
		envl labels 3 '{"id":"3","name":"three"}' c1 3
	} | frame >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" --rejects "$T/rejects" <"$T/in"
	assert_equal "labels 3 2 0 0 1 0" "$(batch_logs "$stderr")"
	assert_equal "1 3" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	assert_equal "ack 1|reject 2|ack 3" "$(jq -r '"\(.op) \(.tag)"' "$T/acks" | sort -k2n | paste -sd'|')"
	# The body goes to the rejects file as a string: the line stays NDJSON.
	jq -e '.id == 2 and .tag == 2 and .reason == "body is not a valid JSON object" and
		.raw == "{\"id\":\"2\",\"name\":\"x\",}" and has("body") == false' "$T/rejects"
	final_log "$stderr" | jq -e '.inserted == 2 and .unchanged == 0 and .rejected == 1'
}

@test "invalid envelopes are rejected with their reasons, without a transaction" {
	printf '%s\n' '{"id":"1","name":"ok"}' 'not json' '{"name":"no id"}' '{"id":"0"}' '[1]' |
		tblhash --type labels 2>/dev/null | tagged c9 | sed 1d >"$T/env"
	{
		echo '{"type":"labels","conn":"c9","tag":6,"id":6,"sha256":"x","body":{"id":"6"}}'
		echo '{"type":"nope","conn":"c9","tag":7,"id":7,"sha256":"'"$(printf '%064d' 7)"'","body":{"id":"7"}}'
		echo '{"type":"artists","conn":"c9","tag":8,"id":8,"sha256":"'"$(printf '%064d' 8)"'","body":{"id":"8"}}'
		echo 'not an envelope'
	} >>"$T/env"
	frame <"$T/env" | sed '1s/"batch":"[^"]*"/"batch":"labels"/' >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" --rejects "$T/rejects" <"$T/in"
	assert_equal "" "$(batch_logs "$stderr")"
	for t in "${TYPES[@]}"; do assert_equal 0 "$(count "$t")"; done
	assert_equal 0 "$(psqlq -c "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables")"
	run -0 jq -r '"\(.tag) \(.reason)"' "$T/rejects"
	assert_output - <<-'EOF'
		2 not JSON: null expected
		3 no id
		4 id is not a positive integer below 2^31
		5 not a JSON object
		6 envelope has no id, sha256 or body (pipe through tblhash)
		7 unknown type
		8 type differs from its batch
		null malformed envelope: not a JSON object
	EOF
	where '.tag == 2' '.raw == "not json" and .conn == "c9" and .type == "labels"' <"$T/rejects"
	where '.tag == null' '.line == "not an envelope"' <"$T/rejects"
	assert_equal "2 3 4 5 6 7 8" "$(jq -r 'select(.op == "reject") | .tag' "$T/acks" | xargs)"
	assert_equal 7 "$(wc -l <"$T/acks")"
	final_log "$stderr" | jq -e '.rejected == 8 and .inserted == 0'
}

@test "the rejects file and the log take an escaped type and conn as they came, not escaped twice" {
	# "c\u0039" is the connection c9: the settle line and the rejects file
	# carry it as read, and a JSON reader gets c9 from both.
	echo '{"type":"no\u0070e","conn":"c\u0039","tag":7,"id":7,"sha256":"'"$(printf '%064d' 7)"'","body":{"id":"7"}}' |
		frame | sed '1s/"batch":"[^"]*"/"batch":"labels"/' >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" --rejects "$T/rejects" <"$T/in"
	local log=$stderr
	run -0 jq -c '[.type, .conn, .tag, .reason]' "$T/rejects"
	assert_output '["nope","c9",7,"unknown type"]'
	run -0 jq -c '[.op, .conn, .tag]' "$T/acks"
	assert_output '["reject","c9",7]'
	# The log gets the type decoded, once.
	jq -se 'map(select(.reason == "unknown type")) | length == 1 and .[0].type == "nope"' \
	    <<<"$log" >/dev/null
}

@test "U+0000 is removed from every string before PostgreSQL, and counted once per character" {
	local b='{"id":"9","name":"a\u0000b","profile":"p\u0000q\u0000r","realname":"lit \\u0000 eral","urls":{"url":["u\u00001","u2"]}}'
	local r='{"id":"5","labels":{"label":{"@catno":"C\u00001","@id":"7"}},"title":"T\u0000"}'
	{
		envl artists 9 "$b" | frame
		envl releases 5 "$r" | frame
	} >"$T/in"
	run -0 --separate-stderr tblload <"$T/in"
	final_log "$stderr" | jq -e '.nul_removed == 6'
	assert_equal "4 2" "$(jq -r 'select(.event == "✅ Batch committed") | .nul_removed' <<<"$stderr" | xargs)"
	assert_equal 'ab|pqr|lit \u0000 eral|{u1,u2}' "$(psqlq -c 'SELECT name, profile, real_name, urls FROM artists WHERE id = 9')"
	assert_equal '{"id":"9","name":"ab","profile":"pqr","realname":"lit \\u0000 eral","urls":{"url":["u1","u2"]}}' \
		"$(psqlq -c 'SELECT data FROM artists WHERE id = 9' | jq -cS .)"
	assert_equal 'T|7|5|C1' "$(psqlq -c 'SELECT title, r.label_id, release_id, catno FROM releases r JOIN release_labels ON release_id = id')"
	assert_equal '{"id":"5","labels":{"label":{"@catno":"C1","@id":"7"}},"title":"T"}' \
		"$(psqlq -c 'SELECT data FROM releases WHERE id = 5' | jq -cS .)"
	# The hash is the envelope's, of the body as it came.
	assert_equal "$(sed -n 2p "$T/in" | jq -r .sha256)" "$(psqlq -c 'SELECT hash FROM artists WHERE id = 9')"
	# --dry-run counts the same.
	run -0 --separate-stderr tblload --dry-run <"$T/in"
	final_log "$stderr" | jq -e '.nul_removed == 6'
	assert_equal '"ab" "C1"' "$(jq -c 'select(.table == "artists" or .table == "release_labels") | .name // .catno' <<<"$output" | xargs -d '\n')"
}

@test "--acks FILE: one settle line per tagged envelope after its commit; none for untagged ones" {
	local ctl='{"type":"labels","conn":"c2","tag":9,"control":"file_complete","body":{"file":"x","type":"file_complete"}}'
	{
		envl labels 1 '{"id":"1","name":"one"}' c2 1
		envl labels 2 '{"id":"2","name":"old"}' c2 2
		envl labels 2 '{"id":"2","name":"two"}' c2 3
		envl labels 4 '{"id":"4","name":"a\ud800"}' c2 4
		envl labels 5 '{"id":"5","name":"untagged"}'
		echo '{"type":"labels","conn":"c2","tag":6,"invalid":"no id","raw":"{}"}'
	} | frame >"$T/in"
	frame <<<"$ctl" >>"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" <"$T/in"
	# In the order they were settled; PostgreSQL's reason is cut after its
	# message (the context that follows is PostgreSQL's to word).
	run -0 jq -c 'if .op == "reject" and .tag == 4 then .reason |= .[0:68] else . end' "$T/acks"
	assert_output - <<-'EOF'
		{"op":"reject","conn":"c2","tag":6,"reason":"no id"}
		{"op":"ack","conn":"c2","tag":1}
		{"op":"ack","conn":"c2","tag":2}
		{"op":"ack","conn":"c2","tag":3}
		{"op":"reject","conn":"c2","tag":4,"reason":"PostgreSQL refused the row: 22P02 invalid input syntax for type json"}
		{"op":"ack","conn":"c2","tag":9}
	EOF
	assert_equal 6 "$(wc -l <"$T/acks")"
	# Again: unchanged records are acked too, the poison rejected again.
	run -1 --separate-stderr tblload --acks "$T/acks2" <"$T/in"
	assert_equal "ack 1|ack 2|ack 3|reject 4|reject 6|ack 9" "$(jq -r '"\(.op) \(.tag)"' "$T/acks2" | sort -k2n | paste -sd'|')"
	# rejected counts the invalid envelope and the poison.
	assert_equal "labels 5 0 0 3 2 1" "$(batch_logs "$stderr")"
	# Nothing committed, nothing settled: with the server unreachable the file stays empty.
	POSTGRES_ADDRESS=127.0.0.1:1 run -75 --separate-stderr tblload --retry-max 0.5 --acks "$T/acks3" <"$T/in"
	[[ ! -s $T/acks3 ]] || flunk "settled without a commit: $(cat "$T/acks3")"
}

@test "--dry-run prints the rows as NDJSON and needs no database" {
	grep -E '"id":(1|43),' "$(envelopes releases)" | frame >"$T/in"
	head -n 2 "$(envelopes artists)" | frame >>"$T/in"
	POSTGRES_ADDRESS=127.0.0.1:1 POSTGRES_DATABASE=nowhere run -0 --separate-stderr tblload --dry-run <"$T/in"
	[[ $stderr != *PostgreSQL* ]] || flunk "$stderr"
	assert_equal "releases 1 release_labels 1 release_artists 2 releases 1 release_labels 2 release_artists 7 artists 2" \
		"$(jq -r .table <<<"$output" | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? " " : ""), $2, $1 }')"
	for t in releases release_labels release_artists artists; do
		assert_equal "$(grep -v '^{"batch"' "$T/in" | expected_rows "$t")" \
			"$(jq -c --arg t "$t" 'select(.table == $t) | del(.table, .hash, .data)' <<<"$output" | jq -cS . |
				if [[ $t == release_* ]]; then LC_ALL=C sort; else cat; fi)"
	done
	# data and hash as they would be stored.
	assert_equal "$(jq -r 'select(.id == 43) | .sha256' "$(envelopes releases)")" "$(jq -r 'select(.table == "releases" and .id == 43) | .hash' <<<"$output")"
	diff <(jq -cS 'select(.id == 43) | .body' "$(envelopes releases)") <(jq -cS 'select(.table == "releases" and .id == 43) | .data' <<<"$output")
}

@test "--copy-out DIR writes COPY files that load with \\copy into the same rows" {
	local t
	cat "$(envelopes labels)" "$(envelopes releases)" | tblbatch 2>/dev/null >"$T/in"
	POSTGRES_ADDRESS=127.0.0.1:1 run -0 --separate-stderr tblload --copy-out "$T/copy" <"$T/in"
	assert_equal "artists.copy labels.copy masters.copy release_artists.copy release_labels.copy releases.copy" "$(ls "$T/copy" | xargs)"
	assert_equal 0 "$(wc -c <"$T/copy/artists.copy")"
	# Load them into a database with the schema...
	psqlq -f "$TBL_ROOT/sql/schema.sql" >/dev/null
	for t in labels releases release_labels release_artists; do
		local cols=${COLS[$t]}
		[[ $t == release_* ]] || cols="$cols, hash, data"
		psqlq -c "\\copy $t ($cols) FROM '$T/copy/$t.copy'"
	done
	local copied
	copied=$(checksum)
	# ...and compare with what tblload itself stores.
	pg_newdb
	run -0 --separate-stderr tblload <"$T/in"
	assert_equal "$(checksum)" "$copied"
	assert_equal "labels|1000" "$(sed -n 2p <<<"$copied" | cut -d'|' -f1,2)"
	assert_equal "release_artists|5053" "$(sed -n 6p <<<"$copied" | cut -d'|' -f1,2)"
}

@test "a bad password exits 78 at once, and the message does not show it" {
	SECONDS=0
	POSTGRES_PASSWORD=Sup3rSecretPw run -78 --separate-stderr with_timeout 20 tblload </dev/null
	((SECONDS < 5))
	[[ $stderr != *Sup3rSecretPw* ]] || flunk "password in the log: $stderr"
	jq -e '.level == "error" and .exit_status == 78 and
		(.event | contains("password authentication failed for user \"tbl\""))' <<<"$stderr"
	# No password at all, an unknown user: the same.
	POSTGRES_PASSWORD= run -78 --separate-stderr tblload </dev/null
	POSTGRES_USERNAME=nobody_here run -78 --separate-stderr tblload </dev/null
	assert_contains "$stderr" "nobody_here"
	assert_equal 1 "${#stderr_lines[@]}"
}

@test "POSTGRES_PASSWORD_FILE: the password from a file (one trailing newline dropped); with POSTGRES_PASSWORD too, or a bad file: 78 naming the path, not the contents" {
	local f=$T/pw
	envl labels 1 '{"id":"1","name":"x"}' | frame >"$T/in"
	printf '%s\n' "$POSTGRES_PASSWORD" >"$f"
	run -0 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload <"$T/in"
	assert_equal 1 "$(count labels)"
	printf '%s' "$POSTGRES_PASSWORD" >"$f"
	run -0 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	printf '%s\r\n' "$POSTGRES_PASSWORD" >"$f"
	run -0 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	# Only one newline goes: two are part of the password, which is wrong.
	printf '%s\n\n' "$POSTGRES_PASSWORD" >"$f"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	assert_contains "$stderr" "password authentication failed"
	run -78 --separate-stderr env POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	jq -e '.event == "POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set: set one of them"' <<<"$stderr"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$T" tblload </dev/null
	jq -e --arg e "POSTGRES_PASSWORD_FILE: $T is not a regular file" '.event == $e' <<<"$stderr"
	mkfifo "$T/fifo"
	run -78 --separate-stderr with_timeout 10 env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$T/fifo" tblload </dev/null
	jq -e --arg e "POSTGRES_PASSWORD_FILE: $T/fifo is not a regular file" '.event == $e' <<<"$stderr"
	{ head -c 65536 /dev/zero | tr '\0' x; echo Qz9; } >"$f"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	jq -e --arg e "POSTGRES_PASSWORD_FILE: $f is larger than 65536 bytes" '.event == $e' <<<"$stderr"
	printf 'a\0b' >"$f"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	jq -e --arg e "POSTGRES_PASSWORD_FILE: $f holds a NUL byte" '.event == $e' <<<"$stderr"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$T/none" tblload </dev/null
	jq -e --arg e "POSTGRES_PASSWORD_FILE: cannot open $T/none: No such file or directory" '.event == $e' <<<"$stderr"
	# Exactly the largest size is taken (and refused by the server).
	head -c 65536 /dev/zero | tr '\0' x >"$f"
	run -78 --separate-stderr env -u POSTGRES_PASSWORD POSTGRES_PASSWORD_FILE="$f" tblload </dev/null
	assert_contains "$stderr" "password authentication failed"
}

@test "without POSTGRES_* variables, libpq's PG* variables say where to go" {
	head -n 2 "$(envelopes labels)" | frame >"$T/in"
	local db=$POSTGRES_DATABASE
	run -0 --separate-stderr env -u POSTGRES_ADDRESS -u POSTGRES_USERNAME -u POSTGRES_PASSWORD \
		-u POSTGRES_DATABASE PGDATABASE="$db" tblload <"$T/in"
	assert_contains "$stderr" "🐘 Connected to PostgreSQL (database $db on $PGHOST), schema ready"
	assert_equal 2 "$(count labels)"
}

@test "an --acks or --rejects file that cannot be written exits 78 before anything is committed" {
	envl labels 1 '{"id":"1","name":"x"}' c1 1 | frame >"$T/in"
	local opt
	for opt in --acks --rejects; do
		run -78 --separate-stderr tblload "$opt" "$T/no/such/dir/file" <"$T/in"
		assert_equal 1 "${#stderr_lines[@]}"
		jq -e --arg e "$opt $T/no/such/dir/file: No such file or directory" '.exit_status == 78 and .event == $e' <<<"$stderr"
	done
	# Not even the schema was applied: it never connected.
	assert_equal "" "$(psqlq -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")"
}

@test "a malformed POSTGRES_ADDRESS exits 78 naming the variable, and never shows the value" {
	local a
	for a in ":5432" "127.0.0.1:" "127.0.0.1:abc" "127.0.0.1:0" "127.0.0.1:65536" "[::1" "[::1]5432" "[::1]:x" \
		"postgresql://tbl:Xy7pw@127.0.0.1:$PGPORT/db" "tbl:Xy7pw@127.0.0.1:$PGPORT" "tbl:Xy7pw@127.0.0.1" \
		"tbl:Xy7pw" "127.0.0.1 Xy7pw" "[Xy7pw]:5432" "[::1%Xy7pw!]" "127.0.0.1:5432:1"; do
		POSTGRES_ADDRESS=$a run -78 --separate-stderr with_timeout 10 tblload </dev/null
		jq -e '.exit_status == 78 and (.event | startswith("POSTGRES_ADDRESS: "))' <<<"$stderr" >/dev/null ||
			flunk "POSTGRES_ADDRESS='$a': $stderr"
		[[ $stderr != *Xy7pw* ]] || flunk "POSTGRES_ADDRESS='$a' shown: $stderr"
	done
	POSTGRES_ADDRESS=postgres://h/ run -78 --separate-stderr tblload </dev/null
	jq -e '.event == "POSTGRES_ADDRESS: want host[:port], not a URL (the user name and password go in POSTGRES_USERNAME and POSTGRES_PASSWORD)"' <<<"$stderr"
	# Good ones: a name, an IPv6 address with a zone.
	POSTGRES_ADDRESS=localhost:$PGPORT run -0 --separate-stderr tblload </dev/null
	POSTGRES_ADDRESS="[::1%lo]:1" run -75 --separate-stderr tblload --retry-max 0.3 </dev/null
	TBLLOAD_RETRY_MAX=later run -78 --separate-stderr tblload </dev/null
	jq -e '.exit_status == 78 and (.event | startswith("TBLLOAD_RETRY_MAX: '\''later'\'' is not a number"))' <<<"$stderr"
}

@test "PostgreSQL unreachable: retries with backoff for --retry-max seconds, then exits 75" {
	local t0 dt
	envl labels 1 '{"id":"1","name":"x"}' c1 1 | frame >"$T/in"
	t0=${EPOCHREALTIME/,/.}
	POSTGRES_ADDRESS=127.0.0.1:1 run -75 --separate-stderr with_timeout 20 tblload --retry-max 2 --acks "$T/acks" <"$T/in"
	dt=$(awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { print b - a }')
	awk -v d="$dt" 'BEGIN { exit !(d >= 1.9 && d < 3) }' || flunk "gave up after $dt s, not about 2 s"
	# Backoff doubles: 0.25, 0.5, 1, ...
	assert_equal "0.25 0.5 1" "$(jq -r 'select(.event == "🔄 PostgreSQL unavailable, retrying") | .retry_in_s' <<<"$stderr" | head -n 3 | xargs)"
	where '.level == "error"' '.exit_status == 75 and
		(.event | startswith("PostgreSQL unavailable for 2 s, giving up"))' <<<"$stderr"
	[[ ! -s $T/acks ]]
	# The environment sets the same.
	t0=${EPOCHREALTIME/,/.}
	POSTGRES_ADDRESS=127.0.0.1:1 TBLLOAD_RETRY_MAX=1 run -75 --separate-stderr with_timeout 20 tblload </dev/null
	dt=$(awk -v a="$t0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { print b - a }')
	awk -v d="$dt" 'BEGIN { exit !(d >= 0.9 && d < 2) }' || flunk "gave up after $dt s, not about 1 s"
}

@test "a COPY refused before it starts (lock timeout) is retried on the same connection" {
	# The schema first, then a lock that lets tblload read the stored
	# hashes but not COPY, and a lock_timeout so the COPY is refused.
	run -0 tblload </dev/null
	psqlq -c "ALTER DATABASE $POSTGRES_DATABASE SET lock_timeout = '200ms'"
	psqlq -c "BEGIN; LOCK TABLE labels IN SHARE MODE; SELECT pg_sleep(5); COMMIT" >/dev/null &
	local locker=$!
	share_locked() {
		[[ -n $(psqlq -c "SELECT 1 FROM pg_locks WHERE relation = 'labels'::regclass AND mode = 'ShareLock' AND granted") ]]
	}
	wait_until 5 share_locked
	head -n 5 "$(envelopes labels)" | frame >"$T/in"
	run -0 --separate-stderr with_timeout 30 tblload --retry-max 20 <"$T/in"
	wait "$locker"
	assert_equal 5 "$(count labels)"
	where '.event == "🔄 PostgreSQL unavailable, retrying"' '.error | startswith("55P03")' <<<"$stderr"
	! grep -q "another command is already in progress" <<<"$stderr" || flunk "results left unread: $stderr"
	assert_equal 1 "$(grep -c 'Connected to PostgreSQL' <<<"$stderr")"
}

@test "a batch cut short by the end of input is not committed: exit 75" {
	head -n 3 "$(envelopes labels)" | frame >"$T/in"
	sed -n '4,6p' "$(envelopes labels)" | frame | head -n 3 >>"$T/in"
	run -75 --separate-stderr tblload <"$T/in"
	assert_equal "labels 3 3 0 0 0 0" "$(batch_logs "$stderr")"
	assert_equal "1 2 3" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	where '.level == "error"' '.event == "❌ Batch at line 5 cut short by the end of input (2 of 3 lines); not committed"' <<<"$stderr"
}

@test "lines that are not batched are loaded one transaction each, with one warning" {
	head -n 3 "$(envelopes labels)" >"$T/in"
	run -0 --separate-stderr tblload <"$T/in"
	assert_equal "labels 1 1 0 0 0 0
labels 1 1 0 0 0 0
labels 1 1 0 0 0 0" "$(batch_logs "$stderr")"
	assert_equal 1 "$(jq -r 'select(.level == "warning") | .event' <<<"$stderr" | grep -c 'not batched')"
	assert_equal 3 "$(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels')"
}

@test "a batch whose header names no known type keeps its rows in one table" {
	{
		echo '{"batch":"foo","n":3}'
		envl artists 5 '{"id":"5","name":"an artist"}' c1 1
		envl labels 6 '{"id":"6","name":"a label"}' c1 2
		envl artists 7 '{"id":"7","name":"another artist"}' c1 3
	} >"$T/in"
	run -1 --separate-stderr tblload --acks "$T/acks" <"$T/in"
	assert_equal "artists 2 2 0 0 1 0" "$(batch_logs "$stderr")"
	assert_equal "5 7" "$(psqlq -c 'SELECT id FROM artists ORDER BY id' | xargs)"
	assert_equal 0 "$(count labels)"
	assert_equal 0 "$(count artists 'id = 6')"
	where '.event == "❌ Message rejected"' '.id == 6 and .reason == "type differs from its batch"' <<<"$stderr"
	assert_equal "ack 1|reject 2|ack 3" "$(jq -r '"\(.op) \(.tag)"' "$T/acks" | sort -k2n | paste -sd'|')"
}

@test "SIGTERM while waiting for input: what was committed stays, exit 0 at once" {
	mkfifo "$T/fifo"
	tblload <"$T/fifo" 2>"$T/err" 3>&- &
	local pid=$! rc=0 t0
	exec {w}>"$T/fifo"
	head -n 3 "$(envelopes labels)" | frame >&$w
	wait_until 10 grep -q 'Batch committed' "$T/err"
	t0=$SECONDS
	kill -TERM "$pid"
	with_timeout 10 tail --pid="$pid" -f /dev/null
	wait "$pid" || rc=$?
	exec {w}>&-
	assert_equal 0 "$rc"
	((SECONDS - t0 <= 2))
	tail -n 1 "$T/err" | jq -e '.event == "🛑 Loading stopped" and .inserted == 3'
	assert_equal 3 "$(count labels)"
}

@test "--help, --version, and bad command lines (64)" {
	run -0 --separate-stderr tblload --help
	assert_line 0 "usage: tblload [--acks file] [--rejects file] [--retry-max seconds]"
	assert_contains "$output" "POSTGRES_ADDRESS (host[:port])"
	assert_equal "" "$stderr"
	run -0 --separate-stderr tblload --version
	assert_output "tblload (tableinator) $(cat "$TBL_ROOT/VERSION")"
	run -64 --separate-stderr tblload -x
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''-x'\'' (see tblload --help)"' <<<"$stderr"
	run -64 --separate-stderr tblload --nope
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''--nope'\'' (see tblload --help)"' <<<"$stderr"
	run -64 --separate-stderr tblload operand
	jq -e '.exit_status == 64 and .event == "unexpected argument '\''operand'\'' (see tblload --help)"' <<<"$stderr"
	run -64 --separate-stderr tblload --retry-max soon
	jq -e '.exit_status == 64 and (.event | startswith("option --retry-max: '\''soon'\'' is not a number"))' <<<"$stderr"
	run -64 --separate-stderr tblload --max-line 100
	jq -e '.exit_status == 64 and (.event | startswith("option --max-line: '\''100'\'' is out of range"))' <<<"$stderr"
	run -64 --separate-stderr tblload --dry-run --copy-out "$T/x"
	jq -e '.exit_status == 64 and .event == "--dry-run and --copy-out exclude each other"' <<<"$stderr"
	run -64 --separate-stderr tblload --acks
	jq -e '.exit_status == 64 and .event == "option '\''--acks'\'' needs an argument (see tblload --help)"' <<<"$stderr"
	assert_equal "" "$output"
}

@test "every stderr line is one JSON log record" {
	{
		head -n 3 "$(envelopes labels)" | frame
		envl labels 7 '{"id":"7","n":"\ud800"}' | frame
		echo 'not an envelope'
		echo '{"type":"labels","control":"file_complete","body":{"type":"file_complete"}}'
	} >"$T/in"
	run -1 --separate-stderr tblload <"$T/in"
	((${#stderr_lines[@]} >= 8)) || flunk "$stderr"
	for l in "${stderr_lines[@]}"; do
		jq -e 'type == "object" and (.timestamp | test("^[0-9-]{10}T[0-9:.]{15}Z$")) and
			(.level | IN("info", "warning", "error")) and .logger == "tableinator.tblload" and
			(.event | type == "string")' <<<"$l" >/dev/null || flunk "not a log record: $l"
	done
	final_log "$stderr" | jq -e '.inserted == 3 and .rejected == 2 and .controls == 1'
}

@test "a new record another writer stores meanwhile: the batch is redone as an upsert" {
	# Another session inserts id 1 and holds its transaction open; tblload,
	# which saw no id 1, COPYs it as new, waits on that session, then gets a
	# unique violation and must redo the whole batch through the upsert.
	local b1='{"id":"1","name":"one"}' b2='{"id":"2","name":"two"}' b3='{"id":"3","name":"three"}'
	{ envl artists 1 "$b1" c1 1; envl artists 2 "$b2" c1 2; envl artists 3 "$b3" c1 3; } |
		frame >"$T/in"
	tblload </dev/null 2>/dev/null	# the schema
	coproc OTHER { psql -XAtq -v ON_ERROR_STOP=1 -d "$POSTGRES_DATABASE"; }
	echo "BEGIN; INSERT INTO artists (id, name, hash, data) VALUES (1, 'other', 'x', '{}'); SELECT 'in';" >&"${OTHER[1]}"
	read -r -t 10 line <&"${OTHER[0]}"
	[[ $line == in ]]
	tblload --acks "$T/acks" <"$T/in" 2>"$T/err" &
	local loader=$!
	# tblload blocks on the uncommitted row (asked again at every try).
	blocked() {
		[[ $(psqlq -c "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'tblload' AND wait_event_type = 'Lock'") == 1 ]]
	}
	wait_until 10 blocked
	echo "COMMIT;" >&"${OTHER[1]}"
	wait "$loader"
	# Its version of id 1 won (the hashes differ), 2 and 3 are new, all acked.
	assert_equal "1|one 2|two 3|three" "$(psqlq -c 'SELECT id, name FROM artists ORDER BY id' | xargs)"
	assert_equal "artists 3 2 1 0 0 0" "$(batch_logs "$(cat "$T/err")")"
	assert_equal 3 "$(grep -c '"op":"ack"' "$T/acks")"
	! grep -q '"level":"error"' "$T/err"
}
