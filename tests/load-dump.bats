#!/usr/bin/env bats
# scripts/load-dump: Discogs XML dumps straight into PostgreSQL through
# tblxml | tblhash | tblbatch | tblload, with progress and a summary per type.
# needs: postgres

load helpers/common
bats_require_minimum_version 1.5.0

XML=$FIXTURES/xml

setup_file() {
	require_bin tblxml tblhash tblbatch tblload
}

setup() {
	pg_newdb
}

# Rows per table, "artists labels masters releases".
counts() {
	psqlq -c "SELECT (SELECT count(*) FROM artists) || ' ' || (SELECT count(*) FROM labels)
		|| ' ' || (SELECT count(*) FROM masters) || ' ' || (SELECT count(*) FROM releases)"
}

# How many tables the database has.
tables() {
	psqlq -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
}

# The summary log line of TYPE: "records inserted updated unchanged rejected".
summary() {
	jq -r --arg t "$1" 'select(.event == "📊 " + $t)
		| "\(.records) \(.inserted) \(.updated) \(.unchanged) \(.rejected)"' <<<"$stderr"
}

# The events of the log lines of LEVEL on stderr.
events() {
	jq -Rr --arg l "$1" 'fromjson? | select(.level == $l) | .event' <<<"$stderr"
}

# Every line of $stderr is a JSON object.
stderr_is_json() {
	local l
	while IFS= read -r l; do
		[[ -z $l ]] && continue
		jq -e 'type == "object"' <<<"$l" >/dev/null || flunk "not JSON on stderr: $l" || return
	done <<<"$stderr"
}

