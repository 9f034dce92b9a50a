#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "buf.h"
#include "envelope.h"
#include "report.h"
#include "util.h"

#define MAX_STATE_FILE	(64 * 1024)	/* a state file is a few hundred bytes */
#define RECENT		10.0		/* a message this recent: "Processing <type>" */
#define MAX_LABEL	64

enum { SUP, DRAIN, LOAD, NFILES };
static const char *const file_names[NFILES] = { "tableinator", "amqp-drain", "tblload" };

enum health { H_STARTING, H_HEALTHY, H_UNHEALTHY };
static const char *const health_names[] = { "starting", "healthy", "unhealthy" };

/* One state file as read for this request. */
struct view {
	struct json_object *o;		/* the object, or NULL */
	bool		 present;	/* the file exists (even if unusable) */
	char		 error[128];	/* why it cannot be used, or "" */
	double		 heartbeat;	/* 0 when missing */
	const char	*state;		/* "" when missing */
};

struct snapshot {
	double		 now;		/* wall clock */
	char		 dir_error[128];
	struct view	 f[NFILES];
	const char	*sv;		/* the supervisor's state, "" without one */
	double		 since;		/* the current pipeline's start, or 0 */
};

struct verdict {
	enum health	 status;
	bool		 stuck;
	const char	*task;		/* NULL is JSON null */
	char		 task_buf[64];
	struct buf	 problems;	/* JSON strings, comma-separated */
};

void
report_init(struct report_cfg *cfg, const char *dir, double stuck_check_interval)
{
	int i;

	cfg->dir = xstrdup(dir);
	for (i = 0; i < NFILES; i++)
		cfg->path[i] = xasprintf("%s/%s.json", dir, file_names[i]);
	cfg->stale_after = 2 * stuck_check_interval;
}

void
report_free(struct report_cfg *cfg)
{
	int i;

	for (i = 0; i < NFILES; i++)
		free(cfg->path[i]);
	free(cfg->dir);
}

/* ---- reading the state files ------------------------------------------- */

static void
parse_view(struct view *v, const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if ((tok = json_tokener_new_ex(16)) == NULL) {
		snprintf(v->error, sizeof(v->error), "out of memory");
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o == NULL) {
		snprintf(v->error, sizeof(v->error), "not JSON: %s",
		    json_tokener_get_error(tok) == json_tokener_continue ? "truncated" :
		    json_tokener_error_desc(json_tokener_get_error(tok)));
		json_tokener_free(tok);
		return;
	}
	for (end = json_tokener_get_parse_end(tok); end < len && strchr(" \t\r\n", text[end]); end++)
		;
	json_tokener_free(tok);
	if (end < len || !json_object_is_type(o, json_type_object)) {
		snprintf(v->error, sizeof(v->error), "not one JSON object");
		json_object_put(o);
		return;
	}
	v->o = o;
}

/*
 * Read one state file. The writers replace it by rename, so it is always
 * complete; it is opened without following a link and without blocking
 * (a FIFO put there cannot hang the server), and must be a small file.
 */
static void
load_view(const char *path, struct view *v)
{
	struct stat st;
	char *text;
	size_t len = 0;
	ssize_t n = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if ((v->present = errno != ENOENT))
			snprintf(v->error, sizeof(v->error), "%s", strerror(errno));
		return;
	}
	v->present = true;
	if (fstat(fd, &st) < 0)
		snprintf(v->error, sizeof(v->error), "%s", strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(v->error, sizeof(v->error), "not a regular file");
	else {
		text = xmalloc(MAX_STATE_FILE + 1);
		while (len <= MAX_STATE_FILE &&
		    (n = read_some(fd, text + len, MAX_STATE_FILE + 1 - len)) > 0)
			len += (size_t)n;
		if (n < 0)
			snprintf(v->error, sizeof(v->error), "%s", strerror(errno));
		else if (len > MAX_STATE_FILE)
			snprintf(v->error, sizeof(v->error), "larger than %d bytes", MAX_STATE_FILE);
		else
			parse_view(v, text, len);
		free(text);
	}
	(void)close(fd);
}

