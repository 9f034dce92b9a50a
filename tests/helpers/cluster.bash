# Clusters for the failover suites, on loopback, in the run's directory:
# a 3-node RabbitMQ cluster and a PostgreSQL primary with a streaming
# standby. Loaded by the suites that use them (`load helpers/cluster`),
# which start them in setup_file and stop them in teardown_file; the
# reaper removes them if bats is killed. See tests/README.md.
#
# RabbitMQ ($TBL_TEST_TMP/rmqc-NAME: home/ with the one Erlang cookie, the
# cluster's epmd, n1/ n2/ n3/ as scripts/lib/servers.bash makes a node):
# rmq_cluster_start [NAME]    rmq_cluster_prepare + rmq_cluster_launch + rmq_cluster_wait
# rmq_cluster_prepare [NAME]  ports, cookie, the three nodes' configuration; exports
# rmq_cluster_launch          start the epmd and the three nodes, without waiting
# rmq_cluster_wait [SECONDS]  wait for the three boots, join 2 and 3 to 1, check
# rmqc_ctl N ARGS...          rabbitmqctl for node N (1, 2, 3)
# rmqc_queues N ARGS...       rabbitmq-queues for node N
# rmqc_alive N                status 0 when node N's VM runs (no CLI call)
# rmqc_kill N                 kill -9 of node N's VM (a crash); returns once it is gone;
#                             RMQC_KILLED_AT: when (as _tbl_now)
# rmqc_start_again N          start node N again from its data; returns once it runs
# rmqc_leader QUEUE [VHOST]   the number of the node that leads a quorum queue
# rmqc_leader_watch N QUEUE [VHOST], rmqc_leader_changed [SECONDS]
#                             when (to the millisecond) node N sees a new leader
# rmqc_stop                   kill the three nodes and the epmd (for teardown_file)
#   Exported: RMQC_DIR, RMQC_NODES (the node names, space-separated),
#   RMQC_PORTS (AMQP ports, space-separated), RMQC_URLS (amqp:// URLs of the
#   nodes with the tbl user, comma-separated); after rmq_cluster_wait,
#   RMQC_BOOT_SECONDS and RMQC_JOIN_SECONDS.
#
# PostgreSQL ($TBL_TEST_TMP/pgpair-NAME: n1/ and n2/ as pg_create makes a
# cluster, roles: "PRIMARY STANDBY MODE", e.g. "n2 - sync" after a promote):
# pg_pair_start [NAME] [sync|async]  primary n1 and its standby n2 (default async)
# pg_pair_use [NAME]          export the variables below for the pair's current roles
# pg_pair_psql WHICH ARGS...  psql -XAtq as superuser on primary, standby, n1 or n2
# pg_pair_wait_replay [SECS]  until the standby has replayed what the primary wrote
# pg_pair_kill_primary        kill -9 of the primary's postmaster and its children;
#                             PGPAIR_KILLED_AT: when (as _tbl_now)
# pg_pair_stop_primary [MODE] pg_ctl stop of the primary (default fast)
# pg_pair_promote             promote the standby (pg_ctl promote -w); no standby left
# pg_pair_rejoin_old_primary  the node that is not the primary: stop it if it runs,
#                             CHECKPOINT the primary, pg_rewind, start it as its standby
# pg_pair_stop                stop both
#   Exported: PGPAIR_DIR, PGPAIR_MODE, PGPAIR_PRIMARY, PGPAIR_STANDBY (n1, n2;
#   empty when none), PGPAIR_PORT1, PGPAIR_PORT2, PGPAIR_PRIMARY_PORT,
#   PGPAIR_STANDBY_PORT, PGPAIR_ADDRESS=127.0.0.1:P1,127.0.0.1:P2 (the
#   multi-host POSTGRES_ADDRESS form), PGPAIR_CONNINFO (libpq, both hosts,
#   user tbl, target_session_attrs=read-write; the password is
#   POSTGRES_PASSWORD); and as pg_start does, for the current primary:
#   PGHOST, PGPORT, PGUSER, TBL_PG_DIR, TBL_PG_LOG, POSTGRES_ADDRESS (the
#   primary alone), POSTGRES_USERNAME=tbl, POSTGRES_PASSWORD=tblsecret;
#   POSTGRES_DATABASE is unset when the pair is another than before.

