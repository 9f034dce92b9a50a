/*
 * tblbatch: group envelopes by type into batches for tblload. A type's batch
 * is written when it holds --size envelopes or --max-bytes bytes, when its
 * oldest envelope has waited --interval seconds (also while the input is
 * idle), before a control message of its type, and at end of input. Only
 * envelope headers are read; bodies are copied, never parsed.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "envelope.h"
#include "lineio.h"
#include "log.h"
#include "num.h"
#include "util.h"

#define MAX_GROUPS	16
#define TYPE_MAX	64

struct group {
	char		 type[TYPE_MAX];	/* as JSON string contents */
	size_t		 type_len;
	struct buf	 lines;
	long long	 n;
	double		 oldest;		/* arrival of the first envelope */
};

static struct {
	long long	 size;
	double		 interval;
	size_t		 max_bytes;
	size_t		 max_line;
} opt = { 100, 5.0, 32 << 20, 64 << 20 };

static struct group groups[MAX_GROUPS];
static int ngroups;
static unsigned long long nbatches, nlines, nrecords, npassed;

static const char *usage_text =
    "usage: tblbatch [-s size] [-i seconds] [--max-bytes n] [--max-line n]\n"
    "       tblbatch --check-config\n"
    "  -s, --size n          envelopes per batch (default POSTGRES_BATCH_SIZE or 100)\n"
    "  -i, --interval s      write a batch whose oldest envelope waited this long\n"
    "                        (default POSTGRES_BATCH_FLUSH_INTERVAL or 5.0)\n"
    "      --max-bytes n     write a batch once it holds this many bytes (default 33554432)\n"
    "      --max-line n      longest line read whole (default 67108864)\n"
    "      --check-config    check the options and the environment, then exit\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n";

/* Write one batch: its header, then its lines. */
static void
write_batch(struct jstr type, long long n, const char *lines, size_t len)
{
	struct buf hdr = { 0 };
	struct iovec iov[2];
	ssize_t w;
	size_t off = 0, total;

	frame_write(&hdr, type, n);
	total = hdr.len + len;
	while (off < total) {
		int k = 0;

		if (off < hdr.len) {
			iov[k].iov_base = hdr.p + off;
			iov[k++].iov_len = hdr.len - off;
			iov[k].iov_base = (void *)lines;
			iov[k++].iov_len = len;
		} else {
			iov[k].iov_base = (char *)lines + (off - hdr.len);
			iov[k++].iov_len = total - off;
		}
		if ((w = writev(STDOUT_FILENO, iov, k)) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
		}
		off += (size_t)w;
	}
	buf_free(&hdr);
	nbatches++;
}

static void
flush_group(struct group *g)
{
	if (g->n == 0)
		return;
	write_batch((struct jstr){ g->type, g->type_len, false }, g->n, g->lines.p, g->lines.len);
	buf_reset(&g->lines);
	if (g->lines.cap > 2 * opt.max_bytes) {
		/* Give back the memory of an exceptionally large batch. */
		buf_free(&g->lines);
	}
	g->n = 0;
}

static struct group *
find_group(struct jstr type)
{
	int i;

	for (i = 0; i < ngroups; i++)
		if (groups[i].type_len == type.n && memcmp(groups[i].type, type.p, type.n) == 0)
			return &groups[i];
	if (ngroups == MAX_GROUPS || type.n > TYPE_MAX)
		return NULL;
	memcpy(groups[ngroups].type, type.p, type.n);
	groups[ngroups].type_len = type.n;
	return &groups[ngroups++];
}

static void
pass_single(struct jstr type, const char *line, size_t len)
{
	struct buf b = { 0 };

	buf_add(&b, line, len);
	buf_addc(&b, '\n');
	write_batch(type, 1, b.p, b.len);
	buf_free(&b);
	npassed++;
}

