/*
 * amqp-drain: consume the four Discogs queues and write one envelope per
 * delivery to stdout, without parsing bodies. Deliveries are settled when
 * tblload says so through the ack FIFO (--acks), or, when stdout is a
 * regular file, once the file is fsync'ed. One event loop multiplexes the
 * broker socket, stdout and the FIFO, so a full pipe never stops the
 * heartbeats or the reading of settle lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "amq.h"
#include "buf.h"
#include "cli.h"
#include "canon.h"
#include "envelope.h"
#include "lineio.h"
#include "log.h"
#include "num.h"
#include "state.h"
#include "util.h"
#include "window.h"

#define CH_CONSUME	1
#define CH_CHECK	2
#define MAX_SINGLES	4096
#define EMPTY_CHECK	0.25	/* --until-empty: seconds between queue checks when idle */

enum mode { M_PIPE, M_CAPTURE };

struct consumer {
	char		 queue[128];
	char		 tag[128];	/* consumer tag from the broker */
	bool		 active;	/* consuming (no cancel-ok yet) */
	bool		 cancel_sent;
	bool		 complete;	/* file_complete seen */
	double		 cancel_at;	/* 0: no cancel scheduled */
	unsigned long long count;
	unsigned long long acked, rejected;	/* settled by the pipeline */
	double		 last_time;
};

static struct {
	const char	*acks;
	bool		 until_empty, check;
	long long	 prefetch;
	double		 cancel_delay, drain_timeout;
	unsigned	 types;		/* bit per type index */
	long long	 supervisor;	/* --supervisor: the parent's pid, or 0 */
} opt = { NULL, false, false, 0, 300, 60, 0xf, 0 };

static struct amq_url url;
static amqp_connection_state_t conn;
static char conn_id[17];
static struct consumer cons[NTYPES];
static struct window win;
static enum mode mode;
static struct buf out;		/* envelopes not yet written to stdout */
static size_t out_off;
static bool out_closed;
static int fifo_fd = -1;
static struct linereader fifo;	/* capture mode: unused, never at eof */
static bool stopping;		/* cancelling consumers, then draining */
static double drain_deadline;
static uint64_t captured_tag;	/* capture mode: last tag written, not yet synced */
static double last_sync, last_delivery, next_check;
static unsigned long long ndeliveries, nrejected, nacked, ncontrols, nredelivered;
static struct statefile sf;

/* The delivery being assembled from its frames. */
static struct {
	bool		 active;
	uint64_t	 tag;
	char		 rk[128];
	uint64_t	 size;
	bool		 have_size;
	bool		 redelivered;
	struct buf	 body;
} cur;

static const char *usage_text =
    "usage: amqp-drain [--acks fifo] [--until-empty] [--prefetch n] [--types list]\n"
    "                  [--cancel-delay s] [--drain-timeout s] [--supervisor pid]\n"
    "       amqp-drain --check | --check-config\n"
    "      --acks fifo         settle deliveries as tblload reports them through fifo\n"
    "                          (without it, stdout must be a regular file: deliveries\n"
    "                          are acked once it is fsync'ed)\n"
    "      --until-empty       exit once the queues are empty and all is settled\n"
    "      --check             print the queue depths as JSON; exit 0 if messages wait,\n"
    "                          1 if none\n"
    "      --prefetch n        unacked deliveries per queue (default: twice\n"
    "                          POSTGRES_BATCH_SIZE, at least 200, at most 2000)\n"
    "      --types list        consume only these types (comma-separated)\n"
    "      --cancel-delay s    cancel a consumer this long after its file_complete\n"
    "                          (default CONSUMER_CANCEL_DELAY or 300; 0 never)\n"
    "      --drain-timeout s   on SIGTERM or idle exit, wait this long for settles\n"
    "                          (default 60)\n"
    "      --supervisor pid    stop as on SIGTERM when pid, the parent, ends\n"
    "      --check-config      check the options and the environment, then exit\n"
    "  -h, --help              show this help\n"
    "  -V, --version           show the version\n"
    "The broker is AMQP_CONNECTION (amqp://user:password@host:port/vhost).\n";

static void write_state(double, const char *);