/* A member that is a finite number. */
static bool
num(struct json_object *o, const char *key, double *out)
{
	struct json_object *m;
	double d;

	if (o == NULL || !json_object_object_get_ex(o, key, &m) ||
	    (!json_object_is_type(m, json_type_int) && !json_object_is_type(m, json_type_double)))
		return false;
	d = json_object_get_double(m);
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

static double
num_or(struct json_object *o, const char *key, double def)
{
	double d;

	return num(o, key, &d) ? d : def;
}

static struct json_object *
member(struct json_object *o, const char *key, json_type type)
{
	struct json_object *m;

	if (o == NULL || !json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, type))
		return NULL;
	return m;
}

static const char *
str(struct json_object *o, const char *key)
{
	struct json_object *m = member(o, key, json_type_string);

	return m != NULL ? json_object_get_string(m) : NULL;
}

static size_t
nitems(struct json_object *arr)
{
	return arr != NULL ? json_object_array_length(arr) : 0;
}

/* Does the array hold the string name (exactly, no embedded NUL)? */
static bool
listed(struct json_object *arr, const char *name)
{
	struct json_object *e;
	size_t i, n;

	if (arr == NULL)
		return false;
	n = json_object_array_length(arr);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(arr, i);
		if (json_object_is_type(e, json_type_string) &&
		    (size_t)json_object_get_string_len(e) == strlen(name) &&
		    strcmp(json_object_get_string(e), name) == 0)
			return true;
	}
	return false;
}

/* How many types amqp-drain lists as complete. */
static int
ncompleted(struct json_object *drain)
{
	struct json_object *done = member(drain, "completed_files", json_type_array);
	int t, n = 0;

	for (t = 0; t < NTYPES; t++)
		n += listed(done, data_types[t]);
	return n;
}

/* tblload's db_ok: 1 when it reaches PostgreSQL, 0 when not, -1 unknown. */
static int
db_reachable(struct json_object *load)
{
	struct json_object *m = member(load, "db_ok", json_type_boolean);

	return m != NULL ? json_object_get_boolean(m) != 0 : -1;
}

