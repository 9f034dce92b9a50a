#!/usr/bin/env bats
# scripts/demo (make demo, make demo-stop): servers of its own under a var/
# directory, the sample records through the broker, tableinator until idle,
# the example queries' results; a second start; a stop that leaves nothing.
# No "needs" line: the demo starts its own PostgreSQL and RabbitMQ, and the
# harness none. The tests build on each other, in order.

load helpers/common
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=300

setup_file() {
	require_bin tblxml amqp-fill amqp-drain tblhash tblbatch tblload
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	# In the run's directory: short, reachable by the server users, and the
	# reaper stops what is left there if bats is killed.
	export TBL_DEMO_VAR=$TBL_TEST_TMP/demo TBL_DEMO_TIMEOUT=120
}

teardown_file() {
	demo stop >/dev/null 2>&1 || true
}

# users_of DIR...: the processes whose command line, working directory or
# open files are under a DIR.
users_of() {
	local d pid
	for d; do
		find /proc/[0-9]*/cwd /proc/[0-9]*/fd -maxdepth 1 \( -lname "$d" -o -lname "$d/*" \) \
			2>/dev/null | cut -d/ -f3
		grep -laF -- "$d" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3
	done | sort -un | while read -r pid; do
		if [[ -e /proc/$pid ]]; then
			echo "$pid $(tr '\0' ' ' <"/proc/$pid/cmdline")"
		fi
	done
}

# The psql command the demo printed, run with ARGS.
printed_psql() {
	local cmd
	cmd=$(sed -n 's/^    PostgreSQL:  \(psql postgresql:.*\)$/\1/p' <<<"$demo_output")
	[[ -n $cmd ]] || flunk "no psql command in the output"
	# shellcheck disable=SC2086
	$cmd "$@"
}

counts() {
	printed_psql -XAtq -c "SELECT (SELECT count(*) FROM artists) || ' ' || (SELECT count(*) FROM labels)
		|| ' ' || (SELECT count(*) FROM masters) || ' ' || (SELECT count(*) FROM releases)"
}

xmins() {
	printed_psql -XAtq -c "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM releases"
}

# What the first start of the suite printed, for the later tests.
save_output() {
	printf '%s\n' "$output" >"$TBL_DEMO_VAR/../demo-output"
}
demo_output() {
	demo_output=$(<"$TBL_DEMO_VAR/../demo-output")
}

@test "usage: --help, and 64 without a command or with a wrong one" {
	run -0 demo --help
	assert_line 'usage: demo start | stop | status'
	run -64 demo
	run -64 demo begin
	run -64 demo start now
	[[ ! -e $TBL_DEMO_VAR ]]
	run -0 demo stop
	assert_output "Nothing to stop: no $TBL_DEMO_VAR"
}

@test "start: servers under var/, the records through the exchange, tableinator until idle, the query results, how to connect" {
	SECONDS=0
	run -0 --separate-stderr demo start
	assert_equal "" "$stderr"
	save_output
	demo_output=$output
	((SECONDS < 180))

	for t in artists labels masters releases; do
		assert_line "$(printf '    %-9s %5s messages from %s (the records, then a file_complete)' \
			"$t" 1001 "tests/fixtures/xml/discogs_20200806_$t.xml.gz")"
		assert_line "$(printf '    %-9s 1000 inserted, 0 updated, 0 unchanged, 0 rejected' "$t")"
	done
	assert_line "    rows: artists, labels, masters, releases: 1000, 1000, 1000, 1000"
	# sql/queries.sql: the label with the most releases of the sample, and the last query.
	assert_line " 12 | Large Records          |             7"
	assert_line "  4497858 | Juba, Juba! Alt Det Beste Fra Tiden I N.R.K | Knutsen & Ludvigsen - Alt Det Beste Fra Tiden I NRK! | 148:00"
	if [[ -x $TBL_BINDIR/tblhealth ]]; then
		assert_contains "$output" "==> Health: curl http://127.0.0.1:"
	else
		assert_contains "$output" "tblhealth is not built: no health server"
	fi

	# The printed command connects, as the demo's user.
	run -0 counts
	assert_output "1000 1000 1000 1000"
	run -0 printed_psql -XAtq -c "SELECT current_user, count(*) FROM release_labels GROUP BY 1"
	[[ $output == discogsography\|* ]]

	# The servers run from var/, as their system users when root.
	port=$(sed -n 's/^PGPORT=//p' "$TBL_DEMO_VAR/demo.env")
	assert_equal "$port" "$(sed -n 's/^port = //p' "$TBL_DEMO_VAR/pg/data/postgresql.conf")"
	pid=$(head -n 1 "$TBL_DEMO_VAR/pg/data/postmaster.pid")
	assert_contains "$(tr '\0' ' ' <"/proc/$pid/cmdline")" "-D $TBL_DEMO_VAR/pg/data"
	beam=$(<"$TBL_DEMO_VAR/rmq/rabbit.pid")
	if ((EUID == 0)); then
		assert_equal postgres "$(ps -o user= -p "$pid")"
		assert_equal rabbitmq "$(ps -o user= -p "$beam")"
	fi
	[[ -S $TBL_DEMO_VAR/pg/sock/.s.PGSQL.$port ]]
	grep -qx "$port" "$TBL_DEMO_VAR/ports"

	# tableinator keeps running, idle, for the user to explore.
	run -0 jq -r '"\(.state) \(.pid)"' "$TBL_DEMO_VAR/state/tableinator.json"
	assert_output "idle $(<"$TBL_DEMO_VAR/tableinator.pid")"
	run -0 demo status
	assert_output - <<-EOF
		PostgreSQL:  running, port $port
		RabbitMQ:    running, port $(sed -n 's/^RABBITMQ_NODE_PORT=//p' "$TBL_DEMO_VAR/rmq/env")
		tableinator: running, idle
	EOF
}

