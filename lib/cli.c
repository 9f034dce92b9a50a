#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "util.h"

noreturn void
die_bad_option(int ch, char *const argv[])
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	char shortopt[3] = { '-', (char)optopt, '\0' };

	/* For a short option in a bundle such as -Vx, name the letter. */
	if (strncmp(arg, "--", 2) != 0 && optopt > 0 && optopt < 128)
		arg = shortopt;
	if (ch == ':')
		die(EXIT_USAGE, "option '%s' needs an argument (see %s --help)",
		    arg, progname);
	die(EXIT_USAGE, "unknown or malformed option '%s' (see %s --help)",
	    arg, progname);
}

noreturn void
die_operand(const char *arg)
{
	die(EXIT_USAGE, "unexpected argument '%s' (see %s --help)", arg, progname);
}

noreturn void
print_usage(const char *text)
{
	if (fputs(text, stdout) == EOF || fflush(stdout) == EOF)
		exit(EXIT_TEMPFAIL);
	exit(EXIT_OK);
}

volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	stop_signal = sig;
}

void
catch_stop_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		die(EXIT_SOFTWARE, "sigaction: %s", strerror(errno));
}

/*
 * PR_SET_PDEATHSIG sends SIGTERM when the parent ends, however it ends
 * (kill -9 included), so a supervised stage never outlives its supervisor
 * for long. The parent may have ended before the call: then getppid() is
 * no longer its pid, and the signal is raised here.
 */
void
stop_with_parent(long long parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		die(EXIT_SOFTWARE, "prctl PR_SET_PDEATHSIG: %s", strerror(errno));
	if ((long long)getppid() != parent && raise(SIGTERM) != 0)
		die(EXIT_SOFTWARE, "raise: %s", strerror(errno));
}