static noreturn void
lost(const char *fmt, const char *detail)
{
	write_state(0, "lost");
	die(EXIT_TEMPFAIL, fmt, detail);
}

/* ---- output ---------------------------------------------------------- */

/*
 * Copy a body into the envelope as it is, turning raw CR and LF outside
 * strings into spaces. A body that cannot be valid JSON on one line (does
 * not start with '{', control bytes in strings, an unterminated string)
 * goes into "raw" instead, so the line stays parseable.
 */
static void
put_body(struct buf *b, const char *p, size_t n)
{
	size_t i, start = b->len;
	bool in_str = false;
	unsigned char c;

	for (i = 0; i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'); i++)
		;
	if (i == n || p[i] != '{')
		goto raw;
	buf_add(b, "\"body\":", 7);
	buf_reserve(b, n);
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (in_str) {
			if (c < 0x20)
				goto undo;
			if (c == '\\') {
				b->p[b->len++] = (char)c;
				if (++i == n)
					goto undo;
				c = (unsigned char)p[i];
				if (c < 0x20)
					goto undo;
			} else if (c == '"')
				in_str = false;
		} else if (c == '"')
			in_str = true;
		else if (c == '\r' || c == '\n')
			c = ' ';
		else if (c < 0x20 && c != '\t')
			goto undo;
		b->p[b->len++] = (char)c;
	}
	if (in_str)
		goto undo;
	b->p[b->len] = '\0';
	return;
undo:
	b->len = start;
raw:
	buf_add(b, "\"raw\":", 6);
	buf_json_str_lossy(b, p, n);
}

/* Is this body a control message? Only bodies naming one are parsed. */
static bool
is_control(const char *p, size_t n, char *what, size_t whatsz)
{
	struct json_object *o, *t;
	const char *err;
	bool yes = false;

	if (memmem(p, n, "\"file_complete\"", 15) == NULL)
		return false;
	if ((o = json_parse_strict(p, n, &err)) == NULL)
		return false;
	if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "type", &t) &&
	    json_object_is_type(t, json_type_string) &&
	    json_object_get_string_len(t) == 13 &&	/* no "file_complete\u0000x" */
	    memcmp(json_object_get_string(t), "file_complete", 13) == 0) {
		snprintf(what, whatsz, "%s", json_object_get_string(t));
		yes = true;
	}
	json_object_put(o);
	return yes;
}

static void
write_out(void)
{
	ssize_t n;

	while (out_off < out.len) {
		n = write(STDOUT_FILENO, out.p + out_off, out.len - out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			lost("stdout: %s (the pipeline behind amqp-drain stopped)", strerror(errno));
		}
		out_off += (size_t)n;
	}
	if (out_off == out.len) {
		buf_reset(&out);
		out_off = 0;
	} else if (out_off > (1u << 20) && out_off > out.len / 2) {
		buf_consume(&out, out_off);
		out_off = 0;
	}
}

/* ---- settling ---------------------------------------------------------- */

static void
send_acks(void)
{
	static uint64_t singles[MAX_SINGLES];
	uint64_t multi;
	size_t n, i;

	do {
		win_take_acks(&win, &multi, singles, MAX_SINGLES, &n);
		if (multi && amqp_basic_ack(conn, CH_CONSUME, multi, 1) != AMQP_STATUS_OK)
			lost("basic.ack: %s", "connection lost");
		for (i = 0; i < n; i++)
			if (amqp_basic_ack(conn, CH_CONSUME, singles[i], 0) != AMQP_STATUS_OK)
				lost("basic.ack: %s", "connection lost");
	} while (n == MAX_SINGLES);
}

