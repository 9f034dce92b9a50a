/*
 * tblhealth: serve GET /health (the original service's JSON, 200 or 503)
 * and GET /metrics (Prometheus text) from the state files the pipeline
 * writes (docs/state.md). It needs neither the broker nor the database,
 * and reading a request can never make it open another file.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "http.h"
#include "log.h"
#include "num.h"
#include "report.h"
#include "state.h"
#include "util.h"

#define SWEEP_EVERY	0.25		/* seconds between deadline sweeps */
#define SPARE_FDS	32		/* descriptors besides the connections */
/* Per connection: a request head of 8 KiB, libmicrohttpd's records and the
 * response head; a longer head is refused before it is read whole. */
#define CONN_MEMORY	(16 * 1024)

struct config {
	const char	*bind, *state_dir;
	long long	 port, max_conns, max_per_ip, timeout;
	long long	 stuck_interval;
	long long	 supervisor;	/* --supervisor: the parent's pid, or 0 */
	bool		 status;	/* --status: print the facts and exit */
	bool		 check_config;	/* --check-config: exit once read */
};

static const char *usage_text =
    "usage: tblhealth [-b address] [-p port] [-d dir] [--max-connections n]\n"
    "                 [--max-per-ip n] [--timeout seconds] [--supervisor pid]\n"
    "       tblhealth --status | --check-config [-d dir]\n"
    "  -b, --bind address      listen on this address (default HEALTH_CHECK_BIND,\n"
    "                          else 0.0.0.0)\n"
    "  -p, --port port         listen on this port (default HEALTH_CHECK_PORT, else\n"
    "                          8002); 0 picks a free one, logged at start\n"
    "  -d, --state-dir dir     read the state files here (default TBL_STATE_DIR)\n"
    "      --max-connections n connections served at once (default 64)\n"
    "      --max-per-ip n      of them from one address (default an eighth of them,\n"
    "                          8; 0 for no limit)\n"
    "      --timeout seconds   to send a whole request, or to stay idle (default 10)\n"
    "      --supervisor pid    stop when pid, the parent, ends\n"
    "      --status            print the pipeline's state as KEY=VALUE lines, exit\n"
    "      --check-config      check the options and the environment, then exit\n"
    "  -h, --help              show this help\n"
    "  -V, --version           show the version\n";

static void
read_config(int argc, char *argv[], struct config *c)
{
	static const struct option longopts[] = {
		{ "bind", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ "max-connections", required_argument, NULL, 'C' },
		{ "max-per-ip", required_argument, NULL, 'I' },
		{ "port", required_argument, NULL, 'p' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "status", no_argument, NULL, 's' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "supervisor", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	char why[256];
	int ch;

	memset(c, 0, sizeof(*c));
	c->port = -1;
	c->max_conns = 64;
	c->max_per_ip = -1;
	c->timeout = 10;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":b:d:hp:V", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			c->bind = optarg;
			break;
		case 'C':
			c->max_conns = opt_ll("--max-connections", optarg, 1, 10000);
			break;
		case 'd':
			c->state_dir = optarg;
			break;
		case 'h':
			print_usage(usage_text);
		case 'I':
			c->max_per_ip = opt_ll("--max-per-ip", optarg, 0, 10000);
			break;
		case 'p':
			c->port = opt_ll("--port", optarg, 0, 65535);
			break;
		case 's':
			c->status = true;
			break;
		case 'K':
			c->check_config = true;
			break;
		case 'S':
			c->supervisor = opt_ll("--supervisor", optarg, 1, INT_MAX);
			break;
		case 'T':
			c->timeout = opt_ll("--timeout", optarg, 1, 3600);
			break;
		case 'V':
			print_version();
		default:
			die_bad_option(ch, argv);
		}
	}
	if (optind < argc)
		die_operand(argv[optind]);
	if (c->port < 0)
		c->port = env_ll("HEALTH_CHECK_PORT", 8002, 0, 65535);
	if (c->bind == NULL)
		c->bind = env_str("HEALTH_CHECK_BIND", "0.0.0.0");
	if (c->state_dir == NULL && (c->state_dir = env_str("TBL_STATE_DIR", NULL)) == NULL)
		die(EXIT_CONFIG, "TBL_STATE_DIR is not set and no --state-dir was given");
	/* What others could write there would be served, or acted on. */
	if (!state_dir_ok(c->state_dir, false, why, sizeof(why)))
		die(EXIT_CONFIG, "state directory %s: %s", c->state_dir, why);
	c->stuck_interval = env_ll("STUCK_CHECK_INTERVAL", 30, 1, 86400);
	/* A client needs one connection at a time: an eighth of the slots lets
	 * a flood from a few addresses leave most of them to everyone else. */
	if (c->max_per_ip < 0)
		c->max_per_ip = (c->max_conns + 7) / 8;
	if (c->check_config)
		exit(EXIT_OK);
}

