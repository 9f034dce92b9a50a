#!/usr/bin/env bats
# tblhash: message bodies or envelopes in, envelopes with the record's id and
# canonical sha256 out (docs/protocol.md, docs/design.md#hash).

load helpers/common
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=60

MSG=$FIXTURES/messages
TYPES=(artists labels masters releases)
# L1 of the record-shape reference: a record and its hash.
L1_BODY='{"type":"data","id":"1","sha256":"8a3380bdd917c849d1474d8832720aa61bececbe9904f6ade66ac2f99c8a93c2","id":"1","name":"Test Label"}'
L1_SHA=8a3380bdd917c849d1474d8832720aa61bececbe9904f6ade66ac2f99c8a93c2
L1_OUT='{"type":"labels","id":1,"sha256":"'$L1_SHA'","body":{"id":"1","name":"Test Label"}}'

setup_file() {
	require_bin tblhash
}

# pairs: "id<TAB>sha256" of each line of NDJSON on stdin, sorted.
pairs() {
	jq -r '[.id, .sha256] | @tsv' | sort
}

# body_of LINE: the exact bytes of the body member of an envelope line.
body_of() {
	local b=${1#*\"body\":}
	printf '%s' "${b%\}}"
}

# sha TEXT: the lowercase hex SHA-256 of TEXT.
sha() {
	printf '%s' "$1" | sha256sum | cut -c1-64
}

# The final stderr line: the counts.
summary() {
	tail -n 1 <<<"$stderr"
}

# sanitized: the tools are built with AddressSanitizer (make asan), whose
# quarantine keeps freed memory in the peak RSS.
sanitized() {
	ldd "$TBL_BINDIR/tblhash" | grep -q libasan
}

@test "reproduces the sha256 of every record of the four compact (Rust) dumps" {
	for t in "${TYPES[@]}"; do
		run -0 --separate-stderr tblhash --type "$t" < <(zcat "$MSG/discogs_20200806_$t.ndjson.gz")
		assert_equal 1000 "${#lines[@]}"
		diff <(pairs <<<"$output") <(zcat "$MSG/discogs_20200806_$t.ndjson.gz" | pairs)
		summary | jq -e '.lines == 1000 and .records == 1000 and .invalid == 0 and .controls == 0'
	done
}

@test "a Python-dialect body hashes like the compact body of the same record" {
	for t in "${TYPES[@]}"; do
		run -0 --separate-stderr tblhash --type "$t" < <(zcat "$MSG/python-dialect_20200806_$t.ndjson.gz")
		assert_equal 100 "${#lines[@]}"
		got=$(pairs <<<"$output")
		# Every (id, sha256) is the compact dump's, and the one the file carries.
		assert_equal "" "$(comm -23 <(echo "$got") <(zcat "$MSG/discogs_20200806_$t.ndjson.gz" | pairs))"
		assert_equal "$(zcat "$MSG/python-dialect_20200806_$t.ndjson.gz" | pairs)" "$got"
		# The canonical body carries neither sha256 nor type.
		jq -se 'all(.[]; .body | has("sha256") or has("type") | not)' <<<"$output"
	done
}

@test "reproduces the test vectors of the record-shape reference byte for byte" {
	local n=0 name type sha body rec
	while IFS=$'\t' read -r name type sha body; do
		[[ $name == \#* ]] && continue
		run -0 --separate-stderr tblhash --type "$type" <<<"$body"
		# The record is the wire body without its leading type, id and sha256.
		rec="{${body#*\"sha256\":\"$sha\",}"
		assert_equal "{\"type\":\"$type\",\"id\":$(jq -r .id <<<"$body"),\"sha256\":\"$sha\",\"body\":$rec}" "$output"
		assert_equal "$sha  -" "$(body_of "$output" | sha256sum)"
		n=$((n + 1))
	done <"$FIXTURES/record-shape/vectors.tsv"
	assert_equal 10 "$n"
}

@test "key order, whitespace, escapes and CRLF line ends do not change the hash" {
	local in=$BATS_TEST_TMPDIR/in
	for t in "${TYPES[@]}"; do
		# Keys reversed at every level, non-ASCII as \u escapes, tabs,
		# spaces and a CR around the tokens.
		zcat "$MSG/discogs_20200806_$t.ndjson.gz" |
			jq -a --tab 'walk(if type == "object" then to_entries | reverse | from_entries else . end)' |
			awk '{ rec = rec $0 " \t" } /^}$/ { print rec "\r"; rec = "" }' >"$in"
		run -0 --separate-stderr tblhash --type "$t" <"$in"
		assert_equal 1000 "${#lines[@]}"
		diff <(pairs <<<"$output") <(zcat "$MSG/discogs_20200806_$t.ndjson.gz" | pairs)
		# The input really was rewritten so.
		assert_equal 1000 "$(grep -c $'^{ \t\t"[^"]*": .*} \t\r$' "$in")"
		assert_equal 0 "$(grep -c '^{ .."type"' "$in")"
		grep -q '\\u00[c-f][0-9a-f]' "$in"
	done
}

@test "a duplicated id is accepted, the last one counts, and an incoming sha256 is never trusted" {
	run -0 --separate-stderr tblhash --type labels <<-EOF
		$L1_BODY
		{"type":"data","id":"1","sha256":"0000","id":"1","name":"Test Label"}
		{"id":"1","name":"x","id":"2"}
	EOF
	assert_equal 3 "${#lines[@]}"
	assert_line 0 "$L1_OUT"
	assert_line 1 "$L1_OUT"
	assert_line 2 '{"type":"labels","id":2,"sha256":"'"$(sha '{"id":"2","name":"x"}')"'","body":{"id":"2","name":"x"}}'
}

@test "ids: decimal strings or integers from 1 to 2^31-1, from id or else @id" {
	run -0 --separate-stderr tblhash --type releases <<-'EOF'
		{"id":7}
		{"id":"2147483647"}
		{"@id":"13","title":"x"}
	EOF
	assert_equal "7 2147483647 13" "$(jq -r .id <<<"$output" | xargs)"
	assert_line 2 '{"type":"releases","id":13,"sha256":"'"$(sha '{"@id":"13","title":"x"}')"'","body":{"@id":"13","title":"x"}}'
}

@test "an envelope keeps its conn and tag (up to 2^64-1); other header members are dropped" {
	run -0 --separate-stderr tblhash <<-EOF
		{"type":"labels","conn":"5f0c2a9e81d7b364","tag":17,"body":$L1_BODY}
		{"type":"labels","conn":"5f0c2a9e81d7b364","tag":18446744073709551615,"body":$L1_BODY}
		{"type":"labels","x-later":"ignored","body":$L1_BODY}
		{ "type" : "labels" , "body" : { "name": "Test Label",  "id": "1" } }
	EOF
	assert_equal 4 "${#lines[@]}"
	assert_line 0 "${L1_OUT/\"id\"/\"conn\":\"5f0c2a9e81d7b364\",\"tag\":17,\"id\"}"
	assert_line 1 "${L1_OUT/\"id\"/\"conn\":\"5f0c2a9e81d7b364\",\"tag\":18446744073709551615,\"id\"}"
	assert_line 2 "$L1_OUT"
	assert_line 3 "$L1_OUT"
}

@test "file_complete bodies of both dialects become control lines, and control lines pass" {
	local rust='{"type":"file_complete","data_type":"labels","timestamp":"2026-02-01T12:00:00.123456789Z","total_processed":12345,"file":"discogs_20260201_labels.xml.gz"}'
	local python='{ "data_type": "labels",  "file": "discogs_20260201_labels.xml.gz",  "timestamp": "2026-02-01T12:00:00.123456789Z",  "total_processed": 12345,  "type": "file_complete" }'
	local body='{"data_type":"labels","file":"discogs_20260201_labels.xml.gz","timestamp":"2026-02-01T12:00:00.123456789Z","total_processed":12345,"type":"file_complete"}'
	run -0 --separate-stderr tblhash --type labels <<-EOF
		$rust
		$python
	EOF
	assert_output - <<-EOF
		{"type":"labels","control":"file_complete","body":$body}
		{"type":"labels","control":"file_complete","body":$body}
	EOF
	run -0 --separate-stderr tblhash <<-EOF
		{"type":"labels","conn":"c1","tag":9,"body":$rust}
		{"type":"labels","conn":"c1","tag":9,"control":"file_complete","body":$body}
	EOF
	assert_line 0 "{\"type\":\"labels\",\"conn\":\"c1\",\"tag\":9,\"control\":\"file_complete\",\"body\":$body}"
	assert_line 1 "${lines[0]}"
	summary | jq -e '.controls == 2 and .records == 0 and .invalid == 0'
}

@test "a control type with quotes, backslashes or U+0000 is written escaped: one valid line, settled downstream" {
	run -0 --separate-stderr tblhash <<-'EOF'
		{"type":"artists","conn":"c1","tag":1,"body":{"type":"file\"complete"}}
		{"type":"artists","conn":"c1","tag":2,"body":{"type":"a\\b\nc"}}
		{"type":"artists","conn":"c1","tag":3,"body":{"type":"file_complete\u0000x"}}
	EOF
	assert_equal 3 "${#lines[@]}"
	assert_equal '"file\"complete"' "$(jq -c .control <<<"${lines[0]}")"
	assert_equal '"a\\b\nc"' "$(jq -c .control <<<"${lines[1]}")"
	assert_equal '"file_complete\u0000x"' "$(jq -c .control <<<"${lines[2]}")"
	# tblbatch and tblload take them as controls and settle each one.
	printf '%s\n' "${lines[@]}" | tblbatch 2>/dev/null | tblload --dry-run --acks "$BATS_TEST_TMPDIR/acks" >/dev/null 2>&1
	assert_equal "ack 1|ack 2|ack 3" "$(jq -r '"\(.op) \(.tag)"' "$BATS_TEST_TMPDIR/acks" | paste -sd'|')"
}

@test "poison becomes an invalid envelope with its reason, the stream goes on, exit status 1" {
	printf '%s\n' '{"id":"1","name":"a"}' 'not json' '["id","1"]' '"just a string"' \
		'{"name":"x"}' '{"id":"abc"}' '{"id":"0"}' '{"id":"-5"}' '{"id":2147483648}' \
		'{"id":null}' '{"id":1.5}' '{"id":"1e3"}' '{"type":5,"id":"1"}' '{"type":"","id":"1"}' \
		'{"id":"2147483647"}' >"$BATS_TEST_TMPDIR/in"
	printf '{"id":"9","n":"\xff"}\n{"id":"9","n":"\xc0\xaf"}\n{"id":"9","n":"\xed\xa0\x80"}\n' >>"$BATS_TEST_TMPDIR/in"
	printf '{"id":"10","n":"a\x00b"}\n{"id":"11","n":"a\tb"}\n{"id":"12"}\n' >>"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr tblhash --type labels <"$BATS_TEST_TMPDIR/in"
	local bad=id' is not a positive integer below 2^31'
	assert_output - <<-EOF
		{"type":"labels","id":1,"sha256":"$(sha '{"id":"1","name":"a"}')","body":{"id":"1","name":"a"}}
		{"type":"labels","invalid":"not JSON: null expected","raw":"not json"}
		{"type":"labels","invalid":"not a JSON object","raw":"[\"id\",\"1\"]"}
		{"type":"labels","invalid":"not a JSON object","raw":"\"just a string\""}
		{"type":"labels","invalid":"no id","raw":"{\"name\":\"x\"}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":\"abc\"}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":\"0\"}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":\"-5\"}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":2147483648}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":null}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":1.5}"}
		{"type":"labels","invalid":"$bad","raw":"{\"id\":\"1e3\"}"}
		{"type":"labels","invalid":"type member is not a string","raw":"{\"type\":5,\"id\":\"1\"}"}
		{"type":"labels","invalid":"type member is empty","raw":"{\"type\":\"\",\"id\":\"1\"}"}
		{"type":"labels","id":2147483647,"sha256":"$(sha '{"id":"2147483647"}')","body":{"id":"2147483647"}}
		{"type":"labels","invalid":"not JSON: invalid utf-8 string","raw":"{\"id\":\"9\",\"n\":\"\ufffd\"}"}
		{"type":"labels","invalid":"not JSON: invalid utf-8 string","raw":"{\"id\":\"9\",\"n\":\"\ufffd\ufffd\"}"}
		{"type":"labels","invalid":"not JSON: invalid utf-8 string","raw":"{\"id\":\"9\",\"n\":\"\ufffd\ufffd\ufffd\"}"}
		{"type":"labels","invalid":"not JSON: raw control character U+0000","raw":"{\"id\":\"10\",\"n\":\"a\u0000b\"}"}
		{"type":"labels","invalid":"not JSON: raw control character U+0009","raw":"{\"id\":\"11\",\"n\":\"a\tb\"}"}
		{"type":"labels","id":12,"sha256":"$(sha '{"id":"12"}')","body":{"id":"12"}}
	EOF
	# One warning per invalid line, naming the line and the reason.
	run -0 jq -r 'select(.level == "warning") | "\(.line) \(.reason)"' <<<"$stderr"
	assert_equal 18 "${#lines[@]}"
	assert_line 0 "2 not JSON: null expected"
	assert_line 17 "20 not JSON: raw control character U+0009"
	summary | jq -e '.lines == 21 and .records == 3 and .invalid == 18'
}

@test "a body cut off after a high surrogate escape does not change the next record" {
	# json-c kept the pending surrogate of a failed parse: the next record's
	# first \u escape got a U+FFFD before it (found by fuzz/tblhash).
	local next='{"id":"1", "t":"a\u001fb"}'
	run -0 --separate-stderr tblhash --type labels <<<"$next"
	local want=$output
	for cut in '{"a":"\ud800' '{"a":"\ud800\' '{"a":"\ud800\u' '{"a":"\ud800\ud8'; do
		run -1 --separate-stderr tblhash --type labels < <(printf '%s\n%s\n' "$cut" "$next")
		[[ ${lines[0]} == *'"invalid":"not JSON: unexpected end of input"'* ]] ||
			flunk "not poison: ${lines[0]}"
		assert_equal "$want" "${lines[1]}"
	done
}

@test "envelope poison: unknown type, malformed envelope, raw bodies; conn and tag kept when readable" {
	run -1 --separate-stderr tblhash <<-'EOF'
		{"type":"foo","conn":"c1","tag":1,"body":{"id":"1"}}
		{"type":"labels","body":
		not an envelope
		{"type":"labels","tag":4,"body":{"id":"3"}}
		{"type":"labels","conn":"c1","tag":2,"raw":"{\"id\":\"3\",\"n\":\"a\tb\"}"}
		{"type":"labels","conn":"c1","tag":3,"body":{"id":"3"}
		{"type":"labels","conn":"c1","tag":4,"body":[1]}
		{"type":"labels","conn":"c1","tag":5,"invalid":"no id","raw":"{}"}
		{"type":"labels","conn":"c1","tag":6,"body":{"id":"6"}}
	EOF
	assert_output - <<-EOF
		{"type":"foo","conn":"c1","tag":1,"invalid":"unknown type","raw":"{\"id\":\"1\"}"}
		{"type":"","invalid":"malformed envelope: missing value","raw":"{\"type\":\"labels\",\"body\":"}
		{"type":"","invalid":"malformed envelope: not a JSON object","raw":"not an envelope"}
		{"type":"","invalid":"malformed envelope: tag and conn must come together","raw":"{\"type\":\"labels\",\"tag\":4,\"body\":{\"id\":\"3\"}}"}
		{"type":"labels","conn":"c1","tag":2,"invalid":"not JSON: raw control character U+0009","raw":"{\"id\":\"3\",\"n\":\"a\tb\"}"}
		{"type":"labels","conn":"c1","tag":3,"invalid":"not JSON: unexpected end of input","raw":"{\"id\":\"3\""}
		{"type":"labels","conn":"c1","tag":4,"invalid":"not a JSON object","raw":"[1]"}
		{"type":"labels","conn":"c1","tag":5,"invalid":"no id","raw":"{}"}
		{"type":"labels","conn":"c1","tag":6,"id":6,"sha256":"$(sha '{"id":"6"}')","body":{"id":"6"}}
	EOF
	summary | jq -e '.lines == 9 and .records == 1 and .invalid == 8'
}

@test "an escaped type is passed on as it was written and logged decoded, once" {
	run -1 --separate-stderr tblhash <<<'{"type":"a\"b\u00e9","conn":"c1","tag":1,"body":{"id":"1"}}'
	assert_output '{"type":"a\"b\u00e9","conn":"c1","tag":1,"invalid":"unknown type","raw":"{\"id\":\"1\"}"}'
	jq -se 'map(select(.reason == "unknown type")) | length == 1 and .[0].type == "a\"bé"' \
	    <<<"$stderr" >/dev/null
}

@test "empty input: no output, exit 0; a last line without newline is read" {
	run -0 --separate-stderr tblhash --type labels </dev/null
	assert_output ""
	summary | jq -e '.lines == 0 and .records == 0 and .bytes == 0'

	printf '%s\n%s' '{"id":"2"}' "$L1_BODY" >"$BATS_TEST_TMPDIR/in"
	tblhash --type labels <"$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/out" 2>/dev/null
	assert_equal 2 "$(wc -l <"$BATS_TEST_TMPDIR/out")"
	assert_equal "$L1_OUT" "$(tail -n 1 "$BATS_TEST_TMPDIR/out")"
	# An empty line is a line: it is passed on as invalid.
	run -1 --separate-stderr tblhash --type labels <<<''
	assert_output '{"type":"labels","invalid":"not JSON: unexpected end of input","raw":""}'
}

long_line() { # BYTES FILE: a record of BYTES bytes, then L1
	{
		printf '{"id":"1","n":"'
		head -c "$(($1 - 17))" /dev/zero | tr '\0' a
		printf '"}\n%s\n' "$L1_BODY"
	} >"$2"
}

@test "a 50 MB line is rejected as too long, quickly, and the stream goes on" {
	long_line 50000000 "$BATS_TEST_TMPDIR/in"
	SECONDS=0
	run -1 --separate-stderr with_timeout 30 tblhash --type labels <"$BATS_TEST_TMPDIR/in"
	((SECONDS < 10))
	assert_output - <<-EOF
		{"type":"labels","invalid":"line too long (50000000 bytes, limit 16777216)"}
		$L1_OUT
	EOF
	summary | jq -e '.lines == 2 and .invalid == 1 and .records == 1'
	# The line is not held: less than the 50 MB (ASan's quarantine adds
	# the freed read buffers, up to twice the limit).
	local peak
	peak=$(summary | jq .peak_rss_kb)
	if sanitized; then ((peak < 100000)); else ((peak < 40000)); fi
}

@test "memory is bounded by --max-line, not by the length of a line" {
	long_line 50000000 "$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr tblhash --type labels --max-line 1048576 <"$BATS_TEST_TMPDIR/in"
	assert_line 0 '{"type":"labels","invalid":"line too long (50000000 bytes, limit 1048576)"}'
	assert_line 1 "$L1_OUT"
	(($(summary | jq .peak_rss_kb) < 20000))
	# In an envelope the header is still read: tblload can reject the delivery.
	{
		printf '{"type":"labels","conn":"c1","tag":5,"body":'
		head -c 5000 "$BATS_TEST_TMPDIR/in"
		printf '"}}\n'
	} >"$BATS_TEST_TMPDIR/env"
	run -1 --separate-stderr tblhash --max-line 1024 <"$BATS_TEST_TMPDIR/env"
	assert_output '{"type":"labels","conn":"c1","tag":5,"invalid":"line too long ('$(($(wc -c <"$BATS_TEST_TMPDIR/env") - 1))' bytes, limit 1024)"}'
}

@test "a too-long line marked control or invalid is not passed on cut: it is reported too long" {
	local pad
	pad=$(head -c 5000 /dev/zero | tr '\0' a)
	{
		printf '{"type":"labels","conn":"c1","tag":7,"control":"file_complete","body":{"n":"%s"}}\n' "$pad"
		printf '{"type":"labels","conn":"c1","tag":8,"invalid":"no id","body":{"n":"%s"}}\n' "$pad"
		printf '%s\n' '{"type":"labels","conn":"c1","tag":9,"control":"file_complete","body":{}}'
	} >"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr tblhash --max-line 1024 <"$BATS_TEST_TMPDIR/in"
	assert_output - <<-EOF
		{"type":"labels","conn":"c1","tag":7,"invalid":"line too long (5079 bytes, limit 1024)"}
		{"type":"labels","conn":"c1","tag":8,"invalid":"line too long (5071 bytes, limit 1024)"}
		{"type":"labels","conn":"c1","tag":9,"control":"file_complete","body":{}}
	EOF
	summary | jq -e '.lines == 3 and .invalid == 2 and .controls == 1'
}

@test "a too-long envelope cut inside its raw string keeps its conn and tag" {
	{
		printf '{"type":"labels","conn":"c1","tag":9,"raw":"{\\"id\\":\\"1\\",\\"n\\":\\"'
		head -c 5000 /dev/zero | tr '\0' a
		printf '\\"}"}\n'
	} >"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr tblhash --max-line 1024 <"$BATS_TEST_TMPDIR/in"
	assert_output '{"type":"labels","conn":"c1","tag":9,"invalid":"line too long ('$(($(wc -c <"$BATS_TEST_TMPDIR/in") - 1))' bytes, limit 1024)"}'
}

@test "--help, --version" {
	run -0 --separate-stderr tblhash --help
	assert_line 0 "usage: tblhash [-t type] [--max-line bytes] [--always-parse]"
	assert_equal "" "$stderr"
	run -0 --separate-stderr tblhash -h
	assert_line 0 "usage: tblhash [-t type] [--max-line bytes] [--always-parse]"
	run -0 --separate-stderr tblhash --version
	assert_output "tblhash (tableinator) $(cat "$TBL_ROOT/VERSION")"
}

@test "bad command lines exit 64 and say why" {
	run -64 --separate-stderr tblhash -x
	assert_equal "" "$output"
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''-x'\'' (see tblhash --help)"' <<<"$stderr"
	run -64 --separate-stderr tblhash --nope
	jq -e '.exit_status == 64 and .event == "unknown or malformed option '\''--nope'\'' (see tblhash --help)"' <<<"$stderr"
	run -64 --separate-stderr tblhash --type
	jq -e '.exit_status == 64 and .event == "option '\''--type'\'' needs an argument (see tblhash --help)"' <<<"$stderr"
	run -64 --separate-stderr tblhash extra-operand
	jq -e '.exit_status == 64 and .event == "unexpected argument '\''extra-operand'\'' (see tblhash --help)"' <<<"$stderr"

	run -64 --separate-stderr tblhash --type foo
	jq -e '.level == "error" and .exit_status == 64 and
		.event == "option --type: unknown type '\''foo'\'' (want artists, labels, masters or releases)"' <<<"$stderr"
	run -64 --separate-stderr tblhash --max-line 12x
	jq -e '.exit_status == 64 and (.event | startswith("option --max-line: '\''12x'\'' is not a number"))' <<<"$stderr"
	run -64 --separate-stderr tblhash --max-line 10
	jq -e '.exit_status == 64 and (.event | contains("out of range"))' <<<"$stderr"
	assert_equal "" "$output"
}

@test "LOG_LEVEL filters the log; a bad one exits 78" {
	LOG_LEVEL=error run -1 --separate-stderr tblhash --type labels <<<'{"no":"id"}'
	assert_output '{"type":"labels","invalid":"no id","raw":"{\"no\":\"id\"}"}'
	assert_equal "" "$stderr"
	LOG_LEVEL=loud run -78 --separate-stderr tblhash --type labels </dev/null
	jq -e '.exit_status == 78 and (.event | startswith("LOG_LEVEL"))' <<<"$stderr"
}

@test "stdout closed early, closed, or full: non-zero exit and a message naming stdout" {
	run -0 bash -c 'zcat "$1" | tblhash --type releases 2>"$2" | head -c 100 >/dev/null
		echo "${PIPESTATUS[1]}"' _ "$MSG/discogs_20200806_releases.ndjson.gz" "$BATS_TEST_TMPDIR/err"
	assert_output 75
	jq -e '.level == "error" and .event == "stdout: Broken pipe" and .exit_status == 75' "$BATS_TEST_TMPDIR/err"

	run -75 --separate-stderr bash -c 'tblhash --type labels >&-' <<<"$L1_BODY"
	jq -e '.event == "stdout: Bad file descriptor"' <<<"$stderr"
	run -75 --separate-stderr bash -c 'tblhash --type labels >/dev/full' <<<"$L1_BODY"
	jq -e '.event == "stdout: No space left on device"' <<<"$stderr"
}

@test "every stderr line is one JSON log record" {
	{
		zcat "$MSG/discogs_20200806_labels.ndjson.gz" | head -n 50
		printf '%s\n' 'not json' '{"no":"id"}' '{"type":"file_complete","file":"x"}'
		printf '{"id":"3","n":"\xff \x01"}\n'
	} >"$BATS_TEST_TMPDIR/in"
	run -1 --separate-stderr tblhash --type labels <"$BATS_TEST_TMPDIR/in"
	assert_equal 54 "${#lines[@]}"
	assert_equal 4 "${#stderr_lines[@]}"
	for l in "${stderr_lines[@]}"; do
		jq -e 'type == "object" and (.timestamp | test("^[0-9-]{10}T[0-9:.]{15}Z$")) and
			(.level | IN("info", "warning")) and .logger == "tableinator.tblhash" and
			(.event | type == "string")' <<<"$l" >/dev/null || flunk "not a log record: $l"
	done
}

# Both ways of hashing (a body already in canonical form is hashed as it is;
# --always-parse parses it with json-c and writes it again) must give the
# same bytes: the fast path may only take what the slow one writes.
both_ways_agree() {	# FILE TYPE
	local fast slow
	# Exit status 1 when some lines are poison: both must say so alike.
	fast=$(tblhash --type "$2" <"$1" 2>/dev/null; echo "status $?")
	slow=$(tblhash --type "$2" --always-parse <"$1" 2>/dev/null; echo "status $?")
	[[ $fast == "$slow" ]] || {
		diff <(printf '%s\n' "$fast") <(printf '%s\n' "$slow") | head -n 6
		return 1
	}
}

@test "bodies already in canonical form are hashed as they are, to the same bytes as parsed ones" {
	local in=$BATS_TEST_TMPDIR/in w='{"type":"data","id":"7","sha256":"'$(printf '%064d' 0)'",'
	{
		# Recognised: the Rust wrapper, and a bare canonical record.
		echo "$w"'"id":"7","name":"a"}'
		echo '{"id":"7","name":"a"}'
		echo "$w"'"a":[],"b":{},"c":[{"x":null},true,false],"id":"0007","z":"\"\\\b\f\n\r\t\u0000\u001f é"}'
		# Not recognised, each for its own reason; the slow path decides.
		echo "$w"'"name":"a","id":"7"}'
		echo "$w"'"id":"7","id":"8"}'
		echo "$w"'"name":"a"}'
		echo "$w"'"id":"7","n":1}'
		echo "$w"'"id":"7","n":"\u0008\/\u00e9\u007f"}'
		echo "$w"'"id":"7","sha256":"x"}'
		echo "$w"'"id":"7", "n":"a"}'
		echo '{"id": "7","name":"a"}'
		echo '{"\u0061":"k","id":"7"}'
		echo '{"id":"7","type":"file_complete"}'
		echo '{"id":"7","n":"'$'\xc0\xaf''"}'
		echo '{"id":"2147483648"}'
		echo '{"id":"7"} '
		printf '{"id":"7","d":%s1%s}\n' "$(printf '[%.0s' {1..195})" "$(printf ']%.0s' {1..195})"
	} >"$in"
	both_ways_agree "$in" labels
	run -1 --separate-stderr tblhash --type labels <"$in"
	[[ $(jq -r 'select(.already_canonical) | .already_canonical' <<<"$stderr") == 3 ]]
	# Every sample record is recognised.
	zcat "$FIXTURES/messages/discogs_20200806_releases.ndjson.gz" >"$in"
	both_ways_agree "$in" releases
	[[ $(tblhash --type releases <"$in" 2>&1 >/dev/null | jq -r '.already_canonical') == 1000 ]]
}

@test "random damage to real bodies: the fast and the slow path still agree on every line" {
	local in=$BATS_TEST_TMPDIR/in
	# 3000 lines, each a sample body with one to three bytes replaced,
	# inserted or removed, drawn from the characters that matter to JSON.
	for t in artists labels masters releases; do
		zcat "$FIXTURES/messages/discogs_20200806_$t.ndjson.gz" | head -n 150
	done | perl -e '
		srand(20261129);
		my @c = ("\"", "\\", "{", "}", "[", "]", ",", ":", "0", "a", " ", "u", "\x00",
			"\x1f", "\xc3", "\xa9", "\xff", "n", "t");
		my @lines = <STDIN>;
		for my $i (1 .. 3000) {
			my $l = $lines[rand @lines];
			chomp $l;
			for (1 .. 1 + int(rand 3)) {
				my $at = int(rand length $l);
				my $op = int(rand 3);
				my $ch = $c[rand @c];
				if ($op == 0) { substr($l, $at, 1) = $ch }
				elsif ($op == 1) { substr($l, $at, 0) = $ch }
				else { substr($l, $at, 1) = "" }
			}
			print "$l\n";
		}' >"$in"
	both_ways_agree "$in" releases
}
