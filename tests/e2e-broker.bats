#!/usr/bin/env bats
# End to end through the broker, under the supervisor: the sample bodies of
# both dialects published to the exchange end up exactly in the tables;
# poison goes to the dead-letter queues once; PostgreSQL stopped, RabbitMQ
# restarted and any stage killed in the middle of a load lose nothing and
# leave the tables exactly as an undisturbed load does (issue 3, "Bad input
# and faults" and "Done when").
# needs: rabbitmq postgres

load helpers/common
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=150

setup_file() {
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload
	supervisor_tree
	# Tests here stop and restart the shared servers: one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	# The reference: the same bodies loaded without a broker, undisturbed.
	reference_load
}

setup() {
	sup_setup
}

teardown() {
	sup_teardown
	pg_start_again
	rmq_start_again
}

# complete_files: a file_complete for every type, after what was published.
complete_files() {
	local t
	for t in "${TYPES[@]}"; do file_complete "$t" | publish "$t"; done
}

# rejected_in_log: "type reason" of each message amqp-drain dead-lettered,
# as tblload gave the reason.
rejected_in_log() {
	jlog -r 'select(.event == "❌ Message rejected") | "\(.type) \(.reason)"' | sort
}

# drain_counters: the counters of every amqp-drain that ended, added up.
drain_counters() {
	jlog -s -c '[.[] | select(.logger == "tableinator.amqp-drain" and has("deliveries"))] |
		{runs: length, deliveries: (map(.deliveries) | add), redelivered: (map(.redelivered) | add),
		 rejected: (map(.rejected) | add), unsettled: (map(.unsettled) | add)}'
}

# slow_inserts: every statement that inserts into a record table takes
# FAULT_SLOW seconds (default 0.005; 0: none) more (a trigger sleeps), so
# that a load lasts long enough to be disturbed in the middle, however many
# connections tblload has.
slow_inserts() {
	local t
	[[ ${FAULT_SLOW:-0.005} != 0 ]] || return 0
	psqlq -f "$TBL_ROOT/sql/schema.sql" >/dev/null
	psqlq -c "CREATE FUNCTION tbl_slow() RETURNS trigger LANGUAGE plpgsql AS
		\$\$ BEGIN PERFORM pg_sleep(${FAULT_SLOW:-0.005}); RETURN NULL; END \$\$"
	for t in "${TYPES[@]}"; do
		psqlq -c "CREATE TRIGGER slow AFTER INSERT ON $t FOR EACH STATEMENT EXECUTE FUNCTION tbl_slow()"
	done
}

# load_with_fault FAULT: 4000 compact bodies under the supervisor, in small
# batches (5), each its own transaction (tblload would merge the waiting
# ones), each slowed down (slow_inserts), so the load takes seconds; FAULT
# (a command) runs once a random number of records (100 to 1600) is stored,
# with the load still going on. Then every record must be stored exactly as
# in the reference.
load_with_fault() {
	local at n
	export POSTGRES_BATCH_SIZE=${FAULT_BATCH_SIZE:-5} TBLLOAD_MERGE=0
	slow_inserts
	publish_samples
	sup_start
	at=$((100 + RANDOM % 1500))
	wait_until 60 rows_at_least "$at"
	n=$(table_counts | tr ' ' '+' | bc)
	"$@"
	echo "# $*: with $n records stored" >&3
	((n < 3800)) || flunk "the load was (nearly) over before the fault: $n records"
	wait_until 90 counts_are "1000 1000 1000 1000"
	wait_queues 30 "0 0 0 0"
}

@test "the 4000 compact sample bodies, through the exchange, end up exactly in the tables" {
	publish_samples
	complete_files
	sup_start
	wait_until 60 state_is idle
	assert_equal "1000 1000 1000 1000" "$(table_counts)"
	assert_all_stored
	assert_equal '{"runs":1,"deliveries":4004,"redelivered":0,"rejected":0,"unsettled":0}' "$(drain_counters)"
	assert_equal "" "$(rejected_in_log)"
	# The idle service has closed its connection.
	assert_equal 0 "$(connections)"
	sup_stops
}

