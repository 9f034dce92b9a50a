#include <pthread.h>
#include <string.h>

#include "cli.h"
#include "counts.h"
#include "json.h"
#include "log.h"
#include "rows.h"
#include "state.h"
#include "sync.h"
#include "util.h"
#include "worker.h"

static struct totals grand;
static struct totals by_type[NTYPES];
/* The workers count rejections too: this guards grand.rejected. */
static pthread_mutex_t reject_mu = PTHREAD_MUTEX_INITIALIZER;
static struct statefile sf;
static int jobs = 1;
static bool connecting = true;
static unsigned long long nbatches;
static double last_commit, batch_seconds_sum;
/* Batch durations, for the histogram in /metrics: upper bounds in seconds. */
static const double hist_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static unsigned long long hist[NELEM(hist_le) + 1];

void
counts_open(int n)
{
	jobs = n;
	state_open(&sf, "tblload");
}

void
counts_connected(void)
{
	connecting = false;
}

void
count_reject(void)
{
	sync_lock(&reject_mu, "rejects");
	grand.rejected++;
	sync_unlock(&reject_mu, "rejects");
}

long long
counts_rejected(void)
{
	long long n;

	sync_lock(&reject_mu, "rejects");
	n = grand.rejected;
	sync_unlock(&reject_mu, "rejects");
	return n;
}

void
count_invalid(int type)
{
	if (type >= 0)
		by_type[type].rejected++;
}

void
count_control(void)
{
	grand.controls++;
}

void
tally(const struct batch *b, struct totals *t)
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

void
batch_done(const struct batch *b, const struct totals *t, double dt, const char *event,
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
	if (job >= 0 && jobs > 1)
		log_int(lr, "job", job);
	if (merged > 1)
		log_int(lr, "merged", (long long)merged);
	log_end(lr);
}

void
counts_write_state(double min_interval, const char *state)
{
	struct buf *b = state_begin(&sf, min_interval);
	char err[1024];
	double since;
	size_t i;
	int k;

	if (b == NULL)
		return;
	since = workers_outage(err, sizeof(err));
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
		json_put_str_lossy(b, err, strlen(err));
	else
		buf_adds(b, "null");
	buf_printf(b, ",\"last_commit\":%.3f,\"batches\":%llu,\"rejected\":%lld,"
	    "\"nul_removed\":%lld,\"jobs\":%d,\"rows\":{", last_commit, nbatches,
	    counts_rejected(), grand.nuls, jobs);
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

void
counts_report_end(double t0)
{
	struct logrec *lr;

	counts_write_state(0, "stopped");
	lr = log_begin(LOG_INFO, stop_signal ? "🛑 Loading stopped" : "✅ Loading finished");
	log_int(lr, "inserted", grand.inserted);
	log_int(lr, "updated", grand.updated);
	log_int(lr, "unchanged", grand.unchanged);
	log_int(lr, "rejected", counts_rejected());
	log_int(lr, "duplicates", grand.duplicates);
	log_int(lr, "controls", grand.controls);
	log_int(lr, "nul_removed", grand.nuls);
	log_num(lr, "duration_s", now_mono() - t0);
	log_num(lr, "cpu_s", cpu_seconds());
	log_int(lr, "peak_rss_kb", peak_rss_kb());
	log_end(lr);
}