static void
handle_line(const struct line *l)
{
	struct envelope e;
	struct group *g;
	struct buf tmp = { 0 };
	const char *err;
	char reason[128];

	nlines++;
	if (l->truncated) {
		/* Too long to hold: pass on its header, marked invalid, so it is settled. */
		if (env_scan_prefix(l->p, l->len, &e, &err) < 0) {
			e.type = (struct jstr){ "", 0, false };
			e.conn.p = NULL;
		}
		snprintf(reason, sizeof(reason), "line too long (%zu bytes, limit %zu)",
		    l->full_len, opt.max_line);
		env_write(&tmp, &(struct envelope_out){ .type = e.type, .conn = e.conn,
		    .tag = e.tag, .invalid = reason });
		write_batch(e.type, 1, tmp.p, tmp.len);
		buf_free(&tmp);
		npassed++;
		log_msg(LOG_WARNING, "⚠️ Line %llu too long (%zu bytes), passed on as invalid",
		    l->lineno, l->full_len);
		return;
	}
	if (env_scan(l->p, l->len, &e, &err) < 0) {
		log_msg(LOG_WARNING, "⚠️ Line %llu is not an envelope (%s), passed on", l->lineno, err);
		pass_single((struct jstr){ "", 0, false }, l->p, l->len);
		return;
	}
	if (e.invalid.p != NULL) {
		pass_single(e.type, l->p, l->len);
		return;
	}
	g = find_group(e.type);
	if (e.control.p != NULL) {
		/* A control message ends its type's stream for now: flush first. */
		if (g != NULL)
			flush_group(g);
		pass_single(e.type, l->p, l->len);
		return;
	}
	if (g == NULL) {
		pass_single(e.type, l->p, l->len);
		return;
	}
	if (g->n == 0)
		g->oldest = now_mono();
	buf_add(&g->lines, l->p, l->len);
	buf_addc(&g->lines, '\n');
	g->n++;
	nrecords++;
	if (g->n >= opt.size || g->lines.len >= opt.max_bytes || stop_signal)
		flush_group(g);
}

/* Flush the types whose oldest envelope is due; return ms to the next deadline. */
static int
flush_due(void)
{
	double now = now_mono(), next = -1, due;
	int i;

	for (i = 0; i < ngroups; i++) {
		if (groups[i].n == 0)
			continue;
		due = groups[i].oldest + opt.interval;
		if (due <= now || stop_signal)
			flush_group(&groups[i]);
		else if (next < 0 || due < next)
			next = due;
	}
	if (next < 0)
		return -1;
	return (int)((next - now) * 1000.0) + 1;
}

static void
flush_all_in_order(void)
{
	struct group *oldest;
	int i;

	for (;;) {
		oldest = NULL;
		for (i = 0; i < ngroups; i++)
			if (groups[i].n > 0 && (oldest == NULL || groups[i].oldest < oldest->oldest))
				oldest = &groups[i];
		if (oldest == NULL)
			return;
		flush_group(oldest);
	}
}

static void
read_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' },
		{ "max-bytes", required_argument, NULL, 'B' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	bool size_set = false, interval_set = false, check_config = false;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:i:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			opt.size = opt_ll("--size", optarg, 1, 1000000);
			size_set = true;
			break;
		case 'i':
			opt.interval = opt_double("--interval", optarg, 0, 86400);
			interval_set = true;
			break;
		case 'B':
			opt.max_bytes = (size_t)opt_ll("--max-bytes", optarg, 1, 1LL << 32);
			break;
		case 'L':
			opt.max_line = (size_t)opt_ll("--max-line", optarg, 1024, 1LL << 31);
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
	/* The environment only for what the options left unset. */
	if (!size_set)
		opt.size = env_ll("POSTGRES_BATCH_SIZE", opt.size, 1, 1000000);
	if (!interval_set)
		opt.interval = env_double("POSTGRES_BATCH_FLUSH_INTERVAL", opt.interval, 0, 86400);
	if (check_config)
		exit(EXIT_OK);
}

int
main(int argc, char *argv[])
{
	struct linereader in;
	struct pollfd pfd;
	struct logrec *r;
	struct line l;
	int timeout, rc, was_stopping = 0;

	log_init("tblbatch");
	read_options(argc, argv);
	ignore_sigpipe();
	catch_stop_signals();

	lr_init(&in, STDIN_FILENO, opt.max_line);
	for (;;) {
		while ((rc = lr_next(&in, &l)) == 1)
			handle_line(&l);
		if (rc < 0)
			break;
		if (stop_signal && !was_stopping) {
			/* Asked to stop: write what is held, then pass the rest through as it comes. */
			log_msg(LOG_INFO, "🛑 Stop requested: flushing every batch now");
			was_stopping = 1;
		}
		timeout = flush_due();
		pfd.fd = STDIN_FILENO;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, timeout) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_SOFTWARE, "poll: %s", strerror(errno));
		}
		if (pfd.revents != 0 && lr_fill(&in) < 0 && errno != EAGAIN)
			die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
	}
	flush_all_in_order();

	r = log_begin(LOG_INFO, "✅ Batching finished");
	log_int(r, "lines", (long long)nlines);
	log_int(r, "records", (long long)nrecords);
	log_int(r, "passed_singly", (long long)npassed);
	log_int(r, "batches", (long long)nbatches);
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	lr_free(&in);
	return EXIT_OK;
}
