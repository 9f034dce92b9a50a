#!/usr/bin/env bats
# tableinator on a 3-node RabbitMQ cluster (AMQP_CONNECTION listing its
# nodes): several instances side by side, a node killed with the leaders of
# the queues and the dead-letter queues on it, an instance killed, a node
# that rejoins while the load goes on, poison while its dead-letter queue is
# unreachable. Every test ends with the tables of an undisturbed load, empty
# dead-letter queues and no channel error in any node's log. The cluster is
# the suite's own (started once, in setup_file), the database the run's.
# Times go to the test output (lines "# ..."), with the machine's load.
# needs: postgres

load helpers/common
load helpers/broker
load helpers/replay
load helpers/cluster
load helpers/failover
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=900

setup_file() {
	# Its tests kill and start nodes of the one cluster: one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload tblhealth
	supervisor_tree
	local t0
	t0=$(_tbl_now)
	rmq_cluster_prepare topo && rmq_cluster_launch || return
	# While it boots: the backlog and its undisturbed load.
	backlog_make "$BACKLOG_RECORDS" && backlog_reference || return
	echo "# $BACKLOG_RECORDS records generated and loaded for reference in $(_tbl_since "$t0") s" >&3
	rmq_cluster_wait 400 || return
	echo "# cluster: booted in $RMQC_BOOT_SECONDS s, joined in $RMQC_JOIN_SECONDS s (load:$(uptime | sed 's/.*average://'))" >&3
}

teardown_file() {
	rmqc_stop
}

setup() {
	rmqc_vhost
	pg_newdb
	RMQ_T0=$(_tbl_now)
}

teardown() {
	local i
	[[ -z ${HOLD_PID-} ]] || release_writes
	inst_stop_all
	# A test that failed with a node down must not take the next ones down.
	for i in 1 2 3; do
		rmqc_alive "$i" || rmqc_start_again "$i"
	done
}

# fill NODE [FILE]: publish FILE (default the backlog) through node NODE,
# which declares the topology first: every queue's leader, and every
# dead-letter queue, is then on NODE.
fill() {
	local log=$BATS_TEST_TMPDIR/amqp-fill.log n
	n=$(wc -l <"${2:-$BACKLOG}")
	AMQP_CONNECTION=$(rmqc_list "$1") with_timeout 600 amqp-fill "${2:-$BACKLOG}" 2>>"$log" ||
		flunk "amqp-fill exited $?: $(tail -n 3 "$log")"
	tail -n 1 "$log" | jq -e --argjson n "$n" '.published == $n and .confirmed == $n' >/dev/null ||
		flunk "not all confirmed: $(tail -n 1 "$log")"
}

# leaders: the node leading each of the four queues, in type order.
leaders() {
	local t out=()
	for t in "${TYPES[@]}"; do
		out+=("$(rmqc_leader "$QPREFIX$t" "$RMQ_VHOST")") || return
	done
	echo "${out[*]}"
}

# on_node K: the node (host:port) instance K's amqp-drain consumes from, as
# it last logged.
on_node() {
	inst_log "$1" -r 'select(.event == "🐰 Consuming") | .broker | sub("^amqp://[^@]*@"; "") | sub("/.*"; "")' |
		tail -n 1
}

# consuming_after K T: when instance K's amqp-drain last started consuming
# after time T (epoch seconds), or nothing.
consuming_after() {
	inst_log "$1" -r --argjson t "$2" 'select(.event == "🐰 Consuming") | .timestamp |
		capture("^(?<s>.*)\\.(?<f>[0-9]+)Z$") | (.s + "Z" | fromdate) + ("0." + .f | tonumber) |
		select(. > $t)' | head -n 1
}

# hold_writes: a session of its own locks the record tables of this test's
# database against writes (SHARE) until release_writes; tblload's commits
# wait for it.
hold_writes() {
	tblload </dev/null 2>/dev/null || return	# the schema, before the lock
	psqlq -c "BEGIN; LOCK TABLE artists, labels, masters, releases IN SHARE MODE;
		SELECT pg_sleep(300) /* tbl hold_writes */" >/dev/null 2>&1 3>&- &
	HOLD_PID=$!
	wait_until 30 writes_held
}

