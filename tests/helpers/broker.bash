# Helpers of the broker-path suites (amqp-fill, amqp-drain, tableinator,
# e2e-broker): exact queue counts, the broker log of this test, the sample
# bodies, the pipeline started by hand, table counts and checksums.
# Loaded after helpers/common: `load helpers/broker`.

MSG=$FIXTURES/messages
TYPES=(artists labels masters releases)
QPREFIX=discogsography-tableinator-

# --- queues ---------------------------------------------------------------

# qstat: "queue<TAB>ready<TAB>unacked" for every queue of $RMQ_VHOST, sorted.
# Asked of the queues themselves (the quorum queue's state machine, the
# classic queue's process), so exact at the time of the call: list_queues
# shows counts of quorum queues that lag up to 5 s behind.
qstat() {
	rmqctl -q eval '
		F = fun(Q) ->
			{resource, _, queue, N} = amqqueue:get_name(Q),
			case amqqueue:get_type(Q) of
			rabbit_quorum_queue ->
				L = amqqueue:get_pid(Q),
				{ok, {_, R}, _} = ra:local_query(L, fun rabbit_fifo:query_messages_ready/1),
				{ok, {_, C}, _} = ra:local_query(L, fun rabbit_fifo:query_messages_checked_out/1),
				[N, R, C];
			_ ->
				[{_, R}, {_, C}] = rabbit_amqqueue:info(Q, [messages_ready, messages_unacknowledged]),
				[N, R, C]
			end
		end,
		io:format("~s", [[io_lib:format("~s\t~b\t~b~n", F(Q)) ||
			Q <- rabbit_amqqueue:list(<<"'"$RMQ_VHOST"'">>)]]),
		ok.' | grep -v '^ok$' | sort
}

# queue_counts: for each type, "<type> <messages> <dead-lettered>" where
# messages counts ready and unacked ones; a missing queue counts as "-".
queue_counts() {
	local st t
	st=$(qstat) || return
	for t in "${TYPES[@]}"; do
		awk -v q="$QPREFIX$t" -v t="$t" -F'\t' '
			$1 == q { m = $2 + $3 } $1 == q ".dlq" { d = $2 + $3 }
			END { print t, (m == "" ? "-" : m), (d == "" ? "-" : d) }' <<<"$st"
	done
}

# assert_queues "A L M R" ["DA DL DM DR"]: the messages in the four queues
# and (default all 0) in their dead-letter queues, in type order.
assert_queues() {
	local want=() m=($1) d=(${2:-0 0 0 0}) i
	for i in 0 1 2 3; do
		want+=("${TYPES[i]} ${m[i]} ${d[i]}")
	done
	assert_equal "$(printf '%s\n' "${want[@]}")" "$(queue_counts)"
}

# wait_queues SECONDS "A L M R" ["DA DL DM DR"]: until the queues hold that.
wait_queues() {
	local secs=$1
	shift
	wait_until "$secs" _queues_are "$@" || assert_queues "$@"
}

_queues_are() {
	assert_queues "$@" 2>/dev/null
}

# --- the broker log -----------------------------------------------------------

# rmq_log_mark: remember where the broker log ends; rmq_log_since prints what
# the broker logged after that.
rmq_log_mark() {
	RMQ_LOG_MARK=$(stat -c %s "$RMQ_LOG")
}

rmq_log_since() {
	tail -c +$((${RMQ_LOG_MARK:-0} + 1)) "$RMQ_LOG"
}

# channel_errors: the channel errors of this test's vhost since the mark
# (a delivery tag settled twice or unknown closes the channel: RabbitMQ logs
# "Channel error on connection ... vhost: 'V'" and the exception, e.g.
# "precondition_failed: unknown delivery tag 5", on the next line).
channel_errors() {
	rmq_log_since | grep -a -A1 -F "vhost: '$RMQ_VHOST'" | grep -a -E -i \
		"channel error|channel exception|precondition_failed|unknown delivery tag" || true
}

has_channel_errors() {
	[[ -n $(channel_errors) ]]
}

assert_no_channel_error() {
	local errs
	errs=$(channel_errors)
	[[ -z $errs ]] || flunk "the broker logged channel errors:"$'\n'"$errs"
}

# --- messages -------------------------------------------------------------------

