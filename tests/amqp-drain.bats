#!/usr/bin/env bats
# amqp-drain: consumes the four quorum queues, writes one envelope per
# delivery, settles deliveries as tblload reports them through the ack FIFO
# (or once a capture file is fsync'ed), --check, file_complete and the idle
# exit, SIGTERM, a lost broker, heartbeats (docs/protocol.md,
# docs/design-notes.md, docs/design.md#pipeline, #delivery, #lifecycle).
# needs: rabbitmq postgres

load helpers/common
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload
	# Tests here restart the shared broker: one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
}

setup() {
	rmq_newvhost
	rmq_log_mark
	export POSTGRES_BATCH_FLUSH_INTERVAL=0.2 TBLLOAD_RETRY_MAX=60
	OUT=$BATS_TEST_TMPDIR/out
	ACKS=
}

teardown() {
	[[ -z $ACKS ]] || exec {ACKS}>&-
	[[ -z ${DRAIN-} ]] || kill -KILL "$DRAIN" 2>/dev/null || true
	pipeline_kill
	rmq_start_again
}

# drain_start [OPTION...]: amqp-drain --acks FIFO in the background ($DRAIN),
# envelopes to $OUT; settle lines are written to it on fd $ACKS (opened for
# reading and writing, so opening never waits and amqp-drain never sees the
# FIFO's end before the test closes it).
drain_start() {
	mkfifo "$BATS_TEST_TMPDIR/acks"
	amqp-drain --acks "$BATS_TEST_TMPDIR/acks" "$@" >"$OUT" 2>"$BATS_TEST_TMPDIR/amqp-drain.log" 3>&- &
	DRAIN=$!
	exec {ACKS}<>"$BATS_TEST_TMPDIR/acks"
	wait_until 10 grep -q '"event":"🐰 Consuming"' "$BATS_TEST_TMPDIR/amqp-drain.log"
}

# drain_to FILE [OPTION...]: amqp-drain with stdout to FILE (bats' run would
# make it a pipe), within 30 s.
drain_to() {
	local f=$1
	shift
	with_timeout 30 amqp-drain "$@" >"$f"
}

# publish_raw TYPE: stdin, byte for byte, as one message to the exchange
# with routing key TYPE (amqp-fill reads lines).
publish_raw() {
	amqp-publish --url "$AMQP_CONNECTION" -e discogsography-exchange -r "$1" -p
}

# drain_log_time EVENT: when amqp-drain logged EVENT first (epoch seconds).
drain_log_time() {
	jq -r --arg e "$1" 'select(.event == $e) | .timestamp | sub("\\.[0-9]+Z$"; "Z") | fromdate' \
		"$BATS_TEST_TMPDIR/amqp-drain.log" | head -n 1
}

# settle OP TAG [CONN [REASON]]: a settle line, as tblload writes it.
settle() {
	local conn=${3:-$(conn_id)}
	if [[ $1 == reject ]]; then
		printf '{"op":"reject","conn":"%s","tag":%s,"reason":"%s"}\n' "$conn" "$2" "${4:-poison}" >&"$ACKS"
	else
		printf '{"op":"ack","conn":"%s","tag":%s}\n' "$conn" "$2" >&"$ACKS"
	fi
}

# conn_id: the connection id amqp-drain put in its envelopes.
conn_id() {
	head -n 1 "$OUT" | jq -r .conn
}

# lines_are N: $OUT holds N lines.
lines_are() {
	[[ $(wc -l <"$OUT") -eq $1 ]]
}

# tags_of TYPE: the delivery tags of TYPE's envelopes in $OUT.
tags_of() {
	jq -r --arg t "$1" 'select(.type == $t) | .tag' "$OUT" | xargs
}

# gone PID: no such process any more (it may still wait to be reaped).
gone() {
	! kill -0 "$1" 2>/dev/null || [[ $(ps -o stat= -p "$1") == Z* ]]
}

