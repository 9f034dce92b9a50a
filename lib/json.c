/* Reading JSON text: the scanner and the string decoder (json.h). */
#include <string.h>

#include "json.h"
#include "num.h"

enum jkind
json_kind(struct jval v)
{
	if (v.p == NULL || v.n == 0)
		return J_NONE;
	switch (v.p[0]) {
	case 'n': return J_NULL;
	case 'f': return J_FALSE;
	case 't': return J_TRUE;
	case '"': return J_STRING;
	case '[': return J_ARRAY;
	case '{': return J_OBJECT;
	default:  return J_NUMBER;
	}
}

const unsigned char json_byte_class[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* '"' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,	/* '\\' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* A table lookup a byte, four bytes a turn: most strings are short, too
 * short for wider tricks to pay. */
const char *
json_str_plain(const char *p, const char *end, bool ascii)
{
	const unsigned char *u = (const unsigned char *)p;
	const unsigned char *e = (const unsigned char *)end;
	unsigned char mask = ascii ? 3 : 1;

	for (; e - u >= 4; u += 4) {
		if (json_byte_class[u[0]] & mask)
			return (const char *)u;
		if (json_byte_class[u[1]] & mask)
			return (const char *)u + 1;
		if (json_byte_class[u[2]] & mask)
			return (const char *)u + 2;
		if (json_byte_class[u[3]] & mask)
			return (const char *)u + 3;
	}
	for (; u < e; u++)
		if (json_byte_class[*u] & mask)
			break;
	return (const char *)u;
}

/*
 * From p, inside a string: the closing quote, or the first raw control
 * byte (also right after a backslash), or end. Sets *esc at a backslash.
 * Inline, for the scanner's inner loops.
 */
static inline const char *
str_close(const char *p, const char *end, bool *esc)
{
	const unsigned char *u = (const unsigned char *)p;
	const unsigned char *e = (const unsigned char *)end;

	for (;;) {
		while (u < e && !(json_byte_class[*u] & 1))
			u++;
		if (u == e || *u != '\\')
			return (const char *)u;
		*esc = true;
		if (++u == e || *u < 0x20)
			return (const char *)u;
		u++;
	}
}

const char *
json_str_end(const char *p, const char *end, struct jstr *s)
{
	s->p = p;
	s->esc = false;
	p = str_close(p, end, &s->esc);
	s->n = (size_t)(p - s->p);
	return p;
}

static bool
is_delim(char c)
{
	return c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\t' ||
	    c == '\n' || c == '\r';
}

/* A literal, exactly, or a number by its characters (not its grammar). */
static const char *
scalar_end(const char *p, const char *end)
{
	const char *q = p;
	size_t n;

	while (q < end && !is_delim(*q))
		q++;
	n = (size_t)(q - p);
	if ((n == 4 && (memcmp(p, "true", 4) == 0 || memcmp(p, "null", 4) == 0)) ||
	    (n == 5 && memcmp(p, "false", 5) == 0))
		return q;
	if (n == 0 || (*p != '-' && (*p < '0' || *p > '9')))
		return NULL;
	for (; p < q; p++)
		if ((*p < '0' || *p > '9') && *p != '-' && *p != '+' && *p != '.' &&
		    *p != 'e' && *p != 'E')
			return NULL;
	return q;
}

const char *
json_value_end(const char *p, const char *end)
{
	size_t depth = 0;
	bool esc;

	p = json_skip_ws(p, end);
	if (p == end)
		return NULL;
	if (*p == '"') {
		p = str_close(p + 1, end, &esc);
		return p < end && *p == '"' ? p + 1 : NULL;
	}
	if (*p != '{' && *p != '[')
		return scalar_end(p, end);
	/* Only strings can hide brackets: count them outside strings. */
	for (; p < end; p++) {
		switch (*p) {
		case '"':
			p = str_close(p + 1, end, &esc);
			if (p == end || *p != '"')
				return NULL;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			if (--depth == 0)
				return p + 1;
			break;
		}
	}
	return NULL;
}

static int
jfail(struct jiter *it, const char *why)
{
	it->err = why;
	return -1;
}

static int
jiter_begin(struct jiter *it, struct jval v, char open)
{
	memset(it, 0, sizeof(*it));
	it->first = true;
	if (v.p == NULL || v.n == 0 || v.p[0] != open) {
		it->done = true;
		return jfail(it, open == '{' ? "not a JSON object" : "not a JSON array");
	}
	it->p = v.p + 1;
	it->end = v.p + v.n;
	return 0;
}

int
jiter_object(struct jiter *it, struct jval v)
{
	return jiter_begin(it, v, '{');
}

int
jiter_array(struct jiter *it, struct jval v)
{
	return jiter_begin(it, v, '[');
}

/* Move to the next item: past its comma, or past the closing bracket. */
static int
next_item(struct jiter *it, char close)
{
	const char *p;

	if (it->done)
		return 0;
	p = json_skip_ws(it->p, it->end);
	if (p < it->end && *p == close) {
		it->p = p + 1;
		it->done = true;
		return 0;
	}
	if (!it->first) {
		if (p == it->end || *p != ',')
			return jfail(it, close == '}' ? "expected ',' or '}'" :
			    "expected ',' or ']'");
		p = json_skip_ws(p + 1, it->end);
	}
	it->first = false;
	it->p = p;
	return 1;
}

int
jiter_string(struct jiter *it, struct jstr *s)
{
	const char *q;

	if (it->p == it->end || *it->p != '"')
		return jfail(it, "expected a string");
	q = json_str_end(it->p + 1, it->end, s);
	if (q == it->end) {
		it->cut = true;
		return jfail(it, "unterminated string");
	}
	if (*q != '"')
		return jfail(it, "raw control character in a string");
	it->p = q + 1;
	return 1;
}

int
jiter_value(struct jiter *it, struct jval *v)
{
	const char *q;
	struct jstr s;

	if (it->p == it->end)
		return jfail(it, "missing value");
	if (*it->p == '"') {
		if (jiter_string(it, &s) < 0)
			return -1;
		v->p = s.p - 1;
		v->n = s.n + 2;
		return 1;
	}
	if ((q = json_value_end(it->p, it->end)) == NULL)
		return jfail(it, "bad value");
	v->p = it->p;
	v->n = (size_t)(q - it->p);
	it->p = q;
	return 1;
}

int
jiter_key(struct jiter *it, struct jstr *key)
{
	const char *p;
	int rc;

	if ((rc = next_item(it, '}')) <= 0)
		return rc;
	if (jiter_string(it, key) < 0)
		return jfail(it, "expected a member name");
	p = json_skip_ws(it->p, it->end);
	if (p == it->end || *p != ':')
		return jfail(it, "expected ':' after a member name");
	it->p = json_skip_ws(p + 1, it->end);
	if (it->p == it->end)
		return jfail(it, "missing value");
	return 1;
}

int
jiter_member(struct jiter *it, struct jstr *key, struct jval *v)
{
	int rc;

	if ((rc = jiter_key(it, key)) <= 0)
		return rc;
	return jiter_value(it, v);
}

int
jiter_elem(struct jiter *it, struct jval *v)
{
	int rc;

	if ((rc = next_item(it, ']')) <= 0)
		return rc;
	return jiter_value(it, v);
}

struct jval
json_member(struct jval obj, const char *name)
{
	struct jval v, found = { NULL, 0 };
	struct jstr key;
	struct jiter it;

	if (jiter_object(&it, obj) < 0)
		return found;
	while (jiter_member(&it, &key, &v) == 1)
		if (jstr_eq(key, name))
			found = v;
	return found;
}

bool
json_string(struct jval v, struct jstr *s)
{
	if (json_kind(v) != J_STRING || v.n < 2)
		return false;
	s->p = v.p + 1;
	s->n = v.n - 2;
	s->esc = memchr(s->p, '\\', s->n) != NULL;
	return true;
}

/* Four hex digits (fewer if the text ends), as a number; a character that
 * is not a hex digit counts as 0. */
static unsigned long
hex4(const char **pp, const char *end)
{
	const char *p = *pp;
	unsigned long v = 0;
	int i, d;

	for (i = 0; i < 4 && p < end; i++, p++) {
		d = hex_digit((unsigned char)*p);
		v = v << 4 | (unsigned long)(d < 0 ? 0 : d);
	}
	*pp = p;
	return v;
}

/* The escape at p, just past its backslash: its character, as UTF-8 in
 * out, and its length. Returns the text after it. */
static const char *
unescape(const char *p, const char *end, char out[4], size_t *len)
{
	const char *q;
	unsigned long cp, lo;

	*len = 1;
	if (p == end) {
		*len = 0;	/* a lone backslash at the end: nothing */
		return p;
	}
	switch (*p++) {
	case 'b': out[0] = '\b'; return p;
	case 'f': out[0] = '\f'; return p;
	case 'n': out[0] = '\n'; return p;
	case 'r': out[0] = '\r'; return p;
	case 't': out[0] = '\t'; return p;
	case 'u': break;
	default:  out[0] = p[-1]; return p;
	}
	cp = hex4(&p, end);
	if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
		q = p + 2;
		lo = hex4(&q, end);
		if (lo >= 0xdc00 && lo < 0xe000) {
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			p = q;
		}
	}
	if (cp >= 0xd800 && cp < 0xe000)
		cp = 0xfffd;
	if (cp < 0x80)
		out[0] = (char)cp;
	else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		*len = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		*len = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		*len = 4;
	}
	return p;
}