# _cluster_mkdir PREFIX NAME: make the new directory $TBL_TEST_TMP/PREFIX-NAME
# of a cluster (NAME goes into node names and paths: a-z, 0-9, _) and print it.
_cluster_mkdir() {
	local dir=${TBL_TEST_TMP-}/$1-$2
	[[ $2 =~ ^[a-z0-9_]{1,20}$ ]] || {
		echo "cluster name '$2': want 1 to 20 of a-z, 0-9, _" >&2
		return 1
	}
	_tbl_need_run_dir || return
	mkdir "$dir" || {
		echo "cannot make $dir (a cluster '$2' exists?)" >&2
		return 1
	}
	echo "$dir"
}

# ---- RabbitMQ ----------------------------------------------------------------

rmq_cluster_prepare() {
	local dir i port dist epmd ctl urls=() ports=() nodes=() name=${1:-main}
	dir=$(_cluster_mkdir rmqc "$name") || return
	mkdir -m 700 "$dir/home" || return
	# One cookie before the boot, or each node would write its own.
	(
		umask 077
		head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9 >"$dir/home/.erlang.cookie"
	) && chmod 400 "$dir/home/.erlang.cookie" || return
	_tbl_own rabbitmq "$dir"
	# The CLI's distribution ports: a range of the cluster's own, not the
	# default one every rabbitmqctl on the machine shares.
	epmd=$(tbl_free_port) && ctl=$(_tbl_free_port "$TBL_TEST_TMP/ports" 10) || return
	for i in 1 2 3; do
		port=$(tbl_free_port) && dist=$(tbl_free_port) || return
		# In a subshell: rmq_configure points the single node's variables here.
		(rmq_configure "$dir/n$i" "c$i-$name@localhost" "$port" "$dist" "$epmd" \
			tbl tblsecret "$dir/home") || return
		printf '%s\n' "RABBITMQ_CTL_DIST_PORT_MIN=$ctl" \
			"RABBITMQ_CTL_DIST_PORT_MAX=$((ctl + 9))" >>"$dir/n$i/env"
		nodes+=("c$i-$name@localhost")
		ports+=("$port")
		urls+=("amqp://tbl:tblsecret@127.0.0.1:$port/%2F")
	done
	echo "$epmd" >"$dir/epmd.port"
	RMQC_NODES=${nodes[*]} RMQC_PORTS=${ports[*]}
	RMQC_URLS=$(IFS=, && echo "${urls[*]}")
	export RMQC_DIR=$dir RMQC_NODES RMQC_PORTS RMQC_URLS
}

rmq_cluster_launch() {
	local i
	RMQC_T0=$(_tbl_now)
	rmq_epmd "$RMQC_DIR" "$(<"$RMQC_DIR/epmd.port")" || return
	for i in 1 2 3; do
		(rmq_use "$RMQC_DIR/n$i" && rmq_launch) || return
	done
}

rmq_cluster_wait() {
	local secs=${1:-120} i t1 rc=0 nodes pids=()
	for i in 1 2 3; do
		# Timed as a whole below, not node by node.
		(rmq_use "$RMQC_DIR/n$i" && TBL_TIMING_LOG= rmq_wait "$secs") || return
	done
	t1=$(_tbl_now)
	RMQC_BOOT_SECONDS=$(_tbl_since "$RMQC_T0")
	# Both at once: each rabbitmqctl call costs about a second of CPU.
	for i in 2 3; do
		_rmqc_join "$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	((rc == 0)) || return
	RMQC_JOIN_SECONDS=$(_tbl_since "$t1")
	nodes=$(rmqc_ctl 1 -q cluster_status --formatter json |
		jq -r '.running_nodes | sort | join(" ")') || return
	if [[ $nodes != "$(tr ' ' '\n' <<<"$RMQC_NODES" | sort | paste -sd ' ')" ]]; then
		echo "rmq_cluster_wait: running nodes '$nodes', want '$RMQC_NODES'" >&2
		return 1
	fi
	export RMQC_BOOT_SECONDS RMQC_JOIN_SECONDS
	_tbl_timing "rabbitmq cluster boot (${RMQC_DIR##*/rmqc-})" "$RMQC_BOOT_SECONDS"
	_tbl_timing "rabbitmq cluster join (${RMQC_DIR##*/rmqc-})" "$RMQC_JOIN_SECONDS"
}

