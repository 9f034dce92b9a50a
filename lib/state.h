/*
 * State files: each long-running tool keeps a small JSON object describing
 * itself in the state directory (TBL_STATE_DIR; unset means none), written
 * atomically (a temporary file, then rename) and at most a few times per
 * second. tblhealth serves health and metrics from them (docs/state.md).
 */
#ifndef TBL_STATE_H
#define TBL_STATE_H

#include <stdbool.h>

#include "buf.h"

struct statefile {
	char		*path, *tmp;
	double		 last;		/* when it was last written (monotonic) */
	double		 started;	/* wall clock */
	struct buf	 b;		/* the object being built */
};

/* Open <TBL_STATE_DIR>/<name>.json; false if state files are off. */
bool	state_open(struct statefile *, const char *name);
/* Start an object with tool, pid, started and heartbeat; NULL when off or
 * when the last write is more recent than min_interval seconds. */
struct buf *state_begin(struct statefile *, double min_interval);
/* Close the object and replace the file. Failures are logged, not fatal. */
void	state_commit(struct statefile *);

#endif