static void
apply_settle(const struct line *l)
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
	if (!slice_eq(s.conn, conn_id)) {
		/* From an earlier connection: that broker already took it back. */
		log_msg(LOG_DEBUG, "Settle line of another connection ignored (tag %llu)", s.tag);
		return;
	}
	if (!s.reject) {
		if ((t = win_ack(&win, s.tag)) < 0)
			log_msg(LOG_WARNING, "⚠️ Ack for unknown or settled tag %llu ignored", s.tag);
		else {
			nacked++;
			if (t < NTYPES)
				cons[t].acked++;
		}
		return;
	}
	if ((t = win_reject(&win, s.tag)) < 0) {
		log_msg(LOG_WARNING, "⚠️ Reject for unknown or settled tag %llu ignored", s.tag);
		return;
	}
	if (t < NTYPES)
		cons[t].rejected++;
	if (amqp_basic_reject(conn, CH_CONSUME, s.tag, 0) != AMQP_STATUS_OK)
		lost("basic.reject: %s", "connection lost");
	nrejected++;
	slice_decode(&reason, s.reason);
	r = log_begin(LOG_WARNING, "☠️ Message rejected to the dead-letter queue");
	log_int(r, "tag", (long long)s.tag);
	log_strn(r, "reason", reason.p ? reason.p : "", reason.len);
	log_end(r);
	buf_free(&reason);
}

/* Apply the settle lines that can be read now; at the end of the FIFO,
 * the last of them too (fifo.eof is then set). */
static void
read_fifo(void)
{
	struct line l;

	for (;;) {
		while (lr_next(&fifo, &l) == 1)
			apply_settle(&l);
		if (fifo.eof)
			return;
		if (lr_fill(&fifo) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			lost("--acks: %s", strerror(errno));
		}
	}
}

/* Capture mode: once what was written is on disk, ack it. */
static void
sync_capture(bool force)
{
	uint64_t t;
	int type;

	if (captured_tag == 0 || out.len > out_off)
		return;
	if (!force && now_mono() - last_sync < 0.2)
		return;
	if (fsync(STDOUT_FILENO) < 0)
		die(EXIT_TEMPFAIL, "stdout: fsync: %s (nothing acked)", strerror(errno));
	for (t = win.base; t <= captured_tag; t++)
		if ((type = win_ack(&win, t)) >= 0) {
			nacked++;
			if (type < NTYPES)
				cons[type].acked++;
		}
	captured_tag = 0;
	last_sync = now_mono();
	send_acks();
}

/* ---- deliveries ------------------------------------------------------ */

static int
type_of_consumer(const amqp_bytes_t *ctag)
{
	int t;

	for (t = 0; t < NTYPES; t++)
		if (cons[t].tag[0] && strlen(cons[t].tag) == ctag->len &&
		    memcmp(cons[t].tag, ctag->bytes, ctag->len) == 0)
			return t;
	return -1;
}

/* A whole delivery has arrived: write its envelope, and start a cancel
 * timer for file_complete. */
static void
deliver(void)
{
	const char *body = cur.body.p ? cur.body.p : "";
	char what[32];
	int t = data_type_index(cur.rk, strlen(cur.rk));
	bool control;
	struct logrec *r;

	if (win_add(&win, cur.tag, t >= 0 ? t : NTYPES) < 0)
		lost("delivery tag %s out of sequence", "");
	ndeliveries++;
	if (cur.redelivered)
		nredelivered++;
	last_delivery = now_mono();
	control = is_control(body, cur.body.len, what, sizeof(what));
	if (t >= 0) {
		cons[t].count++;
		cons[t].last_time = now_wall();
	}
	/* The header: the routing key is the type, written escaped whatever it is. */
	buf_add(&out, "{\"type\":\"", 9);
	buf_json_escape(&out, cur.rk, strlen(cur.rk));
	buf_add(&out, "\",", 2);
	/* A control message is settled by tblload too: only after the records
	 * ahead of it are committed may the broker forget it, or a pipeline
	 * that died in between would never see that file complete again. */
	if (mode == M_PIPE)
		buf_printf(&out, "\"conn\":\"%s\",\"tag\":%llu,", conn_id,
		    (unsigned long long)cur.tag);
	put_body(&out, body, cur.body.len);
	buf_add(&out, "}\n", 2);

	if (mode == M_CAPTURE)
		captured_tag = cur.tag;
	if (control && t >= 0) {
		ncontrols++;
		cons[t].complete = true;
		if (opt.cancel_delay > 0 && cons[t].active)
			cons[t].cancel_at = now_mono() + opt.cancel_delay;
		r = log_begin(LOG_INFO, "🏁 File complete");
		log_str(r, "type", data_types[t]);
		log_num(r, "cancel_in_s", opt.cancel_delay);
		log_end(r);
	}
	cur.active = false;
	buf_reset(&cur.body);
}

