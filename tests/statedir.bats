#!/usr/bin/env bats
# The state directory and the supervisor's lifecycle against a hostile local
# user (docs/state.md): a state directory is used only when it is private
# (a directory, not a link, owned by us, writable by nobody else), every
# state file is written through a fresh temporary file, a value read from a
# state file never reaches shell arithmetic, the stages end soon after a
# kill -9 of the supervisor, and one state directory serves one supervisor.
# needs: rabbitmq postgres

load helpers/common
load helpers/broker
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin amqp-drain tblhash tblbatch tblload tblhealth
	supervisor_tree
}

setup() {
	sup_setup
	SUP2=
}

teardown() {
	if [[ -n ${SUP2-} ]] && kill -0 "$SUP2" 2>/dev/null; then
		kill -TERM "$SUP2"
		wait_pid "$SUP2" 30 || true
	fi
	sup_teardown
	if [[ -n ${planted-} ]]; then
		rm -rf -- "$planted"
	fi
}

# as_nobody COMMAND...: COMMAND as uid/gid 65534 (root only).
as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
}

need_root() {
	((EUID == 0)) || skip "needs root (setpriv to another user)"
}

# refused_by_all DIR REASON: the supervisor, tblload, amqp-drain and
# tblhealth each exit 78 at once, naming DIR and REASON, and write nothing
# into DIR.
refused_by_all() {
	local dir=$1 why=$2 before
	before=$(ls -A "$dir" 2>/dev/null | sort)
	TBL_STATE_DIR=$dir run -78 --separate-stderr with_timeout 10 "$TBL_SUPERVISOR"
	assert_contains "$stderr" "TBL_STATE_DIR $dir: $why"
	TBL_STATE_DIR=$dir run -78 --separate-stderr with_timeout 10 tblload </dev/null
	assert_contains "$stderr" "TBL_STATE_DIR $dir: $why"
	TBL_STATE_DIR=$dir run -78 --separate-stderr with_timeout 10 \
		amqp-drain --acks "$BATS_TEST_TMPDIR/acks" </dev/null
	assert_contains "$stderr" "TBL_STATE_DIR $dir: $why"
	run -78 --separate-stderr with_timeout 10 tblhealth --port 0 -d "$dir"
	assert_contains "$stderr" "state directory $dir: $why"
	assert_equal "$before" "$(ls -A "$dir" 2>/dev/null | sort)"
}

@test "a state directory another user created is refused, by every tool (78, naming it and why)" {
	need_root
	# A shared directory like /tmp, which the other user can reach.
	planted=$(mktemp -d /tmp/tbl-statedir.XXXXXX)
	chmod 1777 "$planted"
	local d=$planted/theirs
	as_nobody mkdir -m 0700 "$d"
	refused_by_all "$d" "owned by uid 65534, not by this user"
	# Even when they made it look private and empty: it is theirs.
	rm -rf "$d"
	as_nobody mkdir -m 0777 "$d"
	refused_by_all "$d" "owned by uid 65534"
}

@test "a state directory writable by group or others is refused, even our own" {
	local d=$BATS_TEST_TMPDIR/open
	mkdir -m 0777 "$d"
	chmod 0777 "$d"
	refused_by_all "$d" "writable by group or others (mode 0777)"
	chmod 0770 "$d"
	refused_by_all "$d" "writable by group or others (mode 0770)"
	chmod 1733 "$d"
	refused_by_all "$d" "writable by group or others"
}

@test "a symbolic link as state directory is refused, even to a private directory of ours" {
	local d=$BATS_TEST_TMPDIR/real
	mkdir -m 0700 "$d"
	ln -s "$d" "$BATS_TEST_TMPDIR/link"
	refused_by_all "$BATS_TEST_TMPDIR/link" "is a symbolic link"
	ln -s "$BATS_TEST_TMPDIR/nowhere" "$BATS_TEST_TMPDIR/dangling"
	refused_by_all "$BATS_TEST_TMPDIR/dangling" "is a symbolic link"
	: >"$BATS_TEST_TMPDIR/file"
	refused_by_all "$BATS_TEST_TMPDIR/file" "not a directory"
}

