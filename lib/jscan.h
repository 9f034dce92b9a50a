/*
 * Locating members in JSON text that tblhash has already validated and
 * canonicalised. Nothing is built: values are slices of the text. Every
 * step is bounds-checked, so text that is not valid JSON yields errors
 * (NULL or -1), never a read outside it.
 */
#ifndef TBL_JSCAN_H
#define TBL_JSCAN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "envelope.h"

/* Kinds of a value slice, from its first byte. */
enum jkind { J_NONE, J_NULL, J_FALSE, J_TRUE, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT };

enum jkind jkind(struct slice);

/* The first byte from p on that is not JSON white space, or end. */
static inline const char *
json_skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* The end of the value that starts at p, or NULL if it is malformed. */
const char *json_skip(const char *p, const char *end);

/* Iterate the members of an object or the elements of an array. */
struct jiter {
	const char	*p, *end;
	bool		 first;
};
int	jiter_init(struct jiter *, struct slice container, enum jkind want);
/* 1 with the next member (key is the string's contents, still escaped), 0 at
 * the end, -1 on malformed text. */
int	jiter_member(struct jiter *, struct slice *key, struct slice *val);
int	jiter_elem(struct jiter *, struct slice *val);

/* The value of member name in an object (the last one if repeated), or a
 * J_NONE slice. */
struct slice json_get(struct slice obj, const char *name);
/* Append the decoded contents of a string value. */
void	json_string_decode(struct buf *, struct slice str);

#endif
