#!/usr/bin/env bats
# scripts/tableinator, the supervisor: the environment checked (78 naming
# the variable), STARTUP_DELAY, the idle exit after file_complete and the
# periodic queue check, batch mode off, restarts with backoff and of a stuck
# pipeline, graceful SIGTERM/SIGINT, no password in argv or logs, JSON logs
# (docs/design.md#lifecycle, docs/state.md).
# needs: rabbitmq postgres

load helpers/common
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload
	supervisor_tree
}

setup() {
	sup_setup
}

teardown() {
	sup_teardown
}

@test "every variable is checked first: a bad value exits 78 at once, naming it" {
	local kv name
	for kv in -AMQP_CONNECTION AMQP_CONNECTION= AMQP_CONNECTION=http://h/ \
		-POSTGRES_ADDRESS POSTGRES_ADDRESS=h:x POSTGRES_ADDRESS=h:0 POSTGRES_ADDRESS=h:65536 \
		'POSTGRES_ADDRESS=[::1' POSTGRES_ADDRESS=h:5432:1 \
		-POSTGRES_USERNAME -POSTGRES_PASSWORD -POSTGRES_DATABASE \
		HEALTH_CHECK_PORT=x HEALTH_CHECK_PORT=65536 HEALTH_CHECK_PORT=-1 \
		CONSUMER_CANCEL_DELAY=x CONSUMER_CANCEL_DELAY=-1 CONSUMER_CANCEL_DELAY=1.5 \
		QUEUE_CHECK_INTERVAL=0 QUEUE_CHECK_INTERVAL=1h \
		STUCK_CHECK_INTERVAL=0 STUCK_CHECK_INTERVAL=x \
		STARTUP_DELAY=x STARTUP_DELAY=-5 STARTUP_DELAY=18446744073709551617 \
		POSTGRES_BATCH_MODE=maybe POSTGRES_BATCH_MODE=1 \
		POSTGRES_BATCH_SIZE=0 POSTGRES_BATCH_SIZE=x POSTGRES_BATCH_SIZE=1000001 \
		POSTGRES_BATCH_FLUSH_INTERVAL=x POSTGRES_BATCH_FLUSH_INTERVAL=-1 \
		POSTGRES_BATCH_FLUSH_INTERVAL=100000 \
		LOG_LEVEL=verbose TBL_STATE_DIR=/dev/null/state; do
		if [[ $kv == -* ]]; then
			name=${kv#-}
			# (Without POSTGRES_ADDRESS, libpq's PGHOST would do.)
			run -78 --separate-stderr with_timeout 10 env -u "$name" -u PGHOST "$TBL_SUPERVISOR"
		else
			name=${kv%%=*}
			run -78 --separate-stderr with_timeout 10 env "$kv" "$TBL_SUPERVISOR"
		fi
		# One line, before anything started.
		assert_equal 1 "${#stderr_lines[@]}" || flunk "$kv: $stderr"
		jq -e --arg n "$name" '.level == "error" and .exit_status == 78 and (.event | startswith($n))' \
			<<<"$stderr" >/dev/null || flunk "$kv: $stderr"
	done
	assert_equal 0 "$(connections)"
	# Good values in other spellings are accepted (checked with a stop
	# during the STARTUP_DELAY). The level names are those of the tools (and
	# of Python's logging, which the original used): WARN and FATAL too.
	TBL_PG_ADDRESS=$POSTGRES_ADDRESS
	export STARTUP_DELAY=30 POSTGRES_BATCH_MODE=FALSE HEALTH_CHECK_PORT=0 \
		POSTGRES_BATCH_FLUSH_INTERVAL=2.5 POSTGRES_ADDRESS=$POSTGRES_ADDRESS
	for LOG_LEVEL in warning WARN Fatal debug; do
		export LOG_LEVEL
		rm -f "$TBL_STATE_DIR/tableinator.json"
		# libpq's PGHOST instead of POSTGRES_ADDRESS, the first time.
		[[ $LOG_LEVEL != warning ]] || unset POSTGRES_ADDRESS
		sup_start
		export POSTGRES_ADDRESS=$TBL_PG_ADDRESS
		wait_until 10 state_is starting
		kill -TERM "$SUP"
		sup_wait 10
		assert_equal 0 "$rc" || flunk "LOG_LEVEL=$LOG_LEVEL: $(cat "$LOG")"
		tblhash --version >/dev/null # the tools take it too
	done
}

@test "STARTUP_DELAY: nothing is started before it has passed" {
	# Long enough for the checks below: each rabbitmqctl call takes most of
	# a second, several on a busy machine (5 s were too few at a load of 8).
	export STARTUP_DELAY=15
	samples labels 10 | publish labels
	sup_start
	wait_until 10 state_is starting
	sleep 1
	local c q d
	# What the broker said counts if it said it within the delay: on a busy
	# machine one rabbitmqctl call can take many seconds. The log times
	# below hold whatever the load.
	c=$(connections)
	q=$(queue_counts)
	if awk -v a="$(log_time '🚀 Starting tableinator')" -v b="$EPOCHREALTIME" \
	    -v d="$STARTUP_DELAY" 'BEGIN { exit !(b - a < d) }'; then
		assert_equal 0 "$c"
		assert_equal "$(printf '%s\n' 'artists 0 0' 'labels 10 0' 'masters 0 0' 'releases 0 0')" "$q"
	else
		echo "# the broker's answers came after STARTUP_DELAY: only the log times checked" >&3
	fi
	wait_until 30 counts_are "0 10 0 0"
	d=$(since "$(log_time '🚀 Starting tableinator')" "$(log_time '🚀 Pipeline started')")
	awk -v d="$d" 'BEGIN { exit !(d >= 15 && d < 20) }' || flunk "the pipeline started $d s after the supervisor"
	# amqp-drain, the only stage that consumes, said nothing before then.
	d=$(since "$(log_time '🚀 Starting tableinator')" "$(jlog -r 'select(.logger == "tableinator.amqp-drain") | .timestamp' | head -n 1 |
		jq -Rr 'capture("^(?<s>.*)\\.(?<f>[0-9]+)Z$") | (.s + "Z" | fromdate) + ("0." + .f | tonumber)')")
	awk -v d="$d" 'BEGIN { exit !(d >= 15) }' || flunk "amqp-drain logged $d s after the supervisor started"
	kill -TERM "$SUP"
	sup_wait 20
	assert_equal 0 "$rc"
	assert_json_log
}

@test "file_complete for all four types: idle exit after CONSUMER_CANCEL_DELAY, then the periodic check loads what comes later" {
	export CONSUMER_CANCEL_DELAY=2 QUEUE_CHECK_INTERVAL=2
	local t
	for t in "${TYPES[@]}"; do
		{ samples "$t" 100; file_complete "$t"; } | publish "$t"
	done
	sup_start
	wait_until 20 counts_are "100 100 100 100"
	wait_until 20 logged "Pipeline ended"
	wait_until 10 state_is idle
	# The consumers went CONSUMER_CANCEL_DELAY after their file_complete; the
	# pipeline ended by itself (0), and its connection is closed.
	assert_equal '{"amqp-drain":0,"tblhash":0,"tblbatch":0,"tblload":0}' "$(state .last_exit)"
	assert_equal 0 "$(connections)"
	assert_equal 0 "$(state .restarts)"
	jlog_all 'select(.event == "🏁 File complete") | .cancel_in_s == 2'
	assert_equal 4 "$(jlog -r 'select(.event == "🏁 File complete") | .type' | sort -u | wc -l)"
	local d
	d=$(since "$(log_time '🏁 File complete' 4)" "$(log_time '💤 All consumers cancelled: draining the pipeline')")
	awk -v d="$d" 'BEGIN { exit !(d >= 2 && d < 3.5) }' || flunk "the last consumer was cancelled $d s after its file_complete"
	assert_queues "0 0 0 0"
	# Idle: the queues are checked every QUEUE_CHECK_INTERVAL seconds.
	wait_until 10 logged "📭 Queues are empty"
	assert_equal '{"artists":0,"labels":0,"masters":0,"releases":0,"total":0}' "$(state .queue_depths)"
	assert_equal '"Idle - checking queues every 2 s"' "$(state .current_task)"
	# Messages published now are loaded after the next check.
	samples labels 150 | tail -n 50 | publish labels
	samples artists 101 | tail -n 1 | publish artists
	wait_until 10 logged "📬 Messages are waiting: starting the pipeline"
	# The check may come while the two are published: it saw some of them.
	jlog -s -e 'map(select(.event == "📬 Messages are waiting: starting the pipeline") | .depths | fromjson) |
		length == 1 and (.[0] | .masters == 0 and .releases == 0 and .labels <= 50 and
		.artists <= 1 and .total == .labels + .artists and .total > 0)' >/dev/null
	wait_until 10 counts_are "101 150 100 100"
	wait_until 10 state_is running
	wait_queues 10 "0 0 0 0"
	assert_equal 1 "$(connections)"
	sup_stops
}

@test "POSTGRES_BATCH_MODE=false: one message per transaction" {
	export POSTGRES_BATCH_MODE=false POSTGRES_BATCH_SIZE=500
	samples labels 20 | publish labels
	samples artists 5 | publish artists
	sup_start
	wait_until 20 counts_are "5 20 0 0"
	wait_queues 10 "0 0 0 0"
	kill -TERM "$SUP"
	sup_wait 20
	assert_equal 0 "$rc"
	assert_equal "25 transactions of 1" \
		"$(jlog -r 'select(.event == "✅ Batch committed") | .size' | sort | uniq -c | awk '{ print $1 " transactions of " $2 }')"
	jlog_all 'select(.event == "🚀 Pipeline started") | .batch_size == 1'
}

@test "a pipeline that dies is started again, with backoff, and the count is in tableinator.json" {
	sup_start
	wait_until 10 logged "🚀 Pipeline started"
	wait_until 10 connections_are 1
	# The stages are the tools under test.
	for s in amqp-drain tblhash tblbatch tblload; do
		assert_equal "$TBL_BINDIR/$s" "$(readlink "/proc/$(stage_pid "$s")/exe")"
	done
	# amqp-drain killed: the rest ends at once (end of input).
	kill -KILL "$(stage_pid amqp-drain)"
	wait_until 20 logged "🚀 Pipeline started" 2
	assert_equal 1 "$(state .restarts)"
	assert_equal '{"amqp-drain":137,"tblhash":0,"tblbatch":0,"tblload":0}' "$(state .last_exit)"
	# tblload killed while no message comes: amqp-drain does not notice,
	# the supervisor ends the pipeline a few seconds later.
	wait_until 10 connections_are 1
	kill -KILL "$(stage_pid tblload)"
	wait_until 20 logged "🚀 Pipeline started" 3
	assert_equal 2 "$(state .restarts)"
	assert_equal 137 "$(state '.last_exit.tblload')"
	# Waits of 1 s, then 2 s, before the starts.
	local w1 w2
	w1=$(since "$(log_time 'Pipeline ended' 1)" "$(log_time '🚀 Pipeline started' 2)")
	w2=$(since "$(log_time 'Pipeline ended' 2)" "$(log_time '🚀 Pipeline started' 3)")
	awk -v a="$w1" -v b="$w2" 'BEGIN { exit !(a >= 1 && a < 2.5 && b >= 2 && b < 3.5) }' ||
		flunk "restarted after $w1 s, then after $w2 s"
	# The pipeline works after the restarts.
	samples masters 30 | publish masters
	wait_until 20 counts_are "0 0 30 0"
	sup_stops
}

@test "a stuck pipeline (a stage silent for twice STUCK_CHECK_INTERVAL) is killed and started again" {
	export STUCK_CHECK_INTERVAL=1 POSTGRES_BATCH_SIZE=10
	publish_samples 200
	sup_start
	wait_until 20 rows_at_least 100
	kill -STOP "$(stage_pid tblload)"
	wait_until 20 logged "🚀 Pipeline started" 2
	grep -q '"event":"❌ Pipeline stuck: tblload has not reported for [0-9]* s; restarting it"' "$LOG"
	assert_equal 1 "$(state .restarts)"
	wait_until 30 counts_are "200 200 200 200"
	wait_queues 10 "0 0 0 0"
	sup_stops
}

# stop_test SIGNAL TARGET: batches of 600 (1000 of each type waiting) with a
# flush interval of a minute; once 600 of each are stored, SIGNAL goes to
# the supervisor (TARGET "pid") or to its whole process group ("group", as
# Ctrl-C in a terminal does). Everything delivered is flushed, committed and
# settled, and the supervisor exits 0 within seconds, leaving nothing behind.
stop_test() {
	export POSTGRES_BATCH_FLUSH_INTERVAL=60 POSTGRES_BATCH_SIZE=600
	publish_samples
	sup_start
	wait_until 30 counts_are "600 600 600 600"
	local t0=$SECONDS
	if [[ $2 == group ]]; then kill "-$1" -- "-$SUP"; else kill "-$1" "$SUP"; fi
	sup_wait 30
	assert_equal 0 "$rc"
	((SECONDS - t0 <= 5)) || flunk "the supervisor took $((SECONDS - t0)) s to stop"
	assert_pipeline_gone
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
	assert_queues "0 0 0 0"
	jlog_all 'select(.logger == "tableinator.amqp-drain" and has("deliveries")) |
		.deliveries == 4000 and .acked == 4000 and .unsettled == 0'
	assert_equal '"stopping"' "$(state .state)"
	assert_equal 0 "$(state .restarts)"
	assert_json_log
	assert_no_channel_error
}

@test "SIGTERM: the pipeline is flushed and settled, exit 0, nothing left" {
	stop_test TERM pid
}

@test "SIGINT: the same" {
	stop_test INT pid
}

@test "SIGHUP (the terminal closed): the same" {
	stop_test HUP pid
}

@test "Ctrl-C in a terminal (SIGINT to the whole process group): the same" {
	stop_test INT group
}

@test "a stop request is never lost, whenever it comes (SIGTERM to the process group at random moments)" {
	local i t0
	for i in 1 2 3 4 5 6; do
		: >"$LOG"
		sup_start
		# The traps are set before this line.
		wait_until 10 logged "🚀 Starting tableinator"
		sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
		t0=$SECONDS
		kill -TERM -- "-$SUP"
		sup_wait 20
		assert_equal 0 "$rc" || flunk "run $i: exit $rc: $(cat "$LOG")"
		((SECONDS - t0 <= 12)) || flunk "run $i: stopped after $((SECONDS - t0)) s: $(cat "$LOG")"
		assert_pipeline_gone
		assert_json_log
	done
}

@test "passwords are in no process's argv and in no log line, also when they are refused" {
	local rpw=Rmq-$RANDOM$RANDOM-S3cr3t ppw=Pg-$RANDOM$RANDOM-S3cr3t ru pu found
	ru=$(tbl_name ru) pu=$(tbl_name pu)
	rmqctl -q add_user "$ru" "$rpw" >/dev/null
	rmqctl -q set_permissions -p "$RMQ_VHOST" "$ru" '.*' '.*' '.*' >/dev/null
	psqlq -c "CREATE ROLE $pu LOGIN SUPERUSER PASSWORD '$ppw'"
	export AMQP_CONNECTION=amqp://$ru:$rpw@127.0.0.1:$RMQ_PORT/$RMQ_VHOST POSTGRES_USERNAME=$pu \
		POSTGRES_PASSWORD=$ppw LOG_LEVEL=DEBUG CONSUMER_CANCEL_DELAY=1 QUEUE_CHECK_INTERVAL=1
	for t in "${TYPES[@]}"; do { samples "$t" 50; file_complete "$t"; } | publish "$t"; done
	sup_start
	# While it loads, goes idle and checks the queues: every process's argv.
	found=
	for ((i = 0; i < 40; i++)); do
		found+=$(grep -l -a -e "$rpw" -e "$ppw" /proc/[0-9]*/cmdline 2>/dev/null || true)
		state_is idle && logged "📭 Queues are empty" 2 && break
		sleep 0.1
	done
	[[ -z $found ]] || flunk "a password in the argv of: $found"
	assert_equal "50 50 50 50" "$(table_counts)"
	logged "📭 Queues are empty" 2
	kill -TERM "$SUP"
	sup_wait 20
	assert_equal 0 "$rc"
	run ! grep -r -a -l -e "$rpw" -e "$ppw" "$LOG" "$TBL_STATE_DIR"

	# Refused passwords: 78, named in no log line either.
	AMQP_CONNECTION=amqp://$ru:$rpw-x@127.0.0.1:$RMQ_PORT/$RMQ_VHOST sup_start
	sup_wait 40
	assert_equal 78 "$rc"
	assert_contains "$(cat "$LOG")" "ACCESS_REFUSED"
	run ! grep -a -e "$rpw" -e "$ppw" "$LOG"
	POSTGRES_PASSWORD=$ppw-x sup_start
	sup_wait 40
	assert_equal 78 "$rc"
	assert_contains "$(cat "$LOG")" "password authentication failed"
	run ! grep -a -e "$rpw" -e "$ppw" "$LOG"
	assert_pipeline_gone
	assert_json_log
}

@test "a configuration error of a stage stops the supervisor with 78, without restarts" {
	POSTGRES_DATABASE=no/such/db POSTGRES_PASSWORD=wrong sup_start
	sup_wait 40
	assert_equal 78 "$rc"
	jlog_all 'select(.logger == "tableinator.supervisor" and .exit_status == 78) |
		.event == "tblload exited with a configuration error; not restarting"'
	assert_equal 0 "$(state .restarts)"
	assert_pipeline_gone
	assert_json_log
}

@test "LOG_LEVEL=WARNING: no info or debug line from the supervisor or any tool" {
	export LOG_LEVEL=WARNING CONSUMER_CANCEL_DELAY=1
	for t in "${TYPES[@]}"; do { samples "$t" 5; file_complete "$t"; } | publish "$t"; done
	sup_start
	wait_until 20 state_is idle
	wait_until 10 counts_are "5 5 5 5"
	kill -TERM "$SUP"
	sup_wait 20
	assert_equal 0 "$rc"
	assert_equal "" "$(jlog -r 'select(.level == "info" or .level == "debug") | .logger' | sort -u)"
	assert_json_log
}