void
jstr_decode(struct buf *b, struct jstr s)
{
	const char *p = s.p, *end, *bs;
	char u[4];
	size_t k;

	/* An absent member is a NULL jstr: no arithmetic on its pointer. */
	if (!s.esc) {
		buf_add(b, s.p, s.n);
		return;
	}
	end = s.p + s.n;
	while (p < end) {
		if ((bs = memchr(p, '\\', (size_t)(end - p))) == NULL)
			bs = end;
		buf_add(b, p, (size_t)(bs - p));
		if (bs == end)
			break;
		p = unescape(bs + 1, end, u, &k);
		buf_add(b, u, k);
	}
}

bool
jstr_eq_escaped(struct jstr s, const char *plain)
{
	size_t n = strlen(plain), k, run;
	const char *p = s.p, *end = s.p + s.n, *bs;
	char u[4];

	while (p < end) {
		if ((bs = memchr(p, '\\', (size_t)(end - p))) == NULL)
			bs = end;
		run = (size_t)(bs - p);
		if (run > n || memcmp(p, plain, run) != 0)
			return false;
		plain += run;
		n -= run;
		if (bs == end)
			break;
		p = unescape(bs + 1, end, u, &k);
		if (k > n || memcmp(u, plain, k) != 0)
			return false;
		plain += k;
		n -= k;
	}
	return n == 0;
}

size_t
utf8_seqlen(const unsigned char *p, size_t n)
{
	unsigned c = p[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
			return 0;
		if (c == 0xe0 && p[1] < 0xa0)
			return 0;	/* overlong */
		if (c == 0xed && p[1] >= 0xa0)
			return 0;	/* surrogate */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 ||
		    (p[3] & 0xc0) != 0x80)
			return 0;
		if (c == 0xf0 && p[1] < 0x90)
			return 0;
		if (c == 0xf4 && p[1] >= 0x90)
			return 0;
		return 4;
	}
	return 0;
}
