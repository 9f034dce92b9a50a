#!/usr/bin/env bats
# amqps:// against a node of its own with a TLS listener and a throwaway CA:
# the server's certificate is verified (chain and name, for a DNS name and
# for an IP address), a bad one is a configuration error, and messages go
# through both ways.
# needs: rabbitmq

load helpers/common
bats_require_minimum_version 1.5.0

setup_file() {
	require_bin amqp-drain amqp-fill
	rmq_prepare tls
	local d=$TBL_RMQ_DIR/tls
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
			-subj "/CN=tableinator test CA" 2>/dev/null &&
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr \
			-subj "/CN=localhost" 2>/dev/null &&
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext &&
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
			-out server.pem -days 2 -extfile ext 2>/dev/null &&
		# A second CA nobody trusts, and a certificate of the right CA for
		# another name.
		openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem \
			-days 2 -subj "/CN=somebody else" 2>/dev/null
	) || return
	chmod 755 "$d" && chmod 644 "$d"/*
	TLS_PORT=$(tbl_free_port)
	cat >"$TBL_RMQ_DIR/conf.d/tls.conf" <<-EOF
		listeners.ssl.1 = 127.0.0.1:$TLS_PORT
		listeners.ssl.2 = 127.0.0.2:$TLS_PORT
		ssl_options.cacertfile = $d/ca.pem
		ssl_options.certfile = $d/server.pem
		ssl_options.keyfile = $d/server.key
		ssl_options.verify = verify_none
		ssl_options.fail_if_no_peer_cert = false
	EOF
	_tbl_own rabbitmq "$TBL_RMQ_DIR"
	rmq_launch && rmq_wait
	export TLS_PORT CA=$d/ca.pem OTHER_CA=$d/other-ca.pem
}

teardown_file() {
	rmq_stop
}

url() {	# HOST [QUERY]
	printf 'amqps://tbl:tblsecret@%s:%s/%%2F%s' "$1" "$TLS_PORT" "${2:+?$2}"
}

@test "the server's certificate verifies by name and by IP address, with cafile" {
	AMQP_CONNECTION=$(url localhost "cafile=$CA") run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
	AMQP_CONNECTION=$(url 127.0.0.1 "cafile=$CA") run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
}

@test "a certificate of an authority we do not trust is refused: exit 78, no password in the message" {
	# The system's authorities (no cafile) do not know the test CA.
	AMQP_CONNECTION=$(url localhost) run -78 --separate-stderr amqp-drain --check
	assert_equal "" "$output"
	jq -e '.exit_status == 78 and (.event | test("verif"))' <<<"$stderr"
	AMQP_CONNECTION=$(url localhost "cafile=$OTHER_CA") run -78 --separate-stderr amqp-drain --check
	! grep -q tblsecret <<<"$stderr"
}

@test "an address the certificate does not hold is refused; no_verify_ssl=1 takes it anyway" {
	# The node listens on 127.0.0.2 too; its certificate names localhost and
	# 127.0.0.1 only.
	AMQP_CONNECTION=$(url 127.0.0.2 "cafile=$CA") run -78 --separate-stderr amqp-drain --check
	jq -e '.exit_status == 78 and (.event | test("verif"))' <<<"$stderr"
	AMQP_CONNECTION=$(url 127.0.0.2 "cafile=$CA&no_verify_ssl=1") run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
	AMQP_CONNECTION=$(url localhost "no_verify_ssl=1") run -1 --separate-stderr amqp-drain --check
	assert_output '{"artists":null,"labels":null,"masters":null,"releases":null,"total":0}'
}

@test "messages go through TLS both ways" {
	export AMQP_CONNECTION
	AMQP_CONNECTION=$(url localhost "cafile=$CA")
	zcat "$FIXTURES/messages/discogs_20200806_labels.ndjson.gz" | head -n 300 |
		with_timeout 60 amqp-fill --type labels
	run -0 --separate-stderr amqp-drain --check
	jq -e '.labels == 300 and .total == 300' <<<"$output"
	with_timeout 60 amqp-drain --until-empty >"$BATS_TEST_TMPDIR/capture" 2>/dev/null
	assert_equal 300 "$(wc -l <"$BATS_TEST_TMPDIR/capture")"
	run -1 --separate-stderr amqp-drain --check
	jq -e '.total == 0' <<<"$output"
}
