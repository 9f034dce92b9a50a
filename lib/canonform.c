#include <string.h>

#include "canonform.h"
#include "json.h"
#include "num.h"

#define MAX_DEPTH	190	/* below json_parse_strict's, so both agree */

struct scan {
	const char	*p, *end;
	/* The record's top level: where "id" is, whether a key to drop is there. */
	const char	*id;
	size_t		 id_len;
	int		 meta;
};

static int value(struct scan *, int depth);

static int
hexlower(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/*
 * A string in canonical form: raw bytes ≥ 0x20 as valid UTF-8, and only
 * the escapes canon_write writes (\" \\ \b \f \n \r \t, and \u00xx in
 * lowercase for the other control characters). With key set, no escape at
 * all (keys are compared raw). Plain runs are skipped by the scanner's
 * json_str_plain; the rules are checked at the bytes where it stops.
 * Leaves s->p after the closing quote.
 */
static int
string(struct scan *s, int key, const char **start, size_t *len)
{
	const char *p = s->p + 1, *end = s->end;
	const unsigned char *u;
	size_t k;
	int v;

	*start = p;
	for (;;) {
		p = json_str_plain(p, end, true);
		if (p == end)
			return 0;
		u = (const unsigned char *)p;
		if (*u == '"') {
			*len = (size_t)(p - *start);
			s->p = p + 1;
			return 1;
		}
		if (*u < 0x20)
			return 0;
		if (*u >= 0x80) {
			if ((k = utf8_seqlen(u, (size_t)(end - p))) == 0)
				return 0;
			p += k;
			continue;
		}
		/* A backslash. */
		if (key || end - p < 2)
			return 0;
		switch (p[1]) {
		case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
			p += 2;
			continue;
		case 'u':
			if (end - p < 6 || p[2] != '0' || p[3] != '0' || !hexlower(p[4]) ||
			    !hexlower(p[5]))
				return 0;
			v = hex_digit(p[4]) << 4 | hex_digit(p[5]);
			if (v >= 0x20 || v == '\b' || v == '\f' || v == '\n' || v == '\r' ||
			    v == '\t')
				return 0;
			p += 6;
			continue;
		default:
			return 0;
		}
	}
}

/* Keys strictly increasing in byte order, as canon_write sorts them. */
static int
key_after(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	return c < 0 || (c == 0 && an < bn);
}

/* A member of an object: its key (after the previous one), ':', its value. */
static int
member(struct scan *s, int depth, int top, const char **prev, size_t *plen)
{
	const char *key;
	size_t klen;

	if (s->p >= s->end || *s->p != '"' || !string(s, 1, &key, &klen))
		return 0;
	if (*prev != NULL && !key_after(*prev, *plen, key, klen))
		return 0;
	*prev = key;
	*plen = klen;
	if (s->p >= s->end || *s->p++ != ':')
		return 0;
	if (top && ((klen == 4 && memcmp(key, "type", 4) == 0) ||
	    (klen == 6 && memcmp(key, "sha256", 6) == 0)))
		s->meta = 1;
	if (!(top && klen == 2 && memcmp(key, "id", 2) == 0))
		return value(s, depth + 1);
	s->id = s->p;
	if (!value(s, depth + 1))
		return 0;
	s->id_len = (size_t)(s->p - s->id);
	return 1;
}

/* The members of an object (close '}') or the elements of an array, from
 * just before the first: no white space, a comma between two. */
static int
container(struct scan *s, int depth, int top, char close)
{
	const char *prev = NULL;
	size_t plen = 0;

	s->p++;
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 1;
	}
	for (;;) {
		if (!(close == '}' ? member(s, depth, top, &prev, &plen) : value(s, depth + 1)))
			return 0;
		if (s->p >= s->end)
			return 0;
		if (*s->p == close) {
			s->p++;
			return 1;
		}
		if (*s->p++ != ',')
			return 0;
	}
}

static int
literal(struct scan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return 0;
	s->p += n;
	return 1;
}

/* Numbers are not recognised: json-c writes integers by value, and Discogs
 * records have none; those records take the slow path. */
static int
value(struct scan *s, int depth)
{
	const char *str;
	size_t len;

	if (s->p >= s->end || depth > MAX_DEPTH)
		return 0;
	switch (*s->p) {
	case '{': return container(s, depth, 0, '}');
	case '[': return container(s, depth, 0, ']');
	case '"': return string(s, 0, &str, &len);
	case 't': return literal(s, "true", 4);
	case 'f': return literal(s, "false", 5);
	case 'n': return literal(s, "null", 4);
	default:  return 0;
	}
}

/* The record's id, as tblhash takes it: a string of 1 to 10 digits whose
 * value is 1..2^31-1 (leading zeros allowed, as strtoll reads them). */
static int
record_id(const char *v, size_t n, long long *id)
{
	long long x = 0;
	size_t i;

	if (n < 3 || v[0] != '"' || v[n - 1] != '"')
		return 0;
	for (i = 1; i < n - 1; i++) {
		if (v[i] < '0' || v[i] > '9' || x > 2147483647LL)
			return 0;
		x = x * 10 + (v[i] - '0');
	}
	if (n - 2 > 19 || x < 1 || x > 2147483647LL)
		return 0;
	*id = x;
	return 1;
}

int
canon_recognise(const char *body, size_t n, struct canon_record *r)
{
	static const char wrapper[] = "{\"type\":\"data\",\"id\":\"";
	struct scan s = { body, body + n, NULL, 0, 0 };
	const char *p, *q;
	size_t i;

	memset(r, 0, sizeof(*r));
	if (n > sizeof(wrapper) && memcmp(body, wrapper, sizeof(wrapper) - 1) == 0) {
		/* {"type":"data","id":"<digits>","sha256":"<64 hex>",<record members>} */
		p = body + sizeof(wrapper) - 1;
		for (q = p; q < s.end && *q >= '0' && *q <= '9'; q++)
			;
		if (q == p || s.end - q < 12 + 64 + 2 || memcmp(q, "\",\"sha256\":\"", 12) != 0)
			return 0;
		q += 12;
		for (i = 0; i < 64; i++)
			if (!hexlower(q[i]))
				return 0;
		q += 64;
		if (q[0] != '"' || q[1] != ',')
			return 0;
		/* The record is "{" and the rest: scan it as an object from the comma. */
		s.p = q + 1;
		r->head = "{";
		r->head_len = 1;
		r->rest = q + 2;
		r->rest_len = (size_t)(s.end - r->rest);
		if (!container(&s, 0, 1, '}'))
			return 0;
	} else {
		if (n == 0 || body[0] != '{')
			return 0;
		r->rest = body;
		r->rest_len = n;
		if (!container(&s, 0, 1, '}'))
			return 0;
	}
	/* The whole text, nothing after it; no member to drop; an id to use. */
	return s.p == s.end && !s.meta && s.id != NULL && record_id(s.id, s.id_len, &r->id);
}