# samples TYPE [N]: the first N (default all 1000) compact bodies of TYPE.
samples() {
	if [[ -n ${2-} ]]; then
		zcat "$MSG/discogs_20200806_$1.ndjson.gz" | head -n "$2"
	else
		zcat "$MSG/discogs_20200806_$1.ndjson.gz"
	fi
}

# python_samples TYPE: the 100 Python-dialect bodies of TYPE (one a line).
python_samples() {
	zcat "$MSG/python-dialect_20200806_$1.ndjson.gz"
}

# file_complete TYPE: the Rust extractor's last message of a file.
file_complete() {
	printf '{"type":"file_complete","data_type":"%s","timestamp":"2026-02-01T12:00:00.123456789Z","total_processed":1000,"file":"discogs_20200806_%s.xml.gz"}\n' "$1" "$1"
}

# publish TYPE [amqp-fill options]: publish stdin's bodies as TYPE; fail
# unless amqp-fill exits 0.
publish() {
	local t=$1
	shift
	amqp-fill --type "$t" "$@" 2>>"$BATS_TEST_TMPDIR/amqp-fill.log" ||
		flunk "amqp-fill --type $t $* exited $?: $(tail -n 3 "$BATS_TEST_TMPDIR/amqp-fill.log")"
}

# publish_samples [N] [amqp-fill options]: N (default 1000) compact bodies
# of every type.
publish_samples() {
	local n=${1:-} t
	(($#)) && shift
	for t in "${TYPES[@]}"; do
		samples "$t" $n | publish "$t" "$@" || return
	done
}

# --- processes and connections --------------------------------------------------

# wait_pid PID SECONDS: wait for PID (a child of the test) to end; its exit
# status in $rc (124 if it was still running at the deadline: then it is
# killed, with its process group if it leads one). Not through bats' run:
# a subshell cannot wait for the test's children.
wait_pid() {
	local deadline=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 0.1
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1"
		wait "$1" 2>/dev/null
		rc=124
		return 0
	fi
	rc=0
	wait "$1" || rc=$?
}

# connections: the broker's connections to this test's vhost.
connections() {
	rmqctl -q list_connections --no-table-headers vhost | grep -cxF "$RMQ_VHOST" || true
}

connections_are() {
	[[ $(connections) == "$1" ]]
}

# supervisor_tree: the supervisor runs the tools beside it or in
# ../build/bin; give it a tree whose build/bin is the build under test
# (TBL_BINDIR, e.g. build-asan/bin). Exports TBL_SUPERVISOR. For setup_file.
supervisor_tree() {
	local t=$BATS_FILE_TMPDIR/tree
	mkdir -p "$t/scripts" "$t/build"
	ln -sfn "$TBL_ROOT/scripts/tableinator" "$t/scripts/tableinator"
	ln -sfn "$TBL_BINDIR" "$t/build/bin"
	export TBL_SUPERVISOR=$t/scripts/tableinator
}

# --- the supervisor (scripts/tableinator, as set up by supervisor_tree) -----------
# Its stderr, with that of the tools, goes to $LOG; its state files to
# $TBL_STATE_DIR.

# sup_setup: a test's own vhost and database, and the supervisor's
# environment with short delays (a test exports what it wants otherwise).
sup_setup() {
	rmq_newvhost
	rmq_log_mark
	pg_newdb
	export STARTUP_DELAY=0 HEALTH_CHECK_PORT=0 CONSUMER_CANCEL_DELAY=1 QUEUE_CHECK_INTERVAL=1 \
		STUCK_CHECK_INTERVAL=10 POSTGRES_BATCH_FLUSH_INTERVAL=0.2 TBL_STATE_DIR=$BATS_TEST_TMPDIR/state
	unset POSTGRES_BATCH_SIZE POSTGRES_BATCH_MODE LOG_LEVEL TBLLOAD_RETRY_MAX TBLLOAD_JOBS \
		TBLLOAD_MERGE
	LOG=$BATS_TEST_TMPDIR/tableinator.log
	SUP=
}

# sup_teardown: stop a supervisor the test left running, and its pipelines.
sup_teardown() {
	local p
	if [[ -n ${SUP-} ]] && kill -0 "$SUP" 2>/dev/null; then
		kill -TERM "$SUP"
		sup_wait 30 || true
	fi
	for p in $(pipeline_pids); do
		kill -KILL "$p" 2>/dev/null || true
	done
	return 0
}

# sup_start: the supervisor in the background ($SUP), stderr to $LOG, in a
# process group of its own (as a terminal would run it: SIGINT not ignored).
sup_start() {
	setsid env --default-signal=INT "$TBL_SUPERVISOR" 2>"$LOG" 3>&- &
	SUP=$!
}

# sup_wait SECONDS: wait for the supervisor; its status in $rc.
sup_wait() {
	wait_pid "$SUP" "$1"
}

# sup_stops: SIGTERM ends the supervisor with 0 within 20 s, leaving no
# process of a pipeline; its log is all JSON, and the broker saw no channel
# error.
sup_stops() {
	kill -TERM "$SUP"
	sup_wait 20
	assert_equal 0 "$rc"
	assert_pipeline_gone
	assert_json_log
	assert_no_channel_error
}

# state [JQ]: the supervisor's state file (or a jq expression of it).
state() {
	jq -c "${1:-.}" "$TBL_STATE_DIR/tableinator.json"
}

state_is() {
	[[ -r $TBL_STATE_DIR/tableinator.json && $(state .state) == "\"$1\"" ]]
}

# jlog [JQ OPTION...] FILTER: FILTER over the supervisor's log, the JSON lines
# of it (assert_json_log checks there are no others).
jlog() {
	jq -R -c 'fromjson? // empty' "$LOG" | jq "$@"
}

# jlog_all FILTER: every log line FILTER selects has COND; at least one is
# selected. FILTER is "SELECT | COND".
jlog_all() {
	jlog -s -e "map($1) | length > 0 and all" >/dev/null || flunk "not so in the log: $1"
}

# logged EVENT [N]: the supervisor's log holds EVENT (at least N times).
logged() {
	(($(jlog -r --arg e "$1" 'select(.event == $e) | .event' 2>/dev/null | wc -l) >= ${2:-1}))
}

# pipeline_pids: the pids of every pipeline the supervisor started.
pipeline_pids() {
	[[ -r ${LOG-} ]] || return 0
	jlog -r 'select(.event == "🚀 Pipeline started") | .amqp_drain, .tblhash, .tblbatch, .tblload' 2>/dev/null
}

# stage_pid STAGE: that stage of the current pipeline.
stage_pid() {
	jlog -r --arg s "${1//-/_}" 'select(.event == "🚀 Pipeline started") | .[$s]' | tail -n 1
}

# log_time EVENT [N]: when the Nth (default first) EVENT was logged, in
# epoch seconds.
log_time() {
	jlog -r --arg e "$1" 'select(.event == $e) | .timestamp |
		capture("^(?<s>.*)\\.(?<f>[0-9]+)Z$") | (.s + "Z" | fromdate) + ("0." + .f | tonumber)' |
		sed -n "${2:-1}p"
}

# since A B: seconds from A to B.
since() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

# assert_json_log: every line the supervisor and the tools wrote on stderr
# is a JSON object.
assert_json_log() {
	local bad
	bad=$(jq -R -r '. as $l | try (fromjson | if type == "object" then empty else $l end) catch $l' "$LOG")
	[[ -z $bad ]] || flunk "stderr lines that are not JSON objects:"$'\n'"$bad"
}

# assert_pipeline_gone: no process of any pipeline the supervisor started.
assert_pipeline_gone() {
	local p left=
	for p in $(pipeline_pids); do
		kill -0 "$p" 2>/dev/null && left+=" $p($(cat "/proc/$p/comm" 2>/dev/null))"
	done
	[[ -z $left ]] || flunk "processes of the pipeline left:$left"
}

# --- the database ----------------------------------------------------------------

# table_counts: "artists labels masters releases" row counts.
table_counts() {
	psqlq -c "SELECT (SELECT count(*) FROM artists) || ' ' || (SELECT count(*) FROM labels)
		|| ' ' || (SELECT count(*) FROM masters) || ' ' || (SELECT count(*) FROM releases)"
}

# counts_are "A L M R": the tables hold that many rows (for wait_until).
counts_are() {
	[[ $(table_counts 2>/dev/null) == "$1" ]]
}

# rows_at_least N: the four tables hold N rows or more together.
rows_at_least() {
	local c
	c=$(table_counts 2>/dev/null) || return
	(($(tr ' ' '+' <<<"$c") >= $1))
}

# table_sums: per table, its row count and the md5 of every row (hash and
# data of the record tables, the link tables whole), in a fixed order.
table_sums() {
	local t out=
	for t in "${TYPES[@]}"; do
		out+="$t $(psqlq -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(id || ':' || hash, ',' ORDER BY id), ''))
			|| ' ' || md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM $t t")"$'\n'
	done
	for t in release_labels release_artists; do
		out+="$t $(psqlq -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM $t t")"$'\n'
	done
	printf '%s' "$out"
}

# reference_load: the sample bodies of every type loaded without a broker
# into a database of their own (REF_DB), undisturbed; REF_SUMS is its
# table_sums, what a load through the broker must give. For setup_file.
reference_load() {
	local t
	pg_newdb "$(tbl_name ref)" || return
	export REF_DB=$POSTGRES_DATABASE
	for t in "${TYPES[@]}"; do
		samples "$t" | tblhash --type "$t" | tblbatch --size 1000 | tblload
	done 2>/dev/null
	REF_SUMS=$(table_sums)
	export REF_SUMS
	[[ $(table_counts) == "1000 1000 1000 1000" ]]
}

# assert_all_stored: the four tables hold the 1000 records of each type,
# exactly as the undisturbed reference load (reference_load); queues and
# dead-letter queues are empty.
assert_all_stored() {
	local t
	for t in "${TYPES[@]}"; do
		assert_equal "$(fixture_hashes "$t")" \
			"$(psqlq -c "SELECT string_agg(id || ':' || hash, ',' ORDER BY id) FROM $t")"
	done
	assert_equal "$REF_SUMS" "$(table_sums)"
	assert_queues "0 0 0 0" "0 0 0 0"
}

# fixture_hashes TYPE: "id:sha256" of the compact fixture, by id, joined with
# commas (what string_agg(id || ':' || hash) of a fully loaded table gives).
fixture_hashes() {
	samples "$1" | jq -r '"\(.id|tonumber)\t\(.sha256)"' | sort -n -u | awk -F'\t' '
		{ s = s (NR > 1 ? "," : "") $1 ":" $2 } END { printf "%s", s }'
}

# --- the pipeline started by hand -------------------------------------------------

# pipeline_start [amqp-drain options]: amqp-drain | tblhash | tblbatch |
# tblload with the ack FIFO, as the supervisor wires it, in the background;
# PIDS[stage] set, logs in $BATS_TEST_TMPDIR/<stage>.log.
pipeline_start() {
	local d=$BATS_TEST_TMPDIR
	rm -f "$d/acks" "$d/p1" "$d/p2" "$d/p3"
	mkfifo "$d/acks" "$d/p1" "$d/p2" "$d/p3"
	declare -gA PIDS=()
	amqp-drain --acks "$d/acks" "$@" >"$d/p1" 2>>"$d/amqp-drain.log" 3>&- &
	PIDS[amqp-drain]=$!
	tblhash <"$d/p1" >"$d/p2" 2>>"$d/tblhash.log" 3>&- &
	PIDS[tblhash]=$!
	tblbatch <"$d/p2" >"$d/p3" 2>>"$d/tblbatch.log" 3>&- &
	PIDS[tblbatch]=$!
	tblload --acks "$d/acks" <"$d/p3" 2>>"$d/tblload.log" 3>&- &
	PIDS[tblload]=$!
}

# pipeline_wait SECONDS: wait for the four stages; STATUS="a h b l" (their
# exit statuses, 124 for one still running at the deadline, then killed).
pipeline_wait() {
	local deadline=$((SECONDS + $1)) s st=() rc
	for s in amqp-drain tblhash tblbatch tblload; do
		while kill -0 "${PIDS[$s]}" 2>/dev/null && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if kill -0 "${PIDS[$s]}" 2>/dev/null; then
			kill -KILL "${PIDS[$s]}" 2>/dev/null
			wait "${PIDS[$s]}" 2>/dev/null
			st+=(124)
		else
			rc=0
			wait "${PIDS[$s]}" || rc=$?
			st+=("$rc")
		fi
	done
	STATUS=${st[*]}
}

# pipeline_kill: end what is left of a pipeline (teardown).
pipeline_kill() {
	local s
	for s in "${!PIDS[@]}"; do
		kill -KILL "${PIDS[$s]}" 2>/dev/null
	done
	return 0
}

# drain_log: amqp-drain's log of this test.
drain_log() {
	cat "$BATS_TEST_TMPDIR/amqp-drain.log"
}

# drain_summary: amqp-drain's last line (its counts when it ended).
drain_summary() {
	tail -n 1 "$BATS_TEST_TMPDIR/amqp-drain.log"
}