static void
cancel_consumer(int t)
{
	amqp_basic_cancel_t m;

	if (!cons[t].active || cons[t].cancel_sent)
		return;
	memset(&m, 0, sizeof(m));
	m.consumer_tag = amqp_cstring_bytes(cons[t].tag);
	m.nowait = 0;
	if (amqp_send_method(conn, CH_CONSUME, AMQP_BASIC_CANCEL_METHOD, &m) != AMQP_STATUS_OK)
		lost("basic.cancel: %s", "connection lost");
	cons[t].cancel_sent = true;
	log_msg(LOG_INFO, "🔌 Cancelling the %s consumer", data_types[t]);
}

static void
handle_method(const amqp_frame_t *f)
{
	amqp_basic_deliver_t *d;
	amqp_channel_close_t *cc;
	amqp_connection_close_t *xc;
	amqp_basic_cancel_ok_t *ok;
	amqp_basic_cancel_t *bc;
	int t;

	switch (f->payload.method.id) {
	case AMQP_BASIC_DELIVER_METHOD:
		d = f->payload.method.decoded;
		cur.active = true;
		cur.tag = d->delivery_tag;
		cur.redelivered = d->redelivered;
		cur.have_size = false;
		snprintf(cur.rk, sizeof(cur.rk), "%.*s", (int)d->routing_key.len,
		    (char *)d->routing_key.bytes);
		buf_reset(&cur.body);
		break;
	case AMQP_BASIC_CANCEL_OK_METHOD:
		ok = f->payload.method.decoded;
		if ((t = type_of_consumer(&ok->consumer_tag)) >= 0) {
			cons[t].active = false;
			log_msg(LOG_INFO, "🔌 The %s consumer is cancelled", data_types[t]);
		}
		break;
	case AMQP_BASIC_CANCEL_METHOD:
		/* The broker cancelled a consumer (queue deleted, node down). */
		bc = f->payload.method.decoded;
		t = type_of_consumer(&bc->consumer_tag);
		lost("the broker cancelled the %s consumer", t >= 0 ? data_types[t] : "?");
	case AMQP_CHANNEL_CLOSE_METHOD:
		cc = f->payload.method.decoded;
		log_msg(LOG_ERROR, "❌ Channel closed by the broker: %u %.*s", cc->reply_code,
		    (int)cc->reply_text.len, (char *)cc->reply_text.bytes);
		lost("channel closed by the broker%s", "");
	case AMQP_CONNECTION_CLOSE_METHOD:
		xc = f->payload.method.decoded;
		log_msg(LOG_ERROR, "❌ Connection closed by the broker: %u %.*s", xc->reply_code,
		    (int)xc->reply_text.len, (char *)xc->reply_text.bytes);
		lost("connection closed by the broker%s", "");
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
handle_frame(const amqp_frame_t *f)
{
	switch (f->frame_type) {
	case AMQP_FRAME_METHOD:
		handle_method(f);
		break;
	case AMQP_FRAME_HEADER:
		if (!cur.active)
			break;
		cur.size = f->payload.properties.body_size;
		cur.have_size = true;
		if (cur.size == 0)
			deliver();
		break;
	case AMQP_FRAME_BODY:
		if (!cur.active || !cur.have_size)
			break;
		buf_add(&cur.body, f->payload.body_fragment.bytes, f->payload.body_fragment.len);
		if (cur.body.len >= cur.size)
			deliver();
		break;
	}
}

/* Read every frame that is available without blocking (and keep the
 * heartbeats going: rabbitmq-c sends them from inside this call). */
static void
pump_broker(void)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;
	int rc;

	for (;;) {
		rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK)
			lost("broker connection lost: %s", amqp_error_string2(rc));
		handle_frame(&f);
	}
	amqp_maybe_release_buffers(conn);
}

/* ---- setup --------------------------------------------------------------- */

static void
connect_broker(void)
{
	unsigned char rnd[8];
	int i;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		die(EXIT_SOFTWARE, "getrandom: %s", strerror(errno));
	for (i = 0; i < 8; i++)
		snprintf(conn_id + 2 * i, 3, "%02x", rnd[i]);
	conn = amq_connect_or_die(&url, "amqp-drain");
	{
		struct timeval rpc_timeout = { 30, 0 };
		amqp_set_rpc_timeout(conn, &rpc_timeout);
	}
}