static void
snapshot_load(const struct report_cfg *cfg, struct snapshot *s)
{
	struct stat st;
	const char *state;
	int i;

	memset(s, 0, sizeof(*s));
	s->now = now_wall();
	if (stat(cfg->dir, &st) < 0)
		snprintf(s->dir_error, sizeof(s->dir_error), "%s", strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		snprintf(s->dir_error, sizeof(s->dir_error), "not a directory");
	for (i = 0; i < NFILES; i++) {
		load_view(cfg->path[i], &s->f[i]);
		s->f[i].heartbeat = num_or(s->f[i].o, "heartbeat", 0);
		state = str(s->f[i].o, "state");
		s->f[i].state = state != NULL ? state : "";
	}
	s->sv = s->f[SUP].state;
	if (strcmp(s->sv, "running") == 0)
		s->since = num_or(s->f[SUP].o, "pipeline_started", 0);
}

static void
snapshot_free(struct snapshot *s)
{
	int i;

	for (i = 0; i < NFILES; i++)
		json_object_put(s->f[i].o);
}

/* ---- the verdict ------------------------------------------------------- */

static void
problem(struct verdict *v, const char *fmt, ...)
{
	va_list ap;
	char msg[256];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (v->problems.len > 0)
		buf_addc(&v->problems, ',');
	buf_json_str_lossy(&v->problems, msg, strlen(msg));
}

/*
 * Was this file written by the current pipeline? While the supervisor runs
 * one, a file older than its start is what the last pipeline left.
 */
static bool
current(const struct snapshot *s, int i)
{
	return s->f[i].heartbeat >= s->since;
}

/* Seconds since the file was written; a new pipeline gets its full grace. */
static double
age(const struct snapshot *s, int i)
{
	return s->now - fmax(s->f[i].heartbeat, s->since);
}

static bool
is(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}

/* amqp-drain has stopped consuming although work remains (the original's STUCK). */
static bool
consumers_dead(const struct snapshot *s)
{
	const struct view *d = &s->f[DRAIN];
	struct json_object *counts;
	double n, total = 0;
	int t;

	if (is(s->sv, "restarting"))
		return true;
	if (!(is(s->sv, "running") || s->f[SUP].o == NULL) || d->o == NULL || !current(s, DRAIN) ||
	    !(is(d->state, "consuming") || is(d->state, "draining")))
		return false;
	if (nitems(member(d->o, "active_consumers", json_type_array)) > 0)
		return false;
	counts = member(d->o, "message_counts", json_type_object);
	for (t = 0; t < NTYPES; t++)
		if (num(counts, data_types[t], &n))
			total += n;
	return ncompleted(d->o) < NTYPES && total > 0;
}

static void
check_stage(const struct report_cfg *cfg, const struct snapshot *s, struct verdict *v, int i)
{
	const struct view *f = &s->f[i];

	if (f->o == NULL)
		return;
	/* A stage that exited normally is silent, unless a pipeline should run. */
	if (is(f->state, "stopped") && !is(s->sv, "running"))
		return;
	if (f->heartbeat <= 0)
		problem(v, "%s: no heartbeat in its state file", file_names[i]);
	else if (age(s, i) > cfg->stale_after)
		problem(v, "%s: no heartbeat for %.0f s (limit %.0f s), last state '%s'",
		    file_names[i], age(s, i), cfg->stale_after, f->state);
}

static void
evaluate(const struct report_cfg *cfg, const struct snapshot *s, struct verdict *v)
{
	const struct view *sup = &s->f[SUP], *drain = &s->f[DRAIN], *load = &s->f[LOAD];
	struct json_object *lmt;
	double t, outage;
	bool any = false;
	int i;

	memset(v, 0, sizeof(*v));
	if (s->dir_error[0])
		problem(v, "state directory: %s", s->dir_error);
	for (i = 0; i < NFILES; i++) {
		any |= s->f[i].present;
		if (s->f[i].error[0])
			problem(v, "%s.json: %s", file_names[i], s->f[i].error);
	}
	check_stage(cfg, s, v, SUP);
	if ((!any || is(s->sv, "starting")) && v->problems.len == 0) {
		v->status = H_STARTING;
		v->task = str(sup->o, "current_task");
		if (v->task == NULL)
			v->task = "Initializing PostgreSQL connection";
		return;
	}
	if (!is(s->sv, "starting")) {
		check_stage(cfg, s, v, DRAIN);
		check_stage(cfg, s, v, LOAD);
		if ((v->stuck = consumers_dead(s)))
			problem(v, is(s->sv, "restarting") ?
			    "tableinator: the pipeline died, restart %.0f pending" :
			    "amqp-drain: no consumers left while work remains",
			    num_or(sup->o, "restarts", 0) + 1);
		if (load->o != NULL && current(s, LOAD) && is(load->state, "retrying") &&
		    db_reachable(load->o) == 0) {
			outage = num(load->o, "outage_since", &t) ? s->now - t : 0;
			problem(v, "tblload: PostgreSQL unreachable for %.0f s", outage);
		}
	}
	v->status = v->problems.len > 0 ? H_UNHEALTHY : H_HEALTHY;

	/* current_task, by the original's rules. */
	lmt = member(drain->o, "last_message_time", json_type_object);
	for (i = 0; i < NTYPES && v->task == NULL; i++)
		if (num(lmt, data_types[i], &t) && t > 0 && s->now - t < RECENT) {
			snprintf(v->task_buf, sizeof(v->task_buf), "Processing %s", data_types[i]);
			v->task = v->task_buf;
		}
	if (v->task == NULL &&
	    nitems(member(drain->o, "active_consumers", json_type_array)) > 0)
		v->task = "Idle - waiting for messages";
	if (v->stuck)
		v->task = "STUCK - consumers died, awaiting recovery";
	if (v->task == NULL)
		v->task = str(sup->o, "current_task");
}

/* ---- the supervisor's view ------------------------------------------------ */

/* A state member as a shell-safe word: [a-z_], at most 32 of them. */
static const char *
word(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz_");

	return n > 0 && n <= 32 && s[n] == '\0' ? s : "unknown";
}

/* A count or an age as a whole number from 0 to 10^15. */
static long long
whole(double v)
{
	if (!isfinite(v) || v < 0)
		return 0;
	return v > 1e15 ? 1000000000000000LL : (long long)v;
}

void
report_status(const struct report_cfg *cfg, struct buf *b)
{
	static const char *const prefix[NFILES] = { "supervisor", "drain", "load" };
	struct snapshot s;
	struct verdict v;
	const struct view *f;
	int i;

	snapshot_load(cfg, &s);
	evaluate(cfg, &s, &v);
	buf_printf(b, "health=%s\n", health_names[v.status]);
	for (i = DRAIN; i <= LOAD; i++) {
		f = &s.f[i];
		if (f->o == NULL)
			continue;
		buf_printf(b, "%s_state=%s\n", prefix[i], word(f->state));
		if (f->heartbeat > 0)
			buf_printf(b, "%s_age=%lld\n", prefix[i], whole(s.now - f->heartbeat));
	}
	if ((f = &s.f[DRAIN])->o != NULL) {
		buf_printf(b, "drain_unsettled=%lld\n", whole(num_or(f->o, "unsettled", 0)));
		buf_printf(b, "drain_settled=%lld\n", whole(num_or(f->o, "acked", 0)) +
		    whole(num_or(f->o, "rejected", 0)));
	}
	buf_free(&v.problems);
	snapshot_free(&s);
}

/* ---- output helpers ----------------------------------------------------- */

/* A number in the shortest form that reads back the same. */
static void
put_num(struct buf *b, double v)
{
	char s[40];
	int p;

	if (!isfinite(v))
		v = 0;
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		buf_printf(b, "%.0f", v);
		return;
	}
	for (p = 6; p < 17; p++) {
		snprintf(s, sizeof(s), "%.*g", p, v);
		if (strtod(s, NULL) == v)
			break;
	}
	if (p == 17)
		snprintf(s, sizeof(s), "%.17g", v);
	buf_adds(b, s);
}

