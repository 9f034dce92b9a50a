/*
 * From frames to envelopes: a delivery is assembled from its method,
 * header and body frames, and written to the stdout buffer as one
 * envelope line (docs/protocol.md#from-amqp-drain); a file_complete starts
 * its consumer's cancel timer.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "drain.h"
#include "json.h"
#include "log.h"
#include "util.h"

/*
 * Copy a body into the envelope as it is, turning raw CR and LF outside
 * strings into spaces. A body that cannot be valid JSON on one line (does
 * not start with '{', a raw control byte in a string, an unterminated
 * string) goes into "raw" instead, so the line stays parseable. Returns
 * true when the body went in as "body".
 */
static bool
put_body(struct buf *b, const char *body, size_t n)
{
	const char *p = body, *end = body + n, *q;
	size_t start = b->len;
	struct jstr s;
	char c;

	q = json_skip_ws(p, end);
	if (q == end || *q != '{')
		goto raw;
	json_key(b, "body");
	buf_reserve(b, n);
	while (p < end) {
		if ((c = *p) == '"') {
			q = json_str_end(p + 1, end, &s);
			if (q == end || *q != '"')
				goto undo;
			buf_add(b, p, (size_t)(q + 1 - p));
			p = q + 1;
			continue;
		}
		if (c == '\r' || c == '\n')
			c = ' ';
		else if ((unsigned char)c < 0x20 && c != '\t')
			goto undo;
		b->p[b->len++] = c;
		p++;
	}
	b->p[b->len] = '\0';
	return true;
undo:
	b->len = start;
raw:
	json_key(b, "raw");
	json_put_str_lossy(b, body, n);
	return false;
}

/*
 * Is this body a control message? It is when its top-level "type" (the
 * last one, if repeated) is a string that decodes to exactly file_complete,
 * as json-c would decode it: "file_\u0063omplete" is one, "file_complete
 * \u0000x" is not. Only the top level is read, but all of it; nested
 * values are skipped, not checked (docs/protocol.md). A body with neither
 * the name nor a \u00 escape in it cannot name it and is not read at all.
 */
static bool
is_control(const char *p, size_t n)
{
	const char *end = p + n;
	struct jval v, type = { NULL, 0 };
	struct jstr key, s;
	struct jiter it;
	int rc;

	if (memmem(p, n, "file_complete", 13) == NULL && memmem(p, n, "\\u00", 4) == NULL)
		return false;
	p = json_skip_ws(p, end);
	if (jiter_object(&it, (struct jval){ p, (size_t)(end - p) }) < 0)
		return false;
	while ((rc = jiter_member(&it, &key, &v)) == 1)
		if (jstr_eq(key, "type"))
			type = v;
	return rc == 0 && json_skip_ws(it.p, end) == end && json_string(type, &s) &&
	    jstr_eq(s, "file_complete");
}

static int
type_of_consumer(struct drain *d, const amqp_bytes_t *ctag)
{
	int t;

	for (t = 0; t < NTYPES; t++)
		if (d->cons[t].tag[0] && strlen(d->cons[t].tag) == ctag->len &&
		    memcmp(d->cons[t].tag, ctag->bytes, ctag->len) == 0)
			return t;
	return -1;
}

/* A whole delivery has arrived: write its envelope, and start a cancel
 * timer for file_complete. */
static void
deliver(struct drain *d)
{
	const char *body = d->cur.body.p ? d->cur.body.p : "";
	int t = data_type_index(d->cur.rk, strlen(d->cur.rk));
	bool control;
	struct logrec *r;

	if (win_add(&d->win, d->cur.tag, t >= 0 ? t : NTYPES) < 0)
		drain_lost(d, "delivery tag %s out of sequence", "");
	d->ndeliveries++;
	if (d->cur.redelivered)
		d->nredelivered++;
	d->last_delivery = now_mono();
	if (t >= 0) {
		d->cons[t].count++;
		d->cons[t].last_time = now_wall();
	}
	/* The header: the routing key is the type, written escaped whatever it is. */
	json_open(&d->out, '{');
	json_key(&d->out, "type");
	json_put_str(&d->out, d->cur.rk, strlen(d->cur.rk));
	/* A control message is settled by tblload too: only after the records
	 * ahead of it are committed may the broker forget it, or a pipeline
	 * that died in between would never see that file complete again. */
	if (d->mode == M_PIPE) {
		json_key(&d->out, "conn");
		json_put_str(&d->out, d->conn_id, strlen(d->conn_id));
		json_key(&d->out, "tag");
		json_put_uint(&d->out, d->cur.tag);
	}
	control = put_body(&d->out, body, d->cur.body.len) && is_control(body, d->cur.body.len);
	json_close(&d->out, '}');
	buf_addc(&d->out, '\n');

	if (d->mode == M_CAPTURE)
		d->captured_tag = d->cur.tag;
	if (control && t >= 0) {
		d->ncontrols++;
		d->cons[t].complete = true;
		if (d->cancel_delay > 0 && d->cons[t].active)
			d->cons[t].cancel_at = now_mono() + d->cancel_delay;
		r = log_begin(LOG_INFO, "🏁 File complete");
		log_str(r, "type", data_types[t]);
		log_num(r, "cancel_in_s", d->cancel_delay);
		log_end(r);
	}
	d->cur.active = false;
	buf_reset(&d->cur.body);
}

