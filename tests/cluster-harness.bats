#!/usr/bin/env bats
# The cluster helpers (helpers/cluster.bash): a 3-node RabbitMQ cluster and
# PostgreSQL primaries with a streaming standby, in sync and async mode;
# their failovers, and the cleanup of clusters when a run is killed. The
# suite starts its clusters itself (no "needs" line): a run of other suites
# pays nothing for them. The times go to the test output (lines "# ...").

load helpers/common
load helpers/cluster
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=300

QQ=discogsography-tableinator-artists

setup_file() {
	# Its tests kill and start the nodes of the cluster: one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	require_bin amqp-fill
	local t0
	# RabbitMQ boots for tens of seconds: the pairs start meanwhile.
	rmq_cluster_prepare main && rmq_cluster_launch || return
	t0=$(_tbl_now)
	pg_pair_start sync sync || return
	echo "# postgres pair (sync) up in $(_tbl_since "$t0") s, while RabbitMQ boots" >&3
	pg_pair_start async async || return
	rmq_cluster_wait || return
	echo "# rabbitmq cluster: booted in $RMQC_BOOT_SECONDS s, joined in $RMQC_JOIN_SECONDS s" >&3
}

teardown_file() {
	rmqc_stop
	local p
	for p in sync async; do
		pg_pair_use "$p" && pg_pair_stop
	done
}

teardown() {
	local i
	# A test that failed with a node down must not take the next ones down.
	for i in 1 2 3; do
		rmqc_alive "$i" || rmqc_start_again "$i"
	done
	[[ -z ${reaped_dir-} ]] || "$TBL_ROOT/tests/helpers/reaper" --now "$reaped_dir"
}

# fill N: publish N artist bodies {"id":"1"} ... with confirms to node 1.
fill() {
	seq 1 "$1" | sed 's/.*/{"id":"&","name":"a"}/' >"$BATS_TEST_TMPDIR/in"
	run -0 --separate-stderr env AMQP_CONNECTION="${RMQC_URLS%%,*}" amqp-fill -t artists \
		"$BATS_TEST_TMPDIR/in"
	assert_contains "$stderr" "\"published\":$1,\"confirmed\":$1,\"nacked\":0"
}

# consume N NODE: the ids of N messages consumed from QQ on node NODE, sorted.
consume() {
	local url
	url=$(cut -d, -f"$2" <<<"$RMQC_URLS")
	# The bodies one after the other, which jq reads as a stream.
	with_timeout 60 amqp-consume --url "$url" -q "$QQ" -c "$1" -p 500 cat \
		>"$BATS_TEST_TMPDIR/out" || return
	jq -r .id "$BATS_TEST_TMPDIR/out" | sort -n
}

# members N: "node state" of QQ's members as node N sees them.
members() {
	rmqc_queues "$1" -q quorum_status --vhost / "$QQ" --formatter json |
		jq -r '.[] | "\(.["Node Name"]) \(.["Raft State"])"' | sort
}

@test "rabbitmq cluster: three nodes on their own ports, joined, one epmd of their own" {
	run -0 rmqc_ctl 2 -q cluster_status --formatter json
	assert_equal "$(tr ' ' '\n' <<<"$RMQC_NODES" | sort)" \
		"$(jq -r '.running_nodes[]' <<<"$output" | sort)"
	assert_equal 3 "$(jq '.disk_nodes | length' <<<"$output")"
	run -0 epmd -port "$(<"$RMQC_DIR/epmd.port")" -names
	for n in $RMQC_NODES; do
		assert_line "name ${n%@*} at port $(sed -n 's/^RABBITMQ_DIST_PORT=//p' \
			"$RMQC_DIR/n${n:1:1}/env")"
	done
	# Every node answers AMQP on its own port, with the tbl user.
	IFS=, read -ra urls <<<"$RMQC_URLS"
	assert_equal 3 "${#urls[@]}"
	for i in 0 1 2; do
		p=$(cut -d' ' -f$((i + 1)) <<<"$RMQC_PORTS")
		assert_equal "amqp://tbl:tblsecret@127.0.0.1:$p/%2F" "${urls[i]}"
		run -0 amqp-declare-queue --url "${urls[i]}" -q "probe$i"
		amqp-delete-queue --url "${urls[i]}" -q "probe$i"
	done
}

