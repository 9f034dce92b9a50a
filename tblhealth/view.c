/*
 * The state files as one request sees them (docs/state.md), and the
 * verdict: healthy, unhealthy (and why) or starting. Files are read afresh
 * for every request, never by a name a client sent.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "buf.h"
#include "envelope.h"
#include "util.h"
#include "view.h"

#define MAX_STATE_FILE	(64 * 1024)	/* a state file is a few hundred bytes */
#define RECENT		10.0		/* a message this recent: "Processing <type>" */

const char *const file_names[NFILES] = { "tableinator", "amqp-drain", "tblload" };
const char *const health_names[3] = { "starting", "healthy", "unhealthy" };

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
bool
sv_num(struct json_object *o, const char *key, double *out)
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

double
sv_num_or(struct json_object *o, const char *key, double def)
{
	double d;

	return sv_num(o, key, &d) ? d : def;
}

struct json_object *
sv_member(struct json_object *o, const char *key, json_type type)
{
	struct json_object *m;

	if (o == NULL || !json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, type))
		return NULL;
	return m;
}

const char *
sv_str(struct json_object *o, const char *key)
{
	struct json_object *m = sv_member(o, key, json_type_string);

	return m != NULL ? json_object_get_string(m) : NULL;
}

size_t
sv_nitems(struct json_object *arr)
{
	return arr != NULL ? json_object_array_length(arr) : 0;
}

/* Does the array hold the string name (exactly, no embedded NUL)? */
bool
sv_listed(struct json_object *arr, const char *name)
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
int
sv_ncompleted(struct json_object *drain)
{
	struct json_object *done = sv_member(drain, "completed_files", json_type_array);
	int t, n = 0;

	for (t = 0; t < NTYPES; t++)
		n += sv_listed(done, data_types[t]);
	return n;
}

/* tblload's db_ok: 1 when it reaches PostgreSQL, 0 when not, -1 unknown. */
int
sv_db_reachable(struct json_object *load)
{
	struct json_object *m = sv_member(load, "db_ok", json_type_boolean);

	return m != NULL ? json_object_get_boolean(m) != 0 : -1;
}

void
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
		s->f[i].heartbeat = sv_num_or(s->f[i].o, "heartbeat", 0);
		state = sv_str(s->f[i].o, "state");
		s->f[i].state = state != NULL ? state : "";
	}
	s->sv = s->f[SUP].state;
	if (strcmp(s->sv, "running") == 0)
		s->since = sv_num_or(s->f[SUP].o, "pipeline_started", 0);
}

void
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
	if (sv_nitems(sv_member(d->o, "active_consumers", json_type_array)) > 0)
		return false;
	counts = sv_member(d->o, "message_counts", json_type_object);
	for (t = 0; t < NTYPES; t++)
		if (sv_num(counts, data_types[t], &n))
			total += n;
	return sv_ncompleted(d->o) < NTYPES && total > 0;
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

/*
 * A dead-letter queue amqp-drain cannot reach (a classic queue, whose node
 * is down): poison of its type waits unacked, and a long wait can push it
 * over the delivery limit, where RabbitMQ drops it.
 */
static void
unreachable_dead_letters(const struct snapshot *s, struct verdict *v)
{
	struct json_object *arr;
	char types[64];
	size_t len = 0;
	int t;

	if (s->f[DRAIN].o == NULL || !current(s, DRAIN) || is(s->f[DRAIN].state, "stopped"))
		return;
	arr = sv_member(s->f[DRAIN].o, "dead_letter_unreachable", json_type_array);
	for (t = 0; t < NTYPES; t++)
		if (sv_listed(arr, data_types[t]))
			len += (size_t)snprintf(types + len, sizeof(types) - len, "%s%s",
			    len ? ", " : "", data_types[t]);
	if (len > 0)
		problem(v, "amqp-drain: the dead-letter queue of %s is unreachable (its node is "
		    "down); %.0f poison messages wait unacked", types,
		    sv_num_or(s->f[DRAIN].o, "held", 0));
}

void
sv_evaluate(const struct report_cfg *cfg, const struct snapshot *s, struct verdict *v)
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
		v->task = sv_str(sup->o, "current_task");
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
			    sv_num_or(sup->o, "restarts", 0) + 1);
		unreachable_dead_letters(s, v);
		if (load->o != NULL && current(s, LOAD) && is(load->state, "retrying") &&
		    sv_db_reachable(load->o) == 0) {
			outage = sv_num(load->o, "outage_since", &t) ? s->now - t : 0;
			problem(v, "tblload: PostgreSQL unreachable for %.0f s", outage);
		}
	}
	v->status = v->problems.len > 0 ? H_UNHEALTHY : H_HEALTHY;

	/* current_task, by the original's rules. */
	lmt = sv_member(drain->o, "last_message_time", json_type_object);
	for (i = 0; i < NTYPES && v->task == NULL; i++)
		if (sv_num(lmt, data_types[i], &t) && t > 0 && s->now - t < RECENT) {
			snprintf(v->task_buf, sizeof(v->task_buf), "Processing %s", data_types[i]);
			v->task = v->task_buf;
		}
	if (v->task == NULL &&
	    sv_nitems(sv_member(drain->o, "active_consumers", json_type_array)) > 0)
		v->task = "Idle - waiting for messages";
	if (v->stuck)
		v->task = "STUCK - consumers died, awaiting recovery";
	if (v->task == NULL)
		v->task = sv_str(sup->o, "current_task");
}

/* ---- numbers ------------------------------------------------------------ */

void
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
