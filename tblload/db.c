#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "log.h"
#include "num.h"
#include "util.h"

#define NPARAMS	14	/* connection keywords at most */
#define COPY_CHUNK	(256 * 1024)	/* bytes of COPY data per PQputCopyData */

struct db {
	PGconn		*conn;
	bool		 staged;	/* staging tables exist on this connection */
	bool		 schema_done;
	const char	*keys[NPARAMS + 1];
	const char	*vals[NPARAMS + 1];
	struct buf	 hosts, ports;	/* POSTGRES_ADDRESS as libpq takes it */
	struct buf	 servers;	/* and as host:port,... for messages */
	int		 nhosts;
	bool		 sync_required;	/* POSTGRES_SYNC_REQUIRED */
	char		*password;	/* POSTGRES_PASSWORD, or the file's */
	const char	*dbname;
	char		 where[384];
	struct buf	 sql[NTABLES];	/* upsert statement per record type */
	char		 sqlstate[6];	/* of the last error */
	bool		 copy_staged, copy_failed;	/* the COPY going on */
	char		 copy_err[256];
};

static void (*wait_hook)(void);

void
db_set_wait_hook(void (*hook)(void))
{
	wait_hook = hook;
}

/*
 * Wait until the next result can be read without blocking, calling the
 * wait hook (tblload's heartbeat) every second meanwhile, so that a batch
 * PostgreSQL takes long over never looks like a stuck pipeline.
 */
static void
await_input(struct db *db)
{
	struct pollfd p;
	int n;

	while (PQisBusy(db->conn)) {
		p.fd = PQsocket(db->conn);
		p.events = POLLIN;
		if (p.fd < 0)
			return;
		if ((n = poll(&p, 1, 1000)) == 0 && wait_hook != NULL)
			wait_hook();
		if (n < 0 && errno != EINTR)
			return;
		if (n > 0 && PQconsumeInput(db->conn) == 0)
			return;		/* PQgetResult reports the failure */
	}
}

/*
 * Like PQexec / PQexecParams (nparams > 0), waiting with the hook: the
 * error result if any statement failed, else the last one. A COPY's
 * PGRES_COPY_IN is returned at once, for the caller to send the data; any
 * other outcome is read to the end, so that the connection is ready for the
 * next command (a COPY refused before it starts, by a lock timeout say,
 * must not leave its results unread: the ROLLBACK after it would fail with
 * "another command is already in progress").
 */
static PGresult *
run(struct db *db, const char *sql, int nparams, const char *const *params)
{
	PGresult *res, *keep = NULL;
	ExecStatusType st;

	if ((nparams > 0 ? PQsendQueryParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0) :
	    PQsendQuery(db->conn, sql)) == 0)
		return NULL;
	for (;;) {
		await_input(db);
		if ((res = PQgetResult(db->conn)) == NULL)
			break;
		st = PQresultStatus(res);
		if (st == PGRES_COPY_IN && keep == NULL)
			return res;
		if (keep != NULL && (PQresultStatus(keep) == PGRES_FATAL_ERROR ||
		    PQresultStatus(keep) == PGRES_NONFATAL_ERROR) && st != PGRES_FATAL_ERROR)
			PQclear(res);	/* the first error is the one to report */
		else {
			PQclear(keep);
			keep = res;
		}
	}
	return keep;
}

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
parse_host(struct db *db, const char *addr, size_t len)
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
parse_address(struct db *db, const char *addr)
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
tls_file(struct db *db, int *n, const char *key, const char *var, const char *v)
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

struct db *
db_new(void)
{
	static const char *const sslmodes[] = {
		"disable", "allow", "prefer", "require", "verify-ca", "verify-full"
	};
	struct db *db = xcalloc(1, sizeof(*db));
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
	return db;
}

void
db_schema_applied(struct db *db)
{
	db->schema_done = true;
}

const char *
db_describe(const struct db *db)
{
	return db->where;
}

