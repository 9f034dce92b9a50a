#!/usr/bin/env bats
# The supervisor's stuck detection: a frozen middle stage is found and the
# pipeline restarted with nothing lost; a batch PostgreSQL keeps waiting
# (a lock) is not mistaken for a stuck pipeline.
# needs: postgres rabbitmq

load helpers/common
bats_require_minimum_version 1.5.0

setup_file() {
	require_bin amqp-drain
	require_bin tblload
}

setup() {
	rmq_newvhost
	pg_newdb
	export TBL_STATE_DIR=$BATS_TEST_TMPDIR/state HEALTH_CHECK_PORT=0 STARTUP_DELAY=0 \
		CONSUMER_CANCEL_DELAY=300 QUEUE_CHECK_INTERVAL=3600 STUCK_CHECK_INTERVAL=2 \
		POSTGRES_BATCH_FLUSH_INTERVAL=0.2 TBLLOAD_RETRY_MAX=0
	log=$BATS_TEST_TMPDIR/service.log
	tableinator 2>"$log" &
	sup=$!
}

teardown() {
	if [[ -z ${BATS_TEST_COMPLETED-} && -s $log ]]; then
		grep -v '"Batch committed"' "$log" | tail -n 25 >&3
	fi
	if kill -0 "$sup" 2>/dev/null; then
		kill -TERM "$sup"
		with_timeout 60 tail --pid="$sup" -f /dev/null || kill -KILL "$sup"
	fi
	[[ -z ${locker-} ]] || kill "$locker" 2>/dev/null || true
}

rows_are() { [[ $(psqlq -c "SELECT count(*) FROM $1" 2>/dev/null) == "$2" ]]; }

publish() {	# TYPE FROM COUNT: sample bodies FROM.. of TYPE
	zcat "$FIXTURES/messages/discogs_20200806_$1.ndjson.gz" | tail -n "+$2" | head -n "$3" |
		amqp-fill --type "$1" 2>/dev/null
}

stage_pid() { pgrep -P "$sup" -x "$1"; }

@test "a frozen tblhash is found stuck; the pipeline restarts and loses nothing" {
	publish labels 1 100
	wait_until 60 rows_are labels 100
	old=$(stage_pid tblhash)
	kill -STOP "$old"
	publish labels 101 50
	# Deliveries wait, nothing is settled, tblload is idle: stuck after
	# 2 * STUCK_CHECK_INTERVAL + the flush interval.
	wait_until 30 grep -q 'Pipeline stuck: 50 deliveries wait' "$log"
	wait_until 60 rows_are labels 150
	new=$(stage_pid tblhash)
	[[ -n $new && $new != "$old" ]]
	jq -e '.restarts >= 1' "$TBL_STATE_DIR/tableinator.json"
	# Nothing went to a dead-letter queue.
	[[ $(rmqctl -q list_queues -p "$RMQ_VHOST" name messages |
		awk '$1 ~ /\.dlq$/ { s += $2 } END { print s + 0 }') == 0 ]]
}

@test "a batch that waits on a lock longer than the stuck limit is left to finish" {
	publish artists 1 20
	wait_until 60 rows_are artists 20
	# Another session holds the table: the next batch waits for it.
	psqlq -c "SELECT 1" >/dev/null
	coproc LOCK { psql -XAtq -d "$POSTGRES_DATABASE" -v ON_ERROR_STOP=1; }
	locker=$LOCK_PID
	echo "BEGIN; LOCK TABLE artists IN ACCESS EXCLUSIVE MODE; SELECT 'locked';" >&"${LOCK[1]}"
	read -r -t 10 line <&"${LOCK[0]}"
	[[ $line == locked ]]
	pid=$(stage_pid tblload)
	publish artists 21 30
	# Well past 2 * STUCK_CHECK_INTERVAL: tblload still writes its heartbeat.
	sleep 8
	[[ $(stage_pid tblload) == "$pid" ]]
	! grep -q 'Pipeline stuck' "$log"
	jq -e '.state == "loading" and .db_ok == true' "$TBL_STATE_DIR/tblload.json"
	echo "COMMIT;" >&"${LOCK[1]}"
	wait_until 30 rows_are artists 50
	[[ $(stage_pid tblload) == "$pid" ]]
}
