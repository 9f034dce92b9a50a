#!/usr/bin/env bats
# Health, metrics and logs of a running service: scripts/tableinator with
# tblhealth in front of a real pipeline, RabbitMQ and PostgreSQL (issue 4).
# needs: postgres rabbitmq

load helpers/common
bats_require_minimum_version 1.5.0

setup_file() {
	require_bin tblhealth
	require_bin amqp-drain
}

setup() {
	rmq_newvhost
	pg_newdb
	export TBL_STATE_DIR=$BATS_TEST_TMPDIR/state HEALTH_CHECK_PORT
	HEALTH_CHECK_PORT=$(tbl_free_port)
	export CONSUMER_CANCEL_DELAY=300 QUEUE_CHECK_INTERVAL=3600 STUCK_CHECK_INTERVAL=5 \
		POSTGRES_BATCH_FLUSH_INTERVAL=0.2 TBLLOAD_RETRY_MAX=0
	log=$BATS_TEST_TMPDIR/service.log
	sup=
}

teardown() {
	# A failed test shows the end of the service's log.
	if [[ -z ${BATS_TEST_COMPLETED-} && -s $log ]]; then
		grep -v '"Batch committed"' "$log" | tail -n 30 >&3
		tail -n 20 "$TBL_PG_LOG" >&3
	fi
	# PostgreSQL first: a stopped service would otherwise wait for it.
	pg_start_again
	if [[ -n $sup ]] && kill -0 "$sup" 2>/dev/null; then
		kill -TERM "$sup"
		with_timeout 60 tail --pid="$sup" -f /dev/null || kill -KILL "$sup"
	fi
}

start_service() {
	tableinator 2>"$log" &
	sup=$!
}

# health FIELD: print the HTTP status, then the field of /health's JSON.
health_status() {
	curl -s -o "$BATS_TEST_TMPDIR/h.json" -w '%{http_code}' \
		"http://127.0.0.1:$HEALTH_CHECK_PORT/health"
}
health_is() {	# CODE STATUS
	local code
	code=$(health_status) || return 1
	[[ $code == "$1" ]] && [[ $(jq -r .status "$BATS_TEST_TMPDIR/h.json") == "$2" ]]
}