void
db_close(struct db *db)
{
	int i;

	if (db == NULL)
		return;
	if (db->conn != NULL)
		PQfinish(db->conn);
	for (i = 0; i < NTABLES; i++)
		buf_free(&db->sql[i]);
	buf_free(&db->hosts);
	buf_free(&db->ports);
	buf_free(&db->servers);
	secret_free(db->password);
	free(db);
}

/* Copy a libpq message into err without its trailing newline. */
static void
set_err(char *err, size_t errsz, const char *sqlstate, const char *msg)
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
static enum outcome
classify_state(const char *st)
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

/* The outcome of a result that is not what was wanted. */
static enum outcome
result_error(struct db *db, PGresult *res, char *err, size_t errsz)
{
	const char *st = NULL, *msg, *ctx, *det;
	char full[1024];

	if (res != NULL) {
		st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		det = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
		ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
		if (msg == NULL)
			msg = PQerrorMessage(db->conn);
		/* A refused row's reason is the message and its detail; the context
		 * of a COPY names the staging table and repeats the row. */
		if (classify_state(st) == OUT_DATA)
			ctx = NULL;
		snprintf(full, sizeof(full), "%s%s%s%s%s%s", msg, det ? ": " : "", det ? det : "",
		    ctx ? " (" : "", ctx ? ctx : "", ctx ? ")" : "");
	} else
		snprintf(full, sizeof(full), "%s", PQerrorMessage(db->conn));
	set_err(err, errsz, st, full);
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
	if (PQstatus(db->conn) != CONNECTION_OK)
		return OUT_TRANSIENT;
	return classify_state(st);
}

/* Run statements whose rows are not wanted, with one integer-array
 * parameter ("{1,2,3}") or none. */
static enum outcome
exec_cmd(struct db *db, const char *sql, const char *ids, char *err, size_t errsz)
{
	const char *params[1] = { ids };
	PGresult *res = run(db, sql, ids ? 1 : 0, params);
	enum outcome o = OUT_OK;

	if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
	    PQresultStatus(res) != PGRES_TUPLES_OK))
		o = result_error(db, res, err, errsz);
	PQclear(res);
	return o;
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
static enum outcome
classify_connect(PGconn *c)
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

/* Server notices go to the JSON log instead of libpq's plain stderr. */
static void
on_notice(void *arg, const PGresult *res)
{
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	log_msg(LOG_WARNING, "⚠️ PostgreSQL: %s", msg ? msg : "(notice)");
}

static PGconn *
connect_to(struct db *db, const char *dbname)
{
	const char *vals[NPARAMS + 1];
	PGconn *c;
	int i;

	for (i = 0; db->keys[i] != NULL; i++)
		vals[i] = strcmp(db->keys[i], "dbname") == 0 ? dbname : db->vals[i];
	vals[i] = NULL;
	c = PQconnectdbParams(db->keys, vals, 0);
	if (c != NULL)
		PQsetNoticeReceiver(c, on_notice, NULL);
	return c;
}

/* Create the database through the maintenance database "postgres". */
static enum outcome
create_database(struct db *db, char *err, size_t errsz)
{
	PGconn *admin = connect_to(db, "postgres");
	PGresult *res;
	const char *params[1] = { db->dbname }, *st;
	char *ident, sql[512];
	enum outcome o = OUT_OK;

	if (PQstatus(admin) != CONNECTION_OK) {
		o = classify_connect(admin);
		set_err(err, errsz, NULL, PQerrorMessage(admin));
		PQfinish(admin);
		return o;
	}
	res = PQexecParams(admin, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		if ((ident = PQescapeIdentifier(admin, db->dbname, strlen(db->dbname))) == NULL)
			die(EXIT_CONFIG, "POSTGRES_DATABASE: cannot quote '%s'", db->dbname);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", ident);
		PQfreemem(ident);
		res = PQexec(admin, sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			log_msg(LOG_INFO, "🆕 Created database %s", db->dbname);
	}
	st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	/* 42P04: someone else created it meanwhile. */
	if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK &&
	    (st == NULL || strcmp(st, "42P04") != 0)) {
		db->conn = admin;
		o = result_error(db, res, err, errsz);
		db->conn = NULL;
	}
	PQclear(res);
	PQfinish(admin);
	return o;
}