_rmqc_join() {
	local first=${RMQC_NODES%% *}
	# start_app returns once the node has booted again.
	rmqc_ctl "$1" -q stop_app >/dev/null &&
		rmqc_ctl "$1" -q join_cluster "$first" >/dev/null &&
		rmqc_ctl "$1" -q start_app >/dev/null || {
		echo "rmq_cluster_wait: node $1 did not join $first" >&2
		return 1
	}
}

rmq_cluster_start() {
	rmq_cluster_prepare "$@" && rmq_cluster_launch && rmq_cluster_wait
}

# _rmqc_node N: check N, which names a node of the cluster.
_rmqc_node() {
	[[ $1 == [123] && -n ${RMQC_DIR-} && -e $RMQC_DIR/n$1/env ]] || {
		echo "no node '$1' in the cluster (${RMQC_DIR:-none started})" >&2
		return 1
	}
}

rmqc_ctl() {
	local n=$1
	shift
	_rmqc_node "$n" || return
	(rmq_use "$RMQC_DIR/n$n" && rmqctl "$@")
}

rmqc_queues() {
	local n=$1
	shift
	_rmqc_node "$n" || return
	(rmq_use "$RMQC_DIR/n$n" && _rmq "$TBL_RMQ_BINDIR/rabbitmq-queues" -n "$RMQ_NODENAME" "$@")
}

rmqc_alive() {
	_rmqc_node "$1" && _tbl_pid_alive "$RMQC_DIR/n$1/rabbit.pid"
}

rmqc_kill() {
	local d pid lpid i
	_rmqc_node "$1" || return
	d=$RMQC_DIR/n$1
	rmqc_alive "$1" || {
		echo "rmqc_kill: node $1 does not run" >&2
		return 1
	}
	pid=$(<"$d/rabbit.pid")
	RMQC_KILLED_AT=${EPOCHREALTIME/,/.}
	kill -KILL "$pid" || return
	export RMQC_KILLED_AT
	# rabbitmq-server's shell and erl_child_setup end with the VM.
	for ((i = 0; i < 100; i++)); do
		! _tbl_alive "$pid" && ! _tbl_pid_alive "$d/launcher.pid" && break
		sleep 0.05
	done
	lpid=$(<"$d/launcher.pid")
	kill -KILL -- "-$lpid" 2>/dev/null
	! _tbl_alive "$pid"
}

rmqc_start_again() {
	local t0
	_rmqc_node "$1" || return
	t0=$(_tbl_now)
	(rmq_use "$RMQC_DIR/n$1" && TBL_TIMING_LOG= rmq_start_again) || return
	_tbl_timing "rabbitmq cluster node $1 start again (${RMQC_DIR##*/rmqc-})" "$(_tbl_since "$t0")"
}

rmqc_leader() {
	local q=$1 vhost=${2:-/} i n leader
	for n in 1 2 3; do
		rmqc_alive "$n" || continue
		leader=$(rmqc_queues "$n" -q quorum_status --vhost "$vhost" "$q" --formatter json |
			jq -r '.[] | select(.["Raft State"] == "leader") | .["Node Name"]') || continue
		for i in 1 2 3; do
			[[ $(_rmqc_nodename "$i") != "$leader" ]] || {
				echo "$i"
				return 0
			}
		done
	done
	echo "rmqc_leader: no leader for queue '$q'" >&2
	return 1
}

