/*
 * amqp-drain: consume the four Discogs queues and write one envelope per
 * delivery to stdout, without parsing bodies (only a body's top-level type
 * is read, to know a file_complete). Deliveries are settled when
 * tblload says so through the ack FIFO (--acks), or, when stdout is a
 * regular file, once the file is fsync'ed. One event loop multiplexes the
 * broker socket, stdout and the FIFO, so a full pipe never stops the
 * heartbeats or the reading of settle lines. This file has the options,
 * the setup, the state file and the loop; drain.h says where the rest is.
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

#include "amq.h"
#include "buf.h"
#include "cli.h"
#include "drain.h"
#include "envelope.h"
#include "json.h"
#include "lineio.h"
#include "log.h"
#include "num.h"
#include "state.h"
#include "util.h"

#define EMPTY_CHECK	0.25	/* --until-empty: seconds between queue checks when idle */

static struct {
	const char	*acks;
	bool		 until_empty, check;
	long long	 prefetch;
	double		 cancel_delay, drain_timeout;
	unsigned	 types;		/* bit per type index */
	long long	 supervisor;	/* --supervisor: the parent's pid, or 0 */
} opt = { NULL, false, false, 0, 300, 60, 0xf, 0 };

static struct amq_brokers brokers;
static size_t node;		/* the broker of brokers we are connected to */
static struct statefile sf;

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
    "The broker is AMQP_CONNECTION (amqp://user:password@host:port/vhost), or the\n"
    "first that answers of several separated by commas (nodes of one cluster).\n";

static void write_state(struct drain *, double, const char *);

noreturn void
drain_lost(struct drain *d, const char *fmt, const char *detail)
{
	write_state(d, 0, "lost");
	die(EXIT_TEMPFAIL, fmt, detail);
}

/* ---- setup --------------------------------------------------------------- */

static void
connect_broker(struct drain *d)
{
	unsigned char rnd[8];
	int i;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		die(EXIT_SOFTWARE, "getrandom: %s", strerror(errno));
	for (i = 0; i < 8; i++)
		snprintf(d->conn_id + 2 * i, 3, "%02x", rnd[i]);
	d->conn = amq_connect_any_or_die(&brokers, "amqp-drain", &node);
	{
		struct timeval rpc_timeout = { 30, 0 };
		amqp_set_rpc_timeout(d->conn, &rpc_timeout);
	}
}