static enum outcome
apply_schema(struct db *db, char *err, size_t errsz)
{
	struct buf sql = { 0 };
	enum outcome o;

	/* Serialise concurrent loaders creating the same objects. */
	buf_adds(&sql, "BEGIN; SELECT pg_advisory_xact_lock(1952539753); ");
	buf_adds(&sql, schema_sql);
	buf_adds(&sql, "; COMMIT;");
	o = exec_cmd(db, sql.p, NULL, err, errsz);
	buf_free(&sql);
	if (o != OUT_OK)
		(void)exec_cmd(db, "ROLLBACK", NULL, err + strlen(err), 0);
	return o;
}

/*
 * The upsert of one record type. Only records whose stored hash differs
 * reach the staging table (tblload asks first), so this is about new and
 * changed records; ON CONFLICT ... WHERE still skips a record a concurrent
 * writer stored meanwhile.
 */
static void
build_upserts(struct db *db)
{
	const char *const *c;
	struct buf *b;
	int t;

	for (t = 0; t < NTYPES; t++) {
		b = &db->sql[t];
		if (b->len)
			continue;
		buf_printf(b, "INSERT INTO %s AS t (", tables[t].name);
		for (c = tables[t].columns; *c; c++)
			buf_printf(b, "%s\"%s\"", c == tables[t].columns ? "" : ", ", *c);
		buf_adds(b, ") SELECT ");
		for (c = tables[t].columns; *c; c++)
			buf_printf(b, "%s\"%s\"", c == tables[t].columns ? "" : ", ", *c);
		buf_printf(b, " FROM tbl_stage_%s ORDER BY id ON CONFLICT (id) DO UPDATE SET ",
		    tables[t].name);
		for (c = tables[t].columns + 1; *c; c++)
			buf_printf(b, "%s\"%s\" = EXCLUDED.\"%s\"", c == tables[t].columns + 1 ?
			    "" : ", ", *c, *c);
		buf_adds(b, " WHERE t.hash IS DISTINCT FROM EXCLUDED.hash"
		    " RETURNING t.id, (t.xmax = 0) AS inserted");
	}
}

static enum outcome
create_staging(struct db *db, char *err, size_t errsz)
{
	struct buf sql = { 0 };
	enum outcome o;
	int t;

	for (t = 0; t < NTABLES; t++)
		buf_printf(&sql, "CREATE TEMP TABLE IF NOT EXISTS tbl_stage_%s "
		    "(LIKE %s INCLUDING DEFAULTS%s) ON COMMIT DELETE ROWS; ",
		    tables[t].name, tables[t].name, t >= T_RELEASE_LABELS ? ", ord integer" : "");
	o = exec_cmd(db, sql.p, NULL, err, errsz);
	buf_free(&sql);
	if (o == OUT_OK)
		db->staged = true;
	return o;
}

/*
 * Which of the hosts took us (logged when there are several), and with
 * POSTGRES_SYNC_REQUIRED, whether it commits only once a synchronous
 * standby has the commit too: with asynchronous replication a failover can
 * lose commits whose deliveries were already acked, for good. Refused
 * otherwise (a configuration error), here and after every reconnection:
 * a promoted standby must have a synchronous standby of its own.
 */