@test "the Python dialect (pretty, CRLF lines) stores the same records; the compact bodies then change nothing in them" {
	local t
	for t in "${TYPES[@]}"; do python_samples "$t" | publish "$t" --pretty --crlf; done
	# They really went out pretty-printed over CRLF lines.
	run -0 amqp-get --url "$AMQP_CONNECTION" -q "${QPREFIX}labels"
	[[ $output == *$'",\r\n  "'* ]] || flunk "not a pretty body: $output"
	python_samples labels | head -n 1 | publish labels --pretty --crlf
	complete_files
	sup_start
	wait_until 60 state_is idle
	assert_equal "100 100 100 100" "$(table_counts)"
	# Each record is stored with the hash and content of its compact twin.
	for t in "${TYPES[@]}"; do
		assert_equal "$(POSTGRES_DATABASE=$REF_DB psqlq -c "SELECT string_agg(md5(t::text), ',' ORDER BY id) FROM $t t
			WHERE id IN ($(python_samples "$t" | jq -r '.id' | paste -sd,))")" \
			"$(psqlq -c "SELECT string_agg(md5(t::text), ',' ORDER BY id) FROM $t t")"
	done
	# Now the 4000 compact bodies: 900 new records of each type, 100 unchanged.
	publish_samples
	complete_files
	wait_until 60 counts_are "1000 1000 1000 1000"
	wait_until 30 logged "Pipeline ended" 2
	assert_all_stored
	assert_equal "4000 0 400" "$(jlog -s -r '[.[] | select(.event == "✅ Batch committed")] |
		"\(map(.inserted) | add) \(map(.updated) | add) \(map(.unchanged) | add)"')"
	assert_equal "" "$(rejected_in_log)"
	sup_stops
}

@test "poison (not JSON, not an object, no id, a bad id) goes to its dead-letter queue once, with the reason; the rest of the batch is stored" {
	local poison=$BATS_TEST_TMPDIR/poison
	printf '%s\n' 'not json' '["an","array"]' '"a string"' '{"name":"no id"}' '{"id":"x1","name":"bad id"}' \
		'{"id":"0","name":"zero"}' '{"id":"1","name":' >"$poison"
	export POSTGRES_BATCH_SIZE=50
	# In the middle of good records of the same batches.
	{ samples labels 20; cat "$poison"; samples labels 40 | tail -n 20; } | publish labels
	{ samples masters 5; head -n 3 "$poison"; } | publish masters
	printf '{"id":"7","bad":"\xff"}\n' | publish artists
	complete_files
	sup_start
	wait_until 60 state_is idle
	assert_equal "0 40 5 0" "$(table_counts)"
	assert_queues "0 0 0 0" "1 7 3 0"
	# Once each, whatever was retried: the queue's contents are the poison.
	for i in 1 2 3 4 5 6 7; do
		amqp-get --url "$AMQP_CONNECTION" -q "${QPREFIX}labels.dlq"
		echo
	done >"$BATS_TEST_TMPDIR/dlq"
	assert_equal "$(sort "$poison")" "$(sort "$BATS_TEST_TMPDIR/dlq")"
	# The reasons are in the log.
	assert_equal "$(
		cat <<-'EOF'
			artists not JSON: invalid utf-8 string
			labels id is not a positive integer below 2^31
			labels id is not a positive integer below 2^31
			labels no id
			labels not JSON: null expected
			labels not JSON: unexpected end of input
			labels not a JSON object
			labels not a JSON object
			masters not JSON: null expected
			masters not a JSON object
			masters not a JSON object
		EOF
	)" "$(rejected_in_log)"
	assert_equal 11 "$(jlog -r 'select(.event == "☠️ Message rejected to the dead-letter queue") | .reason' | wc -l)"
	assert_equal '{"runs":1,"deliveries":60,"redelivered":0,"rejected":11,"unsettled":0}' "$(drain_counters)"
	sup_stops
}

@test "PostgreSQL stopped for 20 s in the middle of a load: every record stored, nothing dead-lettered, nothing redelivered" {
	load_with_fault pg_stop_for 20
	jlog -r '.event' | grep -q '^🔄 PostgreSQL unavailable, retrying$'
	jlog -r '.event' | grep -q '^✅ Connected to PostgreSQL again after'
	assert_all_stored
	# One pipeline throughout: the deliveries waited, unacked, on the same
	# connection; none came twice, none went over the delivery limit.
	assert_equal 0 "$(state .restarts)"
	sup_stops
	assert_equal '{"runs":1,"deliveries":4000,"redelivered":0,"rejected":0,"unsettled":0}' "$(drain_counters)"
}

