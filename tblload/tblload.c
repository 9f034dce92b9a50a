/*
 * tblload: read batches of envelopes (from tblbatch) and keep them in
 * PostgreSQL (docs/design.md#writes). Each batch is one transaction: the
 * last record of each id wins; the stored hashes sort the others into
 * unchanged (not written), new (COPYed straight into the tables) and changed
 * (COPYed into a staging table, then upserted). A batch PostgreSQL refuses
 * is split until the refused rows are found; the rest is committed. After
 * each commit, one settle line per delivery goes to the ack file, so
 * amqp-drain can ack or reject it (docs/design.md#delivery).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "util.h"

struct totals {
	long long	 inserted, updated, unchanged, rejected, duplicates, controls, nuls;
	long long	 invalid;	/* of rejected: refused before the database */
};

static struct {
	const char	*acks, *rejects, *copy_out;
	bool		 dry_run, check_config;
	double		 retry_max;
	size_t		 max_line;
} opt = { NULL, NULL, NULL, false, false, 300, 64 << 20 };

static struct db *db;
static int ack_fd = -1;
static bool ack_lost;
static FILE *rejects_fp;
static FILE *copy_fp[NTABLES];
static struct sink sink;
static struct buf settle;
static struct totals grand;
static int exit_status = EXIT_OK;
static double outage_since;	/* 0, or when the current run of failures began */
static struct statefile sf;
static struct totals by_type[NTYPES];
static unsigned long long nbatches;
static double last_commit, batch_seconds_sum;
static char last_error[1024];
/* Batch durations, for the histogram in /metrics: upper bounds in seconds. */
static const double hist_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static unsigned long long hist[NELEM(hist_le) + 1];

static const char *usage_text =
    "usage: tblload [--acks file] [--rejects file] [--retry-max seconds]\n"
    "               [--dry-run | --copy-out dir] [--max-line n]\n"
    "       tblload --check-config\n"
    "      --acks file        after each commit, write a settle line per delivery\n"
    "                         (a FIFO read by amqp-drain, or a regular file)\n"
    "      --rejects file     append every rejected message, with its reason, as NDJSON\n"
    "      --retry-max s      how long to retry while PostgreSQL is unavailable\n"
    "                         (default TBLLOAD_RETRY_MAX or 300; 0 retries forever)\n"
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

static void
write_state(double min_interval, const char *state)
{
	struct buf *b = state_begin(&sf, min_interval);
	size_t i;
	int k;

	if (b == NULL)
		return;
	buf_printf(b, ",\"state\":\"%s\",\"db_ok\":%s,\"outage_since\":", state,
	    outage_since == 0 && strcmp(state, "connecting") != 0 ? "true" : "false");
	if (outage_since != 0)
		buf_printf(b, "%.3f", now_wall() - (now_mono() - outage_since));
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"last_error\":");
	if (last_error[0])
		buf_json_str_lossy(b, last_error, strlen(last_error));
	else
		buf_adds(b, "null");
	buf_printf(b, ",\"last_commit\":%.3f,\"batches\":%llu,\"rejected\":%lld,"
	    "\"nul_removed\":%lld,\"rows\":{", last_commit, nbatches, grand.rejected, grand.nuls);
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

