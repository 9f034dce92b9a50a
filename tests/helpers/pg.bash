# Throwaway PostgreSQL clusters for the tests (sourced by common.bash).
#
# pg_start [NAME]       initdb + start a cluster in $TBL_TEST_TMP/pg-NAME (default
#                       "main", the one setup_suite.bash starts for the run) and
#                       export its variables (below)
# pg_stop [MODE]        stop it (pg_ctl mode: fast, immediate, smart); no-op if stopped
# pg_start_again        start the stopped cluster again, same port and data; no-op if up
# pg_restart            pg_stop + pg_start_again
# pg_stop_for SECONDS   stop now, start again in the background after SECONDS
# pg_running            status 0 when the cluster accepts connections
# pg_newdb [NAME]       create an empty database owned by tbl (default name from
#                       tbl_name) and export POSTGRES_DATABASE
# psqlq ARGS...         psql -XAtq, ON_ERROR_STOP, as superuser through the socket,
#                       on $POSTGRES_DATABASE (postgres if unset)
#
# Exported: PGHOST (socket directory), PGPORT, PGUSER (superuser "postgres",
# trusted on the socket), POSTGRES_ADDRESS=127.0.0.1:PORT, POSTGRES_USERNAME=tbl,
# POSTGRES_PASSWORD=tblsecret (password login over TCP), TBL_PG_DIR, TBL_PG_LOG.

# pg_create, pg_launch, pg_stop, pg_start_again, pg_running: scripts/lib/servers.bash.

pg_start() {
	local name=${1:-main} dir t0
	_tbl_need_run_dir || return
	t0=$(_tbl_now)
	dir=$TBL_TEST_TMP/pg-$name
	if [[ -e $dir ]]; then
		echo "pg_start: cluster '$name' exists; use pg_start_again" >&2
		return 1
	fi
	pg_create "$dir" && pg_launch "$TBL_TEST_TMP/ports" || return
	export POSTGRES_ADDRESS=127.0.0.1:$PGPORT POSTGRES_USERNAME=tbl POSTGRES_PASSWORD=tblsecret
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres \
		-c "CREATE ROLE tbl LOGIN SUPERUSER CREATEDB PASSWORD 'tblsecret'" || return
	_tbl_timing "postgres start ($name)" "$(_tbl_since "$t0")"
}

pg_restart() {
	pg_stop "$@" && pg_start_again
}

pg_stop_for() {
	pg_stop || return
	(
		_tbl_close_fds
		sleep "$1"
		pg_start_again
	) </dev/null >>"$TBL_PG_DIR/restart.log" 2>&1 &
}

pg_newdb() {
	local name=${1:-$(tbl_name)} n=2 base
	base=$name
	while [[ -n $(psql -XAtq -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$name'") ]]; do
		name=${base:0:60}_$((n++))
	done
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE \"$name\" OWNER tbl" || return
	export POSTGRES_DATABASE=$name
}

psqlq() {
	psql -XAtq -v ON_ERROR_STOP=1 -d "${POSTGRES_DATABASE:-postgres}" "$@"
}
