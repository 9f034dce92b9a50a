#!/usr/bin/env bats
# tblload over TLS to PostgreSQL (issue 9, "TLS to PostgreSQL, for real"),
# against a cluster of the suite's own with ssl = on and a throwaway CA
# (helpers/tls.bash) that takes TCP connections through TLS only:
# verify-full loads; the wrong CA, a host name the certificate does not
# hold and an expired certificate each exit 78 at once, naming the cause;
# a client certificate logs in (cert in pg_hba), none or a foreign one
# exits 78. The run's cluster, which has no TLS, exits 78 at once when TLS
# is required (it used to be retried until 75); a server that is down
# stays temporary (75). POSTGRES_SSLMODE and the file variables are checked
# strictly, and libpq's PGSSL* variables work when ours are unset.
# needs: postgres

load helpers/common
load helpers/replay
load helpers/tls
bats_require_minimum_version 1.5.0
BATS_TEST_TIMEOUT=60

setup_file() {
	require_bin tblload tblbatch tblhash
	# A test changes the certificate the cluster serves: one at a time.
	export BATS_NO_PARALLELIZE_WITHIN_FILE=true
	# The run's cluster, without TLS, before pg_tls_start points at ours.
	export PLAIN_ADDRESS=$POSTGRES_ADDRESS
	export CERTS=$TBL_TEST_TMP/tls-pg
	tls_make "$CERTS" || return
	pg_tls_start tls "$CERTS"
}

teardown_file() {
	pg_stop
}

setup() {
	T=$BATS_TEST_TMPDIR
	# Else libpq reads ~/.postgresql/root.crt, postgresql.crt and .key.
	export HOME=$T
	pg_newdb
	head -n 3 "$(envelopes labels)" | frame >"$T/in"
	export POSTGRES_SSLMODE=verify-full POSTGRES_SSLROOTCERT=$CERTS/ca.pem
}

teardown() {
	[[ $BATS_TEST_DESCRIPTION != *expired* ]] || pg_tls_serve server
}

# refused PATTERN [ENV ARGS...]: tblload with these settings (env's
# arguments: -u NAME, NAME=VALUE) exits 78 within 5 s (no retries), in one
# log line that contains PATTERN and no password, having written nothing.
refused() {
	local pat=$1
	shift
	SECONDS=0
	run -78 --separate-stderr with_timeout 40 env "$@" TBLLOAD_RETRY_MAX=30 tblload <"$T/in"
	((SECONDS < 5)) || flunk "exit 78 after $SECONDS s: $stderr"
	assert_equal 1 "${#stderr_lines[@]}" || flunk "$stderr"
	jq -e --arg p "$pat" '.level == "error" and .exit_status == 78 and (.event | contains($p))' \
		<<<"$stderr" >/dev/null || flunk "expected '$pat' in: $stderr"
	[[ $stderr != *tblsecret* ]] || flunk "password in: $stderr"
	assert_equal 0 "$(count labels 2>/dev/null || echo 0)"
}

@test "verify-full: tblload loads over TLS, by host name and by IP address" {
	run -0 --separate-stderr tblload <"$T/in"
	assert_contains "$stderr" "🐘 Connected to PostgreSQL (database $POSTGRES_DATABASE on $POSTGRES_ADDRESS, sslmode verify-full), schema ready"
	assert_equal 3 "$(count labels)"
	pg_newdb
	POSTGRES_ADDRESS=127.0.0.1:$PGPORT run -0 --separate-stderr tblload <"$T/in"
	assert_equal 3 "$(count labels)"
}

@test "the wrong CA, a host name the certificate does not hold: 78 at once, naming the cause" {
	refused "SSL error: certificate verify failed" POSTGRES_SSLROOTCERT="$CERTS/other-ca.pem"
	# The cluster listens on 127.0.0.2 too; the certificate names localhost
	# and 127.0.0.1 only.
	refused 'does not match host name "127.0.0.2"' POSTGRES_ADDRESS="127.0.0.2:$PGPORT"
	# Without TLS the cluster has no pg_hba line for us.
	refused 'no pg_hba.conf entry' POSTGRES_SSLMODE=disable
	# verify-ca does not check the name.
	POSTGRES_SSLMODE=verify-ca POSTGRES_ADDRESS=127.0.0.2:$PGPORT run -0 --separate-stderr tblload <"$T/in"
	assert_equal 3 "$(count labels)"
}

@test "an expired server certificate: 78 at once, naming the cause" {
	pg_tls_serve expired
	refused "SSL error: certificate verify failed"
	# require does not verify: it loads.
	POSTGRES_SSLMODE=require run -0 --separate-stderr env -u POSTGRES_SSLROOTCERT tblload <"$T/in"
	assert_equal 3 "$(count labels)"
}

