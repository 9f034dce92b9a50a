/*
 * JSON text, read and written in one place.
 *
 * Reading (json.c) is a bounds-checked scanner over text that is not
 * trusted to be JSON. Nothing is built: a value is a struct jval, its text
 * as it stands, and a string's contents a struct jstr, still escaped. Every step stops
 * at the end of the text, so text that is not JSON gives an error (-1,
 * NULL or a J_NONE value), never a read outside it. What is only skipped
 * is only matched, not validated: brackets balanced, strings closed and
 * free of raw control bytes. Strict validation is json-c's
 * (json_parse_strict, canon.h) and the canonical check's (canonform.h).
 *
 * Writing (json_write.c) appends to a struct buf. Text comes in three
 * kinds, each with its own type and its own call, so that nothing is
 * escaped twice or not at all:
 *   plain text (const char *, size_t), escaped on output: json_put_str;
 *   a struct jstr, already escaped as it was read: json_put_escaped;
 *   a struct jval, JSON text: json_put_raw.
 */
#ifndef TBL_JSON_H
#define TBL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "buf.h"

/* The contents of a JSON string as they stand between its quotes, still
 * escaped; esc says whether they hold a backslash at all. */
struct jstr {
	const char	*p;
	size_t		 n;
	bool		 esc;
};

/* The text of one JSON value, of any kind. p is NULL for none. */
struct jval {
	const char	*p;
	size_t		 n;
};

/* ---- reading ---------------------------------------------------------- */

/* The kind of a value, from its first byte. */
enum jkind { J_NONE, J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

enum jkind json_kind(struct jval);

/* The first byte from p on that is not JSON white space, or end. */
static inline const char *
json_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* From p, the first byte that ends a run of plain string text: '"', '\',
 * a byte below 0x20, or with ascii also one above 0x7f; or end. */
const char *json_str_plain(const char *p, const char *end, bool ascii);

/*
 * p is just past the opening quote of a string: fill s with its contents
 * and return the closing quote; or the first raw byte below 0x20, escaped
 * or not (no string may hold one); or end, if the text ends first.
 */
const char *json_str_end(const char *p, const char *end, struct jstr *s);

/* The end of the value that starts at p (after white space), or NULL if
 * it is malformed. Literals and numbers are checked by their characters,
 * containers only matched. */
const char *json_value_end(const char *p, const char *end);

/*
 * The members of an object or the elements of an array, one at a time.
 * Each call returns 1 with the next one, 0 at the closing bracket (p is
 * then just past it) or -1 when the text is malformed, with the reason in
 * err; cut is then set if the text ended inside a string.
 */
struct jiter {
	const char	*p, *end;
	bool		 first, done, cut;
	const char	*err;
};

/* Begin on v; -1 if it is not an object (an array). v may run on past the
 * closing bracket: iteration stops there. */
int	jiter_object(struct jiter *, struct jval v);
int	jiter_array(struct jiter *, struct jval v);
/* A member: its name, then its value. jiter_key alone reads up to the
 * value (p is then on its first byte), for a reader that takes the value
 * itself: with jiter_string, jiter_value, or by moving p past it. */
int	jiter_member(struct jiter *, struct jstr *key, struct jval *val);
int	jiter_key(struct jiter *, struct jstr *key);
int	jiter_value(struct jiter *, struct jval *val);
int	jiter_string(struct jiter *, struct jstr *val);
int	jiter_elem(struct jiter *, struct jval *val);

/* The value of member name of an object, the last one if it is repeated,
 * or a J_NONE value. */
struct jval json_member(struct jval obj, const char *name);

/* The contents of a string value; false if v is not a string. */
bool	json_string(struct jval v, struct jstr *s);

/* Do s's contents, decoded, equal the plain text exactly? Inline for the
 * common case, no escape, where a literal's length is known when compiled. */
bool	jstr_eq_escaped(struct jstr s, const char *plain);

static inline bool
jstr_eq(struct jstr s, const char *plain)
{
	size_t n = strlen(plain);

	if (s.esc)
		return jstr_eq_escaped(s, plain);
	return s.n == n && (n == 0 || memcmp(s.p, plain, n) == 0);
}

/* Append s's contents, decoded. An escaped lone surrogate becomes U+FFFD,
 * as json-c makes it. */
void	jstr_decode(struct buf *, struct jstr s);

/* ---- writing ---------------------------------------------------------- */

/*
 * Every call below first puts a comma when the text so far ends a value
 * (a quote, a digit, a letter, '}' or ']'): the members of an object and
 * the elements of an array are written by calls alone, also into an
 * object that was begun elsewhere (state_begin).
 */
void	json_open(struct buf *, char bracket);		/* '{' or '[' */
void	json_close(struct buf *, char bracket);		/* '}' or ']' */
/* A member name (plain text) and its colon; its value comes next. */
void	json_key(struct buf *, const char *name);
/* Plain text as a string, escaped for '"', '\' and U+0000..U+001F only. */
void	json_put_str(struct buf *, const char *plain, size_t);
/* The same, with bytes that are not valid UTF-8 made U+FFFD, so that the
 * result is always valid JSON (logs, reasons, text from outside). */
void	json_put_str_lossy(struct buf *, const char *plain, size_t);
/* A string whose contents are escaped already: only quoted. */
void	json_put_escaped(struct buf *, struct jstr);
/* JSON text, as it is. */
void	json_put_raw(struct buf *, struct jval);
void	json_put_int(struct buf *, long long);
void	json_put_uint(struct buf *, unsigned long long);
/* A number with that many decimals; null when it is not finite. */
void	json_put_fixed(struct buf *, double, int decimals);
void	json_put_bool(struct buf *, bool);
void	json_put_null(struct buf *);

/* The contents of a string for plain text: escaped, without quotes and
 * without a comma (a struct jstr can be made of them). */
void	json_escape(struct buf *, const char *plain, size_t);

/*
 * For each byte: 1 when a string must escape it ('"', '\\', below 0x20),
 * 2 when it is above 0x7f: where the scanner stops in a string, what the
 * writer escapes.
 */
extern const unsigned char json_byte_class[256];

/* Length of the valid UTF-8 sequence at p (1-4), or 0 if it is invalid. */
size_t	utf8_seqlen(const unsigned char *, size_t);

#endif
