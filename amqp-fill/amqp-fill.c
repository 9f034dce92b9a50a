/*
 * amqp-fill: publish message bodies (NDJSON) to the Discogs exchange with
 * the routing key of their type, persistent and with publisher confirms,
 * as the extractor does. For replays of dump files through the broker, for
 * tests and for benchmarks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
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
#include "util.h"
#include "window.h"

static struct {
	const char	*type;
	bool		 pretty, crlf, declare;
	long long	 window;
} opt = { NULL, false, false, true, 2048 };

static amqp_connection_state_t conn;
static struct amq_brokers brokers;
static size_t node;		/* the broker of brokers we are connected to */
static struct window confirms;	/* a tag per publish, settled by its confirm */
static uint64_t published, acked, returned, nacked;
static unsigned long long invalid;

static const char *usage_text =
    "usage: amqp-fill [-t type] [--pretty] [--crlf] [--window n] [--no-declare] [file ...]\n"
    "  -t, --type type     lines are raw bodies of this type (else envelopes with a type)\n"
    "      --pretty        re-indent each body over many lines, as the Python extractor\n"
    "      --crlf          with --pretty, end its lines with CR LF\n"
    "      --window n      publishes awaiting a confirm before waiting (default 2048)\n"
    "      --no-declare    do not declare the exchange and queues\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n"
    "The broker is AMQP_CONNECTION (amqp://user:password@host:port/vhost), or the\n"
    "first that answers of several separated by commas (nodes of one cluster).\n";

/* Handle one frame from the broker: confirms and returns. Confirms may
 * come out of order (a single one for a later tag, then a multiple one for
 * earlier tags): each publish is settled once, by the first that covers it. */
static void
handle_frame(const amqp_frame_t *f)
{
	amqp_basic_ack_t *ack;
	amqp_basic_nack_t *nack;

	if (f->frame_type != AMQP_FRAME_METHOD)
		return;
	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD:
		ack = f->payload.method.decoded;
		acked += win_confirm(&confirms, ack->delivery_tag, ack->multiple);
		break;
	case AMQP_BASIC_NACK_METHOD:
		nack = f->payload.method.decoded;
		nacked += win_confirm(&confirms, nack->delivery_tag, nack->multiple);
		break;
	case AMQP_BASIC_RETURN_METHOD:
		returned++;
		break;
	case AMQP_CHANNEL_CLOSE_METHOD:
	case AMQP_CONNECTION_CLOSE_METHOD:
		die(EXIT_TEMPFAIL, "the broker (%s) closed the %s", brokers.url[node].node,
		    f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ? "channel" : "connection");
	}
}

/* Read confirms; block while more than `allowed` publishes are unconfirmed. */
static void
await_confirms(uint64_t allowed)
{
	struct timeval zero = { 0, 0 }, wait = { 60, 0 };
	amqp_frame_t f;
	int rc;

	for (;;) {
		rc = amqp_simple_wait_frame_noblock(conn, &f,
		    confirms.open > allowed ? &wait : &zero);
		if (rc == AMQP_STATUS_TIMEOUT) {
			if (confirms.open > allowed)
				die(EXIT_TEMPFAIL, "no publisher confirm for 60 s");
			break;
		}
		if (rc != AMQP_STATUS_OK)
			die(EXIT_TEMPFAIL, "broker connection lost (%s): %s", brokers.url[node].node,
			    amqp_error_string2(rc));
		handle_frame(&f);
	}
	amqp_maybe_release_buffers(conn);
}

static void
publish(const char *type, size_t type_len, const char *body, size_t n, struct buf *pretty)
{
	amqp_basic_properties_t props;
	struct json_object *o;
	const char *err, *s;
	char rk[128];
	size_t i;
	int rc;

	if (opt.pretty && (o = json_parse_strict(body, n, &err)) != NULL) {
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
		    JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
		buf_reset(pretty);
		for (i = 0; s[i]; i++) {
			if (s[i] == '\n' && opt.crlf)
				buf_addc(pretty, '\r');
			buf_addc(pretty, s[i]);
		}
		json_object_put(o);
		body = pretty->p;
		n = pretty->len;
	}
	snprintf(rk, sizeof(rk), "%.*s", (int)type_len, type);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG |
	    AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.content_encoding = amqp_cstring_bytes("application/json");
	props.delivery_mode = 2;
	rc = amqp_basic_publish(conn, 1, amqp_cstring_bytes(AMQ_EXCHANGE), amqp_cstring_bytes(rk),
	    1, 0, &props, (amqp_bytes_t){ n, (void *)body });
	if (rc != AMQP_STATUS_OK)
		die(EXIT_TEMPFAIL, "basic.publish: %s", amqp_error_string2(rc));
	/* Tags count the publishes on the channel from 1. */
	if (win_add(&confirms, ++published, 0) < 0)
		die(EXIT_SOFTWARE, "publish %llu out of sequence", (unsigned long long)published);
	if (published % 256 == 0 || confirms.open > (uint64_t)opt.window)
		await_confirms((uint64_t)opt.window);
}

