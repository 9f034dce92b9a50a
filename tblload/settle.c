#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "counts.h"
#include "envelope.h"
#include "json.h"
#include "log.h"
#include "settle.h"
#include "sync.h"
#include "util.h"

static const char *acks_path, *rejects_path;
static int ack_fd = -1;
static bool ack_lost;
static FILE *rejects_fp;
static pthread_mutex_t rejects_mu = PTHREAD_MUTEX_INITIALIZER;
static struct buf rejected;	/* settle lines of lines refused on intake */

static void
open_acks(void)
{
	struct stat st;
	int fl;

	if (stat(acks_path, &st) == 0 && S_ISFIFO(st.st_mode)) {
		/* The reader (amqp-drain) opened it before it consumed anything. */
		if ((ack_fd = open(acks_path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
			log_msg(LOG_WARNING, "⚠️ Ack FIFO %s has no reader (%s): deliveries "
			    "will be redelivered", acks_path, strerror(errno));
			ack_lost = true;
			return;
		}
		if ((fl = fcntl(ack_fd, F_GETFL)) < 0 || fcntl(ack_fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
			die(EXIT_SOFTWARE, "fcntl %s: %s", acks_path, strerror(errno));
		return;
	}
	if ((ack_fd = open(acks_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0)
		die(EXIT_CONFIG, "--acks %s: %s", acks_path, strerror(errno));
}

void
settle_open(const char *acks, const char *rejects)
{
	struct stat st;

	acks_path = acks;
	rejects_path = rejects;
	if (rejects != NULL && (rejects_fp = fopen(rejects, "a")) == NULL)
		die(EXIT_CONFIG, "--rejects %s: %s", rejects, strerror(errno));
	/* A file that cannot be written is a configuration error to report before
	 * anything is committed; a FIFO is opened at the first settle line, when
	 * its reader (amqp-drain) is sure to be there. */
	if (acks != NULL && !(stat(acks, &st) == 0 && S_ISFIFO(st.st_mode)))
		open_acks();
}

void
settle_send(struct buf *b, size_t len)
{
	if (len == 0 || acks_path == NULL || ack_lost) {
		buf_consume(b, len);
		return;
	}
	if (ack_fd < 0)
		open_acks();
	if (!ack_lost && write_all(ack_fd, b->p, len) < 0) {
		/* amqp-drain is gone: its deliveries will come again. */
		log_msg(LOG_WARNING, "⚠️ Ack channel %s closed (%s): remaining deliveries "
		    "will be redelivered", acks_path, strerror(errno));
		ack_lost = true;
	}
	buf_consume(b, len);
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
	log_jstr(lr, "type", r->e.type);
	if (r->e.has_id)
		log_int(lr, "id", r->e.id);
	if (r->e.has_tag)
		log_int(lr, "tag", (long long)r->e.tag);
	log_int(lr, "line", (long long)(b->lineno + r->pos + 1));
	log_str(lr, "reason", reason);
	log_end(lr);
	count_reject();
	if (rejects_fp == NULL)
		return;
	json_open(&line, '{');
	json_key(&line, "type");
	/* type and conn are JSON text as read: written as they came. */
	json_put_escaped(&line, r->e.type);
	if (r->e.has_id) {
		json_key(&line, "id");
		json_put_int(&line, r->e.id);
	}
	if (r->e.has_tag) {
		json_key(&line, "conn");
		json_put_escaped(&line, r->e.conn);
		json_key(&line, "tag");
		json_put_uint(&line, r->e.tag);
	}
	json_key(&line, "reason");
	json_put_str_lossy(&line, reason, strlen(reason));
	if (r->e.has_body && r->build_err != NULL) {
		/* Not JSON that can be read: as a string, so the line stays NDJSON. */
		json_key(&line, "raw");
		json_put_str_lossy(&line, r->e.body.p, r->e.body.n);
	} else if (r->e.has_body) {
		json_key(&line, "body");
		json_put_raw(&line, r->e.body);
	} else if (r->e.has_raw) {
		json_key(&line, "raw");
		json_put_escaped(&line, r->e.raw);
	} else if (r->kind == R_INVALID && r->e.type.p == NULL) {
		json_key(&line, "line");
		json_put_str_lossy(&line, text, r->len);
	}
	json_close(&line, '}');
	buf_addc(&line, '\n');
	sync_lock(&rejects_mu, "rejects");
	if (fwrite(line.p, 1, line.len, rejects_fp) != line.len || fflush(rejects_fp) == EOF)
		die(EXIT_TEMPFAIL, "--rejects %s: %s", rejects_path, strerror(errno));
	sync_unlock(&rejects_mu, "rejects");
	buf_free(&line);
}

bool
settle_intake(struct batch *b, struct buf *controls)
{
	static bool warned;
	struct logrec *lr;
	struct rec *r;
	size_t i;

	if (b->unbatched && !warned) {
		log_msg(LOG_WARNING, "⚠️ Input is not batched: one transaction per "
		    "line (pipe it through tblbatch)");
		warned = true;
	}
	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind == R_INVALID) {
			reject(b, r, r->reason, &rejected);
			count_invalid(r->e.type.esc ? -1 :
			    data_type_index(r->e.type.p, r->e.type.n));
		} else if (r->kind == R_CONTROL) {
			lr = log_begin(LOG_INFO, "📄 Control message");
			log_jstr(lr, "type", r->e.type);
			log_jstr(lr, "control", r->e.control);
			log_end(lr);
			settle_one(controls, r, false, NULL);
			count_control();
		}
	}
	settle_send(&rejected, rejected.len);
	return b->nrec > 0;
}

void
settle_close(void)
{
	if (rejects_fp != NULL && fclose(rejects_fp) == EOF)
		die(EXIT_TEMPFAIL, "--rejects %s: %s", rejects_path, strerror(errno));
	if (ack_fd >= 0 && close(ack_fd) < 0 && !ack_lost)
		die(EXIT_TEMPFAIL, "--acks %s: %s", acks_path, strerror(errno));
	buf_free(&rejected);
}
