/*
 * What tblload has loaded: the totals of the run and of each record type,
 * the histogram of batch times, and the state file tblhealth serves them
 * from (docs/state.md). The main thread counts; the workers count only
 * the records they reject.
 */
#ifndef TBL_COUNTS_H
#define TBL_COUNTS_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"

struct totals {
	long long	 inserted, updated, unchanged, rejected, duplicates, controls, nuls;
	long long	 invalid;	/* of rejected: refused before the database */
};

/* Open the state file (when TBL_STATE_DIR is set), for jobs connections. */
void	counts_open(int jobs);
/* The first connection is made: the database is up unless a worker says
 * otherwise. */
void	counts_connected(void);
/* One record rejected (on any thread). */
void	count_reject(void);
/* Of the records a batch brought in: one refused before the database,
 * of data type index type (-1: none); one control message. */
void	count_invalid(int type);
void	count_control(void);
long long counts_rejected(void);
/* The counts of a committed batch, from what became of each group. */
void	tally(const struct batch *, struct totals *);
/* Log a batch that is done (on connection job, -1 for none, in one
 * transaction with merged - 1 others), and count it. */
void	batch_done(const struct batch *, const struct totals *, double seconds,
	    const char *event, int job, size_t merged);
/* Write the state file, unless it was written less than min_interval
 * seconds ago. */
void	counts_write_state(double min_interval, const char *state);
/* The last state ("stopped") and the totals of the run, started at t0. */
void	counts_report_end(double t0);

#endif
