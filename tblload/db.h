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
	OUT_FATAL	/* anything else: stop without settling */
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
/* Commit one batch of rows of one record type in one transaction. */
enum outcome db_commit(struct db *, int type, struct sink *, long long nrecords,
	    struct upsert_counts *, char *err, size_t errsz);
/* Where the connection goes, for messages (never the password). */
const char *db_describe(const struct db *);

extern const char schema_sql[];

#endif