static noreturn void
check_depths(void)
{
	char q[128], err[512];
	long n, total = 0;
	struct buf b = { 0 };
	int t;

	if (amq_channel_open(conn, CH_CHECK, err, sizeof(err)) < 0)
		die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
	buf_addc(&b, '{');
	for (t = 0; t < NTYPES; t++) {
		amq_queue_name(t, q, sizeof(q));
		if ((n = amq_queue_depth(conn, CH_CHECK, q, err, sizeof(err))) < 0) {
			log_msg(LOG_WARNING, "⚠️ Queue %s: %s", q, err);
			if (amq_channel_open(conn, CH_CHECK, err, sizeof(err)) < 0)
				die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
			buf_printf(&b, "\"%s\":null,", data_types[t]);
			continue;
		}
		total += n;
		buf_printf(&b, "\"%s\":%ld,", data_types[t], n);
	}
	buf_printf(&b, "\"total\":%ld}\n", total);
	if (write_all(STDOUT_FILENO, b.p, b.len) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	buf_free(&b);
	amq_close(conn);
	exit(total > 0 ? EXIT_OK : EXIT_DATA);
}

static void
start_consumers(void)
{
	amqp_basic_consume_ok_t *ok;
	char err[512];
	int t, rc;

	if ((rc = amq_declare_topology(conn, CH_CONSUME, err, sizeof(err))) != 0)
		die(rc, "RabbitMQ topology: %s", err);
	amqp_basic_qos(conn, CH_CONSUME, 0, (uint16_t)opt.prefetch, 0);
	if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
		die(EXIT_TEMPFAIL, "RabbitMQ: basic.qos failed");
	for (t = 0; t < NTYPES; t++) {
		amq_queue_name(t, cons[t].queue, sizeof(cons[t].queue));
		if (!(opt.types & (1u << t)))
			continue;
		ok = amqp_basic_consume(conn, CH_CONSUME, amqp_cstring_bytes(cons[t].queue),
		    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		if (ok == NULL) {
			amq_reply_error(amqp_get_rpc_reply(conn), "basic.consume", err, sizeof(err));
			die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
		}
		snprintf(cons[t].tag, sizeof(cons[t].tag), "%.*s", (int)ok->consumer_tag.len,
		    (char *)ok->consumer_tag.bytes);
		cons[t].active = true;
	}
	if (amq_channel_open(conn, CH_CHECK, err, sizeof(err)) < 0)
		die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
}

static void
open_output(void)
{
	struct stat st;
	int fl;

	if (fstat(STDOUT_FILENO, &st) < 0)
		die(EXIT_USAGE, "stdout: %s", strerror(errno));
	if (opt.acks == NULL) {
		if (!S_ISREG(st.st_mode))
			die(EXIT_USAGE, "without --acks, stdout must be a regular file "
			    "(deliveries are acked once it is fsync'ed)");
		mode = M_CAPTURE;
	} else {
		mode = M_PIPE;
		if (stat(opt.acks, &st) < 0) {
			if (errno != ENOENT || mkfifo(opt.acks, 0600) < 0)
				die(EXIT_USAGE, "--acks %s: %s", opt.acks, strerror(errno));
		} else if (!S_ISFIFO(st.st_mode))
			die(EXIT_USAGE, "--acks %s: not a FIFO", opt.acks);
		if ((fifo_fd = open(opt.acks, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
			die(EXIT_USAGE, "--acks %s: %s", opt.acks, strerror(errno));
		lr_init(&fifo, fifo_fd, 1 << 20);
	}
	if (fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		if ((fl = fcntl(STDOUT_FILENO, F_GETFL)) < 0 ||
		    fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK) < 0)
			die(EXIT_SOFTWARE, "stdout: fcntl: %s", strerror(errno));
}

static void
read_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "acks", required_argument, NULL, 'a' },
		{ "until-empty", no_argument, NULL, 'u' },
		{ "check", no_argument, NULL, 'c' },
		{ "prefetch", required_argument, NULL, 'p' },
		{ "types", required_argument, NULL, 't' },
		{ "cancel-delay", required_argument, NULL, 'D' },
		{ "drain-timeout", required_argument, NULL, 'T' },
		{ "supervisor", required_argument, NULL, 'S' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	long long batch;
	char *list, *tok, *save;
	bool check_config = false;
	int ch, t;

	batch = env_ll("POSTGRES_BATCH_SIZE", 100, 1, 1000000);
	opt.prefetch = batch * 2 < 200 ? 200 : batch * 2 > 2000 ? 2000 : batch * 2;
	opt.cancel_delay = (double)env_ll("CONSUMER_CANCEL_DELAY", 300, 0, 86400 * 365);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			opt.acks = optarg;
			break;
		case 'u':
			opt.until_empty = true;
			break;
		case 'c':
			opt.check = true;
			break;
		case 'p':
			opt.prefetch = opt_ll("--prefetch", optarg, 1, 65535);
			break;
		case 't':
			opt.types = 0;
			list = xstrdup(optarg);
			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if ((t = data_type_index(tok, strlen(tok))) < 0)
					die(EXIT_USAGE, "--types: unknown type '%s'", tok);
				opt.types |= 1u << t;
			}
			free(list);
			if (opt.types == 0)
				die(EXIT_USAGE, "--types: no type given");
			break;
		case 'D':
			opt.cancel_delay = opt_double("--cancel-delay", optarg, 0, 86400.0 * 365);
			break;
		case 'T':
			opt.drain_timeout = opt_double("--drain-timeout", optarg, 0, 86400);
			break;
		case 'S':
			opt.supervisor = opt_ll("--supervisor", optarg, 1, INT_MAX);
			break;
		case 'K':
			check_config = true;
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
	amq_url_from_env(&url);
	if (check_config)
		exit(EXIT_OK);
}

/* ---- the loop ------------------------------------------------------------ */

/* The state file read by tblhealth (docs/state.md). */
static void
write_state(double min_interval, const char *state)
{
	struct buf *b = state_begin(&sf, min_interval);
	const char *sep;
	int t;

	if (b == NULL)
		return;
	buf_printf(b, ",\"state\":\"%s\",\"connection\":\"%s\",\"mode\":\"%s\",\"prefetch\":%lld",
	    state, conn_id, mode == M_PIPE ? "pipeline" : "capture", opt.prefetch);
	buf_adds(b, ",\"active_consumers\":[");
	for (t = 0, sep = ""; t < NTYPES; t++)
		if (cons[t].active) {
			buf_printf(b, "%s\"%s\"", sep, data_types[t]);
			sep = ",";
		}
	buf_adds(b, "],\"completed_files\":[");
	for (t = 0, sep = ""; t < NTYPES; t++)
		if (cons[t].complete) {
			buf_printf(b, "%s\"%s\"", sep, data_types[t]);
			sep = ",";
		}
	buf_adds(b, "],\"message_counts\":{");
	for (t = 0; t < NTYPES; t++)
		buf_printf(b, "%s\"%s\":%llu", t ? "," : "", data_types[t], cons[t].count);
	buf_adds(b, "},\"last_message_time\":{");
	for (t = 0; t < NTYPES; t++)
		buf_printf(b, "%s\"%s\":%.6f", t ? "," : "", data_types[t], cons[t].last_time);
	buf_adds(b, "},\"acked_by_type\":{");
	for (t = 0; t < NTYPES; t++)
		buf_printf(b, "%s\"%s\":%llu", t ? "," : "", data_types[t], cons[t].acked);
	buf_adds(b, "},\"rejected_by_type\":{");
	for (t = 0; t < NTYPES; t++)
		buf_printf(b, "%s\"%s\":%llu", t ? "," : "", data_types[t], cons[t].rejected);
	buf_printf(b, "},\"deliveries\":%llu,\"acked\":%llu,\"rejected\":%llu,\"controls\":%llu,"
	    "\"redelivered\":%llu,\"unsettled\":%zu", ndeliveries, nacked, nrejected, ncontrols,
	    nredelivered, win.open);
	state_commit(&sf);
}

static bool
consumers_left(void)
{
	int t;

	for (t = 0; t < NTYPES; t++)
		if (cons[t].active)
			return true;
	return false;
}

/* From now on, wait at most --drain-timeout for the pipeline to settle. */
static void
begin_drain(double now, const char *msg)
{
	if (stopping)
		return;
	stopping = true;
	drain_deadline = now + opt.drain_timeout;
	log_msg(LOG_INFO, "%s", msg);
}

static void
stop_consuming(const char *why)
{
	char msg[128];
	int t;

	snprintf(msg, sizeof(msg), "🛑 %s: cancelling consumers, draining the pipeline", why);
	begin_drain(now_mono(), msg);
	for (t = 0; t < NTYPES; t++)
		cancel_consumer(t);
}

/*
 * The original's progress report: every 10 s for the first three, then
 * every 30 s, and nothing once every file is complete. A type is stalled
 * when its file is not complete and nothing came for two minutes.
 */
static void
report_progress(double now)
{
	static double next;
	static int nreports;
	static unsigned long long last_total;
	struct buf stalled = { 0 };
	struct logrec *r;
	bool all_complete = true;
	int t;

	if (next == 0)
		next = now + 10;
	if (now < next)
		return;
	for (t = 0; t < NTYPES; t++)
		if ((opt.types & (1u << t)) && !cons[t].complete)
			all_complete = false;
	if (all_complete)
		return;
	next = now + (++nreports < 3 ? 10 : 30);
	r = log_begin(LOG_INFO, "📊 Progress");
	log_int(r, "total", (long long)ndeliveries);
	for (t = 0; t < NTYPES; t++) {
		log_int(r, data_types[t], (long long)cons[t].count);
		if ((opt.types & (1u << t)) && !cons[t].complete && cons[t].last_time > 0 &&
		    now_wall() - cons[t].last_time > 120)
			buf_printf(&stalled, "%s%s", stalled.len ? "," : "", data_types[t]);
	}
	log_int(r, "since_last", (long long)(ndeliveries - last_total));
	log_int(r, "unsettled", (long long)win.open);
	if (stalled.len)
		log_str(r, "stalled", stalled.p);
	log_end(r);
	if (stalled.len)
		log_msg(LOG_WARNING, "⚠️ No messages for two minutes: %s", stalled.p);
	last_total = ndeliveries;
	buf_free(&stalled);
}

/* --until-empty: are all queues empty with nothing of ours unsettled? */
static bool
queues_empty(void)
{
	char err[512];
	long n;
	int t;

	for (t = 0; t < NTYPES; t++) {
		if (!(opt.types & (1u << t)))
			continue;
		if ((n = amq_queue_depth(conn, CH_CHECK, cons[t].queue, err, sizeof(err))) < 0)
			lost("queue depth: %s", err);
		if (n > 0)
			return false;
	}
	return true;
}

static noreturn void
finish(void)
{
	struct logrec *r;
	size_t unsettled;
	int status;

	send_acks();
	unsettled = win.open;
	r = log_begin(unsettled ? LOG_WARNING : LOG_INFO, unsettled ?
	    "⚠️ Stopping with unsettled deliveries (the broker will redeliver them)" :
	    "✅ Drained: every delivery settled");
	log_int(r, "deliveries", (long long)ndeliveries);
	log_int(r, "acked", (long long)nacked);
	log_int(r, "rejected", (long long)nrejected);
	log_int(r, "controls", (long long)ncontrols);
	log_int(r, "redelivered", (long long)nredelivered);
	log_int(r, "unsettled", (long long)unsettled);
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	write_state(0, "stopped");
	amq_close(conn);
	status = stop_signal || unsettled == 0 ? EXIT_OK : EXIT_TEMPFAIL;
	exit(status);
}

static int
poll_timeout_ms(double now)
{
	double hb = amqp_get_heartbeat(conn), wait = hb > 0 ? hb / 4 : 1.0;
	int t;

	if (wait > 1.0)
		wait = 1.0;
	for (t = 0; t < NTYPES; t++)
		if (cons[t].cancel_at > 0 && cons[t].cancel_at - now < wait)
			wait = cons[t].cancel_at - now;
	if (stopping && drain_deadline - now < wait)
		wait = drain_deadline - now;
	if (mode == M_CAPTURE && captured_tag && wait > 0.2)
		wait = 0.2;
	return wait < 0 ? 0 : (int)(wait * 1000) + 1;
}

static noreturn void
run(void)
{
	struct pollfd pfd[3];
	double now;
	int n, t, fifo_slot = -1;
	bool fifo_ready = false;

	next_check = now_mono() + EMPTY_CHECK;
	for (;;) {
		pump_broker();
		/* Read the FIFO only when poll says so: before tblload opens it,
		 * a read would see end-of-file. */
		if (fifo_ready && !fifo.eof)
			read_fifo();
		/* Written first: in capture mode what was written is then synced
		 * and acked in this turn, not the next. */
		if (!out_closed)
			write_out();
		if (mode == M_CAPTURE)
			sync_capture(false);
		send_acks();
		write_state(0.5, stopping ? "draining" : "consuming");

		now = now_mono();
		report_progress(now);
		if (stop_signal && !stopping)
			stop_consuming(stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
		for (t = 0; t < NTYPES; t++)
			if (cons[t].cancel_at > 0 && now >= cons[t].cancel_at) {
				cons[t].cancel_at = 0;
				cancel_consumer(t);
			}
		if (opt.until_empty && !stopping && now >= next_check) {
			next_check = now + EMPTY_CHECK;
			if (!cur.active && win_idle(&win) && now - last_delivery > EMPTY_CHECK &&
			    queues_empty())
				stop_consuming("Queues are empty");
		}
		if (!consumers_left()) {
			begin_drain(now, "💤 All consumers cancelled: draining the pipeline");
			if (!out_closed && out_off == out.len) {
				if (mode == M_CAPTURE)
					sync_capture(true);
				/* End of input for the pipeline: it flushes and settles. */
				if (close(STDOUT_FILENO) < 0 && mode == M_CAPTURE)
					die(EXIT_TEMPFAIL, "stdout: close: %s", strerror(errno));
				out_closed = true;
			}
			if (out_closed && (win_idle(&win) || fifo.eof || now >= drain_deadline))
				finish();
		} else if (stopping && now >= drain_deadline + 10)
			lost("the broker did not confirm the consumer cancels%s", "");
		if (fifo.eof && !out_closed)
			lost("tblload closed the ack FIFO%s (the pipeline stopped)", "");

		n = 0;
		pfd[n].fd = amqp_get_sockfd(conn);
		pfd[n++].events = POLLIN;
		if (!out_closed && out_off < out.len) {
			pfd[n].fd = STDOUT_FILENO;
			pfd[n++].events = POLLOUT;
		}
		fifo_slot = -1;
		if (fifo_fd >= 0 && !fifo.eof) {
			fifo_slot = n;
			pfd[n].fd = fifo_fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, poll_timeout_ms(now)) < 0) {
			if (errno != EINTR)
				die(EXIT_SOFTWARE, "poll: %s", strerror(errno));
			pfd[0].revents = 0;
			if (fifo_slot >= 0)
				pfd[fifo_slot].revents = 0;
		}
		fifo_ready = fifo_slot >= 0 && pfd[fifo_slot].revents != 0;
	}
}

int
main(int argc, char *argv[])
{
	struct logrec *r;
	int t;

	log_init("amqp-drain");
	read_options(argc, argv);
	ignore_sigpipe();
	catch_stop_signals();
	if (opt.supervisor > 0)
		stop_with_parent(opt.supervisor);
	/* A state directory that is not private is refused before connecting. */
	if (!opt.check)
		state_open(&sf, "amqp-drain");
	connect_broker();
	if (opt.check)
		check_depths();
	open_output();
	win_init(&win);
	start_consumers();
	last_delivery = now_mono();
	r = log_begin(LOG_INFO, "🐰 Consuming");
	log_str(r, "broker", url.redacted);
	log_str(r, "connection", conn_id);
	log_str(r, "mode", mode == M_PIPE ? "pipeline" : "capture");
	log_int(r, "prefetch", opt.prefetch);
	for (t = 0; t < NTYPES; t++)
		if (cons[t].active)
			log_str(r, data_types[t], cons[t].queue);
	log_end(r);
	run();
}