writes_held() {
	[[ $(psqlq -c "SELECT count(*) FROM pg_locks WHERE mode = 'ShareLock' AND granted AND
		relation = 'releases'::regclass AND database = (SELECT oid FROM pg_database
		WHERE datname = current_database())") == 1 ]]
}

release_writes() {
	psqlq -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%tbl hold_writes%' AND pid <> pg_backend_pid()" >/dev/null
	wait_pid "$HOLD_PID" 30
	HOLD_PID=
}

@test "three instances, each given the nodes in another order, load a backlog; kill -9 of the node leading the queues and of an instance mid-load: exact tables" {
	local t0 victim port k i killed_inst
	t0=$(_tbl_now)
	fill 1
	echo "# $BACKLOG_RECORDS records published through node 1 in $(_tbl_since "$t0") s" >&3
	# Declared through node 1: it leads every queue and holds the
	# dead-letter queues (classic queues, on the node that declared them).
	run -0 leaders
	assert_output "1 1 1 1"
	victim=1
	port=$(cut -d' ' -f1 <<<"$RMQC_PORTS")
	# The tables locked against writes until the instances are placed:
	# they consume (and hold their prefetch unacked) meanwhile, so that the
	# kill comes with the load under way, not at its end.
	hold_writes
	t0=$(_tbl_now)
	inst_start 1 AMQP_CONNECTION="$(rmqc_list 1 2 3)"
	inst_start 2 AMQP_CONNECTION="$(rmqc_list 2 3 1)"
	inst_start 3 AMQP_CONNECTION="$(rmqc_list 3 1 2)"
	declare -A before=()
	for k in 1 2 3; do
		wait_until 120 eval '[[ -n $(on_node "$k") ]]'
		before[$k]=$(on_node "$k")
	done
	# Each starts at a random node: one of them must be on the node that
	# dies. If none is, instance 3 starts again until it is.
	for ((i = 0; i < 30; i++)); do
		[[ " ${before[*]} " != *" 127.0.0.1:$port "* ]] || break
		inst_stop 3
		inst_start 3 AMQP_CONNECTION="$(rmqc_list 3 1 2)"
		wait_until 120 eval '[[ -n $(on_node 3) ]]'
		before[3]=$(on_node 3)
	done
	[[ " ${before[*]} " == *" 127.0.0.1:$port "* ]]
	release_writes
	wait_until 600 rows_at_least $((BACKLOG_RECORDS / 10))
	echo "# instances on ${before[1]}, ${before[2]}, ${before[3]}; $(row_total) rows after $(_tbl_since "$t0") s" >&3
	# The node and an instance that is not on it die at once.
	for k in 3 2 1; do
		[[ ${before[$k]} == "127.0.0.1:$port" ]] || killed_inst=$k
	done
	rmqc_kill "$victim"
	inst_kill "$killed_inst"
	echo "# kill -9 of node $victim (leader of the four queues, home of the dead-letter queues) and of instance $killed_inst (on ${before[$killed_inst]})" >&3
	# It starts again at once and rejoins while the load goes on.
	rmqc_start_again "$victim" &
	restart=$!

	wait_until 900 counts_are "$REF_COUNTS"
	echo "# all rows stored $(_tbl_since "$RMQC_KILLED_AT") s after the kill, $(_tbl_since "$t0") s after the start (load: $(load_avg))" >&3
	wait "$restart"
	# The instances that were on the dead node went on on another.
	for k in 1 2 3; do
		[[ $k != "$killed_inst" ]] || continue
		if [[ ${before[$k]} == "127.0.0.1:$port" ]]; then
			at=$(consuming_after "$k" "$RMQC_KILLED_AT")
			[[ -n $at ]] || flunk "instance $k did not consume again after the kill"
			echo "# instance $k: consuming again on $(on_node "$k") $(since "$RMQC_KILLED_AT" "$at") s after the kill" >&3
			[[ $(on_node "$k") != "127.0.0.1:$port" ]]
		fi
		kill -0 "${INST[$k]}"
	done
	assert_backlog_stored
	# Every delivery settled, on every node; nothing dead-lettered.
	for k in 1 2 3; do
		rmqc_wait_queues "$k" 120 "0 0 0 0" "0 0 0 0"
	done
	for k in 1 2 3; do
		[[ $k == "$killed_inst" ]] && continue
		inst_stop "$k"
		assert_equal 0 "$rc"
	done
	rmqc_assert_no_channel_error
}

# publish_chunks: publish $BATS_TEST_TMPDIR/chunk.* through node 2, one a
# second, the last only once $BATS_TEST_TMPDIR/rejoined exists.
publish_chunks() {
	local f last
	last=$(ls "$BATS_TEST_TMPDIR"/chunk.* | tail -n 1)
	for f in "$BATS_TEST_TMPDIR"/chunk.*; do
		[[ $f != "$last" ]] || wait_until 600 test -e "$BATS_TEST_TMPDIR/rejoined" || return
		AMQP_CONNECTION=$(rmqc_list 2) amqp-fill --no-declare "$f" 2>>"$BATS_TEST_TMPDIR/chunks.log" || return
		sleep 1
	done
}

@test "a node restarted while the load goes on rejoins, follows every queue, and the load ends exact" {
	local half t0 n0 n1 pub
	half=$((BACKLOG_RECORDS / 2))
	head -n "$half" "$BACKLOG" >"$BATS_TEST_TMPDIR/first"
	tail -n +$((half + 1)) "$BACKLOG" | split -l $((half / 20 + 1)) -d - "$BATS_TEST_TMPDIR/chunk."
	fill 1 "$BATS_TEST_TMPDIR/first"
	inst_start 1 AMQP_CONNECTION="$(rmqc_list 2 3 1)"
	wait_until 600 rows_at_least $((half / 4))
	# The rest comes a part a second, the last part after the rejoin: the
	# load goes on all the while.
	publish_chunks 3>&- &
	pub=$!
	t0=$(_tbl_now)
	n0=$(row_total)
	rmqc_kill 3
	rmqc_start_again 3
	echo "# node 3 killed and started again in $(_tbl_since "$t0") s" >&3
	# Back in the cluster, a member of every queue.
	run -0 rmqc_ctl 2 -q cluster_status --formatter json
	assert_equal 3 "$(jq '.running_nodes | length' <<<"$output")"
	for t in "${TYPES[@]}"; do
		wait_until 120 eval '[[ $(rmqc_queues 2 -q quorum_status --vhost "$RMQ_VHOST" "$QPREFIX$t" --formatter json |
			jq -r ".[] | select(.[\"Node Name\"] == \"c3-topo@localhost\") | .[\"Raft State\"]") == follower ]]'
	done
	n1=$(row_total)
	touch "$BATS_TEST_TMPDIR/rejoined"
	echo "# node 3 follows every queue again $(_tbl_since "$t0") s after the kill; $((n1 - n0)) rows stored meanwhile (load: $(load_avg))" >&3
	((n1 > n0 && n1 < BACKLOG_RECORDS))
	wait "$pub"
	wait_until 900 counts_are "$REF_COUNTS"
	assert_backlog_stored
	# Node 3 itself, asked of its own replicas: everything settled.
	rmqc_wait_queues 3 120 "0 0 0 0" "0 0 0 0"
	inst_stop 1
	assert_equal 0 "$rc"
	rmqc_assert_no_channel_error
}

