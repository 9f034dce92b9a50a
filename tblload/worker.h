/*
 * tblload's connections: one thread per PostgreSQL connection, each
 * committing the units (one batch, or several batches merged) the main
 * thread gives it. A worker retries transient failures on its own
 * connection and finds refused rows by bisection; it writes the settle
 * lines of what it committed into its own buffer, which the main thread
 * sends once the unit is done. The main thread alone reads input, settles,
 * handles signals and writes the state file.
 */
#ifndef TBL_WORKER_H
#define TBL_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "batch.h"
#include "buf.h"
#include "db.h"
#include "rows.h"

#define JOBS_MAX	64

enum wstate {
	W_IDLE,		/* waiting for a unit */
	W_BUSY,		/* committing one (or connecting) */
	W_DONE,		/* finished one: for the main thread to collect */
	W_DEAD		/* failed: takes no more units */
};

struct worker {
	int		 id;
	pthread_t	 thread;
	struct db	*db;
	enum wstate	 state;		/* under the workers' lock */
	struct unit	 u;
	double		 t0;		/* when the unit was given */
	struct buf	 settle;	/* settle lines of what was committed */
	int		 status;	/* 0, or the exit status to end tblload with */
	char		 msg[1400];	/* and why */
	/* Where the connection stands, for the state file (under the lock). */
	double		 outage_since;	/* monotonic, 0 when up */
	double		 error_at;
	char		 last_error[1024];
	/* Thread-local working memory. */
	struct sink	 fresh, changed;
	struct buf	 ids;
	/* While the main thread itself connects: called between waits; true
	 * means stop. */
	bool		(*tick)(void);
	atomic_bool	 give_up;	/* stop retrying: nothing is left to do */
};

/* n workers (1 to JOBS_MAX), each with its connection settings; giving up
 * after retry_max seconds of failures (0: never). */
struct worker *workers_init(int n, double retry_max);
/* Connect w's database, retrying transient failures; 0, or -1 with
 * w->status and w->msg set. The main thread connects the first worker
 * this way (which applies the schema) before workers_start. */
int	worker_connect(struct worker *w);
/* Start the threads; the workers other than the first connect on theirs.
 * wake_fd gets a byte whenever a worker is done with a unit. */
void	workers_start(int wake_fd);
/* Lock and unlock the state of every worker. */
void	workers_lock(void);
void	workers_unlock(void);
/* Give w (idle, its unit filled in) its unit (call with the lock held). */
void	worker_go(struct worker *w);
/* From now on, a worker waiting for PostgreSQL gives up at once. */
void	workers_quit(void);
/* End every (idle) worker thread and close the connections. */
void	workers_stop(void);
/* Where the connections stand: the earliest outage of any worker (0 for
 * none, as a monotonic time), and in err the latest error of one. */
double	workers_outage(char *err, size_t errsz);

#endif
