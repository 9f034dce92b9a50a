/*
 * tblhash: read message bodies or envelopes (NDJSON), write envelopes that
 * carry the record's id, its canonical SHA-256 and its canonical body. A
 * line that is not a usable record is passed on marked invalid, with the
 * reason, so that tblload can settle it; control messages pass through.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "canon.h"
#include "canonform.h"
#include "envelope.h"
#include "sha256.h"
#include "lineio.h"
#include "log.h"
#include "num.h"
#include "util.h"

#define MAX_RECORD_ID	2147483647LL	/* ids are PostgreSQL INTEGER */

static size_t max_line = 16 << 20;

struct counts {
	unsigned long long lines, records, controls, invalid, bytes;
	unsigned long long fast;	/* records recognised as canonical already */
};

/* Parse every body with json-c, even one already in canonical form (to
 * check that both ways give the same bytes). */
static bool always_parse;

static const char *usage_text =
    "usage: tblhash [-t type] [--max-line bytes] [--always-parse]\n"
    "  -t, --type type     input lines are raw message bodies of this type\n"
    "                      (artists, labels, masters, releases); without it,\n"
    "                      input lines are envelopes (docs/protocol.md)\n"
    "      --max-line n    longest line read whole (default 16777216); longer\n"
    "                      lines are passed on as invalid\n"
    "      --always-parse  parse every body, even one already in canonical form\n"
    "  -h, --help          show this help\n"
    "  -V, --version       show the version\n";

/* The record id: "id" (or "@id"), a decimal string or an integer, 1..2^31-1. */
static const char *
record_id(struct json_object *body, long long *id)
{
	struct json_object *v;
	const char *s, *why;
	long long n;

	if (!json_object_object_get_ex(body, "id", &v) &&
	    !json_object_object_get_ex(body, "@id", &v))
		return "no id";
	switch (json_object_get_type(v)) {
	case json_type_string:
		s = json_object_get_string(v);
		if ((size_t)json_object_get_string_len(v) != strlen(s) ||
		    parse_ll(s, 1, MAX_RECORD_ID, &n, &why) < 0 || s[0] == '-')
			return "id is not a positive integer below 2^31";
		break;
	case json_type_int:
		n = json_object_get_int64(v);
		if (n < 1 || n > MAX_RECORD_ID)
			return "id is not a positive integer below 2^31";
		break;
	default:
		return "id is not a positive integer below 2^31";
	}
	*id = n;
	return NULL;
}

/* Emit an invalid envelope for this line and count it. */
static void
put_invalid(struct buf *out, struct envelope_out *o, const struct line *l,
    const char *reason, const char *raw, size_t raw_len, struct counts *c)
{
	struct logrec *r;

	o->invalid = reason;
	o->raw = raw;
	o->raw_len = raw_len;
	o->body.p = NULL;
	o->has_id = false;
	o->sha256 = NULL;
	o->control = NULL;
	env_write(out, o);
	c->invalid++;
	r = log_begin(LOG_WARNING, "⚠️ Invalid message passed on for rejection");
	log_int(r, "line", (long long)l->lineno);
	log_jstr(r, "type", o->type);	/* escaped as read: decoded */
	if (o->conn.p != NULL)
		log_int(r, "tag", (long long)o->tag);
	log_str(r, "reason", reason);
	log_end(r);
}

static void
hash_line(const struct line *l, struct jstr fixed_type, struct buf *out,
    struct buf *canon, struct buf *scratch, struct counts *c)
{
	struct envelope_out o;
	struct envelope in;
	struct json_object *body = NULL, *t;
	struct canon_record cr;
	const char *err, *bp, *why;
	char reason[256], sha[65];
	size_t bn;
	long long id;