# rmqc_leader_watch N QUEUE [VHOST]: from node N, watch who leads QUEUE,
# in the background; returns once it watches. rmqc_leader_changed [SECONDS]
# then waits until another node leads (default 60 s) and prints its number
# and when node N saw it (seconds since the epoch, as _tbl_now): one CLI
# call, so the time is to a few milliseconds, not to the second a CLI costs.
rmqc_leader_watch() {
	local n=$1 q=$2 vhost=${3:-/}
	_rmqc_node "$n" || return
	[[ $q =~ ^[A-Za-z0-9._:-]+$ && $vhost =~ ^[A-Za-z0-9._/-]+$ ]] || {
		echo "rmqc_leader_watch: unusual queue or vhost name" >&2
		return 1
	}
	RMQC_WATCH=$(mktemp "${BATS_TEST_TMPDIR:-$TBL_TEST_TMP}/leader.XXXXXX") || return
	rmqc_ctl "$n" -q eval '
		{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"'"$vhost"'">>, queue, <<"'"$q"'">>)),
		{Ra, _} = amqqueue:get_pid(Q),
		{ok, _, {_, Old}} = ra:members({Ra, node()}),
		io:format("watching ~s~n", [Old]),
		Deadline = erlang:monotonic_time(millisecond) + 120000,
		Watch = fun W() ->
			case catch ra:members({Ra, node()}, 100) of
			{ok, _, {_, New}} when New =/= Old -> {New, os:system_time(microsecond)};
			_ -> case erlang:monotonic_time(millisecond) < Deadline of
				true -> timer:sleep(5), W();
				false -> {none, 0}
				end
			end
		end,
		{New, T} = Watch(),
		io:format("leader ~s ~b~n", [New, T]).' >"$RMQC_WATCH" 2>&1 3>&- &
	RMQC_WATCH_PID=$!
	wait_until 30 grep -q '^watching ' "$RMQC_WATCH" || {
		cat "$RMQC_WATCH" >&2
		return 1
	}
}

rmqc_leader_changed() {
	local node us i
	wait_until "${1:-60}" grep -q '^leader ' "$RMQC_WATCH" || return
	wait "$RMQC_WATCH_PID" 2>/dev/null
	read -r _ node us < <(grep '^leader ' "$RMQC_WATCH")
	for i in 1 2 3; do
		if [[ $(_rmqc_nodename "$i") == "$node" ]]; then
			printf '%s %d.%06d\n' "$i" $((us / 1000000)) $((us % 1000000))
			return 0
		fi
	done
	echo "rmqc_leader_changed: no new leader seen ($node)" >&2
	return 1
}

_rmqc_nodename() {
	local nodes
	read -ra nodes <<<"$RMQC_NODES"
	echo "${nodes[$1 - 1]}"
}

# The cluster is thrown away after its suite: no graceful stop (5 to 17 s
# for the three, and more CPU while other suites run).
rmqc_stop() {
	local i
	[[ -n ${RMQC_DIR-} && -d $RMQC_DIR ]] || return 0
	for i in 1 2 3; do
		_tbl_kill_wait "$RMQC_DIR/n$i/launcher.pid" KILL 10
		_tbl_kill_wait "$RMQC_DIR/n$i/rabbit.pid" KILL 10
	done
	_tbl_kill_wait "$RMQC_DIR/epmd.pid" TERM 10
}

# ---- PostgreSQL --------------------------------------------------------------

