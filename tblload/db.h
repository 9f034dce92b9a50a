/* tblload's PostgreSQL side: connect, apply the schema, commit a batch. */
#ifndef TBL_DB_H
#define TBL_DB_H

#include <stdbool.h>
#include <stddef.h>

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
void	db_close(struct db *);
/* Called about once a second while a statement runs (tblload's heartbeat). */
void	db_set_wait_hook(void (*)(void));
/*
 * One batch is one transaction: db_begin; db_stored_hashes to learn which
 * records are unchanged (found is called with each stored id and hash;
 * ids is an integer array literal, "{1,2,3}"); db_copy_new with the rows of
 * the records not stored yet; db_write with the rows of the changed ones
 * (COPY into staging, upsert, link rows); db_commit. After a failure,
 * db_rollback.
 */
enum outcome db_begin(struct db *, char *err, size_t errsz);
enum outcome db_stored_hashes(struct db *, int type, const char *ids,
	    void (*found)(long long id, const char *hash, void *arg), void *arg,
	    char *err, size_t errsz);
enum outcome db_write(struct db *, int type, struct sink *, long long nrecords,
	    struct upsert_counts *, char *err, size_t errsz);
/* COPY rows straight into their tables (records not stored yet, and their
 * link rows); OUT_CONFLICT if one of them was stored meanwhile. */
enum outcome db_copy_new(struct db *, int type, struct sink *, char *err, size_t errsz);
enum outcome db_commit(struct db *, char *err, size_t errsz);
/* The connection is up and outside any transaction: a transient error
 * (a lock timeout, a deadlock) left it fit to retry on. */
bool	db_usable(const struct db *);
void	db_rollback(struct db *);
/* Where the connection goes, for messages (never the password). */
const char *db_describe(const struct db *);

extern const char schema_sql[];

#endif
