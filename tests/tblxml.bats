#!/usr/bin/env bats
# tblxml: Discogs XML dumps to the Rust extractor's message bodies.
# Needs no server: only the binaries, gzip, jq and perl.

load helpers/common
bats_require_minimum_version 1.5.0

setup_file() { require_bin tblxml; }

XML="$BATS_TEST_DIRNAME/fixtures/xml"
MSG="$BATS_TEST_DIRNAME/fixtures/messages"

# Every line of $stderr is a JSON object.
stderr_is_json() {
	local l
	[ -z "$stderr" ] && return 0
	while IFS= read -r l; do
		jq -e 'type == "object"' <<<"$l" >/dev/null || {
			echo "not a JSON object on stderr: $l" >&2
			return 1
		}
	done <<<"$stderr"
}

# The event text of the error line(s) on stderr.
error_event() {
	jq -r 'select(.level == "error") | .event' <<<"$stderr"
}

# The message ids on stdout, one a line.
ids() {
	printf '%s\n' "${lines[@]}" | jq -r .id | tr '\n' ' '
}

# Count the <rec> elements at depth 2 of an XML file (plain or gzip) without
# expat: a small tokenizer that tracks nesting, so that records sharing a
# line and nested elements of the same name (sublabels) are counted right.
count_records() {
	zcat -f "$2" | perl -e '
		my $want = shift; local $/; my $x = <STDIN>; my ($d, $n) = (0, 0);
		$x =~ s/<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE[^>]*>//gs;
		while ($x =~ m{<(/?)([^\s/>]+)(?:[^>"\x27]|"[^"]*"|\x27[^\x27]*\x27)*?(/?)>}g) {
			if ($1) { $d--; next; }
			$d++;
			$n++ if $d == 2 && $2 eq $want;
			$d-- if $3;
		}
		print "$n\n";' "$1"
}

# Two good artists, then the text given (printf %b escapes), as a file.
two_then() {
	printf '<artists>\n<artist><id>1</id><name>One</name></artist>\n<artist><id>2</id><name>Two</name></artist>\n%b' "$2" >"$BATS_TEST_TMPDIR/$1"
	echo "$BATS_TEST_TMPDIR/$1"
}

# A malformed file: exit 1, expat's file:line:column and reason on stderr,
# and the two records before the fault on stdout.
check_malformed() {
	local f
	f=$(two_then "$1" "$2")
	run -1 --separate-stderr tblxml "$f"
	[ "$(ids)" = "1 2 " ]
	[ "${#lines[@]}" -eq 2 ]
	[[ "$(error_event)" == "❌ $f:$3: $4"* ]] || { echo "got: $(error_event)"; false; }
	stderr_is_json
}

# Convert XML given as text (printf %b escapes) and expect success.
convert() {
	printf '%b' "$1" >"$BATS_TEST_TMPDIR/in.xml"
	run -0 --separate-stderr tblxml "$BATS_TEST_TMPDIR/in.xml"
}

identical_to_reference() {
	run -0 --separate-stderr tblxml "$XML/discogs_20200806_$1.xml.gz"
	cmp <(printf '%s\n' "${lines[@]}") <(zcat "$MSG/discogs_20200806_$1.ndjson.gz")
	[ "$(jq -r .event <<<"${stderr_lines[-1]}")" = "✅ Conversion finished" ]
	[ "$(jq -r ".records_by_type.$1" <<<"${stderr_lines[-1]}")" = 1000 ]
	stderr_is_json
}

example() {
	run -0 --separate-stderr tblxml "$XML/examples/$1.xml"
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "$(cat "$XML/examples/$1.json")" ]
	# The sha256 is that of the record: the body without its first three members.
	local record
	record="{${lines[0]#*\"sha256\":\"*\",}"
	[ "$(printf '%s' "$record" | sha256sum | cut -d' ' -f1)" = \
	    "$(jq -r .sha256 <<<"${lines[0]}")" ]
}

# --- command line -----------------------------------------------------------

@test "--help prints the usage on stdout and exits 0" {
	run -0 --separate-stderr tblxml --help
	[[ "${lines[0]}" == "usage: tblxml "* ]]
	[ -z "$stderr" ]
}

@test "--version prints the version and exits 0" {
	run -0 --separate-stderr tblxml --version
	[[ "$output" =~ ^tblxml\ \(tableinator\)\ [0-9] ]]
}

@test "an unknown option exits 64 with a JSON error naming it" {
	run -64 --separate-stderr tblxml --no-such-option
	[ -z "$output" ]
	[[ "$(error_event)" == *"'--no-such-option'"* ]]
	stderr_is_json
	run -64 --separate-stderr tblxml -x
	[[ "$(error_event)" == *"'-x'"* ]]
	stderr_is_json
}

@test "a missing option argument exits 64" {
	run -64 --separate-stderr tblxml --type
	[[ "$(error_event)" == *"'--type' needs an argument"* ]]
	stderr_is_json
}

@test "--type and --max-record values are checked strictly (64)" {
	run -64 --separate-stderr tblxml --type artist "$XML/artist_problems.xml"
	[[ "$(error_event)" == *"unknown type 'artist'"* ]]
	[ -z "$output" ]
	run -64 --separate-stderr tblxml --max-record 12k "$XML/artist_problems.xml"
	[[ "$(error_event)" == *"--max-record"*"not a number"* ]]
	run -64 --separate-stderr tblxml --max-record 10 "$XML/artist_problems.xml"
	[[ "$(error_event)" == *"out of range"* ]]
	stderr_is_json
}

# --- exact output -----------------------------------------------------------

@test "artists 20200806: byte-identical to the reference bodies" {
	identical_to_reference artists
}

@test "labels 20200806: byte-identical to the reference bodies" {
	identical_to_reference labels
}

@test "masters 20200806: byte-identical to the reference bodies" {
	identical_to_reference masters
}

@test "releases 20200806: byte-identical to the reference bodies" {
	identical_to_reference releases
}

@test "record-shape example A1 (artist, members)" { example A1; }
@test "record-shape example A2 (artist, images, null profile)" { example A2; }
@test "record-shape example A3 (artist, id and name siblings)" { example A3; }
@test "record-shape example L1 (label, simple)" { example L1; }
@test "record-shape example L2 (label, &#13; kept as CR)" { example L2; }
@test "record-shape example M1 (master, simple)" { example M1; }
@test "record-shape example M2 (master, single children bare)" { example M2; }
@test "record-shape example R1 (release, simple)" { example R1; }
@test "record-shape example R2 (release, complex)" { example R2; }
@test "record-shape example R3" { example R3; }

@test "every sample dump converts, one body per record at depth 2" {
	local f type rec n
	for f in "$XML"/*.xml "$XML"/*.xml.gz; do
		case "$f" in
		*artist*) type=artists rec=artist ;;
		*label*) type=labels rec=label ;;
		*master*) type=masters rec=master ;;
		*release*) type=releases rec=release ;;
		esac
		n=$(count_records "$rec" "$f")
		[ "$n" -gt 0 ]
		run -0 --separate-stderr tblxml "$f"
		[ "${#lines[@]}" -eq "$n" ] || { echo "$f: $n records, ${#lines[@]} bodies"; false; }
		[ "$(jq -r ".records_by_type.$type" <<<"${stderr_lines[-1]}")" -eq "$n" ]
		# Every body is one compact JSON object of type data with a hash.
		printf '%s\n' "${lines[@]}" | jq -e -s 'all(.type == "data" and (.sha256 | test("^[0-9a-f]{64}$")))' >/dev/null
		stderr_is_json
	done
}

@test "a pretty-printed record gives the same body as its compact twin" {
	# The bare <release> file is not a dump: its root is not a known type.
	run -1 --separate-stderr tblxml "$XML/single-record/release_4497890.xml"
	[ -z "$output" ]
	[[ "$(error_event)" == *"release_4497890.xml:1:0: root element <release> is not artists, labels, masters or releases (use --type)" ]]
	stderr_is_json
	# Wrapped in <releases>, its indentation is trimmed away.
	run -0 bash -c "{ echo '<releases>'; cat '$XML/single-record/release_4497890.xml'; echo '</releases>'; } | tblxml 2>/dev/null"
	[ "$output" = "$(zcat "$MSG/discogs_20200806_releases.ndjson.gz" | grep '^{"type":"data","id":"4497890",')" ]
}

# --- inputs -----------------------------------------------------------------

@test "gzip and plain input give identical output, whatever the file name" {
	zcat "$XML/discogs_20200806_labels.xml.gz" >"$BATS_TEST_TMPDIR/labels.xml.gz"
	cp "$XML/discogs_20200806_labels.xml.gz" "$BATS_TEST_TMPDIR/labels.xml"
	run -0 --separate-stderr tblxml "$BATS_TEST_TMPDIR/labels.xml.gz"
	local plain="$output"
	run -0 --separate-stderr tblxml "$BATS_TEST_TMPDIR/labels.xml"
	[ "$output" = "$plain" ]
	[ "${#lines[@]}" -eq 1000 ]
	# Several gzip members read as one stream, as with zcat.
	zcat "$XML/discogs_20200806_labels.xml.gz" | split -b 100000 - "$BATS_TEST_TMPDIR/part."
	for p in "$BATS_TEST_TMPDIR"/part.*; do gzip -c "$p"; done >"$BATS_TEST_TMPDIR/multi.gz"
	run -0 --separate-stderr tblxml "$BATS_TEST_TMPDIR/multi.gz"
	[ "$output" = "$plain" ]
}

@test "standard input and a file argument give identical output" {
	run -0 --separate-stderr tblxml "$XML/tgmz_discogs_releases.xml.gz"
	local from_file="$output"
	run -0 bash -c "tblxml < '$XML/tgmz_discogs_releases.xml.gz' 2>/dev/null"
	[ "$output" = "$from_file" ]
	run -0 bash -c "zcat '$XML/tgmz_discogs_releases.xml.gz' | tblxml - 2>/dev/null"
	[ "$output" = "$from_file" ]
	[ "${#lines[@]}" -eq 11 ]
}

@test "several files: outputs in order, a bad one in the middle does not stop the rest" {
	run -1 --separate-stderr tblxml "$XML/lukasaron_labels.xml" "$BATS_TEST_TMPDIR/missing.xml" \
	    "$XML/tgmz_discogs_masters.xml.gz"
	[ "${#lines[@]}" -eq 9 ]
	[ "$(ids)" = "1 2 3 4 5 115 18080 240656 482870 " ]
	[[ "$(error_event)" == "❌ $BATS_TEST_TMPDIR/missing.xml: No such file or directory" ]]
	[ "$(jq -r .failed_files <<<"${stderr_lines[-1]}")" = 1 ]
	[ "$(jq -r .files <<<"${stderr_lines[-1]}")" = 3 ]
	stderr_is_json
}

@test "--type overrides the root element" {
	printf '<dump>\n<artist><id>7</id></artist><label><id>8</id></label>\n</dump>\n' >"$BATS_TEST_TMPDIR/d.xml"
	run -0 --separate-stderr tblxml --type artists "$BATS_TEST_TMPDIR/d.xml"
	[ "$(ids)" = "7 " ]
	run -0 --separate-stderr tblxml --type labels "$BATS_TEST_TMPDIR/d.xml"
	[ "$(ids)" = "8 " ]
	# On a real dump of another type it finds no records.
	run -0 --separate-stderr tblxml --type labels "$XML/lukasaron_artists.xml"
	[ -z "$output" ]
	[ "$(jq -r .skipped <<<"${stderr_lines[-1]}")" = 27 ]
}

@test "a root element that is not a known type is an error (exit 1)" {
	printf '<dump>\n<artist><id>7</id></artist>\n</dump>\n' >"$BATS_TEST_TMPDIR/d.xml"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/d.xml"
	[ -z "$output" ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/d.xml:1:0: root element <dump> is not artists, labels, masters or releases (use --type)" ]
	stderr_is_json
}

@test "an empty file is an error (exit 1): a document needs a root element" {
	: >"$BATS_TEST_TMPDIR/empty.xml"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/empty.xml"
	[ -z "$output" ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/empty.xml:1:0: no element found (the input has no root element: empty file?)" ]
	gzip -c </dev/null >"$BATS_TEST_TMPDIR/empty.xml.gz"
	run -1 --separate-stderr tblxml <"$BATS_TEST_TMPDIR/empty.xml.gz"
	[ "$(error_event)" = "❌ stdin:1:0: no element found (the input has no root element: empty file?)" ]
	stderr_is_json
}

# --- malformed input --------------------------------------------------------

@test "malformed: file truncated inside a tag" {
	check_malformed trunc.xml '<artist><id>3</id><na' 4:18 'unclosed token (the input ends inside the document: truncated file?)'
}

@test "malformed: file truncated between records" {
	check_malformed trunc2.xml '' 4:0 'no element found (the input ends inside the document: truncated file?)'
}

@test "malformed: truncated gzip file keeps every record before the cut" {
	head -c 300000 "$XML/discogs_20200806_releases.xml.gz" >"$BATS_TEST_TMPDIR/cut.xml.gz"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/cut.xml.gz"
	[ "${#lines[@]}" -gt 300 ]
	cmp <(printf '%s\n' "${lines[@]}") <(zcat "$MSG/discogs_20200806_releases.ndjson.gz" | head -n "${#lines[@]}")
	[[ "$(error_event)" =~ ^❌\ $BATS_TEST_TMPDIR/cut.xml.gz:[0-9]+:[0-9]+:\ gzip:\ unexpected\ end\ of\ compressed\ data ]]
	stderr_is_json
}

@test "malformed: corrupt gzip data" {
	{ head -c 1000 "$XML/discogs_20200806_releases.xml.gz"; printf 'garbage'; head -c 2000 /dev/zero; } >"$BATS_TEST_TMPDIR/bad.gz"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/bad.gz"
	[[ "$(error_event)" == "❌ $BATS_TEST_TMPDIR/bad.gz:"*": gzip: "* ]]
	stderr_is_json
}

@test "malformed: undefined entity" {
	check_malformed ent.xml '<artist><id>3</id><name>&nosuch;</name></artist>\n</artists>\n' 4:24 'undefined entity'
}

@test "malformed: entity skipped because of an external DTD is still an error" {
	printf '<!DOCTYPE artists SYSTEM "artists.dtd">\n<artists>\n<artist><id>1</id></artist>\n<artist><id>2&ext;</id></artist>\n</artists>\n' >"$BATS_TEST_TMPDIR/dtd.xml"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/dtd.xml"
	[ "$(ids)" = "1 " ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/dtd.xml:4:13: entity 'ext' is not defined (external DTDs are not read)" ]
}

@test "malformed: mismatched tag" {
	check_malformed mis.xml '<artist><id>3</id><name>x</nam></artist>\n</artists>\n' 4:27 'mismatched tag'
}

@test "malformed: binary garbage after records" {
	check_malformed bin.xml '\x00\xff\xfe\x01\x80garbage' 4:0 'not well-formed (invalid token)'
}

@test "malformed: a binary file" {
	printf '\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00' >"$BATS_TEST_TMPDIR/elf"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/elf"
	[ -z "$output" ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/elf:1:0: not well-formed (invalid token)" ]
}

@test "malformed: invalid UTF-8 (bad bytes, overlong form, surrogate)" {
	check_malformed utf1.xml '<artist><id>3</id><name>\xff\xfe</name></artist>\n</artists>\n' 4:24 'not well-formed (invalid token)'
	check_malformed utf2.xml '<artist><id>3</id><name>\xc0\xaf</name></artist>\n</artists>\n' 4:24 'not well-formed (invalid token)'
	check_malformed utf3.xml '<artist><id>3</id><name>\xed\xa0\x80</name></artist>\n</artists>\n' 4:24 'not well-formed (invalid token)'
}

@test "malformed: character references XML 1.0 forbids (&#1; &#xFFFE; &#xD800;)" {
	check_malformed ref1.xml '<artist><id>3</id><name>&#1;</name></artist>\n</artists>\n' 4:24 'reference to invalid character number'
	check_malformed ref2.xml '<artist><id>3</id><name>&#xFFFE;</name></artist>\n</artists>\n' 4:24 'reference to invalid character number'
	check_malformed ref3.xml '<artist><id>3</id><name>&#xD800;</name></artist>\n</artists>\n' 4:24 'reference to invalid character number'
}

@test "malformed: a raw control character (0x01)" {
	check_malformed raw.xml '<artist><id>3</id><name>\x01</name></artist>\n</artists>\n' 4:24 'not well-formed (invalid token)'
}

@test "malformed: standard input is named stdin in the message" {
	two_then in.xml '<artist><id>3</id><name>x</nam>' >/dev/null
	run -1 --separate-stderr tblxml <"$BATS_TEST_TMPDIR/in.xml"
	[ "$(ids)" = "1 2 " ]
	[ "$(error_event)" = "❌ stdin:4:27: mismatched tag" ]
}

@test "malformed: the records before the fault are written before it is reported" {
	f=$(two_then order.xml '<artist><id>3</id><name>x</nam>')
	run -1 bash -c "tblxml '$f' 2>&1"
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[0]}" == '{"type":"data","id":"1",'* ]]
	[[ "${lines[1]}" == '{"type":"data","id":"2",'* ]]
	[ "$(jq -r .event <<<"${lines[2]}")" = "❌ $f:4:27: mismatched tag" ]
	[ "$(jq -r .event <<<"${lines[3]}")" = "⚠️ Conversion finished" ]
}

@test "a record nested deeper than 1000 levels is refused" {
	{
		printf '<artists><artist><id>1</id></artist><artist>'
		for i in $(seq 1001); do printf '<a>'; done
	} >"$BATS_TEST_TMPDIR/deep.xml"
	run -1 --separate-stderr tblxml "$BATS_TEST_TMPDIR/deep.xml"
	[ "$(ids)" = "1 " ]
	[[ "$(error_event)" == *"deep.xml:1:"*": elements nested more than 1000 levels deep in a record" ]]
}

@test "--max-record refuses a longer record, after the shorter ones" {
	printf '<labels><label><id>1</id></label><label><id>2</id><profile>%s</profile></label></labels>' \
	    "$(head -c 3000 /dev/zero | tr '\0' x)" >"$BATS_TEST_TMPDIR/long.xml"
	run -1 --separate-stderr tblxml --max-record 2048 "$BATS_TEST_TMPDIR/long.xml"
	[ "$(ids)" = "1 " ]
	[[ "$(error_event)" == *"long.xml:1:"*": record longer than 2048 bytes (see --max-record)" ]]
	run -0 --separate-stderr tblxml --max-record 4096 "$BATS_TEST_TMPDIR/long.xml"
	[ "$(ids)" = "1 2 " ]
}

@test "--max-record counts a record's own start and end tags" {
	local x
	x=$(head -c 3000 /dev/zero | tr '\0' x)
	printf '<labels><label><id>1</id></label><label a="%s"/></labels>' "$x" >"$BATS_TEST_TMPDIR/start.xml"
	run -1 --separate-stderr tblxml --max-record 2048 "$BATS_TEST_TMPDIR/start.xml"
	[ "$(ids)" = "1 " ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/start.xml:1:33: record longer than 2048 bytes (see --max-record)" ]
	printf '<labels><label><id>1</id></label><label><id>2</id></label%s></labels>' "${x//x/ }" >"$BATS_TEST_TMPDIR/end.xml"
	run -1 --separate-stderr tblxml --max-record 2048 "$BATS_TEST_TMPDIR/end.xml"
	[ "$(ids)" = "1 " ]
	[ "$(error_event)" = "❌ $BATS_TEST_TMPDIR/end.xml:1:50: record longer than 2048 bytes (see --max-record)" ]
}

# --- hostile input: every limit ends in bounded time and memory ------------

# hostile SECONDS PERL [ARG...]: tblxml ARGs reading what the perl code
# prints (with PERL empty, a file among ARGs), stopped after SECONDS. The
# bodies go to a file, not to $output: where the limit under test is missing,
# one body can be hundreds of MB. Sets $status and $stderr as run does.
hostile() {
	local secs=$1 code=$2
	shift 2
	if [ -n "$code" ]; then
		run --separate-stderr with_timeout "$secs" bash -c 'perl -e "$1" | tblxml "${@:2}" >"$0"' "$BATS_TEST_TMPDIR/out" "$code" "$@"
	else
		run --separate-stderr with_timeout "$secs" bash -c 'tblxml "$@" >"$0"' "$BATS_TEST_TMPDIR/out" "$@"
	fi
}

# The message ids of the bodies hostile wrote, as ids gives them.
hostile_ids() {
	cut -c1-80 "$BATS_TEST_TMPDIR/out" | sed -n 's/^{"type":"data","id":"\([^"]*\)".*/\1/p' | tr '\n' ' '
}

# The peak resident memory in the summary line, in kB.
peak_kb() {
	jq -r 'select(.event | endswith("Conversion finished")) | .peak_rss_kb' <<<"$stderr"
}

# Perl that prints two good artists, then $1, then $2 times 1 MB of "x" (or
# of the character $4) and then $3.
two_then_mb() {
	printf 'print "<artists>\\n<artist><id>1</id></artist>\\n<artist><id>2</id></artist>\\n%s"; print "%s" x 1048576 for 1..%d; print "%s</artists>\\n";' "$1" "${4:-x}" "$2" "$3"
}

@test "a DOCTYPE with an internal subset is refused: no entity or default attribute expands a record" {
	local f="$BATS_TEST_TMPDIR/ent.xml.gz" d="$BATS_TEST_TMPDIR/d.xml" i decl
	# 8 KB of gzip: a chain of entities worth 700 MB in one reference, after
	# 8 MB of white space that keeps expat's own amplification limit (100
	# times the bytes read) from tripping.
	{
		printf '<?xml version="1.0"?>\n<!DOCTYPE artists [\n<!ENTITY e0 "%s">\n' "$(printf 'x%.0s' {1..100})"
		for i in 1 2 3 4 5 6; do
			printf '<!ENTITY e%d "%s">\n' "$i" "$(printf "&e$((i - 1));%.0s" {1..10})"
		done
		printf '<!ENTITY e7 "&e6;&e6;&e6;&e6;&e6;&e6;&e6;">\n]>\n<artists>\n'
		head -c 8000000 /dev/zero | tr '\0' ' '
		printf '<artist><id>1</id><profile>&e7;</profile></artist>\n</artists>\n'
	} | gzip -9 >"$f"
	hostile 20 '' --max-record 1048576 "$f"
	[ "$status" -eq 1 ]
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	[ "$(error_event)" = "❌ $f:2:18: DOCTYPE with an internal subset: entity and attribute declarations are not accepted" ]
	[ "$(peak_kb)" -lt 65536 ]
	stderr_is_json
	# Attribute defaults, a parameter entity, an empty subset: refused alike.
	for decl in '<!ATTLIST artist a CDATA "default">' "<!ENTITY % p '<!ENTITY e \"x\">'>%p;" ''; do
		printf '<!DOCTYPE artists [%s]>\n<artists>\n<artist><id>1</id><name>&e;</name></artist>\n</artists>\n' "$decl" >"$d"
		run -1 --separate-stderr tblxml "$d"
		[ -z "$output" ]
		[ "$(error_event)" = "❌ $d:1:18: DOCTYPE with an internal subset: entity and attribute declarations are not accepted" ]
	done
	# A DOCTYPE naming an external DTD only is read as before.
	printf '<!DOCTYPE artists SYSTEM "artists.dtd">\n<artists>\n<artist><id>1</id></artist>\n</artists>\n' >"$d"
	run -0 --separate-stderr tblxml "$d"
	[ "$(ids)" = "1 " ]
}

@test "a token longer than --max-record is refused where it starts, whatever its kind" {
	local kind pre post fill at
	# Each document is well-formed but for the reference, so that without
	# the limit each would be converted.
	while IFS='|' read -r kind pre post fill at; do
		hostile 20 "$(two_then_mb "$pre" 2 "$post" "$fill")" --max-record 1048576
		[ "$status" -eq 1 ] || { echo "$kind: exit $status"; false; }
		[ "$(hostile_ids)" = "1 2 " ] || { echo "$kind: $(hostile_ids)"; false; }
		[ "$(error_event)" = "❌ stdin:4:$at: $kind longer than 1048576 bytes (see --max-record)" ] ||
			{ echo "$kind: $(error_event)"; false; }
		stderr_is_json
	done <<-'EOF'
		start tag|<artist a=\"|\"><id>3</id></artist>\n|x|0
		start tag|<artist><id>3</id><x a=\"|\"/></artist>\n|x|18
		start tag|<artist><|/></artist>\n|x|8
		end tag|<artist><id>3</id></artist|>\n| |18
		comment|<!--|-->\n|x|0
		processing instruction|<?pi |?>\n|x|0
		reference|<artist><id>3&|;</id></artist>\n|x|13
	EOF
	# Before the root element: a quoted string of the DOCTYPE.
	hostile 20 'print "<!DOCTYPE artists PUBLIC \""; print "x" x 1048576 for 1..2; print "\" \"a.dtd\">\n<artists/>\n"' --max-record 1048576
	[ "$status" -eq 1 ]
	[ "$(error_event)" = "❌ stdin:1:25: quoted string longer than 1048576 bytes (see --max-record)" ]
}

@test "a 200 MB attribute is refused in bounded time and memory (expat rescans an unfinished token)" {
	# expat 2.5 scans a token again with each buffer: fed 64 KB at a time
	# this took more than five minutes.
	hostile 20 "$(two_then_mb '<artist a=\"' 200 '\"/>')" --max-record 16777216
	[ "$status" -eq 1 ]
	[ "$(hostile_ids)" = "1 2 " ]
	[ "$(error_event)" = "❌ stdin:4:0: start tag longer than 16777216 bytes (see --max-record)" ]
	echo "peak RSS $(peak_kb) kB"
	[ "$(peak_kb)" -lt 131072 ]
}

@test "a token just under --max-record takes linear time, not quadratic" {
	local cpu
	# A 60 MB comment between records, accepted: about a second of CPU
	# (20 s when expat rescanned it with every 64 KB). CPU time, which the
	# load of other jobs does not change.
	TIMEFORMAT='%U %S'
	{ time hostile 60 "$(two_then_mb '<!--' 60 '-->\n')"; } 2>"$BATS_TEST_TMPDIR/cpu"
	cpu=$(cat "$BATS_TEST_TMPDIR/cpu")
	[ "$status" -eq 0 ]
	[ "$(hostile_ids)" = "1 2 " ]
	echo "CPU (user sys): $cpu"
	awk '{ exit !($1 + $2 < 8) }' <<<"$cpu"
}

@test "elements nested a million levels deep outside any record are refused" {
	hostile 20 'print "<artists>\n<artist><id>1</id></artist>\n<other>", "<x>" x 1000000, "</x>" x 1000000, "</other>\n</artists>\n"'
	[ "$status" -eq 1 ]
	[ "$(hostile_ids)" = "1 " ]
	[ "$(error_event)" = "❌ stdin:3:3004: elements nested more than 1000 levels deep below the root element" ]
	[ "$(peak_kb)" -lt 65536 ]
}

@test "a million attributes in one start tag are refused past --max-record" {
	local gen='print "<artists>\n<artist><id>1</id></artist>\n<artist"; print " a$_=\"\"" for 1..N; print "><id>2</id></artist>\n</artists>\n"'
	hostile 20 "${gen/N/1000000}" --max-record 1048576
	[ "$status" -eq 1 ]
	[ "$(hostile_ids)" = "1 " ]
	[ "$(error_event)" = "❌ stdin:3:0: start tag longer than 1048576 bytes (see --max-record)" ]
	# Within the limit, such a tag is a record.
	hostile 20 "${gen/N/50000}" --max-record 1048576
	[ "$status" -eq 0 ]
	[ "$(hostile_ids)" = "1 2 " ]
	[ "$(sed -n 2p "$BATS_TEST_TMPDIR/out" | jq -r '."@a50000"')" = "" ]
}

@test "the parser's memory is bounded: a million distinct element names are refused" {
	# expat keeps every name it has seen until the end of the document.
	hostile 20 'print "<artists>\n<artist><id>1</id></artist>\n<other>"; print "<n$_/>" for 1..1000000; print "</other>\n</artists>\n"' --max-record 1024
	[ "$status" -eq 1 ]
	[ "$(hostile_ids)" = "1 " ]
	[[ "$(error_event)" =~ ^❌\ stdin:3:[0-9]+:\ the\ XML\ parser\ needs\ more\ than\ 16781312\ bytes:\ too\ many\ distinct\ names,\ or\ attributes\ in\ a\ tag\ \(see\ --max-record\)$ ]] ||
		{ echo "got: $(error_event)"; false; }
	echo "peak RSS $(peak_kb) kB"
	[ "$(peak_kb)" -lt 65536 ]
}

@test "a gzip bomb of white space between records streams in bounded memory" {
	local f="$BATS_TEST_TMPDIR/ws.xml.gz" i
	# 100 gzip members of 1 MB of spaces each (and empty members between).
	head -c 1048576 /dev/zero | tr '\0' ' ' | gzip -9 >"$BATS_TEST_TMPDIR/mb.gz"
	gzip -c </dev/null >"$BATS_TEST_TMPDIR/empty.gz"
	{
		printf '<artists>\n<artist><id>1</id></artist>\n' | gzip
		for i in $(seq 100); do cat "$BATS_TEST_TMPDIR/mb.gz" "$BATS_TEST_TMPDIR/empty.gz"; done
		printf '<artist><id>2</id></artist>\n</artists>\n' | gzip
	} >"$f"
	hostile 30 '' "$f"
	[ "$status" -eq 0 ]
	[ "$(hostile_ids)" = "1 2 " ]
	[ "$(jq -r .xml_bytes <<<"${stderr_lines[-1]}")" -gt 104857600 ]
	echo "peak RSS $(peak_kb) kB"
	[ "$(peak_kb)" -lt 65536 ]
}

# --- conversion details -----------------------------------------------------

@test "entities, character references and CDATA are decoded, in text and attributes" {
	convert '<labels><label><id>1</id><name a="x &amp; &#233; &lt;&gt;">A &amp; B &#x263A; <![CDATA[<b>&amp;</b>]]></name></label></labels>'
	[[ "$output" == *'"name":{"#text":"A & B ☺ <b>&amp;</b>","@a":"x & é <>"}}' ]]
}

@test "line ends follow XML: literal CR LF and CR become LF, &#13; stays CR" {
	convert '<labels><label><id>1</id><profile>a\r\nb\rc&#13;\nd</profile></label></labels>'
	[[ "$output" == *'"profile":"a\nb\nc\r\nd"}' ]]
}

@test "text is trimmed of Unicode white space, inner white space kept" {
	# U+00A0, U+3000, U+2009 and tab/newline around; U+00A0 inside.
	convert '<labels><label><id>1</id><name>\xc2\xa0\xe3\x80\x80 \tA\xc2\xa0 B\xe2\x80\x89\n</name><profile>\xd0\x9a</profile></label></labels>'
	[[ "$output" == *$'"name":"A\xc2\xa0 B","profile":"\xd0\x9a"}' ]]
}

@test "empty elements are null, repeated children an array, text beside children dropped" {
	convert '<masters><master id="9"><a/><b></b><c> </c><d x=""/><l><i>1</i></l><m><i>1</i><i>2</i></m><t>dropped<i>1</i>dropped</t></master></masters>'
	[[ "$output" == *',"@id":"9","a":null,"b":null,"c":null,"d":{"@x":""},"id":"9","l":{"i":"1"},"m":{"i":["1","2"]},"t":{"i":"1"}}' ]]
}

@test "keys sort by bytes: #text < @attr < Upper < lower, and repeats stay in order" {
	convert '<labels><label><id>1</id><x b="1" a="2">t</x><Z>z</Z><_>u</_><y>1</y><w/><y>2</y></label></labels>'
	[[ "$output" == *'"sha256":"'*'","Z":"z","_":"u","id":"1","w":null,"x":{"#text":"t","@a":"2","@b":"1"},"y":["1","2"]}' ]]
}

@test "ids: @id first, then id; masters and releases get id from @id" {
	convert '<releases><release id="5"><title>t</title></release><release><id>6</id></release><release><title>none</title></release><release id="8"><id>9</id></release></releases>'
	[[ "${lines[0]}" == '{"type":"data","id":"5",'*'","@id":"5","id":"5","title":"t"}' ]]
	[[ "${lines[1]}" == '{"type":"data","id":"6",'*'","id":"6"}' ]]
	[[ "${lines[2]}" == '{"type":"data","id":"unknown",'*'","title":"none"}' ]]
	[[ "${lines[3]}" == '{"type":"data","id":"8",'*'","@id":"8","id":"9"}' ]]
	# Artists and labels get no id added.
	convert '<artists><artist id="3"><name>n</name></artist></artists>'
	[[ "$output" == '{"type":"data","id":"3",'*'","@id":"3","name":"n"}' ]]
}

@test "self-closing records follow the extractor: id looked up by id only, none added" {
	convert '<releases><release id="5"/><release id="6"></release><release/><other/></releases>'
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == '{"type":"data","id":"unknown",'*'","@id":"5"}' ]]
	[[ "${lines[1]}" == '{"type":"data","id":"6",'*'","@id":"6","id":"6"}' ]]
	# <release/> converts to null and <other/> is not a record: both skipped.
	[ "$(jq -r .skipped <<<"${stderr_lines[-1]}")" = 2 ]
}

