/*
 * The workers of tblload: each holds one PostgreSQL connection and commits
 * the units the main thread gives it (see worker.h and docs/design-notes.md,
 * "Parallel loading").
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "settle.h"
#include "sync.h"
#include "util.h"
#include "worker.h"

#define ROWS_CHUNK	(256 * 1024)	/* bytes of rows built before they are sent */

static struct {
	struct worker	 w[JOBS_MAX];
	int		 n;
	int		 wake_fd;
	double		 retry_max;
	pthread_mutex_t	 mu;
	pthread_cond_t	 go;		/* a worker got a unit, or the end */
	bool		 shutdown;
	atomic_bool	 quit;
} ws = { .mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER };

void
workers_lock(void)
{
	sync_lock(&ws.mu, "workers");
}

void
workers_unlock(void)
{
	sync_unlock(&ws.mu, "workers");
}

/* End the unit with an exit status for tblload, and the reason. */
static int
fail(struct worker *w, int status, const char *fmt, ...)
{
	va_list ap;

	w->status = status;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof(w->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static bool
quitting(struct worker *w)
{
	if (w->tick != NULL && w->tick())
		atomic_store(&ws.quit, true);
	return atomic_load(&ws.quit) || atomic_load(&w->give_up);
}

/* ---- failures ---------------------------------------------------------- */

static void
set_outage(struct worker *w, const char *err)
{
	workers_lock();
	if (w->outage_since == 0)
		w->outage_since = now_mono();
	w->error_at = now_mono();
	snprintf(w->last_error, sizeof(w->last_error), "%s", err);
	workers_unlock();
}

static void
end_outage(struct worker *w)
{
	workers_lock();
	w->outage_since = 0;
	w->last_error[0] = '\0';
	workers_unlock();
}

/* Wait before the next try: 0, or -1 once PostgreSQL has been away too long
 * or tblload is stopping. */
static int
backoff(struct worker *w, const char *err, int attempt)
{
	double wait, now = now_mono(), since;
	struct logrec *lr;

	set_outage(w, err);
	since = now - w->outage_since;
	/* The last wait is cut to the deadline, so that one more try falls on it. */
	if (ws.retry_max > 0 && since >= ws.retry_max - 0.01)
		return fail(w, EXIT_TEMPFAIL, "PostgreSQL unavailable for %.0f s, giving up "
		    "(unsettled deliveries will be redelivered): %s", since, err);
	wait = 0.25;
	while (attempt-- > 0 && wait < 8)
		wait *= 2;
	if (ws.retry_max > 0 && wait > ws.retry_max - since)
		wait = ws.retry_max - since;
	lr = log_begin(LOG_WARNING, "🔄 PostgreSQL unavailable, retrying");
	log_str(lr, "error", err);
	log_num(lr, "retry_in_s", wait);
	log_num(lr, "outage_s", since);
	if (ws.n > 1)
		log_int(lr, "job", w->id);
	log_end(lr);
	for (; wait > 0 && !quitting(w); wait -= 0.1)
		sleep_seconds(wait < 0.1 ? wait : 0.1);
	if (quitting(w))
		return fail(w, EXIT_TEMPFAIL, "stopped while PostgreSQL was unavailable "
		    "(unsettled deliveries will be redelivered)");
	return 0;
}

int
worker_connect(struct worker *w)
{
	char err[1024];
	enum outcome o;
	int attempt = 0;

	for (;;) {
		o = db_open(w->db, err, sizeof(err));
		if (o == OUT_OK) {
			if (w->outage_since != 0)
				log_msg(LOG_INFO, "✅ Connected to PostgreSQL again after %.1f s",
				    now_mono() - w->outage_since);
			return 0;
		}
		if (o == OUT_CONFIG || o == OUT_FATAL) {
			set_outage(w, err);
			return fail(w, o == OUT_CONFIG ? EXIT_CONFIG : EXIT_SOFTWARE,
			    "PostgreSQL (%s): %s", db_describe(w->db), err);
		}
		if (backoff(w, err, attempt++) < 0)
			return -1;
	}
}

/* ---- one transaction ------------------------------------------------------ */

struct hashcheck {
	struct unit	*u;
	size_t		 lo, hi;
};

/* The unit's group of this id in [lo, hi), or hi. */
static size_t
find_group(const struct hashcheck *hc, long long id)
{
	size_t l = hc->lo, h = hc->hi, m;

	while (l < h) {		/* groups are sorted by id */
		m = l + (h - l) / 2;
		if (unit_winner(hc->u, m)->e.id < id)
			l = m + 1;
		else
			h = m;
	}
	return l < hc->hi && unit_winner(hc->u, l)->e.id == id ? l : hc->hi;
}

/* A stored id and hash: its group is unchanged or changed. */
static void
mark_stored(long long id, const char *hash, void *arg)
{
	struct hashcheck *hc = arg;
	size_t g = find_group(hc, id);

	if (g < hc->hi)
		*unit_known(hc->u, g) = strlen(hash) == 64 &&
		    memcmp(hash, unit_winner(hc->u, g)->e.sha256.p, 64) == 0 ? G_SAME : G_CHANGED;
}

/* A record the upsert wrote. */
static void
mark_written(long long id, bool inserted, void *arg)
{
	struct hashcheck *hc = arg;
	size_t g = find_group(hc, id);

	if (g < hc->hi)
		*unit_outcome(hc->u, g) = inserted ? O_INSERTED : O_UPDATED;
}

static void
ids_literal(const struct unit *u, size_t lo, size_t hi, struct buf *out)
{
	size_t g;

	buf_reset(out);
	buf_addc(out, '{');
	for (g = lo; g < hi; g++)
		buf_printf(out, "%s%lld", g > lo ? "," : "", unit_winner(u, g)->e.id);
	buf_addc(out, '}');
}

/*
 * COPY the rows of the unit's groups [lo, hi) whose state is in mask,
 * straight into their tables or into the staging tables: the rows of the
 * record table are sent as they are built, ROWS_CHUNK bytes at a time (so
 * a worker holds little more than that, whatever the size of the unit, and
 * the server inserts while the next rows are built), the link rows of
 * releases after them. *n is set to the records that gave rows.
 */
static enum outcome
copy_groups(struct worker *w, size_t lo, size_t hi, unsigned mask, bool staged,
    struct sink *sk, size_t *n, char *err, size_t errsz)
{
	struct unit *u = &w->u;
	struct buf *rows = &sk->out[u->type];
	enum outcome o;
	size_t g, want = 0, failed = 0;

	*n = 0;
	sink_reset(sk);
	for (g = lo; g < hi; g++)
		want += (mask >> *unit_known(u, g)) & 1;
	if (want == 0)
		return OUT_OK;
	o = db_copy_start(w->db, (enum table)u->type, staged, err, errsz);
	for (g = lo; g < hi && o == OUT_OK; g++) {
		*n += unit_build_rows(u, g, g + 1, mask, sk, &failed);
		if (rows->len >= ROWS_CHUNK) {
			o = db_copy_put(w->db, rows->p, rows->len, err, errsz);
			buf_reset(rows);
		}
	}
	if (o == OUT_OK && rows->len > 0)
		o = db_copy_put(w->db, rows->p, rows->len, err, errsz);
	if (o == OUT_OK)
		o = db_copy_end(w->db, err, errsz);
	if (o == OUT_OK && u->type == T_RELEASES)
		o = db_copy_buf(w->db, T_RELEASE_LABELS, staged, &sk->out[T_RELEASE_LABELS], err,
		    errsz);
	if (o == OUT_OK && u->type == T_RELEASES)
		o = db_copy_buf(w->db, T_RELEASE_ARTISTS, staged, &sk->out[T_RELEASE_ARTISTS], err,
		    errsz);
	return o;
}

/*
 * One try at committing groups [lo, hi) of the unit: ask which ids are
 * stored and with which hash; COPY the records not stored yet straight into
 * their tables (as a plain COPY would: a first load costs no more than
 * one), and upsert the changed ones through the staging table; commit.
 * With upsert_all, new records take the upsert path too (after a conflict
 * with another writer). Each group's outcome is set.
 */
static enum outcome
try_commit(struct worker *w, size_t lo, size_t hi, bool upsert_all, char *err,
    size_t errsz)
{
	struct unit *u = &w->u;
	struct hashcheck hc = { u, lo, hi };
	struct upsert_counts uc;
	struct rec *r;
	enum outcome o;
	size_t g, nnew = 0, nchanged = 0;
	unsigned upsert_mask = 1u << G_CHANGED;

	for (g = lo; g < hi; g++) {
		*unit_known(u, g) = G_NEW;
		r = unit_winner(u, g);
		r->build_err = NULL;
		r->nuls = 0;
	}
	if (upsert_all)
		upsert_mask |= 1u << G_NEW;
	o = db_begin(w->db, err, errsz);
	if (o == OUT_OK) {
		ids_literal(u, lo, hi, &w->ids);
		o = db_stored_hashes(w->db, u->type, w->ids.p, mark_stored, &hc, err, errsz);
	}
	if (o == OUT_OK && !upsert_all)
		o = copy_groups(w, lo, hi, 1u << G_NEW, false, &w->fresh, &nnew, err, errsz);
	if (o == OUT_OK)
		o = copy_groups(w, lo, hi, upsert_mask, true, &w->changed, &nchanged, err, errsz);
	for (g = lo; g < hi; g++)
		*unit_outcome(u, g) = unit_winner(u, g)->build_err != NULL ? O_REJECTED :
		    *unit_known(u, g) == G_NEW && !upsert_all ? O_INSERTED : O_UNCHANGED;
	if (o == OUT_OK && nchanged > 0)
		o = db_upsert(w->db, u->type, (long long)nchanged, &uc, mark_written, &hc, err,
		    errsz);
	if (o == OUT_OK)
		o = db_commit(w->db, err, errsz);
	if (o != OUT_OK)
		db_rollback(w->db);
	return o;
}

/* Settle every delivery of groups [lo, hi) after their commit: a record that
 * gave no row is rejected (it was not stored), the others are acked. */
static void
settle_groups(struct worker *w, size_t lo, size_t hi)
{
	struct unit *u = &w->u;
	struct batch *b;
	struct rec *win;
	size_t g, i, k;

	for (g = lo; g < hi; g++) {
		b = u->gr[g].b;
		k = u->gr[g].g;
		win = winner(b, k);
		for (i = b->grp[k]; i < b->grp[k + 1]; i++)
			if (&b->r[b->order[i]] != win || win->build_err == NULL)
				settle_one(&w->settle, &b->r[b->order[i]], false, NULL);
		if (win->build_err != NULL)
			reject(b, win, win->build_err, &w->settle);
	}
}

/*
 * Commit groups [lo, hi) of the unit. A transient failure is retried on
 * this connection; rows PostgreSQL refuses are found by splitting the range
 * in halves, so one bad record costs about log2(n) extra transactions and
 * the others are stored. 0, or -1 with the worker's status set.
 */
static int
commit_range(struct worker *w, size_t lo, size_t hi)
{
	struct unit *u = &w->u;
	struct batch *b;
	char err[1024], reason[1100];
	enum outcome o;
	size_t mid, i, k;
	int attempt = 0;
	bool upsert_all = false;

	for (;;) {
		o = try_commit(w, lo, hi, upsert_all, err, sizeof(err));
		switch (o) {
		case OUT_OK:
			end_outage(w);
			settle_groups(w, lo, hi);
			return 0;
		case OUT_TRANSIENT:
			if (backoff(w, err, attempt++) < 0)
				return -1;
			if (!db_usable(w->db) && worker_connect(w) < 0)
				return -1;
			continue;
		case OUT_DATA:
			if (hi - lo > 1) {
				mid = lo + (hi - lo) / 2;
				if (commit_range(w, lo, mid) < 0)
					return -1;
				return commit_range(w, mid, hi);
			}
			snprintf(reason, sizeof(reason), "PostgreSQL refused the row: %s", err);
			*unit_outcome(u, lo) = O_REJECTED;
			b = u->gr[lo].b;
			k = u->gr[lo].g;
			reject(b, winner(b, k), reason, &w->settle);
			/* Older copies of the same id were superseded: settle them too. */
			for (i = b->grp[k]; i + 1 < b->grp[k + 1]; i++)
				settle_one(&w->settle, &b->r[b->order[i]], false, NULL);
			return 0;
		case OUT_CONFLICT:
			/* Another writer stored one of the new ids meanwhile. */
			log_msg(LOG_DEBUG, "A new record was stored by someone else: upserting all");
			upsert_all = true;
			continue;
		case OUT_CONFIG:
			return fail(w, EXIT_CONFIG, "PostgreSQL (%s): %s", db_describe(w->db), err);
		case OUT_FATAL:
			return fail(w, EXIT_SOFTWARE, "PostgreSQL (%s): %s", db_describe(w->db), err);
		}
	}
}

/* ---- the threads ------------------------------------------------------------ */

static void
run_unit(struct worker *w)
{
	w->status = 0;
	w->msg[0] = '\0';
	buf_reset(&w->settle);
	if (!db_usable(w->db) && worker_connect(w) < 0)
		return;
	if (w->u.nb == 0)
		return;
	unit_prepare(&w->u);
	(void)commit_range(w, 0, w->u.ngrp);
}

static void *
work_loop(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		workers_lock();
		while (w->state != W_BUSY && !ws.shutdown)
			sync_wait(&ws.go, &ws.mu, "workers");
		if (w->state != W_BUSY) {
			workers_unlock();
			break;
		}
		workers_unlock();
		run_unit(w);
		workers_lock();
		w->state = W_DONE;
		workers_unlock();
		sync_poke(ws.wake_fd, "workers");
	}
	return NULL;
}

struct worker *
workers_init(int n, double retry_max)
{
	struct worker *w;
	int i;

	ws.n = n;
	ws.retry_max = retry_max;
	for (i = 0; i < n; i++) {
		w = &ws.w[i];
		w->id = i;
		w->fresh.fmt = w->changed.fmt = SINK_COPY;
		w->fresh.with_ord = 0;
		w->changed.with_ord = 1;
		unit_clear(&w->u);
		w->db = db_new();
		/* The first connection applies the schema; the others connect
		 * on their own threads, as if given an empty unit. */
		if (i > 0)
			db_schema_applied(w->db);
		w->state = i == 0 ? W_IDLE : W_BUSY;
	}
	return ws.w;
}

void
workers_start(int wake_fd)
{
	sigset_t all, old;
	int i, err;

	ws.wake_fd = wake_fd;
	/* The threads inherit a mask that blocks every signal. */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0)
		die(EXIT_SOFTWARE, "worker threads: %s", strerror(err));
	for (i = 0; i < ws.n; i++) {
		ws.w[i].tick = NULL;
		if ((err = pthread_create(&ws.w[i].thread, NULL, work_loop, &ws.w[i])) != 0)
			die(EXIT_SOFTWARE, "worker threads: %s", strerror(err));
	}
	if ((err = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0)
		die(EXIT_SOFTWARE, "worker threads: %s", strerror(err));
}

double
workers_outage(char *err, size_t errsz)
{
	double since = 0, at = 0;
	int i;

	err[0] = '\0';
	workers_lock();
	for (i = 0; i < ws.n; i++) {
		if (ws.w[i].outage_since != 0 &&
		    (since == 0 || ws.w[i].outage_since < since))
			since = ws.w[i].outage_since;
		if (ws.w[i].last_error[0] && ws.w[i].error_at >= at) {
			at = ws.w[i].error_at;
			snprintf(err, errsz, "%s", ws.w[i].last_error);
		}
	}
	workers_unlock();
	return since;
}

void
worker_go(struct worker *w)
{
	w->state = W_BUSY;
	w->t0 = now_mono();
	sync_wake(&ws.go, true, "workers");
}

void
workers_quit(void)
{
	atomic_store(&ws.quit, true);
}

void
workers_stop(void)
{
	struct worker *w;
	int i, err;

	workers_lock();
	ws.shutdown = true;
	sync_wake(&ws.go, true, "workers");
	workers_unlock();
	for (i = 0; i < ws.n; i++) {
		w = &ws.w[i];
		if ((err = pthread_join(w->thread, NULL)) != 0)
			die(EXIT_SOFTWARE, "worker threads: %s", strerror(err));
		db_close(w->db);
		sink_free(&w->fresh);
		sink_free(&w->changed);
		buf_free(&w->ids);
		buf_free(&w->settle);
		unit_free(&w->u);
	}
	ws.n = 0;
}
