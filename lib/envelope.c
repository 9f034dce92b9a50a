#include <limits.h>
#include <string.h>

#include "envelope.h"
#include "jscan.h"

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
	struct slice	 key;
	enum vkind	 kind;
	struct slice	 val;
};

/* p is just past an opening quote: return the closing one, else the
 * control character before it, else end if the text runs out first. */
static const char *
scan_string(const char *p, const char *end, struct slice *s)
{
	s->p = p;
	s->esc = false;
	for (; p < end && *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return p;
		if (*p == '\\') {
			s->esc = true;
			if (++p == end)
				return end;
		}
	}
	s->n = (size_t)(p - s->p);
	return p;
}

/*
 * Read the next member of a flat object. *pp is just past '{' or past the
 * previous value. A member named in stop ("body") is not read: its value
 * is the rest of the line up to the closing brace (kind V_BODY). With
 * partial (a prefix of the line), a string that runs to the end of the
 * text ends the header there (kind V_CUT), as the body does.
 */
static int
next_member(const char **pp, const char *end, struct member *m, const char *stop,
    bool first, bool partial, const char **err)
{
	const char *p = json_skip_ws(*pp, end), *q, *last;

	if (p < end && *p == '}') {
		m->kind = V_END;
		*pp = json_skip_ws(p + 1, end);
		if (*pp != end) {
			*err = "text after the closing brace";
			return -1;
		}
		return 0;
	}
	if (!first) {
		if (p == end || *p != ',') {
			*err = "expected ',' or '}' in header";
			return -1;
		}
		p = json_skip_ws(p + 1, end);
	}
	q = p < end && *p == '"' ? scan_string(p + 1, end, &m->key) : NULL;
	if (q == end && partial)
		goto cut;
	if (q == NULL || q == end || *q != '"') {
		*err = "expected a member name";
		return -1;
	}
	p = json_skip_ws(q + 1, end);
	if (p == end || *p != ':') {
		*err = "expected ':' after a member name";
		return -1;
	}
	p = json_skip_ws(p + 1, end);
	if (p == end) {
		*err = "missing value";
		return -1;
	}
	if (stop != NULL && !m->key.esc && m->key.n == strlen(stop) &&
	    memcmp(m->key.p, stop, m->key.n) == 0) {
		/* The body runs to the last '}' of the line. */
		if (partial) {
			m->kind = V_BODY;
			m->val.p = p;
			m->val.n = (size_t)(end - p);
			m->val.esc = false;
			*pp = end;
			return 0;
		}
		last = end;
		while (last > p && (last[-1] == ' ' || last[-1] == '\t' ||
		    last[-1] == '\r' || last[-1] == '\n'))
			last--;
		if (last == p || last[-1] != '}') {
			*err = "line does not end with '}'";
			return -1;
		}
		last--;
		q = last;
		while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r' || q[-1] == '\n'))
			q--;
		m->kind = V_BODY;
		m->val.p = p;
		m->val.n = (size_t)(q - p);
		m->val.esc = false;
		*pp = end;
		return 0;
	}
	if (*p == '"') {
		m->kind = V_STR;
		if ((q = scan_string(p + 1, end, &m->val)) == end && partial)
			goto cut;
		if (q == end || *q != '"') {
			*err = "unterminated string in header";
			return -1;
		}
		*pp = q + 1;
		return 0;
	}
	if (*p == '{' || *p == '[') {
		*err = "unexpected object or array in header";
		return -1;
	}
	q = p;
	while (q < end && *q != ',' && *q != '}' && *q != ' ' && *q != '\t')
		q++;
	m->kind = (*p == '-' || (*p >= '0' && *p <= '9')) ? V_NUM : V_LIT;
	m->val.p = p;
	m->val.n = (size_t)(q - p);
	m->val.esc = false;
	if (m->kind == V_LIT && !(m->val.n == 4 && memcmp(p, "true", 4) == 0) &&
	    !(m->val.n == 5 && memcmp(p, "false", 5) == 0) &&
	    !(m->val.n == 4 && memcmp(p, "null", 4) == 0)) {
		*err = "bad value in header";
		return -1;
	}
	*pp = q;
	return 0;
cut:
	m->kind = V_CUT;
	*pp = end;
	return 0;
}

bool
slice_eq(struct slice s, const char *str)
{
	size_t n = strlen(str);

	return !s.esc && s.n == n && memcmp(s.p, str, n) == 0;
}

/* A decimal integer with no sign, fraction or exponent, that fits. */
static int
slice_ull(struct slice s, unsigned long long *out)
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

static int
check_open(const char **pp, const char *end, const char **err)
{
	const char *p = json_skip_ws(*pp, end);

	if (p == end || *p != '{') {
		*err = "not a JSON object";
		return -1;
	}
	*pp = p + 1;
	return 0;
}