/* While PostgreSQL works on a batch: the state file keeps its heartbeat. */
static void
heartbeat(void)
{
	write_state(1.0, "loading");
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

/* Write the settle lines gathered for one commit. */
static void
flush_settle(void)
{
	if (settle.len == 0 || opt.acks == NULL || ack_lost) {
		buf_reset(&settle);
		return;
	}
	if (ack_fd < 0)
		open_acks();
	if (!ack_lost && write_all(ack_fd, settle.p, settle.len) < 0) {
		/* amqp-drain is gone: its deliveries will come again. */
		log_msg(LOG_WARNING, "⚠️ Ack channel %s closed (%s): remaining deliveries "
		    "will be redelivered", opt.acks, strerror(errno));
		ack_lost = true;
	}
	buf_reset(&settle);
}

static void
settle_one(const struct rec *r, bool reject, const char *reason)
{
	if (r->e.conn.p != NULL && r->e.has_tag)
		settle_write(&settle, reject, r->e.conn, r->e.tag, reason);
}

static void
reject(struct batch *b, const struct rec *r, const char *reason)
{
	struct buf line = { 0 };
	struct logrec *lr;
	const char *text = b->arena.p + r->off;

	settle_one(r, true, reason);
	grand.rejected++;
	if (exit_status == EXIT_OK)
		exit_status = EXIT_DATA;
	lr = log_begin(LOG_WARNING, "❌ Message rejected");
	log_strn(lr, "type", r->e.type.p, r->e.type.n);
	if (r->e.has_id)
		log_int(lr, "id", r->e.id);
	if (r->e.has_tag)
		log_int(lr, "tag", (long long)r->e.tag);
	log_int(lr, "line", (long long)(b->lineno + r->pos + 1));
	log_str(lr, "reason", reason);
	log_end(lr);
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
	if (fwrite(line.p, 1, line.len, rejects_fp) != line.len || fflush(rejects_fp) == EOF)
		die(EXIT_TEMPFAIL, "--rejects %s: %s", opt.rejects, strerror(errno));
	buf_free(&line);
}

/* ---- writing ------------------------------------------------------------ */

struct hashcheck {
	struct batch	*b;
	size_t		 lo, hi;
};

/* A stored id and hash: its group is unchanged or changed. */
static void
mark_stored(long long id, const char *hash, void *arg)
{
	struct hashcheck *hc = arg;
	size_t l = hc->lo, h = hc->hi, m;
	struct rec *r;

	while (l < h) {		/* groups are sorted by id */
		m = l + (h - l) / 2;
		if (winner(hc->b, m)->e.id < id)
			l = m + 1;
		else
			h = m;
	}
	if (l < hc->hi && (r = winner(hc->b, l))->e.id == id)
		hc->b->known[l] = strlen(hash) == 64 && memcmp(hash, r->e.sha256.p, 64) == 0 ?
		    G_SAME : G_CHANGED;
}

static void
ids_literal(struct batch *b, size_t lo, size_t hi, struct buf *out)
{
	size_t g;

	buf_reset(out);
	buf_addc(out, '{');
	for (g = lo; g < hi; g++)
		buf_printf(out, "%s%lld", g > lo ? "," : "", winner(b, g)->e.id);
	buf_addc(out, '}');
}

/* Whether none of the groups [lo, hi) is stored yet. */
static bool
all_new(const struct batch *b, size_t lo, size_t hi)
{
	size_t g;

	for (g = lo; g < hi; g++)
		if (b->known[g] != G_NEW)
			return false;
	return true;
}

/*
 * One try at committing groups [lo, hi): ask which ids are stored and with
 * which hash; COPY the records not stored yet straight into their tables
 * (as a plain COPY would: a first load costs no more than one), and upsert
 * the changed ones through the staging table; commit. With upsert_all, new
 * records take the upsert path too (after a conflict with another writer).
 * When the whole batch is new, the rows the reader built ahead are used.
 */
static enum outcome
try_commit(struct batch *b, size_t lo, size_t hi, bool upsert_all,
    struct upsert_counts *uc, char *err, size_t errsz)
{
	static struct buf ids;
	static struct sink fresh = { .fmt = SINK_COPY, .with_ord = 0 };
	struct hashcheck hc = { b, lo, hi };
	struct sink *news = &fresh;
	enum outcome o;
	size_t g, nnew = 0, nchanged = 0, failed = 0;
	unsigned upsert_mask = 1u << G_CHANGED;

	memset(b->known + lo, G_NEW, hi - lo);
	memset(uc, 0, sizeof(*uc));
	sink_reset(&sink);
	sink_reset(&fresh);
	o = db_begin(db, err, errsz);
	if (o == OUT_OK) {
		ids_literal(b, lo, hi, &ids);
		o = db_stored_hashes(db, b->type_idx, ids.p, mark_stored, &hc, err, errsz);
	}
	if (o == OUT_OK && b->prebuilt && !upsert_all && lo == 0 && hi == b->ngrp &&
	    all_new(b, lo, hi)) {
		news = &b->pre;
		nnew = b->pre_rows;
		failed = b->pre_failed;
	} else if (o == OUT_OK) {
		for (g = lo; g < hi; g++)
			winner(b, g)->build_err = NULL;
		if (upsert_all)
			upsert_mask |= 1u << G_NEW;
		else
			nnew = build_rows(b, lo, hi, 1u << G_NEW, &fresh, &failed);
		nchanged = build_rows(b, lo, hi, upsert_mask, &sink, &failed);
	}
	if (o == OUT_OK && nnew > 0)
		o = db_copy_new(db, b->type_idx, news, err, errsz);
	if (o == OUT_OK && nchanged > 0)
		o = db_write(db, b->type_idx, &sink, (long long)nchanged, uc, err, errsz);
	if (o == OUT_OK)
		o = db_commit(db, err, errsz);
	if (o != OUT_OK)
		db_rollback(db);
	uc->inserted += (long long)nnew;
	uc->unchanged += (long long)(hi - lo - nnew - nchanged - failed);
	sink.nuls += news->nuls;
	return o;
}

/* Settle every delivery of groups [lo, hi) after their commit: a record that
 * gave no row is rejected (it was not stored), the others are acked. */
static void
settle_groups(struct batch *b, size_t lo, size_t hi, struct totals *t)
{
	struct rec *w;
	size_t g, i;

	for (g = lo; g < hi; g++) {
		w = winner(b, g);
		for (i = b->grp[g]; i < b->grp[g + 1]; i++)
			if (&b->r[b->order[i]] != w || w->build_err == NULL)
				settle_one(&b->r[b->order[i]], false, NULL);
		if (w->build_err != NULL) {
			reject(b, w, w->build_err);
			t->rejected++;
		}
	}
}

/* Wait before the next try; give up once PostgreSQL has been away too long. */
static void
backoff(const char *err, int attempt)
{
	double wait, now = now_mono();
	struct logrec *lr;

	if (outage_since == 0)
		outage_since = now;
	/* The last wait is cut to the deadline, so that one more try falls on it. */
	if (opt.retry_max > 0 && now - outage_since >= opt.retry_max - 0.01)
		die(EXIT_TEMPFAIL, "PostgreSQL unavailable for %.0f s, giving up "
		    "(unsettled deliveries will be redelivered): %s", now - outage_since, err);
	wait = 0.25;
	while (attempt-- > 0 && wait < 8)
		wait *= 2;
	if (opt.retry_max > 0 && wait > opt.retry_max - (now - outage_since))
		wait = opt.retry_max - (now - outage_since);
	snprintf(last_error, sizeof(last_error), "%s", err);
	write_state(0, "retrying");
	lr = log_begin(LOG_WARNING, "🔄 PostgreSQL unavailable, retrying");
	log_str(lr, "error", err);
	log_num(lr, "retry_in_s", wait);
	log_num(lr, "outage_s", now - outage_since);
	log_end(lr);
	for (; wait > 0 && !stop_signal; wait -= 0.1) {
		sleep_seconds(wait < 0.1 ? wait : 0.1);
		write_state(1.0, "retrying");
	}
	if (stop_signal)
		die(EXIT_TEMPFAIL, "stopped while PostgreSQL was unavailable "
		    "(unsettled deliveries will be redelivered)");
}

static void
reconnect(void)
{
	char err[1024];
	enum outcome o;
	int attempt = 0;

	for (;;) {
		o = db_open(db, err, sizeof(err));
		if (o == OUT_OK) {
			if (outage_since != 0)
				log_msg(LOG_INFO, "✅ Connected to PostgreSQL again after %.1f s",
				    now_mono() - outage_since);
			return;
		}
		snprintf(last_error, sizeof(last_error), "%s", err);
		if (o == OUT_CONFIG)
			die(EXIT_CONFIG, "PostgreSQL (%s): %s", db_describe(db), err);
		if (o == OUT_FATAL)
			die(EXIT_SOFTWARE, "PostgreSQL (%s): %s", db_describe(db), err);
		backoff(err, attempt++);
	}
}

/*
 * Commit groups [lo, hi) of the batch. A transient failure is retried; rows
 * PostgreSQL refuses are found by splitting the range in halves, so one bad
 * record costs about log2(n) extra transactions and the others are stored.
 */
static void
commit_range(struct batch *b, size_t lo, size_t hi, struct totals *t)
{
	struct upsert_counts uc;
	char err[1024], reason[1100];
	enum outcome o;
	size_t mid, i;
	int attempt = 0;
	bool upsert_all = false;

	for (;;) {
		o = try_commit(b, lo, hi, upsert_all, &uc, err, sizeof(err));
		switch (o) {
		case OUT_OK:
			outage_since = 0;
			last_error[0] = '\0';
			t->inserted += uc.inserted;
			t->updated += uc.updated;
			t->unchanged += uc.unchanged;
			t->nuls += (long long)sink.nuls;
			settle_groups(b, lo, hi, t);
			flush_settle();
			return;
		case OUT_TRANSIENT:
			backoff(err, attempt++);
			if (!db_usable(db))
				reconnect();
			continue;
		case OUT_DATA:
			if (hi - lo > 1) {
				mid = lo + (hi - lo) / 2;
				commit_range(b, lo, mid, t);
				commit_range(b, mid, hi, t);
				return;
			}
			snprintf(reason, sizeof(reason), "PostgreSQL refused the row: %s", err);
			reject(b, winner(b, lo), reason);
			t->rejected++;
			/* Older copies of the same id were superseded: settle them too. */
			for (i = b->grp[lo]; i + 1 < b->grp[lo + 1]; i++)
				settle_one(&b->r[b->order[i]], false, NULL);
			flush_settle();
			return;
		case OUT_CONFLICT:
			/* Another writer stored one of the new ids meanwhile. */
			log_msg(LOG_DEBUG, "A new record was stored by someone else: upserting all");
			upsert_all = true;
			continue;
		case OUT_CONFIG:
			die(EXIT_CONFIG, "PostgreSQL (%s): %s", db_describe(db), err);
		case OUT_FATAL:
			die(EXIT_SOFTWARE, "PostgreSQL (%s): %s", db_describe(db), err);
		}
	}
}

/* Without a database: print the rows (--dry-run) or write COPY files. */
static void
write_offline(struct batch *b, struct totals *t)
{
	struct sink *rows = &b->pre;
	struct rec *w;
	size_t g;
	int k;

	if (!b->prebuilt)
		batch_prebuild(b);
	for (g = 0; g < b->ngrp; g++)
		if ((w = winner(b, g))->build_err != NULL) {
			reject(b, w, w->build_err);
			t->rejected++;
		}
	flush_settle();
	t->nuls += (long long)rows->nuls;
	if (opt.dry_run) {
		if (write_all(STDOUT_FILENO, rows->out[0].p, rows->out[0].len) < 0)
			die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	} else
		for (k = 0; k < NTABLES; k++)
			if (rows->out[k].len && fwrite(rows->out[k].p, 1, rows->out[k].len,
			    copy_fp[k]) != rows->out[k].len)
				die(EXIT_TEMPFAIL, "--copy-out %s: %s", opt.copy_out, strerror(errno));
	t->inserted += (long long)b->pre_rows;
}

static void
process_batch(struct batch *b)
{
	struct totals t = { 0 };
	struct logrec *lr;
	struct rec *r;
	double t0 = now_mono(), dt;
	size_t i;
	int type;

	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind == R_INVALID) {
			reject(b, r, r->reason);
			t.rejected++;
			if ((type = data_type_index(r->e.type.p, r->e.type.n)) >= 0 && !r->e.type.esc)
				by_type[type].rejected++;
			t.invalid++;
		} else if (r->kind == R_CONTROL) {
			lr = log_begin(LOG_INFO, "📄 Control message");
			log_strn(lr, "type", r->e.type.p, r->e.type.n);
			log_strn(lr, "control", r->e.control.p, r->e.control.n);
			log_end(lr);
			settle_one(r, false, NULL);
			t.controls++;
		}
	}
	flush_settle();
	if (b->nrec > 0) {
		type = b->type_idx;
		t.duplicates = (long long)(b->nrec - b->ngrp);
		if (opt.dry_run || opt.copy_out)
			write_offline(b, &t);
		else {
			commit_range(b, 0, b->ngrp, &t);
			/* Rows built ahead are wasted while the records are stored. */
			reader_build_ahead(t.updated == 0 && t.unchanged == 0);
		}
		dt = now_mono() - t0;
		count_batch(dt);
		by_type[type].inserted += t.inserted;
		by_type[type].updated += t.updated;
		by_type[type].unchanged += t.unchanged;
		by_type[type].rejected += t.rejected - t.invalid;
		lr = log_begin(LOG_INFO, opt.dry_run || opt.copy_out ? "📝 Batch written (no database)" :
		    "✅ Batch committed");
		log_str(lr, "type", data_types[type]);
		log_int(lr, "size", (long long)b->nrec);
		log_int(lr, "inserted", t.inserted);
		log_int(lr, "updated", t.updated);
		log_int(lr, "unchanged", t.unchanged);
		log_int(lr, "rejected", t.rejected);
		log_int(lr, "duplicates", t.duplicates);
		if (t.nuls)
			log_int(lr, "nul_removed", t.nuls);
		log_num(lr, "duration_ms", dt * 1000);
		log_num(lr, "records_per_sec", (double)b->nrec / (dt > 0 ? dt : 1e-9));
		log_end(lr);
	}
	grand.inserted += t.inserted;
	grand.updated += t.updated;
	grand.unchanged += t.unchanged;
	grand.duplicates += t.duplicates;
	grand.controls += t.controls;
	grand.nuls += t.nuls;
	write_state(0.25, "loading");
}