pg_pair_start() {
	local name=${1:-main} mode=${2:-async} dir t0
	[[ $mode =~ ^(sync|async)$ ]] || {
		echo "usage: pg_pair_start [NAME] [sync|async]" >&2
		return 1
	}
	t0=$(_tbl_now)
	dir=$(_cluster_mkdir pgpair "$name") || return
	(
		pg_create "$dir/n1" || exit
		# pg_rewind needs full_page_writes and wal_log_hints (or checksums).
		# fsync stays off (and the copies below are not synced): a killed
		# server loses nothing the kernel holds.
		cat >>"$dir/n1/data/postgresql.conf" <<-EOF
			# tests/helpers/cluster.bash: a primary with a streaming standby
			synchronous_commit = on
			full_page_writes = on
			wal_level = replica
			wal_log_hints = on
			wal_keep_size = 1GB
			max_wal_senders = 10
		EOF
		echo 'local replication all trust' >>"$dir/n1/data/pg_hba.conf"
		pg_launch "$TBL_TEST_TMP/ports" &&
			psql -XAtq -v ON_ERROR_STOP=1 -d postgres \
				-c "CREATE ROLE tbl LOGIN SUPERUSER CREATEDB PASSWORD 'tblsecret'"
	) || return
	echo "n1 - $mode" >"$dir/roles"
	_pg_pair_standby "$dir" n2 n1 || return
	pg_pair_use "$name" || return
	_tbl_timing "postgres pair start ($name)" "$(_tbl_since "$t0")"
}

# _pg_pair_standby DIR NODE PRIMARY: make NODE of the pair in DIR a standby
# of PRIMARY by pg_basebackup, start it, and wait until it streams (in sync
# mode, as the synchronous standby).
_pg_pair_standby() {
	local dir=$1 node=$2 from=$3 d=$1/$2 port
	mkdir -p "$d/sock" && _tbl_own postgres "$d" || return
	port=$(_pg_pair_port "$dir/$from") || return
	if ! (cd "$d" && _tbl_as postgres "$TBL_PG_BINDIR/pg_basebackup" -D "$d/data" -R --no-sync \
		-X stream -c fast -d "host=$dir/$from/sock port=$port user=postgres application_name=$node") \
		>"$d/basebackup.log" 2>&1; then
		cat "$d/basebackup.log" >&2
		return 1
	fi
	# The copy has the primary's socket and port: the node's own come last.
	_pg_pair_own_settings "$d" &&
		(TBL_PG_DIR=$d TBL_PG_LOG=$d/postgres.log && pg_launch "$TBL_TEST_TMP/ports") || return
	_pg_pair_follows "$dir" "$from" "$node"
}

# _pg_pair_own_settings NODEDIR [PORT]: after a copy of another node's files
# (pg_basebackup, pg_rewind), this node's socket, port, and as a standby no
# synchronous standby of its own: promoted, it would wait for one for ever.
_pg_pair_own_settings() {
	local d=$1
	printf "unix_socket_directories = '%s'\n" "$d/sock" >>"$d/data/postgresql.conf" &&
		{ [[ -z ${2-} ]] || echo "port = $2" >>"$d/data/postgresql.conf"; } &&
		echo "synchronous_standby_names = ''" >>"$d/data/postgresql.auto.conf"
}

# _pg_pair_follows DIR PRIMARY STANDBY: in sync mode, make STANDBY the
# synchronous standby of PRIMARY; wait until it streams; record the roles.
_pg_pair_follows() {
	local dir=$1 p=$2 s=$3 mode want=async
	read -r _ _ mode <"$dir/roles" || return
	if [[ $mode == sync ]]; then
		want=sync
		_pg_pair_node_psql "$dir/$p" -c "ALTER SYSTEM SET synchronous_standby_names = '$s'" \
			-c 'SELECT pg_reload_conf()' >/dev/null || return
	fi
	wait_until 30 _pg_pair_streams "$dir/$p" "$s" "$want" || return
	echo "$p $s $mode" >"$dir/roles"
}

