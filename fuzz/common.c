#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../tblload/rows.h"
#include "canon.h"
#include "fuzz.h"
#include "log.h"
#include "util.h"

void
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\n==ORACLE== %s:%d: %s\n==ORACLE== ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

const char *const fuzz_table_kinds[NTABLES] = {
	"itttAAhj", "ittAihj", "itiAAihj", "ititAAjjiihj", "iit", "iittttb"
};

/* A target with nothing to set up need not say so. */
__attribute__((weak)) void
fuzz_setup(void)
{
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (setenv("LOG_LEVEL", "critical", 1) < 0)
		abort();
	log_init(fuzz_tool);
	fuzz_setup();
	return 0;
}

char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);

	if (size > 0)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

bool
fuzz_utf8(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end;
	size_t k;

	if (n == 0)
		return true;	/* s may be an empty buf's NULL */
	for (end = p + n; p < end;) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((k = utf8_seqlen(p, (size_t)(end - p))) == 0)
			return false;
		p += k;
	}
	return true;
}

/* Does a string or key of this (valid) JSON text hold the escape \u0000? */
static bool
json_nul(const char *p, const char *end)
{
	bool in_string = false;

	for (; p < end; p++) {
		if (*p == '"')
			in_string = !in_string;
		else if (in_string && *p == '\\') {
			if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
				return true;
			p++;
		}
	}
	return false;
}

bool
fuzz_json_ok(const char *s, size_t n, bool *has_nul)
{
	struct json_object *o;
	const char *err;

	if ((o = json_parse_strict(s, n, &err)) == NULL)
		return false;
	json_object_put(o);
	/* Strict JSON has no raw NUL: only the escape can make one. */
	*has_nul = json_nul(s, s + n);
	return true;
}

/* Decode one COPY field (no tabs in it); false on a bad escape or byte. */
static bool
copy_field(const char *p, size_t n, struct buf *out, bool *null)
{
	size_t i;

	buf_reset(out);
	*null = n == 2 && p[0] == '\\' && p[1] == 'N';
	if (*null)
		return true;
	for (i = 0; i < n; i++) {
		if (p[i] == '\r' || p[i] == '\0' || p[i] == '\n')
			return false;
		if (p[i] != '\\') {
			buf_addc(out, p[i]);
			continue;
		}
		if (++i == n)
			return false;
		switch (p[i]) {
		case '\\': buf_addc(out, '\\'); break;
		case 'n': buf_addc(out, '\n'); break;
		case 'r': buf_addc(out, '\r'); break;
		case 't': buf_addc(out, '\t'); break;
		default: return false;
		}
	}
	if (out->p == NULL)
		buf_add(out, "", 0);
	return true;
}

static bool
int32_text(const char *s, size_t n)
{
	long long v = 0;
	size_t i = 0;
	bool neg = false;

	if (n > 0 && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || n - i > 10)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	return neg ? -v >= INT32_MIN : v <= INT32_MAX;
}

/* A text[] literal as f_array_elem writes it: {"…","…"}, elements with
 * only \\ and \" escaped. Each element's text is checked with strict. */
static bool
array_literal(const char *s, size_t n, bool strict, const char **why)
{
	struct buf e = { 0 };
	size_t i = 1;
	bool ok = false;

	if (n < 2 || s[0] != '{' || s[n - 1] != '}') {
		*why = "not in braces";
		return false;
	}
	if (n == 2) {
		*why = "empty array (NULL is written for none)";
		return false;
	}
	for (;;) {
		if (s[i] != '"') {
			*why = "element not quoted";
			goto out;
		}
		buf_reset(&e);
		for (i++; i < n - 1 && s[i] != '"'; i++) {
			if (s[i] == '\\' && ++i == n - 1)
				break;
			buf_addc(&e, s[i]);
		}
		if (i >= n - 1) {
			*why = "unterminated element";
			goto out;
		}
		if (strict && (!fuzz_utf8(e.p ? e.p : "", e.len) ||
		    memchr(e.p ? e.p : "", '\0', e.len) != NULL)) {
			*why = "element is not valid UTF-8 without NUL";
			goto out;
		}
		i++;
		if (i == n - 1)
			break;
		if (s[i] != ',') {
			*why = "no comma between elements";
			goto out;
		}
		i++;
	}
	ok = true;
out:
	buf_free(&e);
	return ok;
}

void
fuzz_check_copy(const struct buf *b, const char *table, const char *cols, bool strict)
{
	const char *p = b->p, *end, *nl, *f, *tab, *why;
	struct buf v = { 0 };
	size_t c, ncols = strlen(cols), lineno = 0;
	bool null, nul;

	if (b->len == 0)
		return;
	end = b->p + b->len;
	CHECK(end[-1] == '\n', "%s: COPY text does not end with a newline", table);
	for (; p < end; p = nl + 1) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		for (c = 0, f = p; c < ncols; c++, f = tab + 1) {
			tab = memchr(f, '\t', (size_t)(nl - f));
			if (tab == NULL)
				tab = nl;
			CHECK(c + 1 < ncols || tab == nl,
			    "%s line %zu: more than %zu columns", table, lineno, ncols);
			CHECK(c + 1 == ncols || tab != nl,
			    "%s line %zu: %zu columns, want %zu", table, lineno, c + 1, ncols);
			CHECK(copy_field(f, (size_t)(tab - f), &v, &null),
			    "%s line %zu column %zu: bad COPY escape or byte: %.*s", table,
			    lineno, c + 1, (int)(tab - f), f);
			if (null) {
				CHECK(cols[c] != 'h' && cols[c] != 'j' && cols[c] != 'b',
				    "%s line %zu column %zu: NULL in a NOT NULL column",
				    table, lineno, c + 1);
				continue;
			}
			switch (cols[c]) {
			case 'i':
				CHECK(int32_text(v.p, v.len), "%s line %zu column %zu: not an "
				    "integer: %s", table, lineno, c + 1, v.p);
				break;
			case 'b':
				CHECK(v.len == 1 && (v.p[0] == 't' || v.p[0] == 'f'),
				    "%s line %zu column %zu: not a boolean", table, lineno, c + 1);
				break;
			case 'A':
				CHECK(array_literal(v.p, v.len, strict, &why),
				    "%s line %zu column %zu: bad text[] literal (%s): %s", table,
				    lineno, c + 1, why, v.p);
				break;
			case 'h':
				CHECK(!strict || (v.len == 64 && strspn(v.p, "0123456789abcdef") == 64),
				    "%s line %zu column %zu: not a SHA-256", table, lineno, c + 1);
				break;
			case 'j':
				if (!strict)
					break;
				CHECK(fuzz_json_ok(v.p, v.len, &nul), "%s line %zu column %zu: "
				    "jsonb is not strict JSON: %s", table, lineno, c + 1, v.p);
				CHECK(!nul, "%s line %zu column %zu: jsonb holds U+0000: %s",
				    table, lineno, c + 1, v.p);
				break;
			default:
				CHECK(!strict || (fuzz_utf8(v.p, v.len) &&
				    memchr(v.p, '\0', v.len) == NULL), "%s line %zu column %zu: "
				    "text is not valid UTF-8 without NUL", table, lineno, c + 1);
			}
		}
	}
	buf_free(&v);
}
