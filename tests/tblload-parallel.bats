#!/usr/bin/env bats
# tblload over several connections (--jobs): the versions of an id are
# committed in the order they came, whichever connection holds them; each
# delivery is settled once, after the commit that holds it, and a control
# message only after every record before it; bisection on each connection
# rejects only the bad rows; SIGTERM finishes what is in flight; waiting
# batches are merged into one transaction, a trickle is not (issue 11).
# needs: postgres

load helpers/common
load helpers/replay
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin tblload tblbatch tblhash
}

setup() {
	pg_newdb
	T=$BATS_TEST_TMPDIR
	HOLD_PID= FEED=
}

teardown() {
	[[ -z ${HOLD_PID-} ]] || kill "$HOLD_PID" 2>/dev/null || true
	[[ -z ${LOADER-} ]] || kill -9 "$LOADER" 2>/dev/null || true
}

# envls TYPE [CONN]: envelopes as envl writes them (tagged 1, 2, ... with
# CONN), one for each "ID BODY" line of stdin, quickly.
envls() {
	perl -MDigest::SHA=sha256_hex -ne '
		BEGIN { ($t, $c) = @ARGV; @ARGV = (); $n = 0 }
		chomp;
		my ($id, $body) = split / /, $_, 2;
		$n++;
		my $tag = $c ne "" ? qq("conn":"$c","tag":$n,) : "";
		printf qq({"type":"%s",%s"id":%d,"sha256":"%s","body":%s}\n), $t, $tag, $id, sha256_hex($body), $body;
	' "$1" "${2-}"
}

# frame_sizes SIZES TYPE < envelopes: the envelopes as batches of TYPE, of
# the sizes in file SIZES (one a line).
frame_sizes() {
	awk -v t="$2" 'NR == FNR { size[++nb] = $1; next }
		left == 0 { left = size[++b]; printf "{\"batch\":\"%s\",\"n\":%d}\n", t, left }
		{ print; left-- }' "$1" -
}

# hold ID...: another session inserts labels with these ids and keeps its
# transaction open, so that tblload, storing them, waits on it (until
# release).
hold() {
	local id
	# (Not holding tblload's input open: its end must reach tblload.)
	coproc HOLD {
		[[ -z ${FEED-} ]] || exec {FEED}>&-
		exec psql -XAtq -v ON_ERROR_STOP=1 -d "$POSTGRES_DATABASE"
	}
	{
		echo "BEGIN;"
		for id; do
			echo "INSERT INTO labels (id, name, hash, data) VALUES ($id, 'held', 'held$id', '{}');"
		done
		echo "SELECT 'in';"
	} >&"${HOLD[1]}"
	read -r -t 10 line <&"${HOLD[0]}"
	[[ $line == in ]]
}

# release: the holding session rolls back (tblload's rows go in).
release() {
	echo "ROLLBACK;" >&"${HOLD[1]}"
}

# start_loader OPTIONS...: tblload in the background ($LOADER), reading
# $T/fifo (written through fd $FEED), its log in $T/err; returns once it is
# connected (its schema is applied before anything is held).
start_loader() {
	mkfifo "$T/fifo"
	tblload "$@" <"$T/fifo" 2>"$T/err" 3>&- &
	LOADER=$!
	exec {FEED}>"$T/fifo"
	wait_until 10 grep -q 'schema ready' "$T/err"
}

# waiting_loaders N: N tblload sessions wait for a lock.
waiting_loaders() {
	[[ $(psqlq -c "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND application_name = 'tblload' AND wait_event_type = 'Lock'") == "$1" ]]
}

# acked_tags FILE: the tags of the settle lines in FILE, as "op tag", sorted by tag.
acked_tags() {
	jq -r '"\(.op) \(.tag)"' "$1" | sort -k2n | paste -sd' '
}

# has_tags FILE TAG...: FILE settles at least these tags.
has_tags() {
	local f=$1 t
	shift
	[[ -s $f ]] || return 1
	for t; do
		jq -s -e --argjson t "$t" 'any(.[]; .tag == $t)' "$f" >/dev/null || return 1
	done
}

