#include <stdio.h>
#include <stdlib.h>

#include "buf.h"
#include "util.h"

void
buf_reserve(struct buf *b, size_t more)
{
	size_t cap;

	/* One byte more than asked, so the text can always end in NUL. */
	if (b->len + more < b->cap)
		return;
	cap = b->cap ? b->cap : 256;
	while (cap <= b->len + more)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return;
	buf_reserve(b, n);
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return;
	if (b->p == NULL || (size_t)n >= b->cap - b->len) {
		buf_reserve(b, (size_t)n + 1);
		vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	}
	b->len += (size_t)n;
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		buf_reset(b);
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	b->p[b->len] = '\0';
}

/* Escape n bytes as the inside of a JSON string: only '"', '\\' and
 * U+0000..U+001F are escaped (short forms where JSON has them, else \u00xx);
 * everything else is copied as it is. */
/* Nonzero for the bytes that JSON strings must escape. */
static const unsigned char needs_escape[256] = {
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* '"' */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,	/* '\\' */
};

static void
json_escape(struct buf *b, const unsigned char *p, const unsigned char *end)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *run;

	buf_reserve(b, (size_t)(end - p));
	while (p < end) {
		run = p;
		while (p < end && !needs_escape[*p])
			p++;
		buf_add(b, run, (size_t)(p - run));
		if (p == end)
			break;
		buf_reserve(b, 6);
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
	b->p[b->len] = '\0';
}

/* As buf_add, these take (NULL, 0) for an empty text: an empty buf has no
 * memory yet, and NULL + 0 is undefined, so no pointer arithmetic then. */
void
buf_json_escape(struct buf *b, const char *s, size_t n)
{
	if (n > 0)
		json_escape(b, (const unsigned char *)s, (const unsigned char *)s + n);
}

void
buf_json_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	buf_reserve(b, n + 2);
	buf_addc(b, '"');
	if (n > 0)
		json_escape(b, p, p + n);
	buf_addc(b, '"');
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
		json_escape(b, run, p);
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