/* Local time with microseconds and the UTC offset, e.g. 2026-11-29T16:00:00.123456+00:00. */
static void
put_timestamp(struct buf *b, double now)
{
	time_t sec = (time_t)now;
	long us = (long)((now - (double)sec) * 1e6), off;
	struct tm tm;
	char s[32];

	if (localtime_r(&sec, &tm) == NULL || strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		buf_adds(b, "null");
		return;
	}
	off = tm.tm_gmtoff;
	buf_printf(b, "\"%s.%06ld%c%02ld:%02ld\"", s, us, off < 0 ? '-' : '+',
	    labs(off) / 3600, labs(off) % 3600 / 60);
}

/* {"artists":N,...} from an object of numbers; a missing number is 0. */
static void
put_by_type(struct buf *b, struct json_object *o)
{
	int t;

	buf_addc(b, '{');
	for (t = 0; t < NTYPES; t++) {
		buf_printf(b, "%s\"%s\":", t ? "," : "", data_types[t]);
		put_num(b, num_or(o, data_types[t], 0));
	}
	buf_addc(b, '}');
}

/* The known types listed in arr, in the original's order. */
static void
put_types(struct buf *b, struct json_object *arr)
{
	const char *sep = "";
	int t;

	buf_addc(b, '[');
	for (t = 0; t < NTYPES; t++)
		if (listed(arr, data_types[t])) {
			buf_printf(b, "%s\"%s\"", sep, data_types[t]);
			sep = ",";
		}
	buf_addc(b, ']');
}

static void
put_str_or_null(struct buf *b, const char *s)
{
	if (s == NULL)
		buf_adds(b, "null");
	else
		buf_json_str_lossy(b, s, strlen(s));
}

/* ---- /health ------------------------------------------------------------ */

