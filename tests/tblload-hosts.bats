#!/usr/bin/env bats
# tblload's connection: POSTGRES_ADDRESS listing several hosts (libpq's
# multi-host connection, the one that takes writes), libpq's PG* variables
# when it is unset, a server that turns read-only under a connection
# (25006: transient, on a new connection), POSTGRES_SYNC_REQUIRED. On the
# run's single server; a real primary with its standby is in
# e2e-cluster-postgres.bats.
# needs: postgres

load helpers/common
load helpers/replay
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin tblload tblbatch tblhash
}

setup() {
	pg_newdb
	T=$BATS_TEST_TMPDIR
	DEAD=$(tbl_free_port)
	zcat "$FIXTURES/messages/discogs_20200806_artists.ndjson.gz" | head -n 20 |
		tblhash --type artists | tblbatch >"$T/in"
}

teardown() {
	if [[ -n ${READ_ONLY-} ]]; then
		psqlq -d postgres -c 'SET default_transaction_read_only = off' \
			-c 'ALTER SYSTEM RESET default_transaction_read_only' -c 'SELECT pg_reload_conf()' >/dev/null
	fi
}

@test "POSTGRES_ADDRESS lists several hosts: one that does not answer is passed over, and the one used is logged" {
	run -0 --separate-stderr env POSTGRES_ADDRESS="127.0.0.1:$DEAD,localhost:$PGPORT" tblload <"$T/in"
	where '.event == "🐘 PostgreSQL server"' '.server == $s' --arg s "localhost:$PGPORT" <<<"$stderr"
	assert_contains "$stderr" "database $POSTGRES_DATABASE on 127.0.0.1:$DEAD,localhost:$PGPORT"
	assert_equal 20 "$(psqlq -c 'SELECT count(*) FROM artists')"
	# IPv6 in brackets, a port left out (5432): as libpq wants them.
	run -0 --separate-stderr env POSTGRES_ADDRESS="[::1]:$DEAD,127.0.0.1:$PGPORT,[::1]" tblload </dev/null
	assert_contains "$stderr" "on [::1]:$DEAD,127.0.0.1:$PGPORT,[::1]:5432"
	# One host alone: as before, no read-write check, nothing more logged.
	run -0 --separate-stderr tblload </dev/null
	[[ $stderr != *"PostgreSQL server"* ]]
}

@test "a POSTGRES_ADDRESS list that cannot be right: 78, the value not echoed" {
	for a in "127.0.0.1:1,,127.0.0.1:2" "127.0.0.1:1,h:x" "h,[::1" "h:1,[::1]x" "h:1,user:S3cr3t@h" "h,"; do
		run -78 --separate-stderr env POSTGRES_ADDRESS="$a" tblload </dev/null
		where '.level == "error"' '.event | startswith("POSTGRES_ADDRESS: ")' <<<"$stderr"
		[[ $stderr != *S3cr3t* && $stderr != *"$a"* ]] || flunk "the value is in the message: $stderr"
	done
	run -78 --separate-stderr env POSTGRES_ADDRESS="$(printf 'h%.0s,' {1..16})h" tblload </dev/null
	where '.level == "error"' '.event == "POSTGRES_ADDRESS: more than 16 hosts"' <<<"$stderr"
}

@test "POSTGRES_ADDRESS unset: libpq's PGHOST, PGPORT and PGTARGETSESSIONATTRS" {
	run -0 --separate-stderr env -u POSTGRES_ADDRESS PGHOST="127.0.0.1,127.0.0.1" PGPORT="$DEAD,$PGPORT" \
		PGTARGETSESSIONATTRS=read-write tblload <"$T/in"
	assert_contains "$stderr" "database $POSTGRES_DATABASE on 127.0.0.1,127.0.0.1"
	assert_equal 20 "$(psqlq -c 'SELECT count(*) FROM artists')"
	# A read-write session is what the server cannot give: libpq refuses it.
	psqlq -c "ALTER DATABASE $POSTGRES_DATABASE SET default_transaction_read_only = on"
	run -75 --separate-stderr env -u POSTGRES_ADDRESS PGHOST=127.0.0.1 PGPORT="$PGPORT" \
		PGTARGETSESSIONATTRS=read-write TBLLOAD_RETRY_MAX=1 tblload </dev/null
	assert_contains "$stderr" "read-only"
}

@test "a server that turns read-only under the connection (25006) is left for a new connection, not retried on, not fatal" {
	# Written once, then every session that takes its setting from the
	# server's files is read-only (as on a primary demoted to a standby);
	# new sessions to this database are not.
	mkfifo "$T/fifo"
	TBLLOAD_RETRY_MAX=60 tblload <"$T/fifo" 2>"$T/log" 3>&- &
	pid=$!
	exec 4>"$T/fifo"
	wait_until 30 grep -q "Connected to PostgreSQL" "$T/log"
	READ_ONLY=1
	psqlq -c "ALTER DATABASE $POSTGRES_DATABASE SET default_transaction_read_only = off"
	psqlq -d postgres -c 'ALTER SYSTEM SET default_transaction_read_only = on' -c 'SELECT pg_reload_conf()' >/dev/null
	sleep 0.5
	cat "$T/in" >&4
	exec 4>&-
	wait_pid "$pid" 60
	assert_equal 0 "$rc"
	where '.event == "🔄 PostgreSQL unavailable, retrying"' '.error | startswith("25006 ")' <"$T/log"
	assert_equal 20 "$(psqlq -c 'SELECT count(*) FROM artists')"
}

@test "POSTGRES_SYNC_REQUIRED=true: a server without a synchronous standby is refused (78); a bad value is 78 before connecting" {
	run -78 --separate-stderr env POSTGRES_SYNC_REQUIRED=true tblload <"$T/in"
	where '.level == "error"' '.event | contains("POSTGRES_SYNC_REQUIRED: the server (\($s)) commits without waiting for a standby: synchronous_standby_names is empty")' \
		--arg s "127.0.0.1:$PGPORT" <<<"$stderr"
	assert_equal 0 "$(psqlq -c "SELECT count(*) FROM pg_tables WHERE tablename = 'artists'")"
	run -78 --separate-stderr env POSTGRES_SYNC_REQUIRED=yes POSTGRES_ADDRESS=127.0.0.1:$DEAD tblload </dev/null
	where '.level == "error"' '.event == "POSTGRES_SYNC_REQUIRED: '\''yes'\'' is not true or false"' <<<"$stderr"
	run -0 --separate-stderr env POSTGRES_SYNC_REQUIRED=false tblload <"$T/in"
}
