/* Command-line helpers shared by the tools. */
#ifndef TBL_CLI_H
#define TBL_CLI_H

#include <signal.h>
#include <stdnoreturn.h>

/*
 * Report what getopt_long rejected and exit 64, as one JSON log line (so
 * that stderr stays JSON). Use with opterr = 0 and an optstring that starts
 * with ':'; ch is what getopt_long returned ('?' or ':').
 */
noreturn void die_bad_option(int ch, char *const argv[]);
/* An operand the tool does not take: exit 64 with a JSON log line. */
noreturn void die_operand(const char *arg);

/* Print a tool's usage text on stdout (checked) and exit 0. */
noreturn void print_usage(const char *text);

/* SIGTERM and SIGINT only set stop_signal (to the signal's number); the
 * tools look at it in their loops. */
extern volatile sig_atomic_t stop_signal;
void	catch_stop_signals(void);
/*
 * --supervisor PID: get SIGTERM when process PID, which must be the
 * parent, ends (also by kill -9). Call after the SIGTERM handler is set.
 */
void	stop_with_parent(long long parent);

#endif
