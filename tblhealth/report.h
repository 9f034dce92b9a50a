/*
 * What tblhealth serves: the health verdict and the Prometheus metrics,
 * composed from the state files of the supervisor, amqp-drain and tblload
 * (docs/state.md), read afresh for every request. Only the three file names
 * fixed here are ever opened; nothing a client sends becomes a path.
 */
#ifndef TBL_REPORT_H
#define TBL_REPORT_H

#include "buf.h"

struct report_cfg {
	char	*dir;		/* the state directory */
	char	*path[3];	/* tableinator.json, amqp-drain.json, tblload.json */
	double	 stale_after;	/* a heartbeat older than this is stale (seconds) */
};

void	report_init(struct report_cfg *, const char *dir, double stuck_check_interval);
void	report_free(struct report_cfg *);

/* The /health JSON document into out; returns the HTTP status (200 or 503). */
unsigned int report_health(const struct report_cfg *, struct buf *out);
/* The /metrics text (Prometheus exposition format 0.0.4) into out. */
void	report_metrics(const struct report_cfg *, struct buf *out);
/*
 * What the supervisor acts on, as KEY=VALUE lines that a shell can read
 * without parsing JSON: keys are [a-z_]+, values whole numbers or [a-z_]
 * words (docs/state.md, "tblhealth --status").
 */
void	report_status(const struct report_cfg *, struct buf *out);

#endif