# many_releases N FILE: N thousand releases, gzip'd: the 1000 of the
# 20200806 dump again and again with new ids.
many_releases() {
	zcat "$XML/discogs_20200806_releases.xml.gz" | perl -e '
		my $reps = shift; local $/; my $x = <STDIN>;
		$x =~ s/^.*?<releases>//s; $x =~ s/<\/releases>\s*$//s;
		print "<releases>\n";
		for my $k (1 .. $reps) {
			(my $y = $x) =~ s/(<release id=")(\d+)"/$1 . ($k * 20000000 + $2) . q(")/ge;
			print $y;
		}
		print "</releases>\n";' "$1" | gzip -1 >"$2"
}

# md5 of the xmin of every row of TABLE, in id order: equal means untouched.
xmins() {
	psqlq -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM $1"
}

@test "--help gives the usage and the exit statuses; bad options and no file are usage errors" {
	run -0 load-dump --help
	assert_line 'usage: load-dump [-t type] [-s size] [-p seconds] [-q] file ...'
	assert_contains "$output" "Exit status: 0 all loaded; 1 some record was rejected"
	run -0 load-dump --version
	assert_output "load-dump (tableinator) $(cat "$TBL_ROOT/VERSION")"
	run -64 --separate-stderr load-dump
	assert_equal "no file given" "$(events error)"
	run -64 --separate-stderr load-dump --bogus "$XML/discogs_20200806_labels.xml.gz"
	assert_equal "unknown option --bogus" "$(events error)"
	run -64 --separate-stderr load-dump --type records x.xml
	assert_contains "$(events error)" "--type: unknown type 'records'"
	run -64 --separate-stderr load-dump --size 0 x.xml
	run -64 --separate-stderr load-dump --progress soon x.xml
	run -64 --separate-stderr load-dump --size
	assert_equal "option --size needs a value" "$(events error)"
	run -78 --separate-stderr env LOG_LEVEL=loud load-dump x.xml
	run -0 tables
	assert_output 0
}

@test "the four 20200806 dumps: 1000 rows per table, a summary per type, exit 0" {
	run -0 --separate-stderr load-dump "$XML"/discogs_20200806_{artists,labels,masters,releases}.xml.gz
	stderr_is_json
	for t in artists labels masters releases; do
		assert_equal "1000 1000 0 0 0" "$(summary "$t")"
		grep -Eq "^$t +1 +1000 +1000 +0 +0 +0 +[0-9.]+ +[0-9]+ +[0-9.]+$" <<<"$output" ||
			flunk "no summary row for $t in: $output"
	done
	assert_equal type "${lines[0]%% *}"
	assert_equal 5 "${#lines[@]}"
	run -0 counts
	assert_output "1000 1000 1000 1000"
	run -0 psqlq -c "SELECT count(*) > 1000 FROM release_labels"
	assert_output t
	run -0 events warning
	assert_output ""
	run -0 jq -r 'select(.event == "✅ Load finished") | .exit_status' <<<"$stderr"
	assert_output 0
}

@test "a second run changes nothing: unchanged 1000 per type, no row rewritten" {
	local -A before
	files=("$XML"/discogs_20200806_{artists,labels,masters,releases}.xml.gz)
	load-dump -q "${files[@]}" >/dev/null 2>&1
	for t in artists labels masters releases; do before[$t]=$(xmins "$t"); done
	links=$(psqlq -c "SELECT md5(string_agg(xmin::text || ctid::text, ',' ORDER BY ctid)) FROM release_labels")

	run -0 --separate-stderr load-dump "${files[@]}"
	for t in artists labels masters releases; do
		assert_equal "1000 0 0 1000 0" "$(summary "$t")"
		assert_equal "${before[$t]}" "$(xmins "$t")"
	done
	assert_equal "$links" "$(psqlq -c "SELECT md5(string_agg(xmin::text || ctid::text, ',' ORDER BY ctid)) FROM release_labels")"
	run -0 counts
	assert_output "1000 1000 1000 1000"
}

@test "a truncated dump: tblxml's error with line and column, exit 1, its records before the fault loaded, the next file too" {
	zcat "$XML/discogs_20200806_labels.xml.gz" | head -c 120000 | gzip >"$BATS_TEST_TMPDIR/labels.xml.gz"
	want=$(tblxml "$BATS_TEST_TMPDIR/labels.xml.gz" 2>/dev/null | wc -l)
	((want > 100 && want < 1000))

	run -1 --separate-stderr load-dump "$BATS_TEST_TMPDIR/labels.xml.gz" "$XML/discogs_20200806_artists.xml.gz"
	stderr_is_json
	assert_contains "$(events error)" "$BATS_TEST_TMPDIR/labels.xml.gz:926:305: no element found (the input ends inside the document: truncated file?)"
	assert_equal "$want $want 0 0 0" "$(summary labels)"
	assert_equal "1000 1000 0 0 0" "$(summary artists)"
	run -0 jq -r 'select(.event | startswith("📄 Loaded")) | "\(.level) \(.tblxml)"' <<<"$stderr"
	assert_output - <<-EOF
		warning 1
		info 0
	EOF
	run -0 counts
	assert_output "1000 $want 0 0"
}

@test "a record without an id is rejected: exit 1, the others loaded" {
	printf '<labels><label><id>5</id><name>Svek</name></label><label><name>no id</name></label></labels>\n' \
		>"$BATS_TEST_TMPDIR/labels.xml"
	run -1 --separate-stderr load-dump "$BATS_TEST_TMPDIR/labels.xml"
	assert_equal "2 1 0 0 1" "$(summary labels)"
	assert_contains "$(events warning)" "❌ Message rejected"
	run -0 psqlq -c "SELECT id, name FROM labels"
	assert_output "5|Svek"
}

@test "the type comes from the root element, past a declaration, comments and a DOCTYPE; --type for any other root" {
	{
		printf '<?xml version="1.0" encoding="UTF-8"?>\n<!-- <artists> -->\n<!DOCTYPE masters>\n'
		zcat "$XML/discogs_20200806_masters.xml.gz"
	} | gzip >"$BATS_TEST_TMPDIR/dump.gz"
	zcat "$XML/discogs_20200806_labels.xml.gz" | sed 's/<labels>/<export>/; s/<\/labels>/<\/export>/' \
		>"$BATS_TEST_TMPDIR/export.xml"

	run -1 --separate-stderr load-dump "$BATS_TEST_TMPDIR/dump.gz" "$BATS_TEST_TMPDIR/export.xml" /nonexistent.xml
	assert_equal "1000 1000 0 0 0" "$(summary masters)"
	run -0 events error
	assert_output - <<-EOF
		❌ $BATS_TEST_TMPDIR/export.xml: root element <export> is not artists, labels, masters or releases (use --type)
		❌ /nonexistent.xml: no such file
	EOF

	run -0 --separate-stderr load-dump --type labels "$BATS_TEST_TMPDIR/export.xml"
	assert_equal "1000 1000 0 0 0" "$(summary labels)"
	run -0 counts
	assert_output "0 1000 1000 0"
}

@test "standard input ('-') needs --type" {
	run -1 --separate-stderr load-dump - <"$XML/lukasaron_labels.xml"
	assert_equal "❌ standard input: give its type with --type" "$(events error)"
	run -0 --separate-stderr load-dump --type labels - <"$XML/lukasaron_labels.xml"
	n=$(psqlq -c "SELECT count(*) FROM labels")
	((n > 0))
	assert_equal "$n $n 0 0 0" "$(summary labels)"
}

@test "--size sets the records per transaction" {
	run -0 --separate-stderr load-dump --size 300 "$XML/discogs_20200806_labels.xml.gz"
	run -0 psqlq -c "SELECT count(DISTINCT xmin::text) FROM labels"
	assert_output 4
}

@test "progress off a terminal: a JSON line every --progress seconds with records and MB/s; none with -q or --progress 0" {
	many_releases 6 "$BATS_TEST_TMPDIR/releases.xml.gz"
	run -0 --separate-stderr load-dump --progress 0.3 "$BATS_TEST_TMPDIR/releases.xml.gz"
	stderr_is_json
	assert_equal "6000 6000 0 0 0" "$(summary releases)"
	run -0 jq -r 'select(.event == "⏳ Loading") | [.type, (.records | type), .mb_total,
		(.mb_read <= .mb_total), (.mb_per_s > 0), (.percent <= 100)] | map(tostring) | join(" ")' <<<"$stderr"
	((${#lines[@]} >= 1))
	size=$(stat -c %s "$BATS_TEST_TMPDIR/releases.xml.gz")
	assert_equal "releases number $(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') true true true" "${lines[0]}"
	# The records grow.
	run -0 jq -s '[.[] | select(.event == "⏳ Loading") | .records] | . == sort and .[-1] > 0' <<<"$stderr"
	assert_output true

	for quiet in -q "--progress 0"; do
		# shellcheck disable=SC2086
		run -0 --separate-stderr load-dump $quiet "$BATS_TEST_TMPDIR/releases.xml.gz"
		run -1 grep -F '⏳' <<<"$stderr"
	done
}

@test "progress on a terminal: one line updated in place, then a line per file; warnings still JSON" {
	many_releases 4 "$BATS_TEST_TMPDIR/releases.xml.gz"
	printf '<labels><label><name>no id</name></label></labels>\n' >"$BATS_TEST_TMPDIR/labels.xml"
	# script(1) gives the command a terminal; its output is the terminal's.
	run -0 script -qfec "load-dump $BATS_TEST_TMPDIR/releases.xml.gz $BATS_TEST_TMPDIR/labels.xml; echo status=\$?" /dev/null
	out=$(tr -d '\r' <<<"$output")
	assert_contains "$output" $'\r\e[K⏳ releases releases.xml.gz: '
	assert_contains "$out" "✅ releases releases.xml.gz: 4000 records, 4000 inserted, 0 updated, 0 unchanged, 0 rejected, "
	assert_contains "$out" "⚠️ labels labels.xml: 1 records, 0 inserted, 0 updated, 0 unchanged, 1 rejected, "
	assert_contains "$out" '"event":"❌ Message rejected"'
	assert_contains "$out" "status=1"
	# No INFO log lines: the progress and the table say it.
	run -1 grep -F '"level":"info"' <<<"$out"
	grep -Eq '^releases +1 +4000 +4000 +0 +0 +0 ' <<<"$out" || flunk "no summary row in: $out"
}

@test "PostgreSQL unavailable or refusing: tblload's status, the remaining files not loaded" {
	port=$(tbl_free_port)
	run -75 --separate-stderr env POSTGRES_ADDRESS=127.0.0.1:$port TBLLOAD_RETRY_MAX=1 \
		load-dump "$XML"/discogs_20200806_{artists,labels}.xml.gz
	assert_contains "$(events error)" "❌ tblload exited 75 on $XML/discogs_20200806_artists.xml.gz: not loading the remaining files"
	run -0 jq -r 'select(.event | startswith("📄 Loaded")) | .file' <<<"$stderr"
	assert_output "$XML/discogs_20200806_artists.xml.gz"

	run -78 --separate-stderr env POSTGRES_PASSWORD=wrong load-dump "$XML"/discogs_20200806_{artists,labels}.xml.gz
	assert_contains "$(events error)" 'password authentication failed for user "tbl"'
	assert_contains "$(events error)" "❌ tblload exited 78 on"
	run -0 tables
	assert_output 0
}

@test "SIGTERM: the current batch is committed, then it stops with 143" {
	many_releases 20 "$BATS_TEST_TMPDIR/releases.xml.gz"
	load-dump "$BATS_TEST_TMPDIR/releases.xml.gz" "$XML/discogs_20200806_labels.xml.gz" \
		>"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	wait_until 60 eval '(($(psqlq -c "SELECT count(*) FROM releases" 2>/dev/null || echo 0) > 0))'
	kill -TERM "$pid"
	rc=0
	wait "$pid" || rc=$?
	assert_equal 143 "$rc"
	stderr=$(<"$BATS_TEST_TMPDIR/err")
	n=$(psqlq -c "SELECT count(*) FROM releases")
	((n > 0 && n < 20000 && n % 1000 == 0))
	assert_contains "$(events warning)" "🛑 Interrupted: stopping after the current batch"
	assert_equal "$n $n 0 0 0" "$(summary releases)"
	assert_equal "" "$(summary labels)"
	run -0 counts
	assert_output "0 0 0 $n"
}

@test "a missing tool: 69" {
	mkdir "$BATS_TEST_TMPDIR/bin"
	cp -r "$TBL_ROOT/scripts/load-dump" "$TBL_ROOT/scripts/lib" "$BATS_TEST_TMPDIR/bin"
	run -69 --separate-stderr env -u TBL_BINDIR PATH=/usr/bin:/bin "$BATS_TEST_TMPDIR/bin/load-dump" x.xml
	assert_equal "tblxml: not found on PATH" "$(events error)"
}

@test "the man page renders without warnings and documents every option" {
	command -v groff >/dev/null || skip "groff is not installed"
	run -0 --separate-stderr groff -mandoc -Tutf8 -ww "$TBL_ROOT/docs/man/load-dump.1"
	assert_equal "" "$stderr"
	text=$(sed 's/.\x08//g' <<<"$output")
	run -0 load-dump --help
	for opt in $(grep -o -- '--[a-z-]*' <<<"$output" | sort -u); do
		assert_contains "$text" "$opt"
	done
	assert_contains "$text" "EXIT STATUS"
}
