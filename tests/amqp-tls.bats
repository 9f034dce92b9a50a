#!/usr/bin/env bats
# amqps:// against a node of its own whose TLS listener wants a client
# certificate (verify_peer, fail_if_no_peer_cert), with a throwaway CA
# (helpers/tls.bash): the server's certificate is verified (chain and name,
# for a DNS name and for an IP address) and a bad one is a configuration
# error; amqp-drain and amqp-fill log in with a client certificate, and
# without one (or with one of another authority) the broker refuses them,
# 78 at once, saying why; a whole load under the supervisor over amqps://
# stores the records exactly (issue 9, "TLS to RabbitMQ, for real").
# The node is the suite's own: the run's node (rabbitmq) is not needed.
# needs: postgres

load helpers/common
load helpers/broker
load helpers/tls
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=120

setup_file() {
	require_bin amqp-drain amqp-fill tblhash tblbatch tblload
	supervisor_tree
	export CERTS=$TBL_TEST_TMP/tls-amqp
	tls_make "$CERTS" || return
	rmq_prepare tls || return
	local d=$TBL_RMQ_DIR/tls
	tls_server_copy "$CERTS" "$d" rabbitmq || return
	TLS_PORT=$(tbl_free_port)
	cat >"$TBL_RMQ_DIR/conf.d/tls.conf" <<-EOF
		listeners.ssl.1 = 127.0.0.1:$TLS_PORT
		listeners.ssl.2 = 127.0.0.2:$TLS_PORT
		ssl_options.cacertfile = $d/ca.pem
		ssl_options.certfile = $d/server.pem
		ssl_options.keyfile = $d/server.key
		ssl_options.verify = verify_peer
		ssl_options.fail_if_no_peer_cert = true
	EOF
	_tbl_own rabbitmq "$TBL_RMQ_DIR"
	rmq_launch && rmq_wait || return
	export TLS_PORT CA=$CERTS/ca.pem OTHER_CA=$CERTS/other-ca.pem
	export CERT="certfile=$CERTS/client.pem&keyfile=$CERTS/client.key"
	# The reference for the load: the same bodies loaded without a broker.
	reference_load
}

teardown_file() {
	rmq_stop
}

teardown() {
	sup_teardown
}

url() {	# HOST [QUERY] [VHOST]
	printf 'amqps://tbl:tblsecret@%s:%s/%s%s' "$1" "$TLS_PORT" "${3:-%2F}" "${2:+?$2}"
}

# assert_tls_only: since rmq_log_mark, the broker accepted connections, all
# on the TLS listener.
assert_tls_only() {
	local acc
	acc=$(rmq_log_since | grep -a 'accepting AMQP connection') || flunk "no connection accepted"
	assert_equal "" "$(grep -v -F -- "-> 127.0.0.1:$TLS_PORT)" <<<"$acc")"
}

EMPTY='{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'

@test "the server's certificate verifies by name and by IP address, with cafile" {
	AMQP_CONNECTION=$(url localhost "cafile=$CA&$CERT") run -1 --separate-stderr amqp-drain --check
	assert_output "$EMPTY"
	AMQP_CONNECTION=$(url 127.0.0.1 "cafile=$CA&$CERT") run -1 --separate-stderr amqp-drain --check
	assert_output "$EMPTY"
}

@test "a certificate of an authority we do not trust is refused: exit 78, no password in the message" {
	# The system's authorities (no cafile) do not know the test CA.
	AMQP_CONNECTION=$(url localhost "$CERT") run -78 --separate-stderr amqp-drain --check
	assert_equal "" "$output"
	jq -e '.exit_status == 78 and (.event | test("verif"))' <<<"$stderr"
	AMQP_CONNECTION=$(url localhost "cafile=$OTHER_CA&$CERT") run -78 --separate-stderr amqp-drain --check
	! grep -q tblsecret <<<"$stderr"
}