	memset(&o, 0, sizeof(o));
	c->lines++;
	if (fixed_type.p != NULL)
		o.type = fixed_type;
	else {
		if ((l->truncated ? env_scan_prefix(l->p, l->len, &in, &err) :
		    env_scan(l->p, l->len, &in, &err)) < 0) {
			snprintf(reason, sizeof(reason), "malformed envelope: %s", err);
			o.type = (struct jstr){ "", 0, false };
			put_invalid(out, &o, l, reason, l->truncated ? NULL : l->p,
			    l->len, c);
			return;
		}
		o.type = in.type;
		o.conn = in.conn;
		o.tag = in.tag;
	}
	/* Only a prefix was kept, so not even a settled line can pass on. */
	if (l->truncated) {
		snprintf(reason, sizeof(reason), "line too long (%zu bytes, limit %zu)",
		    l->full_len, max_line);
		put_invalid(out, &o, l, reason, NULL, 0, c);
		return;
	}
	if (fixed_type.p != NULL) {
		bp = l->p;
		bn = l->len;
	} else if (in.invalid.p != NULL || in.control.p != NULL) {
		/* Already settled upstream: pass it on unchanged. */
		buf_add(out, l->p, l->len);
		buf_addc(out, '\n');
		if (in.invalid.p != NULL)
			c->invalid++;
		else
			c->controls++;
		return;
	} else if (in.has_raw) {
		buf_reset(scratch);
		jstr_decode(scratch, in.raw);
		/* An empty raw string leaves a new buffer without memory. */
		bp = scratch->p != NULL ? scratch->p : "";
		bn = scratch->len;
	} else {
		bp = in.body.p;
		bn = in.body.n;
	}
	if (data_type_index(o.type.p, o.type.n) < 0 || o.type.esc) {
		put_invalid(out, &o, l, "unknown type", bp, bn, c);
		return;
	}
	if (!always_parse && canon_recognise(bp, bn, &cr)) {
		/* Already canonical (the Rust extractor's bodies): hash it as it is. */
		buf_reset(canon);
		buf_add(canon, cr.head, cr.head_len);
		buf_add(canon, cr.rest, cr.rest_len);
		sha256_hex(canon->p, canon->len, sha);
		o.has_id = true;
		o.id = cr.id;
		o.sha256 = sha;
		o.body = (struct jval){ canon->p, canon->len };
		env_write(out, &o);
		c->records++;
		c->fast++;
		return;
	}
	if ((body = json_parse_strict(bp, bn, &err)) == NULL) {
		snprintf(reason, sizeof(reason), "not JSON: %s", err);
		put_invalid(out, &o, l, reason, bp, bn, c);
		return;
	}
	if (!json_object_is_type(body, json_type_object)) {
		put_invalid(out, &o, l, "not a JSON object", bp, bn, c);
		goto done;
	}
	if (json_object_object_get_ex(body, "type", &t) &&
	    !(json_object_is_type(t, json_type_string) &&
	    strcmp(json_object_get_string(t), "data") == 0)) {
		if (!json_object_is_type(t, json_type_string)) {
			put_invalid(out, &o, l, "type member is not a string", bp, bn, c);
			goto done;
		}
		if (json_object_get_string_len(t) == 0) {
			put_invalid(out, &o, l, "type member is empty", bp, bn, c);
			goto done;
		}
		/* A control message, such as file_complete. */
		buf_reset(canon);
		canon_write(canon, body, 0);
		o.control = json_object_get_string(t);
		o.control_len = (size_t)json_object_get_string_len(t);
		o.body = (struct jval){ canon->p, canon->len };
		env_write(out, &o);
		c->controls++;
		goto done;
	}
	if ((why = record_id(body, &id)) != NULL) {
		put_invalid(out, &o, l, why, bp, bn, c);
		goto done;
	}
	buf_reset(canon);
	canon_write(canon, body, CANON_DROP_META);
	sha256_hex(canon->p, canon->len, sha);
	o.has_id = true;
	o.id = id;
	o.sha256 = sha;
	o.body = (struct jval){ canon->p, canon->len };
	env_write(out, &o);
	c->records++;
done:
	json_object_put(body);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "max-line", required_argument, NULL, 'L' },
		{ "always-parse", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct jstr fixed_type = { NULL, 0, false };
	struct linereader in;
	struct writer out;
	struct buf canon = { 0 }, scratch = { 0 };
	struct counts c = { 0 };
	struct line l;
	struct logrec *r;
	double t0;
	int ch, rc;

	log_init("tblhash");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":t:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if (data_type_index(optarg, strlen(optarg)) < 0)
				die(EXIT_USAGE, "option --type: unknown type '%s' (want artists, labels, masters or releases)", optarg);
			/* A known type name needs no escape: it is its own JSON. */
			fixed_type = (struct jstr){ optarg, strlen(optarg), false };
			break;
		case 'L':
			max_line = (size_t)opt_ll("--max-line", optarg, 1024, 1LL << 31);
			break;
		case 'P':
			always_parse = true;
			break;
		case 'h':
			print_usage(usage_text);
		case 'V':
			print_version();
		default:
			die_bad_option(ch, argv);
		}
	}
	if (optind != argc)
		die_operand(argv[optind]);

	ignore_sigpipe();
	lr_init(&in, STDIN_FILENO, max_line);
	w_init(&out, STDOUT_FILENO, 256 * 1024);
	t0 = now_mono();
	while ((rc = lr_getline(&in, &l, &out)) == 1) {
		c.bytes += l.full_len + 1;
		hash_line(&l, fixed_type, &out.b, &canon, &scratch, &c);
		if (w_maybe_flush(&out) < 0)
			die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	}
	if (rc == -2)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	if (rc < 0)
		die(EXIT_TEMPFAIL, "stdin: %s", strerror(errno));
	if (w_flush(&out) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));

	r = log_begin(LOG_INFO, "✅ Hashing finished");
	log_int(r, "lines", (long long)c.lines);
	log_int(r, "records", (long long)c.records);
	log_int(r, "already_canonical", (long long)c.fast);
	log_int(r, "controls", (long long)c.controls);
	log_int(r, "invalid", (long long)c.invalid);
	log_int(r, "bytes", (long long)c.bytes);
	log_num(r, "duration_s", now_mono() - t0);
	log_num(r, "mb_per_s", (double)c.bytes / 1e6 / (now_mono() - t0 + 1e-9));
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	lr_free(&in);
	w_free(&out);
	buf_free(&canon);
	buf_free(&scratch);
	return c.invalid ? EXIT_DATA : EXIT_OK;
}
