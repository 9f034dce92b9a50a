/*
 * tblload's PostgreSQL side on one connection: connect (the settings and
 * the sorting of failures are dbconn.c's), apply the schema, and run a
 * unit's statements (the stored hashes, COPY, the upserts) and its commit,
 * waiting with tblload's heartbeat.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "buf.h"
#include "db.h"
#include "dbconn.h"
#include "log.h"
#include "num.h"
#include "util.h"

#define COPY_CHUNK	(256 * 1024)	/* bytes of COPY data per PQputCopyData */

struct db {
	PGconn		*conn;
	bool		 staged;	/* staging tables exist on this connection */
	bool		 schema_done;
	struct dbconn	 cf;		/* where and how to connect */
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

struct db *
db_new(void)
{
	struct db *db = xcalloc(1, sizeof(*db));

	dbconn_from_env(&db->cf);
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
	return db->cf.where;
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
	dbconn_free(&db->cf);
	free(db);
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
		if (db_classify_state(st) == OUT_DATA)
			ctx = NULL;
		snprintf(full, sizeof(full), "%s%s%s%s%s%s", msg, det ? ": " : "", det ? det : "",
		    ctx ? " (" : "", ctx ? ctx : "", ctx ? ")" : "");
	} else
		snprintf(full, sizeof(full), "%s", PQerrorMessage(db->conn));
	db_set_err(err, errsz, st, full);
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", st ? st : "");
	if (PQstatus(db->conn) != CONNECTION_OK)
		return OUT_TRANSIENT;
	return db_classify_state(st);
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

	for (i = 0; db->cf.keys[i] != NULL; i++)
		vals[i] = strcmp(db->cf.keys[i], "dbname") == 0 ? dbname : db->cf.vals[i];
	vals[i] = NULL;
	c = PQconnectdbParams(db->cf.keys, vals, 0);
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
	const char *params[1] = { db->cf.dbname }, *st;
	char *ident, sql[512];
	enum outcome o = OUT_OK;

	if (PQstatus(admin) != CONNECTION_OK) {
		o = db_classify_connect(admin);
		db_set_err(err, errsz, NULL, PQerrorMessage(admin));
		PQfinish(admin);
		return o;
	}
	res = PQexecParams(admin, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL,
	    params, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0) {
		PQclear(res);
		if ((ident = PQescapeIdentifier(admin, db->cf.dbname, strlen(db->cf.dbname))) == NULL)
			die(EXIT_CONFIG, "POSTGRES_DATABASE: cannot quote '%s'", db->cf.dbname);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", ident);
		PQfreemem(ident);
		res = PQexec(admin, sql);
		if (PQresultStatus(res) == PGRES_COMMAND_OK)
			log_msg(LOG_INFO, "🆕 Created database %s", db->cf.dbname);
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

	if (db->cf.nhosts > 1) {
		snprintf(server, sizeof(server), strchr(PQhost(db->conn), ':') ? "[%s]:%s" : "%s:%s",
		    PQhost(db->conn), PQport(db->conn));
		r = log_begin(LOG_INFO, "🐘 PostgreSQL server");
		log_str(r, "server", server);
		log_end(r);
	}
	if (!db->cf.sync_required)
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
	db->conn = connect_to(db, db->cf.dbname);
	if (PQstatus(db->conn) != CONNECTION_OK) {
		msg = PQerrorMessage(db->conn);
		o = db_classify_connect(db->conn);
		db_set_err(err, errsz, NULL, msg);
		if (strstr(msg, "does not exist") != NULL && strstr(msg, db->cf.dbname) != NULL &&
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
		redact(err, db->cf.password);
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

	db_set_err(err, errsz, NULL, PQerrorMessage(db->conn));
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
