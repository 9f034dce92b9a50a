#!/usr/bin/env bats
# No password leaks, even when the configuration is wrong (issue 9): each
# tool and the supervisor run with wrong configurations that hold a
# password found nowhere else, and their stdout, stderr, state files and
# /health and /metrics answers are searched for it. Secrets read from
# POSTGRES_PASSWORD_FILE and AMQP_CONNECTION_FILE never reach an argv or
# an environment. The state files are private (0600).
# needs: postgres rabbitmq

load helpers/common
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload tblhealth
	supervisor_tree
}

setup() {
	T=$BATS_TEST_TMPDIR
	# Unreserved URL characters only: the same text whether escaped or not.
	PW=Lk-$RANDOM$RANDOM-never-shown
	export TBL_STATE_DIR=$T/state
	mkdir -p "$TBL_STATE_DIR" "$T/out"
	N=0
}

teardown() {
	sup_teardown
}

# leaks: flunk if the password is in any file the runs wrote (their
# stdout and stderr, the state files, the supervisor's log, health answers).
leaks() {
	local found
	found=$(grep -r -a -l -F -e "$PW" "$T/out" "$TBL_STATE_DIR" ${LOG:+"$LOG"} 2>/dev/null) || return 0
	flunk "the password is in: $found"$'\n'"$(grep -r -a -h -F -e "$PW" $found | head -n 5)"
}