# rows_are TABLE N: the table holds N rows (a function, so that wait_until
# asks again each time).
rows_are() { [[ $(psqlq -c "SELECT count(*) FROM $1" 2>/dev/null) == "$2" ]]; }
metric_is() {	# SAMPLE VALUE
	[[ $(curl -s "http://127.0.0.1:$HEALTH_CHECK_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }') == "$2" ]]
}
health_has() {	# JQ-CONDITION on /health
	curl -s "http://127.0.0.1:$HEALTH_CHECK_PORT/health" | jq -e "$1" >/dev/null
}

publish() {	# TYPE COUNT: the first COUNT sample bodies of TYPE
	zcat "$FIXTURES/messages/discogs_20200806_$1.ndjson.gz" | head -n "$2" |
		amqp-fill --type "$1" 2>/dev/null
}

@test "/health goes starting, healthy, 503 while PostgreSQL is down, healthy again" {
	STARTUP_DELAY=3 start_service
	wait_until 10 health_is 200 starting
	jq -e '.service == "tableinator" and (.timestamp | test("[+-][0-9]{2}:[0-9]{2}$|Z$"))' \
		"$BATS_TEST_TMPDIR/h.json"

	publish artists 300
	wait_until 60 health_is 200 healthy
	wait_until 30 rows_are artists 300
	# The state files follow within a second or so.
	wait_until 10 health_has '.message_counts.artists == 300 and .message_counts.labels == 0 and
		(.active_consumers | sort) == ["artists","labels","masters","releases"] and
		.completed_files == [] and (.last_message_time.artists > 0) and
		has("current_task") and has("progress")'

	# PostgreSQL goes away while records arrive: tblload retries, health says so.
	pg_stop
	publish labels 50
	wait_until 60 health_is 503 unhealthy
	jq -e '.database.reachable == false and (.problems | length) > 0' "$BATS_TEST_TMPDIR/h.json"

	pg_start_again
	wait_until 60 health_is 200 healthy
	wait_until 30 rows_are labels 50
}

@test "/metrics passes promtool, and its row counters equal the tables" {
	STARTUP_DELAY=0 start_service
	publish artists 200
	publish releases 120
	printf 'not json\n{"name":"no id"}\n' | amqp-fill --type labels 2>/dev/null
	wait_until 60 rows_are releases 120
	wait_until 30 rows_are artists 200

	metrics() { curl -s "http://127.0.0.1:$HEALTH_CHECK_PORT/metrics"; }
	# The counters settle with the last commit's state file.
	value() { metrics | awk -v m="$1" '$1 == m { print $2 }'; }
	wait_until 10 metric_is 'tableinator_rows_total{type="releases",outcome="inserted"}' 120
	run -0 metrics
	promtool check metrics <<<"$output"
	[[ $(value 'tableinator_rows_total{type="artists",outcome="inserted"}') == "$(psqlq -c 'SELECT count(*) FROM artists')" ]]
	[[ $(value 'tableinator_rows_total{type="releases",outcome="inserted"}') == "$(psqlq -c 'SELECT count(*) FROM releases')" ]]
	[[ $(value 'tableinator_rows_total{type="labels",outcome="rejected"}') == 2 ]]
	wait_until 10 metric_is 'tableinator_messages_acked_total{type="artists"}' 200
	[[ $(value 'tableinator_messages_rejected_total{type="labels"}') == 2 ]]
	[[ $(value 'tableinator_messages_consumed_total{type="releases"}') == 120 ]]
	[[ $(value tableinator_up) == 1 ]]
}

@test "the logs of a whole run are JSON lines, and no line holds a password" {
	STARTUP_DELAY=0 CONSUMER_CANCEL_DELAY=1 start_service
	for t in artists labels masters releases; do
		publish "$t" 50
		echo '{"type":"file_complete","data_type":"'"$t"'","total_processed":50}' |
			amqp-fill --type "$t" 2>/dev/null
	done
	# Idle after every file_complete: the pipeline has ended, all logs written.
	wait_until 90 grep -q '"state":"idle"' "$TBL_STATE_DIR/tableinator.json"
	kill -TERM "$sup"
	with_timeout 60 tail --pid="$sup" -f /dev/null
	sup=

	[[ $(psqlq -c 'SELECT count(*) FROM masters') == 50 ]]
	run -0 jq -c 'select(.timestamp and .level and .logger and .event) | .logger' "$log"
	(($(wc -l <"$log") == ${#lines[@]}))
	for l in tableinator.supervisor tableinator.amqp-drain tableinator.tblhash \
		tableinator.tblbatch tableinator.tblload; do
		assert_line "\"$l\""
	done
	! grep -q "$POSTGRES_PASSWORD" "$log"
	! grep -q "tblsecret" "$TBL_STATE_DIR"/*.json
	grep -q '"event":"📊 Progress"\|"event":"🏁 File complete"' "$log"
}

# The members a section of docs/state.md lists: the first column of its table
# rows, each `name` in it (a row may list several). A heading may go on
# with a remark in parentheses.
documented() {
	awk -v want="$1" '
		/^## / { on = ($0 == "## " want || index($0, "## " want " (") == 1) }
		on && /^\| `/ {
			split($0, col, "|")
			s = col[2]
			while (match(s, /`[^`]+`/)) {
				print substr(s, RSTART + 1, RLENGTH - 2)
				s = substr(s, RSTART + RLENGTH)
			}
		}' "$TBL_ROOT/docs/state.md" | sort -u
}

@test "every state file has exactly the members docs/state.md lists for it" {
	STARTUP_DELAY=0 start_service
	publish releases 20
	wait_until 60 rows_are releases 20
	# While the pipeline runs all three files are there; keep one of each.
	wait_until 10 test -s "$TBL_STATE_DIR/amqp-drain.json" -a -s "$TBL_STATE_DIR/tblload.json"
	mkdir "$BATS_TEST_TMPDIR/files"
	cp "$TBL_STATE_DIR"/{tableinator,amqp-drain,tblload}.json "$BATS_TEST_TMPDIR/files/"

	common=$(documented 'Members common to all files')
	[[ $common == *heartbeat* ]]
	for f in tableinator amqp-drain tblload; do
		want=$(sort -u <(documented "$f.json"; echo "$common") | grep -v '^$')
		got=$(jq -r 'keys[]' "$BATS_TEST_TMPDIR/files/$f.json" | sort -u)
		# Written but not documented (<), or documented but not written (>).
		diff <(echo "$got") <(echo "$want")
	done
}
