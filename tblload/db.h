/* tblload's PostgreSQL side: connect, apply the schema, commit a batch. */
#ifndef TBL_DB_H
#define TBL_DB_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "rows.h"

/* What a failed statement means for the batch. */
enum outcome {
	OUT_OK,
	OUT_TRANSIENT,	/* connection lost, server restarting, deadlock: retry later */
	OUT_DATA,	/* PostgreSQL refuses some row of the batch: split it */
	OUT_CONFIG,	/* bad credentials, missing privileges, broken schema: stop */
	OUT_FATAL,	/* anything else: stop without settling */
	OUT_CONFLICT	/* a record COPYed as new exists now: redo it as an upsert */
};

struct db;

struct upsert_counts {
	long long	 inserted, updated, unchanged;
};

/* Connection settings from POSTGRES_ADDRESS, POSTGRES_USERNAME,
 * POSTGRES_PASSWORD, POSTGRES_DATABASE (libpq's PG* variables fill the
 * gaps); a malformed value exits 78. */
struct db *db_new(void);
/* Connect, creating the database if it is missing, and apply the schema. */
enum outcome db_open(struct db *, char *err, size_t errsz);
/* Another connection applied the schema: this one need not. */
void	db_schema_applied(struct db *);
void	db_close(struct db *);
/* Called about once a second while a statement runs (tblload's heartbeat). */
void	db_set_wait_hook(void (*)(void));
/*
 * One unit is one transaction: db_begin; db_stored_hashes to learn which
 * records are unchanged (found is called with each stored id and hash;
 * ids is an integer array literal, "{1,2,3}"); the rows of the records not
 * stored yet COPYed straight into their tables, those of the changed ones
 * into the staging tables (db_copy_start, db_copy_put as they are built,
 * db_copy_end; or db_copy_buf with them all), then db_upsert; db_commit.
 * After a failure, db_rollback. A struct db is one connection, for one
 * thread at a time.
 */
enum outcome db_begin(struct db *, char *err, size_t errsz);
enum outcome db_stored_hashes(struct db *, int type, const char *ids,
	    void (*found)(long long id, const char *hash, void *arg), void *arg,
	    char *err, size_t errsz);
enum outcome db_copy_start(struct db *, enum table, bool staged, char *err, size_t errsz);
enum outcome db_copy_put(struct db *, const char *, size_t, char *err, size_t errsz);
/* OUT_CONFLICT when a record COPYed as new (not staged) was stored by
 * another writer meanwhile. */
enum outcome db_copy_end(struct db *, char *err, size_t errsz);
enum outcome db_copy_buf(struct db *, enum table, bool staged, const struct buf *,
	    char *err, size_t errsz);
/* Upsert the staged records of a type (and replace the link rows of the
 * releases it writes); written, unless NULL, is called with each record
 * written. */
enum outcome db_upsert(struct db *, int type, long long nrecords, struct upsert_counts *,
	    void (*written)(long long id, bool inserted, void *arg), void *arg,
	    char *err, size_t errsz);
enum outcome db_commit(struct db *, char *err, size_t errsz);
/* The connection is up and outside any transaction: a transient error
 * (a lock timeout, a deadlock) left it fit to retry on. */
bool	db_usable(const struct db *);
void	db_rollback(struct db *);
/* Where the connection goes, for messages (never the password). */
const char *db_describe(const struct db *);

extern const char schema_sql[];

#endif
