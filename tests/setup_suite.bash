# Once per bats run (bats >= 1.7 finds this file next to the suites): make
# the run's temporary directory, start the servers the selected suites need,
# and stop everything afterwards, also after a failure or Ctrl-C. A reaper in
# a session of its own cleans up if bats itself is killed.
#
# A suite says what it needs with a line "# needs: postgres rabbitmq"; the
# servers are shared by all suites of the run. TBL_NEEDS="postgres rabbitmq"
# (or "none") overrides the scan.

source "$(dirname "${BASH_SOURCE[0]}")/helpers/common.bash"

# The suites selected for this run (bats' own list, filters applied).
_tbl_run_files() {
	if [[ -r ${TESTS_LIST_FILE-} ]]; then
		cut -f1 "$TESTS_LIST_FILE" | sort -u
	elif [[ -n ${BATS_UNIQUE_TEST_FILENAMES-} ]]; then
		printf '%s\n' "${BATS_UNIQUE_TEST_FILENAMES[@]}"
	else
		return 1
	fi
}

_tbl_run_needs() {
	local files=() words w
	if [[ -n ${TBL_NEEDS-} ]]; then
		echo "$TBL_NEEDS"
		return
	fi
	mapfile -t files < <(_tbl_run_files)
	if ((${#files[@]} == 0)); then
		echo "postgres rabbitmq"
		return
	fi
	words=$(sed -n 's/^# needs:\(.*\)/\1/p' "${files[@]}" | tr ', ' '\n\n' | sort -u)
	for w in $words; do
		case $w in
		postgres | rabbitmq) ;;
		*)
			echo "unknown need '$w' in a '# needs:' line (want postgres, rabbitmq)" >&2
			return 1
			;;
		esac
	done
	echo $words
}

# Settings of the machine or the caller that would reach a server or a tool.
_tbl_clean_env() {
	local v
	for v in $(compgen -e); do
		case $v in
		PG* | POSTGRES_* | AMQP_* | RABBITMQ_* | RMQ_* | ERL_* | TBL_PG_DIR | TBL_PG_LOG | TBL_RMQ_DIR) unset "$v" ;;
		esac
	done
	unset LOG_LEVEL HEALTH_CHECK_PORT CONSUMER_CANCEL_DELAY QUEUE_CHECK_INTERVAL \
		STUCK_CHECK_INTERVAL STARTUP_DELAY
}

_tbl_make_run_dir() {
	local base=${TMPDIR:-/tmp}
	# Server users must reach it and socket paths must stay short.
	[[ ${#base} -lt 40 && $(stat -c %a "$base" 2>/dev/null) == 1777 ]] || base=/tmp
	TBL_TEST_TMP=$(mktemp -d "$base/tableinator-test.XXXXXX") || return
	chmod 711 "$TBL_TEST_TMP"
	export TBL_TEST_TMP
}

setup_suite() {
	local needs bats_pid=$BASHPID
	_tbl_clean_env
	needs=$(_tbl_run_needs)
	_tbl_make_run_dir
	setsid "$TBL_ROOT/tests/helpers/reaper" "$bats_pid" "$TBL_TEST_TMP" \
		</dev/null >/dev/null 2>&1 3>&- 4>&- &
	wait_until 5 test -s "$TBL_TEST_TMP/reaper.pid"
	# RabbitMQ boots for seconds: let it do so while PostgreSQL starts.
	if [[ $needs == *rabbitmq* ]]; then
		rmq_prepare && rmq_launch
	fi
	if [[ $needs == *postgres* ]]; then
		pg_start
	fi
	if [[ $needs == *rabbitmq* ]]; then
		rmq_wait
	fi
}

teardown_suite() {
	[[ -n ${TBL_TEST_TMP-} && -d $TBL_TEST_TMP ]] || return 0
	local rc=0 pid
	rmq_stop || rc=1
	pg_stop || rc=1
	read -r pid <"$TBL_TEST_TMP/reaper.pid" 2>/dev/null && kill "$pid" 2>/dev/null
	# Whatever is left (a test's own cluster or node), and the directory.
	"$TBL_ROOT/tests/helpers/reaper" --now "$TBL_TEST_TMP"
	return $rc
}