static enum outcome
check_server(struct db *db, char *err, size_t errsz)
{
	PGresult *res;
	const char *names, *level;
	struct logrec *r;
	char server[300];
	enum outcome o = OUT_OK;

	if (db->nhosts > 1) {
		snprintf(server, sizeof(server), strchr(PQhost(db->conn), ':') ? "[%s]:%s" : "%s:%s",
		    PQhost(db->conn), PQport(db->conn));
		r = log_begin(LOG_INFO, "🐘 PostgreSQL server");
		log_str(r, "server", server);
		log_end(r);
	}
	if (!db->sync_required)
		return OUT_OK;
	res = run(db, "SELECT current_setting('synchronous_standby_names'), "
	    "current_setting('synchronous_commit')", 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		o = result_error(db, res, err, errsz);
		PQclear(res);
		return o == OUT_OK ? OUT_FATAL : o;
	}
	names = PQgetvalue(res, 0, 0);
	level = PQgetvalue(res, 0, 1);
	if (names[strspn(names, " \t")] == '\0') {
		snprintf(err, errsz, "POSTGRES_SYNC_REQUIRED: the server (%s:%s) commits without "
		    "waiting for a standby: synchronous_standby_names is empty",
		    PQhost(db->conn), PQport(db->conn));
		o = OUT_CONFIG;
	} else if (strcmp(level, "on") != 0 && strcmp(level, "remote_write") != 0 &&
	    strcmp(level, "remote_apply") != 0) {
		/* remote_write: the standby has the commit written, not yet
		 * flushed; it survives a crash of the primary, which is what a
		 * failover is about, not one of the standby's machine too. */
		snprintf(err, errsz, "POSTGRES_SYNC_REQUIRED: the server (%s:%s) does not wait for "
		    "its synchronous standby to have a commit: synchronous_commit is %s (want on, "
		    "remote_write or remote_apply)", PQhost(db->conn), PQport(db->conn), level);
		o = OUT_CONFIG;
	}
	PQclear(res);
	return o;
}

static enum outcome
open_conn(struct db *db, char *err, size_t errsz)
{
	enum outcome o;
	const char *msg;

	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
	db->staged = false;
	db->conn = connect_to(db, db->dbname);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		msg = PQerrorMessage(db->conn);
		o = classify_connect(db->conn);
		set_err(err, errsz, NULL, msg);
		if (strstr(msg, "does not exist") != NULL && strstr(msg, db->dbname) != NULL &&
		    strstr(msg, "database") != NULL) {
			PQfinish(db->conn);
			db->conn = NULL;
			if ((o = create_database(db, err, errsz)) != OUT_OK)
				return o;
			return open_conn(db, err, errsz);
		}
		PQfinish(db->conn);
		db->conn = NULL;
		return o;
	}
	db->sqlstate[0] = '\0';
	if ((o = check_server(db, err, errsz)) != OUT_OK)
		return o;
	if (!db->schema_done) {
		if ((o = apply_schema(db, err, errsz)) != OUT_OK)
			return o;
		db->schema_done = true;
	}
	build_upserts(db);
	return create_staging(db, err, errsz);
}

enum outcome
db_open(struct db *db, char *err, size_t errsz)
{
	enum outcome o = open_conn(db, err, errsz);

	/* The message is logged and kept in tblload.json: no password in it,
	 * wherever libpq or the server put it (in a database name, say). */
	if (o != OUT_OK)
		redact(err, db->password);
	return o;
}

/*
 * Send COPY data in pieces of COPY_CHUNK bytes, as psql does: a batch may
 * be larger than the int PQputCopyData takes (--max-bytes allows 4 GiB),
 * and the wait hook runs between pieces, so a long send is no silence.
 */
static int
put_copy_data(struct db *db, const char *p, size_t n)
{
	double last = now_mono();
	size_t k;

	while (n > 0) {
		k = n < COPY_CHUNK ? n : COPY_CHUNK;
		if (PQputCopyData(db->conn, p, (int)k) != 1)
			return -1;
		p += k;
		n -= k;
		if (wait_hook != NULL && now_mono() - last >= 1) {
			wait_hook();
			last = now_mono();
		}
	}
	return 0;
}

/*
 * COPY in three steps, so that rows can be sent as they are built: start
 * the COPY into table t (or its staging table), send data, end it. After a
 * failure to send, the COPY is given up at once and db_copy_end returns
 * that failure.
 */
