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

# rmq_configure, rmq_launch, rmq_wait, rmq_stop, rmq_start_again, rmq_running,
# rmqctl: scripts/lib/servers.bash.

rmq_prepare() {
	local name=${1:-main} dir port dist epmd
	_tbl_need_run_dir || return
	dir=$TBL_TEST_TMP/rmq-$name
	if [[ -e $dir ]]; then
		echo "rmq_prepare: node '$name' exists; use rmq_start_again" >&2
		return 1
	fi
	port=$(tbl_free_port) && dist=$(tbl_free_port) && epmd=$(tbl_free_port) || return
	rmq_configure "$dir" "tbl$$${name#main}@localhost" "$port" "$dist" "$epmd" tbl tblsecret
}

rmq_start() {
	rmq_prepare "$@" && rmq_launch && rmq_wait
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
