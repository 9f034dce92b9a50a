#include <string.h>

#include "jscan.h"

enum jkind
jkind(struct slice s)
{
	if (s.p == NULL || s.n == 0)
		return J_NONE;
	switch (s.p[0]) {
	case 'n': return J_NULL;
	case 'f': return J_FALSE;
	case 't': return J_TRUE;
	case '"': return J_STRING;
	case '[': return J_ARRAY;
	case '{': return J_OBJECT;
	default:  return J_NUMBER;
	}
}

static const char *
skip_string(const char *p, const char *end)
{
	/* p is at the opening quote. */
	for (p++; p < end; p++) {
		if (*p == '"')
			return p + 1;
		if (*p == '\\' && ++p == end)
			return NULL;
	}
	return NULL;
}

const char *
json_skip(const char *p, const char *end)
{
	int depth = 0;

	p = json_skip_ws(p, end);
	if (p == end)
		return NULL;
	if (*p != '{' && *p != '[') {
		if (*p == '"')
			return skip_string(p, end);
		while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' &&
		    *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		return p;
	}
	/* Containers: only strings can hide brackets, so track depth outside them. */
	while (p < end) {
		switch (*p) {
		case '"':
			if ((p = skip_string(p, end)) == NULL)
				return NULL;
			continue;
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
		p++;
	}
	return NULL;
}

int
jiter_init(struct jiter *it, struct slice c, enum jkind want)
{
	it->first = true;
	if (jkind(c) != want) {
		it->p = it->end = NULL;
		return -1;
	}
	it->p = c.p + 1;
	it->end = c.p + c.n;
	return 0;
}

/* Move to the next item: past ',' or onto the closing bracket. */
static int
next_item(struct jiter *it, char close)
{
	if (it->p == NULL)
		return 0;
	it->p = json_skip_ws(it->p, it->end);
	if (it->p == it->end)
		return -1;
	if (*it->p == close) {
		it->p = NULL;
		return 0;
	}
	if (!it->first) {
		if (*it->p != ',')
			return -1;
		it->p = json_skip_ws(it->p + 1, it->end);
	}
	it->first = false;
	return it->p < it->end ? 1 : -1;
}

static int
take_value(struct jiter *it, struct slice *val)
{
	const char *q;

	if ((q = json_skip(it->p, it->end)) == NULL || q == it->p)
		return -1;
	val->p = it->p;
	val->n = (size_t)(q - it->p);
	val->esc = false;
	it->p = q;
	return 1;
}

int
jiter_member(struct jiter *it, struct slice *key, struct slice *val)
{
	const char *q;
	int rc;

	if ((rc = next_item(it, '}')) <= 0)
		return rc;
	if (*it->p != '"' || (q = skip_string(it->p, it->end)) == NULL)
		return -1;
	key->p = it->p + 1;
	key->n = (size_t)(q - it->p) - 2;
	key->esc = memchr(key->p, '\\', key->n) != NULL;
	it->p = json_skip_ws(q, it->end);
	if (it->p == it->end || *it->p != ':')
		return -1;
	it->p = json_skip_ws(it->p + 1, it->end);
	return take_value(it, val);
}

int
jiter_elem(struct jiter *it, struct slice *val)
{
	int rc;

	if ((rc = next_item(it, ']')) <= 0)
		return rc;
	return take_value(it, val);
}

struct slice
json_get(struct slice obj, const char *name)
{
	struct slice key, val, found = { NULL, 0, false };
	struct jiter it;

	if (jiter_init(&it, obj, J_OBJECT) < 0)
		return found;
	while (jiter_member(&it, &key, &val) == 1)
		if (slice_eq(key, name))
			found = val;
	return found;
}

void
json_string_decode(struct buf *b, struct slice s)
{
	struct slice inner;

	if (jkind(s) != J_STRING || s.n < 2)
		return;
	inner.p = s.p + 1;
	inner.n = s.n - 2;
	inner.esc = memchr(inner.p, '\\', inner.n) != NULL;
	slice_decode(b, inner);
}
