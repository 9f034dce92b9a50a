/*
 * Loading with a database: the first connection is made (and the schema
 * applied), then stdin is committed over jobs connections, batches of a
 * type that wait merged up to merge records a transaction (0: never).
 */
#ifndef TBL_DISPATCH_H
#define TBL_DISPATCH_H

#include <stddef.h>

/* Returns 0, or 75 when the input ended inside a batch; exits on a
 * failure of the database that outlasts retry_max seconds. */
int	load_db(int jobs, long long merge, size_t max_line, double retry_max);

#endif