/* Check that the connection limit fits in the descriptor limit. */
static void
check_fd_limit(const struct config *c)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		die(EXIT_SOFTWARE, "getrlimit: %s", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)(c->max_conns + SPARE_FDS) > rl.rlim_cur)
		die(EXIT_CONFIG, "--max-connections %lld needs more file descriptors than "
		    "the limit of %llu (ulimit -n)", c->max_conns, (unsigned long long)rl.rlim_cur);
}

/* Bind and listen; exits 78 for what is not a numeric address, 69 when it cannot bind. */
static int
listen_on(const char *host, long long portnum)
{
	struct addrinfo hints, *ai;
	char name[NI_MAXHOST], serv[NI_MAXSERV], port[16];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct logrec *lr;
	int fd, one = 1, e;

	snprintf(port, sizeof(port), "%lld", portnum);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
		die(EXIT_CONFIG, "bind address '%s': %s (want an IPv4 or IPv6 address)",
		    host, gai_strerror(e));
	if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		die(EXIT_UNAVAILABLE, "socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die(EXIT_SOFTWARE, "setsockopt SO_REUSEADDR: %s", strerror(errno));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0)
		die(EXIT_UNAVAILABLE, "cannot listen on %s port %s: %s", host, port, strerror(errno));
	freeaddrinfo(ai);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, name, sizeof(name), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		die(EXIT_SOFTWARE, "getsockname: %s", strerror(errno));
	lr = log_begin(LOG_INFO, "🏥 Health server listening on %s port %s", name, serv);
	log_str(lr, "address", name);
	log_int(lr, "port", atoi(serv));
	log_end(lr);
	return fd;
}

/*
 * SIGINT and SIGTERM stay blocked in every thread (libmicrohttpd's inherit
 * the mask); the main thread takes them with sigtimedwait, so no handler
 * runs at all. Between waits it sweeps the connection deadlines.
 */
static void
block_signals(sigset_t *set)
{
	int e;

	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	if ((e = pthread_sigmask(SIG_BLOCK, set, NULL)) != 0)
		die(EXIT_SOFTWARE, "pthread_sigmask: %s", strerror(e));
}

static int
serve(struct http *h, const sigset_t *set)
{
	struct timespec ts = { 0, (long)(SWEEP_EVERY * 1e9) };
	int sig;

	for (;;) {
		if ((sig = sigtimedwait(set, NULL, &ts)) > 0)
			return sig;
		if (errno != EAGAIN && errno != EINTR)
			die(EXIT_SOFTWARE, "sigtimedwait: %s", strerror(errno));
		http_sweep(h);
	}
}

/* --status: the facts for the supervisor on stdout, checked. */
static noreturn void
print_status(const struct report_cfg *rc)
{
	struct buf b = { 0 };

	report_status(rc, &b);
	if (write_all(STDOUT_FILENO, b.p, b.len) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	buf_free(&b);
	exit(EXIT_OK);
}

int
main(int argc, char *argv[])
{
	struct report_cfg rc;
	struct http_cfg hc;
	struct config c;
	struct http *h;
	sigset_t sigs;
	int sig;

	log_init("tblhealth");
	read_config(argc, argv, &c);
	report_init(&rc, c.state_dir, (double)c.stuck_interval);
	if (c.status)
		print_status(&rc);
	check_fd_limit(&c);
	ignore_sigpipe();
	block_signals(&sigs);
	/* Blocked, the SIGTERM of a dying parent waits for serve() to take it. */
	if (c.supervisor > 0)
		stop_with_parent(c.supervisor);

	memset(&hc, 0, sizeof(hc));
	hc.listen_fd = listen_on(c.bind, c.port);
	hc.max_conns = (unsigned int)c.max_conns;
	hc.max_per_ip = (unsigned int)c.max_per_ip;
	hc.timeout = (unsigned int)c.timeout;
	hc.conn_memory = CONN_MEMORY;
	hc.report = &rc;
	if ((h = http_start(&hc)) == NULL)
		die(EXIT_SOFTWARE, "libmicrohttpd could not start (see the message before)");

	sig = serve(h, &sigs);
	log_msg(LOG_INFO, "🛑 Received %s, stopping the health server", strsignal(sig));
	http_stop(h);
	report_free(&rc);
	log_msg(LOG_INFO, "✅ Health server stopped");
	return EXIT_OK;
}