enum outcome
db_copy_start(struct db *db, enum table t, bool staged, char *err, size_t errsz)
{
	const char *const *c;
	struct buf sql = { 0 };
	PGresult *res;
	enum outcome o;

	buf_printf(&sql, "COPY %s%s (", staged ? "tbl_stage_" : "", tables[t].name);
	for (c = tables[t].columns; *c; c++)
		buf_printf(&sql, "%s\"%s\"", c == tables[t].columns ? "" : ", ", *c);
	buf_adds(&sql, staged && t >= T_RELEASE_LABELS ? ", ord) FROM STDIN" : ") FROM STDIN");
	res = run(db, sql.p, 0, NULL);
	buf_free(&sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		o = result_error(db, res, err, errsz);
		PQclear(res);
		return o == OUT_OK ? OUT_FATAL : o;
	}
	PQclear(res);
	db->copy_staged = staged;
	db->copy_failed = false;
	return OUT_OK;
}

/* Sending failed: give the COPY up; what the connection still says is read
 * and dropped. */
static enum outcome
copy_abandon(struct db *db, char *err, size_t errsz)
{
	PGresult *res;

	set_err(err, errsz, NULL, PQerrorMessage(db->conn));
	snprintf(db->copy_err, sizeof(db->copy_err), "%s", err);
	(void)PQputCopyEnd(db->conn, "tblload: sending failed");
	while ((res = PQgetResult(db->conn)) != NULL && PQresultStatus(res) != PGRES_COPY_IN)
		PQclear(res);
	PQclear(res);
	db->copy_failed = true;
	return OUT_TRANSIENT;
}

enum outcome
db_copy_put(struct db *db, const char *p, size_t n, char *err, size_t errsz)
{
	if (db->copy_failed) {
		snprintf(err, errsz, "%s", db->copy_err);
		return OUT_TRANSIENT;
	}
	return put_copy_data(db, p, n) == 0 ? OUT_OK : copy_abandon(db, err, errsz);
}

enum outcome
db_copy_end(struct db *db, char *err, size_t errsz)
{
	PGresult *res;
	enum outcome o = OUT_OK;

	if (db->copy_failed) {
		snprintf(err, errsz, "%s", db->copy_err);
		return OUT_TRANSIENT;
	}
	if (PQputCopyEnd(db->conn, NULL) != 1)
		return copy_abandon(db, err, errsz);
	for (;;) {
		await_input(db);
		if ((res = PQgetResult(db->conn)) == NULL)
			break;
		if (PQresultStatus(res) != PGRES_COMMAND_OK && o == OUT_OK)
			o = result_error(db, res, err, errsz);
		PQclear(res);
	}
	/* Someone else stored one of these new ids since we asked. */
	if (o == OUT_DATA && !db->copy_staged && strcmp(db->sqlstate, "23505") == 0)
		return OUT_CONFLICT;
	return o;
}

enum outcome
db_copy_buf(struct db *db, enum table t, bool staged, const struct buf *rows, char *err,
    size_t errsz)
{
	enum outcome o;

	if (rows->len == 0)
		return OUT_OK;
	if ((o = db_copy_start(db, t, staged, err, errsz)) == OUT_OK &&
	    (o = db_copy_put(db, rows->p, rows->len, err, errsz)) == OUT_OK)
		o = db_copy_end(db, err, errsz);
	return o;
}

/*
 * Replace the link rows of the releases the upsert wrote. Only the updated
 * ones can have old links to delete; the staged links of every written
 * release go in, without a filter when every staged release was written
 * (a first load, and most batches).
 */
static enum outcome
replace_links(struct db *db, const char *written, const char *updated, bool all,
    char *err, size_t errsz)
{
	enum outcome o = OUT_OK;

	if (updated != NULL)
		o = exec_cmd(db, "DELETE FROM release_labels WHERE release_id = ANY($1::integer[])",
		    updated, err, errsz);
	if (o == OUT_OK && updated != NULL)
		o = exec_cmd(db, "DELETE FROM release_artists WHERE release_id = ANY($1::integer[])",
		    updated, err, errsz);
	if (o != OUT_OK)
		return o;
	if (all)
		return exec_cmd(db,
		    "INSERT INTO release_labels (release_id, label_id, catno) "
		    "SELECT release_id, label_id, catno FROM tbl_stage_release_labels "
		    "ORDER BY release_id, ord; "
		    "INSERT INTO release_artists (release_id, artist_id, name, anv, \"join\", role, extra) "
		    "SELECT release_id, artist_id, name, anv, \"join\", role, extra "
		    "FROM tbl_stage_release_artists ORDER BY release_id, ord", NULL, err, errsz);
	o = exec_cmd(db, "INSERT INTO release_labels (release_id, label_id, catno) "
	    "SELECT release_id, label_id, catno FROM tbl_stage_release_labels "
	    "WHERE release_id = ANY($1::integer[]) ORDER BY release_id, ord", written, err, errsz);
	if (o == OUT_OK)
		o = exec_cmd(db, "INSERT INTO release_artists (release_id, artist_id, name, anv, "
		    "\"join\", role, extra) SELECT release_id, artist_id, name, anv, \"join\", role, "
		    "extra FROM tbl_stage_release_artists WHERE release_id = ANY($1::integer[]) "
		    "ORDER BY release_id, ord", written, err, errsz);
	return o;
}