@test "rabbitmq cluster: a quorum queue declared on node 1 has three members; what node 1 confirmed, node 3 delivers" {
	fill 200
	run -0 members 1
	assert_output - <<-EOF
		c1-main@localhost leader
		c2-main@localhost follower
		c3-main@localhost follower
	EOF
	run -0 rmqc_leader "$QQ"
	assert_output 1
	run -0 consume 200 3
	assert_output "$(seq 1 200)"
	run -2 amqp-get --url "$(cut -d, -f3 <<<"$RMQC_URLS")" -q "$QQ"
	assert_output ''
}

@test "rabbitmq cluster: kill -9 of the leader: a new one within seconds, no confirmed message lost, the node rejoins" {
	fill 500
	leader=$(rmqc_leader "$QQ")
	# Watch and consume from a node that stays.
	((survivor = leader == 3 ? 2 : 3))
	rmqc_leader_watch "$survivor" "$QQ"
	rmqc_kill "$leader"
	t0=$RMQC_KILLED_AT
	run ! rmqc_alive "$leader"
	seen=$(rmqc_leader_changed 30)
	read -r new at <<<"$seen"
	election=$(awk -v a="$t0" -v b="$at" 'BEGIN { printf "%.3f", b - a }')
	echo "# leader node $leader killed: node $survivor saw node $new lead after $election s" >&3
	((new != leader))
	awk -v e="$election" 'BEGIN { exit !(e < 5) }'

	run -0 consume 500 "$survivor"
	assert_output "$(seq 1 500)"
	echo "# 500 confirmed messages consumed from node $survivor, $(_tbl_since "$t0") s after the kill" >&3

	t1=$(_tbl_now)
	rmqc_start_again "$leader"
	echo "# node $leader started again and booted in $(_tbl_since "$t1") s" >&3
	run -0 rmqc_ctl "$survivor" -q cluster_status --formatter json
	assert_equal 3 "$(jq '.running_nodes | length' <<<"$output")"
	# Back as a member of the queue, following the new leader.
	wait_until 60 eval '[[ $(members "$survivor" | grep -c " follower$") == 2 ]]'
	run -0 members "$survivor"
	assert_line "c$leader-main@localhost follower"
	assert_line "c$new-main@localhost leader"
	echo "# node $leader follows again $(_tbl_since "$t1") s after its start" >&3
}

