/*
 * tblload's connection to PostgreSQL before any statement: its settings
 * from the environment (POSTGRES_* over libpq's PG* variables), and what a
 * failure means, read from its SQLSTATE or, before there is one, from
 * libpq's message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "dbconn.h"
#include "log.h"
#include "num.h"
#include "util.h"

#define MAX_HOSTS	16	/* in POSTGRES_ADDRESS */

/*
 * One host[:port] or [v6-address][:port] of POSTGRES_ADDRESS, n bytes at
 * addr: added to the host and port lists libpq takes (comma-separated; an
 * IPv6 address there has no brackets), and as written to the list of
 * host:port for messages. The value is never echoed: a URL or
 * user:password@host written here would carry a password into the log and
 * into tblload.json.
 */
static void
parse_host(struct dbconn *db, const char *addr, size_t len)
{
	/* A name, an IPv4 address or a socket directory; in brackets, an IPv6
	 * address, perhaps with a zone (fe80::1%eth0). */
	static const char name[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789.-_/";
	static const char v6addr[] = "0123456789abcdefABCDEF:.";
	const char *host, *end, *port, *why, *stop = addr + len;
	char *h, *ps;
	long long n;
	size_t hl, ok;
	bool v6;

	if ((v6 = addr[0] == '[')) {
		host = addr + 1;
		if ((end = memchr(host, ']', (size_t)(stop - host))) == NULL)
			die(EXIT_CONFIG, "POSTGRES_ADDRESS: missing ']' after the IPv6 address");
		if (end + 1 < stop && end[1] != ':')
			die(EXIT_CONFIG, "POSTGRES_ADDRESS: unexpected text after ']' "
			    "(want [address]:port)");
		port = end + 1 < stop ? end + 2 : NULL;
	} else {
		host = addr;
		end = memchr(host, ':', len);
		if (end == NULL)
			end = stop;
		port = end < stop ? end + 1 : NULL;
	}
	hl = (size_t)(end - host);
	if (hl == 0)
		die(EXIT_CONFIG, "POSTGRES_ADDRESS: no host (want host[:port], several separated "
		    "by commas)");
	if (hl > 255)
		die(EXIT_CONFIG, "POSTGRES_ADDRESS: host name too long");
	h = xstrndup(host, hl);
	if (!v6)
		ok = strspn(h, name);
	else if ((ok = strspn(h, v6addr)) < hl && h[ok] == '%')
		ok += 1 + strspn(h + ok + 1, name);
	if (ok < hl)
		die(EXIT_CONFIG, "POSTGRES_ADDRESS: the host is no host name or address "
		    "(want host[:port] or [IPv6-address]:port, several separated by commas)");
	n = 5432;
	if (port != NULL) {
		ps = xstrndup(port, (size_t)(stop - port));
		if (parse_ll(ps, 1, 65535, &n, &why) < 0)
			die(EXIT_CONFIG, "POSTGRES_ADDRESS: the port is %s (want 1 to 65535)", why);
		free(ps);
	}
	buf_printf(&db->hosts, "%s%s", db->nhosts ? "," : "", h);
	buf_printf(&db->ports, "%s%lld", db->nhosts ? "," : "", n);
	buf_printf(&db->servers, v6 ? "%s[%s]:%lld" : "%s%s:%lld", db->nhosts ? "," : "", h, n);
	db->nhosts++;
	free(h);
}

/*
 * POSTGRES_ADDRESS: host[:port], or several separated by commas (a primary
 * and its standbys): libpq tries them in turn, and with several, takes the
 * first that accepts writes (target_session_attrs=read-write).
 */
static void
parse_address(struct dbconn *db, const char *addr)
{
	const char *p, *comma;

	if (strstr(addr, "://") != NULL)
		die(EXIT_CONFIG, "POSTGRES_ADDRESS: want host[:port], not a URL (the user name "
		    "and password go in POSTGRES_USERNAME and POSTGRES_PASSWORD)");
	if (strchr(addr, '@') != NULL)
		die(EXIT_CONFIG, "POSTGRES_ADDRESS: want host[:port], without a user name or "
		    "password (they go in POSTGRES_USERNAME and POSTGRES_PASSWORD)");
	for (p = addr;; p = comma + 1) {
		if (db->nhosts == MAX_HOSTS)
			die(EXIT_CONFIG, "POSTGRES_ADDRESS: more than %d hosts", MAX_HOSTS);
		if ((comma = strchr(p, ',')) == NULL)
			comma = p + strlen(p);
		parse_host(db, p, (size_t)(comma - p));
		if (*comma == '\0')
			break;
	}
}

/*
 * A TLS file named by one of our variables: libpq's own message about a
 * file it cannot read comes only once it connects, and names no variable.
 */
static void
tls_file(struct dbconn *db, int *n, const char *key, const char *var, const char *v)
{
	int fd;

	if (v == NULL)
		return;
	/* libpq 16 and later read "system" as the system's authorities. */
	if (strcmp(key, "sslrootcert") != 0 || strcmp(v, "system") != 0) {
		if ((fd = open(v, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
			die(EXIT_CONFIG, "%s: cannot read %s: %s", var, v, strerror(errno));
		(void)close(fd);
	}
	db->keys[*n] = key;
	db->vals[(*n)++] = v;
}

void
dbconn_from_env(struct dbconn *db)
{
	static const char *const sslmodes[] = {
		"disable", "allow", "prefer", "require", "verify-ca", "verify-full"
	};
	const char *addr, *v, *mode;
	size_t i;
	int n = 0;

	if ((addr = env_str("POSTGRES_ADDRESS", NULL)) != NULL) {
		parse_address(db, addr);
		db->keys[n] = "host", db->vals[n++] = db->hosts.p;
		db->keys[n] = "port", db->vals[n++] = db->ports.p;
		/* Unless PGTARGETSESSIONATTRS says otherwise: with a primary and
		 * its standbys listed, the one that takes writes. */
		if (db->nhosts > 1 && env_str("PGTARGETSESSIONATTRS", NULL) == NULL)
			db->keys[n] = "target_session_attrs", db->vals[n++] = "read-write";
	}
	if ((v = env_str("POSTGRES_SYNC_REQUIRED", NULL)) != NULL) {
		if (strcasecmp(v, "true") == 0)
			db->sync_required = true;
		else if (strcasecmp(v, "false") != 0)
			die(EXIT_CONFIG, "POSTGRES_SYNC_REQUIRED: '%s' is not true or false", v);
	}
	if ((v = env_str("POSTGRES_USERNAME", NULL)) != NULL)
		db->keys[n] = "user", db->vals[n++] = v;
	if ((db->password = env_secret("POSTGRES_PASSWORD", "POSTGRES_PASSWORD_FILE")) != NULL)
		db->keys[n] = "password", db->vals[n++] = db->password;
	/* Unset, libpq's PGSSLMODE (or its default, prefer) holds. */
	if ((mode = env_str("POSTGRES_SSLMODE", NULL)) != NULL) {
		for (i = 0; i < NELEM(sslmodes) && strcmp(mode, sslmodes[i]) != 0; i++)
			;
		if (i == NELEM(sslmodes))
			die(EXIT_CONFIG, "POSTGRES_SSLMODE: '%s' is not disable, allow, prefer, "
			    "require, verify-ca or verify-full", mode);
		db->keys[n] = "sslmode", db->vals[n++] = mode;
	} else
		mode = env_str("PGSSLMODE", NULL);
	tls_file(db, &n, "sslrootcert", "POSTGRES_SSLROOTCERT",
	    env_str("POSTGRES_SSLROOTCERT", NULL));
	tls_file(db, &n, "sslcert", "POSTGRES_SSLCERT", env_str("POSTGRES_SSLCERT", NULL));
	tls_file(db, &n, "sslkey", "POSTGRES_SSLKEY", env_str("POSTGRES_SSLKEY", NULL));
	db->dbname = env_str("POSTGRES_DATABASE", env_str("PGDATABASE", "discogsography"));
	db->keys[n] = "dbname", db->vals[n++] = db->dbname;
	db->keys[n] = "application_name", db->vals[n++] = "tblload";
	db->keys[n] = "connect_timeout", db->vals[n++] = "10";
	/* "relation already exists, skipping" at every start is not news. */
	db->keys[n] = "options", db->vals[n++] = "-c client_min_messages=warning -c temp_buffers=32MB";
	db->keys[n] = NULL;
	db->vals[n] = NULL;
	snprintf(db->where, sizeof(db->where), "database %s on %s%s%s", db->dbname,
	    db->nhosts ? db->servers.p : env_str("PGHOST", "the default host"),
	    mode ? ", sslmode " : "", mode ? mode : "");
}


void
dbconn_free(struct dbconn *db)
{
	buf_free(&db->hosts);
	buf_free(&db->ports);
	buf_free(&db->servers);
	secret_free(db->password);
	db->password = NULL;
}

/* Copy a libpq message into err without its trailing newline. */
void
db_set_err(char *err, size_t errsz, const char *sqlstate, const char *msg)
{
	size_t n;

	if (sqlstate != NULL && *sqlstate)
		snprintf(err, errsz, "%s %s", sqlstate, msg ? msg : "");
	else
		snprintf(err, errsz, "%s", msg ? msg : "unknown error");
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
	for (; n > 0; n--)
		if (err[n - 1] == '\n' || err[n - 1] == '\t')
			err[n - 1] = ' ';
}

/*
 * Sort an error into what to do about the batch, by SQLSTATE class. A
 * server that shuts down (57P01, 57P03, class 57) or answers that it is
 * read-only (25006: a standby, or a primary demoted under us) is one to
 * leave: transient, on a new connection (db_usable), which with several
 * hosts libpq makes to the one that takes writes now.
 */
enum outcome
db_classify_state(const char *st)
{
	if (st == NULL || strlen(st) != 5)
		return OUT_TRANSIENT;
	if (strncmp(st, "08", 2) == 0 || strncmp(st, "40", 2) == 0 ||
	    strncmp(st, "53", 2) == 0 || strncmp(st, "57", 2) == 0 ||
	    strncmp(st, "58", 2) == 0 || strcmp(st, "55P03") == 0 ||
	    strcmp(st, "55006") == 0 || strcmp(st, "25006") == 0)
		return OUT_TRANSIENT;
	if (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0 ||
	    strncmp(st, "54", 2) == 0)
		return OUT_DATA;
	if (strncmp(st, "28", 2) == 0 || strncmp(st, "42", 2) == 0 ||
	    strncmp(st, "3D", 2) == 0 || strncmp(st, "3F", 2) == 0 ||
	    strncmp(st, "0A", 2) == 0)
		return OUT_CONFIG;
	return OUT_FATAL;
}

/*
 * A connection failure is a configuration error when the server answered
 * and refused us (credentials, missing role or database, pg_hba), or when
 * TLS cannot be had as configured: the server has none but sslmode wants
 * it, its certificate fails verification (unknown authority, expired) or
 * names another host, it refuses our client certificate, a file is
 * missing. It is temporary when the server cannot be reached, or is
 * starting or stopping. libpq gives no SQLSTATE before the connection is
 * up, so this reads PQerrorMessage (untranslated: the tools never call
 * setlocale).
 *
 * Whole messages changed between libpq 13 and 18 (13: "could not connect
 * to server: ...", 14 on: "connection to server at ... failed: ...", each
 * address tried adding its own line), so only fragments that stayed the
 * same are matched. The TLS reasons are OpenSSL's (1.1 and 3), quoted by
 * libpq after "SSL error: ": its alerts all read "sslv3 alert ...",
 * "tlsv1 alert ..." or "tlsv13 alert ...".
 */
enum outcome
db_classify_connect(PGconn *c)
{
	static const char *const transient[] = {
		"starting up", "shutting down", "recovery mode", "not yet accepting connections",
		"too many clients", "too many connections", "connection slots are reserved",
	};
	static const char *const config[] = {
		/* The server refused us. */
		"password authentication failed", "authentication failed",
		"no password supplied", "no pg_hba.conf entry", "does not exist",
		"permission denied",
		/* A proxy's words (pgbouncer). */
		"SSL required",
		/* "server does not support SSL, but SSL was required" (13 to 18). */
		"does not support SSL",
		/* "GSSAPI encryption required but was impossible ..." */
		"encryption required",
		/* "SSL error: certificate verify failed" (an unknown authority, an
		 * expired certificate), "server certificate for \"x\" does not
		 * match host name \"y\"", "connection requires a valid client
		 * certificate", "root certificate file ... does not exist", ... */
		"certificate", "does not match host name",
		/* "private key file ... has group or world access", ... */
		"private key",
		/* The server's TLS refused ours: "tlsv1 alert unknown ca" (a client
		 * certificate of another authority), "sslv3 alert handshake
		 * failure", "tlsv1 alert protocol version". */
		"sslv3 alert", "tlsv1 alert", "tlsv13 alert",
		"unsupported protocol", "wrong version number", "no protocols available",
		/* libpq's own checks of sslmode, sslrootcert=system (16 on). */
		"sslmode", "sslrootcert",
	};
	const char *msg = PQerrorMessage(c);
	size_t i;

	if (PQconnectionNeedsPassword(c))
		return OUT_CONFIG;
	for (i = 0; i < NELEM(transient); i++)
		if (strstr(msg, transient[i]) != NULL)
			return OUT_TRANSIENT;
	for (i = 0; i < NELEM(config); i++)
		if (strstr(msg, config[i]) != NULL)
			return OUT_CONFIG;
	return OUT_TRANSIENT;
}