unsigned int
report_health(const struct report_cfg *cfg, struct buf *b)
{
	struct snapshot s;
	struct verdict v;
	struct json_object *d, *l;
	double t;
	int i, done, reachable;

	snapshot_load(cfg, &s);
	evaluate(cfg, &s, &v);
	d = s.f[DRAIN].o;
	l = s.f[LOAD].o;
	done = ncompleted(d);

	buf_printf(b, "{\"status\":\"%s\",\"service\":\"tableinator\",\"current_task\":",
	    health_names[v.status]);
	put_str_or_null(b, v.task);
	buf_adds(b, ",\"progress\":");
	put_num(b, done / (double)NTYPES);
	buf_adds(b, ",\"message_counts\":");
	put_by_type(b, member(d, "message_counts", json_type_object));
	buf_adds(b, ",\"last_message_time\":");
	put_by_type(b, member(d, "last_message_time", json_type_object));
	buf_adds(b, ",\"active_consumers\":");
	put_types(b, member(d, "active_consumers", json_type_array));
	buf_adds(b, ",\"completed_files\":");
	put_types(b, member(d, "completed_files", json_type_array));
	buf_adds(b, ",\"timestamp\":");
	put_timestamp(b, s.now);

	/* Beyond the original: why, and what each part last said. */
	buf_adds(b, ",\"problems\":[");
	if (v.problems.len > 0)
		buf_add(b, v.problems.p, v.problems.len);
	buf_adds(b, "],\"pipeline\":{");
	for (i = 0; i < NFILES; i++) {
		buf_printf(b, "%s\"%s\":", i ? "," : "", file_names[i]);
		if (s.f[i].o == NULL) {
			buf_adds(b, "null");
			continue;
		}
		buf_adds(b, "{\"state\":");
		put_str_or_null(b, str(s.f[i].o, "state"));
		buf_printf(b, ",\"heartbeat_age\":%.3f}", s.now - s.f[i].heartbeat);
	}
	buf_adds(b, "},\"database\":{\"reachable\":");
	reachable = db_reachable(l);
	buf_adds(b, reachable < 0 ? "null" : reachable ? "true" : "false");
	buf_adds(b, ",\"outage_seconds\":");
	if (num(l, "outage_since", &t))
		buf_printf(b, "%.3f", s.now - t);
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"last_commit\":");
	put_num(b, num_or(l, "last_commit", 0));
	buf_adds(b, "}}\n");

	buf_free(&v.problems);
	snapshot_free(&s);
	return v.status == H_UNHEALTHY ? 503 : 200;
}

/* ---- /metrics ----------------------------------------------------------- */

static void
family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample; labels is the text between the braces, or NULL. */
static void
sample(struct buf *b, const char *name, const char *labels, double v)
{
	buf_adds(b, name);
	if (labels != NULL)
		buf_printf(b, "{%s}", labels);
	buf_addc(b, ' ');
	put_num(b, v);
	buf_addc(b, '\n');
}

/* A family with one sample per type, from an object of numbers by type. */
static void
by_type(struct buf *b, const char *name, const char *type, const char *help,
    struct json_object *o)
{
	char label[32];
	int t;

	family(b, name, type, help);
	for (t = 0; t < NTYPES; t++) {
		snprintf(label, sizeof(label), "type=\"%s\"", data_types[t]);
		sample(b, name, label, num_or(o, data_types[t], 0));
	}
}

/* A gauge per type: 1 when the array lists the type, else 0. */
static void
listed_by_type(struct buf *b, const char *name, const char *help, struct json_object *arr)
{
	char label[32];
	int t;

	family(b, name, "gauge", help);
	for (t = 0; t < NTYPES; t++) {
		snprintf(label, sizeof(label), "type=\"%s\"", data_types[t]);
		sample(b, name, label, listed(arr, data_types[t]));
	}
}

/* A family with one sample, when the file has the number. */
static void
scalar(struct buf *b, const char *name, const char *type, const char *help,
    struct json_object *o, const char *key)
{
	double v;

	if (!num(o, key, &v))
		return;
	family(b, name, type, help);
	sample(b, name, NULL, v);
}

/* Queue names become label values only when they are plainly safe. */
static bool
safe_label(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-");

	return n > 0 && n <= MAX_LABEL && s[n] == '\0';
}