@test "an address the certificate does not hold is refused; no_verify_ssl=1 takes it anyway" {
	# The node listens on 127.0.0.2 too; its certificate names localhost and
	# 127.0.0.1 only.
	AMQP_CONNECTION=$(url 127.0.0.2 "cafile=$CA&$CERT") run -78 --separate-stderr amqp-drain --check
	jq -e '.exit_status == 78 and (.event | test("verif"))' <<<"$stderr"
	AMQP_CONNECTION=$(url 127.0.0.2 "cafile=$CA&no_verify_ssl=1&$CERT") run -1 --separate-stderr amqp-drain --check
	assert_output "$EMPTY"
	AMQP_CONNECTION=$(url localhost "no_verify_ssl=1&$CERT") run -1 --separate-stderr amqp-drain --check
	assert_output "$EMPTY"
}

@test "without a client certificate, or with one of another authority, the broker refuses: 78 at once, saying why" {
	local tool q
	for tool in amqp-drain amqp-fill; do
		SECONDS=0
		AMQP_CONNECTION=$(url localhost "cafile=$CA") run -78 --separate-stderr \
			with_timeout 20 $tool $([[ $tool == amqp-drain ]] && echo --check || echo --type labels) </dev/null
		((SECONDS < 5)) || flunk "$tool took $SECONDS s"
		assert_equal 1 "${#stderr_lines[@]}"
		jq -e '.exit_status == 78 and
			(.event | contains("(the broker wants a client certificate: certfile= and keyfile=)"))' \
			<<<"$stderr" >/dev/null || flunk "$tool: $stderr"
		q="cafile=$CA&certfile=$CERTS/client-other.pem&keyfile=$CERTS/client-other.key"
		AMQP_CONNECTION=$(url localhost "$q") run -78 --separate-stderr \
			with_timeout 20 $tool $([[ $tool == amqp-drain ]] && echo --check || echo --type labels) </dev/null
		jq -e '.exit_status == 78 and
			(.event | contains("(the broker does not take our client certificate)"))' \
			<<<"$stderr" >/dev/null || flunk "$tool: $stderr"
		[[ $stderr != *tblsecret* ]] || flunk "password in: $stderr"
	done
	# The broker saw why.
	grep -q -a 'certificate_required' "$RMQ_LOG"
}

@test "amqp-fill and amqp-drain log in with a client certificate: messages go through TLS both ways" {
	export AMQP_CONNECTION
	rmq_newvhost
	rmq_log_mark
	AMQP_CONNECTION=$(url localhost "cafile=$CA&$CERT" "$(_rmq_urlencode "$RMQ_VHOST")")
	samples labels 300 | with_timeout 60 amqp-fill --type labels
	run -0 --separate-stderr amqp-drain --check
	jq -e '.labels == 300 and .total == 300' <<<"$output"
	with_timeout 60 amqp-drain --until-empty >"$BATS_TEST_TMPDIR/capture" 2>/dev/null
	assert_equal "$(samples labels 300 | jq -r .id | sort)" "$(jq -r .body.id "$BATS_TEST_TMPDIR/capture" | sort)"
	run -1 --separate-stderr amqp-drain --check
	jq -e '.total == 0' <<<"$output"
	assert_tls_only
}

@test "a whole load under the supervisor over amqps:// (AMQP_CONNECTION_FILE) stores the records exactly" {
	local t
	sup_setup
	AMQP_CONNECTION=$(url localhost "cafile=$CA&$CERT" "$(_rmq_urlencode "$RMQ_VHOST")")
	publish_samples
	for t in "${TYPES[@]}"; do file_complete "$t" | publish "$t"; done
	printf '%s\n' "$AMQP_CONNECTION" >"$BATS_TEST_TMPDIR/amqp-url"
	chmod 600 "$BATS_TEST_TMPDIR/amqp-url"
	export AMQP_CONNECTION_FILE=$BATS_TEST_TMPDIR/amqp-url
	unset AMQP_CONNECTION
	sup_start
	wait_until 90 state_is idle
	assert_all_stored
	assert_tls_only
	sup_stops
	run ! grep -r -a -l tblsecret "$LOG" "$TBL_STATE_DIR"
}
