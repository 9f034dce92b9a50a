/*
 * tblload: read batches of envelopes (from tblbatch) and keep them in
 * PostgreSQL (docs/design.md#writes). Each batch is committed in one
 * transaction (with other batches of its type that wait, when there is a
 * backlog): the last record of each id wins; the stored hashes sort the
 * others into unchanged (not written), new (COPYed straight into the
 * tables) and changed (COPYed into a staging table, then upserted). A batch
 * PostgreSQL refuses is split until the refused rows are found; the rest is
 * committed. After each commit, one settle line per delivery goes to the
 * ack file, so amqp-drain can ack or reject it (docs/design.md#delivery).
 *
 * With --jobs N, N connections commit at once, each on a thread of its own
 * (worker.c), while a thread reads ahead (reader.c) and the main one gives them
 * batches such that no two batches in flight hold the same id, so each id's
 * versions are committed in the order they came (dispatch.c). Settling and
 * rejects are in settle.c, the counts and the state file in counts.c;
 * --dry-run and --copy-out in offline.c. This file reads the options.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "counts.h"
#include "db.h"
#include "dispatch.h"
#include "log.h"
#include "num.h"
#include "offline.h"
#include "settle.h"
#include "util.h"
#include "worker.h"

#define JOBS_DEFAULT	2
#define MERGE_DEFAULT	1000

static struct {
	const char	*acks, *rejects, *copy_out;
	bool		 dry_run, check_config;
	double		 retry_max;
	size_t		 max_line;
	int		 jobs;
	long long	 merge;
} opt = { NULL, NULL, NULL, false, false, 300, 64 << 20, JOBS_DEFAULT, MERGE_DEFAULT };

static const char *usage_text =
    "usage: tblload [--acks file] [--rejects file] [--retry-max seconds]\n"
    "               [--jobs n|auto] [--merge n] [--dry-run | --copy-out dir] [--max-line n]\n"
    "       tblload --check-config\n"
    "      --acks file        after each commit, write a settle line per delivery\n"
    "                         (a FIFO read by amqp-drain, or a regular file)\n"
    "      --rejects file     append every rejected message, with its reason, as NDJSON\n"
    "      --retry-max s      how long to retry while PostgreSQL is unavailable\n"
    "                         (default TBLLOAD_RETRY_MAX or 300; 0 retries forever)\n"
    "  -j, --jobs n|auto      connections committing at once, 1 to 64; auto: one per\n"
    "                         local core (default TBLLOAD_JOBS or 2)\n"
    "      --merge n          commit batches of a type that wait together, up to n\n"
    "                         records a transaction (default TBLLOAD_MERGE or 1000;\n"
    "                         0: never)\n"
    "  -n, --dry-run          print the rows that would be written, as NDJSON; no database\n"
    "      --copy-out dir     write the rows as COPY text files <table>.copy; no database\n"
    "      --max-line n       longest line read whole (default 67108864)\n"
    "      --check-config     check the options and the environment, then exit\n"
    "                         (nothing is connected to)\n"
    "  -h, --help             show this help\n"
    "  -V, --version          show the version\n"
    "PostgreSQL: POSTGRES_ADDRESS (host[:port]), POSTGRES_USERNAME, POSTGRES_PASSWORD\n"
    "or POSTGRES_PASSWORD_FILE, POSTGRES_DATABASE, POSTGRES_SSLMODE, POSTGRES_SSLROOTCERT,\n"
    "POSTGRES_SSLCERT, POSTGRES_SSLKEY; libpq's PG* variables fill what is not set.\n";

/* --jobs and TBLLOAD_JOBS: 1 to JOBS_MAX, or auto (one per local core). */
static int
parse_jobs(const char *s, const char *name, int status)
{
	const char *why;
	long long v;
	long cores;

	if (strcmp(s, "auto") == 0) {
		cores = sysconf(_SC_NPROCESSORS_ONLN);
		return cores < 1 ? 1 : cores > JOBS_MAX ? JOBS_MAX : (int)cores;
	}
	if (parse_ll(s, 1, JOBS_MAX, &v, &why) < 0)
		die(status, "%s: '%s' is %s (want auto or an integer from 1 to %d)", name, s, why,
		    JOBS_MAX);
	return (int)v;
}

static void
read_options(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "acks", required_argument, NULL, 'a' },
		{ "rejects", required_argument, NULL, 'r' },
		{ "retry-max", required_argument, NULL, 'R' },
		{ "jobs", required_argument, NULL, 'j' },
		{ "merge", required_argument, NULL, 'M' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "copy-out", required_argument, NULL, 'C' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "check-config", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	const char *v;
	int ch;

	opt.retry_max = env_double("TBLLOAD_RETRY_MAX", opt.retry_max, 0, 1e9);
	if ((v = env_str("TBLLOAD_JOBS", NULL)) != NULL)
		opt.jobs = parse_jobs(v, "TBLLOAD_JOBS", EXIT_CONFIG);
	opt.merge = env_ll("TBLLOAD_MERGE", opt.merge, 0, 1000000);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":j:nhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			opt.acks = optarg;
			break;
		case 'r':
			opt.rejects = optarg;
			break;
		case 'R':
			opt.retry_max = opt_double("--retry-max", optarg, 0, 1e9);
			break;
		case 'j':
			opt.jobs = parse_jobs(optarg, "option --jobs", EXIT_USAGE);
			break;
		case 'M':
			opt.merge = opt_ll("--merge", optarg, 0, 1000000);
			break;
		case 'n':
			opt.dry_run = true;
			break;
		case 'K':
			opt.check_config = true;
			break;
		case 'C':
			opt.copy_out = optarg;
			break;
		case 'L':
			opt.max_line = (size_t)opt_ll("--max-line", optarg, 1024, 1LL << 31);
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
	if (opt.dry_run && opt.copy_out)
		die(EXIT_USAGE, "--dry-run and --copy-out exclude each other");
}

int
main(int argc, char *argv[])
{
	double t0;
	int status;

	log_init("tblload");
	read_options(argc, argv);
	if (opt.check_config) {
		/* The connection settings are read (and refused) here. */
		db_close(db_new());
		return EXIT_OK;
	}
	ignore_sigpipe();
	catch_stop_signals();
	settle_open(opt.acks, opt.rejects);
	t0 = now_mono();
	if (opt.dry_run || opt.copy_out != NULL)
		status = load_offline(opt.copy_out, opt.max_line);
	else
		status = load_db(opt.jobs, opt.merge, opt.max_line, opt.retry_max);
	settle_close();
	counts_report_end(t0);
	/* Rejected messages are data errors, unless the input was cut short. */
	if (status == EXIT_OK && counts_rejected() > 0)
		status = EXIT_DATA;
	return status;
}