enum outcome
db_upsert(struct db *db, int type, long long nrecords, struct upsert_counts *uc,
    void (*written)(long long, bool, void *), void *arg, char *err, size_t errsz)
{
	struct buf ids = { 0 }, upd = { 0 };
	PGresult *res;
	enum outcome o = OUT_OK;
	int i, n;

	res = run(db, db->sql[type].p, 0, NULL);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		o = result_error(db, res, err, errsz);
		PQclear(res);
		return o;
	}
	n = PQntuples(res);
	uc->inserted = uc->updated = 0;
	buf_addc(&ids, '{');
	buf_addc(&upd, '{');
	for (i = 0; i < n; i++) {
		if (written != NULL)
			written(strtoll(PQgetvalue(res, i, 0), NULL, 10),
			    PQgetvalue(res, i, 1)[0] == 't', arg);
		if (PQgetvalue(res, i, 1)[0] == 't')
			uc->inserted++;
		else {
			if (uc->updated++)
				buf_addc(&upd, ',');
			buf_adds(&upd, PQgetvalue(res, i, 0));
		}
		if (i)
			buf_addc(&ids, ',');
		buf_adds(&ids, PQgetvalue(res, i, 0));
	}
	buf_addc(&ids, '}');
	buf_addc(&upd, '}');
	uc->unchanged = nrecords - n;
	PQclear(res);
	if (type == T_RELEASES && n > 0)
		o = replace_links(db, ids.p, uc->updated ? upd.p : NULL, n == nrecords, err, errsz);
	buf_free(&upd);
	buf_free(&ids);
	return o;
}

enum outcome
db_begin(struct db *db, char *err, size_t errsz)
{
	enum outcome o;

	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		snprintf(err, errsz, "not connected");
		return OUT_TRANSIENT;
	}
	if (!db->staged && (o = create_staging(db, err, errsz)) != OUT_OK)
		return o;
	return exec_cmd(db, "BEGIN", NULL, err, errsz);
}

enum outcome
db_stored_hashes(struct db *db, int type, const char *ids,
    void (*found)(long long, const char *, void *), void *arg, char *err, size_t errsz)
{
	const char *params[1] = { ids };
	char sql[128];
	PGresult *res;
	enum outcome o = OUT_OK;
	int i;

	snprintf(sql, sizeof(sql), "SELECT id, hash FROM %s WHERE id = ANY($1::integer[])",
	    tables[type].name);
	res = run(db, sql, 1, params);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		o = result_error(db, res, err, errsz);
	else
		for (i = 0; i < PQntuples(res); i++)
			found(strtoll(PQgetvalue(res, i, 0), NULL, 10), PQgetvalue(res, i, 1), arg);
	PQclear(res);
	return o;
}

enum outcome
db_commit(struct db *db, char *err, size_t errsz)
{
	return exec_cmd(db, "COMMIT", NULL, err, errsz);
}

bool
db_usable(const struct db *db)
{
	return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE && strcmp(db->sqlstate, "25006") != 0;
}

void
db_rollback(struct db *db)
{
	char ignored[8];

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		(void)exec_cmd(db, "ROLLBACK", NULL, ignored, sizeof(ignored));
}
