#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define JSON_MAX_DEPTH	200

static void write_value(struct buf *, struct json_object *, unsigned, int);

struct member {
	const char		*key;
	struct json_object	*val;
};

static void
sort_members(struct member *m, size_t n)
{
	struct member t;
	size_t i, j;

	/* Bodies arrive sorted already, so insertion sort runs in linear time. */
	for (i = 1; i < n; i++) {
		if (strcmp(m[i - 1].key, m[i].key) <= 0)
			continue;
		t = m[i];
		for (j = i; j > 0 && strcmp(m[j - 1].key, t.key) > 0; j--)
			m[j] = m[j - 1];
		m[j] = t;
	}
}

static void
write_object(struct buf *b, struct json_object *o, unsigned flags, int top)
{
	struct member local[64], *m = local;
	struct lh_entry *e;
	size_t n = 0, i, cap;

	cap = (size_t)json_object_object_length(o);
	if (cap > NELEM(local))
		m = xmalloc(cap * sizeof(*m));
	for (e = json_object_get_object(o)->head; e != NULL; e = e->next) {
		m[n].key = (const char *)lh_entry_k(e);
		m[n].val = (struct json_object *)lh_entry_v(e);
		if (top && (flags & CANON_DROP_META) &&
		    (strcmp(m[n].key, "type") == 0 || strcmp(m[n].key, "sha256") == 0))
			continue;
		n++;
	}
	sort_members(m, n);
	buf_addc(b, '{');
	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ',');
		json_put_str(b, m[i].key, strlen(m[i].key));
		buf_addc(b, ':');
		write_value(b, m[i].val, flags, 0);
	}
	buf_addc(b, '}');
	if (m != local)
		free(m);
}

static void
write_value(struct buf *b, struct json_object *o, unsigned flags, int top)
{
	size_t i, n;
	const char *s;

	switch (json_object_get_type(o)) {
	case json_type_null:
		buf_add(b, "null", 4);
		break;
	case json_type_boolean:
		if (json_object_get_boolean(o))
			buf_add(b, "true", 4);
		else
			buf_add(b, "false", 5);
		break;
	case json_type_string:
		json_put_str(b, json_object_get_string(o),
		    (size_t)json_object_get_string_len(o));
		break;
	case json_type_int:
	case json_type_double:
		/* json-c keeps the text of a parsed double; integers print exactly. */
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		buf_adds(b, s);
		break;
	case json_type_array:
		n = json_object_array_length(o);
		buf_addc(b, '[');
		for (i = 0; i < n; i++) {
			if (i)
				buf_addc(b, ',');
			write_value(b, json_object_array_get_idx(o, i), flags, 0);
		}
		buf_addc(b, ']');
		break;
	case json_type_object:
		write_object(b, o, flags, top);
		break;
	}
}

void
canon_write(struct buf *b, struct json_object *o, unsigned flags)
{
	write_value(b, o, flags, 1);
}

/* The first byte below 0x20 in s, or NULL; eight bytes at a time. */
static const char *
find_control(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	uint64_t w;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&w, s + i, 8);
		if (((w - 0x20 * ones) & ~w & highs) != 0)
			break;
	}
	for (; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			return s + i;
	return NULL;
}

/*
 * json-c checks only the shape of multi-byte sequences and lets overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF through, which
 * PostgreSQL then refuses: check UTF-8 strictly (RFC 3629), ASCII eight
 * bytes at a time.
 */
static const char *
check_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	uint64_t w;
	size_t k;

	while (p < end) {
		if ((size_t)(end - p) >= 8) {
			memcpy(&w, p, 8);
			if ((w & 0x8080808080808080ULL) == 0) {
				p += 8;
				continue;
			}
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((k = utf8_seqlen(p, (size_t)(end - p))) == 0)
			return "invalid utf-8 string";
		p += k;
	}
	return NULL;
}

/*
 * JSON allows raw control characters nowhere but as whitespace between
 * tokens, and json-c does not check this inside strings: do it here. Only
 * text that holds a control character at all is scanned, string by string.
 */
static const char *
check_controls(const char *s, size_t n)
{
	static char why[64];
	const char *p, *end = s + n;
	struct jstr str;
	unsigned char c;

	if ((p = find_control(s, n)) == NULL)
		return NULL;
	for (p = s; p < end; p++) {
		c = (unsigned char)*p;
		if (c == '"') {
			/* The string's end, or a control byte in it. */
			if ((p = json_str_end(p + 1, end, &str)) == end)
				return NULL;
			if ((c = (unsigned char)*p) != '"')
				goto bad;
		} else if (c < 0x20 && c != '\t' && c != '\r' && c != '\n')
			goto bad;
	}
	return NULL;
bad:
	snprintf(why, sizeof(why), "raw control character U+%04X", c);
	return why;
}

struct json_object *
json_parse_strict(const char *s, size_t n, const char **err)
{
	static json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error jerr;

	if (tok == NULL) {
		if ((tok = json_tokener_new_ex(JSON_MAX_DEPTH)) == NULL)
			die(EXIT_TEMPFAIL, "out of memory creating a JSON parser");
		/* UTF-8 is checked strictly by check_utf8: json-c's check lets overlong forms and surrogates through. */
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	}
	json_tokener_reset(tok);
	if (n > 0x7fffffff) {
		*err = "too large";
		return NULL;
	}
	if ((*err = check_controls(s, n)) != NULL)
		return NULL;
	if ((*err = check_utf8(s, n)) != NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)n);
	jerr = json_tokener_get_error(tok);
	if (o == NULL || jerr != json_tokener_success) {
		if (o != NULL)
			json_object_put(o);
		/*
		 * json_tokener_reset does not clear a pending high surrogate:
		 * text that ends just after "\ud800" would put a U+FFFD into
		 * the next text's first \u escape. Only a parse that stopped
		 * early can leave one, so only then is the parser made anew.
		 */
		json_tokener_free(tok);
		tok = NULL;
		*err = jerr == json_tokener_continue ? "unexpected end of input" :
		    json_tokener_error_desc(jerr);
		return NULL;
	}
	/* Only whitespace may follow the value. */
	if (json_skip_ws(s + json_tokener_get_parse_end(tok), s + n) != s + n) {
		json_object_put(o);
		*err = "text after the JSON value";
		return NULL;
	}
	return o;
}