_pg_pair_streams() {
	[[ $(_pg_pair_node_psql "$1" -c "SELECT sync_state FROM pg_stat_replication
		WHERE application_name = '$2' AND state = 'streaming'") == "$3" ]]
}

_pg_pair_port() {
	(pg_use "$1" >/dev/null && echo "$PGPORT")
}

# _pg_pair_node_psql NODEDIR ARGS...: psql as superuser on that node's socket.
_pg_pair_node_psql() {
	local d=$1
	shift
	(pg_use "$d" && psql -XAtq -v ON_ERROR_STOP=1 -d "${POSTGRES_DATABASE:-postgres}" "$@")
}

pg_pair_use() {
	local dir p s mode p1 p2
	if [[ -n ${1-} ]]; then
		_tbl_need_run_dir || return
		dir=$TBL_TEST_TMP/pgpair-$1
	else
		dir=${PGPAIR_DIR-}
	fi
	[[ -n $dir ]] && read -r p s mode <"$dir/roles" &&
		[[ $p =~ ^n[12]$ && $s =~ ^(n[12]|-)$ && $p != "$s" && $mode =~ ^(sync|async)$ ]] || {
		echo "pg_pair_use: no pair '${1:-${PGPAIR_DIR:-}}'" >&2
		return 1
	}
	[[ $s != - ]] || s=
	# A database of another pair is not here.
	[[ $dir == "${PGPAIR_DIR-}" ]] || unset POSTGRES_DATABASE
	p1=$(_pg_pair_port "$dir/n1") && p2=$(_pg_pair_port "$dir/n2") || return
	export PGPAIR_DIR=$dir PGPAIR_MODE=$mode PGPAIR_PRIMARY=$p PGPAIR_STANDBY=$s \
		PGPAIR_PORT1=$p1 PGPAIR_PORT2=$p2
	local -A port=([n1]=$p1 [n2]=$p2)
	export PGPAIR_PRIMARY_PORT=${port[$p]} PGPAIR_STANDBY_PORT=${s:+${port[$s]}}
	export PGPAIR_ADDRESS=127.0.0.1:$p1,127.0.0.1:$p2
	export PGPAIR_CONNINFO="host=127.0.0.1,127.0.0.1 port=$p1,$p2 user=tbl target_session_attrs=read-write"
	pg_use "$dir/$p" || return
	export POSTGRES_ADDRESS=127.0.0.1:$PGPORT POSTGRES_USERNAME=tbl POSTGRES_PASSWORD=tblsecret
}

# _pg_pair_dir WHICH: the directory of primary, standby, n1 or n2.
_pg_pair_dir() {
	local n
	case $1 in
	primary) n=$PGPAIR_PRIMARY ;;
	standby) n=$PGPAIR_STANDBY ;;
	n1 | n2) n=$1 ;;
	esac
	[[ -n ${n-} && -n ${PGPAIR_DIR-} ]] || {
		echo "no $1 in the pair (${PGPAIR_DIR:-none started})" >&2
		return 1
	}
	echo "$PGPAIR_DIR/$n"
}

pg_pair_psql() {
	local d
	d=$(_pg_pair_dir "$1") || return
	shift
	_pg_pair_node_psql "$d" "$@"
}

pg_pair_wait_replay() {
	local lsn
	lsn=$(pg_pair_psql primary -c 'SELECT pg_current_wal_lsn()') || return
	wait_until "${1:-30}" _pg_pair_replayed "$lsn"
}

_pg_pair_replayed() {
	[[ $(pg_pair_psql standby -c "SELECT pg_last_wal_replay_lsn() >= '$1'") == t ]]
}

pg_pair_kill_primary() {
	local p d pid kids=() i
	read -r p _ <"${PGPAIR_DIR-}/roles" && d=$PGPAIR_DIR/$p &&
		read -r pid 2>/dev/null <"$d/data/postmaster.pid" && _tbl_alive "$pid" || {
		echo "pg_pair_kill_primary: no primary runs (${PGPAIR_DIR:-no pair started})" >&2
		return 1
	}
	# The whole server at once, as when its machine dies: the postmaster
	# and its children (each in a session of its own), whose connections
	# close now. No process is started to find them: clients are waiting.
	read -ra kids 2>/dev/null <"/proc/$pid/task/$pid/children" || mapfile -t kids < <(pgrep -P "$pid")
	PGPAIR_KILLED_AT=${EPOCHREALTIME/,/.}
	kill -KILL "$pid" "${kids[@]}" 2>/dev/null
	export PGPAIR_KILLED_AT
	for ((i = 0; i < 200; i++)); do
		for pid in "$pid" "${kids[@]}"; do
			_tbl_alive "$pid" && break
			pid=
		done
		[[ -n $pid ]] || return 0
		sleep 0.05
	done
	echo "pg_pair_kill_primary: $pid is still there" >&2
	return 1
}