@test "a client certificate logs in (cert in pg_hba); none, or one of another authority: 78 at once" {
	psqlq -c "ALTER DATABASE \"$POSTGRES_DATABASE\" OWNER TO tblcert"
	export POSTGRES_USERNAME=tblcert
	unset POSTGRES_PASSWORD
	POSTGRES_SSLCERT=$CERTS/client.pem POSTGRES_SSLKEY=$CERTS/client.key \
		run -0 --separate-stderr tblload <"$T/in"
	assert_equal 3 "$(count labels)"
	assert_equal tblcert "$(psqlq -c "SELECT tableowner FROM pg_tables WHERE tablename = 'labels'")"
	psqlq -c "TRUNCATE labels"
	refused "connection requires a valid client certificate"
	refused "SSL error: tlsv1 alert unknown ca" POSTGRES_SSLCERT="$CERTS/client-other.pem" \
		POSTGRES_SSLKEY="$CERTS/client-other.key"
	# libpq's own variables, when ours are unset.
	PGSSLCERT=$CERTS/client.pem PGSSLKEY=$CERTS/client.key run -0 --separate-stderr tblload <"$T/in"
	assert_equal 3 "$(count labels)"
}

@test "a server without TLS while TLS is required: 78 at once, naming the cause (was: retried until 75)" {
	# libpq's PGSSLMODE (POSTGRES_SSLMODE unset), then ours.
	refused "server does not support SSL, but SSL was required" -u POSTGRES_SSLMODE \
		-u POSTGRES_SSLROOTCERT POSTGRES_ADDRESS="$PLAIN_ADDRESS" PGSSLMODE=require
	refused "server does not support SSL, but SSL was required" \
		POSTGRES_ADDRESS="$PLAIN_ADDRESS" POSTGRES_SSLMODE=require
	refused "server does not support SSL, but SSL was required" \
		POSTGRES_ADDRESS="$PLAIN_ADDRESS"
	# prefer (libpq's default) falls back to a connection without TLS.
	POSTGRES_ADDRESS=$PLAIN_ADDRESS run -0 --separate-stderr env -u POSTGRES_SSLMODE \
		-u POSTGRES_SSLROOTCERT tblload </dev/null
}

@test "prefer (the default) uses TLS where the server has it" {
	# This cluster takes TCP through TLS only.
	run -0 --separate-stderr env -u POSTGRES_SSLMODE -u POSTGRES_SSLROOTCERT tblload <"$T/in"
	assert_contains "$stderr" "(database $POSTGRES_DATABASE on $POSTGRES_ADDRESS), schema ready"
	assert_equal 3 "$(count labels)"
}

@test "a TLS server that is down is temporary: retried, then 75" {
	local port
	port=$(tbl_free_port)
	POSTGRES_ADDRESS=localhost:$port run -75 --separate-stderr with_timeout 20 tblload --retry-max 1 <"$T/in"
	jq -e 'select(.level == "error") | .exit_status == 75 and
		(.event | startswith("PostgreSQL unavailable for 1 s, giving up"))' <<<"$stderr"
}

@test "POSTGRES_SSLMODE takes libpq's values only; a TLS file that cannot be read: 78 naming the variable" {
	local m
	for m in verify_full Verify-Full VERIFY-FULL on true 1 "require "; do
		POSTGRES_SSLMODE=$m run -78 --separate-stderr tblload </dev/null
		jq -e --arg m "$m" '.exit_status == 78 and .event == "POSTGRES_SSLMODE: '\''\($m)'\'' is not disable, allow, prefer, require, verify-ca or verify-full"' \
			<<<"$stderr" >/dev/null || flunk "POSTGRES_SSLMODE='$m': $stderr"
	done
	for m in disable allow prefer require verify-ca; do
		POSTGRES_SSLMODE=$m run --separate-stderr tblload </dev/null
		[[ $stderr != *POSTGRES_SSLMODE* ]] || flunk "POSTGRES_SSLMODE=$m: $stderr"
	done
	for m in POSTGRES_SSLROOTCERT POSTGRES_SSLCERT POSTGRES_SSLKEY; do
		run -78 --separate-stderr env "$m=$T/nothing.pem" tblload </dev/null
		jq -e --arg e "$m: cannot read $T/nothing.pem: No such file or directory" \
			'.exit_status == 78 and .event == $e' <<<"$stderr" >/dev/null || flunk "$m: $stderr"
	done
}
