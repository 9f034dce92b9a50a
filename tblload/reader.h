/*
 * tblload's input, read ahead: a thread of its own reads the next batches,
 * reads their envelope headers, sorts and groups their records (and, for
 * --dry-run and --copy-out, builds their rows) while the batches before are
 * in PostgreSQL.
 *
 * Batches are held in a fixed number of slots, and read ahead only while
 * the batches held are below a budget of bytes, so memory stays bounded.
 * They are handed out in input order and given back in any order. The
 * thread blocks the stop signals; only the main thread sees them.
 */
#ifndef TBL_READER_H
#define TBL_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "rows.h"

enum reader_status {
	RD_BATCH,	/* the next batch, prepared */
	RD_WAIT,	/* none yet: the timeout passed or a signal came */
	RD_END,		/* end of input */
	RD_ERROR	/* a read error (errno set) */
};

#define READER_SLOTS_MAX	128

/* Read fd on a new thread into nslots slots, while they hold less than
 * budget bytes; with build_ahead, each batch's rows are built, into a sink
 * of format fmt. */
void	reader_start(int fd, size_t max_line, enum sinkfmt fmt, size_t nslots, size_t budget,
	    bool build_ahead);
/* The next batch, waiting at most timeout seconds for it (0: not at all). */
enum reader_status reader_next(double timeout, struct batch **);
/* A descriptor that becomes readable when reader_next has news. */
int	reader_fd(void);
/* The caller is done with the batch: its slot may be read into again. */
void	reader_release(struct batch *);
/* End the thread (it may be waiting for input) and free the batches. */
void	reader_stop(void);

#endif
