/*
 * Settlement: settle lines from tblload, read from the ack FIFO, are
 * applied to the window of unsettled tags; acks go to the broker as the
 * window allows (docs/design-notes.md#settling-acks), rejects at once. In
 * capture mode, what is written to the file is acked once it is fsync'ed.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "drain.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define MAX_SINGLES	4096

static void
count_ack(struct drain *d, int type)
{
	d->nacked++;
	if (type < NTYPES)
		d->cons[type].acked++;
}

void
send_acks(struct drain *d)
{
	static uint64_t singles[MAX_SINGLES];
	uint64_t multi;
	size_t n, i;

	do {
		win_take_acks(&d->win, &multi, singles, MAX_SINGLES, &n);
		if (multi && amqp_basic_ack(d->conn, CH_CONSUME, multi, 1) != AMQP_STATUS_OK)
			drain_lost(d, "basic.ack: %s", "connection lost");
		for (i = 0; i < n; i++)
			if (amqp_basic_ack(d->conn, CH_CONSUME, singles[i], 0) != AMQP_STATUS_OK)
				drain_lost(d, "basic.ack: %s", "connection lost");
	} while (n == MAX_SINGLES);
}

static void
apply_settle(struct drain *d, const struct line *l)
{
	struct settle s;
	const char *err;
	struct buf reason = { 0 };
	struct logrec *r;
	int t;

	if (settle_scan(l->p, l->len, &s, &err) < 0) {
		log_msg(LOG_WARNING, "⚠️ Ignoring a bad settle line: %s", err);
		return;
	}
	if (!jstr_eq(s.conn, d->conn_id)) {
		/* From an earlier connection: that broker already took it back. */
		log_msg(LOG_DEBUG, "Settle line of another connection ignored (tag %llu)", s.tag);
		return;
	}
	if (!s.reject) {
		if ((t = win_ack(&d->win, s.tag)) < 0)
			log_msg(LOG_WARNING, "⚠️ Ack for unknown or settled tag %llu ignored", s.tag);
		else
			count_ack(d, t);
		return;
	}
	if ((t = win_reject(&d->win, s.tag)) < 0) {
		log_msg(LOG_WARNING, "⚠️ Reject for unknown or settled tag %llu ignored", s.tag);
		return;
	}
	if (t < NTYPES)
		d->cons[t].rejected++;
	if (amqp_basic_reject(d->conn, CH_CONSUME, s.tag, 0) != AMQP_STATUS_OK)
		drain_lost(d, "basic.reject: %s", "connection lost");
	d->nrejected++;
	jstr_decode(&reason, s.reason);
	r = log_begin(LOG_WARNING, "☠️ Message rejected to the dead-letter queue");
	log_int(r, "tag", (long long)s.tag);
	log_strn(r, "reason", reason.p ? reason.p : "", reason.len);
	log_end(r);
	buf_free(&reason);
}

/* Apply the settle lines that can be read now; at the end of the FIFO,
 * the last of them too (fifo.eof is then set). */
void
read_fifo(struct drain *d)
{
	struct line l;

	for (;;) {
		while (lr_next(&d->fifo, &l) == 1)
			apply_settle(d, &l);
		if (d->fifo.eof)
			return;
		if (lr_fill(&d->fifo) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			drain_lost(d, "--acks: %s", strerror(errno));
		}
	}
}

/* Capture mode: once what was written is on disk, ack it. */
void
sync_capture(struct drain *d, bool force)
{
	uint64_t t;
	int type;

	if (d->captured_tag == 0 || d->out.len > d->out_off)
		return;
	if (!force && now_mono() - d->last_sync < 0.2)
		return;
	if (fsync(STDOUT_FILENO) < 0)
		die(EXIT_TEMPFAIL, "stdout: fsync: %s (nothing acked)", strerror(errno));
	for (t = d->win.base; t <= d->captured_tag; t++)
		if ((type = win_ack(&d->win, t)) >= 0)
			count_ack(d, type);
	d->captured_tag = 0;
	d->last_sync = now_mono();
	send_acks(d);
}
