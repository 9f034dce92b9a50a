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


/* The longest secret read from a *_FILE variable, in bytes. */
#define SECRET_MAX	65536

/*
 * A secret from the environment, as an allocated string: the value of name,
 * or the contents of the file that file_var (name with "_FILE": the
 * container convention for secrets) names, without one trailing newline.
 * NULL when neither is set (an empty name is returned as it is). Both set,
 * or a file that is not a regular file, cannot be read, is larger than
 * SECRET_MAX or holds a NUL byte: exit 78 naming the variable and the
 * path, never the contents.
 */
char	*env_secret(const char *name, const char *file_var);
/* Wipe and free a secret. */
void	 secret_free(char *);
/* Replace each occurrence of secret in s (a message) with "***". Secrets
 * shorter than three bytes are left: they would mangle any message. */
void	 redact(char *s, const char *secret);

/* Peak resident set size of this process, in kilobytes. */
long	 peak_rss_kb(void);
/* CPU seconds this process used, user and system. */
double	 cpu_seconds(void);
#endif
