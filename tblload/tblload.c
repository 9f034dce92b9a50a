/*
 * tblload: read batches of envelopes (from tblbatch) and keep them in
 * PostgreSQL (docs/design.md#writes). Each batch is committed in one
 * transaction (with other batches of its type that wait, when there is a
 * backlog): the last record of each id wins; the stored hashes sort the
 * others into unchanged (not written), new (COPYed straight into the
 * tables) and changed (COPYed into a staging table, then upserted). A batch
 * PostgreSQL refuses is split until the refused rows are found; the rest is
 * committed. After each commit, one settle line per delivery goes to the
 * ack file, so amqp-drain can ack or reject it (docs/design.md#delivery).
 *
 * With --jobs N, N connections commit at once, each on a thread of its own
 * (worker.c). This thread reads what the reader thread hands over, gives
 * the workers batches such that no two batches in flight hold the same id
 * (so each id's versions are committed in the order they came), settles,
 * and keeps the state file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "buf.h"
#include "cli.h"
#include "db.h"
#include "envelope.h"
#include "log.h"
#include "num.h"
#include "reader.h"
#include "rows.h"
#include "state.h"
#include "sync.h"
#include "util.h"
#include "worker.h"

#define JOBS_DEFAULT	2
#define MERGE_DEFAULT	1000
#define CONTROLS_MAX	1024	/* control messages waiting for batches before them */
#define READ_BUDGET_MB	4	/* memory for batches read ahead, and per connection: */
#define READ_BUDGET_JOB_MB 4

struct totals {
	long long	 inserted, updated, unchanged, rejected, duplicates, controls, nuls;
	long long	 invalid;	/* of rejected: refused before the database */
};

static struct {
	const char	*acks, *rejects, *copy_out;
	bool		 dry_run, check_config;
	double		 retry_max;
	size_t		 max_line;
	int		 jobs;
	long long	 merge;
} opt = { NULL, NULL, NULL, false, false, 300, 64 << 20, JOBS_DEFAULT, MERGE_DEFAULT };

static int ack_fd = -1;
static bool ack_lost;
static FILE *rejects_fp;
static FILE *copy_fp[NTABLES];
static struct sink sink;	/* --dry-run, --copy-out */
static struct buf settle;	/* this thread's settle lines */
static struct totals grand;
/* reject() runs on the workers too: this guards what it changes. */
static pthread_mutex_t reject_mu = PTHREAD_MUTEX_INITIALIZER;
static int exit_status = EXIT_OK;
static struct statefile sf;
static struct totals by_type[NTYPES];
static unsigned long long nbatches;
static double last_commit, batch_seconds_sum;
static bool connecting = true;
/* Batch durations, for the histogram in /metrics: upper bounds in seconds. */
static const double hist_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static unsigned long long hist[NELEM(hist_le) + 1];

static const char *usage_text =
    "usage: tblload [--acks file] [--rejects file] [--retry-max seconds]\n"
    "               [--jobs n|auto] [--merge n] [--dry-run | --copy-out dir] [--max-line n]\n"
    "       tblload --check-config\n"
    "      --acks file        after each commit, write a settle line per delivery\n"
    "                         (a FIFO read by amqp-drain, or a regular file)\n"
    "      --rejects file     append every rejected message, with its reason, as NDJSON\n"
    "      --retry-max s      how long to retry while PostgreSQL is unavailable\n"
    "                         (default TBLLOAD_RETRY_MAX or 300; 0 retries forever)\n"
    "  -j, --jobs n|auto      connections committing at once, 1 to 64; auto: one per\n"
    "                         local core (default TBLLOAD_JOBS or 2)\n"
    "      --merge n          commit batches of a type that wait together, up to n\n"
    "                         records a transaction (default TBLLOAD_MERGE or 1000;\n"
    "                         0: never)\n"
    "  -n, --dry-run          print the rows that would be written, as NDJSON; no database\n"
    "      --copy-out dir     write the rows as COPY text files <table>.copy; no database\n"
    "      --max-line n       longest line read whole (default 67108864)\n"
    "      --check-config     check the options and the environment, then exit\n"
    "                         (nothing is connected to)\n"
    "  -h, --help             show this help\n"
    "  -V, --version          show the version\n"
    "PostgreSQL: POSTGRES_ADDRESS (host[:port]), POSTGRES_USERNAME, POSTGRES_PASSWORD\n"
    "or POSTGRES_PASSWORD_FILE, POSTGRES_DATABASE, POSTGRES_SSLMODE, POSTGRES_SSLROOTCERT,\n"
    "POSTGRES_SSLCERT, POSTGRES_SSLKEY; libpq's PG* variables fill what is not set.\n";

