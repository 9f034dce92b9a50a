# Throwaway RabbitMQ nodes for the tests (sourced by common.bash).
#
# rmq_start [NAME]      rmq_prepare + rmq_launch + rmq_wait: a node in
#                       $TBL_TEST_TMP/rmq-NAME (default "main", the one
#                       setup_suite.bash starts for the run)
# rmq_prepare [NAME]    choose ports, write the configuration, export the variables
# rmq_launch            start its epmd and the node, without waiting
# rmq_wait [SECONDS]    wait until the node has booted (default 90 s)
# rmq_stop              stop the node and its epmd; no-op if stopped
# rmq_start_again       start the stopped node again: same ports, same data
# rmq_restart           rmq_stop + rmq_start_again
# rmq_running           status 0 when the node is up
# rmq_newvhost [NAME]   create an empty vhost (default name from tbl_name), give
#                       tbl all rights on it, point AMQP_CONNECTION and RMQ_VHOST at it
# rmqctl ARGS...        rabbitmqctl for this node (right user, env and node name);
#                       add -p "$RMQ_VHOST" for a vhost made by rmq_newvhost
#
# Exported: AMQP_CONNECTION=amqp://tbl:tblsecret@127.0.0.1:PORT/%2F, RMQ_PORT,
# RMQ_NODENAME, RMQ_VHOST (/), RMQ_LOG (the node's log file), RMQ_EPMD_PORT,
# TBL_RMQ_DIR.
# The node's own environment (RABBITMQ_*, ERL_EPMD_PORT, HOME) stays in
# $TBL_RMQ_DIR/env and never reaches the tests or the tools.

TBL_RMQ_BINDIR=${TBL_RMQ_BINDIR:-/usr/lib/rabbitmq/bin}

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

rmq_prepare() {
	local name=${1:-main} dir port dist epmd node
	_tbl_need_run_dir || return
	dir=$TBL_TEST_TMP/rmq-$name
	if [[ -e $dir ]]; then
		echo "rmq_prepare: node '$name' exists; use rmq_start_again" >&2
		return 1
	fi
	port=$(tbl_free_port) && dist=$(tbl_free_port) && epmd=$(tbl_free_port) || return
	node=tbl$$${name#main}@localhost
	mkdir -p "$dir"/{home,mnesia,log,conf.d}
	echo '[].' >"$dir/enabled_plugins"
	: >"$dir/rabbitmq-env.conf"
	# The user exists from the first boot on: no CLI round trips.
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$port
		loopback_users = none
		default_vhost = /
		default_user = tbl
		default_pass = tblsecret
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
		HOME=$dir/home
		RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-start_epmd false -kernel inet_dist_use_interface {127,0,0,1}'
	EOF
	_tbl_own rabbitmq "$dir"
	export TBL_RMQ_DIR=$dir RMQ_NODENAME=$node RMQ_PORT=$port RMQ_EPMD_PORT=$epmd
	export RMQ_LOG=$dir/log/$node.log RMQ_VHOST=/
	export AMQP_CONNECTION=amqp://tbl:tblsecret@127.0.0.1:$port/%2F
}

rmq_launch() {
	local i
	TBL_RMQ_T0=$(_tbl_now)
	rm -f "$TBL_RMQ_DIR/rabbit.pid"
	_tbl_spawn "$TBL_RMQ_DIR/epmd.pid" "$TBL_RMQ_DIR/log/epmd.log" rabbitmq "" \
		epmd -port "$RMQ_EPMD_PORT" -address 127.0.0.1
	for ((i = 0; i < 100; i++)); do
		epmd -port "$RMQ_EPMD_PORT" -names >/dev/null 2>&1 && break
		sleep 0.05
	done
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
	_tbl_timing "rabbitmq start${TBL_RMQ_AGAIN:+ again} (${TBL_RMQ_DIR##*/rmq-})" "$(_tbl_since "$TBL_RMQ_T0")"
}

rmq_start() {
	rmq_prepare "$@" && rmq_launch && rmq_wait
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

rmq_restart() {
	rmq_stop && rmq_start_again
}

rmq_newvhost() {
	local name=${1:-$(tbl_name v)}
	rmqctl -q add_vhost "$name" >/dev/null &&
		rmqctl -q set_permissions -p "$name" tbl '.*' '.*' '.*' >/dev/null || return
	RMQ_VHOST=$name
	AMQP_CONNECTION=amqp://tbl:tblsecret@127.0.0.1:$RMQ_PORT/$(_rmq_urlencode "$name")
	export RMQ_VHOST AMQP_CONNECTION
}

_rmq_urlencode() {
	local s=$1 i c out=
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[a-zA-Z0-9._~-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c" && out+=$c ;;
		esac
	done
	printf '%s\n' "$out"
}

# _tbl_pid_alive PIDFILE: the process named in PIDFILE exists.
_tbl_pid_alive() {
	local pid
	# The node writes its pid file without a newline: no read.
	[[ -s $1 ]] && pid=$(<"$1") && [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# _tbl_kill_wait PIDFILE SIGNAL SECONDS: signal the process group led by the
# pid in PIDFILE, wait for it to go, then KILL it.
_tbl_kill_wait() {
	local pid i
	_tbl_pid_alive "$1" || return 0
	pid=$(<"$1")
	kill -"$2" -- "-$pid" 2>/dev/null || kill -"$2" "$pid" 2>/dev/null
	for ((i = 0; i < $3 * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	return 0
}
