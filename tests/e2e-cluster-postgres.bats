#!/usr/bin/env bats
# tableinator on a PostgreSQL primary with a streaming standby
# (POSTGRES_ADDRESS listing both): the primary killed with SIGKILL and the
# standby promoted mid-load, in synchronous mode (nothing acked is lost) and
# in asynchronous mode (what was acked and lost is counted and reported,
# then a replay of the backlog repairs it); POSTGRES_SYNC_REQUIRED. The
# pairs are the suite's own (started once, in setup_file), the broker the
# run's. Times and losses go to the test output (lines "# ..."), with the
# machine's load.
# needs: rabbitmq

load helpers/common
load helpers/broker
load helpers/replay
load helpers/cluster
load helpers/failover
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=900

setup_file() {
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload tblhealth
	supervisor_tree
	local t0
	t0=$(_tbl_now)
	pg_pair_start fo_sync sync && pg_pair_start fo_async async || return
	echo "# two pairs (sync, async) up in $(_tbl_since "$t0") s" >&3
	t0=$(_tbl_now)
	# The reference on a pair of its own role: the sync pair.
	pg_pair_use fo_sync && backlog_make "$BACKLOG_RECORDS" && backlog_reference || return
	echo "# $BACKLOG_RECORDS records generated and loaded for reference in $(_tbl_since "$t0") s" >&3
}

teardown_file() {
	local p
	for p in fo_sync fo_async; do
		pg_pair_use "$p" && pg_pair_stop
	done
}

setup() {
	rmq_newvhost
	rmq_log_mark
}

teardown() {
	inst_stop_all
}

# start_load PAIR: a database on the pair's primary, the backlog in the
# queues, and instance 1 loading it through POSTGRES_ADDRESS listing both
# servers (the primary first). Returns once a quarter is stored.
start_load() {
	pg_pair_use "$1"
	pg_newdb
	amqp-fill "$BACKLOG" 2>"$BATS_TEST_TMPDIR/amqp-fill.log" ||
		flunk "amqp-fill: $(tail -n 2 "$BATS_TEST_TMPDIR/amqp-fill.log")"
	LOAD_T0=$(_tbl_now)
	inst_start 1 POSTGRES_ADDRESS="$PGPAIR_ADDRESS"
	wait_until 600 rows_at_least $((BACKLOG_RECORDS / 4))
}

# failover_report MODE: how long tblload was without a server, from its log.
failover_report() {
	local back
	back=$(inst_log 1 -r 'select(.event | startswith("✅ Connected to PostgreSQL again")) | .timestamp |
		capture("^(?<s>.*)\\.(?<f>[0-9]+)Z$") | (.s + "Z" | fromdate) + ("0." + .f | tonumber)' | head -n 1)
	[[ -n $back ]] || flunk "tblload did not log its reconnection"
	echo "# ${1#fo_}: kill -9 of the primary, promotion: tblload wrote again $(since "$PGPAIR_KILLED_AT" "$back") s after the kill (load: $(load_avg))" >&3
}

@test "POSTGRES_SYNC_REQUIRED: tblload refuses (78) a server that would commit without a synchronous standby; the standby listed first is skipped" {
	pg_pair_use fo_async
	pg_newdb
	run -78 --separate-stderr env POSTGRES_SYNC_REQUIRED=true tblload </dev/null
	where '.level == "error"' '.event | contains("synchronous_standby_names is empty")' <<<"$stderr"
	run -0 --separate-stderr env POSTGRES_SYNC_REQUIRED=false tblload </dev/null
	pg_pair_use fo_sync
	pg_newdb
	psqlq -c "ALTER DATABASE $POSTGRES_DATABASE SET synchronous_commit = local"
	run -78 --separate-stderr env POSTGRES_SYNC_REQUIRED=true tblload </dev/null
	where '.level == "error"' '.event | contains("synchronous_commit is local")' <<<"$stderr"
	psqlq -c "ALTER DATABASE $POSTGRES_DATABASE SET synchronous_commit = remote_apply"
	# The standby first: libpq skips it (read-only) and writes on the primary.
	samples artists 10 | tblhash --type artists | tblbatch >"$BATS_TEST_TMPDIR/batch"
	run -0 --separate-stderr env POSTGRES_SYNC_REQUIRED=true \
		POSTGRES_ADDRESS="127.0.0.1:$PGPAIR_STANDBY_PORT,127.0.0.1:$PGPAIR_PRIMARY_PORT" tblload <"$BATS_TEST_TMPDIR/batch"
	where '.event == "🐘 PostgreSQL server"' '.server == $s' --arg s "127.0.0.1:$PGPAIR_PRIMARY_PORT" <<<"$stderr"
	assert_equal "10 0 0 0" "$(table_counts)"
	pg_pair_wait_replay 30
	run -0 pg_pair_psql standby -c 'SELECT count(*) FROM artists'
	assert_output 10
	# The supervisor checks it too, before any pipeline starts.
	run -78 --separate-stderr env POSTGRES_SYNC_REQUIRED=maybe tblload --check-config
	assert_contains "$stderr" "POSTGRES_SYNC_REQUIRED"
}

@test "synchronous standby: kill -9 of the primary and promotion mid-load: exact tables, nothing acked lost" {
	start_load fo_sync
	pg_pair_kill_primary
	pg_pair_promote
	wait_until 900 counts_are "$REF_COUNTS"
	failover_report fo_sync
	echo "# sync: all rows stored $(_tbl_since "$LOAD_T0") s after the start" >&3
	assert_backlog_stored
	wait_queues 120 "0 0 0 0" "0 0 0 0"
	inst_stop 1
	assert_equal 0 "$rc"
	assert_no_channel_error
}

@test "asynchronous standby: kill -9 of the lagging primary and promotion mid-load: the acked records lost are counted; a replay of the backlog repairs the tables" {
	local pid missing
	start_load fo_async
	# As on a network that lags: the standby stops receiving for a second
	# before the primary dies. Commits (and so acks) go on meanwhile.
	pid=$(pg_pair_psql primary -c "SELECT pid FROM pg_stat_replication WHERE application_name = '$PGPAIR_STANDBY'")
	[[ $pid =~ ^[0-9]+$ ]]
	kill -STOP "$pid"
	sleep 1
	pg_pair_kill_primary
	pg_pair_promote
	# Everything acked: the broker holds nothing more to give.
	wait_queues 900 "0 0 0 0" "0 0 0 0"
	failover_report fo_async
	missing=$(backlog_missing | wc -l)
	[[ $missing =~ ^[0-9]+$ ]]
	echo "# async: $missing acked records missing after the failover (walsender stalled 1 s before the kill)" >&3
	inst_stop 1
	assert_equal 0 "$rc"
	# The replay: the backlog (as a dump would give it) loaded again.
	run -0 --separate-stderr bash -c 'tblhash <"$BACKLOG" | tblbatch --size 1000 |
		POSTGRES_ADDRESS=$PGPAIR_ADDRESS tblload'
	where '.event == "✅ Loading finished"' '.inserted == $n' --argjson n "$missing" <<<"$stderr" ||
		flunk "the replay did not insert the $missing missing records: $(tail -n 1 <<<"$stderr")"
	echo "# async: the replay inserted the $missing records" >&3
	assert_backlog_stored
	assert_no_channel_error
}