@test "a missing state directory is created 0700, its state files are 0600" {
	export TBL_STATE_DIR=$BATS_TEST_TMPDIR/new/state
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	samples artists 20 | publish artists
	wait_until 20 counts_are "20 0 0 0"
	wait_until 10 test -e "$TBL_STATE_DIR/amqp-drain.json" -a -e "$TBL_STATE_DIR/tblload.json"
	assert_equal 700 "$(stat -c %a "$TBL_STATE_DIR")"
	local f
	for f in tableinator amqp-drain tblload; do
		assert_equal 600 "$(stat -c %a "$TBL_STATE_DIR/$f.json")"
	done
	sup_stops
	# tblload alone creates it the same way.
	TBL_STATE_DIR=$BATS_TEST_TMPDIR/alone run -0 tblload --dry-run </dev/null
	TBL_STATE_DIR=$BATS_TEST_TMPDIR/alone2 run -0 with_timeout 20 tblload </dev/null
	assert_equal 700 "$(stat -c %a "$BATS_TEST_TMPDIR/alone2")"
	assert_equal 600 "$(stat -c %a "$BATS_TEST_TMPDIR/alone2/tblload.json")"
}

@test "without TBL_STATE_DIR or XDG_RUNTIME_DIR: no fixed name in /tmp, a fresh private directory" {
	need_root
	# What another user would plant: /tmp/tableinator-$UID, open to all.
	local trap_dir=/tmp/tableinator-$UID dir
	[[ ! -e $trap_dir && ! -L $trap_dir ]] || skip "$trap_dir exists on this machine"
	as_nobody mkdir -m 0777 "$trap_dir"
	planted=$trap_dir
	unset TBL_STATE_DIR XDG_RUNTIME_DIR RUNTIME_DIRECTORY
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	samples labels 10 | publish labels
	wait_until 20 counts_are "0 10 0 0"
	assert_equal "" "$(ls -A "$trap_dir")"
	dir=$(jlog -r 'select(.event == "🚀 Starting tableinator") | .state_dir')
	[[ $dir != "$trap_dir" && -d $dir && ! -L $dir && -O $dir ]] || flunk "state in '$dir'"
	assert_equal 700 "$(stat -c %a "$dir")"
	[[ -e $dir/tableinator.json ]] || flunk "no tableinator.json in $dir"
	sup_stops
	# Made for this run, it is removed with it.
	[[ ! -e $dir ]] || flunk "$dir left behind"
}

@test "temporary state files follow no link planted under a predictable name" {
	local d=$BATS_TEST_TMPDIR/state victim=$BATS_TEST_TMPDIR/victim
	mkdir -m 0700 "$d"
	echo precious >"$victim"
	export TBL_STATE_DIR=$d
	# The names the supervisor and tblload once used: <name>.tmp.<pid> and
	# .<name>.<pid>; exec keeps the pid, so it can be known in advance.
	bash -c 'ln -s "$1" "$2/tableinator.json.tmp.$$"; ln -s "$1" "$2/.tableinator.json.tmp"
		exec "$3"' _ "$victim" "$d" "$TBL_SUPERVISOR" 2>"$LOG" 3>&- &
	SUP=$!
	wait_until 20 logged "🚀 Pipeline started"
	wait_until 10 test -s "$d/tableinator.json"
	sup_stops
	TBL_STATE_DIR=$d run -0 with_timeout 20 bash -c \
		'ln -s "$1" "$2/.tblload.json.$$"; exec tblload </dev/null' _ "$victim" "$d"
	assert_equal precious "$(cat "$victim")"
	[[ -s $d/tblload.json ]] || flunk "tblload wrote no state"
}