pg_pair_stop_primary() {
	pg_pair_use && TBL_TIMING_LOG= pg_stop "${1:-fast}"
}

pg_pair_promote() {
	local p s mode pid t0
	# Few steps before the promotion: the clients wait for it.
	t0=$(_tbl_now)
	read -r p s mode <"${PGPAIR_DIR-}/roles" && [[ $s =~ ^n[12]$ ]] || {
		echo "pg_pair_promote: no standby in the pair (${PGPAIR_DIR:-none started})" >&2
		return 1
	}
	if read -r pid 2>/dev/null <"$PGPAIR_DIR/$p/data/postmaster.pid" && _tbl_alive "$pid"; then
		echo "pg_pair_promote: the primary $p runs: stop or kill it first" >&2
		return 1
	fi
	(TBL_PG_DIR=$PGPAIR_DIR/$s && _pg_ctl promote -w -t 60 >/dev/null) || return
	_tbl_timing "postgres promote (${PGPAIR_DIR##*/pgpair-})" "$(_tbl_since "$t0")"
	echo "$s - $mode" >"$PGPAIR_DIR/roles"
	pg_pair_use || return
	# Its own settings say none; make sure, or it waits for ever.
	if [[ -n $(pg_pair_psql primary -c 'SHOW synchronous_standby_names') ]]; then
		pg_pair_psql primary -c "ALTER SYSTEM SET synchronous_standby_names = ''" \
			-c 'SELECT pg_reload_conf()' >/dev/null || return
	fi
}

pg_pair_rejoin_old_primary() {
	local p o d port t0
	pg_pair_use || return
	p=$PGPAIR_PRIMARY
	[[ -z $PGPAIR_STANDBY ]] || {
		echo "pg_pair_rejoin_old_primary: $PGPAIR_STANDBY is the standby already" >&2
		return 1
	}
	[[ $p == n1 ]] && o=n2 || o=n1
	d=$PGPAIR_DIR/$o
	t0=$(_tbl_now)
	# pg_rewind needs it shut down: a server that still runs is a second
	# primary, stopped here. One that was killed is recovered by pg_rewind.
	(pg_use "$d" && TBL_TIMING_LOG= pg_stop fast) || return
	port=$(_pg_pair_port "$d") || return
	# The promotion's timeline is in the control file only after a
	# checkpoint: without one pg_rewind sees the old timeline, says "no
	# rewind required", and the node never follows.
	pg_pair_psql primary -c CHECKPOINT || return
	if ! (cd "$d" && _tbl_as postgres "$TBL_PG_BINDIR/pg_rewind" -D "$d/data" -R --no-sync \
		--source-server="host=$PGPAIR_DIR/$p/sock port=$PGPAIR_PRIMARY_PORT user=postgres application_name=$o") \
		>>"$d/rewind.log" 2>&1; then
		cat "$d/rewind.log" >&2
		return 1
	fi
	# pg_rewind copied the primary's configuration files.
	_pg_pair_own_settings "$d" "$port" &&
		(pg_use "$d" && TBL_TIMING_LOG= pg_start_again) &&
		_pg_pair_follows "$PGPAIR_DIR" "$p" "$o" || return
	_tbl_timing "postgres rejoin (${PGPAIR_DIR##*/pgpair-})" "$(_tbl_since "$t0")"
	pg_pair_use
}

pg_pair_stop() {
	local n
	[[ -n ${PGPAIR_DIR-} && -d $PGPAIR_DIR ]] || return 0
	pg_pair_use || return
	# The primary first: in sync mode it would wait for its standby.
	for n in "$PGPAIR_PRIMARY" n1 n2; do
		(pg_use "$PGPAIR_DIR/$n" && TBL_TIMING_LOG= pg_stop fast) || return
	done
}