# consumers: the queues of this vhost with a consumer, and its prefetch.
consumers() {
	rmqctl -q list_consumers -p "$RMQ_VHOST" --no-table-headers queue_name prefetch_count | sort
}

has_consumers() {
	[[ -n $(consumers) ]]
}

@test "--check prints the depths of the four queues as JSON: exit 0 when messages wait, 1 when none" {
	amqp-fill </dev/null 2>/dev/null
	run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":0,"labels":0,"masters":0,"releases":0,"total":0}'
	samples labels 3 | publish labels
	samples releases 2 | publish releases
	run -0 --separate-stderr amqp-drain --check
	assert_output '{"artists":0,"labels":3,"masters":0,"releases":2,"total":5}'
	# It only looks.
	assert_queues "0 3 0 2"
	assert_equal "" "$stderr"
}

@test "--check with the queues missing says null for each, exit 1, and declares nothing" {
	run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
	assert_equal 4 "$(grep -c '404 NOT_FOUND' <<<"$stderr")"
	run -0 rmqctl -q list_queues -p "$RMQ_VHOST" --no-table-headers name
	assert_output ""
}

# logins_are USER VHOST N: the broker logged USER in to VHOST N times since
# the mark.
logins_are() {
	[[ $(rmq_log_since | grep -caF "user '$1' authenticated and granted access to vhost '$2'") == "$3" ]]
}

@test "the vhost of AMQP_CONNECTION as the original reads it: none, /, /%2F and // are /; %2F is /" {
	local u pw=pw-$RANDOM base named slashed
	u=$(tbl_name u)
	rmqctl -q add_user "$u" "$pw" >/dev/null
	base="amqp://$u:$pw@127.0.0.1:$RMQ_PORT"
	named=$RMQ_VHOST
	slashed=$named/b
	rmqctl -q add_vhost "$slashed" >/dev/null
	for v in / "$named" "$slashed"; do
		rmqctl -q set_permissions -p "$v" "$u" '.*' '.*' '.*' >/dev/null
	done
	AMQP_CONNECTION="$base/$named" amqp-fill --type labels <<<'{"id":"1"}' 2>/dev/null
	AMQP_CONNECTION="$base/$named%2Fb" amqp-fill --type masters <<<'{"id":"2"}' 2>/dev/null
	RMQ_VHOST=$slashed assert_queues "0 0 1 0"
	assert_queues "0 1 0 0"
	rmq_log_mark
	for path in "" / /%2F // "?heartbeat=30" "/?heartbeat=30" "/$named" "/$named%2Fb" "/${named}%2fb"; do
		run --separate-stderr env AMQP_CONNECTION="$base$path" amqp-drain --check
		case $path in
		/$named) assert_equal 0 "$status" && assert_output '{"artists":0,"labels":1,"masters":0,"releases":0,"total":1}' ;;
		/$named%2[Ff]b) assert_equal 0 "$status" && assert_output '{"artists":0,"labels":0,"masters":1,"releases":0,"total":1}' ;;
		*) [[ $status == 0 || $status == 1 ]] || flunk "$path: exit $status: $stderr" ;;
		esac
	done
	# The broker says where each went: six times /, once the named vhost,
	# twice the one with a slash in its name.
	wait_until 15 logins_are "$u" / 6
	wait_until 5 logins_are "$u" "$named" 1
	wait_until 5 logins_are "$u" "$slashed" 2
	rmqctl -q delete_vhost "$slashed" >/dev/null
	rmqctl -q delete_user "$u" >/dev/null
}