/* ---- main ---------------------------------------------------------------- */

static void
read_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "acks", required_argument, NULL, 'a' },
		{ "rejects", required_argument, NULL, 'r' },
		{ "retry-max", required_argument, NULL, 'R' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "copy-out", required_argument, NULL, 'C' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int ch;

	opt.retry_max = env_double("TBLLOAD_RETRY_MAX", opt.retry_max, 0, 1e9);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":nhV", longopts, NULL)) != -1) {
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

/*
 * Load the input batch by batch, as the reader thread hands them over.
 * While the input is idle the state file keeps its heartbeat; a stop
 * request is seen within a second (the wait is a poll, which a signal
 * interrupts) and ends the loop between batches.
 */
static void
load(void)
{
	struct batch *b;
	enum reader_status st = RD_END;
	bool warned = false;

	reader_start(STDIN_FILENO, opt.max_line, sink.fmt);
	while (!stop_signal) {
		if ((st = reader_next(1.0, &b)) == RD_WAIT) {
			write_state(1.0, "idle");
			continue;
		}
		if (st != RD_BATCH)
			break;
		if (b->cut_short) {
			log_msg(LOG_ERROR, "❌ Batch at line %llu cut short by the end of input "
			    "(%zu of %lld lines); not committed", b->lineno, b->n, b->want);
			exit_status = EXIT_TEMPFAIL;
			reader_release(b);
			break;
		}
		if (b->unbatched && !warned) {
			log_msg(LOG_WARNING, "⚠️ Input is not batched: one transaction per "
			    "line (pipe it through tblbatch)");
			warned = true;
		}
		process_batch(b);
		reader_release(b);
	}
	if (st == RD_ERROR)
		die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
	reader_stop();
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
	sink.with_ord = !opt.dry_run && !opt.copy_out;
	open_outputs();
	t0 = now_mono();
	if (!opt.dry_run && !opt.copy_out) {
		state_open(&sf, "tblload");
		write_state(0, "connecting");
		db = db_new();
		db_set_wait_hook(heartbeat);
		reconnect();
		log_msg(LOG_INFO, "🐘 Connected to PostgreSQL (%s), schema ready", db_describe(db));
	}
	load();
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
	log_int(lr, "peak_rss_kb", peak_rss_kb());
	log_end(lr);
	db_close(db);
	sink_free(&sink);
	buf_free(&settle);
	return exit_status;
}