# /health of instance K on PORT.
health() {
	curl -s -o "$BATS_TEST_TMPDIR/health" -w '%{http_code}' "http://127.0.0.1:$1/health"
}

@test "the dead-letter queues' node is down: the instance consumes from the others, holds poison unacked, and dead-letters it once the node is back" {
	local port state
	# Topology and records through node 2: the dead-letter queues live there.
	{
		samples artists 200 | jq -c '{type: "artists", body: .}'
		echo '{"type":"artists","raw":"not JSON at all"}'
		samples labels 100 | jq -c '{type: "labels", body: .}'
	} >"$BATS_TEST_TMPDIR/records"
	fill 2 "$BATS_TEST_TMPDIR/records"
	rmqc_kill 2
	port=$(tbl_free_port)
	inst_start 1 AMQP_CONNECTION="$(rmqc_list 1 2 3)" HEALTH_CHECK_PORT="$port"
	state=$INST_DIR/1/state
	wait_until 120 counts_are "200 100 0 0"
	# The poison is held, unacked: rejected now, it would be dropped.
	wait_until 60 eval '[[ $(jq -c "[.held, .dead_letter_unreachable]" "$state/amqp-drain.json") == "[1,[\"artists\",\"labels\",\"masters\",\"releases\"]]" ]]'
	run -0 rmqc_qstat 1
	assert_line "${QPREFIX}artists	0	1"
	inst_where 1 '.event | startswith("⚠️ Dead-letter queue unreachable")' '.queue | endswith(".dlq")'
	inst_where 1 '.event == "⏸️ Reject held: the dead-letter queue is unreachable"' \
		'.type == "artists" and .reason != ""'
	run ! inst_where 1 '.event == "☠️ Message rejected to the dead-letter queue"' true
	assert_equal 503 "$(health "$port")"
	jq -e '.problems | any(contains("dead-letter"))' "$BATS_TEST_TMPDIR/health" >/dev/null
	rmqc_start_again 2
	# Checked every 5 s: dead-lettered now, the instance healthy again.
	rmqc_wait_queues 1 60 "0 0 0 0" "1 0 0 0"
	wait_until 30 eval '[[ $(jq -c "[.held, .dead_letter_unreachable]" "$state/amqp-drain.json") == "[0,[]]" ]]'
	inst_where 1 '.event == "☠️ Message rejected to the dead-letter queue"' '.reason != ""'
	wait_until 30 eval '[[ $(health "$port") == 200 ]]'
	inst_stop 1
	assert_equal 0 "$rc"
	rmqc_assert_no_channel_error
}
