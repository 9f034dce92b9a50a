# Helpers of the replay-path suites (tblload.bats, e2e-replay.bats): the
# fixture envelopes, what docs/design.md#schema says the tables must hold for them
# (computed with jq from the bodies), and what the tables do hold.
# Load after helpers/common: `load helpers/replay`.

MSG=$FIXTURES/messages
TYPES=(artists labels masters releases)

# envelopes TYPE: the path of the fixture's 1000 envelopes of TYPE, made by
# tblhash once per suite.
envelopes() {
	local f=$BATS_FILE_TMPDIR/$1.env
	if [[ ! -s $f ]]; then
		zcat "$MSG/discogs_20200806_$1.ndjson.gz" | tblhash --type "$1" 2>/dev/null >"$f.tmp" &&
			mv "$f.tmp" "$f"
	fi
	echo "$f"
}

# frame: the envelope lines of stdin as one batch.
frame() {
	local lines
	lines=$(cat)
	printf '{"batch":"%s","n":%d}\n%s\n' "$(head -n 1 <<<"$lines" | jq -r .type)" \
		"$(wc -l <<<"$lines")" "$lines"
}

# tagged CONN [FIRST]: give the envelopes of stdin conn CONN and tags FIRST,
# FIRST+1, ... (default 1).
tagged() {
	awk -v c="$1" -v n="${2:-1}" '{ sub(/^\{"type":"[^"]*",/, "&\"conn\":\"" c "\",\"tag\":" n++ ","); print }'
}

