/*
 * tblload's input, one batch ahead: a thread of its own reads the next
 * batch, reads its envelope headers and builds its rows (as if every record
 * were new) while the batch before is in PostgreSQL. The work of the client
 * and of the server then overlap, as they do for a plain COPY.
 *
 * Two batches at most are held: the one being loaded and the one being read.
 * The thread blocks the stop signals; only the main thread sees them.
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

/* Read fd on a new thread; rows built ahead go to sinks of format fmt. */
void	reader_start(int fd, size_t max_line, enum sinkfmt fmt);
/* The next batch, waiting at most timeout seconds for it. */
enum reader_status reader_next(double timeout, struct batch **);
/* The caller is done with the batch: its slot may be read into again. */
void	reader_release(struct batch *);
/* Whether building rows ahead pays: not while most records are stored. */
void	reader_build_ahead(bool);
/* End the thread (it may be waiting for input) and free the batches. */
void	reader_stop(void);

#endif