@test "a state file with shell syntax in a number runs nothing: the supervisor parses no JSON" {
	local marker=$BATS_TEST_TMPDIR/pwned now
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	wait_until 10 test -s "$TBL_STATE_DIR/amqp-drain.json"
	# amqp-drain stops writing its file; what is there now is what a
	# hostile writer put there.
	kill -STOP "$(stage_pid amqp-drain)"
	now=$EPOCHREALTIME
	# (A variable that is set, so that set -u does not stop bash first.)
	local bad='SECONDS[$(touch '$marker')]'
	jq -n -c --arg bad "$bad" --argjson now "${now/,/.}" \
		'{tool:"amqp-drain",pid:1,started:$now,heartbeat:$now,state:"consuming",
		  unsettled:$bad,acked:$bad,rejected:$bad,deliveries:$bad}' \
		>"$TBL_STATE_DIR/.hostile"
	mv "$TBL_STATE_DIR/.hostile" "$TBL_STATE_DIR/amqp-drain.json"
	sleep 3
	kill -CONT "$(stage_pid amqp-drain)"
	[[ ! -e $marker ]] || flunk "a command from the state file ran"
	sup_stops
}

# consumers: consumers on this test's vhost.
consumers() {
	rmqctl -q list_consumers -p "$RMQ_VHOST" --no-table-headers queue_name | grep -c . || true
}
consumers_are() { [[ $(consumers) == "$1" ]]; }
gone() {
	local p
	for p; do
		! kill -0 "$p" 2>/dev/null || return 1
	done
}

@test "kill -9 of the supervisor: consumers gone within seconds, every stage and tblhealth end; a new supervisor takes over alone" {
	export HEALTH_CHECK_PORT POSTGRES_BATCH_SIZE=50
	HEALTH_CHECK_PORT=$(tbl_free_port)
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	wait_until 20 consumers_are 4
	wait_until 10 curl -sf "http://127.0.0.1:$HEALTH_CHECK_PORT/health" -o /dev/null
	local drain health stages t0
	drain=$(stage_pid amqp-drain)
	health=$(pgrep -P "$SUP" -x tblhealth | head -n 1)
	[[ -n $health ]] || flunk "no tblhealth"
	stages=$(pipeline_pids)
	t0=$EPOCHREALTIME
	kill -KILL "$SUP"
	wait "$SUP" 2>/dev/null || true
	wait_until 5 consumers_are 0
	echo "# consumers gone $(since "${t0/,/.}" "${EPOCHREALTIME/,/.}") s after the kill" >&3
	wait_until 10 gone "$drain" "$health"
	# shellcheck disable=SC2086
	wait_until 15 gone $stages
	echo "# stages gone $(since "${t0/,/.}" "${EPOCHREALTIME/,/.}") s after the kill" >&3
	# A new supervisor on the same directory and port: one pipeline, one
	# health server, and it loads.
	: >"$LOG"
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	wait_until 20 consumers_are 4
	wait_until 10 curl -sf "http://127.0.0.1:$HEALTH_CHECK_PORT/health" -o /dev/null
	samples masters 100 | publish masters
	wait_until 20 counts_are "0 0 100 0"
	assert_equal 1 "$(connections)"
	sleep 2
	! logged "⚠️ tblhealth stopped; starting it again in 1 s" || flunk "tblhealth restarted"
	sup_stops
}

@test "one state directory, one supervisor: a second one waits for the lock, then gives up with 75" {
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	wait_until 20 connections_are 1
	STUCK_CHECK_INTERVAL=1 run -75 --separate-stderr with_timeout 20 "$TBL_SUPERVISOR"
	assert_contains "$stderr" "is in use by another tableinator"
	assert_equal 1 "$(connections)"
	sup_stops
}

@test "tblhealth that cannot listen (port taken) is started again with a backoff, not every second" {
	export HEALTH_CHECK_PORT
	HEALTH_CHECK_PORT=$(tbl_free_port)
	# Something else holds the port.
	perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "0.0.0.0",
		LocalPort => $ARGV[0], Listen => 5, ReuseAddr => 1) or die "$!"; sleep 60' \
		"$HEALTH_CHECK_PORT" &
	local holder=$!
	sleep 0.5
	sup_start
	wait_until 20 logged "🚀 Pipeline started"
	sleep 8
	kill "$holder"
	local n
	n=$(jlog -r 'select(.event | startswith("⚠️ tblhealth stopped")) | .event' | wc -l)
	((n >= 2 && n <= 5)) || flunk "tblhealth was started again $n times in 8 s"
	# Once the port is free it serves again.
	wait_until 40 curl -sf "http://127.0.0.1:$HEALTH_CHECK_PORT/health" -o /dev/null
	sup_stops
}
