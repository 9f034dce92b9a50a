/*
 * The main thread's loop when there is a database: batches are taken from
 * the reader as it has them, given to the connections (worker.c) such that
 * no two batches in flight hold the same id, so each id's versions are
 * committed in the order they came, and settled as they are committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "counts.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "reader.h"
#include "settle.h"
#include "util.h"
#include "worker.h"

#define CONTROLS_MAX	1024	/* control messages waiting for batches before them */
#define READ_BUDGET_MB	4	/* memory for batches read ahead, and per connection: */
#define READ_BUDGET_JOB_MB 4

static struct worker *wk;	/* the workers, jobs of them */
static int jobs;
static size_t merge_max;

/*
 * What this thread holds: batches read and not yet given to a worker
 * (waiting, in input order), the settle lines of control messages that
 * wait for the batches before them, and where the input stands.
 */
static struct {
	struct batch	*waiting[READER_SLOTS_MAX];
	size_t		 nwaiting;
	unsigned long long next_seq;
	struct buf	 ctl;			/* settle lines of control messages */
	unsigned long long ctl_seq[CONTROLS_MAX];	/* each one's batch */
	size_t		 ctl_end[CONTROLS_MAX];	/* and where its lines end in ctl */
	size_t		 nctl;
	bool		 input_over, stopping;
	bool		 cut_short;		/* the input ended inside a batch */
	enum reader_status input_status;
	int		 input_errno;
	int		 fail_status;		/* a worker failed: exit so */
	char		 fail_msg[1400];
	int		 wake[2];		/* a worker is done */
} ld;

/* Workers busy (or done and not yet collected). */
static int
busy(void)
{
	int i, n = 0;

	workers_lock();
	for (i = 0; i < jobs; i++)
		n += wk[i].state == W_BUSY || wk[i].state == W_DONE;
	workers_unlock();
	return n;
}

/* The oldest batch not committed yet: every batch before it is. */
static unsigned long long
oldest_open(void)
{
	unsigned long long m = ld.next_seq;
	size_t i, j;

	for (i = 0; i < ld.nwaiting; i++)
		if (ld.waiting[i]->seq < m)
			m = ld.waiting[i]->seq;
	workers_lock();
	for (i = 0; i < (size_t)jobs; i++)
		if (wk[i].state == W_BUSY || wk[i].state == W_DONE)
			for (j = 0; j < wk[i].u.nb; j++)
				if (wk[i].u.b[j]->seq < m)
					m = wk[i].u.b[j]->seq;
	workers_unlock();
	return m;
}

/*
 * A control message (file_complete) is settled only once every record
 * that came before it is committed, whichever connection holds it.
 */
static void
flush_controls(void)
{
	unsigned long long open = oldest_open();
	size_t k = 0, len;

	while (k < ld.nctl && ld.ctl_seq[k] < open)
		k++;
	if (k == 0)
		return;
	len = ld.ctl_end[k - 1];
	settle_send(&ld.ctl, len);
	memmove(ld.ctl_seq, ld.ctl_seq + k, (ld.nctl - k) * sizeof(ld.ctl_seq[0]));
	memmove(ld.ctl_end, ld.ctl_end + k, (ld.nctl - k) * sizeof(ld.ctl_end[0]));
	ld.nctl -= k;
	for (k = 0; k < ld.nctl; k++)
		ld.ctl_end[k] -= len;
}

/* Take the batches the reader has ready. */
static void
take_input(void)
{
	struct batch *b;
	enum reader_status st;
	size_t before;

	while (!ld.input_over && ld.nctl < CONTROLS_MAX) {
		if ((st = reader_next(0, &b)) == RD_WAIT)
			return;
		if (st != RD_BATCH) {
			ld.input_over = true;
			ld.input_status = st;
			ld.input_errno = errno;
			return;
		}
		b->seq = ld.next_seq++;
		if (b->cut_short) {
			log_msg(LOG_ERROR, "❌ Batch at line %llu cut short by the end of input "
			    "(%zu of %lld lines); not committed", b->lineno, b->n, b->want);
			ld.cut_short = true;
			reader_release(b);
			ld.input_over = true;
			ld.input_status = RD_END;
			return;
		}
		before = ld.ctl.len;
		if (settle_intake(b, &ld.ctl))
			ld.waiting[ld.nwaiting++] = b;
		else
			reader_release(b);
		if (ld.ctl.len > before) {
			ld.ctl_seq[ld.nctl] = b->seq;
			ld.ctl_end[ld.nctl++] = ld.ctl.len;
		}
	}
}

