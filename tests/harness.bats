#!/usr/bin/env bats
# The test harness itself: the run's throwaway PostgreSQL cluster and
# RabbitMQ node, their helpers, and the cleanup after a run however it ends.
# needs: postgres rabbitmq

load helpers/common
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	# Its tests stop and start the shared servers: never two at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
}

teardown() {
	# A test that failed with a server stopped must not take the run down.
	pg_start_again
	rmq_start_again
}

tcp_psql() {
	env PGPASSWORD="$1" psql -XAtq -w -h 127.0.0.1 -p "$PGPORT" -U tbl -d postgres -c "$2"
}

@test "postgres: answers on the exported socket and port, from this run's directory" {
	[[ $PGHOST == "$TBL_TEST_TMP/pg-main/sock" && -S $PGHOST/.s.PGSQL.$PGPORT ]]
	assert_equal "127.0.0.1:$PGPORT" "$POSTGRES_ADDRESS"
	run -0 psqlq -c 'SHOW data_directory'
	assert_output "$TBL_TEST_TMP/pg-main/data"
	run -0 psqlq -c "SELECT current_user, setting FROM pg_settings WHERE name = 'listen_addresses'"
	assert_output "postgres|127.0.0.1"
	run -0 psqlq -c "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes', 'port')"
	assert_output "fsync=off full_page_writes=off port=$PGPORT synchronous_commit=off"
	run -0 psqlq -c 'SHOW max_connections'
	((output >= 100))
}

@test "postgres: tbl logs in over TCP with its password; a wrong or no password is refused" {
	run -0 tcp_psql "$POSTGRES_PASSWORD" 'SELECT current_user, inet_server_addr(), inet_server_port()'
	assert_output "tbl|127.0.0.1|$PGPORT"
	run -2 tcp_psql wrong 'SELECT 1'
	assert_contains "$output" 'password authentication failed for user "tbl"'
	run -2 tcp_psql '' 'SELECT 1'
	assert_contains "$output" 'no password supplied'
	run -0 psqlq -c "SELECT rolcreatedb FROM pg_roles WHERE rolname = 'tbl'"
	assert_output t
}

