/* Small helpers shared by every tool: exit statuses, allocation, I/O. */
#ifndef TBL_UTIL_H
#define TBL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdnoreturn.h>
#include <sys/types.h>

/* Exit statuses, the same for every tool (documented in each man page). */
enum {
	EXIT_OK = 0,
	EXIT_DATA = 1,		/* some input was rejected; everything else done */
	EXIT_USAGE = 64,	/* bad command line */
	EXIT_UNAVAILABLE = 69,	/* a service could not be reached at all */
	EXIT_SOFTWARE = 70,	/* internal error (a bug) */
	EXIT_TEMPFAIL = 75,	/* temporary failure: retry later */
	EXIT_CONFIG = 78	/* bad configuration (environment, password) */
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

extern const char *progname;

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xstrndup(const char *, size_t);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Write all of buf, retrying on EINTR and short writes; -1 with errno on error. */
int	 write_all(int, const void *, size_t);
/* Read up to n bytes, retrying on EINTR; returns bytes read, 0 at EOF, -1 on error. */
ssize_t	 read_some(int, void *, size_t);

/* Monotonic and wall clock, in seconds. */
double	 now_mono(void);
double	 now_wall(void);
void	 sleep_seconds(double);

/* Print the tool's version line to stdout and exit 0. */
noreturn void print_version(void);

/* Make writes to a closed pipe fail with EPIPE instead of killing the process. */
void	 ignore_sigpipe(void);


/* Peak resident set size of this process, in kilobytes. */
long	 peak_rss_kb(void);
#endif
