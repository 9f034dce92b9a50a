/* tblload's connection settings, and how a failure to connect or a
 * statement's error is sorted (dbconn.c). */
#ifndef TBL_DBCONN_H
#define TBL_DBCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "buf.h"
#include "db.h"

#define NPARAMS	14	/* connection keywords at most */

/* The keywords and values for PQconnectdbParams, and what messages say. */
struct dbconn {
	const char	*keys[NPARAMS + 1];
	const char	*vals[NPARAMS + 1];
	struct buf	 hosts, ports;	/* POSTGRES_ADDRESS as libpq takes it */
	struct buf	 servers;	/* and as host:port,... for messages */
	int		 nhosts;
	bool		 sync_required;	/* POSTGRES_SYNC_REQUIRED */
	char		*password;	/* POSTGRES_PASSWORD, or the file's */
	const char	*dbname;
	char		 where[384];	/* "database d on h:p", never a password */
};

/* From POSTGRES_ADDRESS, POSTGRES_USERNAME, POSTGRES_PASSWORD(_FILE),
 * POSTGRES_DATABASE, POSTGRES_SSL*, POSTGRES_SYNC_REQUIRED; a malformed
 * value exits 78 without echoing it. */
void	dbconn_from_env(struct dbconn *);
void	dbconn_free(struct dbconn *);
/* libpq's message (and SQLSTATE) into err, on one line. */
void	db_set_err(char *err, size_t errsz, const char *sqlstate, const char *msg);
/* What an error means for the batch, by its SQLSTATE. */
enum outcome db_classify_state(const char *sqlstate);
/* What a failed connection means, from libpq's message. */
enum outcome db_classify_connect(PGconn *);

#endif