/* Whether batch b shares an id with a batch being committed. */
static bool
conflicts_in_flight(const struct batch *b, const struct unit *extra)
{
	size_t i, j;
	bool hit = false;

	for (j = 0; extra != NULL && j < extra->nb; j++)
		if (batches_conflict(b, extra->b[j]))
			return true;
	workers_lock();
	for (i = 0; i < (size_t)jobs && !hit; i++)
		if (wk[i].state == W_BUSY || wk[i].state == W_DONE)
			for (j = 0; j < wk[i].u.nb && !hit; j++)
				hit = batches_conflict(b, wk[i].u.b[j]);
	workers_unlock();
	return hit;
}

/*
 * Whether waiting batch i may be committed now: it shares no id with a
 * batch in flight (nor with the unit being formed), nor with a batch that
 * came before it and still waits. So the versions of an id are committed
 * one after the other, in the order they came, on whatever connections.
 */
static bool
may_go(size_t i, const struct unit *forming)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (batches_conflict(ld.waiting[j], ld.waiting[i]))
			return false;
	return !conflicts_in_flight(ld.waiting[i], forming);
}

static struct batch *
take_waiting(size_t i)
{
	struct batch *b = ld.waiting[i];

	memmove(ld.waiting + i, ld.waiting + i + 1, (ld.nwaiting - i - 1) * sizeof(b));
	ld.nwaiting--;
	return b;
}

/*
 * Give idle workers the batches that may go. When more batches wait than
 * there are connections (a backlog), a worker also takes batches of the
 * same type that wait behind, up to --merge records and to its share of
 * what waits: several small batches then cost one transaction, while a
 * trickle of batches is still committed one by one, at once.
 */
static void
dispatch(void)
{
	struct worker *w;
	struct batch *b;
	struct unit *u;
	size_t i, k, share, waiting;
	int j;

	for (;;) {
		w = NULL;
		workers_lock();
		for (j = 0; j < jobs && w == NULL; j++)
			if (wk[j].state == W_IDLE)
				w = &wk[j];
		workers_unlock();
		if (w == NULL || ld.nwaiting == 0)
			return;
		for (i = 0; i < ld.nwaiting && !may_go(i, NULL); i++)
			;
		if (i == ld.nwaiting)
			return;
		for (waiting = 0, k = 0; k < ld.nwaiting; k++)
			waiting += ld.waiting[k]->nrec;
		share = (waiting + (size_t)jobs - 1) / (size_t)jobs;
		if (ld.nwaiting <= (size_t)jobs || share > merge_max)
			share = ld.nwaiting <= (size_t)jobs ? 0 : merge_max;
		u = &w->u;
		unit_clear(u);
		b = take_waiting(i);
		unit_add(u, b);
		k = i;
		while (!b->unbatched && k < ld.nwaiting && u->nb < UNIT_MAX) {
			if (ld.waiting[k]->type_idx == u->type && !ld.waiting[k]->unbatched &&
			    u->nrec + ld.waiting[k]->nrec <= share && may_go(k, u))
				unit_add(u, take_waiting(k));
			else
				k++;
		}
		workers_lock();
		worker_go(w);
		workers_unlock();
	}
}

/* A worker is done: settle, log and count its batches, give them back. */
static void
collect_one(struct worker *w)
{
	struct totals t;
	struct batch *b;
	double dt = now_mono() - w->t0;
	size_t j;

	settle_send(&w->settle, w->settle.len);
	if (w->status != 0) {
		/* A connection that could not be made (it held no batch) leaves
		 * the work to the others. */
		if (w->u.nb == 0)
			log_msg(LOG_WARNING, "⚠️ Connection %d to PostgreSQL not made, going on "
			    "without it: %s", w->id, w->msg);
		else if (ld.fail_status == 0) {
			ld.fail_status = w->status;
			snprintf(ld.fail_msg, sizeof(ld.fail_msg), "%s", w->msg);
		}
		return;
	}
	for (j = 0; j < w->u.nb; j++) {
		b = w->u.b[j];
		tally(b, &t);
		batch_done(b, &t, dt, "✅ Batch committed", w->id, w->u.nb);
		reader_release(b);
	}
	unit_clear(&w->u);
	counts_write_state(0.25, "loading");
}