static int
env_scan1(const char *line, size_t len, struct envelope *e, bool partial, const char **err)
{
	const char *p = line, *end = line + len;
	unsigned long long u;
	struct member m;
	struct slice *str;
	bool first = true, cut = false;

	memset(e, 0, sizeof(*e));
	if (check_open(&p, end, err) < 0)
		return -1;
	for (;; first = false) {
		if (next_member(&p, end, &m, "body", first, partial, err) < 0)
			return -1;
		if (m.kind == V_END)
			break;
		if (m.kind == V_CUT) {
			/* The rest is cut off: keep the members read so far. */
			cut = true;
			break;
		}
		if (m.kind == V_BODY) {
			if (m.val.n == 0) {
				*err = "empty body";
				return -1;
			}
			e->body = m.val;
			e->has_body = true;
			break;
		}
		str = NULL;
		if (slice_eq(m.key, "type"))
			str = &e->type;
		else if (slice_eq(m.key, "conn"))
			str = &e->conn;
		else if (slice_eq(m.key, "sha256"))
			str = &e->sha256;
		else if (slice_eq(m.key, "control"))
			str = &e->control;
		else if (slice_eq(m.key, "invalid"))
			str = &e->invalid;
		else if (slice_eq(m.key, "raw"))
			str = &e->raw;
		else if (slice_eq(m.key, "tag")) {
			if (m.kind != V_NUM || slice_ull(m.val, &u) < 0) {
				*err = "tag is not an unsigned integer";
				return -1;
			}
			e->tag = u;
			e->has_tag = true;
		} else if (slice_eq(m.key, "id")) {
			if (m.kind != V_NUM || slice_ull(m.val, &u) < 0 || u > LLONG_MAX) {
				*err = "id is not an unsigned integer";
				return -1;
			}
			e->id = (long long)u;
			e->has_id = true;
		}
		/* Other members are ignored, for later additions. */
		if (str == NULL)
			continue;
		if (m.kind != V_STR) {
			*err = "header member is not a string";
			return -1;
		}
		*str = m.val;
		if (str == &e->raw)
			e->has_raw = true;
	}
	if (e->type.p == NULL) {
		*err = "no type";
		return -1;
	}
	if (!cut && !e->has_body && !e->has_raw && e->invalid.p == NULL) {
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
slice_decode(struct buf *b, struct slice s)
{
	const char *p = s.p, *end;
	unsigned long cp, lo;
	int i;

	/* An absent member is a NULL slice: no arithmetic on its pointer. */
	if (!s.esc) {
		buf_add(b, s.p, s.n);
		return;
	}
	end = s.p + s.n;
	while (p < end) {
		if (*p != '\\') {
			buf_addc(b, *p++);
			continue;
		}
		if (++p == end)
			break;
		switch (*p++) {
		case 'b': buf_addc(b, '\b'); break;
		case 'f': buf_addc(b, '\f'); break;
		case 'n': buf_addc(b, '\n'); break;
		case 'r': buf_addc(b, '\r'); break;
		case 't': buf_addc(b, '\t'); break;
		case 'u':
			cp = 0;
			for (i = 0; i < 4 && p < end; i++, p++) {
				cp <<= 4;
				if (*p >= '0' && *p <= '9') cp |= (unsigned)(*p - '0');
				else if (*p >= 'a' && *p <= 'f') cp |= (unsigned)(*p - 'a' + 10);
				else if (*p >= 'A' && *p <= 'F') cp |= (unsigned)(*p - 'A' + 10);
			}
			if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
				lo = 0;
				for (i = 2; i < 6; i++) {
					lo <<= 4;
					if (p[i] >= '0' && p[i] <= '9') lo |= (unsigned)(p[i] - '0');
					else if (p[i] >= 'a' && p[i] <= 'f') lo |= (unsigned)(p[i] - 'a' + 10);
					else if (p[i] >= 'A' && p[i] <= 'F') lo |= (unsigned)(p[i] - 'A' + 10);
				}
				if (lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					p += 6;
				}
			}
			if (cp >= 0xd800 && cp < 0xe000)
				cp = 0xfffd;
			if (cp < 0x80)
				buf_addc(b, (char)cp);
			else if (cp < 0x800) {
				buf_addc(b, (char)(0xc0 | (cp >> 6)));
				buf_addc(b, (char)(0x80 | (cp & 0x3f)));
			} else if (cp < 0x10000) {
				buf_addc(b, (char)(0xe0 | (cp >> 12)));
				buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
				buf_addc(b, (char)(0x80 | (cp & 0x3f)));
			} else {
				buf_addc(b, (char)(0xf0 | (cp >> 18)));
				buf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
				buf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
				buf_addc(b, (char)(0x80 | (cp & 0x3f)));
			}
			break;
		default:
			buf_addc(b, p[-1]);
		}
	}
}

static void
add_str_member(struct buf *b, const char *name, struct slice s)
{
	buf_addc(b, '"');
	buf_adds(b, name);
	buf_add(b, "\":\"", 3);
	buf_add(b, s.p, s.n);
	buf_add(b, "\",", 2);
}

void
env_write(struct buf *b, const struct envelope_out *o)
{
	buf_reserve(b, 128 + o->body_len);
	buf_addc(b, '{');
	add_str_member(b, "type", o->type);
	if (o->conn.p != NULL) {
		add_str_member(b, "conn", o->conn);
		buf_printf(b, "\"tag\":%llu,", o->tag);
	}
	if (o->has_id)
		buf_printf(b, "\"id\":%lld,", o->id);
	if (o->sha256 != NULL) {
		buf_add(b, "\"sha256\":\"", 10);
		buf_add(b, o->sha256, 64);
		buf_add(b, "\",", 2);
	}
	if (o->control != NULL) {
		buf_add(b, "\"control\":", 10);
		buf_json_str_lossy(b, o->control, o->control_len);
		buf_addc(b, ',');
	}
	if (o->invalid != NULL) {
		buf_add(b, "\"invalid\":", 10);
		buf_json_str_lossy(b, o->invalid, strlen(o->invalid));
		buf_addc(b, ',');
	}
	if (o->body != NULL) {
		buf_add(b, "\"body\":", 7);
		buf_add(b, o->body, o->body_len);
	} else if (o->raw != NULL) {
		buf_add(b, "\"raw\":", 6);
		buf_json_str_lossy(b, o->raw, o->raw_len);
	} else
		b->len--;	/* the trailing comma */
	buf_add(b, "}\n", 2);
}

int
frame_scan(const char *line, size_t len, struct slice *type, long long *n, const char **err)
{
	const char *p = line, *end = line + len;
	unsigned long long u;
	struct member m;
	bool first = true, have_n = false;

	type->p = NULL;
	if (check_open(&p, end, err) < 0)
		return -1;
	for (;; first = false) {
		if (next_member(&p, end, &m, NULL, first, false, err) < 0)
			return -1;
		if (m.kind == V_END)
			break;
		if (slice_eq(m.key, "batch") && m.kind == V_STR)
			*type = m.val;
		else if (slice_eq(m.key, "n")) {
			if (m.kind != V_NUM || slice_ull(m.val, &u) < 0 || u > 100000000) {
				*err = "bad batch size";
				return -1;
			}
			*n = (long long)u;
			have_n = true;
		}
	}
	if (type->p == NULL || !have_n) {
		*err = "not a batch header";
		return -1;
	}
	return 0;
}

void
frame_write(struct buf *b, struct slice type, long long n)
{
	buf_add(b, "{\"batch\":\"", 10);
	buf_add(b, type.p, type.n);
	buf_printf(b, "\",\"n\":%lld}\n", n);
}

int
settle_scan(const char *line, size_t len, struct settle *s, const char **err)
{
	const char *p = line, *end = line + len;
	struct member m;
	bool first = true, have_op = false, have_tag = false;

	memset(s, 0, sizeof(*s));
	if (check_open(&p, end, err) < 0)
		return -1;
	for (;; first = false) {
		if (next_member(&p, end, &m, NULL, first, false, err) < 0)
			return -1;
		if (m.kind == V_END)
			break;
		if (slice_eq(m.key, "op") && m.kind == V_STR) {
			if (slice_eq(m.val, "ack"))
				s->reject = false;
			else if (slice_eq(m.val, "reject"))
				s->reject = true;
			else {
				*err = "op is neither ack nor reject";
				return -1;
			}
			have_op = true;
		} else if (slice_eq(m.key, "conn") && m.kind == V_STR)
			s->conn = m.val;
		else if (slice_eq(m.key, "reason") && m.kind == V_STR)
			s->reason = m.val;
		else if (slice_eq(m.key, "tag")) {
			if (m.kind != V_NUM || slice_ull(m.val, &s->tag) < 0) {
				*err = "tag is not an unsigned integer";
				return -1;
			}
			have_tag = true;
		}
	}
	if (!have_op || !have_tag || s->conn.p == NULL) {
		*err = "settle line needs op, conn and tag";
		return -1;
	}
	return 0;
}

void
settle_write(struct buf *b, bool reject, struct slice conn, unsigned long long tag,
    const char *reason)
{
	buf_add(b, reject ? "{\"op\":\"reject\",\"conn\":\"" : "{\"op\":\"ack\",\"conn\":\"",
	    reject ? 23 : 20);
	buf_add(b, conn.p, conn.n);
	buf_printf(b, "\",\"tag\":%llu", tag);
	if (reject) {
		buf_add(b, ",\"reason\":", 10);
		buf_json_str_lossy(b, reason ? reason : "", reason ? strlen(reason) : 0);
	}
	buf_add(b, "}\n", 2);
}
