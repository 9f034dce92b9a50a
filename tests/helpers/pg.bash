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

TBL_PG_BINDIR=${TBL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}

_pg_ctl() {
	(
		_tbl_close_fds
		cd "$TBL_PG_DIR" && _tbl_as postgres "$TBL_PG_BINDIR/pg_ctl" -D "$TBL_PG_DIR/data" "$@"
	)
}

pg_start() {
	local name=${1:-main} dir port try t0
	_tbl_need_run_dir || return
	t0=$(_tbl_now)
	dir=$TBL_TEST_TMP/pg-$name
	if [[ -e $dir ]]; then
		echo "pg_start: cluster '$name' exists; use pg_start_again" >&2
		return 1
	fi
	mkdir -p "$dir/sock"
	_tbl_own postgres "$dir"
	if ! (cd "$dir" && _tbl_as postgres "$TBL_PG_BINDIR/initdb" -D "$dir/data" \
		-U postgres -E UTF8 --no-locale --no-sync -A trust) >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		return 1
	fi
	cat >"$dir/data/pg_hba.conf" <<-EOF
		local all all trust
		host  all all 127.0.0.1/32 scram-sha-256
	EOF
	cat >>"$dir/data/postgresql.conf" <<-EOF
		# tests/helpers/pg.bash: a throwaway cluster, fast and unsafe
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$dir/sock'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 200
		max_wal_size = 1GB
		password_encryption = 'scram-sha-256'
		log_min_messages = warning
		log_connections = off
	EOF
	export TBL_PG_DIR=$dir TBL_PG_LOG=$dir/postgres.log
	# A port can be taken between choosing and binding it: try another.
	for try in 1 2 3; do
		port=$(tbl_free_port) || return
		echo "port = $port" >>"$dir/data/postgresql.conf"
		_pg_ctl start -w -t 60 -l "$TBL_PG_LOG" >/dev/null && break
		grep -q 'could not bind' "$TBL_PG_LOG" 2>/dev/null && ((try < 3)) && continue
		tail -n 20 "$TBL_PG_LOG" >&2
		return 1
	done
	export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres
	export POSTGRES_ADDRESS=127.0.0.1:$port POSTGRES_USERNAME=tbl POSTGRES_PASSWORD=tblsecret
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres \
		-c "CREATE ROLE tbl LOGIN SUPERUSER CREATEDB PASSWORD 'tblsecret'" || return
	_tbl_timing "postgres start ($name)" "$(_tbl_since "$t0")"
}

pg_running() {
	[[ -n ${TBL_PG_DIR-} ]] &&
		"$TBL_PG_BINDIR/pg_isready" -q -h "$PGHOST" -p "$PGPORT" -t 5
}

pg_stop() {
	local t0
	[[ -n ${TBL_PG_DIR-} ]] || return 0
	t0=$(_tbl_now)
	_pg_ctl status >/dev/null 2>&1 || return 0
	_pg_ctl stop -w -t 60 -m "${1:-fast}" >/dev/null || return
	_tbl_timing "postgres stop (${TBL_PG_DIR##*/pg-})" "$(_tbl_since "$t0")"
}

pg_start_again() {
	local t0
	_pg_ctl status >/dev/null 2>&1 && return 0
	t0=$(_tbl_now)
	_pg_ctl start -w -t 60 -l "$TBL_PG_LOG" >/dev/null || return
	_tbl_timing "postgres start again (${TBL_PG_DIR##*/pg-})" "$(_tbl_since "$t0")"
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
