/*
 * State files: each long-running tool keeps a small JSON object describing
 * itself in the state directory (TBL_STATE_DIR; unset means none), written
 * atomically (a private temporary file, then rename) and at most a few
 * times per second. tblhealth serves health and metrics from them
 * (docs/state.md).
 *
 * The directory is trusted only when it is private: a directory (not a
 * link to one) owned by the effective user and writable by nobody else.
 * Anything else could let another local user plant links or state.
 */
#ifndef TBL_STATE_H
#define TBL_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct statefile {
	char		*dir, *path;
	double		 last;		/* when it was last written (monotonic) */
	double		 started;	/* wall clock */
	struct buf	 b;		/* the object being built */
};

/*
 * Check that dir is a private state directory (see above); when create is
 * true, a missing one is made with mode 0700 first. Returns false with the
 * reason in why.
 */
bool	state_dir_ok(const char *dir, bool create, char *why, size_t whysz);
/*
 * Open <TBL_STATE_DIR>/<name>.json; false if state files are off. A state
 * directory that is not private exits 78 naming it and the reason.
 */
bool	state_open(struct statefile *, const char *name);
/* Start an object with tool, pid, started and heartbeat; NULL when off or
 * when the last write is more recent than min_interval seconds. */
struct buf *state_begin(struct statefile *, double min_interval);
/* Close the object and replace the file. Failures are logged, not fatal. */
void	state_commit(struct statefile *);

#endif