@test "an id changed in many batches over four connections: every version is written in the order it came, the last one stays" {
	# Two sets of ten ids (1-10, 11-20). Each round has, for each set, a
	# big batch (the set, and 150 new ids) then a small one (the set again,
	# newer; its first id twice, the earlier copy never to be stored). The
	# small batch would overtake the big one on another connection (its
	# upsert comes before the big batch's COPY is done): only the order of
	# conflicting batches keeps the versions in order.
	local rounds=8
	perl -e '
		my ($rounds, $sizes) = @ARGV;
		open(my $sz, ">", $sizes) or die;
		my ($b, $next) = (0, 1000);
		for my $r (1 .. $rounds) {
			for my $set (0, 1) {
				my @ids = map { $set * 10 + $_ } 1 .. 10;
				$b++;
				my @l = map { qq({"id":"$_","name":"set","v":$b}) } @ids;
				push @l, map { my $i = $next++; qq({"id":"$i","name":"new","v":$b}) } 1 .. 150;
				print "$_\n" for @l;
				print $sz scalar(@l), "\n";
				$b++;
				@l = (qq({"id":"$ids[0]","name":"set","v":-1}), map { qq({"id":"$_","name":"set","v":$b}) } @ids);
				print "$_\n" for @l;
				print $sz scalar(@l), "\n";
			}
		}' "$rounds" "$T/sizes" >"$T/bodies"
	tblhash --type labels <"$T/bodies" 2>/dev/null | tagged c1 | frame_sizes "$T/sizes" labels >"$T/in"
	run -0 tblload </dev/null	# the schema
	# Every row version written, in the order written.
	psqlq <<-'EOF'
		CREATE TABLE hist (seq bigserial, id integer, v integer);
		CREATE FUNCTION hist() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN INSERT INTO hist (id, v) VALUES (NEW.id, (NEW.data->>'v')::integer); RETURN NEW; END $$;
		CREATE TRIGGER hist AFTER INSERT OR UPDATE ON labels FOR EACH ROW EXECUTE FUNCTION hist();
	EOF
	run -0 --separate-stderr tblload --jobs 4 --acks "$T/acks" <"$T/in"
	# The batches did go over several connections.
	(($(jq -s '[.[] | select(.event == "✅ Batch committed") | .job] | unique | length' <<<"$stderr") >= 2)) ||
		flunk "one connection only: $stderr"
	# Set 1-10: versions 1, 2 (round 1), 5, 6 (round 2), ...; set 11-20: 3, 4, 7, 8, ...
	local id want got
	for id in 1 7 10 11 20; do
		want=$(awk -v r="$rounds" -v o=$((id > 10 ? 2 : 0)) 'BEGIN {
			for (i = 0; i < r; i++) printf "%s%d %d", i ? " " : "", 4 * i + 1 + o, 4 * i + 2 + o }')
		got=$(psqlq -c "SELECT string_agg(v::text, ' ' ORDER BY seq) FROM hist WHERE id = $id")
		assert_equal "$want" "$got"
	done
	# The same for every id: the versions written only ever go up, and
	# the last is stored.
	assert_equal 0 "$(psqlq -c 'SELECT count(*) FROM (SELECT v < lag(v) OVER (PARTITION BY id ORDER BY seq) AS back FROM hist) h WHERE back')"
	assert_equal 0 "$(psqlq -c 'SELECT count(*) FROM hist WHERE v < 0')"
	assert_equal "$((rounds * 4))" "$(psqlq -c "SELECT min((data->>'v')::integer) FROM labels WHERE id BETWEEN 11 AND 20")"
	assert_equal "$((rounds * 4 - 2))" "$(psqlq -c "SELECT max((data->>'v')::integer) FROM labels WHERE id BETWEEN 1 AND 10")"
	assert_equal "$((20 + rounds * 2 * 150))" "$(count labels)"
	# Every delivery settled once, as an ack.
	local n
	n=$(grep -vc '^{"batch"' "$T/in")
	assert_equal "$n" "$(jq -r 'select(.op == "ack") | .tag' "$T/acks" | sort -u | wc -l)"
	assert_equal "$n" "$(wc -l <"$T/acks")"
}

@test "acks come after their commit; a control message waits for every record before it, on every connection" {
	start_loader --jobs 4 --acks "$T/acks"
	hold 3
	local ctl='{"type":"labels","conn":"c1","tag":4,"control":"file_complete","body":{"type":"file_complete"}}'
	{
		{ envl labels 1 '{"id":"1","name":"one"}' c1 1
		  envl labels 2 '{"id":"2","name":"two"}' c1 2
		  envl labels 3 '{"id":"3","name":"three"}' c1 3; } | frame
		frame <<<"$ctl"
		{ envl labels 10 '{"id":"10","name":"ten"}' c1 5
		  envl labels 11 '{"id":"11","name":"eleven"}' c1 6; } | frame
		# The same id in another table is another record: it goes on.
		envl artists 3 '{"id":"3","name":"an artist"}' c1 7 | frame
	} >&$FEED
	exec {FEED}>&-
	wait_until 10 waiting_loaders 1
	# The batches after the blocked one are committed and settled; the
	# blocked one is neither, nor the control message after it.
	wait_until 10 has_tags "$T/acks" 5 6 7
	sleep 0.5
	assert_equal "ack 5 ack 6 ack 7" "$(acked_tags "$T/acks")"
	assert_equal "10 11" "$(psqlq -c 'SELECT id FROM labels WHERE id > 3 ORDER BY id' | xargs)"
	assert_equal 1 "$(count artists)"
	release
	local rc=0
	wait "$LOADER" || rc=$?
	LOADER=
	assert_equal 0 "$rc"
	assert_equal "ack 1 ack 2 ack 3 ack 4 ack 5 ack 6 ack 7" "$(acked_tags "$T/acks")"
	# In the file, the control message comes after the records before it.
	assert_equal 4 "$(jq -r .tag "$T/acks" | sed -n 7p)"
	assert_equal "1 2 3 10 11" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	assert_equal "three" "$(psqlq -c 'SELECT name FROM labels WHERE id = 3')"
}

