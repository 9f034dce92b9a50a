#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "json.h"
#include "log.h"
#include "util.h"

static const char *level_names[] = { "debug", "info", "warning", "error", "critical" };
static enum log_level min_level = LOG_INFO;
static char logger[64] = "tableinator";

struct logrec {
	struct buf b;
};
/* One record per thread: tblhealth logs from libmicrohttpd's thread. A
 * thread's buffer is freed when the thread ends, through a key destructor. */
static _Thread_local struct logrec rec;
static pthread_key_t rec_key;
static pthread_once_t rec_once = PTHREAD_ONCE_INIT;

static void
rec_free(void *p)
{
	buf_free(&((struct logrec *)p)->b);
}

static void
rec_key_create(void)
{
	if (pthread_key_create(&rec_key, rec_free) != 0)
		rec_key = (pthread_key_t)-1;
}

void
log_init(const char *tool)
{
	const char *v;
	size_t i;

	progname = tool;
	snprintf(logger, sizeof(logger), "tableinator.%s", tool);
	if ((v = getenv("LOG_LEVEL")) == NULL || *v == '\0')
		return;
	for (i = 0; i < NELEM(level_names); i++)
		if (strcasecmp(v, level_names[i]) == 0) {
			min_level = (enum log_level)i;
			return;
		}
	if (strcasecmp(v, "warn") == 0) {
		min_level = LOG_WARNING;
		return;
	}
	if (strcasecmp(v, "fatal") == 0) {
		min_level = LOG_CRITICAL;
		return;
	}
	die(EXIT_CONFIG, "LOG_LEVEL: unknown level (want DEBUG, INFO, WARNING, ERROR or CRITICAL)");
}

int
log_enabled(enum log_level level)
{
	return level >= min_level;
}

static void
add_key(struct logrec *r, const char *key)
{
	/* The comma by hand: a log_json value may end in anything. */
	buf_addc(&r->b, ',');
	json_key(&r->b, key);
}

static struct logrec *
log_vbegin(enum log_level level, int force, const char *fmt, va_list ap)
{
	struct logrec *r = &rec;
	struct timespec ts;
	struct tm tm;
	char stamp[40], *event = NULL;
	int n;

	if (!force && !log_enabled(level))
		return NULL;
	if (r->b.p == NULL && pthread_once(&rec_once, rec_key_create) == 0 &&
	    rec_key != (pthread_key_t)-1)
		(void)pthread_setspecific(rec_key, r);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - (size_t)n, ".%06ldZ", ts.tv_nsec / 1000);
	buf_reset(&r->b);
	buf_adds(&r->b, "{\"timestamp\":\"");
	buf_adds(&r->b, stamp);
	buf_adds(&r->b, "\",\"level\":\"");
	buf_adds(&r->b, level_names[level]);
	buf_adds(&r->b, "\",\"logger\":\"");
	buf_adds(&r->b, logger);
	buf_adds(&r->b, "\",\"event\":");
	if (vasprintf(&event, fmt, ap) < 0)
		event = NULL;
	if (event != NULL)
		json_put_str_lossy(&r->b, event, strlen(event));
	else
		buf_adds(&r->b, "\"(out of memory)\"");
	free(event);
	return r;
}

struct logrec *
log_begin(enum log_level level, const char *fmt, ...)
{
	struct logrec *r;
	va_list ap;

	va_start(ap, fmt);
	r = log_vbegin(level, 0, fmt, ap);
	va_end(ap);
	return r;
}

void
log_str(struct logrec *r, const char *key, const char *val)
{
	if (r == NULL)
		return;
	if (val == NULL) {
		add_key(r, key);
		buf_adds(&r->b, "null");
		return;
	}
	log_strn(r, key, val, strlen(val));
}

void
log_strn(struct logrec *r, const char *key, const char *val, size_t n)
{
	if (r == NULL)
		return;
	add_key(r, key);
	json_put_str_lossy(&r->b, val, n);
}

void
log_jstr(struct logrec *r, const char *key, struct jstr s)
{
	struct buf plain = { 0 };

	if (r == NULL)
		return;
	jstr_decode(&plain, s);
	log_strn(r, key, plain.p != NULL ? plain.p : "", plain.len);
	buf_free(&plain);
}

void
log_int(struct logrec *r, const char *key, long long v)
{
	if (r == NULL)
		return;
	add_key(r, key);
	buf_printf(&r->b, "%lld", v);
}

void
log_num(struct logrec *r, const char *key, double v)
{
	if (r == NULL)
		return;
	add_key(r, key);
	if (v != v || v > 1e300 || v < -1e300)
		buf_adds(&r->b, "null");
	else
		buf_printf(&r->b, "%.6g", v);
}

void
log_bool(struct logrec *r, const char *key, int v)
{
	if (r == NULL)
		return;
	add_key(r, key);
	buf_adds(&r->b, v ? "true" : "false");
}

void
log_json(struct logrec *r, const char *key, const char *json, size_t n)
{
	if (r == NULL)
		return;
	add_key(r, key);
	buf_add(&r->b, json, n);
}

void
log_end(struct logrec *r)
{
	if (r == NULL)
		return;
	buf_add(&r->b, "}\n", 2);
	/* One write per line, so lines of concurrent writers never interleave. */
	(void)write_all(STDERR_FILENO, r->b.p, r->b.len);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	struct logrec *r;
	va_list ap;

	va_start(ap, fmt);
	r = log_vbegin(level, 0, fmt, ap);
	va_end(ap);
	log_end(r);
}

noreturn void
die(int status, const char *fmt, ...)
{
	struct logrec *r;
	va_list ap;

	va_start(ap, fmt);
	r = log_vbegin(LOG_ERROR, 1, fmt, ap);
	va_end(ap);
	log_int(r, "exit_status", status);
	log_end(r);
	exit(status);
}
