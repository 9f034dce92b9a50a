#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "counts.h"
#include "db.h"
#include "log.h"
#include "offline.h"
#include "reader.h"
#include "settle.h"
#include "util.h"

static const char *copy_dir;
static FILE *copy_fp[NTABLES];
static struct buf settled;	/* settle lines of the batch at hand */

static void
open_copy_files(void)
{
	char path[4096];
	int k;

	if (mkdir(copy_dir, 0755) < 0 && errno != EEXIST)
		die(EXIT_CONFIG, "--copy-out %s: %s", copy_dir, strerror(errno));
	for (k = 0; k < NTABLES; k++) {
		snprintf(path, sizeof(path), "%s/%s.copy", copy_dir, tables[k].name);
		if ((copy_fp[k] = fopen(path, "w")) == NULL)
			die(EXIT_CONFIG, "--copy-out %s: %s", path, strerror(errno));
	}
}

static void
close_copy_files(void)
{
	int k;

	for (k = 0; k < NTABLES; k++)
		if (copy_fp[k] != NULL && fclose(copy_fp[k]) == EOF)
			die(EXIT_TEMPFAIL, "--copy-out %s: %s", copy_dir, strerror(errno));
}

/* Every group's rows as if none were stored: each record is inserted. */
static void
write_rows(struct batch *b)
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
			reject(b, w, w->build_err, &settled);
	}
	settle_send(&settled, settled.len);
	if (copy_dir == NULL) {
		if (write_all(STDOUT_FILENO, rows->out[0].p, rows->out[0].len) < 0)
			die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	} else
		for (k = 0; k < NTABLES; k++)
			if (rows->out[k].len && fwrite(rows->out[k].p, 1, rows->out[k].len,
			    copy_fp[k]) != rows->out[k].len)
				die(EXIT_TEMPFAIL, "--copy-out %s: %s", copy_dir, strerror(errno));
	tally(b, &t);
	batch_done(b, &t, now_mono() - t0, "📝 Batch written (no database)", -1, 1);
}

int
load_offline(const char *copy_out, size_t max_line)
{
	struct batch *b;
	enum reader_status st;
	int status = EXIT_OK;

	if ((copy_dir = copy_out) != NULL)
		open_copy_files();
	reader_start(STDIN_FILENO, max_line, copy_out ? SINK_COPY : SINK_JSON, 2, SIZE_MAX, true);
	while (!stop_signal && (st = reader_next(-1, &b)) != RD_END) {
		if (st == RD_ERROR)
			die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
		if (st != RD_BATCH)
			continue;
		if (b->cut_short) {
			log_msg(LOG_ERROR, "❌ Batch at line %llu cut short by the end of input "
			    "(%zu of %lld lines); not committed", b->lineno, b->n, b->want);
			status = EXIT_TEMPFAIL;
			reader_release(b);
			break;
		}
		settle_intake(b, &settled);
		settle_send(&settled, settled.len);
		if (b->nrec > 0)
			write_rows(b);
		reader_release(b);
	}
	reader_stop();
	close_copy_files();
	buf_free(&settled);
	return status;
}