# failover MODE: a writer commits a row at a time on the primary of pair
# MODE; kill -9 of the primary, promote the standby, and a client on both
# hosts writes again; the old primary rejoins. Sets lost: acknowledged
# commits missing on the new primary.
failover() {
	pg_pair_use "$1"
	pg_newdb
	psqlq -c 'CREATE TABLE t (v int PRIMARY KEY)'
	(seq 1 1000000 | sed 's/.*/INSERT INTO t VALUES (&);/' |
		psql -X -v ON_ERROR_STOP=1 -d "$POSTGRES_DATABASE") >"$BATS_TEST_TMPDIR/acked" 2>&1 3>&- &
	writer=$!
	wait_until 30 eval '(($(psqlq -c "SELECT count(*) FROM t") >= 300))'
	old=$PGPAIR_PRIMARY old_port=$PGPAIR_PRIMARY_PORT
	if [[ $1 == sync ]]; then
		# As a standby made from a copy of the primary's settings has it:
		# promoted, it would wait for a synchronous standby for ever.
		pg_pair_psql standby -c "ALTER SYSTEM SET synchronous_standby_names = '$old'" \
			-c 'SELECT pg_reload_conf()' >/dev/null
	fi

	pg_pair_kill_primary
	# The client of the tools: both hosts, the first that takes writes,
	# retrying from the kill on; it notes when its first write committed.
	client 20 >"$BATS_TEST_TMPDIR/client" 2>&1 3>&- &
	client_pid=$!
	pg_pair_promote
	promoted=${EPOCHREALTIME/,/.}
	[[ $PGPAIR_PRIMARY != "$old" && -z $PGPAIR_STANDBY ]]
	wait "$client_pid" || flunk <"$BATS_TEST_TMPDIR/client"
	read -r port wrote <"$BATS_TEST_TMPDIR/client"
	assert_equal "$PGPAIR_PRIMARY_PORT" "$port"
	echo "# $1: kill -9 of the primary: pg_pair_promote returned after" \
		"$(awk -v a="$PGPAIR_KILLED_AT" -v b="$promoted" 'BEGIN { printf "%.3f", b - a }') s," \
		"a multi-host client wrote after" \
		"$(awk -v a="$PGPAIR_KILLED_AT" -v b="$wrote" 'BEGIN { printf "%.3f", b - a }') s" >&3
	# However busy the machine: the client needs no more than 2 s once
	# the standby is promoted.
	awk -v a="$promoted" -v b="$wrote" 'BEGIN { exit !(b - a < 2) }'

	wait "$writer" || true
	acked=$(grep -c '^INSERT 0 1$' "$BATS_TEST_TMPDIR/acked")
	kept=$(psqlq -c "SELECT count(*) FROM t WHERE v BETWEEN 1 AND $acked")
	lost=$((acked - kept))
	echo "# $1: $acked commits acknowledged before the kill, $lost of them lost" >&3

	t2=$(_tbl_now)
	pg_pair_rejoin_old_primary
	echo "# $1: the old primary rejoined (CHECKPOINT, pg_rewind, start) in $(_tbl_since "$t2") s" >&3
	assert_equal "$old" "$PGPAIR_STANDBY"
	assert_equal "$old_port" "$PGPAIR_STANDBY_PORT"
	run -0 pg_pair_psql primary -c "SELECT application_name, state, sync_state FROM pg_stat_replication"
	assert_output "$old|streaming|$1"
	psqlq -c 'INSERT INTO t VALUES (-1)'
	pg_pair_wait_replay 30
	run -0 pg_pair_psql standby -c 'SELECT count(*) FROM t WHERE v = -1' -c 'SELECT pg_is_in_recovery()'
	assert_output $'1\nt'
	grep -q 'rewinding from last common checkpoint' "$PGPAIR_DIR/$old/rewind.log"
}

# client SECONDS: write a row through PGPAIR_CONNINFO until it commits;
# print the server's port and when it committed. The write is idempotent:
# an attempt given up on may still commit (a commit that waited for a
# synchronous standby, released later).
client() {
	local deadline=$((SECONDS + $1)) port
	until port=$(PGPASSWORD=$POSTGRES_PASSWORD timeout 5 psql -XAtq -v ON_ERROR_STOP=1 \
		"$PGPAIR_CONNINFO dbname=$POSTGRES_DATABASE" \
		-c 'INSERT INTO t VALUES (0) ON CONFLICT DO NOTHING' -c 'SELECT inet_server_port()' \
		2>/dev/null); do
		((SECONDS < deadline)) || {
			echo "no write through $PGPAIR_CONNINFO in $1 s"
			return 1
		}
		sleep 0.02
	done
	echo "$port ${EPOCHREALTIME/,/.}"
}

@test "postgres pair: the standby streams (sync and async) and has what the primary wrote" {
	for mode in sync async; do
		pg_pair_use "$mode"
		assert_equal "$mode" "$PGPAIR_MODE"
		assert_equal "n1 n2" "$PGPAIR_PRIMARY $PGPAIR_STANDBY"
		assert_equal "127.0.0.1:$PGPAIR_PORT1,127.0.0.1:$PGPAIR_PORT2" "$PGPAIR_ADDRESS"
		assert_equal "127.0.0.1:$PGPAIR_PORT1" "$POSTGRES_ADDRESS"
		assert_equal "$PGPAIR_DIR/n1/sock" "$PGHOST"
		run -0 pg_pair_psql primary -c "SELECT application_name, state, sync_state FROM pg_stat_replication"
		assert_output "n2|streaming|$mode"
		run -0 pg_pair_psql primary -c 'SHOW synchronous_standby_names'
		assert_output "$([[ $mode == async ]] || echo n2)"
		run -0 pg_pair_psql standby -c 'SHOW synchronous_standby_names'
		assert_output ''
		pg_newdb
		psqlq -c "CREATE TABLE t AS SELECT 'on the primary' AS v"
		pg_pair_wait_replay 30
		run -0 pg_pair_psql standby -c 'SELECT v FROM t' -c 'SELECT pg_is_in_recovery()'
		assert_output $'on the primary\nt'
		# The multi-host client with tbl's password: the primary, not the standby.
		run -0 env PGPASSWORD="$POSTGRES_PASSWORD" psql -XAtq "$PGPAIR_CONNINFO dbname=$POSTGRES_DATABASE" \
			-c 'SELECT current_user, inet_server_port(), pg_is_in_recovery()'
		assert_output "tbl|$PGPAIR_PORT1|f"
	done
}