@test "envelopes: type from the routing key, conn and tag, pretty bodies on one line, the rest as raw" {
	local bad='{"id":"10","bad":"'$'\xff\xfe''"'

	drain_start
	# One at a time, in this order: tags 1 to 6.
	printf '{"type":"data","id":"7","data_type":"labels","name":"rk wins"}' | publish_raw artists
	printf '{\r\n  "id": "8",\r\n  "name": "a\\r\\nb",\r\n  "list": [\n    1,\n    2\n  ]\r\n}\r\n' | publish_raw masters
	printf 'not json at all' | publish_raw labels
	printf '{"id":"9","name":"tab\there"}' | publish_raw releases
	printf '[1,2]' | publish_raw releases
	printf '%s' "$bad" | publish_raw labels
	wait_until 10 lines_are 6
	local c
	c=$(conn_id)
	[[ $c =~ ^[0-9a-f]{16}$ ]] || flunk "connection id '$c'"
	assert_equal "$(
		cat <<-EOF
			{"type":"artists","conn":"$c","tag":1,"body":{"type":"data","id":"7","data_type":"labels","name":"rk wins"}}
			{"type":"masters","conn":"$c","tag":2,"body":{    "id": "8",    "name": "a\\r\\nb",    "list": [     1,     2   ]  }  }
			{"type":"labels","conn":"$c","tag":3,"raw":"not json at all"}
			{"type":"releases","conn":"$c","tag":4,"raw":"{\\"id\\":\\"9\\",\\"name\\":\\"tab\\there\\"}"}
			{"type":"releases","conn":"$c","tag":5,"raw":"[1,2]"}
			{"type":"labels","conn":"$c","tag":6,"body":$bad}
		EOF
	)" "$(cat "$OUT")"
	# A body that starts with '{' and is broken otherwise is copied as it
	# is: its line is not JSON, but its header is, so tblhash marks it
	# invalid, for tblload to reject. Every other line is JSON.
	head -n 5 "$OUT" | jq -e . >/dev/null
	assert_equal '{"type":"labels","conn":"'"$c"'","tag":6,"invalid":"not JSON: invalid utf-8 string","raw":"{\"id\":\"10\",\"bad\":\"\ufffd\ufffd\""}' \
		"$(tail -n 1 "$OUT" | tblhash 2>/dev/null)"
	for t in 1 2 3 4 5 6; do settle ack "$t"; done
	kill -TERM "$DRAIN"
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	assert_queues "0 0 0 0"
	drain_summary | jq -e '.deliveries == 6 and .acked == 6 and .unsettled == 0' >/dev/null
}

@test "capture: --until-empty > file writes every message, acks after fsync and exits 0 with the queues empty" {
	publish_samples 100
	python_samples masters | head -n 10 | publish masters --pretty --crlf
	file_complete labels | publish labels
	run -0 --separate-stderr drain_to "$OUT" --until-empty --cancel-delay 0
	assert_queues "0 0 0 0"
	assert_equal 411 "$(wc -l <"$OUT")"
	# No connection and tag in a capture: nothing settles it later.
	assert_equal "100 101 110 100" "$(for t in "${TYPES[@]}"; do
		jq -r --arg t "$t" 'select(.type == $t and (has("conn") | not)) | .type' "$OUT" | wc -l
	done | xargs)"
	tail -n 1 <<<"$stderr" | jq -e '.deliveries == 411 and .acked == 411 and .unsettled == 0' >/dev/null
	# The capture replays into the same records as the bodies themselves.
	assert_equal "$(samples labels 100 | tblhash --type labels 2>/dev/null | jq -c '[.id, .sha256]' | sort)" \
		"$(tblhash <"$OUT" 2>/dev/null | jq -c 'select(.type == "labels" and .id) | [.id, .sha256]' | sort)"
	# Empty queues: an empty capture, at once.
	run -0 --separate-stderr drain_to "$OUT.2" --until-empty
	assert_equal 0 "$(wc -c <"$OUT.2")"
}

@test "capture: stdout must be a regular file without --acks (64); a full disk acks nothing (75)" {
	samples artists 50 | publish artists
	# bats' run makes stdout a pipe.
	run -64 --separate-stderr amqp-drain --until-empty
	assert_contains "$stderr" 'without --acks, stdout must be a regular file'
	run -64 --separate-stderr drain_to /dev/null --until-empty
	assert_queues "50 0 0 0"

	local mnt=$BATS_TEST_TMPDIR/small
	mkdir "$mnt"
	mount -t tmpfs -o size=16k tmpfs "$mnt" 2>/dev/null || skip "cannot mount a small tmpfs here"
	run -75 --separate-stderr drain_to "$mnt/capture" --until-empty
	umount "$mnt"
	assert_contains "$stderr" 'No space left on device'
	# Nothing was acked: after the connection closed, all 50 wait again.
	assert_queues "50 0 0 0"
}