@test "bisection on each connection rejects only the refused rows; every delivery is settled once" {
	local b
	# Eight batches of 40; one row in each PostgreSQL refuses (a lone
	# surrogate), at another place in each.
	awk 'BEGIN { for (b = 0; b < 8; b++) for (i = 1; i <= 40; i++) {
		id = b * 100 + i
		printf "%d {\"id\":\"%d\",\"name\":\"%s\"}\n", id, id, i == 5 * b + 3 ? "bad\\ud800" : "n" id
	} }' | envls labels c1 >"$T/env"
	for b in 0 1 2 3 4 5 6 7; do echo 40; done >"$T/sizes"
	frame_sizes "$T/sizes" labels <"$T/env" >"$T/in"
	run -1 --separate-stderr tblload --jobs 4 --acks "$T/acks" --rejects "$T/rejects" <"$T/in"
	assert_equal "$(for b in 0 1 2 3 4 5 6 7; do echo "labels 40 39 0 0 1 0"; done)" "$(batch_logs "$stderr" | sort)"
	assert_equal 312 "$(count labels)"
	# (The rejects file holds each body as it came: jq refuses the surrogate.)
	assert_equal "3 108 213 318 423 528 633 738" "$(grep -o '^{"type":"labels","id":[0-9]*' "$T/rejects" | cut -d: -f3 | sort -n | xargs)"
	assert_equal 0 "$(count labels "name LIKE 'bad%'")"
	assert_equal 320 "$(jq -r .tag "$T/acks" | sort -u | wc -l)"
	assert_equal 320 "$(wc -l <"$T/acks")"
	assert_equal "3 48 93 138 183 228 273 318" "$(jq -r 'select(.op == "reject") | .tag' "$T/acks" | sort -n | xargs)"
}

@test "SIGTERM with several connections busy: what is in flight is committed and settled, what waits is neither; exit 0" {
	start_loader --jobs 2 --merge 0 --acks "$T/acks"
	hold 3 13
	{
		{ envl labels 1 '{"id":"1","name":"a"}' c1 1; envl labels 3 '{"id":"3","name":"b"}' c1 2; } | frame
		{ envl labels 11 '{"id":"11","name":"c"}' c1 3; envl labels 13 '{"id":"13","name":"d"}' c1 4; } | frame
		{ envl labels 21 '{"id":"21","name":"e"}' c1 5; envl labels 22 '{"id":"22","name":"f"}' c1 6; } | frame
	} >&$FEED
	exec {FEED}>&-
	wait_until 10 waiting_loaders 2
	kill -TERM "$LOADER"
	sleep 1
	kill -0 "$LOADER" || flunk "tblload did not wait for its commits: $(cat "$T/err")"
	[[ ! -s $T/acks ]] || flunk "settled before the commit: $(cat "$T/acks")"
	release
	local rc=0
	with_timeout 10 tail --pid="$LOADER" -f /dev/null
	wait "$LOADER" || rc=$?
	LOADER=
	assert_equal 0 "$rc"
	assert_equal "ack 1 ack 2 ack 3 ack 4" "$(acked_tags "$T/acks")"
	assert_equal "1 3 11 13" "$(psqlq -c 'SELECT id FROM labels ORDER BY id' | xargs)"
	tail -n 1 "$T/err" | jq -e '.event == "🛑 Loading stopped" and .inserted == 4'
}

