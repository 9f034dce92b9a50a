# Private PostgreSQL clusters and RabbitMQ nodes, each in a directory of its
# own, on ports of its own, with nothing read from /etc or /var/lib. As root,
# they run as the postgres and rabbitmq system users (setpriv); as another
# user, as that user. Sourced by the test harness (tests/helpers/) and by
# scripts/demo; see tests/README.md for why each setting is there.
#
# PostgreSQL (DIR holds data/, sock/, postgres.log):
# pg_create DIR           initdb and configure a cluster (127.0.0.1 and a socket
#                         in DIR/sock, trust on the socket, scram over TCP)
# pg_launch PORTSFILE     start the new cluster on a free port (retried when the
#                         port is taken meanwhile), recorded in PORTSFILE
# pg_use DIR              point the variables at an existing cluster
# pg_start_again          start it (same port, same data); no-op if it runs
# pg_stop [MODE]          stop it (pg_ctl mode; default fast); no-op if stopped
# pg_running              status 0 when it accepts connections
#   Set: TBL_PG_DIR, TBL_PG_LOG, PGHOST (the socket directory), PGPORT,
#   PGUSER=postgres (superuser, trusted on the socket).
#
# RabbitMQ (DIR holds home/, mnesia/, log/, its configuration and pid files):
# rmq_configure DIR NODE PORT DIST EPMD USER PASSWORD [HOME]
#                         write a node's configuration: AMQP on 127.0.0.1:PORT,
#                         distribution on DIST, its own epmd on EPMD, no plugins,
#                         USER (administrator, all rights on /) made at first boot;
#                         HOME (default DIR/home) holds the Erlang cookie, so
#                         the nodes of a cluster share one
# rmq_use DIR             point the variables at an existing node
# rmq_epmd DIR PORT       start an epmd on 127.0.0.1:PORT (pid in DIR/epmd.pid)
# rmq_launch              start the node, and its epmd unless one answers on
#                         its port (a cluster's), without waiting
# rmq_wait [SECONDS]      wait until the node has booted (default 90 s)
# rmq_start_again         rmq_launch + rmq_wait; no-op if it runs
# rmq_stop                stop the node and the epmd rmq_launch started; no-op if stopped
# rmq_running             status 0 when the node is up
# rmqctl ARGS...          rabbitmqctl for the node (right user, env, node name)
#   Set: TBL_RMQ_DIR, RMQ_NODENAME, RMQ_PORT, RMQ_EPMD_PORT, RMQ_LOG, RMQ_VHOST=/,
#   AMQP_CONNECTION=amqp://USER:PASSWORD@127.0.0.1:PORT/%2F. The node's own
#   environment (RABBITMQ_*, ERL_EPMD_PORT, HOME) stays in DIR/env.
#
# The variables named after "Set:" are exported.

TBL_PG_BINDIR=${TBL_PG_BINDIR:-$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)}
TBL_RMQ_BINDIR=${TBL_RMQ_BINDIR:-/usr/lib/rabbitmq/bin}

# ---- plumbing ------------------------------------------------------------

# _tbl_as USER COMMAND...: run as USER when we are root (servers refuse root).
_tbl_as() {
	local user=$1
	shift
	if ((EUID == 0)); then
		setpriv --reuid="$user" --regid="$user" --init-groups "$@"
	else
		"$@"
	fi
}

# _tbl_own USER PATH...: give PATHs to USER when we are root.
_tbl_own() {
	local user=$1
	shift
	((EUID != 0)) || chown -R "$user:" "$@"
}

# _tbl_free_port FILE [N]: a TCP port nothing listens on, below the ephemeral
# range (so no outgoing connection takes it later) and not listed in FILE,
# to which it is added. With N, the first of N such ports in a row (all added).
_tbl_free_port() {
	local used=$1 n=${2:-1} lo hi eph p q i
	read -r eph _ </proc/sys/net/ipv4/ip_local_port_range
	lo=10000 hi=$((eph - n))
	((hi > lo + 1000)) || lo=40000 hi=60000
	for ((i = 0; i < 500; i++)); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
		for ((q = p; q < p + n; q++)); do
			grep -qx "$q" "$used" 2>/dev/null && break
			[[ -z $(ss -Htan "sport = :$q") ]] || break
		done
		((q == p + n)) || continue
		seq "$p" $((p + n - 1)) >>"$used"
		echo "$p"
		return 0
	done
	echo "no free port found" >&2
	return 1
}

# _tbl_close_fds: in a subshell that starts a server, close every descriptor
# above 2: a server that kept bats' fd 3 (or a lock) open would hold it.
_tbl_close_fds() {
	local fd
	for fd in /proc/$BASHPID/fd/*; do
		fd=${fd##*/}
		((fd <= 2)) || eval "exec $fd>&-"
	done
}

