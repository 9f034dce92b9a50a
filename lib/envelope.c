#include <limits.h>
#include <string.h>

#include "envelope.h"

const char *const data_types[NTYPES] = { "artists", "labels", "masters", "releases" };

int
data_type_index(const char *s, size_t n)
{
	int i;

	for (i = 0; i < NTYPES; i++)
		if (strlen(data_types[i]) == n && memcmp(data_types[i], s, n) == 0)
			return i;
	return -1;
}

/* V_CUT: the text ends inside a string, where a prefix was cut off. */
enum vkind { V_STR, V_NUM, V_LIT, V_BODY, V_END, V_CUT };

struct member {
	struct jstr	 key;
	enum vkind	 kind;
	struct jstr	 str;	/* V_STR */
	struct jval	 val;	/* V_NUM, V_LIT, V_BODY */
};

/* The body runs from p to the line's last '}', white space trimmed. */
static int
rest_of_line(const char *p, const char *end, struct jval *body, const char **err)
{
	const char *last = end;

	while (last > p && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r' ||
	    last[-1] == '\n'))
		last--;
	if (last == p || last[-1] != '}') {
		*err = "line does not end with '}'";
		return -1;
	}
	last--;
	while (last > p && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\r' ||
	    last[-1] == '\n'))
		last--;
	body->p = p;
	body->n = (size_t)(last - p);
	return 0;
}

/*
 * Read the next member of a header: a flat object of strings, numbers,
 * true, false and null. With body, a member named "body" is not read: its
 * value is the rest of the line up to the closing brace (V_BODY). With
 * partial (a prefix of the line), a string that runs to the end of the
 * text ends the header there (V_CUT), as the body does.
 */
static int
next_member(struct jiter *it, struct member *m, bool body, bool partial, const char **err)
{
	const char *p;
	int rc;

	if ((rc = jiter_key(it, &m->key)) == 0) {
		m->kind = V_END;
		if (json_skip_ws(it->p, it->end) != it->end) {
			*err = "text after the closing brace";
			return -1;
		}
		return 0;
	}
	if (rc < 0)
		goto fail;
	p = it->p;
	if (body && jstr_eq(m->key, "body")) {
		m->kind = V_BODY;
		it->p = it->end;
		if (!partial)
			return rest_of_line(p, it->end, &m->val, err);
		m->val.p = p;
		m->val.n = (size_t)(it->end - p);
		return 0;
	}
	if (*p == '{' || *p == '[') {
		*err = "unexpected object or array in header";
		return -1;
	}
	if (*p == '"') {
		m->kind = V_STR;
		if (jiter_string(it, &m->str) < 0)
			goto fail;
		return 0;
	}
	if (jiter_value(it, &m->val) < 0)
		goto fail;
	m->kind = *p == '-' || (*p >= '0' && *p <= '9') ? V_NUM : V_LIT;
	return 0;
fail:
	if (partial && it->cut) {
		m->kind = V_CUT;
		return 0;
	}
	*err = it->err;
	return -1;
}