@test "settle lines: ack removes, reject dead-letters once, another connection's or a settled tag is ignored" {
	samples labels 4 | publish labels
	drain_start --types labels
	wait_until 10 lines_are 4
	assert_equal "1 2 3 4" "$(tags_of labels)"
	settle ack 1
	settle reject 2 "$(conn_id)" "no id"
	settle ack 3 0123456789abcdef    # a line of an earlier connection
	wait_queues 10 "0 2 0 0" "0 1 0 0"
	# Settled twice (ack, ack again, reject after reject, ack after reject),
	# unknown, malformed: ignored, with a warning; the broker never sees them.
	settle ack 1
	settle reject 2
	settle ack 2
	settle ack 99
	echo '{"op":"nack","conn":"x","tag":1}' >&"$ACKS"
	settle ack 3
	settle ack 4
	wait_queues 10 "0 0 0 0" "0 1 0 0"
	kill -TERM "$DRAIN"
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	drain_summary | jq -e '.deliveries == 4 and .acked == 3 and .rejected == 1 and .unsettled == 0' >/dev/null
	run -0 grep -c 'Ack for unknown or settled tag\|Reject for unknown or settled tag' "$BATS_TEST_TMPDIR/amqp-drain.log"
	assert_output 4
	assert_contains "$(drain_log)" '"reason":"no id"'
	# The dead-lettered message is the second one, once.
	run -0 amqp-get --url "$AMQP_CONNECTION" -q "${QPREFIX}labels.dlq"
	assert_equal "$(samples labels 2 | tail -n 1)" "$output"
	assert_queues "0 0 0 0"
	assert_no_channel_error
}

@test "settle lines of an earlier amqp-drain never settle the tags of a later one" {
	samples artists 3 | publish artists
	drain_start --types artists
	wait_until 10 lines_are 3
	local old
	old=$(conn_id)
	kill -KILL "$DRAIN"
	wait_pid "$DRAIN" 5
	exec {ACKS}>&-
	# The broker gives the three again, to a new connection, as tags 1 to 3.
	rm -f "$BATS_TEST_TMPDIR/acks" "$OUT"
	drain_start --types artists
	wait_until 10 lines_are 3
	[[ $(conn_id) != "$old" ]]
	assert_equal "1 2 3" "$(tags_of artists)"
	for t in 1 2 3; do settle ack "$t" "$old"; done
	settle reject 1 "$old"
	sleep 1
	assert_equal "0	3" "$(qstat | grep -P "^${QPREFIX}artists\t" | cut -f2,3)"
	# Its own settle lines do.
	for t in 1 2 3; do settle ack "$t"; done
	wait_queues 10 "0 0 0 0"
	kill -TERM "$DRAIN"
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	drain_summary | jq -e '.deliveries == 3 and .redelivered == 3 and .acked == 3 and .rejected == 0' >/dev/null
	assert_no_channel_error
}

@test "SIGTERM with deliveries nobody settles: exit 0 after --drain-timeout; the broker has them again" {
	samples labels 3 | publish labels
	drain_start --drain-timeout 1.5
	wait_until 10 lines_are 3
	settle ack 2
	kill -TERM "$DRAIN"
	local t0=$EPOCHREALTIME
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	awk -v a="${t0/,/.}" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { d = b - a; exit !(d >= 1.4 && d < 3) }' ||
		flunk "amqp-drain ended $(awk -v a="${t0/,/.}" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { print b - a }') s after SIGTERM"
	drain_summary | jq -e '.deliveries == 3 and .acked == 1 and .unsettled == 2' >/dev/null
	assert_contains "$(drain_summary)" "Stopping with unsettled deliveries (the broker will redeliver them)"
	assert_queues "0 2 0 0"
	assert_equal 0 "$(connections)"
}