static void
fill_from(int fd, const char *name)
{
	struct linereader in;
	struct envelope e;
	struct line l;
	struct buf pretty = { 0 }, raw = { 0 };
	const char *err;
	int rc;

	lr_init(&in, fd, 256 << 20);
	while ((rc = lr_getline(&in, &l, NULL)) == 1) {
		if (l.len == 0)
			continue;
		if (l.truncated) {
			log_msg(LOG_WARNING, "⚠️ %s:%llu: line too long, skipped", name, l.lineno);
			invalid++;
			continue;
		}
		if (opt.type != NULL) {
			publish(opt.type, strlen(opt.type), l.p, l.len, &pretty);
			continue;
		}
		if (env_scan(l.p, l.len, &e, &err) < 0 || e.type.esc) {
			log_msg(LOG_WARNING, "⚠️ %s:%llu: not an envelope (%s); use --type for raw "
			    "bodies", name, l.lineno, err ? err : "escaped type");
			invalid++;
			continue;
		}
		if (e.has_body)
			publish(e.type.p, e.type.n, e.body.p, e.body.n, &pretty);
		else if (!e.has_raw) {
			log_msg(LOG_WARNING, "⚠️ %s:%llu: an envelope without a body; skipped",
			    name, l.lineno);
			invalid++;
		} else {
			buf_reset(&raw);
			jstr_decode(&raw, e.raw);
			publish(e.type.p, e.type.n, raw.p ? raw.p : "", raw.len, &pretty);
		}
	}
	if (rc < 0)
		die(EXIT_TEMPFAIL, "%s: %s", name, strerror(errno));
	lr_free(&in);
	buf_free(&pretty);
	buf_free(&raw);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "pretty", no_argument, NULL, 'P' },
		{ "crlf", no_argument, NULL, 'C' },
		{ "window", required_argument, NULL, 'w' },
		{ "no-declare", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct logrec *r;
	char msg[512];
	double t0;
	unsigned dlq_down;
	int ch, i, rc, *fds;

	log_init("amqp-fill");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":t:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (data_type_index(optarg, strlen(optarg)) < 0)
				die(EXIT_USAGE, "--type: unknown type '%s'", optarg);
			opt.type = optarg;
			break;
		case 'P':
			opt.pretty = true;
			break;
		case 'C':
			opt.crlf = true;
			break;
		case 'w':
			opt.window = opt_ll("--window", optarg, 1, 1000000);
			break;
		case 'N':
			opt.declare = false;
			break;
		case 'h':
			print_usage(usage_text);
		case 'V':
			print_version();
		default:
			die_bad_option(ch, argv);
		}
	}
	amq_brokers_from_env(&brokers);
	ignore_sigpipe();
	conn = amq_connect_any_or_die(&brokers, "amqp-fill", &node);
	/* A dead-letter queue whose node is down does not keep us from
	 * publishing: amq_declare logs it. */
	if (opt.declare && (rc = amq_declare(conn, 1, 2, &dlq_down, msg, sizeof(msg))) != 0)
		die(rc, "RabbitMQ topology: %s", msg);
	amqp_confirm_select(conn, 1);
	if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
		die(EXIT_TEMPFAIL, "confirm.select failed");
	win_init(&confirms);

	/* Every file opened before the first publish: a missing one must not
	 * stop the run halfway. */
	fds = xcalloc((size_t)(argc - optind) + 1, sizeof(int));
	for (i = optind; i < argc; i++)
		if ((fds[i - optind] = open(argv[i], O_RDONLY | O_CLOEXEC)) < 0)
			die(EXIT_USAGE, "%s: %s", argv[i], strerror(errno));
	t0 = now_mono();
	if (optind == argc)
		fill_from(STDIN_FILENO, "stdin");
	for (i = optind; i < argc; i++) {
		fill_from(fds[i - optind], argv[i]);
		close(fds[i - optind]);
	}
	free(fds);
	await_confirms(0);

	r = log_begin(LOG_INFO, "✅ Published");
	log_str(r, "broker", brokers.url[node].redacted);
	log_int(r, "published", (long long)published);
	log_int(r, "confirmed", (long long)acked);
	log_int(r, "nacked", (long long)nacked);
	log_int(r, "unroutable", (long long)returned);
	log_int(r, "invalid_lines", (long long)invalid);
	log_num(r, "duration_s", now_mono() - t0);
	log_num(r, "messages_per_sec", (double)published / (now_mono() - t0 + 1e-9));
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	amq_close(conn);
	amq_brokers_free(&brokers);
	win_free(&confirms);
	if (nacked)
		return EXIT_TEMPFAIL;
	return invalid || returned ? EXIT_DATA : EXIT_OK;
}
