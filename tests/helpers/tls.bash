# Throwaway certificates, and servers that speak TLS with them, for the TLS
# suites (`load helpers/tls`, after helpers/common).
#
# tls_make DIR          a CA and, signed by it: a server certificate for
#                       localhost and 127.0.0.1 (server), the same one
#                       expired yesterday (expired), a client certificate
#                       for the role or user tblcert (client); besides,
#                       another CA nobody trusts (other-ca) and a client
#                       certificate signed by it (client-other).
#                       Files DIR/NAME.pem and DIR/NAME.key; the keys are
#                       0600 and owned by the caller (libpq insists).
# tls_server_copy DIR DEST USER
#                       the CA, the server certificate and key (and the
#                       expired one) copied to DEST for a server run as USER
#                       (PostgreSQL wants its key 0600 and its own)
# pg_tls_start NAME DIR a cluster of the suite's own ($TBL_TEST_TMP/pg-NAME)
#                       with ssl = on and the certificates of DIR, on
#                       127.0.0.1 and 127.0.0.2 (whose address the server
#                       certificate does not hold); TCP only through TLS:
#                       tblcert logs in by client certificate (cert), every
#                       other role by scram-sha-256. Exports what pg_start
#                       does, with POSTGRES_ADDRESS=localhost:PORT.
# pg_tls_serve NAME     serve DIR/NAME.pem (server or expired) from now on,
#                       through a configuration reload
# tls_served_end        the notAfter date of the certificate served now
#
# Keys are EC (P-256): a key costs about a millisecond, an RSA one 50 to
# 200 ms.

_tls_key() {	# FILE
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null &&
		chmod 600 "$1"
}

# _tls_sign DIR NAME CA SUBJECT DAYS [EXTENSION]: DIR/NAME.pem for the key
# DIR/NAME.key, signed by DIR/CA, valid DAYS days from now (-1: expired
# yesterday).
_tls_sign() {
	local d=$1 name=$2 ca=$3 subj=$4 days=$5 ext=${6-}
	openssl req -new -key "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null || return
	printf '%s\n' "${ext:-basicConstraints=CA:FALSE}" >"$d/$name.ext"
	# -days -1 gives notAfter one day before notBefore (OpenSSL 3.0); newer
	# releases may want the dates spelt out.
	openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
		-CAcreateserial -days "$days" -extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null ||
		openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" \
			-CAcreateserial -not_before 20200101000000Z -not_after 20200102000000Z \
			-extfile "$d/$name.ext" -out "$d/$name.pem" 2>/dev/null
}

tls_make() {
	local d=$1 ca san='subjectAltName=DNS:localhost,IP:127.0.0.1'
	mkdir -p "$d" && chmod 755 "$d" || return
	for ca in ca other-ca; do
		_tls_key "$d/$ca.key" &&
			openssl req -x509 -new -key "$d/$ca.key" -days 2 -out "$d/$ca.pem" \
				-subj "/CN=tableinator test $ca" 2>/dev/null || return
	done
	_tls_key "$d/server.key" &&
		_tls_sign "$d" server ca /CN=localhost 2 "$san" &&
		cp -p "$d/server.key" "$d/expired.key" &&
		_tls_sign "$d" expired ca /CN=localhost -1 "$san" &&
		_tls_key "$d/client.key" &&
		_tls_sign "$d" client ca /CN=tblcert 2 &&
		_tls_key "$d/client-other.key" &&
		_tls_sign "$d" client-other other-ca /CN=tblcert 2 || return
	rm -f "$d"/*.csr "$d"/*.ext "$d"/*.srl
	chmod 644 "$d"/*.pem
	openssl verify -CAfile "$d/ca.pem" "$d/server.pem" >/dev/null || return
	! openssl verify -CAfile "$d/ca.pem" "$d/expired.pem" >/dev/null 2>&1
}

tls_server_copy() {
	local d=$1 dest=$2 user=$3 f
	mkdir -p "$dest" || return
	for f in ca.pem server.pem server.key expired.pem expired.key; do
		cp "$d/$f" "$dest/$f" || return
	done
	chmod 600 "$dest"/*.key
	_tbl_own "$user" "$dest"
}

pg_tls_start() {
	local name=$1 certs=$2 data
	pg_start "$name" || return
	data=$TBL_PG_DIR/data
	tls_server_copy "$certs" "$data/tls" postgres || return
	cat >>"$data/postgresql.conf" <<-EOF
		# tests/helpers/tls.bash
		listen_addresses = '127.0.0.1,127.0.0.2'
		ssl = on
		ssl_ca_file = 'tls/ca.pem'
		ssl_cert_file = 'tls/server.pem'
		ssl_key_file = 'tls/server.key'
	EOF
	cat >"$data/pg_hba.conf" <<-EOF
		local   all all     trust
		hostssl all tblcert 127.0.0.1/32 cert
		hostssl all all     127.0.0.1/32 scram-sha-256
		hostssl all all     127.0.0.2/32 scram-sha-256
	EOF
	# listen_addresses takes a restart.
	pg_restart || return
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres -c "CREATE ROLE tblcert LOGIN" || return
	export POSTGRES_ADDRESS=localhost:$PGPORT
}

tls_served_end() {
	openssl s_client -starttls postgres -connect "127.0.0.1:$PGPORT" </dev/null 2>/dev/null |
		openssl x509 -noout -enddate 2>/dev/null
}

pg_tls_serve() {
	local want
	want=$(openssl x509 -noout -enddate -in "$TBL_PG_DIR/data/tls/$1.pem") || return
	psql -XAtq -v ON_ERROR_STOP=1 -d postgres \
		-c "ALTER SYSTEM SET ssl_cert_file = 'tls/$1.pem'" \
		-c "ALTER SYSTEM SET ssl_key_file = 'tls/$1.key'" \
		-c "SELECT pg_reload_conf()" >/dev/null || return
	# The postmaster reloads when it gets to the signal.
	wait_until 10 _tls_serving "$want"
}

_tls_serving() {
	[[ $(tls_served_end) == "$1" ]]
}