static void
supervisor_metrics(struct buf *b, struct json_object *o)
{
	struct json_object *depths = member(o, "queue_depths", json_type_object);
	char label[MAX_LABEL + 16];
	bool head = false;
	double v;

	scalar(b, "tableinator_restarts_total", "counter",
	    "Pipelines the supervisor restarted after a failure.", o, "restarts");
	if (depths == NULL)
		return;
	json_object_object_foreach(depths, key, val) {
		(void)val;
		if (is(key, "total") || !safe_label(key) || !num(depths, key, &v))
			continue;
		if (!head)
			family(b, "tableinator_queue_messages", "gauge",
			    "Messages waiting in each queue at the supervisor's last check.");
		head = true;
		snprintf(label, sizeof(label), "queue=\"%s\"", key);
		sample(b, "tableinator_queue_messages", label, v);
	}
}

static void
drain_metrics(struct buf *b, struct json_object *o)
{
	struct json_object *per;

	by_type(b, "tableinator_messages_consumed_total", "counter",
	    "Deliveries received per type by the running amqp-drain (since it started).",
	    member(o, "message_counts", json_type_object));
	by_type(b, "tableinator_last_message_timestamp_seconds", "gauge",
	    "When the last delivery of each type arrived (Unix time, 0 for never).",
	    member(o, "last_message_time", json_type_object));
	listed_by_type(b, "tableinator_consumer_active",
	    "1 while amqp-drain consumes the queue of this type.",
	    member(o, "active_consumers", json_type_array));
	listed_by_type(b, "tableinator_file_completed",
	    "1 once the extractor's file_complete for this type arrived.",
	    member(o, "completed_files", json_type_array));
	/* Per type when amqp-drain writes it (docs/state.md), else the totals. */
	if ((per = member(o, "acked_by_type", json_type_object)) != NULL)
		by_type(b, "tableinator_messages_acked_total", "counter",
		    "Deliveries acked per type after tblload committed them (since amqp-drain "
		    "started).", per);
	else
		scalar(b, "tableinator_messages_acked_total", "counter",
		    "Deliveries acked by the running amqp-drain (since it started).", o, "acked");
	if ((per = member(o, "rejected_by_type", json_type_object)) != NULL)
		by_type(b, "tableinator_messages_rejected_total", "counter",
		    "Deliveries rejected per type to the dead-letter queue (since amqp-drain "
		    "started).", per);
	else
		scalar(b, "tableinator_messages_rejected_total", "counter",
		    "Deliveries rejected to the dead-letter queue by the running amqp-drain.",
		    o, "rejected");
	scalar(b, "tableinator_messages_redelivered_total", "counter",
	    "Deliveries that arrived flagged as redelivered.", o, "redelivered");
	scalar(b, "tableinator_control_messages_total", "counter",
	    "Control messages (file_complete) received.", o, "controls");
	scalar(b, "tableinator_unsettled_deliveries", "gauge",
	    "Deliveries handed to the pipeline and not yet acked or rejected.", o, "unsettled");
}

/*
 * The batch duration histogram: tblload keeps one count per bucket; the
 * exposition format wants them cumulative, with +Inf equal to the count.
 * Bounds that are not strictly increasing numbers leave it out.
 */
static void
histogram(struct buf *b, struct json_object *h)
{
	static const char name[] = "tableinator_batch_duration_seconds";
	struct json_object *le = member(h, "le", json_type_array);
	struct json_object *counts = member(h, "counts", json_type_array);
	struct json_object *e;
	double bound[64], n[65], cum = 0, sum;
	size_t i, nb;

	if (le == NULL || counts == NULL || !num(h, "sum", &sum) ||
	    (nb = json_object_array_length(le)) >= NELEM(bound) ||
	    json_object_array_length(counts) != nb + 1)
		return;
	for (i = 0; i <= nb; i++) {
		e = json_object_array_get_idx(counts, i);
		if (!json_object_is_type(e, json_type_int) && !json_object_is_type(e, json_type_double))
			return;
		if (!isfinite(n[i] = json_object_get_double(e)) || n[i] < 0)
			return;
		if (i == nb)
			break;
		e = json_object_array_get_idx(le, i);
		if (!json_object_is_type(e, json_type_int) && !json_object_is_type(e, json_type_double))
			return;
		bound[i] = json_object_get_double(e);
		if (!isfinite(bound[i]) || (i > 0 && bound[i] <= bound[i - 1]))
			return;
	}
	family(b, name, "histogram", "Time to commit one batch (all its transactions).");
	for (i = 0; i <= nb; i++) {
		cum += n[i];
		buf_printf(b, "%s_bucket{le=\"", name);
		if (i < nb)
			put_num(b, bound[i]);
		else
			buf_adds(b, "+Inf");
		buf_adds(b, "\"} ");
		put_num(b, cum);
		buf_addc(b, '\n');
	}
	sample(b, "tableinator_batch_duration_seconds_sum", NULL, sum);
	sample(b, "tableinator_batch_duration_seconds_count", NULL, cum);
}