@test "acks settled out of order: a multiple ack never covers an open tag" {
	drain_start
	# Interleaved: artists and labels alternate on the channel.
	for i in 1 2 3; do
		samples artists "$i" | tail -n 1 | publish artists
		wait_until 10 lines_are $((2 * i - 1))
		samples labels "$i" | tail -n 1 | publish labels
		wait_until 10 lines_are $((2 * i))
	done
	local a=($(tags_of artists)) l=($(tags_of labels))
	assert_equal "1 3 5" "${a[*]}"
	assert_equal "2 4 6" "${l[*]}"
	# labels (later tags) settle before artists: only single acks can go out.
	settle ack 6
	settle ack 4
	settle ack 2
	settle ack 5
	wait_queues 10 "2 0 0 0"
	assert_equal "0	2" "$(qstat | grep -P "^${QPREFIX}artists\t" | cut -f2,3)"
	# 3 settles: still 1 open below it.
	settle ack 3
	wait_queues 10 "1 0 0 0"
	# 1 settles last: everything up to 6 is settled now.
	settle reject 1
	wait_queues 10 "0 0 0 0" "1 0 0 0"
	kill -TERM "$DRAIN"
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	drain_summary | jq -e '.acked == 5 and .rejected == 1 and .unsettled == 0' >/dev/null
	assert_no_channel_error
}

