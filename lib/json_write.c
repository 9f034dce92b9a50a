/* Writing JSON text into a struct buf (json.h). */
#include <math.h>
#include <string.h>

#include "json.h"

/* A comma when the text so far ends a value: a quote, a digit, a letter
 * (of true, false or null), '}' or ']'. */
static inline void
sep(struct buf *b)
{
	char c;

	if (b->len == 0)
		return;
	c = b->p[b->len - 1];
	if (c == '"' || c == '}' || c == ']' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))
		buf_addc(b, ',');
}

/* Escape bytes as the inside of a JSON string: only '"', '\' and
 * U+0000..U+001F (short forms where JSON has them, else \u00xx); all else
 * is copied as it is. */
static void
escape(struct buf *b, const unsigned char *p, const unsigned char *end)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *run;
	size_t n;

	while (p < end) {
		run = p;
		while (p < end && !(json_byte_class[*p] & 1))
			p++;
		/* Room for the run and one escape after it. */
		n = (size_t)(p - run);
		if (b->len + n + 7 > b->cap)
			buf_reserve(b, n + 6);
		memcpy(b->p + b->len, run, n);
		b->len += n;
		if (p == end)
			break;
		b->p[b->len++] = '\\';
		switch (*p) {
		case '"':  b->p[b->len++] = '"'; break;
		case '\\': b->p[b->len++] = '\\'; break;
		case '\b': b->p[b->len++] = 'b'; break;
		case '\f': b->p[b->len++] = 'f'; break;
		case '\n': b->p[b->len++] = 'n'; break;
		case '\r': b->p[b->len++] = 'r'; break;
		case '\t': b->p[b->len++] = 't'; break;
		default:
			memcpy(b->p + b->len, "u00", 3);
			b->p[b->len + 3] = hex[*p >> 4];
			b->p[b->len + 4] = hex[*p & 15];
			b->len += 5;
		}
		p++;
	}
	if (b->p != NULL)
		b->p[b->len] = '\0';
}

/* As buf_add, these take (NULL, 0) for an empty text: an empty buf has no
 * memory yet, and NULL + 0 is undefined, so no pointer arithmetic then. */
void
json_escape(struct buf *b, const char *s, size_t n)
{
	if (n > 0)
		escape(b, (const unsigned char *)s, (const unsigned char *)s + n);
}

void
buf_json_str(struct buf *b, const char *s, size_t n)
{
	buf_reserve(b, n + 2);
	buf_addc(b, '"');
	json_escape(b, s, n);
	buf_addc(b, '"');
}

void
buf_json_str_lossy(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end, *run;
	size_t k;

	buf_addc(b, '"');
	for (end = n > 0 ? p + n : p; p < end;) {
		run = p;
		while (p < end && *p < 0x80)
			p++;
		escape(b, run, p);
		if (p == end)
			break;
		if ((k = utf8_seqlen(p, (size_t)(end - p))) == 0) {
			buf_add(b, "\\ufffd", 6);
			p++;
		} else {
			buf_add(b, p, k);
			p += k;
		}
	}
	buf_addc(b, '"');
}

void
json_put_str(struct buf *b, const char *s, size_t n)
{
	sep(b);
	buf_json_str(b, s, n);
}

void
json_put_str_lossy(struct buf *b, const char *s, size_t n)
{
	sep(b);
	buf_json_str_lossy(b, s, n);
}

void
json_put_escaped(struct buf *b, struct jstr s)
{
	sep(b);
	buf_reserve(b, s.n + 2);
	buf_addc(b, '"');
	buf_add(b, s.p, s.n);
	buf_addc(b, '"');
}

void
json_put_raw(struct buf *b, struct jval v)
{
	sep(b);
	buf_add(b, v.p, v.n);
}

void
json_key(struct buf *b, const char *name)
{
	sep(b);
	buf_json_str(b, name, strlen(name));
	buf_addc(b, ':');
}

void
json_open(struct buf *b, char bracket)
{
	sep(b);
	buf_addc(b, bracket);
}

void
json_close(struct buf *b, char bracket)
{
	buf_addc(b, bracket);
}

void
json_put_int(struct buf *b, long long v)
{
	sep(b);
	buf_printf(b, "%lld", v);
}

void
json_put_uint(struct buf *b, unsigned long long v)
{
	sep(b);
	buf_printf(b, "%llu", v);
}

void
json_put_fixed(struct buf *b, double v, int decimals)
{
	sep(b);
	if (isfinite(v))
		buf_printf(b, "%.*f", decimals, v);
	else
		buf_add(b, "null", 4);
}

void
json_put_bool(struct buf *b, bool v)
{
	sep(b);
	buf_adds(b, v ? "true" : "false");
}

void
json_put_null(struct buf *b)
{
	sep(b);
	buf_add(b, "null", 4);
}