static void
load_metrics(struct buf *b, struct json_object *o)
{
	static const char *const outcomes[] = { "inserted", "updated", "unchanged", "rejected" };
	struct json_object *rows = member(o, "rows", json_type_object), *r;
	char label[64];
	size_t k;
	int t, reachable = db_reachable(o);

	family(b, "tableinator_rows_total", "counter",
	    "Records written by the running tblload, per type and outcome (since it started).");
	for (t = 0; t < NTYPES; t++) {
		r = member(rows, data_types[t], json_type_object);
		for (k = 0; k < NELEM(outcomes); k++) {
			snprintf(label, sizeof(label), "type=\"%s\",outcome=\"%s\"",
			    data_types[t], outcomes[k]);
			sample(b, "tableinator_rows_total", label, num_or(r, outcomes[k], 0));
		}
	}
	scalar(b, "tableinator_batches_total", "counter",
	    "Batches committed by the running tblload.", o, "batches");
	histogram(b, member(o, "batch_seconds", json_type_object));
	scalar(b, "tableinator_nul_removed_total", "counter",
	    "U+0000 characters removed from text columns.", o, "nul_removed");
	scalar(b, "tableinator_last_commit_timestamp_seconds", "gauge",
	    "When tblload last committed (Unix time, 0 for never).", o, "last_commit");
	if (reachable >= 0) {
		family(b, "tableinator_database_up", "gauge",
		    "1 while tblload reaches PostgreSQL.");
		sample(b, "tableinator_database_up", NULL, reachable);
	}
}

void
report_metrics(const struct report_cfg *cfg, struct buf *b)
{
	struct snapshot s;
	struct verdict v;
	char label[48];
	int i;

	snapshot_load(cfg, &s);
	evaluate(cfg, &s, &v);
	family(b, "tableinator_up", "gauge", "1 when /health says healthy, else 0.");
	sample(b, "tableinator_up", NULL, v.status == H_HEALTHY);
	family(b, "tableinator_health_status", "gauge",
	    "The /health status: 1 for the current one, 0 for the others.");
	for (i = 0; i < (int)NELEM(health_names); i++) {
		snprintf(label, sizeof(label), "status=\"%s\"", health_names[i]);
		sample(b, "tableinator_health_status", label, (int)v.status == i);
	}
	for (i = 0; i < NFILES && s.f[i].o == NULL; i++)
		;
	if (i < NFILES)
		family(b, "tableinator_heartbeat_age_seconds", "gauge",
		    "Seconds since each part of the pipeline last wrote its state file.");
	for (; i < NFILES; i++)
		if (s.f[i].o != NULL) {
			snprintf(label, sizeof(label), "stage=\"%s\"", file_names[i]);
			sample(b, "tableinator_heartbeat_age_seconds", label,
			    round((s.now - s.f[i].heartbeat) * 1000) / 1000);
		}
	if (s.f[SUP].o != NULL)
		supervisor_metrics(b, s.f[SUP].o);
	if (s.f[DRAIN].o != NULL)
		drain_metrics(b, s.f[DRAIN].o);
	if (s.f[LOAD].o != NULL)
		load_metrics(b, s.f[LOAD].o);
	buf_free(&v.problems);
	snapshot_free(&s);
}
