/*
 * GET /health (the original's JSON, with the verdict) and tblhealth
 * --status (the few facts the supervisor acts on), from view.c's snapshot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "buf.h"
#include "envelope.h"
#include "report.h"
#include "util.h"
#include "view.h"

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
	sv_evaluate(cfg, &s, &v);
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
		buf_printf(b, "drain_unsettled=%lld\n", whole(sv_num_or(f->o, "unsettled", 0)));
		buf_printf(b, "drain_settled=%lld\n", whole(sv_num_or(f->o, "acked", 0)) +
		    whole(sv_num_or(f->o, "rejected", 0)));
	}
	buf_free(&v.problems);
	snapshot_free(&s);
}

/* ---- output helpers ----------------------------------------------------- */


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
		put_num(b, sv_num_or(o, data_types[t], 0));
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
		if (sv_listed(arr, data_types[t])) {
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
	sv_evaluate(cfg, &s, &v);
	d = s.f[DRAIN].o;
	l = s.f[LOAD].o;
	done = sv_ncompleted(d);

	buf_printf(b, "{\"status\":\"%s\",\"service\":\"tableinator\",\"current_task\":",
	    health_names[v.status]);
	put_str_or_null(b, v.task);
	buf_adds(b, ",\"progress\":");
	put_num(b, done / (double)NTYPES);
	buf_adds(b, ",\"message_counts\":");
	put_by_type(b, sv_member(d, "message_counts", json_type_object));
	buf_adds(b, ",\"last_message_time\":");
	put_by_type(b, sv_member(d, "last_message_time", json_type_object));
	buf_adds(b, ",\"active_consumers\":");
	put_types(b, sv_member(d, "active_consumers", json_type_array));
	buf_adds(b, ",\"completed_files\":");
	put_types(b, sv_member(d, "completed_files", json_type_array));
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
		put_str_or_null(b, sv_str(s.f[i].o, "state"));
		buf_printf(b, ",\"heartbeat_age\":%.3f}", s.now - s.f[i].heartbeat);
	}
	buf_adds(b, "},\"broker\":{\"node\":");
	put_str_or_null(b, sv_str(d, "broker"));
	buf_adds(b, ",\"nodes\":");
	put_num(b, sv_num_or(d, "brokers", 0));
	buf_adds(b, ",\"dead_letter_unreachable\":");
	put_types(b, sv_member(d, "dead_letter_unreachable", json_type_array));
	buf_adds(b, ",\"held_rejects\":");
	put_num(b, sv_num_or(d, "held", 0));
	buf_adds(b, "},\"database\":{\"reachable\":");
	reachable = sv_db_reachable(l);
	buf_adds(b, reachable < 0 ? "null" : reachable ? "true" : "false");
	buf_adds(b, ",\"outage_seconds\":");
	if (sv_num(l, "outage_since", &t))
		buf_printf(b, "%.3f", s.now - t);
	else
		buf_adds(b, "null");
	buf_adds(b, ",\"last_commit\":");
	put_num(b, sv_num_or(l, "last_commit", 0));
	buf_adds(b, "}}\n");

	buf_free(&v.problems);
	snapshot_free(&s);
	return v.status == H_UNHEALTHY ? 503 : 200;
}

