# Helpers of the failover suites (e2e-cluster-*.bats), loaded after
# helpers/common, helpers/broker, helpers/replay and helpers/cluster: a backlog of
# generated records and its undisturbed load, tableinator instances side by
# side, a vhost of the cluster, its queues as a node sees them, and the
# channel errors of all three nodes.
#
# backlog_make N              $BACKLOG: N envelopes (bench/gen-records), for setup_file
# backlog_reference           load it without a broker into a database of its own: REF_SUMS,
#                             REF_COUNTS (table_sums, table_counts)
# assert_backlog_stored       the tables hold the backlog exactly as REF_SUMS says
# backlog_missing             "type id" of each backlog record missing from the tables
# row_total                   the rows of the four record tables together
# rmqc_vhost                  a new vhost on the cluster; RMQ_VHOST, RMQC_VURLS (the nodes'
#                             URLs for it); marks the three node logs
# rmqc_list N...              AMQP_CONNECTION of the nodes N... in that order
# rmqc_qstat N, rmqc_queue_counts N, rmqc_assert_queues N "A L M R" ["DA DL DM DR"],
# rmqc_wait_queues N SECS "A L M R" ["DA DL DM DR"]
#                             helpers/broker's qstat & co. asked of node N, for RMQ_VHOST
# rmqc_assert_no_channel_error  no channel error of RMQ_VHOST in any node's log
# inst_start K [VAR=VALUE...] instance K: scripts/tableinator with its own state
#                             directory and log ($INST_DIR/K), the environment plus VARs
# inst_log K FILTER           jq FILTER over instance K's JSON log
# inst_where K SELECT TEST    where (helpers/replay) over instance K's log
# inst_kill K                 kill -9 of instance K, supervisor and stages at once
# inst_stop K                 SIGTERM; its status in $rc (wait up to 60 s)
# inst_stop_all               stop every instance still running (teardown)
# load_avg                    the machine's load averages, for the suites' "# ..." lines

BACKLOG_RECORDS=${TBL_CLUSTER_RECORDS:-20000}

backlog_make() {
	export BACKLOG=$BATS_FILE_TMPDIR/backlog.ndjson
	"$TBL_ROOT/bench/gen-records" "$FIXTURES/messages" "$1" | head -n "$1" >"$BACKLOG" &&
		[[ $(wc -l <"$BACKLOG") == "$1" ]]
}

# The backlog loaded without a broker, undisturbed: what every load through
# the broker must give. Its database is REF_DB.
backlog_reference() {
	pg_newdb "$(tbl_name ref)" || return
	export REF_DB=$POSTGRES_DATABASE
	tblhash <"$BACKLOG" | tblbatch --size 1000 | tblload 2>/dev/null || return
	REF_SUMS=$(table_sums) REF_COUNTS=$(table_counts)
	export REF_SUMS REF_COUNTS
}

assert_backlog_stored() {
	local sums
	sums=$(table_sums)
	[[ $sums == "$REF_SUMS" ]] ||
		flunk "the tables differ from the undisturbed load:"$'\n'"$(diff <(echo "$REF_SUMS") <(echo "$sums"))"
}

load_avg() {
	uptime | sed 's/.*average: //'
}

