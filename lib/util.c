#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "num.h"
#include "util.h"

const char *progname = "tableinator";

static noreturn void
out_of_memory(size_t n)
{
	die(EXIT_TEMPFAIL, "out of memory allocating %zu bytes", n);
}

void *
xmalloc(size_t n)
{
	void *p;

	if ((p = malloc(n == 0 ? 1 : n)) == NULL)
		out_of_memory(n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size)) == NULL)
		out_of_memory(n * size);
	return p;
}

void *
xrealloc(void *old, size_t n)
{
	void *p;

	if ((p = realloc(old, n == 0 ? 1 : n)) == NULL)
		out_of_memory(n);
	return p;
}

char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
	char *p;

	p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		out_of_memory(strlen(fmt));
	return p;
}

int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t
read_some(int fd, void *buf, size_t n)
{
	ssize_t r;

	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

double
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
sleep_seconds(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

noreturn void
print_version(void)
{
	if (printf("%s (tableinator) %s\n", progname, TBL_VERSION) < 0 ||
	    fflush(stdout) == EOF)
		exit(EXIT_TEMPFAIL);
	exit(EXIT_OK);
}

void
ignore_sigpipe(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		die(EXIT_SOFTWARE, "sigaction SIGPIPE: %s", strerror(errno));
}

long
peak_rss_kb(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return ru.ru_maxrss;
}

double
cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

char *
env_secret(const char *name, const char *fname)
{
	const char *v = getenv(name), *path;
	char *buf, *out;
	struct stat st;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((path = env_str(fname, NULL)) == NULL)
		return v == NULL ? NULL : xstrdup(v);
	if (v != NULL && *v != '\0')
		die(EXIT_CONFIG, "%s and %s are both set: set one of them", name, fname);
	/* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
		die(EXIT_CONFIG, "%s: cannot open %s: %s", fname, path, strerror(errno));
	if (fstat(fd, &st) < 0)
		die(EXIT_CONFIG, "%s: cannot stat %s: %s", fname, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die(EXIT_CONFIG, "%s: %s is not a regular file", fname, path);
	buf = xmalloc(SECRET_MAX + 2);
	/* One byte more than allowed tells a file that is too large. */
	while (len <= SECRET_MAX && (n = read_some(fd, buf + len, SECRET_MAX + 1 - len)) != 0) {
		if (n < 0)
			die(EXIT_CONFIG, "%s: cannot read %s: %s", fname, path, strerror(errno));
		len += (size_t)n;
	}
	(void)close(fd);
	if (len > SECRET_MAX)
		die(EXIT_CONFIG, "%s: %s is larger than %d bytes", fname, path, SECRET_MAX);
	if (memchr(buf, '\0', len) != NULL)
		die(EXIT_CONFIG, "%s: %s holds a NUL byte", fname, path);
	/* echo and most editors end the file with a newline (CRLF on Windows). */
	if (len > 0 && buf[len - 1] == '\n' && --len > 0 && buf[len - 1] == '\r')
		len--;
	out = xstrndup(buf, len);
	explicit_bzero(buf, SECRET_MAX + 1);
	free(buf);
	return out;
}

void
secret_free(char *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void
redact(char *s, const char *secret)
{
	size_t n = secret == NULL ? 0 : strlen(secret);
	char *p;

	if (n < 3)
		return;
	while ((p = strstr(s, secret)) != NULL) {
		memcpy(p, "***", 3);
		memmove(p + 3, p + n, strlen(p + n) + 1);
		s = p + 3;
	}
}