@test "a backlog of small batches is committed in fewer transactions; a trickle one by one, at once" {
	local i
	awk 'BEGIN { for (i = 0; i < 30; i++) for (k = 1; k <= 3; k++)
		printf "%d {\"id\":\"%d\",\"name\":\"n\"}\n", i * 10 + k, i * 10 + k }' | envls labels >"$T/env"
	for i in $(seq 30); do echo 3; done >"$T/sizes"
	frame_sizes "$T/sizes" labels <"$T/env" >"$T/in"
	run -0 --separate-stderr tblload --jobs 1 <"$T/in"
	assert_equal "$(for i in $(seq 30); do echo "labels 3 3 0 0 0 0"; done)" "$(batch_logs "$stderr")"
	where '.event == "✅ Batch committed" and has("merged")' '.merged > 1' <<<"$stderr"
	(($(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels') < 30))
	# Not with --merge 0.
	pg_newdb
	run -0 --separate-stderr tblload --jobs 1 --merge 0 <"$T/in"
	assert_equal 30 "$(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels')"
	# A trickle: each batch is committed (and acked) on its own, while the
	# input stays open.
	pg_newdb
	start_loader --acks "$T/acks"
	for i in 1 2 3; do
		envl labels "$i" "{\"id\":\"$i\",\"name\":\"t$i\"}" c1 "$i" | frame >&$FEED
		wait_until 5 has_tags "$T/acks" "$i"
	done
	exec {FEED}>&-
	wait "$LOADER"
	LOADER=
	assert_equal 3 "$(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels')"
	! grep -q '"merged"' "$T/err"
}

@test "the state file counts batches and rows of every connection" {
	export TBL_STATE_DIR=$T/state
	mkdir -m 0700 "$TBL_STATE_DIR"
	cat "$(envelopes labels)" "$(envelopes artists)" | tblbatch --size 50 2>/dev/null >"$T/in"
	run -0 --separate-stderr tblload --jobs 4 <"$T/in"
	jq -e '.state == "stopped" and .db_ok and .jobs == 4 and .batches == 40 and
		.rows.labels.inserted == 1000 and .rows.artists.inserted == 1000 and
		.batch_seconds.count == 40 and .last_error == null' "$TBL_STATE_DIR/tblload.json"
	assert_equal 1000 "$(count labels)"
}

@test "--jobs and TBLLOAD_JOBS: 1 to 64 or auto; anything else is refused" {
	envl labels 1 '{"id":"1","name":"x"}' | frame >"$T/in"
	export TBL_STATE_DIR=$T/state
	mkdir -m 0700 "$TBL_STATE_DIR"
	run -0 --separate-stderr tblload --jobs auto <"$T/in"
	assert_equal "$(nproc)" "$(jq .jobs "$TBL_STATE_DIR/tblload.json")"
	TBLLOAD_JOBS=3 run -0 --separate-stderr tblload <"$T/in"
	assert_equal 3 "$(jq .jobs "$TBL_STATE_DIR/tblload.json")"
	assert_contains "$stderr" '"jobs":3'
	# The option wins over the variable.
	TBLLOAD_JOBS=3 run -0 --separate-stderr tblload -j 1 <"$T/in"
	assert_equal 1 "$(jq .jobs "$TBL_STATE_DIR/tblload.json")"
	local v
	for v in 0 65 x 1.5 -2 ""; do
		run -64 --separate-stderr tblload --jobs "$v" </dev/null
		jq -e '.exit_status == 64 and (.event | startswith("option --jobs: ")) and
			(.event | endswith("(want auto or an integer from 1 to 64)"))' <<<"$stderr" >/dev/null ||
			flunk "--jobs '$v': $stderr"
	done
	TBLLOAD_JOBS=many run -78 --separate-stderr tblload </dev/null
	jq -e '.exit_status == 78 and (.event | startswith("TBLLOAD_JOBS: '\''many'\''"))' <<<"$stderr"
	run -64 --separate-stderr tblload --merge -1 </dev/null
	jq -e '.exit_status == 64 and (.event | startswith("option --merge: "))' <<<"$stderr"
}

@test "connections the server refuses leave the work to the others" {
	# A role allowed two sessions: two of the four connections are refused
	# ("too many connections", transient) and retried until the input ends.
	local role
	role=$(tbl_name r)
	# (Not a superuser: the limit does not hold for one.)
	psqlq -d postgres -c "CREATE ROLE $role LOGIN CONNECTION LIMIT 2 PASSWORD 'pw'"
	psqlq -d postgres -c "ALTER DATABASE $POSTGRES_DATABASE OWNER TO $role"
	awk 'BEGIN { for (i = 1; i <= 200; i++) printf "%d {\"id\":\"%d\",\"name\":\"n\"}\n", i, i }' |
		envls labels >"$T/env"
	for i in 1 2 3 4 5 6 7 8 9 10; do echo 20; done >"$T/sizes"
	frame_sizes "$T/sizes" labels <"$T/env" >"$T/in"
	POSTGRES_USERNAME=$role POSTGRES_PASSWORD=pw run -0 --separate-stderr \
		with_timeout 60 tblload --jobs 4 <"$T/in"
	assert_equal 200 "$(count labels)"
	assert_equal 10 "$(batch_logs "$stderr" | wc -l)"
	(($(grep -c "too many connections for role" <<<"$stderr") >= 2)) || flunk "$stderr"
	assert_equal 2 "$(jq -r 'select(.event | startswith("⚠️ Connection")) | .event' <<<"$stderr" | grep -c 'not made, going on without it')"
	assert_equal "" "$(jq -r 'select(.level == "error") | .event' <<<"$stderr")"
}