# row_total: the rows of the four record tables together.
row_total() {
	local c
	c=$(table_counts) || return
	echo $((${c// /+}))
}

# The ids of the backlog, type by type, that are not in the tables.
backlog_missing() {
	local t
	for t in "${TYPES[@]}"; do
		comm -23 <(jq -r --arg t "$t" 'select(.type == $t) | .body.id | tonumber' "$BACKLOG" | sort -u) \
			<(psqlq -c "SELECT id FROM $t" | sort -u) | sed "s/^/$t /"
	done
}

# --- the cluster ------------------------------------------------------------------

rmqc_vhost() {
	local v p i
	v=$(tbl_name v)
	rmqc_ctl 1 -q add_vhost "$v" >/dev/null &&
		rmqc_ctl 1 -q set_permissions -p "$v" tbl '.*' '.*' '.*' >/dev/null || return
	RMQC_VURLS=
	for p in $RMQC_PORTS; do
		RMQC_VURLS+=${RMQC_VURLS:+,}amqp://tbl:tblsecret@127.0.0.1:$p/$v
	done
	export RMQ_VHOST=$v RMQC_VURLS
	declare -gA RMQC_MARK=()
	for i in 1 2 3; do
		RMQC_MARK[$i]=$(stat -c %s "$(_rmqc_log "$i")")
	done
}

_rmqc_log() {
	echo "$RMQC_DIR/n$1/log/$(_rmqc_nodename "$1").log"
}

rmqc_list() {
	local n out=
	for n; do
		out+=${out:+,}$(cut -d, -f"$n" <<<"$RMQC_VURLS")
	done
	echo "$out"
}

rmqc_qstat() {
	local v=$RMQ_VHOST
	_rmqc_node "$1" || return
	(rmq_use "$RMQC_DIR/n$1" && RMQ_VHOST=$v && qstat)
}

rmqc_queue_counts() {
	local v=$RMQ_VHOST
	_rmqc_node "$1" || return
	(rmq_use "$RMQC_DIR/n$1" && RMQ_VHOST=$v && queue_counts)
}

rmqc_assert_queues() {
	local v=$RMQ_VHOST n=$1
	shift
	_rmqc_node "$n" || return
	(rmq_use "$RMQC_DIR/n$n" && RMQ_VHOST=$v && assert_queues "$@")
}

rmqc_wait_queues() {
	local n=$1 secs=$2
	shift 2
	wait_until "$secs" _rmqc_queues_are "$n" "$@" || rmqc_assert_queues "$n" "$@"
}

_rmqc_queues_are() {
	rmqc_assert_queues "$@" 2>/dev/null
}

# The one channel error expected: amqp-drain asking for a dead-letter queue
# whose node is down (a classic queue; "404 NOT_FOUND - home node ... is
# down or inaccessible"), which the broker logs as a channel error with the
# reason on the next line. Any other, of this vhost, fails.
rmqc_assert_no_channel_error() {
	local i errs=
	for i in 1 2 3; do
		errs+=$(tail -c +$((${RMQC_MARK[$i]:-0} + 1)) "$(_rmqc_log "$i")" | awk -v v="vhost: '$RMQ_VHOST'" '
			held != "" {
				if ($0 !~ /queue\.declare caused a channel exception not_found: home node .* of durable queue .*\.dlq. in vhost .* is down or inaccessible/)
					print held "\n" $0
				held = ""
			}
			index($0, v) { held = $0 }' | grep -a -E -i "channel error|channel exception|precondition_failed|unknown delivery tag" || true)
	done
	[[ -z $errs ]] || flunk "the brokers logged channel errors:"$'\n'"$errs"
}

# --- instances ---------------------------------------------------------------------
# Each runs scripts/tableinator (as supervisor_tree gives it) in a session of
# its own, with its state directory and log in $INST_DIR/K; INST[K] is its pid.

inst_start() {
	local k=$1 d
	shift
	INST_DIR=${INST_DIR:-$BATS_TEST_TMPDIR/inst}
	d=$INST_DIR/$k
	mkdir -p "$d" && chmod 700 "$d" || return
	declare -gA INST
	setsid env --default-signal=INT STARTUP_DELAY=0 HEALTH_CHECK_PORT=0 CONSUMER_CANCEL_DELAY=1 \
		QUEUE_CHECK_INTERVAL=1 STUCK_CHECK_INTERVAL=10 POSTGRES_BATCH_FLUSH_INTERVAL=0.2 \
		TBL_STATE_DIR="$d/state" "$@" "$TBL_SUPERVISOR" 2>"$d/log" 3>&- &
	INST[$k]=$!
}

inst_log() {
	jq -R -c 'fromjson? // empty' "$INST_DIR/$1/log" | jq "${@:2}"
}

# inst_where K SELECT TEST [JQ ARGS...]: helpers/replay's where, over
# instance K's log.
inst_where() {
	jq -R -c 'fromjson? // empty' "$INST_DIR/$1/log" | where "${@:2}" >/dev/null
}

# The pids of instance K: the supervisor and every stage it started.
_inst_pids() {
	echo "${INST[$1]}"
	inst_log "$1" -r 'select(.event == "🚀 Pipeline started") | .amqp_drain, .tblhash, .tblbatch, .tblload' \
		2>/dev/null
	pgrep -s "${INST[$1]}" 2>/dev/null
}

inst_kill() {
	local p pids
	pids=$(_inst_pids "$1" | sort -u)
	for p in $pids; do
		kill -STOP "$p" 2>/dev/null
	done
	for p in $pids; do
		kill -KILL "$p" 2>/dev/null
	done
	wait "${INST[$1]}" 2>/dev/null || true
}

inst_stop() {
	kill -TERM "${INST[$1]}" 2>/dev/null
	wait_pid "${INST[$1]}" 60
}

inst_stop_all() {
	local k
	for k in "${!INST[@]}"; do
		kill -0 "${INST[$k]}" 2>/dev/null && inst_stop "$k"
		inst_kill "$k"
	done
	return 0
}
