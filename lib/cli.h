/* Command-line helpers shared by the tools. */
#ifndef TBL_CLI_H
#define TBL_CLI_H

#include <stdnoreturn.h>

/*
 * Report what getopt_long rejected and exit 64, as one JSON log line (so
 * that stderr stays JSON). Use with opterr = 0 and an optstring that starts
 * with ':'; ch is what getopt_long returned ('?' or ':').
 */
noreturn void die_bad_option(int ch, char *const argv[]);
/* An operand the tool does not take: exit 64 with a JSON log line. */
noreturn void die_operand(const char *arg);

#endif