@test "prefetch: twice POSTGRES_BATCH_SIZE per consumer, 200 to 2000, or --prefetch" {
	for case in ":200" "50:200" "500:1000" "5000:2000"; do
		size=${case%%:*} want=${case#*:}
		ACKS=
		rm -f "$BATS_TEST_TMPDIR/acks"
		export POSTGRES_BATCH_SIZE=$size
		drain_start --types artists,releases
		wait_until 10 has_consumers
		assert_equal "$(printf '%s\t%s\n' "${QPREFIX}artists" "$want" "${QPREFIX}releases" "$want")" "$(consumers)"
		kill -TERM "$DRAIN"
		wait_pid "$DRAIN" 10
		assert_equal 0 "$rc"
		exec {ACKS}>&-
	done
	ACKS=
	rm -f "$BATS_TEST_TMPDIR/acks"
	drain_start --prefetch 7 --types masters
	wait_until 10 has_consumers
	assert_equal "${QPREFIX}masters	7" "$(consumers)"
}

@test "file_complete: settled like a record, that consumer cancelled after --cancel-delay, idle exit 0 when none is left" {
	samples labels 2 | publish labels
	file_complete labels | publish labels
	drain_start --cancel-delay 2
	wait_until 10 lines_are 3
	# The control message travels with its tag: tblload settles it after the
	# records before it are committed, or a pipeline that died in between
	# would never see that file complete again.
	assert_equal '{"type":"labels","conn":"'"$(conn_id)"'","tag":3,"body":'"$(file_complete labels)"'}' \
		"$(sed -n 3p "$OUT")"
	wait_until 10 grep -q '"event":"🔌 The labels consumer is cancelled"' "$BATS_TEST_TMPDIR/amqp-drain.log"
	local d
	d=$(($(drain_log_time "🔌 The labels consumer is cancelled") - $(drain_log_time "🏁 File complete")))
	((d >= 2 && d <= 3)) || flunk "the labels consumer was cancelled $d s after its file_complete"
	assert_equal "$(printf '%s\t200\n' "${QPREFIX}artists" "${QPREFIX}masters" "${QPREFIX}releases")" "$(consumers)"
	# Nothing is settled yet: the three deliveries are still the broker's.
	assert_queues "0 3 0 0"
	settle ack 1
	settle ack 2
	settle ack 3
	wait_queues 10 "0 0 0 0"
	# A label published now stays in its queue.
	samples labels 3 | tail -n 1 | publish labels
	sleep 0.5
	assert_equal 3 "$(wc -l <"$OUT")"
	assert_queues "0 1 0 0"
	# The other three complete: once the last consumer is cancelled, stdout
	# is closed; amqp-drain waits for its deliveries to be settled, then
	# closes the connection and exits 0.
	for t in artists masters releases; do file_complete "$t" | publish "$t"; done
	wait_until 10 grep -q '"event":"💤 All consumers cancelled: draining the pipeline"' "$BATS_TEST_TMPDIR/amqp-drain.log"
	assert_equal 6 "$(wc -l <"$OUT")"
	assert_equal 1 "$(connections)"
	settle ack 4
	settle ack 5
	settle ack 6
	wait_pid "$DRAIN" 10
	assert_equal 0 "$rc"
	assert_equal 0 "$(connections)"
	assert_queues "0 1 0 0"
	drain_summary | jq -e '.deliveries == 6 and .controls == 4 and .acked == 6 and .unsettled == 0' >/dev/null
	assert_no_channel_error
}

@test "a type that only starts with file_complete (file_complete\u0000x) is no file_complete: no consumer is cancelled" {
	printf '%s\n' '{"type":"file_complete\u0000x","file":"f"}' '{"type":"file_complete ","file":"f"}' |
		publish labels
	drain_start --cancel-delay 0.2
	wait_until 10 lines_are 2
	sleep 1
	! grep -q '"event":"🏁 File complete"' "$BATS_TEST_TMPDIR/amqp-drain.log" ||
		flunk "taken for a file_complete: $(grep 'File complete' "$BATS_TEST_TMPDIR/amqp-drain.log")"
	assert_equal 4 "$(consumers | wc -l)"
	settle ack 1
	settle ack 2
	wait_queues 10 "0 0 0 0"
}

@test "file_complete written with escapes is a file_complete, as json-c reads it; a top level that does not read is none" {
	# tblhash, reading with json-c, takes the first for a control message:
	# amqp-drain must agree, and start the cancel timer of that type.
	printf '%s\n' '{"\u0074ype":"file_\u0063omplete","file":"f"}' | publish labels
	printf '%s\n' '{"type":"file_complete","file":"f" "x":1}' | publish masters
	drain_start --cancel-delay 0.2
	wait_until 10 lines_are 2
	wait_until 10 grep -q '"event":"🔌 The labels consumer is cancelled"' "$BATS_TEST_TMPDIR/amqp-drain.log"
	assert_equal 1 "$(grep -c '"event":"🏁 File complete"' "$BATS_TEST_TMPDIR/amqp-drain.log")"
	grep '"event":"🏁 File complete"' "$BATS_TEST_TMPDIR/amqp-drain.log" | jq -e '.type == "labels"' >/dev/null
	assert_equal 3 "$(consumers | wc -l)"
	[[ $(grep labels "$OUT" | "$TBL_BINDIR/tblhash" | jq -r .control) == file_complete ]]
	settle ack 1
	settle ack 2
	wait_queues 10 "0 0 0 0"
}

@test "the pipeline: SIGTERM cancels the consumers, flushes, commits, settles and exits 0 at once" {
	pg_newdb
	publish_samples
	# Batches of 600 (prefetch 1200): 600 of each type are committed at
	# once, the other 400 wait in batches due in a minute.
	export POSTGRES_BATCH_FLUSH_INTERVAL=60 POSTGRES_BATCH_SIZE=600
	pipeline_start
	wait_until 30 counts_are "600 600 600 600"
	wait_queues 10 "400 400 400 400"
	local t0=$SECONDS
	kill -TERM "${PIDS[amqp-drain]}"
	pipeline_wait 20
	assert_equal "0 0 0 0" "$STATUS"
	((SECONDS - t0 <= 3)) || flunk "the pipeline took $((SECONDS - t0)) s to stop"
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
	assert_queues "0 0 0 0"
	drain_summary | jq -e '.deliveries == 4000 and .acked == 4000 and .unsettled == 0' >/dev/null ||
		flunk "not all settled: $(drain_summary)"
	assert_no_channel_error
}

@test "broker connection lost: exit 75, and after a restart every record is stored, nothing lost" {
	pg_newdb
	publish_samples
	export POSTGRES_BATCH_SIZE=20
	pipeline_start
	wait_until 30 rows_at_least 200
	# tblload pauses with deliveries in flight; the broker goes away.
	kill -STOP "${PIDS[tblload]}"
	rmq_stop
	wait_until 20 gone "${PIDS[amqp-drain]}"
	[[ $(drain_log) =~ (CONNECTION_FORCED|broker\ connection\ lost) ]] || flunk "$(drain_log)"
	# tblload commits what it holds; its settle lines have no reader now.
	kill -CONT "${PIDS[tblload]}"
	pipeline_wait 40
	# (tblhash and tblload may exit 1: the line amqp-drain was writing when
	# it ended is cut short, and they report it as invalid; it carries no
	# tag, so nothing is settled for it.)
	[[ $STATUS =~ ^75\ [01]\ 0\ [01]$ ]] || flunk "exit statuses $STATUS"
	rmq_start_again
	# What was not acked comes again, to a new connection.
	: >"$BATS_TEST_TMPDIR/amqp-drain.log"
	pipeline_start --until-empty
	pipeline_wait 60
	assert_equal "0 0 0 0" "$STATUS"
	drain_summary | jq -e '.redelivered > 0 and .unsettled == 0' >/dev/null ||
		flunk "no redelivery after the broker came back: $(drain_summary)"
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
	for t in "${TYPES[@]}"; do
		assert_equal "$(fixture_hashes "$t")" "$(psqlq -c "SELECT string_agg(id || ':' || hash, ',' ORDER BY id) FROM $t")"
	done
	assert_queues "0 0 0 0"
	assert_no_channel_error
}

@test "heartbeats go on while the pipe is full and its reader does not read" {
	pg_newdb
	publish_samples
	rm -f "$BATS_TEST_TMPDIR/acks"
	mkfifo "$BATS_TEST_TMPDIR/acks"
	local acks=$BATS_TEST_TMPDIR/acks log=$BATS_TEST_TMPDIR
	# The broker closes a connection that misses two heartbeats of 2 s (of
	# 1 s, a busy machine's scheduling alone sometimes missed two).
	{
		AMQP_CONNECTION="$AMQP_CONNECTION?heartbeat=2" amqp-drain --acks "$acks" --until-empty 2>"$log/amqp-drain.log"
		echo $? >"$log/amqp-drain.status"
	} 3>&- | {
		sleep 16
		touch "$log/reading"
		tblhash | tblbatch | tblload --acks "$acks"
	} 2>"$log/rest.log" 3>&- &
	local p=$!
	wait_until 10 connections_are 1
	sleep 6
	# 6 s later: still connected, with stdout full for all that time.
	assert_equal 1 "$(connections)"
	run -0 rmqctl -q list_connections --no-table-headers vhost timeout state
	assert_line "$RMQ_VHOST	2	running"
	# Nothing is settled yet: all 4000 are in the queues, 800 (the prefetch)
	# held by amqp-drain.
	assert_queues "1000 1000 1000 1000"
	assert_equal 800 "$(qstat | awk -F'\t' '{ n += $3 } END { print n }')"
	[[ ! -e $log/reading ]] || flunk "the reader started too early for this test"
	wait_pid "$p" 60
	assert_equal 0 "$rc"
	assert_equal 0 "$(cat "$log/amqp-drain.status")"
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
	assert_queues "0 0 0 0"
	drain_summary | jq -e '.deliveries == 4000 and .acked == 4000 and .redelivered == 0' >/dev/null
	rmq_log_since | grep -ai 'heartbeat' && flunk "the broker logged missed heartbeats"
	assert_no_channel_error
}

@test "configuration: no or a bad AMQP_CONNECTION, or a queue with other arguments, exits 78" {
	run -78 --separate-stderr env -u AMQP_CONNECTION amqp-drain --check
	assert_contains "$stderr" "AMQP_CONNECTION (or AMQP_CONNECTION_FILE) is not set"
	run -78 --separate-stderr env AMQP_CONNECTION=amqp://127.0.0.1:x/ amqp-drain --check
	assert_contains "$stderr" "AMQP_CONNECTION: the port"
	# A bad escape in the host is no host (it was localhost, where the
	# credentials went); a '/' in the password, unescaped, leaves the rest
	# of it after the host.
	run -78 --separate-stderr env AMQP_CONNECTION="amqp://tbl:tblsecret@127%zz.0.0.1:$RMQ_PORT/" amqp-drain --check
	jq -e '.event == "AMQP_CONNECTION: bad %-escape in the host"' <<<"$stderr"
	run -78 --separate-stderr env AMQP_CONNECTION="amqp://tbl:12345/S3cr3t@127.0.0.1:$RMQ_PORT/" amqp-drain --check
	jq -e '.event | startswith("AMQP_CONNECTION: '\''@'\'' after the host")' <<<"$stderr"
	[[ $stderr != *S3cr3t* ]] || flunk "the password is in the log: $stderr"
	run -78 --separate-stderr env AMQP_CONNECTION="amqp://tbl:Wr0ngPw@127.0.0.1:$RMQ_PORT/$RMQ_VHOST" amqp-drain --check
	assert_contains "$stderr" "ACCESS_REFUSED"
	[[ $stderr != *Wr0ngPw* ]] || flunk "the password is in the log: $stderr"
	run -64 --separate-stderr amqp-drain --bogus
	amqp-declare-queue --url "$AMQP_CONNECTION" -d -q "${QPREFIX}masters" >/dev/null
	run -78 --separate-stderr drain_to "$OUT" --until-empty
	assert_contains "$stderr" "inequivalent arg 'x-dead-letter-exchange' for queue '${QPREFIX}masters'"
}

@test "AMQP_CONNECTION_FILE: the URL from a file (one trailing newline dropped); with AMQP_CONNECTION too, or no regular file: 78 naming the path" {
	local f=$BATS_TEST_TMPDIR/url
	printf '%s\n' "$AMQP_CONNECTION" >"$f"
	run -1 --separate-stderr env -u AMQP_CONNECTION AMQP_CONNECTION_FILE="$f" amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
	printf '%s\r\n' "$AMQP_CONNECTION" >"$f"
	run -0 --separate-stderr env -u AMQP_CONNECTION AMQP_CONNECTION_FILE="$f" amqp-fill --type labels </dev/null
	run -78 --separate-stderr env AMQP_CONNECTION_FILE="$f" amqp-drain --check
	jq -e '.event == "AMQP_CONNECTION and AMQP_CONNECTION_FILE are both set: set one of them"' <<<"$stderr"
	run -78 --separate-stderr env -u AMQP_CONNECTION AMQP_CONNECTION_FILE="$BATS_TEST_TMPDIR" amqp-drain --check
	jq -e --arg e "AMQP_CONNECTION_FILE: $BATS_TEST_TMPDIR is not a regular file" '.event == $e' <<<"$stderr"
	run -78 --separate-stderr env -u AMQP_CONNECTION AMQP_CONNECTION_FILE="$f.none" amqp-drain --check
	jq -e --arg e "AMQP_CONNECTION_FILE: cannot open $f.none: No such file or directory" '.event == $e' <<<"$stderr"
	# An empty file is an unset variable.
	: >"$f"
	run -78 --separate-stderr env -u AMQP_CONNECTION AMQP_CONNECTION_FILE="$f" amqp-drain --check
	assert_contains "$stderr" "AMQP_CONNECTION (or AMQP_CONNECTION_FILE) is not set"
}
