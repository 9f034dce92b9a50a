/*
 * Settlement: settle lines from tblload, read from the ack FIFO, are
 * applied to the window of unsettled tags; acks go to the broker as the
 * window allows (docs/design-notes.md#settling-acks), rejects at once. In
 * capture mode, what is written to the file is acked once it is fsync'ed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "amq.h"
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
send_reject(struct drain *d, uint64_t tag, int t, const char *reason, size_t n)
{
	struct logrec *r;

	if (t < NTYPES)
		d->cons[t].rejected++;
	if (amqp_basic_reject(d->conn, CH_CONSUME, tag, 0) != AMQP_STATUS_OK)
		drain_lost(d, "basic.reject: %s", "connection lost");
	d->nrejected++;
	r = log_begin(LOG_WARNING, "☠️ Message rejected to the dead-letter queue");
	log_int(r, "tag", (long long)tag);
	log_strn(r, "reason", reason, n);
	log_end(r);
}

static void
dlq_lost(struct drain *d, int t, const char *err)
{
	struct logrec *r;

	if (d->dlq_down & (1u << t))
		return;
	d->dlq_down |= 1u << t;
	if (d->next_dlq_check < now_mono())
		d->next_dlq_check = now_mono() + DLQ_CHECK;
	r = log_begin(LOG_WARNING, "⚠️ Dead-letter queue unreachable: its poison waits unacked");
	log_str(r, "type", data_types[t]);
	log_str(r, "error", err);
	log_end(r);
}

/* May a message of type t be rejected now? Asked of the broker each time
 * (rejects are rare), since the queue's node may have gone since the last. */
static bool
dlq_reachable(struct drain *d, int t)
{
	char err[512];
	int rc;

	if (d->dlq_down & (1u << t))
		return false;
	if ((rc = amq_dlq_reachable(d->conn, CH_CHECK, t, err, sizeof(err))) < 0)
		drain_lost(d, "dead-letter queue check: %s", err);
	if (rc == 0)
		dlq_lost(d, t, err);
	return rc == 1;
}

static void
hold_reject(struct drain *d, uint64_t tag, int t, const char *reason, size_t n)
{
	struct logrec *r;
	struct held *h;

	if (win_hold(&d->win, tag) < 0)
		return;
	if (d->nheld == d->heldcap) {
		d->heldcap = d->heldcap ? d->heldcap * 2 : 16;
		d->held = xrealloc(d->held, d->heldcap * sizeof(*d->held));
	}
	h = &d->held[d->nheld];
	h->tag = tag;
	h->type = t;
	snprintf(h->reason, sizeof(h->reason), "%.*s",
	    (int)(n < REASON_MAX ? n : REASON_MAX - 1), reason);
	if (d->nheld++ == 0 && d->next_dlq_check > now_mono() + DLQ_CHECK)
		d->next_dlq_check = now_mono() + DLQ_CHECK;
	r = log_begin(LOG_WARNING, "⏸️ Reject held: the dead-letter queue is unreachable");
	log_int(r, "tag", (long long)tag);
	log_str(r, "type", data_types[t]);
	log_strn(r, "reason", reason, n);
	log_int(r, "held", (long long)d->nheld);
	log_end(r);
}

/* Every DLQ_CHECK seconds while a dead-letter queue is unreachable: is it
 * back? Then send the rejects held for it. */
void
check_dead_letters(struct drain *d, double now)
{
	char err[512];
	size_t i;
	int t, rc;

	if (d->dlq_down == 0 || now < d->next_dlq_check)
		return;
	/* Each check shows in the broker's log as a channel error (404). */
	d->next_dlq_check = now + (d->nheld > 0 ? DLQ_CHECK : 6 * DLQ_CHECK);
	for (t = 0; t < NTYPES; t++) {
		if (!(d->dlq_down & (1u << t)))
			continue;
		if ((rc = amq_dlq_reachable(d->conn, CH_CHECK, t, err, sizeof(err))) < 0)
			drain_lost(d, "dead-letter queue check: %s", err);
		if (rc == 0)
			continue;
		d->dlq_down &= ~(1u << t);
		log_msg(LOG_INFO, "✅ The %s dead-letter queue is reachable again", data_types[t]);
		for (i = 0; i < d->nheld; ) {
			if (d->held[i].type != t) {
				i++;
				continue;
			}
			(void)win_release(&d->win, d->held[i].tag);
			send_reject(d, d->held[i].tag, t, d->held[i].reason, strlen(d->held[i].reason));
			d->held[i] = d->held[--d->nheld];
		}
	}
}

static void
apply_settle(struct drain *d, const struct line *l)
{
	struct settle s;
	const char *err;
	struct buf reason = { 0 };
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
	if ((t = win_type(&d->win, s.tag)) < 0) {
		log_msg(LOG_WARNING, "⚠️ Reject for unknown or settled tag %llu ignored", s.tag);
		return;
	}
	jstr_decode(&reason, s.reason);
	if (t < NTYPES && !dlq_reachable(d, t))
		hold_reject(d, s.tag, t, reason.p ? reason.p : "", reason.len);
	else {
		(void)win_reject(&d->win, s.tag);
		send_reject(d, s.tag, t, reason.p ? reason.p : "", reason.len);
	}
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