# _tbl_spawn PIDFILE LOG USER ENVFILE COMMAND...: start COMMAND as USER (if
# not empty), with the variables of ENVFILE (if not empty), in the directory
# of PIDFILE, in a session of its own (Ctrl-C in the terminal does not reach
# it: its owner stops it), with no descriptor above 2 left open; record its
# pid in PIDFILE.
_tbl_spawn() {
	local pidfile=$1 log=$2 user=$3 envfile=$4 as=()
	shift 4
	((EUID != 0)) || [[ -z $user ]] || as=(setpriv --reuid="$user" --regid="$user" --init-groups)
	(
		_tbl_close_fds
		cd "${pidfile%/*}" || exit
		exec setsid bash -c 'echo $$ >"$0"; [[ -z $1 ]] || { set -a; source "$1"; set +a; }
			shift; exec "$@"' "$pidfile" "$envfile" "${as[@]}" "$@"
	) </dev/null >>"$log" 2>&1 &
}

# _tbl_alive PID: the process exists and has not exited. A zombie has: an
# orphan's is reaped by init, which on this kind of machine takes seconds.
_tbl_alive() {
	local stat
	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# _tbl_pid_alive PIDFILE: the process named in PIDFILE runs.
_tbl_pid_alive() {
	local pid
	# The node writes its pid file without a newline: no read.
	[[ -s $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] && _tbl_alive "$pid"
}

# _tbl_kill_wait PIDFILE SIGNAL SECONDS: signal the process group led by the
# pid in PIDFILE, wait for it to go, then KILL it.
_tbl_kill_wait() {
	local pid i
	_tbl_pid_alive "$1" || return 0
	pid=$(<"$1")
	kill -"$2" -- "-$pid" 2>/dev/null || kill -"$2" "$pid" 2>/dev/null
	for ((i = 0; i < $3 * 10; i++)); do
		_tbl_alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	return 0
}

# _tbl_timing WHAT SECONDS: note how long a server operation took, for tests/run.
_tbl_timing() {
	[[ -n ${TBL_TIMING_LOG-} ]] || return 0
	printf '%-28s %6.2f s\n' "$1" "$2" >>"$TBL_TIMING_LOG"
}

_tbl_now() {
	echo "${EPOCHREALTIME/,/.}"
}

_tbl_since() {
	local t
	t=$(_tbl_now)
	awk -v a="$1" -v b="$t" 'BEGIN { printf "%.3f", b - a }'
}

# ---- PostgreSQL --------------------------------------------------------------

_pg_ctl() {
	(
		_tbl_close_fds
		cd "$TBL_PG_DIR" && _tbl_as postgres "$TBL_PG_BINDIR/pg_ctl" -D "$TBL_PG_DIR/data" "$@"
	)
}

pg_create() {
	local dir=$1
	mkdir -p "$dir/sock" || return
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
		# scripts/lib/servers.bash: a private cluster, fast and unsafe
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
}

pg_launch() {
	local ports=$1 port try
	# A port can be taken between choosing and binding it: try another.
	for try in 1 2 3; do
		port=$(_tbl_free_port "$ports") || return
		echo "port = $port" >>"$TBL_PG_DIR/data/postgresql.conf"
		_pg_ctl start -w -t 60 -l "$TBL_PG_LOG" >/dev/null && break
		grep -q 'could not bind' "$TBL_PG_LOG" 2>/dev/null && ((try < 3)) && continue
		tail -n 20 "$TBL_PG_LOG" >&2
		return 1
	done
	export PGHOST=$TBL_PG_DIR/sock PGPORT=$port PGUSER=postgres
}

pg_use() {
	local port
	port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$1/data/postgresql.conf" 2>/dev/null | tail -n 1)
	[[ -n $port ]] || {
		echo "$1: no PostgreSQL cluster with a port here" >&2
		return 1
	}
	export TBL_PG_DIR=$1 TBL_PG_LOG=$1/postgres.log PGHOST=$1/sock PGPORT=$port PGUSER=postgres
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

# ---- RabbitMQ ------------------------------------------------------------------

# _rmq COMMAND...: run COMMAND as the node's user, in the node's environment.
_rmq() {
	(
		cd "$TBL_RMQ_DIR/home" || exit
		set -a
		source "$TBL_RMQ_DIR/env"
		set +a
		_tbl_as rabbitmq "$@"
	)
}

rmqctl() {
	_rmq "$TBL_RMQ_BINDIR/rabbitmqctl" -n "$RMQ_NODENAME" "$@"
}

rmq_configure() {
	local dir=$1 node=$2 port=$3 dist=$4 epmd=$5 user=$6 pass=$7 home=${8:-$1/home}
	mkdir -p "$dir"/{home,mnesia,log,conf.d} || return
	echo '[].' >"$dir/enabled_plugins"
	: >"$dir/rabbitmq-env.conf"
	# The user exists from the first boot on: no CLI round trips.
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$port
		loopback_users = none
		default_vhost = /
		default_user = $user
		default_pass = $pass
		default_user_tags.administrator = true
		default_permissions.configure = .*
		default_permissions.read = .*
		default_permissions.write = .*
		disk_free_limit.absolute = 50MB
		log.console = false
		log.file.level = info
	EOF
	# Everything the node would read from /etc or /var points into $dir.
	cat >"$dir/env" <<-EOF
		RABBITMQ_NODENAME=$node
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		RABBITMQ_NODE_PORT=$port
		RABBITMQ_DIST_PORT=$dist
		ERL_EPMD_PORT=$epmd
		RABBITMQ_MNESIA_BASE=$dir/mnesia
		RABBITMQ_LOG_BASE=$dir/log
		RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
		RABBITMQ_CONFIG_FILES=$dir/conf.d
		RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
		RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
		RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
		RABBITMQ_PID_FILE=$dir/rabbit.pid
		HOME=$home
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}'
	EOF
	_tbl_own rabbitmq "$dir"
	rmq_use "$dir"
}

rmq_use() {
	local dir=$1 user pass
	RMQ_NODENAME=$(sed -n 's/^RABBITMQ_NODENAME=//p' "$dir/env" 2>/dev/null)
	RMQ_PORT=$(sed -n 's/^RABBITMQ_NODE_PORT=//p' "$dir/env" 2>/dev/null)
	RMQ_EPMD_PORT=$(sed -n 's/^ERL_EPMD_PORT=//p' "$dir/env" 2>/dev/null)
	user=$(sed -n 's/^default_user = //p' "$dir/rabbitmq.conf" 2>/dev/null)
	pass=$(sed -n 's/^default_pass = //p' "$dir/rabbitmq.conf" 2>/dev/null)
	[[ -n $RMQ_NODENAME && -n $RMQ_PORT && -n $RMQ_EPMD_PORT ]] || {
		echo "$dir: no RabbitMQ node configured here" >&2
		return 1
	}
	export TBL_RMQ_DIR=$dir RMQ_LOG=$dir/log/$RMQ_NODENAME.log RMQ_VHOST=/
	export RMQ_NODENAME RMQ_PORT RMQ_EPMD_PORT
	export AMQP_CONNECTION=amqp://$user:$pass@127.0.0.1:$RMQ_PORT/%2F
}

rmq_epmd() {
	local i
	mkdir -p "$1/log" || return
	_tbl_own rabbitmq "$1/log"
	_tbl_spawn "$1/epmd.pid" "$1/log/epmd.log" rabbitmq "" epmd -port "$2" -address 127.0.0.1
	for ((i = 0; i < 100; i++)); do
		epmd -port "$2" -names >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "rmq_epmd: no epmd answers on port $2" >&2
	return 1
}

rmq_launch() {
	TBL_RMQ_T0=$(_tbl_now)
	rm -f "$TBL_RMQ_DIR/rabbit.pid"
	epmd -port "$RMQ_EPMD_PORT" -names >/dev/null 2>&1 ||
		rmq_epmd "$TBL_RMQ_DIR" "$RMQ_EPMD_PORT" || return
	_tbl_spawn "$TBL_RMQ_DIR/launcher.pid" "$TBL_RMQ_DIR/log/stdout.log" rabbitmq \
		"$TBL_RMQ_DIR/env" "$TBL_RMQ_BINDIR/rabbitmq-server"
}

rmq_running() {
	[[ -n ${TBL_RMQ_DIR-} ]] && _tbl_pid_alive "$TBL_RMQ_DIR/rabbit.pid" &&
		rmqctl -q ping >/dev/null 2>&1
}

rmq_wait() {
	local deadline=$((SECONDS + ${1:-90}))
	# await_startup fails at once until the node has registered with epmd.
	until rmqctl -q await_startup --timeout 10 >/dev/null 2>&1; do
		if ! _tbl_pid_alive "$TBL_RMQ_DIR/launcher.pid" || ((SECONDS >= deadline)); then
			echo "rmq_wait: node $RMQ_NODENAME did not start; its log:" >&2
			tail -n 30 "$TBL_RMQ_DIR/log/stdout.log" "$RMQ_LOG" >&2 2>/dev/null
			return 1
		fi
		sleep 0.3
	done
	_tbl_timing "rabbitmq start${TBL_RMQ_AGAIN:+ again} (${TBL_RMQ_DIR##*/rmq-})" "$(_tbl_since "${TBL_RMQ_T0:-$(_tbl_now)}")"
}

rmq_stop() {
	local t0
	[[ -n ${TBL_RMQ_DIR-} ]] || return 0
	t0=$(_tbl_now)
	if _tbl_pid_alive "$TBL_RMQ_DIR/launcher.pid"; then
		# stop waits until the process in the pid file has exited.
		rmqctl -q stop "$TBL_RMQ_DIR/rabbit.pid" >/dev/null 2>&1 ||
			_tbl_kill_wait "$TBL_RMQ_DIR/launcher.pid" TERM 30
		_tbl_kill_wait "$TBL_RMQ_DIR/launcher.pid" TERM 10
		_tbl_timing "rabbitmq stop (${TBL_RMQ_DIR##*/rmq-})" "$(_tbl_since "$t0")"
	fi
	_tbl_kill_wait "$TBL_RMQ_DIR/epmd.pid" TERM 10
}

rmq_start_again() {
	_tbl_pid_alive "$TBL_RMQ_DIR/launcher.pid" && return 0
	rmq_launch && TBL_RMQ_AGAIN=1 rmq_wait
}