@test "postgres: pg_newdb gives every call a new empty database owned by tbl" {
	pg_newdb
	first=$POSTGRES_DATABASE
	assert_equal "$(tbl_name)" "$first"
	run -0 psqlq -c "SELECT current_database(), pg_get_userbyid(datdba),
		(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public')
		FROM pg_database WHERE datname = current_database()"
	assert_output "$first|tbl|0"
	psqlq -c 'CREATE TABLE t (id int)'

	pg_newdb
	assert_equal "${first}_2" "$POSTGRES_DATABASE"
	run -0 psqlq -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
	assert_output 0
	run -0 env PGPASSWORD=tblsecret psql -XAtq -h 127.0.0.1 -p "$PGPORT" -U tbl \
		-d "$POSTGRES_DATABASE" -c 'CREATE TABLE mine (id int)' -c 'SELECT count(*) FROM mine'
	assert_output 0
}

@test "postgres: pg_stop stops it; pg_start_again and pg_restart bring it back, same port, same data" {
	pg_newdb
	psqlq -c "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')"
	port=$PGPORT
	pg_stop
	run ! pg_running
	run -2 psqlq -c 'SELECT 1'
	run -2 tcp_psql tblsecret 'SELECT 1'
	assert_contains "$output" 'Connection refused'
	pg_stop # a no-op now

	pg_start_again
	assert_equal "$port" "$PGPORT"
	run -0 psqlq -c 'SELECT v FROM kept'
	assert_output before
	run -0 tcp_psql tblsecret 'SELECT 1'

	pid=$(head -n 1 "$TBL_PG_DIR/data/postmaster.pid")
	pg_restart
	assert_equal "$port" "$PGPORT"
	[[ $(head -n 1 "$TBL_PG_DIR/data/postmaster.pid") != "$pid" ]]
	run -0 psqlq -c 'SELECT v FROM kept'
	assert_output before
}

@test "postgres: pg_stop immediate is a crash the cluster recovers from; pg_stop_for comes back alone" {
	pg_newdb
	# Committed, then flushed: synchronous_commit is off, so a crash may
	# lose the last commits that are not (see tests/README.md).
	psqlq -c "CREATE TABLE kept AS SELECT 1 AS v" -c CHECKPOINT
	pg_stop immediate
	pg_start_again
	grep -q 'database system was interrupted\|was not properly shut down' "$TBL_PG_LOG"
	run -0 psqlq -c 'SELECT v FROM kept'
	assert_output 1

	pg_stop_for 2
	run ! pg_running
	wait_until 30 pg_running
	run -0 psqlq -c 'SELECT v FROM kept'
}

@test "postgres: pg_start NAME gives a test a cluster of its own" {
	local main_port=$PGPORT
	# In a subshell: the exports point at the new cluster only there.
	(
		pg_start own
		[[ $PGPORT != "$main_port" && $PGHOST == "$TBL_TEST_TMP/pg-own/sock" ]]
		pg_newdb
		run -0 psqlq -c 'SHOW data_directory'
		assert_output "$TBL_TEST_TMP/pg-own/data"
		run -0 tcp_psql tblsecret 'SELECT current_user'
		assert_output tbl
		pg_stop
	)
	run -0 psqlq -c 'SHOW port'
	assert_output "$main_port"
	[[ ! -e $TBL_TEST_TMP/pg-own/data/postmaster.pid ]]
}

@test "rabbitmq: rmqctl reaches this run's node, listening on 127.0.0.1 only, with its own epmd" {
	run -0 rmqctl -q status --formatter json
	jq -e --arg node "$RMQ_NODENAME" --argjson port "$RMQ_PORT" '
		.pid > 0 and
		([.listeners[] | select(.protocol == "amqp")] == [{"interface": "127.0.0.1",
			"node": $node, "port": $port, "protocol": "amqp", "purpose": "AMQP 0-9-1 and AMQP 1.0"}]) and
		all(.listeners[]; .interface == "127.0.0.1")' <<<"$output"
	run -0 rmqctl -q eval 'rabbit_mnesia:dir().'
	assert_output "\"$TBL_TEST_TMP/rmq-main/mnesia/$RMQ_NODENAME\""
	run -0 epmd -port "$RMQ_EPMD_PORT" -names
	assert_line "name ${RMQ_NODENAME%@*} at port $(sed -n 's/^RABBITMQ_DIST_PORT=//p' "$TBL_RMQ_DIR/env")"
	[[ -s $RMQ_LOG ]]
	grep -q "started TCP listener on 127.0.0.1:$RMQ_PORT" "$RMQ_LOG"
}

@test "rabbitmq: tbl declares, publishes and gets over AMQP; a wrong password is refused" {
	q=$(tbl_name q)
	run -0 amqp-declare-queue --url "$AMQP_CONNECTION" -d -q "$q"
	assert_output "$q"
	amqp-publish --url "$AMQP_CONNECTION" -r "$q" -p -b 'hello, world'
	run -0 rmqctl -q list_queues name messages
	assert_line "$q	1"
	run -0 amqp-get --url "$AMQP_CONNECTION" -q "$q"
	assert_output 'hello, world'
	run -0 rmqctl -q list_queues name messages
	assert_line "$q	0"

	run ! amqp-declare-queue --url "${AMQP_CONNECTION/tblsecret/wrong}" -q "$q"
	wait_until 10 grep -q "user 'tbl' - invalid credentials" "$RMQ_LOG"
}

@test "rabbitmq: rmq_newvhost gives a test its own vhost" {
	rmq_newvhost
	assert_equal "$(tbl_name v)" "$RMQ_VHOST"
	assert_equal "amqp://tbl:tblsecret@127.0.0.1:$RMQ_PORT/$RMQ_VHOST" "$AMQP_CONNECTION"
	amqp-declare-queue --url "$AMQP_CONNECTION" -q only-here
	run -0 rmqctl -q list_queues -p "$RMQ_VHOST" --no-table-headers name
	assert_output only-here
	run -0 rmqctl -q list_queues -p / --no-table-headers name
	refute_line only-here
}

@test "rabbitmq: rmq_restart keeps a durable queue and its persistent messages" {
	q=$(tbl_name q)
	port=$RMQ_PORT
	amqp-declare-queue --url "$AMQP_CONNECTION" -d -q "$q"
	for m in one two three; do
		amqp-publish --url "$AMQP_CONNECTION" -r "$q" -p -b "$m"
	done
	rmq_restart
	assert_equal "$port" "$RMQ_PORT"
	run -0 rmqctl -q list_queues name durable messages
	assert_line "$q	true	3"
	run -0 amqp-get --url "$AMQP_CONNECTION" -q "$q"
	assert_output one
}

@test "rabbitmq: rmq_stop stops the node and its epmd; rmq_start_again starts both" {
	rmq_stop
	run ! rmq_running
	run ! epmd -port "$RMQ_EPMD_PORT" -names
	run ! amqp-declare-queue --url "$AMQP_CONNECTION" -q nobody
	rmq_start_again
	rmq_running
	amqp-declare-queue --url "$AMQP_CONNECTION" -q somebody
}

@test "with_timeout stops a program or a function that runs too long" {
	slow() { sleep 30; }
	SECONDS=0
	run -124 with_timeout 1 sleep 30
	assert_contains "$output" "did not finish within 1s"
	run -124 with_timeout 1 slow
	((SECONDS < 10))
	run -0 with_timeout 5 echo done
	assert_output done
}

# Run a suite of tests/fixtures/harness in a bats of its own, in the
# background, in a process group of its own ($nested is its pid and pgid),
# with a clean bats environment and SIGINT handled as in a terminal even if
# this run ignores it (perl-base is essential on Debian); its report file
# is $report.
start_nested() {
	local clean=() v
	report=$BATS_TEST_TMPDIR/report
	for v in $(compgen -e | grep '^BATS_') TBL_TIMING_LOG; do clean+=(-u "$v"); done
	setsid perl -e '$SIG{INT} = $SIG{QUIT} = "DEFAULT"; exec { $ARGV[0] } @ARGV or die "$ARGV[0]: $!"' \
		env "${clean[@]}" TBL_NESTED_REPORT="$report" bats --setup-suite-file \
		"$TBL_ROOT/tests/setup_suite.bash" "$FIXTURES/harness/$1.bats" \
		</dev/null >"$BATS_TEST_TMPDIR/bats.out" 2>&1 3>&- &
	nested=$!
}

# The servers of the nested run, from its report: dir and pids.
nested_servers() {
	wait_until 90 test -s "$report"
	mapfile -t servers <"$report"
	[[ ${servers[0]} == */tableinator-test.* && -d ${servers[0]} ]]
	for pid in "${servers[@]:1}"; do kill -0 "$pid"; done
}

gone() {
	local pid
	[[ ! -e ${servers[0]} ]] || return 1
	for pid in "${servers[@]:1}"; do
		! kill -0 "$pid" 2>/dev/null || return 1
	done
}

@test "cleanup: Ctrl-C of a run stops its servers and removes its directory" {
	start_nested servers
	nested_servers
	kill -INT -- "-$nested"
	wait_until 60 gone
	wait_until 10 eval '! kill -0 "$nested" 2>/dev/null'
	grep -q 'Received SIGINT' "$BATS_TEST_TMPDIR/bats.out"
}

@test "cleanup: kill -9 of a run's whole process group leaves no server behind" {
	start_nested servers
	nested_servers
	SECONDS=0
	kill -KILL -- "-$nested"
	wait_until 60 gone
	# The reaper looks every second.
	((SECONDS < 10))
}

@test "a run whose suites need no server starts none" {
	SECONDS=0
	start_nested noservers
	wait_until 30 eval '! kill -0 "$nested" 2>/dev/null'
	run -0 cat "$report"
	assert_output <<-EOF
		unset unset
		reaper.pid
	EOF
	((SECONDS < 15))
	grep -q '^ok 1 ' "$BATS_TEST_TMPDIR/bats.out"
}
