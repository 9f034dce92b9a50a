/*
 * What tblhealth knows: the state files of the supervisor, amqp-drain and
 * tblload (docs/state.md) as read for one request (a snapshot), and the
 * verdict drawn from them. report.c (health, status) and metrics.c print
 * it.
 */
#ifndef TBL_VIEW_H
#define TBL_VIEW_H

#include <stdbool.h>

#include <json-c/json.h>

#include "buf.h"
#include "report.h"

enum { SUP, DRAIN, LOAD, NFILES };
extern const char *const file_names[NFILES];

enum health { H_STARTING, H_HEALTHY, H_UNHEALTHY };
extern const char *const health_names[3];

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

void	snapshot_load(const struct report_cfg *, struct snapshot *);
void	snapshot_free(struct snapshot *);
/* The verdict on a snapshot; free v->problems after. */
void	sv_evaluate(const struct report_cfg *, const struct snapshot *, struct verdict *v);

/* Members of a state file's object (NULL-safe). */
bool	sv_num(struct json_object *, const char *key, double *out);	/* a finite number */
double	sv_num_or(struct json_object *, const char *key, double def);
struct json_object *sv_member(struct json_object *, const char *key, json_type);
const char *sv_str(struct json_object *, const char *key);
size_t	sv_nitems(struct json_object *arr);
bool	sv_listed(struct json_object *arr, const char *name);
int	sv_ncompleted(struct json_object *drain);
int	sv_db_reachable(struct json_object *load);

/* A number in the shortest form that reads back the same. */
void	put_num(struct buf *, double);

#endif
