/*
 * Recognising a record that is already in canonical form (docs/design.md#hash), so
 * that tblhash can hash it as it is instead of parsing and writing it again.
 * The Rust extractor writes every body as {"type":"data","id":"N",
 * "sha256":"…", followed by the record's members in canonical form, so for
 * its messages the record is the rest of the body.
 *
 * Only sound, never complete: a text is recognised only when it is exactly
 * what parsing it with json-c and writing it with canon_write would give.
 * Anything else (whitespace, numbers, escapes other than the canonical ones,
 * keys out of order or repeated, no record id, nesting deeper than the
 * parser allows) is left to that slower path.
 */
#ifndef TBL_CANONFORM_H
#define TBL_CANONFORM_H

#include <stddef.h>

struct canon_record {
	/* The canonical record is head (one byte, "{", or none) then rest. */
	const char	*head;
	size_t		 head_len;
	const char	*rest;
	size_t		 rest_len;
	long long	 id;	/* from the record's "id", 1..2^31-1 */
};

/* 1 when body is recognised (r filled), 0 when it needs the slow path. */
int	canon_recognise(const char *body, size_t n, struct canon_record *r);

#endif
