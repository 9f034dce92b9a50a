# Helpers of bench/run and bench/scale (sourced after tests/helpers/common.bash,
# with $work set): figures, a PostgreSQL cluster with the server's own
# durability, plain COPY in one or more streams, and CPU seconds per process.

say() { printf '%s\n' "$*"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
rss() { jq -rs "map(select(.peak_rss_kb)) | last | .peak_rss_kb // \"?\"" "$1" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN { if (k == "?" || k == "") print "?"; else printf "%.1f", k / 1024 }'; }
# per100k SECONDS N: seconds per 100,000 of N records.
per100k() { awk -v s="$1" -v n="$2" 'BEGIN { if (s == "") print "?"; else printf "%.2f", s * 100000 / n }'; }

# bench_pg_start: a cluster of its own, with the server's defaults for
# durability (not the test clusters' shortcuts); with BENCH_STATEMENTS=1,
# pg_stat_statements too.
bench_pg_start() {
	pg_start bench >/dev/null || return
	pg_stop >/dev/null
	cat >>"$TBL_PG_DIR/data/postgresql.conf" <<-EOF
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		max_wal_size = 4GB
		shared_buffers = 512MB
	EOF
	if [[ ${BENCH_STATEMENTS:-0} == 1 ]]; then
		cat >>"$TBL_PG_DIR/data/postgresql.conf" <<-EOF
			shared_preload_libraries = 'pg_stat_statements'
			pg_stat_statements.track = all
			track_io_timing = on
		EOF
	fi
	pg_start_again >/dev/null || return
	[[ ${BENCH_STATEMENTS:-0} != 1 ]] ||
		psql -XAtq -d postgres -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
}

# fresh_db NAME: an empty database with the schema applied.
fresh_db() {
	pg_newdb "$1" >/dev/null
	tblload </dev/null 2>/dev/null || { echo "bench: cannot apply the schema" >&2; exit 1; }
}

rows_total() {
	psqlq -c "SELECT (SELECT count(*) FROM artists) + (SELECT count(*) FROM labels) +
		(SELECT count(*) FROM masters) + (SELECT count(*) FROM releases)"
}

# copy_streams DIR N: plain COPY of every table's rows (tblload --copy-out
# files in DIR) in N sessions at once, each one transaction over its share
# of every table's lines.
copy_streams() {
	local d=$1 n=$2 t i pids=() rc=0 args
	if ((n > 1)); then
		for t in artists labels masters releases release_labels release_artists; do
			split -n "l/$n" -d -a 2 "$d/$t.copy" "$d/$t.part."
		done
	fi
	for ((i = 0; i < n; i++)); do
		args=(-c "BEGIN")
		for t in artists labels masters releases release_labels release_artists; do
			if ((n > 1)); then
				args+=(-c "\\copy $t FROM '$(printf '%s/%s.part.%02d' "$d" "$t" "$i")'")
			else
				args+=(-c "\\copy $t FROM '$d/$t.copy'")
			fi
		done
		psql -XAtq -v ON_ERROR_STOP=1 -d "$POSTGRES_DATABASE" "${args[@]}" -c "COMMIT" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	rm -f "$d"/*.part.*
	return $rc
}

# ---- CPU seconds ------------------------------------------------------------------

# _ticks PID: clock ticks of PID and its reaped children (user and system).
_ticks() {
	local f
	[[ -r /proc/$1/stat ]] || { echo 0; return; }
	# The fields after the command name, which may hold spaces: utime is
	# the 12th of them, then stime, cutime, cstime.
	f=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	awk '{ print $12 + $13 + $14 + $15 }' <<<"$f"
}

# _tree_ticks PID: ticks of PID and of each of its children (those that
# ended are in PID's own count, once reaped).
_tree_ticks() {
	local sum c
	sum=$(_ticks "$1")
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		sum=$((sum + $(_ticks "$c")))
	done
	echo "$sum"
}

_pg_pid() { head -n 1 "$TBL_PG_DIR/data/postmaster.pid" 2>/dev/null; }
_rmq_pid() { cat "$TBL_RMQ_DIR/rabbit.pid" 2>/dev/null; }

# cpu_mark: remember the servers' CPU time; cpu_pg_used and cpu_rmq_used
# print the seconds each used since.
cpu_mark() {
	CPU_PG0=$(_tree_ticks "$(_pg_pid)")
	CPU_RMQ0=0
	[[ -z ${TBL_RMQ_DIR-} ]] || CPU_RMQ0=$(_tree_ticks "$(_rmq_pid)")
}

cpu_pg_used() {
	awk -v a="$CPU_PG0" -v b="$(_tree_ticks "$(_pg_pid)")" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f", (b - a) / hz }'
}

cpu_rmq_used() {
	awk -v a="$CPU_RMQ0" -v b="$(_tree_ticks "$(_rmq_pid)")" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.2f", (b - a) / hz }'
}

# cpu_of NAME COMMAND...: run COMMAND (as a stage of a pipeline: a subshell
# of its own) and keep the CPU seconds it used in $work/cpu.NAME.
cpu_of() {
	local name=$1 rc
	shift
	"$@"
	rc=$?
	times >"$work/times.$name"
	awk 'NR == 2 {
		n = split($0, t, " "); s = 0
		for (i = 1; i <= n; i++) { split(t[i], p, "m"); s += p[1] * 60 + p[2] }
		printf "%.2f\n", s }' "$work/times.$name" >"$work/cpu.$name"
	return $rc
}

cpu_read() { cat "$work/cpu.$1" 2>/dev/null; }

# ---- pg_stat_statements (BENCH_STATEMENTS=1) ---------------------------------------

stmt_reset() {
	[[ ${BENCH_STATEMENTS:-0} == 1 ]] || return 0
	psql -XAtq -d postgres -c "SELECT pg_stat_statements_reset()" >/dev/null
}

# stmt_report: the statements that took the most of the server's time since
# stmt_reset, with calls and time per call.
stmt_report() {
	[[ ${BENCH_STATEMENTS:-0} == 1 ]] || return 0
	psql -XAq -F ' | ' -d postgres -P footer=off -c "
		SELECT calls, round(total_exec_time::numeric, 0) AS total_ms,
			round((total_exec_time / calls)::numeric, 3) AS ms_per_call,
			left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS query
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12" | sed 's/^/      /'
}