void
cancel_consumer(struct drain *d, int t)
{
	amqp_basic_cancel_t m;

	if (!d->cons[t].active || d->cons[t].cancel_sent)
		return;
	memset(&m, 0, sizeof(m));
	m.consumer_tag = amqp_cstring_bytes(d->cons[t].tag);
	m.nowait = 0;
	if (amqp_send_method(d->conn, CH_CONSUME, AMQP_BASIC_CANCEL_METHOD, &m) != AMQP_STATUS_OK)
		drain_lost(d, "basic.cancel: %s", "connection lost");
	d->cons[t].cancel_sent = true;
	log_msg(LOG_INFO, "🔌 Cancelling the %s consumer", data_types[t]);
}

static void
handle_method(struct drain *d, const amqp_frame_t *f)
{
	amqp_basic_deliver_t *del;
	amqp_channel_close_t *cc;
	amqp_connection_close_t *xc;
	amqp_basic_cancel_ok_t *ok;
	amqp_basic_cancel_t *bc;
	int t;

	switch (f->payload.method.id) {
	case AMQP_BASIC_DELIVER_METHOD:
		del = f->payload.method.decoded;
		d->cur.active = true;
		d->cur.tag = del->delivery_tag;
		d->cur.redelivered = del->redelivered;
		d->cur.have_size = false;
		snprintf(d->cur.rk, sizeof(d->cur.rk), "%.*s", (int)del->routing_key.len,
		    (char *)del->routing_key.bytes);
		buf_reset(&d->cur.body);
		break;
	case AMQP_BASIC_CANCEL_OK_METHOD:
		ok = f->payload.method.decoded;
		if ((t = type_of_consumer(d, &ok->consumer_tag)) >= 0) {
			d->cons[t].active = false;
			log_msg(LOG_INFO, "🔌 The %s consumer is cancelled", data_types[t]);
		}
		break;
	case AMQP_BASIC_CANCEL_METHOD:
		/* The broker cancelled a consumer (queue deleted, node down). */
		bc = f->payload.method.decoded;
		t = type_of_consumer(d, &bc->consumer_tag);
		drain_lost(d, "the broker cancelled the %s consumer", t >= 0 ? data_types[t] : "?");
	case AMQP_CHANNEL_CLOSE_METHOD:
		cc = f->payload.method.decoded;
		log_msg(LOG_ERROR, "❌ Channel closed by the broker: %u %.*s", cc->reply_code,
		    (int)cc->reply_text.len, (char *)cc->reply_text.bytes);
		drain_lost(d, "channel closed by the broker%s", "");
	case AMQP_CONNECTION_CLOSE_METHOD:
		xc = f->payload.method.decoded;
		log_msg(LOG_ERROR, "❌ Connection closed by the broker: %u %.*s", xc->reply_code,
		    (int)xc->reply_text.len, (char *)xc->reply_text.bytes);
		drain_lost(d, "connection closed by the broker%s", "");
	case AMQP_CONNECTION_BLOCKED_METHOD:
		log_msg(LOG_WARNING, "⚠️ The broker blocked the connection (resource alarm)");
		break;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		log_msg(LOG_INFO, "The broker unblocked the connection");
		break;
	default:
		log_msg(LOG_DEBUG, "Ignoring method 0x%08x", f->payload.method.id);
	}
}

static void
handle_frame(struct drain *d, const amqp_frame_t *f)
{
	switch (f->frame_type) {
	case AMQP_FRAME_METHOD:
		handle_method(d, f);
		break;
	case AMQP_FRAME_HEADER:
		if (!d->cur.active)
			break;
		d->cur.size = f->payload.properties.body_size;
		d->cur.have_size = true;
		if (d->cur.size == 0)
			deliver(d);
		break;
	case AMQP_FRAME_BODY:
		if (!d->cur.active || !d->cur.have_size)
			break;
		buf_add(&d->cur.body, f->payload.body_fragment.bytes, f->payload.body_fragment.len);
		if (d->cur.body.len >= d->cur.size)
			deliver(d);
		break;
	}
}

/* Read every frame that is available without blocking (and keep the
 * heartbeats going: rabbitmq-c sends them from inside this call). */
void
pump_broker(struct drain *d)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;
	int rc;

	for (;;) {
		rc = amqp_simple_wait_frame_noblock(d->conn, &f, &zero);
		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK)
			drain_lost(d, "broker connection lost: %s", amqp_error_string2(rc));
		handle_frame(d, &f);
	}
	amqp_maybe_release_buffers(d->conn);
}

void
write_out(struct drain *d)
{
	ssize_t n;

	while (d->out_off < d->out.len) {
		n = write(STDOUT_FILENO, d->out.p + d->out_off, d->out.len - d->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			drain_lost(d, "stdout: %s (the pipeline behind amqp-drain stopped)", strerror(errno));
		}
		d->out_off += (size_t)n;
	}
	if (d->out_off == d->out.len) {
		buf_reset(&d->out);
		d->out_off = 0;
	} else if (d->out_off > (1u << 20) && d->out_off > d->out.len / 2) {
		buf_consume(&d->out, d->out_off);
		d->out_off = 0;
	}
}