/* ---- state file (docs/state.md) -------------------------------------------- */

static struct worker *wk;	/* the workers, opt.jobs of them */

/*
 * Where the connections stand: the earliest outage of any worker (0 for
 * none, as a monotonic time) and the latest error of a worker in one.
 */
static double
outage(char *err, size_t errsz)
{
	double since = 0, at = 0;
	int i;

	err[0] = '\0';
	if (wk == NULL)
		return 0;
	workers_lock();
	for (i = 0; i < opt.jobs; i++) {
		if (wk[i].outage_since != 0 && (since == 0 || wk[i].outage_since < since))
			since = wk[i].outage_since;
		if (wk[i].last_error[0] && wk[i].error_at >= at) {
			at = wk[i].error_at;
			snprintf(err, errsz, "%s", wk[i].last_error);
		}
	}
	workers_unlock();
	return since;
}

static void
write_state(double min_interval, const char *state)
{
	struct buf *b = state_begin(&sf, min_interval);
	char err[1024];
	double since;
	long long rejected;
	size_t i;
	int k;

	if (b == NULL)
		return;
	since = outage(err, sizeof(err));
	sync_lock(&reject_mu, "rejects");
	rejected = grand.rejected;
	sync_unlock(&reject_mu, "rejects");
	if (since != 0 && strcmp(state, "stopped") != 0)
		state = "retrying";
	buf_printf(b, ",\"state\":\"%s\",\"db_ok\":%s,\"outage_since\":", state,
	    since == 0 && !connecting ? "true" : "false");
	if (since != 0)
		buf_printf(b, "%.3f", now_wall() - (now_mono() - since));
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"last_error\":");
	if (err[0])
		buf_json_str_lossy(b, err, strlen(err));
	else
		buf_adds(b, "null");
	buf_printf(b, ",\"last_commit\":%.3f,\"batches\":%llu,\"rejected\":%lld,"
	    "\"nul_removed\":%lld,\"jobs\":%d,\"rows\":{", last_commit, nbatches, rejected,
	    grand.nuls, opt.jobs);
	for (k = 0; k < NTYPES; k++)
		buf_printf(b, "%s\"%s\":{\"inserted\":%lld,\"updated\":%lld,\"unchanged\":%lld,"
		    "\"rejected\":%lld}", k ? "," : "", data_types[k], by_type[k].inserted,
		    by_type[k].updated, by_type[k].unchanged, by_type[k].rejected);
	buf_adds(b, "},\"batch_seconds\":{\"le\":[");
	for (i = 0; i < NELEM(hist_le); i++)
		buf_printf(b, "%s%g", i ? "," : "", hist_le[i]);
	buf_adds(b, "],\"counts\":[");
	for (i = 0; i <= NELEM(hist_le); i++)
		buf_printf(b, "%s%llu", i ? "," : "", hist[i]);
	buf_printf(b, "],\"sum\":%.6f,\"count\":%llu}", batch_seconds_sum, nbatches);
	state_commit(&sf);
}

/* While the first connection is made: the heartbeat, and whether to stop. */
static bool
connect_tick(void)
{
	write_state(1.0, "connecting");
	return stop_signal != 0;
}