# envl TYPE ID BODY [CONN TAG]: an envelope with BODY and the sha256 tblhash
# gives it (tblload takes both as they come).
envl() {
	local sha conn=
	sha=$(printf '%s' "$3" | sha256sum | cut -c1-64)
	(($# > 3)) && conn="\"conn\":\"$4\",\"tag\":$5,"
	printf '{"type":"%s",%s"id":%d,"sha256":"%s","body":%s}\n' "$1" "$conn" "$2" "$sha" "$3"
}

# body TYPE ID: the fixture body of one record (the wire body).
body() {
	zcat "$MSG/discogs_20200806_$1.ndjson.gz" | jq -c --arg id "$2" 'select(.id == $id)'
}

# The mapping of docs/design.md#schema, in jq: from a canonical body to the typed
# columns and link rows, as row_to_json prints them.
JQ_MAP='
def get(k): if type == "object" then .[k] else null end;
def txt: (if type == "object" then .["#text"] else . end) | if type == "string" then . else null end;
def texts: if type == "array" then map(txt | select(. != null)) | (if . == [] then null else . end)
	else (txt | if . == null then null else [.] end) end;
def int: txt as $t | if $t == null then (if type == "number" then . else null end)
	else ($t | try tonumber catch null) end;
def year: (txt // "") | if test("^[0-9]{4}([^0-9]|$)") then .[0:4] | tonumber else 0 end
	| if . == 0 then null else . end;
def jarr: if . == null then [] elif type == "array" then . else [.] end;
def objs: jarr | map(objects);
def row(t):
	(.id | tonumber) as $id |
	if t == "artists" then {id: $id, name: (.name | txt), real_name: (.realname | txt),
		profile: (.profile | txt), urls: (.urls | get("url") | texts),
		aliases: (.aliases | get("name") | texts)}
	elif t == "labels" then {id: $id, name: (.name | txt), profile: (.profile | txt),
		urls: (.urls | get("url") | texts), parent_label_id: (.parentLabel | get("@id") | int)}
	elif t == "masters" then {id: $id, title: (.title | txt), year: (.year | year),
		genres: (.genres | get("genre") | texts), styles: (.styles | get("style") | texts),
		main_release: (.main_release | int)}
	else {id: $id, title: (.title | txt),
		year: (if (.released | type) == "string" then .released else .year end | year),
		country: (.country | txt), genres: (.genres | get("genre") | texts),
		styles: (.styles | get("style") | texts), formats: (.formats | get("format") | jarr),
		tracklist: (.tracklist | get("track") | jarr),
		label_id: (.labels | get("label") | jarr | .[0] | get("@id") | int),
		master_id: (.master_id | int)}
	end;
def release_labels: (.id | tonumber) as $id |
	.labels | get("label") | objs[] | {release_id: $id, label_id: (get("@id") | int), catno: (get("@catno") | txt)};
def release_artists: (.id | tonumber) as $id |
	((.artists | get("artist") | objs | map(. + {extra: false})) +
	 (.extraartists | get("artist") | objs | map(. + {extra: true})))[] |
	{release_id: $id, artist_id: (.id | int), name: (.name | txt), anv: (.anv | txt),
	 join: (.join | txt), role: (.role | txt), extra};
'

# Columns of each table as docs/design.md#schema names them (without hash and data).
declare -gA COLS=(
	[artists]='id, name, real_name, profile, urls, aliases'
	[labels]='id, name, profile, urls, parent_label_id'
	[masters]='id, title, year, genres, styles, main_release'
	[releases]='id, title, year, country, genres, styles, formats, tracklist, label_id, master_id'
	[release_labels]='release_id, label_id, catno'
	[release_artists]='release_id, artist_id, name, anv, "join", role, extra'
)

# expected_rows TABLE < envelopes: the rows docs/design.md#schema asks for, one
# sorted-key JSON object a line, in id order (link rows: sorted as text, as
# the link tables keep no order of their own).
expected_rows() {
	local t=$1 f
	case $t in
	release_labels | release_artists) f=$t t=releases ;;
	*) f="row(\"$t\")" ;;
	esac
	jq -ncS --arg t "$t" "$JQ_MAP"'[inputs | select(.type == $t and has("id")) | .body] |
		sort_by(.id | tonumber) | .[] | '"$f" | if [[ $f == release_* ]]; then LC_ALL=C sort; else cat; fi
}

# stored_rows TABLE: what the table holds, in the same form.
stored_rows() {
	local order=id
	[[ $1 != release_* ]] || order=release_id
	psqlq -c "SELECT row_to_json(r) FROM (SELECT ${COLS[$1]} FROM $1 ORDER BY $order) r" |
		jq -cS . | if [[ $1 == release_* ]]; then LC_ALL=C sort; else cat; fi
}

# stored_data TYPE: the data column of every row, keys sorted, in id order.
stored_data() {
	psqlq -c "SELECT data FROM $1 ORDER BY id" | jq -cS .
}

# canonical_bodies TYPE < envelopes: the bodies tblhash wrote, keys sorted, in id order.
canonical_bodies() {
	jq -ncS --arg t "$1" '[inputs | select(.type == $t and has("id"))] | sort_by(.id) | .[].body'
}

# count TABLE [WHERE]: the number of rows.
count() {
	psqlq -c "SELECT count(*) FROM $1 ${2:+WHERE $2}"
}

# checksum: one line per table: its name, row count and an md5 of its rows
# (record tables by id and hash, link tables by their whole rows), so that two
# loads can be compared exactly.
checksum() {
	psqlq <<-'EOF'
		SELECT 'artists', count(*), md5(coalesce(string_agg(id || ':' || hash, ',' ORDER BY id), '')) FROM artists;
		SELECT 'labels', count(*), md5(coalesce(string_agg(id || ':' || hash, ',' ORDER BY id), '')) FROM labels;
		SELECT 'masters', count(*), md5(coalesce(string_agg(id || ':' || hash, ',' ORDER BY id), '')) FROM masters;
		SELECT 'releases', count(*), md5(coalesce(string_agg(id || ':' || hash, ',' ORDER BY id), '')) FROM releases;
		SELECT 'release_labels', count(*), md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM release_labels r;
		SELECT 'release_artists', count(*), md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM release_artists r;
	EOF
}

# versions TABLE: "id xmin" of every row (link tables: ctid and xmin), to
# show that nothing was written.
versions() {
	case $1 in
	release_*) psqlq -c "SELECT ctid, xmin FROM $1 ORDER BY ctid" ;;
	*) psqlq -c "SELECT id, xmin FROM $1 ORDER BY id" ;;
	esac
}

# batch_logs STDERR: the per-batch log lines of tblload, as "type size
# inserted updated unchanged rejected duplicates".
batch_logs() {
	jq -r 'select(.event == "✅ Batch committed") |
		"\(.type) \(.size) \(.inserted) \(.updated) \(.unchanged) \(.rejected) \(.duplicates)"' <<<"$1"
}

# final_log STDERR: tblload's last line ("Loading finished").
final_log() {
	jq -c 'select(.logger == "tableinator.tblload" and (.event | endswith("Loading finished")))' <<<"$1"
}

# where SELECT TEST [JQ ARGS...]: of the JSON lines on stdin (or the files
# among the ARGS), at least one matches SELECT and every one that does
# passes TEST.
where() {
	jq -se "${@:3}" "[.[] | select($1)] | length > 0 and all(.[]; $2)"
}