@test "RabbitMQ restarted in the middle of a load: the supervisor starts the pipeline again, every record is stored" {
	# A graceful broker stop takes seconds, during which the pipeline goes on
	# at full speed: one message per transaction (each slowed down a little)
	# keeps the load going long enough for the restart to cut it.
	FAULT_BATCH_SIZE=1 load_with_fault rmq_restart
	assert_all_stored
	(($(state .restarts) >= 1)) || flunk "no restart: $(state)"
	sup_stops
	# The last amqp-drain got again what was in flight when the broker went
	# (at most the prefetch, 4 x 200); it ended with everything settled.
	local c
	c=$(jlog -s -c '[.[] | select(.logger == "tableinator.amqp-drain" and has("deliveries"))] | last')
	jq -e '.redelivered > 0 and .redelivered <= 800 and .unsettled == 0' <<<"$c" >/dev/null ||
		flunk "deliveries: $c"
}

# kill_stage STAGE: SIGKILL that stage of the running pipeline.
kill_stage() {
	kill -KILL "$(stage_pid "$1")"
}

# after_kill STAGE: the supervisor started one new pipeline, the tables are
# exactly the reference, nothing was dead-lettered, the broker saw no channel
# error.
after_kill() {
	assert_all_stored
	assert_equal 1 "$(state .restarts)"
	assert_equal 137 "$(state ".last_exit[\"$1\"]")"
	assert_equal "" "$(jlog -r 'select(.event == "☠️ Message rejected to the dead-letter queue") | .reason')"
	sup_stops
}

@test "SIGKILL of amqp-drain at a random moment: restarted, tables exactly as if nothing happened" {
	load_with_fault kill_stage amqp-drain
	after_kill amqp-drain
}

@test "SIGKILL of tblhash at a random moment: restarted, tables exactly as if nothing happened" {
	load_with_fault kill_stage tblhash
	after_kill tblhash
}

@test "SIGKILL of tblbatch at a random moment: restarted, tables exactly as if nothing happened" {
	load_with_fault kill_stage tblbatch
	after_kill tblbatch
}

@test "SIGKILL of tblload at a random moment: restarted, tables exactly as if nothing happened" {
	load_with_fault kill_stage tblload
	after_kill tblload
}

# kill_tblload_counted: SIGKILL tblload, and note the records stored then.
kill_tblload_counted() {
	kill_stage tblload
	table_counts | tr ' ' '+' | bc >"$BATS_TEST_TMPDIR/killed_at"
}

@test "SIGKILL of tblload with four connections open: restarted, what was not acked is delivered again, tables exact" {
	export TBLLOAD_JOBS=4
	FAULT_SLOW=0.04 load_with_fault kill_tblload_counted
	# The killed tblload had four sessions, and had not stored everything.
	jlog -s -e 'any(.[]; (.event | startswith("🐘 Connected to PostgreSQL")) and .jobs == 4)' >/dev/null
	(($(cat "$BATS_TEST_TMPDIR/killed_at") < 4000))
	after_kill tblload
	(($(drain_counters | jq .redelivered) > 0)) || flunk "nothing redelivered: $(drain_counters)"
}

@test "POSTGRES_BATCH_MODE=false: one message per transaction, a backlog too; true: a backlog of small batches takes fewer" {
	export POSTGRES_BATCH_MODE=false
	samples labels 200 | publish labels
	sup_start
	wait_until 60 counts_are "0 200 0 0"
	assert_equal 200 "$(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels')"
	sup_stops
	# The same backlog in batches of 5: tblload merges the ones that wait.
	sup_setup
	export POSTGRES_BATCH_SIZE=5
	samples labels 200 | publish labels
	sup_start
	wait_until 60 counts_are "0 200 0 0"
	(($(psqlq -c 'SELECT count(DISTINCT xmin::text) FROM labels') < 40))
	sup_stops
}