static void
count_batch(double seconds)
{
	size_t i;

	for (i = 0; i < NELEM(hist_le) && seconds > hist_le[i]; i++)
		;
	hist[i]++;
	nbatches++;
	batch_seconds_sum += seconds;
	last_commit = now_wall();
}

/* ---- settling ---------------------------------------------------------- */

static void
open_acks(void)
{
	struct stat st;
	int fl;

	if (stat(opt.acks, &st) == 0 && S_ISFIFO(st.st_mode)) {
		/* The reader (amqp-drain) opened it before it consumed anything. */
		if ((ack_fd = open(opt.acks, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
			log_msg(LOG_WARNING, "⚠️ Ack FIFO %s has no reader (%s): deliveries "
			    "will be redelivered", opt.acks, strerror(errno));
			ack_lost = true;
			return;
		}
		if ((fl = fcntl(ack_fd, F_GETFL)) < 0 || fcntl(ack_fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			die(EXIT_SOFTWARE, "fcntl %s: %s", opt.acks, strerror(errno));
		return;
	}
	if ((ack_fd = open(opt.acks, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		die(EXIT_CONFIG, "--acks %s: %s", opt.acks, strerror(errno));
}

/* Write settle lines gathered after a commit (this thread only); b is emptied. */
static void
write_settle(struct buf *b, size_t len)
{
	if (len == 0 || opt.acks == NULL || ack_lost) {
		buf_consume(b, len);
		return;
	}
	if (ack_fd < 0)
		open_acks();
	if (!ack_lost && write_all(ack_fd, b->p, len) < 0) {
		/* amqp-drain is gone: its deliveries will come again. */
		log_msg(LOG_WARNING, "⚠️ Ack channel %s closed (%s): remaining deliveries "
		    "will be redelivered", opt.acks, strerror(errno));
		ack_lost = true;
	}
	buf_consume(b, len);
}

static void
flush_settle(void)
{
	write_settle(&settle, settle.len);
}

void
settle_one(struct buf *out, const struct rec *r, bool rej, const char *reason)
{
	if (r->e.conn.p != NULL && r->e.has_tag)
		settle_write(out, rej, r->e.conn, r->e.tag, reason);
}

void
reject(struct batch *b, const struct rec *r, const char *reason, struct buf *out)
{
	struct buf line = { 0 };
	struct logrec *lr;
	const char *text = b->arena.p + r->off;

	settle_one(out, r, true, reason);
	lr = log_begin(LOG_WARNING, "❌ Message rejected");
	log_strn(lr, "type", r->e.type.p, r->e.type.n);
	if (r->e.has_id)
		log_int(lr, "id", r->e.id);
	if (r->e.has_tag)
		log_int(lr, "tag", (long long)r->e.tag);
	log_int(lr, "line", (long long)(b->lineno + r->pos + 1));
	log_str(lr, "reason", reason);
	log_end(lr);
	sync_lock(&reject_mu, "rejects");
	grand.rejected++;
	if (exit_status == EXIT_OK)
		exit_status = EXIT_DATA;
	sync_unlock(&reject_mu, "rejects");
	if (rejects_fp == NULL)
		return;
	buf_adds(&line, "{\"type\":");
	buf_json_str_lossy(&line, r->e.type.p ? r->e.type.p : "", r->e.type.n);
	if (r->e.has_id)
		buf_printf(&line, ",\"id\":%lld", r->e.id);
	if (r->e.has_tag) {
		buf_adds(&line, ",\"conn\":");
		buf_json_str_lossy(&line, r->e.conn.p, r->e.conn.n);
		buf_printf(&line, ",\"tag\":%llu", r->e.tag);
	}
	buf_adds(&line, ",\"reason\":");
	buf_json_str_lossy(&line, reason, strlen(reason));
	if (r->e.has_body && r->build_err != NULL) {
		/* Not JSON that can be read: as a string, so the line stays NDJSON. */
		buf_adds(&line, ",\"raw\":");
		buf_json_str_lossy(&line, r->e.body.p, r->e.body.n);
	} else if (r->e.has_body) {
		buf_adds(&line, ",\"body\":");
		buf_add(&line, r->e.body.p, r->e.body.n);
	} else if (r->e.has_raw) {
		buf_adds(&line, ",\"raw\":\"");
		buf_add(&line, r->e.raw.p, r->e.raw.n);
		buf_addc(&line, '"');
	} else if (r->kind == R_INVALID && r->e.type.p == NULL) {
		buf_adds(&line, ",\"line\":");
		buf_json_str_lossy(&line, text, r->len);
	}
	buf_add(&line, "}\n", 2);
	sync_lock(&reject_mu, "rejects");
	if (fwrite(line.p, 1, line.len, rejects_fp) != line.len || fflush(rejects_fp) == EOF)
		die(EXIT_TEMPFAIL, "--rejects %s: %s", opt.rejects, strerror(errno));
	sync_unlock(&reject_mu, "rejects");
	buf_free(&line);
}

/* ---- batches in and out ---------------------------------------------------- */

/*
 * Take a batch from the reader: reject its invalid envelopes at once, log
 * its control messages (settled later, see below), count them. Returns
 * whether it has records to commit.
 */
static bool
intake(struct batch *b, struct buf *controls)
{
	static bool warned;
	struct logrec *lr;
	struct rec *r;
	size_t i;
	int type;

	if (b->unbatched && !warned) {
		log_msg(LOG_WARNING, "⚠️ Input is not batched: one transaction per "
		    "line (pipe it through tblbatch)");
		warned = true;
	}
	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind == R_INVALID) {
			reject(b, r, r->reason, &settle);
			if ((type = data_type_index(r->e.type.p, r->e.type.n)) >= 0 && !r->e.type.esc)
				by_type[type].rejected++;
		} else if (r->kind == R_CONTROL) {
			lr = log_begin(LOG_INFO, "📄 Control message");
			log_strn(lr, "type", r->e.type.p, r->e.type.n);
			log_strn(lr, "control", r->e.control.p, r->e.control.n);
			log_end(lr);
			settle_one(controls, r, false, NULL);
			grand.controls++;
		}
	}
	flush_settle();
	return b->nrec > 0;
}

/* The counts of a committed batch, from what became of each group. */
static void
tally(struct batch *b, struct totals *t)
{
	struct rec *w;
	size_t i, g;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < b->n; i++)
		if (b->r[i].kind == R_INVALID) {
			t->rejected++;
			t->invalid++;
		}
	for (g = 0; g < b->ngrp; g++) {
		w = winner(b, g);
		switch (b->outcome[g]) {
		case O_INSERTED: t->inserted++; break;
		case O_UPDATED: t->updated++; break;
		case O_UNCHANGED: t->unchanged++; break;
		case O_REJECTED: t->rejected++; break;
		}
		/* U+0000 removed from the rows sent. */
		if (b->outcome[g] != O_REJECTED && b->known[g] != G_SAME)
			t->nuls += (long long)w->nuls;
	}
	t->duplicates = (long long)(b->nrec - b->ngrp);
}

/* Log a batch that is done, and count it. */
static void
batch_done(struct batch *b, const struct totals *t, double dt, const char *event,
    int job, size_t merged)
{
	struct logrec *lr;
	int type = b->type_idx;

	count_batch(dt);
	by_type[type].inserted += t->inserted;
	by_type[type].updated += t->updated;
	by_type[type].unchanged += t->unchanged;
	by_type[type].rejected += t->rejected - t->invalid;
	grand.inserted += t->inserted;
	grand.updated += t->updated;
	grand.unchanged += t->unchanged;
	grand.duplicates += t->duplicates;
	grand.nuls += t->nuls;
	lr = log_begin(LOG_INFO, "%s", event);
	log_str(lr, "type", data_types[type]);
	log_int(lr, "size", (long long)b->nrec);
	log_int(lr, "inserted", t->inserted);
	log_int(lr, "updated", t->updated);
	log_int(lr, "unchanged", t->unchanged);
	log_int(lr, "rejected", t->rejected);
	log_int(lr, "duplicates", t->duplicates);
	if (t->nuls)
		log_int(lr, "nul_removed", t->nuls);
	log_num(lr, "duration_ms", dt * 1000);
	log_num(lr, "records_per_sec", (double)b->nrec / (dt > 0 ? dt : 1e-9));
	if (job >= 0 && opt.jobs > 1)
		log_int(lr, "job", job);
	if (merged > 1)
		log_int(lr, "merged", (long long)merged);
	log_end(lr);
}

/* ---- without a database ------------------------------------------------------ */

/* Print the rows (--dry-run) or write COPY files. */
static void
write_offline(struct batch *b)
{
	struct sink *rows = &b->pre;
	struct totals t;
	struct rec *w;
	size_t g;
	double t0 = now_mono();
	int k;

	if (!b->prebuilt)
		batch_prebuild(b);
	for (g = 0; g < b->ngrp; g++) {
		w = winner(b, g);
		b->outcome[g] = w->build_err != NULL ? O_REJECTED : O_INSERTED;
		if (w->build_err != NULL)
			reject(b, w, w->build_err, &settle);
	}
	flush_settle();
	if (opt.dry_run) {
		if (write_all(STDOUT_FILENO, rows->out[0].p, rows->out[0].len) < 0)
			die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	} else
		for (k = 0; k < NTABLES; k++)
			if (rows->out[k].len && fwrite(rows->out[k].p, 1, rows->out[k].len,
			    copy_fp[k]) != rows->out[k].len)
				die(EXIT_TEMPFAIL, "--copy-out %s: %s", opt.copy_out, strerror(errno));
	tally(b, &t);
	batch_done(b, &t, now_mono() - t0, "📝 Batch written (no database)", -1, 1);
}

static void
load_offline(void)
{
	struct batch *b;
	enum reader_status st;

	reader_start(STDIN_FILENO, opt.max_line, sink.fmt, 2, SIZE_MAX, true);
	while (!stop_signal && (st = reader_next(-1, &b)) != RD_END) {
		if (st == RD_ERROR)
			die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
		if (st != RD_BATCH)
			continue;
		if (b->cut_short) {
			log_msg(LOG_ERROR, "❌ Batch at line %llu cut short by the end of input "
			    "(%zu of %lld lines); not committed", b->lineno, b->n, b->want);
			exit_status = EXIT_TEMPFAIL;
			reader_release(b);
			break;
		}
		intake(b, &settle);
		flush_settle();
		if (b->nrec > 0)
			write_offline(b);
		reader_release(b);
	}
	reader_stop();
}

/* ---- the connections --------------------------------------------------------- */

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
	for (i = 0; i < opt.jobs; i++)
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
	for (i = 0; i < (size_t)opt.jobs; i++)
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
	write_settle(&ld.ctl, len);
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
			exit_status = EXIT_TEMPFAIL;
			reader_release(b);
			ld.input_over = true;
			ld.input_status = RD_END;
			return;
		}
		before = ld.ctl.len;
		if (intake(b, &ld.ctl))
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
	for (i = 0; i < (size_t)opt.jobs && !hit; i++)
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
		for (j = 0; j < opt.jobs && w == NULL; j++)
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
		share = (waiting + (size_t)opt.jobs - 1) / (size_t)opt.jobs;
		if (ld.nwaiting <= (size_t)opt.jobs || share > (size_t)opt.merge)
			share = ld.nwaiting <= (size_t)opt.jobs ? 0 : (size_t)opt.merge;
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

	write_settle(&w->settle, w->settle.len);
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
	write_state(0.25, "loading");
}

static void
collect(void)
{
	struct worker *done[JOBS_MAX];
	int i, n = 0;

	workers_lock();
	for (i = 0; i < opt.jobs; i++)
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
	for (i = 0; i < opt.jobs && wk[i].state == W_DEAD; i++)
		;
	if (n > 0 && i == opt.jobs && ld.fail_status == 0) {
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
	write_state(1.0, busy() > 0 || ld.nwaiting > 0 ? "loading" : "idle");
}

/*
 * Load the input: batches are taken from the reader as it has them, given
 * to the workers as they may go, and settled as the workers commit them.
 * A stop request ends the loop once the batches in flight are committed
 * (those waiting are neither committed nor settled: the broker delivers
 * them again).
 */
/* Connections still being made are not needed any more. */
static void
give_up_connecting(void)
{
	int i;

	workers_lock();
	for (i = 0; i < opt.jobs; i++)
		if (wk[i].state == W_BUSY && wk[i].u.nb == 0)
			atomic_store(&wk[i].give_up, true);
	workers_unlock();
}

static void
load(void)
{
	if (pipe2(ld.wake, O_CLOEXEC | O_NONBLOCK) < 0)
		die(EXIT_SOFTWARE, "pipe: %s", strerror(errno));
	/* Batches in flight and those that wait to be merged fit in a
	 * budget of memory that grows with the connections. */
	reader_start(STDIN_FILENO, opt.max_line, sink.fmt, READER_SLOTS_MAX,
	    (size_t)(READ_BUDGET_MB + READ_BUDGET_JOB_MB * opt.jobs) << 20, false);
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

/* ---- main ---------------------------------------------------------------- */

/* --jobs and TBLLOAD_JOBS: 1 to JOBS_MAX, or auto (one per local core). */
static int
parse_jobs(const char *s, const char *name, int status)
{
	const char *why;
	long long v;
	long cores;

	if (strcmp(s, "auto") == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		return cores < 1 ? 1 : cores > JOBS_MAX ? JOBS_MAX : (int)cores;
	}
	if (parse_ll(s, 1, JOBS_MAX, &v, &why) < 0)
		die(status, "%s: '%s' is %s (want auto or an integer from 1 to %d)", name, s, why,
		    JOBS_MAX);
	return (int)v;
}

static void
read_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "acks", required_argument, NULL, 'a' },
		{ "rejects", required_argument, NULL, 'r' },
		{ "retry-max", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "merge", required_argument, NULL, 'M' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "copy-out", required_argument, NULL, 'C' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *v;
	int ch;

	opt.retry_max = env_double("TBLLOAD_RETRY_MAX", opt.retry_max, 0, 1e9);
	if ((v = env_str("TBLLOAD_JOBS", NULL)) != NULL)
		opt.jobs = parse_jobs(v, "TBLLOAD_JOBS", EXIT_CONFIG);
	opt.merge = env_ll("TBLLOAD_MERGE", opt.merge, 0, 1000000);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:nhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			opt.acks = optarg;
			break;
		case 'r':
			opt.rejects = optarg;
			break;
		case 'R':
			opt.retry_max = opt_double("--retry-max", optarg, 0, 1e9);
			break;
		case 'j':
			opt.jobs = parse_jobs(optarg, "option --jobs", EXIT_USAGE);
			break;
		case 'M':
			opt.merge = opt_ll("--merge", optarg, 0, 1000000);
			break;
		case 'n':
			opt.dry_run = true;
			break;
		case 'K':
			opt.check_config = true;
			break;
		case 'C':
			opt.copy_out = optarg;
			break;
		case 'L':
			opt.max_line = (size_t)opt_ll("--max-line", optarg, 1024, 1LL << 31);
			break;
		case 'h':
			print_usage(usage_text);
		case 'V':
			print_version();
		default:
			die_bad_option(ch, argv);
		}
	}
	if (optind != argc)
		die_operand(argv[optind]);
	if (opt.dry_run && opt.copy_out)
		die(EXIT_USAGE, "--dry-run and --copy-out exclude each other");
}

static void
open_outputs(void)
{
	char path[4096];
	struct stat st;
	int k;

	if (opt.rejects != NULL && (rejects_fp = fopen(opt.rejects, "a")) == NULL)
		die(EXIT_CONFIG, "--rejects %s: %s", opt.rejects, strerror(errno));
	/* A file that cannot be written is a configuration error to report before
	 * anything is committed; a FIFO is opened at the first settle line, when
	 * its reader (amqp-drain) is sure to be there. */
	if (opt.acks != NULL && !(stat(opt.acks, &st) == 0 && S_ISFIFO(st.st_mode)))
		open_acks();
	if (opt.copy_out != NULL) {
		if (mkdir(opt.copy_out, 0755) < 0 && errno != EEXIST)
			die(EXIT_CONFIG, "--copy-out %s: %s", opt.copy_out, strerror(errno));
		for (k = 0; k < NTABLES; k++) {
			snprintf(path, sizeof(path), "%s/%s.copy", opt.copy_out, tables[k].name);
			if ((copy_fp[k] = fopen(path, "w")) == NULL)
				die(EXIT_CONFIG, "--copy-out %s: %s", path, strerror(errno));
		}
	}
}

static void
close_outputs(void)
{
	int k;

	if (rejects_fp != NULL && fclose(rejects_fp) == EOF)
		die(EXIT_TEMPFAIL, "--rejects %s: %s", opt.rejects, strerror(errno));
	for (k = 0; k < NTABLES; k++)
		if (copy_fp[k] != NULL && fclose(copy_fp[k]) == EOF)
			die(EXIT_TEMPFAIL, "--copy-out %s: %s", opt.copy_out, strerror(errno));
	if (ack_fd >= 0 && close(ack_fd) < 0 && !ack_lost)
		die(EXIT_TEMPFAIL, "--acks %s: %s", opt.acks, strerror(errno));
}

/* CPU seconds this process used, user and system. */
static double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int
main(int argc, char *argv[])
{
	struct logrec *lr;
	double t0;

	log_init("tblload");
	read_options(argc, argv);
	if (opt.check_config) {
		/* The connection settings are read (and refused) here. */
		db_close(db_new());
		return EXIT_OK;
	}
	ignore_sigpipe();
	catch_stop_signals();
	sink.fmt = opt.dry_run ? SINK_JSON : SINK_COPY;
	sink.with_ord = 0;
	open_outputs();
	t0 = now_mono();
	if (opt.dry_run || opt.copy_out)
		load_offline();
	else {
		state_open(&sf, "tblload");
		write_state(0, "connecting");
		wk = workers_init(opt.jobs, opt.retry_max);
		wk[0].tick = connect_tick;
		if (worker_connect(&wk[0]) < 0)
			die(wk[0].status, "%s", wk[0].msg);
		connecting = false;
		lr = log_begin(LOG_INFO, "🐘 Connected to PostgreSQL (%s), schema ready",
		    db_describe(wk[0].db));
		if (opt.jobs > 1)
			log_int(lr, "jobs", opt.jobs);
		log_end(lr);
		load();
	}
	close_outputs();
	write_state(0, "stopped");
	lr = log_begin(LOG_INFO, stop_signal ? "🛑 Loading stopped" : "✅ Loading finished");
	log_int(lr, "inserted", grand.inserted);
	log_int(lr, "updated", grand.updated);
	log_int(lr, "unchanged", grand.unchanged);
	log_int(lr, "rejected", grand.rejected);
	log_int(lr, "duplicates", grand.duplicates);
	log_int(lr, "controls", grand.controls);
	log_int(lr, "nul_removed", grand.nuls);
	log_num(lr, "duration_s", now_mono() - t0);
	log_num(lr, "cpu_s", cpu_seconds());
	log_int(lr, "peak_rss_kb", peak_rss_kb());
	log_end(lr);
	sink_free(&sink);
	buf_free(&settle);
	return exit_status;
}