@test "--file-complete writes the extractor's control body after each good file" {
	run -1 --separate-stderr tblxml --file-complete "$XML/tgmz_discogs_masters.xml.gz" \
	    "$XML/single-record/release_4497890.xml" "$XML/lukasaron_labels.xml"
	[ "${#lines[@]}" -eq 11 ]
	[[ "${lines[4]}" =~ ^\{\"type\":\"file_complete\",\"data_type\":\"masters\",\"timestamp\":\"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{3}|\.[0-9]{6}|\.[0-9]{9})?Z\",\"total_processed\":4,\"file\":\"tgmz_discogs_masters.xml.gz\"\}$ ]]
	# None for the file that failed; the next one gets its own.
	[[ "${lines[10]}" == '{"type":"file_complete","data_type":"labels",'*',"total_processed":5,"file":"lukasaron_labels.xml"}' ]]
	jq -e -s 'map(select(.type == "file_complete")) | length == 2' <<<"$output" >/dev/null
}

@test "no file_complete after a malformed file" {
	f=$(two_then fc.xml '<artist>')
	run -1 --separate-stderr tblxml --file-complete "$f"
	[ "${#lines[@]}" -eq 2 ]
	[[ "$output" != *file_complete* ]]
}

# --- output and resources ---------------------------------------------------

@test "a closed output pipe is an error naming stdout (exit 75)" {
	run -0 bash -c "{ tblxml '$XML/discogs_20200806_releases.xml.gz' 2>'$BATS_TEST_TMPDIR/err'; echo \$? >'$BATS_TEST_TMPDIR/rc'; } | head -c 100 >/dev/null"
	[ "$(cat "$BATS_TEST_TMPDIR/rc")" = 75 ]
	stderr=$(cat "$BATS_TEST_TMPDIR/err")
	[[ "$(error_event)" == "stdout: Broken pipe" ]]
	stderr_is_json
}

@test "a full disk on stdout is an error naming stdout (exit 75)" {
	[ -w /dev/full ] || skip "no /dev/full"
	run -75 --separate-stderr bash -c "tblxml '$XML/lukasaron_labels.xml' >/dev/full"
	[ "$(error_event)" = "stdout: No space left on device" ]
	stderr_is_json
}

@test "the summary log line counts records, bytes, speed and peak memory" {
	run -0 --separate-stderr tblxml "$XML/discogs_20200806_artists.xml.gz" "$XML/lukasaron_labels.xml"
	local s="${stderr_lines[-1]}"
	jq -e '.level == "info" and .logger == "tableinator.tblxml" and .records == 1005
	    and .records_by_type == {"artists":1000,"labels":5,"masters":0,"releases":0}
	    and .bytes_read == (73294 + 4644) and .xml_bytes > 300000
	    and (.mb_per_s | type) == "number" and .peak_rss_kb > 0' <<<"$s" >/dev/null
	stderr_is_json
}

@test "memory is bounded by the largest record, not by the file" {
	local body="$BATS_TEST_TMPDIR/body.xml"
	# Under AddressSanitizer freed memory is held in quarantine: turn it off.
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"
	zcat "$XML/discogs_20200806_releases.xml.gz" | sed '1d;$d' >"$body"
	run -0 --separate-stderr bash -c "{ echo '<releases>'; cat '$body'; echo '</releases>'; } | tblxml >/dev/null"
	local small
	small=$(jq -r .peak_rss_kb <<<"${stderr_lines[-1]}")
	# 30 times the data, 135 MB of XML through one root element.
	run -0 --separate-stderr bash -c "{ echo '<releases>'; for i in \$(seq 30); do cat '$body'; done; echo '</releases>'; } | tblxml >/dev/null"
	[ "$(jq -r .records <<<"${stderr_lines[-1]}")" -eq 30000 ]
	local big
	big=$(jq -r .peak_rss_kb <<<"${stderr_lines[-1]}")
	echo "peak RSS: 1x $small kB, 30x $big kB"
	[ "$big" -lt $((small + 4096)) ]
}

@test "the man page renders without warnings and documents every option" {
	command -v groff >/dev/null || skip "groff is not installed"
	local page="$BATS_TEST_DIRNAME/../docs/man/tblxml.1" text opt
	run -0 --separate-stderr groff -mandoc -Tutf8 -ww "$page"
	[ -z "$stderr" ]
	text=$(printf '%s\n' "${lines[@]}" | sed 's/.\x08//g')
	run -0 --separate-stderr tblxml --help
	for opt in $(grep -o -- '--[a-z-]*' <<<"$output"); do
		[[ "$text" == *"$opt"* ]] || { echo "$opt is not in the man page"; false; }
	done
	[[ "$text" == *"EXIT STATUS"* && "$text" == *"DIFFERENCES FROM THE RUST EXTRACTOR"* ]]
}
