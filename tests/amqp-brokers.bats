#!/usr/bin/env bats
# AMQP_CONNECTION as a list of brokers (the nodes of one cluster): how it is
# read, and how amqp-fill and amqp-drain pick the node they connect to: the
# first that takes them, from a random start, every node tried once. On
# the run's single node: the other "nodes" are ports where nothing listens,
# or other spellings of the node's own address. The failovers of a real
# cluster are in e2e-cluster-rabbitmq.bats.
# needs: rabbitmq

load helpers/common
load helpers/broker
load helpers/replay
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=90

setup_file() {
	require_bin amqp-fill
	require_bin amqp-drain
}

setup() {
	rmq_newvhost
	rmq_log_mark
	VPATH=${AMQP_CONNECTION##*/}
	DEAD1=$(tbl_free_port)
	DEAD2=$(tbl_free_port)
}

# fill_one ID: publish one artist through AMQP_CONNECTION; amqp-fill's log in
# $stderr, its status checked by the caller (run).
fill_one() {
	amqp-fill --type artists <<<"{\"id\":\"$1\",\"name\":\"a\"}"
}

@test "a list: amqp-fill publishes through the node that answers, from a random start; the others are logged and skipped" {
	export AMQP_CONNECTION="amqp://tbl:tblsecret@127.0.0.1:$DEAD1/$VPATH, amqp://127.0.0.1:$RMQ_PORT;amqp://127.0.0.1:$DEAD2"
	declare -A skipped=()
	for i in $(seq 1 15); do
		run -0 --separate-stderr fill_one "$i"
		# Every dead node tried before the live one is logged, without the password.
		n=$(jq -s '[.[] | select(.event | startswith("⚠️ RabbitMQ node unavailable"))] | length' <<<"$stderr")
		skipped[$n]=1
		where '.event == "✅ Published"' '.broker == $b and .confirmed == 1' \
			--arg b "amqp://tbl@127.0.0.1:$RMQ_PORT/$RMQ_VHOST" <<<"$stderr" >/dev/null
		[[ $stderr != *tblsecret* ]] || flunk "the password is in the log: $stderr"
	done
	# Started at each of the three: 0, 1 or 2 dead nodes first (all three
	# seen, unless chance chose the same start 15 times out of 15: 1 in 1.6e6).
	assert_equal "0 1 2" "$(printf '%s\n' "${!skipped[@]}" | sort | paste -sd ' ')"
	assert_queues "15 0 0 0"
	assert_no_channel_error
}

@test "a list spreads several instances over the nodes" {
	# Three spellings of the one node: which one a run took shows in its log.
	export AMQP_CONNECTION="amqp://tbl:tblsecret@127.0.0.1:$RMQ_PORT/$VPATH,amqp://127.1:$RMQ_PORT,amqp://localhost:$RMQ_PORT"
	declare -A used=()
	for i in $(seq 1 15); do
		run -0 --separate-stderr fill_one "$i"
		b=$(jq -r 'select(.event == "✅ Published") | .broker' <<<"$stderr")
		used[$b]=1
	done
	assert_equal 3 "${#used[@]}"
}

@test "a list where no node answers: 69, each node's reason named, no password; one that refuses us: 78" {
	export AMQP_CONNECTION="amqp://tbl:tblsecret@127.0.0.1:$DEAD1/$VPATH,amqp://127.0.0.1:$DEAD2"
	run -69 --separate-stderr fill_one 1
	[[ $stderr != *tblsecret* ]] || flunk "the password is in the log: $stderr"
	where '.level == "error"' '.event | startswith("RabbitMQ (none of 2 brokers): ") and
		contains($a + ": ") and contains($b + ": ")' --arg a "127.0.0.1:$DEAD1" --arg b "127.0.0.1:$DEAD2" \
		<<<"$stderr"
	# A node that answers and refuses the credentials: a configuration
	# error, which no retry mends, whatever the other nodes did.
	export AMQP_CONNECTION="amqp://tbl:Wr0ngPw@127.0.0.1:$DEAD1/$VPATH,amqp://127.0.0.1:$RMQ_PORT"
	run -78 --separate-stderr fill_one 1
	where '.level == "error"' '.event | startswith("RabbitMQ (none of 2 brokers, one refused us): ")
		and contains("ACCESS_REFUSED")' <<<"$stderr"
	[[ $stderr != *Wr0ngPw* ]] || flunk "the password is in the log: $stderr"
	assert_queues "- - - -" "- - - -"
}

@test "a list: each URL its own credentials and vhost, or the first URL's" {
	rmqctl -q add_user tblb 'other,pw;x' >/dev/null
	rmqctl -q set_permissions -p "$RMQ_VHOST" tblb '.*' '.*' '.*' >/dev/null
	# The second URL's own user (a ',' and ';' in a password stay in it:
	# no URL follows them), the first's vhost.
	export AMQP_CONNECTION="amqp://tbl:tblsecret@127.0.0.1:$DEAD1/$VPATH?heartbeat=7,amqp://tblb:other,pw;x@127.0.0.1:$RMQ_PORT"
	run -0 --separate-stderr fill_one 1
	where '.event == "✅ Published"' '.broker == $b' --arg b "amqp://tblb@127.0.0.1:$RMQ_PORT/$RMQ_VHOST" \
		<<<"$stderr"
	# One URL alone, with such a password: as before, one URL.
	export AMQP_CONNECTION="amqp://tblb:other,pw;x@127.0.0.1:$RMQ_PORT/$VPATH"
	run -0 --separate-stderr fill_one 2
	assert_queues "2 0 0 0"
}

@test "a list that cannot be right: 78 naming the URL, no password" {
	local good="amqp://tbl:tblsecret@127.0.0.1:$RMQ_PORT/$VPATH"
	run -78 --separate-stderr env AMQP_CONNECTION="$good,amqps://127.0.0.1:$DEAD1" amqp-fill --type artists
	jq -e '.event == "AMQP_CONNECTION: URL 2: every URL must be amqp:// or every one amqps:// (a failover must not drop TLS)"' <<<"$stderr"
	run -78 --separate-stderr env AMQP_CONNECTION="$good,amqp://127.0.0.1:$DEAD1/other" amqp-fill --type artists
	jq -e '.event == "AMQP_CONNECTION: URL 2: another vhost than the first URL'\''s (the URLs are nodes of one cluster)"' <<<"$stderr"
	run -78 --separate-stderr env AMQP_CONNECTION="$good; amqp://127.0.0.1:$DEAD1;amqp://127.0.0.1:x" amqp-fill --type artists
	jq -e '.event == "AMQP_CONNECTION: URL 3: the port must be a number from 1 to 65535"' <<<"$stderr"
	run -78 --separate-stderr env AMQP_CONNECTION="$(printf "$good%.0s," {1..16})$good" amqp-fill --type artists
	jq -e '.event == "AMQP_CONNECTION: more than 16 URLs"' <<<"$stderr"
	[[ $stderr != *tblsecret* ]] || flunk "the password is in the log: $stderr"
	# 16 are fine.
	run -0 --separate-stderr env AMQP_CONNECTION="$(printf "$good%.0s," {1..15})$good" amqp-fill --type artists </dev/null
}
