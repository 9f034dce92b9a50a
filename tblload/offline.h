/*
 * --dry-run and --copy-out: the rows tblload would write, printed as NDJSON
 * or written as COPY text files, without a database.
 */
#ifndef TBL_OFFLINE_H
#define TBL_OFFLINE_H

#include <stddef.h>

/* Read stdin to its end (or a stop signal); with copy_out NULL, print the
 * rows. Returns 0, or 75 when the input ended inside a batch. */
int	load_offline(const char *copy_out, size_t max_line);

#endif