# try STATUS TOOL [ENV ARGS...] -- [TOOL ARGS...]: run TOOL (stdin
# /dev/null) under env with those arguments; it must exit STATUS. Its
# stdout and stderr go to $T/out, where leaks looks.
try() {
	local want=$1 tool=$2 envs=() rc=0
	shift 2
	while (($#)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	(($#)) && shift
	N=$((N + 1))
	with_timeout 30 env "${envs[@]}" "$tool" "$@" </dev/null >"$T/out/$N.$tool.out" \
		2>"$T/out/$N.$tool.err" || rc=$?
	((rc == want)) || flunk "$tool ${envs[*]}: exit $rc, not $want: $(cat "$T/out/$N.$tool.err")"
}

@test "tblload: every wrong configuration with a password: no message, no state file shows it" {
	local a=127.0.0.1:$PGPORT
	pg_newdb
	printf '%s\n' "$PW" >"$T/pw"
	mkfifo "$T/fifo"
	head -c 70000 /dev/zero | tr '\0' x >"$T/big"
	echo "$PW" >>"$T/big"
	# POSTGRES_ADDRESS written as a URL, or with user:password@ (78 at
	# once: they used to be echoed, or retried with the host in the log and
	# in tblload.json's last_error).
	try 78 tblload POSTGRES_ADDRESS="postgresql://tbl:$PW@$a/db"
	try 78 tblload POSTGRES_ADDRESS="postgres://tbl:$PW@$a"
	try 78 tblload POSTGRES_ADDRESS="tbl:$PW@$a"
	try 78 tblload POSTGRES_ADDRESS="tbl:$PW@127.0.0.1"
	try 78 tblload POSTGRES_ADDRESS="$PW@127.0.0.1"
	try 78 tblload POSTGRES_ADDRESS="127.0.0.1:$PW"
	try 78 tblload POSTGRES_ADDRESS="tbl:$PW"
	try 78 tblload POSTGRES_ADDRESS="[::1]$PW"
	try 78 tblload POSTGRES_ADDRESS="[$PW]:5432"
	try 78 tblload POSTGRES_ADDRESS="127.0.0.1 $PW"
	# The password refused, or sent nowhere (the server is down, or has no
	# TLS while TLS is required).
	try 78 tblload POSTGRES_PASSWORD="$PW"
	try 78 tblload POSTGRES_PASSWORD= POSTGRES_PASSWORD_FILE="$T/pw"
	try 75 tblload POSTGRES_PASSWORD="$PW" POSTGRES_ADDRESS=127.0.0.1:1 -- --retry-max 1
	# Its tblload.json holds the last error.
	cp "$TBL_STATE_DIR/tblload.json" "$T/out/retried.json"
	jq -e '.last_error | contains("Connection refused")' "$T/out/retried.json"
	try 78 tblload POSTGRES_PASSWORD="$PW" POSTGRES_SSLMODE=require
	# A password in a place for something else, with the password itself.
	try 78 tblload POSTGRES_PASSWORD="$PW" POSTGRES_USERNAME="$PW"
	# Bad secret files: the path is named, never what is in them.
	try 78 tblload POSTGRES_PASSWORD="$PW" POSTGRES_PASSWORD_FILE="$T/pw"
	try 78 tblload POSTGRES_PASSWORD= POSTGRES_PASSWORD_FILE="$T/big"
	try 78 tblload POSTGRES_PASSWORD= POSTGRES_PASSWORD_FILE="$T/fifo"
	try 78 tblload POSTGRES_PASSWORD= POSTGRES_PASSWORD_FILE="$T"
	try 78 tblload POSTGRES_PASSWORD= POSTGRES_PASSWORD_FILE="$T/nothing"
	leaks
}

@test "amqp-drain and amqp-fill: every wrong configuration with a password: no message, no state file shows it" {
	local tool h=127.0.0.1:$RMQ_PORT args
	rmq_newvhost
	printf 'amqp://tbl:%s@%s/%s\n' "$PW" "$h" "$RMQ_VHOST" >"$T/url"
	for tool in amqp-drain amqp-fill; do
		[[ $tool == amqp-drain ]] && args=(--check) || args=(--type labels)
		# Refused: the password, the vhost.
		try 78 $tool AMQP_CONNECTION="amqp://tbl:$PW@$h/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqp://tbl:$PW@$h/no-such-vhost" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION= AMQP_CONNECTION_FILE="$T/url" -- "${args[@]}"
		# A '/' in the password, unescaped: the rest of it is no vhost
		# (it used to be logged as part of the "redacted" URL).
		try 78 $tool AMQP_CONNECTION="amqp://tbl:12345/$PW@$h/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqp://tbl:12345?$PW@$h/" -- "${args[@]}"
		# A bad escape in the host (it used to mean localhost), the port,
		# the password.
		try 78 $tool AMQP_CONNECTION="amqp://tbl:$PW@rabbit%zzmq:$RMQ_PORT/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqp://tbl:$PW@127.0.0.1:x$RMQ_PORT/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqp://tbl:%zz$PW@$h/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqps://tbl:$PW@$h/?cafile=$T/nothing" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqp://tbl:$PW@$h/" AMQP_CONNECTION_FILE="$T/url" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION= AMQP_CONNECTION_FILE="$T" -- "${args[@]}"
		# Nobody there; TLS to a port without (no retry mends that).
		try 69 $tool AMQP_CONNECTION="amqp://tbl:$PW@127.0.0.1:1/" -- "${args[@]}"
		try 78 $tool AMQP_CONNECTION="amqps://tbl:$PW@$h/?no_verify_ssl=1" -- "${args[@]}"
	done
	leaks
}

@test "the supervisor: a POSTGRES_ADDRESS with a password stops it at once without showing it" {
	sup_setup
	local a
	for a in "postgresql://tbl:$PW@127.0.0.1:$PGPORT/x" "tbl:$PW@127.0.0.1:$PGPORT" \
		"127.0.0.1:$PW" "tbl:$PW"; do
		POSTGRES_ADDRESS=$a sup_start
		sup_wait 10
		assert_equal 78 "$rc"
		jq -e '.exit_status == 78 and (.event | startswith("POSTGRES_ADDRESS: "))' "$LOG" >/dev/null ||
			flunk "$(cat "$LOG")"
		leaks
	done
	# Both forms of a secret at once; a secret file that is no file.
	echo "$PW" >"$T/pw"
	POSTGRES_PASSWORD_FILE=$T/pw sup_start
	sup_wait 10
	assert_equal 78 "$rc"
	jq -e '.event == "POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are both set: set one of them"' "$LOG"
	AMQP_CONNECTION_FILE=$T/pw sup_start
	sup_wait 10
	assert_equal 78 "$rc"
	jq -e '.event == "AMQP_CONNECTION and AMQP_CONNECTION_FILE are both set: set one of them"' "$LOG"
	local keep=$POSTGRES_PASSWORD
	unset POSTGRES_PASSWORD
	POSTGRES_PASSWORD_FILE=$T sup_start
	sup_wait 10
	assert_equal 78 "$rc"
	jq -e --arg e "POSTGRES_PASSWORD_FILE: $T is not a regular file" '.event == $e' "$LOG"
	export POSTGRES_PASSWORD=$keep
	leaks
}

@test "the supervisor: a refused password, or PostgreSQL down, shows up in no log line, state file or health answer" {
	sup_setup
	local port
	port=$(tbl_free_port)
	# RabbitMQ refuses the password: 78.
	AMQP_CONNECTION=amqp://tbl:$PW@127.0.0.1:$RMQ_PORT/$RMQ_VHOST sup_start
	sup_wait 40
	assert_equal 78 "$rc"
	leaks
	# PostgreSQL is down: tblload retries, with the password in hand, and
	# the health server answers meanwhile.
	samples labels 5 | publish labels
	# tblload gives up soon (75), so that the pipeline can be stopped.
	export HEALTH_CHECK_PORT=$port TBLLOAD_RETRY_MAX=5
	POSTGRES_ADDRESS=127.0.0.1:1 POSTGRES_PASSWORD=$PW sup_start
	wait_until 30 grep -q -s '"retrying"' "$TBL_STATE_DIR/tblload.json"
	wait_until 10 curl -s -o "$T/out/health" "http://127.0.0.1:$port/health"
	curl -s -o "$T/out/metrics" "http://127.0.0.1:$port/metrics"
	[[ -s $T/out/health && -s $T/out/metrics ]]
	leaks
	kill -TERM "$SUP"
	sup_wait 30
	leaks
}

@test "POSTGRES_PASSWORD_FILE and AMQP_CONNECTION_FILE: the supervisor loads, and no argv or environment holds a password" {
	sup_setup
	local pw=$POSTGRES_PASSWORD url=$AMQP_CONNECTION found= p t
	for t in "${TYPES[@]}"; do { samples "$t" 20; file_complete "$t"; } | publish "$t"; done
	printf '%s\r\n' "$pw" >"$T/pg-pw"
	printf '%s\n' "$url" >"$T/amqp-url"
	export POSTGRES_PASSWORD_FILE=$T/pg-pw AMQP_CONNECTION_FILE=$T/amqp-url CONSUMER_CANCEL_DELAY=1
	unset POSTGRES_PASSWORD AMQP_CONNECTION
	sup_start
	# While it loads and goes idle: the argv and environment of the
	# supervisor and of every stage.
	for ((i = 0; i < 100; i++)); do
		for p in "$SUP" $(pipeline_pids); do
			grep -q -a -F -e "$pw" "/proc/$p/cmdline" "/proc/$p/environ" 2>/dev/null &&
				found+=" $p($(cat "/proc/$p/comm" 2>/dev/null))"
		done
		state_is idle && break
		sleep 0.1
	done
	wait_until 30 state_is idle
	assert_equal "20 20 20 20" "$(table_counts)"
	[[ -z $found ]] || flunk "a password in the argv or environment of:$found"
	sup_stops
}

@test "the state files are private: amqp-drain.json and tblload.json are 0600 (lib/state.c)" {
	rmq_newvhost
	pg_newdb
	tblload </dev/null 2>/dev/null
	amqp-drain --until-empty >"$T/capture" 2>/dev/null
	assert_equal 600 "$(stat -c %a "$TBL_STATE_DIR/tblload.json")"
	assert_equal 600 "$(stat -c %a "$TBL_STATE_DIR/amqp-drain.json")"
}