/* A decimal integer with no sign, fraction or exponent, that fits. */
static int
parse_ull(struct jval s, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (s.n == 0 || s.n > 20 || (s.n > 1 && s.p[0] == '0'))
		return -1;
	for (i = 0; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		if (v > (ULLONG_MAX - (unsigned)(s.p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s.p[i] - '0');
	}
	*out = v;
	return 0;
}

/* A member that must be an unsigned decimal integer up to max. */
static int
member_uint(const struct member *m, unsigned long long max, unsigned long long *out)
{
	return m->kind == V_NUM && parse_ull(m->val, out) == 0 && *out <= max ? 0 : -1;
}

/*
 * Read the members of a header, giving each to fn (the body too, which
 * ends it). Returns the kind that ended it (V_END, V_CUT or V_BODY), or -1
 * with *err set, by the reader or by fn.
 */
static int
read_header(const char *line, size_t len, bool body, bool partial,
    int (*fn)(void *, const struct member *, const char **), void *arg, const char **err)
{
	const char *p = json_skip_ws(line, line + len);
	struct member m;
	struct jiter it;

	if (jiter_object(&it, (struct jval){ p, (size_t)(line + len - p) }) < 0) {
		*err = it.err;
		return -1;
	}
	for (;;) {
		if (next_member(&it, &m, body, partial, err) < 0)
			return -1;
		if (m.kind == V_END || m.kind == V_CUT)
			return m.kind;
		if (fn(arg, &m, err) < 0)
			return -1;
		if (m.kind == V_BODY)
			return V_BODY;
	}
}

static int
env_member(void *arg, const struct member *m, const char **err)
{
	struct envelope *e = arg;
	unsigned long long u;
	struct jstr *str = NULL;

	if (m->kind == V_BODY) {
		if (m->val.n == 0) {
			*err = "empty body";
			return -1;
		}
		e->body = m->val;
		e->has_body = true;
		return 0;
	}
	if (jstr_eq(m->key, "type"))
		str = &e->type;
	else if (jstr_eq(m->key, "conn"))
		str = &e->conn;
	else if (jstr_eq(m->key, "sha256"))
		str = &e->sha256;
	else if (jstr_eq(m->key, "control"))
		str = &e->control;
	else if (jstr_eq(m->key, "invalid"))
		str = &e->invalid;
	else if (jstr_eq(m->key, "raw"))
		str = &e->raw;
	else if (jstr_eq(m->key, "tag")) {
		if (member_uint(m, ULLONG_MAX, &e->tag) < 0) {
			*err = "tag is not an unsigned integer";
			return -1;
		}
		e->has_tag = true;
	} else if (jstr_eq(m->key, "id")) {
		if (member_uint(m, LLONG_MAX, &u) < 0) {
			*err = "id is not an unsigned integer";
			return -1;
		}
		e->id = (long long)u;
		e->has_id = true;
	}
	/* Other members are ignored, for later additions. */
	if (str == NULL)
		return 0;
	if (m->kind != V_STR) {
		*err = "header member is not a string";
		return -1;
	}
	*str = m->str;
	if (str == &e->raw)
		e->has_raw = true;
	return 0;
}

static int
env_scan1(const char *line, size_t len, struct envelope *e, bool partial, const char **err)
{
	int end;

	memset(e, 0, sizeof(*e));
	if ((end = read_header(line, len, true, partial, env_member, e, err)) < 0)
		return -1;
	if (e->type.p == NULL) {
		*err = "no type";
		return -1;
	}
	/* A cut header keeps the members read so far, with or without a body. */
	if (end != V_CUT && !e->has_body && !e->has_raw && e->invalid.p == NULL) {
		*err = "no body";
		return -1;
	}
	if (e->has_tag != (e->conn.p != NULL)) {
		*err = "tag and conn must come together";
		return -1;
	}
	return 0;
}

int
env_scan(const char *line, size_t len, struct envelope *e, const char **err)
{
	return env_scan1(line, len, e, false, err);
}

int
env_scan_prefix(const char *line, size_t len, struct envelope *e, const char **err)
{
	return env_scan1(line, len, e, true, err);
}

void
env_write(struct buf *b, const struct envelope_out *o)
{
	buf_reserve(b, 128 + o->body.n);
	json_open(b, '{');
	json_key(b, "type");
	json_put_escaped(b, o->type);
	if (o->conn.p != NULL) {
		json_key(b, "conn");
		json_put_escaped(b, o->conn);
		json_key(b, "tag");
		json_put_uint(b, o->tag);
	}
	if (o->has_id) {
		json_key(b, "id");
		json_put_int(b, o->id);
	}
	if (o->sha256 != NULL) {
		/* Hex digits: escaped as they are. */
		json_key(b, "sha256");
		json_put_escaped(b, (struct jstr){ o->sha256, 64, false });
	}
	if (o->control != NULL) {
		json_key(b, "control");
		json_put_str_lossy(b, o->control, o->control_len);
	}
	if (o->invalid != NULL) {
		json_key(b, "invalid");
		json_put_str_lossy(b, o->invalid, strlen(o->invalid));
	}
	if (o->body.p != NULL) {
		json_key(b, "body");
		json_put_raw(b, o->body);
	} else if (o->raw != NULL) {
		json_key(b, "raw");
		json_put_str_lossy(b, o->raw, o->raw_len);
	}
	json_close(b, '}');
	buf_addc(b, '\n');
}

struct frame {
	struct jstr	*type;
	long long	*n;
	bool		 have_n;
};

static int
frame_member(void *arg, const struct member *m, const char **err)
{
	struct frame *f = arg;
	unsigned long long u;

	if (jstr_eq(m->key, "batch") && m->kind == V_STR)
		*f->type = m->str;
	else if (jstr_eq(m->key, "n")) {
		if (member_uint(m, 100000000, &u) < 0) {
			*err = "bad batch size";
			return -1;
		}
		*f->n = (long long)u;
		f->have_n = true;
	}
	return 0;
}

int
frame_scan(const char *line, size_t len, struct jstr *type, long long *n, const char **err)
{
	struct frame f = { type, n, false };

	type->p = NULL;
	if (read_header(line, len, false, false, frame_member, &f, err) < 0)
		return -1;
	if (type->p == NULL || !f.have_n) {
		*err = "not a batch header";
		return -1;
	}
	return 0;
}

void
frame_write(struct buf *b, struct jstr type, long long n)
{
	json_open(b, '{');
	json_key(b, "batch");
	json_put_escaped(b, type);
	json_key(b, "n");
	json_put_int(b, n);
	json_close(b, '}');
	buf_addc(b, '\n');
}

struct settle_read {
	struct settle	*s;
	bool		 have_op, have_tag;
};

static int
settle_member(void *arg, const struct member *m, const char **err)
{
	struct settle_read *r = arg;

	if (jstr_eq(m->key, "op") && m->kind == V_STR) {
		if (jstr_eq(m->str, "ack"))
			r->s->reject = false;
		else if (jstr_eq(m->str, "reject"))
			r->s->reject = true;
		else {
			*err = "op is neither ack nor reject";
			return -1;
		}
		r->have_op = true;
	} else if (jstr_eq(m->key, "conn") && m->kind == V_STR)
		r->s->conn = m->str;
	else if (jstr_eq(m->key, "reason") && m->kind == V_STR)
		r->s->reason = m->str;
	else if (jstr_eq(m->key, "tag")) {
		if (member_uint(m, ULLONG_MAX, &r->s->tag) < 0) {
			*err = "tag is not an unsigned integer";
			return -1;
		}
		r->have_tag = true;
	}
	return 0;
}

int
settle_scan(const char *line, size_t len, struct settle *s, const char **err)
{
	struct settle_read r = { s, false, false };

	memset(s, 0, sizeof(*s));
	if (read_header(line, len, false, false, settle_member, &r, err) < 0)
		return -1;
	if (!r.have_op || !r.have_tag || s->conn.p == NULL) {
		*err = "settle line needs op, conn and tag";
		return -1;
	}
	return 0;
}

void
settle_write(struct buf *b, bool reject, struct jstr conn, unsigned long long tag,
    const char *reason)
{
	json_open(b, '{');
	json_key(b, "op");
	json_put_str(b, reject ? "reject" : "ack", reject ? 6 : 3);
	json_key(b, "conn");
	json_put_escaped(b, conn);
	json_key(b, "tag");
	json_put_uint(b, tag);
	if (reject) {
		json_key(b, "reason");
		json_put_str_lossy(b, reason ? reason : "", reason ? strlen(reason) : 0);
	}
	json_close(b, '}');
	buf_addc(b, '\n');
}