@test "start again, after the user added records: the same servers and ports, every sample record unchanged" {
	demo_output
	# As the demo suggests: the tools pointed at its servers by var/demo.env.
	(
		set -a
		source "$TBL_DEMO_VAR/demo.env"
		set +a
		load-dump -q "$FIXTURES/xml/tgmz_discogs_releases.xml.gz" >/dev/null 2>&1
	)
	pg_pid=$(head -n 1 "$TBL_DEMO_VAR/pg/data/postmaster.pid")
	beam=$(<"$TBL_DEMO_VAR/rmq/rabbit.pid")
	old_tableinator=$(<"$TBL_DEMO_VAR/tableinator.pid")
	before=$(xmins)

	run -0 --separate-stderr demo start
	assert_equal "" "$stderr"
	for t in artists labels masters releases; do
		assert_line "$(printf '    %-9s 0 inserted, 0 updated, 1000 unchanged, 0 rejected' "$t")"
	done
	assert_line "    rows: artists, labels, masters, releases: 1000, 1000, 1000, 1011"
	assert_line "$(grep '^    PostgreSQL:  psql ' <<<"$demo_output")"
	assert_equal "$pg_pid" "$(head -n 1 "$TBL_DEMO_VAR/pg/data/postmaster.pid")"
	assert_equal "$beam" "$(<"$TBL_DEMO_VAR/rmq/rabbit.pid")"
	assert_equal "$before" "$(xmins)"
	# The earlier tableinator was stopped; one runs.
	run ! kill -0 "$old_tableinator"
	kill -0 "$(<"$TBL_DEMO_VAR/tableinator.pid")"
}

@test "stop: nothing of the demo runs or uses var/; a start after it brings the data back; stop again" {
	demo_output
	port=$(sed -n 's/^PGPORT=//p' "$TBL_DEMO_VAR/demo.env")
	run -0 --separate-stderr demo stop
	assert_equal "" "$stderr"
	assert_output "Demo stopped: nothing of it runs (its data stays in $TBL_DEMO_VAR)."
	run -0 users_of "$TBL_DEMO_VAR"
	assert_output ""
	run -0 ss -Htln "sport = :$port"
	assert_output ""
	run -3 demo status
	assert_output - <<-EOF
		PostgreSQL:  stopped
		RabbitMQ:    stopped
		tableinator: stopped
	EOF
	run -0 demo stop

	run -0 --separate-stderr demo start
	assert_line "$(printf '    %-9s 0 inserted, 0 updated, 1000 unchanged, 0 rejected' releases)"
	assert_line "$(grep '^    PostgreSQL:  psql ' <<<"$demo_output")"
	run -0 demo stop
	run -0 users_of "$TBL_DEMO_VAR"
	assert_output ""
}

@test "a var/ the server users cannot reach (root, a home of mode 700): the servers' files go to /tmp, linked from var/" {
	((EUID == 0)) || skip "only root runs the servers as other users"
	fb_var=$BATS_TEST_TMPDIR/home/var
	mkdir -p "$fb_var"
	chmod 700 "$BATS_TEST_TMPDIR/home"
	run -0 --separate-stderr env TBL_DEMO_VAR="$fb_var" demo start
	fb_srv=$(dirname "$(readlink "$fb_var/pg")")
	[[ $fb_srv == /tmp/tableinator-demo.* && $(readlink "$fb_var/rmq") == "$fb_srv/rmq" ]]
	assert_line "     in $fb_srv, linked from var/pg and var/rmq)"
	assert_line "    rows: artists, labels, masters, releases: 1000, 1000, 1000, 1000"
	run -0 env TBL_DEMO_VAR="$fb_var" demo stop
	run -0 users_of "$fb_var" "$fb_srv"
	assert_output ""
}

teardown() {
	# The last test's servers live outside the run's directory: never leave them.
	if [[ -n ${fb_var-} ]]; then
		TBL_DEMO_VAR=$fb_var demo stop >/dev/null 2>&1
		[[ ${fb_srv-} == /tmp/tableinator-demo.* ]] && rm -rf "$fb_srv"
	fi
	return 0
}