@test "postgres pair, sync: kill -9 and promote: the client writes again in under 2 s, nothing acknowledged is lost, the old primary follows" {
	failover sync
	assert_equal 0 "$lost"
}

@test "postgres pair, sync: a clean switchover (pg_pair_stop_primary, promote, rejoin) swaps the roles" {
	pg_pair_use sync
	old=$PGPAIR_PRIMARY new=$PGPAIR_STANDBY
	pg_newdb
	psqlq -c 'CREATE TABLE t AS SELECT 1 AS v'
	pg_pair_stop_primary
	run ! pg_running
	t0=$(_tbl_now)
	pg_pair_promote
	assert_equal "$new" "$PGPAIR_PRIMARY"
	pg_pair_rejoin_old_primary
	echo "# switchover: promote and rejoin in $(_tbl_since "$t0") s" >&3
	assert_equal "$old" "$PGPAIR_STANDBY"
	run -0 pg_pair_psql primary -c "SELECT application_name, state, sync_state FROM pg_stat_replication"
	assert_output "$old|streaming|sync"
	psqlq -c 'INSERT INTO t VALUES (2)'
	pg_pair_wait_replay 30
	run -0 pg_pair_psql standby -c 'SELECT string_agg(v::text, $$ $$ ORDER BY v) FROM t'
	assert_output '1 2'
}

@test "postgres pair, async: kill -9 and promote: the client writes again in under 2 s, the old primary follows" {
	failover async
}

@test "cleanup: the reaper of a killed run stops its clusters and removes its directory" {
	reaped_dir=$(mktemp -d /tmp/tableinator-test.XXXXXX)
	chmod 711 "$reaped_dir"
	(
		TBL_TEST_TMP=$reaped_dir
		unset TBL_TIMING_LOG
		rmq_cluster_prepare gone && rmq_cluster_launch && pg_pair_start gone sync
	)
	# The run the reaper watches: killed below as bats would be.
	sleep 600 3>&- &
	run_pid=$!
	setsid "$TBL_ROOT/tests/helpers/reaper" "$run_pid" "$reaped_dir" </dev/null >/dev/null 2>&1 3>&- &
	wait_until 10 test -s "$reaped_dir/reaper.pid"
	wait_until 60 eval '[[ -s $reaped_dir/rmqc-gone/n1/rabbit.pid && -s $reaped_dir/rmqc-gone/n2/rabbit.pid &&
		-s $reaped_dir/rmqc-gone/n3/rabbit.pid ]]'
	pids=()
	for f in "$reaped_dir"/rmqc-gone/{epmd.pid,n?/launcher.pid,n?/rabbit.pid}; do
		pids+=("$(<"$f")")
	done
	for n in n1 n2; do
		pid=$(head -n 1 "$reaped_dir/pgpair-gone/$n/data/postmaster.pid")
		pids+=("$pid" $(pgrep -P "$pid"))
	done
	# epmd, 3 launchers, 3 VMs, 2 postmasters and their children.
	((${#pids[@]} > 9))
	for p in "${pids[@]}"; do
		_tbl_alive "$p"
	done
	SECONDS=0
	kill -KILL "$run_pid"
	wait_until 30 eval '[[ ! -e $reaped_dir ]]'
	echo "# the reaper removed two clusters ${SECONDS} s after the run was killed" >&3
	for p in "${pids[@]}"; do
		run ! _tbl_alive "$p"
	done
	reaped_dir=
}