static void
collect(void)
{
	struct worker *done[JOBS_MAX];
	int i, n = 0;

	workers_lock();
	for (i = 0; i < jobs; i++)
		if (wk[i].state == W_DONE)
			done[n++] = &wk[i];
	workers_unlock();
	for (i = 0; i < n; i++) {
		collect_one(done[i]);
		workers_lock();
		done[i]->state = done[i]->status == 0 ? W_IDLE : W_DEAD;
		workers_unlock();
	}
	/* With every connection gone, the last one's failure is tblload's. */
	for (i = 0; i < jobs && wk[i].state == W_DEAD; i++)
		;
	if (n > 0 && i == jobs && ld.fail_status == 0) {
		ld.fail_status = done[n - 1]->status;
		snprintf(ld.fail_msg, sizeof(ld.fail_msg), "%s", done[n - 1]->msg);
	}
}

/* Wait for a worker, the reader, a signal or a second; keep the heartbeat. */
static void
await_events(bool want_input)
{
	struct pollfd p[2] = { { ld.wake[0], POLLIN, 0 }, { reader_fd(), POLLIN, 0 } };
	char drain[64];

	if (poll(p, want_input ? 2 : 1, 1000) < 0 && errno != EINTR)
		die(EXIT_SOFTWARE, "poll: %s", strerror(errno));
	while (read(ld.wake[0], drain, sizeof(drain)) > 0)
		;
	counts_write_state(1.0, busy() > 0 || ld.nwaiting > 0 ? "loading" : "idle");
}

/* Connections still being made are not needed any more. */
static void
give_up_connecting(void)
{
	int i;

	workers_lock();
	for (i = 0; i < jobs; i++)
		if (wk[i].state == W_BUSY && wk[i].u.nb == 0)
			atomic_store(&wk[i].give_up, true);
	workers_unlock();
}

/*
 * Load the input: batches are taken from the reader as it has them, given
 * to the workers as they may go, and settled as the workers commit them.
 * A stop request ends the loop once the batches in flight are committed
 * (those waiting are neither committed nor settled: the broker delivers
 * them again).
 */
static void
load(size_t max_line)
{
	if (pipe2(ld.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		die(EXIT_SOFTWARE, "pipe: %s", strerror(errno));
	/* Batches in flight and those that wait to be merged fit in a
	 * budget of memory that grows with the connections. */
	reader_start(STDIN_FILENO, max_line, SINK_COPY, READER_SLOTS_MAX,
	    (size_t)(READ_BUDGET_MB + READ_BUDGET_JOB_MB * jobs) << 20, false);
	workers_start(ld.wake[1]);
	for (;;) {
		if (stop_signal && !ld.stopping) {
			ld.stopping = true;
			workers_quit();
		}
		collect();
		flush_controls();
		if (ld.fail_status != 0 || ld.stopping) {
			/* Only what is in flight is finished (or given up). */
			workers_quit();
			if (busy() == 0)
				break;
		} else {
			take_input();
			dispatch();
			flush_controls();
			if (ld.input_over && ld.nwaiting == 0) {
				if (busy() == 0)
					break;
				give_up_connecting();
			}
		}
		await_events(!ld.input_over && !ld.stopping);
	}
	if (ld.fail_status != 0)
		die(ld.fail_status, "%s", ld.fail_msg);
	if (ld.input_over && ld.input_status == RD_ERROR) {
		errno = ld.input_errno;
		die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
	}
	reader_stop();
	workers_stop();
	buf_free(&ld.ctl);
}

/* While the first connection is made: the heartbeat, and whether to stop. */
static bool
connect_tick(void)
{
	counts_write_state(1.0, "connecting");
	return stop_signal != 0;
}

int
load_db(int njobs, long long merge, size_t max_line, double retry_max)
{
	struct logrec *lr;

	jobs = njobs;
	merge_max = (size_t)merge;
	counts_open(jobs);
	counts_write_state(0, "connecting");
	wk = workers_init(jobs, retry_max);
	wk[0].tick = connect_tick;
	if (worker_connect(&wk[0]) < 0)
		die(wk[0].status, "%s", wk[0].msg);
	counts_connected();
	lr = log_begin(LOG_INFO, "🐘 Connected to PostgreSQL (%s), schema ready",
	    db_describe(wk[0].db));
	if (jobs > 1)
		log_int(lr, "jobs", jobs);
	log_end(lr);
	load(max_line);
	return ld.cut_short ? EXIT_TEMPFAIL : EXIT_OK;
}
