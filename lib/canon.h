/*
 * The canonical form of a record (docs/design.md#hash): compact JSON, object keys
 * sorted by byte order at every level, strings escaped only for '"', '\'
 * and U+0000..U+001F, non-ASCII as raw UTF-8, numbers as written. It is the
 * form the Rust extractor hashes, so its SHA-256 is the record's hash.
 */
#ifndef TBL_CANON_H
#define TBL_CANON_H

#include <json-c/json.h>

#include "buf.h"

#define CANON_DROP_META	0x1	/* leave out the top-level "type" and "sha256" */

/* Append the canonical form of o. */
void	canon_write(struct buf *, struct json_object *, unsigned flags);

/* Parse one JSON text strictly (RFC 8259, UTF-8 checked). Returns the
 * value (the caller puts it), or NULL with a reason in *err. */
struct json_object *json_parse_strict(const char *, size_t, const char **err);

#endif
