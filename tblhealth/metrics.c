/*
 * GET /metrics: the Prometheus text format (exposition format 0.0.4) of
 * what the state files say, and of the verdict /health gives.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "envelope.h"
#include "report.h"
#include "util.h"
#include "view.h"

#define MAX_LABEL	64

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
		sample(b, name, label, sv_num_or(o, data_types[t], 0));
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
		sample(b, name, label, sv_listed(arr, data_types[t]));
	}
}

/* A family with one sample, when the file has the number. */
static void
scalar(struct buf *b, const char *name, const char *type, const char *help,
    struct json_object *o, const char *key)
{
	double v;

	if (!sv_num(o, key, &v))
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
	struct json_object *depths = sv_member(o, "queue_depths", json_type_object);
	char label[MAX_LABEL + 16];
	bool head = false;
	double v;

	scalar(b, "tableinator_restarts_total", "counter",
	    "Pipelines the supervisor restarted after a failure.", o, "restarts");
	if (depths == NULL)
		return;
	json_object_object_foreach(depths, key, val) {
		(void)val;
		if (strcmp(key, "total") == 0 || !safe_label(key) || !sv_num(depths, key, &v))
			continue;
		if (!head)
			family(b, "tableinator_queue_messages", "gauge",
			    "Messages waiting in each queue at the supervisor's last check.");
		head = true;
		snprintf(label, sizeof(label), "queue=\"%s\"", key);
		sample(b, "tableinator_queue_messages", label, v);
	}
}

/* The node amqp-drain consumes from (host:port, an IPv6 address in
 * brackets), and the dead-letter side. */
static void
broker_metrics(struct buf *b, struct json_object *o)
{
	const char *node = sv_str(o, "broker");
	char label[MAX_LABEL + 16];
	size_t n;

	if (node != NULL && (n = strspn(node, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_.:-[]%")) > 0 && n <= MAX_LABEL && node[n] == '\0') {
		family(b, "tableinator_broker_info", "gauge",
		    "The RabbitMQ node amqp-drain consumes from (host:port), as the label.");
		snprintf(label, sizeof(label), "broker=\"%s\"", node);
		sample(b, "tableinator_broker_info", label, 1);
	}
	scalar(b, "tableinator_brokers", "gauge",
	    "The RabbitMQ nodes AMQP_CONNECTION lists.", o, "brokers");
	if (sv_member(o, "dead_letter_unreachable", json_type_array) != NULL)
		listed_by_type(b, "tableinator_dead_letter_unreachable",
		    "1 while the dead-letter queue of this type cannot be reached (its node is down).",
		    sv_member(o, "dead_letter_unreachable", json_type_array));
	scalar(b, "tableinator_rejects_held", "gauge",
	    "Poison deliveries held unacked until their dead-letter queue is reachable.", o,
	    "held");
}

static void
drain_metrics(struct buf *b, struct json_object *o)
{
	struct json_object *per;

	by_type(b, "tableinator_messages_consumed_total", "counter",
	    "Deliveries received per type by the running amqp-drain (since it started).",
	    sv_member(o, "message_counts", json_type_object));
	by_type(b, "tableinator_last_message_timestamp_seconds", "gauge",
	    "When the last delivery of each type arrived (Unix time, 0 for never).",
	    sv_member(o, "last_message_time", json_type_object));
	listed_by_type(b, "tableinator_consumer_active",
	    "1 while amqp-drain consumes the queue of this type.",
	    sv_member(o, "active_consumers", json_type_array));
	listed_by_type(b, "tableinator_file_completed",
	    "1 once the extractor's file_complete for this type arrived.",
	    sv_member(o, "completed_files", json_type_array));
	/* Per type when amqp-drain writes it (docs/state.md), else the totals. */
	if ((per = sv_member(o, "acked_by_type", json_type_object)) != NULL)
		by_type(b, "tableinator_messages_acked_total", "counter",
		    "Deliveries acked per type after tblload committed them (since amqp-drain "
		    "started).", per);
	else
		scalar(b, "tableinator_messages_acked_total", "counter",
		    "Deliveries acked by the running amqp-drain (since it started).", o, "acked");
	if ((per = sv_member(o, "rejected_by_type", json_type_object)) != NULL)
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
	broker_metrics(b, o);
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
	struct json_object *le = sv_member(h, "le", json_type_array);
	struct json_object *counts = sv_member(h, "counts", json_type_array);
	struct json_object *e;
	double bound[64], n[65], cum = 0, sum;
	size_t i, nb;

	if (le == NULL || counts == NULL || !sv_num(h, "sum", &sum) ||
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
	struct json_object *rows = sv_member(o, "rows", json_type_object), *r;
	char label[64];
	size_t k;
	int t, reachable = sv_db_reachable(o);

	family(b, "tableinator_rows_total", "counter",
	    "Records written by the running tblload, per type and outcome (since it started).");
	for (t = 0; t < NTYPES; t++) {
		r = sv_member(rows, data_types[t], json_type_object);
		for (k = 0; k < NELEM(outcomes); k++) {
			snprintf(label, sizeof(label), "type=\"%s\",outcome=\"%s\"",
			    data_types[t], outcomes[k]);
			sample(b, "tableinator_rows_total", label, sv_num_or(r, outcomes[k], 0));
		}
	}
	scalar(b, "tableinator_batches_total", "counter",
	    "Batches committed by the running tblload.", o, "batches");
	histogram(b, sv_member(o, "batch_seconds", json_type_object));
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
	sv_evaluate(cfg, &s, &v);
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