static noreturn void
check_depths(struct drain *d)
{
	char q[128], err[512];
	long n, total = 0;
	struct buf b = { 0 };
	int t;

	if (amq_channel_open(d->conn, CH_CHECK, err, sizeof(err)) < 0)
		die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
	json_open(&b, '{');
	for (t = 0; t < NTYPES; t++) {
		amq_queue_name(t, q, sizeof(q));
		json_key(&b, data_types[t]);
		if ((n = amq_queue_depth(d->conn, CH_CHECK, q, err, sizeof(err))) < 0) {
			log_msg(LOG_WARNING, "⚠️ Queue %s: %s", q, err);
			if (amq_channel_open(d->conn, CH_CHECK, err, sizeof(err)) < 0)
				die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
			json_put_null(&b);
			continue;
		}
		total += n;
		json_put_int(&b, n);
	}
	json_key(&b, "total");
	json_put_int(&b, total);
	json_close(&b, '}');
	buf_addc(&b, '\n');
	if (write_all(STDOUT_FILENO, b.p, b.len) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	buf_free(&b);
	amq_close(d->conn);
	exit(total > 0 ? EXIT_OK : EXIT_DATA);
}

static void
start_consumers(struct drain *d)
{
	amqp_basic_consume_ok_t *ok;
	char err[512];
	int t, rc;

	/* The dead-letter queues on CH_CHECK: one whose node is down is
	 * logged and left (dlq_down), and the rest goes on. */
	if ((rc = amq_declare(d->conn, CH_CONSUME, CH_CHECK, &d->dlq_down, err, sizeof(err))) != 0)
		die(rc, "RabbitMQ topology: %s", err);
	d->next_dlq_check = now_mono() + 6 * DLQ_CHECK;
	amqp_basic_qos(d->conn, CH_CONSUME, 0, (uint16_t)opt.prefetch, 0);
	if (amqp_get_rpc_reply(d->conn).reply_type != AMQP_RESPONSE_NORMAL)
		die(EXIT_TEMPFAIL, "RabbitMQ: basic.qos failed");
	for (t = 0; t < NTYPES; t++) {
		amq_queue_name(t, d->cons[t].queue, sizeof(d->cons[t].queue));
		if (!(opt.types & (1u << t)))
			continue;
		ok = amqp_basic_consume(d->conn, CH_CONSUME, amqp_cstring_bytes(d->cons[t].queue),
		    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
		if (ok == NULL) {
			amq_reply_error(amqp_get_rpc_reply(d->conn), "basic.consume", err, sizeof(err));
			die(EXIT_TEMPFAIL, "RabbitMQ: %s", err);
		}
		snprintf(d->cons[t].tag, sizeof(d->cons[t].tag), "%.*s", (int)ok->consumer_tag.len,
		    (char *)ok->consumer_tag.bytes);
		d->cons[t].active = true;
	}
}

static void
open_output(struct drain *d)
{
	struct stat st;
	int fl;

	if (fstat(STDOUT_FILENO, &st) < 0)
		die(EXIT_USAGE, "stdout: %s", strerror(errno));
	if (opt.acks == NULL) {
		if (!S_ISREG(st.st_mode))
			die(EXIT_USAGE, "without --acks, stdout must be a regular file "
			    "(deliveries are acked once it is fsync'ed)");
		d->mode = M_CAPTURE;
	} else {
		d->mode = M_PIPE;
		if (stat(opt.acks, &st) < 0) {
			if (errno != ENOENT || mkfifo(opt.acks, 0600) < 0)
				die(EXIT_USAGE, "--acks %s: %s", opt.acks, strerror(errno));
		} else if (!S_ISFIFO(st.st_mode))
			die(EXIT_USAGE, "--acks %s: not a FIFO", opt.acks);
		if ((d->fifo_fd = open(opt.acks, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0)
			die(EXIT_USAGE, "--acks %s: %s", opt.acks, strerror(errno));
		lr_init(&d->fifo, d->fifo_fd, 1 << 20);
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
	amq_brokers_from_env(&brokers);
	if (check_config)
		exit(EXIT_OK);
}

/* ---- the loop ------------------------------------------------------------ */

/* A list of the types in mask, as an array of names. */
static void
put_types(struct buf *b, const char *key, unsigned mask)
{
	int t;

	json_key(b, key);
	json_open(b, '[');
	for (t = 0; t < NTYPES; t++)
		if (mask & (1u << t))
			json_put_str(b, data_types[t], strlen(data_types[t]));
	json_close(b, ']');
}

/* A count for each type, as an object. */
static void
put_by_type(struct buf *b, const char *key, const unsigned long long v[NTYPES])
{
	int t;

	json_key(b, key);
	json_open(b, '{');
	for (t = 0; t < NTYPES; t++) {
		json_key(b, data_types[t]);
		json_put_uint(b, v[t]);
	}
	json_close(b, '}');
}

/* The state file read by tblhealth (docs/state.md). */
static void
write_state(struct drain *d, double min_interval, const char *state)
{
	struct buf *b = state_begin(&sf, min_interval);
	unsigned long long count[NTYPES], acked[NTYPES], rejected[NTYPES];
	unsigned active = 0, complete = 0;
	const char *m = d->mode == M_PIPE ? "pipeline" : "capture";
	int t;

	if (b == NULL)
		return;
	for (t = 0; t < NTYPES; t++) {
		active |= d->cons[t].active ? 1u << t : 0;
		complete |= d->cons[t].complete ? 1u << t : 0;
		count[t] = d->cons[t].count;
		acked[t] = d->cons[t].acked;
		rejected[t] = d->cons[t].rejected;
	}
	json_key(b, "state");
	json_put_str(b, state, strlen(state));
	json_key(b, "connection");
	json_put_str(b, d->conn_id, strlen(d->conn_id));
	json_key(b, "mode");
	json_put_str(b, m, strlen(m));
	json_key(b, "prefetch");
	json_put_int(b, opt.prefetch);
	json_key(b, "broker");
	json_put_str_lossy(b, brokers.url[node].node, strlen(brokers.url[node].node));
	json_key(b, "brokers");
	json_put_uint(b, brokers.n);
	put_types(b, "dead_letter_unreachable", d->dlq_down);
	json_key(b, "held");
	json_put_uint(b, d->nheld);
	put_types(b, "active_consumers", active);
	put_types(b, "completed_files", complete);
	put_by_type(b, "message_counts", count);
	json_key(b, "last_message_time");
	json_open(b, '{');
	for (t = 0; t < NTYPES; t++) {
		json_key(b, data_types[t]);
		json_put_fixed(b, d->cons[t].last_time, 6);
	}
	json_close(b, '}');
	put_by_type(b, "acked_by_type", acked);
	put_by_type(b, "rejected_by_type", rejected);
	json_key(b, "deliveries");
	json_put_uint(b, d->ndeliveries);
	json_key(b, "acked");
	json_put_uint(b, d->nacked);
	json_key(b, "rejected");
	json_put_uint(b, d->nrejected);
	json_key(b, "controls");
	json_put_uint(b, d->ncontrols);
	json_key(b, "redelivered");
	json_put_uint(b, d->nredelivered);
	json_key(b, "unsettled");
	json_put_uint(b, d->win.open);
	state_commit(&sf);
}

static bool
consumers_left(struct drain *d)
{
	int t;

	for (t = 0; t < NTYPES; t++)
		if (d->cons[t].active)
			return true;
	return false;
}

/* From now on, wait at most --drain-timeout for the pipeline to settle. */
static void
begin_drain(struct drain *d, double now, const char *msg)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->drain_deadline = now + opt.drain_timeout;
	log_msg(LOG_INFO, "%s", msg);
}

static void
stop_consuming(struct drain *d, const char *why)
{
	char msg[128];
	int t;

	snprintf(msg, sizeof(msg), "🛑 %s: cancelling consumers, draining the pipeline", why);
	begin_drain(d, now_mono(), msg);
	for (t = 0; t < NTYPES; t++)
		cancel_consumer(d, t);
}

/*
 * The original's progress report: every 10 s for the first three, then
 * every 30 s, and nothing once every file is complete. A type is stalled
 * when its file is not complete and nothing came for two minutes.
 */
static void
report_progress(struct drain *d, double now)
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
		if ((opt.types & (1u << t)) && !d->cons[t].complete)
			all_complete = false;
	if (all_complete)
		return;
	next = now + (++nreports < 3 ? 10 : 30);
	r = log_begin(LOG_INFO, "📊 Progress");
	log_int(r, "total", (long long)d->ndeliveries);
	for (t = 0; t < NTYPES; t++) {
		log_int(r, data_types[t], (long long)d->cons[t].count);
		if ((opt.types & (1u << t)) && !d->cons[t].complete && d->cons[t].last_time > 0 &&
		    now_wall() - d->cons[t].last_time > 120)
			buf_printf(&stalled, "%s%s", stalled.len ? "," : "", data_types[t]);
	}
	log_int(r, "since_last", (long long)(d->ndeliveries - last_total));
	log_int(r, "unsettled", (long long)d->win.open);
	if (stalled.len)
		log_str(r, "stalled", stalled.p);
	log_end(r);
	if (stalled.len)
		log_msg(LOG_WARNING, "⚠️ No messages for two minutes: %s", stalled.p);
	last_total = d->ndeliveries;
	buf_free(&stalled);
}

/* --until-empty: are all queues empty with nothing of ours unsettled? */
static bool
queues_empty(struct drain *d)
{
	char err[512];
	long n;
	int t;

	for (t = 0; t < NTYPES; t++) {
		if (!(opt.types & (1u << t)))
			continue;
		if ((n = amq_queue_depth(d->conn, CH_CHECK, d->cons[t].queue, err, sizeof(err))) < 0)
			drain_lost(d, "queue depth: %s", err);
		if (n > 0)
			return false;
	}
	return true;
}

static noreturn void
finish(struct drain *d)
{
	struct logrec *r;
	size_t unsettled;
	int status;

	send_acks(d);
	unsettled = d->win.open + d->nheld;
	r = log_begin(unsettled ? LOG_WARNING : LOG_INFO, unsettled ?
	    "⚠️ Stopping with unsettled deliveries (the broker will redeliver them)" :
	    "✅ Drained: every delivery settled");
	log_int(r, "deliveries", (long long)d->ndeliveries);
	log_int(r, "acked", (long long)d->nacked);
	log_int(r, "rejected", (long long)d->nrejected);
	log_int(r, "controls", (long long)d->ncontrols);
	log_int(r, "redelivered", (long long)d->nredelivered);
	log_int(r, "unsettled", (long long)unsettled);
	log_int(r, "held", (long long)d->nheld);
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	write_state(d, 0, "stopped");
	amq_close(d->conn);
	status = stop_signal || unsettled == 0 ? EXIT_OK : EXIT_TEMPFAIL;
	exit(status);
}

static int
poll_timeout_ms(struct drain *d, double now)
{
	double hb = amqp_get_heartbeat(d->conn), wait = hb > 0 ? hb / 4 : 1.0;
	int t;

	if (wait > 1.0)
		wait = 1.0;
	for (t = 0; t < NTYPES; t++)
		if (d->cons[t].cancel_at > 0 && d->cons[t].cancel_at - now < wait)
			wait = d->cons[t].cancel_at - now;
	if (d->stopping && d->drain_deadline - now < wait)
		wait = d->drain_deadline - now;
	if (d->mode == M_CAPTURE && d->captured_tag && wait > 0.2)
		wait = 0.2;
	if (d->dlq_down && d->next_dlq_check - now < wait)
		wait = d->next_dlq_check - now;
	return wait < 0 ? 0 : (int)(wait * 1000) + 1;
}

static noreturn void
run(struct drain *d)
{
	struct pollfd pfd[3];
	double now;
	int n, t, fifo_slot = -1;
	bool fifo_ready = false;

	d->next_check = now_mono() + EMPTY_CHECK;
	for (;;) {
		pump_broker(d);
		/* Read the FIFO only when poll says so: before tblload opens it,
		 * a read would see end-of-file. */
		if (fifo_ready && !d->fifo.eof)
			read_fifo(d);
		/* Written first: in capture mode what was written is then synced
		 * and acked in this turn, not the next. */
		if (!d->out_closed)
			write_out(d);
		if (d->mode == M_CAPTURE)
			sync_capture(d, false);
		send_acks(d);
		write_state(d, 0.5, d->stopping ? "draining" : "consuming");

		now = now_mono();
		check_dead_letters(d, now);
		report_progress(d, now);
		if (stop_signal && !d->stopping)
			stop_consuming(d, stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
		for (t = 0; t < NTYPES; t++)
			if (d->cons[t].cancel_at > 0 && now >= d->cons[t].cancel_at) {
				d->cons[t].cancel_at = 0;
				cancel_consumer(d, t);
			}
		if (opt.until_empty && !d->stopping && now >= d->next_check) {
			d->next_check = now + EMPTY_CHECK;
			if (!d->cur.active && win_idle(&d->win) && now - d->last_delivery > EMPTY_CHECK &&
			    queues_empty(d))
				stop_consuming(d, "Queues are empty");
		}
		if (!consumers_left(d)) {
			begin_drain(d, now, "💤 All consumers cancelled: draining the pipeline");
			if (!d->out_closed && d->out_off == d->out.len) {
				if (d->mode == M_CAPTURE)
					sync_capture(d, true);
				/* End of input for the pipeline: it flushes and settles. */
				if (close(STDOUT_FILENO) < 0 && d->mode == M_CAPTURE)
					die(EXIT_TEMPFAIL, "stdout: close: %s", strerror(errno));
				d->out_closed = true;
			}
			if (d->out_closed && (win_idle(&d->win) || d->fifo.eof || now >= d->drain_deadline))
				finish(d);
		} else if (d->stopping && now >= d->drain_deadline + 10)
			drain_lost(d, "the broker did not confirm the consumer cancels%s", "");
		if (d->fifo.eof && !d->out_closed)
			drain_lost(d, "tblload closed the ack FIFO%s (the pipeline stopped)", "");

		n = 0;
		pfd[n].fd = amqp_get_sockfd(d->conn);
		pfd[n++].events = POLLIN;
		if (!d->out_closed && d->out_off < d->out.len) {
			pfd[n].fd = STDOUT_FILENO;
			pfd[n++].events = POLLOUT;
		}
		fifo_slot = -1;
		if (d->fifo_fd >= 0 && !d->fifo.eof) {
			fifo_slot = n;
			pfd[n].fd = d->fifo_fd;
			pfd[n++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)n, poll_timeout_ms(d, now)) < 0) {
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
	static struct drain drain = { .fifo_fd = -1 };
	struct drain *d = &drain;
	struct logrec *r;
	int t;

	log_init("amqp-drain");
	read_options(argc, argv);
	d->cancel_delay = opt.cancel_delay;
	ignore_sigpipe();
	catch_stop_signals();
	if (opt.supervisor > 0)
		stop_with_parent(opt.supervisor);
	/* A state directory that is not private is refused before connecting. */
	if (!opt.check)
		state_open(&sf, "amqp-drain");
	connect_broker(d);
	if (opt.check)
		check_depths(d);
	open_output(d);
	win_init(&d->win);
	start_consumers(d);
	d->last_delivery = now_mono();
	r = log_begin(LOG_INFO, "🐰 Consuming");
	log_str(r, "broker", brokers.url[node].redacted);
	if (brokers.n > 1)
		log_int(r, "brokers", (long long)brokers.n);
	log_str(r, "connection", d->conn_id);
	log_str(r, "mode", d->mode == M_PIPE ? "pipeline" : "capture");
	log_int(r, "prefetch", opt.prefetch);
	for (t = 0; t < NTYPES; t++)
		if (d->cons[t].active)
			log_str(r, data_types[t], d->cons[t].queue);
	log_end(r);
	run(d);
}
