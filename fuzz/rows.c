/*
 * tblload's row builder (rows_build, and the scanner of lib/json.c it reads
 * the body with).
 *
 * - On any bytes at all as the body, rows_build and the scanner never read
 *   outside them; the COPY text it writes is still well framed (the right
 *   number of columns, only valid escapes, no raw CR or NUL).
 * - On a body tblhash accepts (json_parse_strict, then canon_write as for a
 *   record), every row is valid COPY text of its table's column types, its
 *   text valid UTF-8 without NUL (PostgreSQL refuses both), its jsonb
 *   columns strict JSON without U+0000, and --dry-run's JSON lines are
 *   strict JSON.
 *
 * Input: one byte choosing the type (0-3) and the link tables' position
 * column (bit 2), then the body.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "canon.h"
#include "fuzz.h"
#include "../tblload/rows.h"

#define SHA	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct sink copy, json;
static struct buf canon;

const char fuzz_tool[] = "tblload";

void
fuzz_setup(void)
{
	copy.fmt = SINK_COPY;
	json.fmt = SINK_JSON;
}

static void
check_sink(int type, bool strict, int with_ord)
{
	char cols[16];
	int t;
	size_t n;

	for (t = 0; t < NTABLES; t++) {
		n = (size_t)snprintf(cols, sizeof(cols), "%s", fuzz_table_kinds[t]);
		CHECK(n + 1 == sizeof(tables[t].columns) / sizeof(tables[t].columns[0]) ||
		    tables[t].columns[n] == NULL, "kinds of %s do not match its columns",
		    tables[t].name);
		if (with_ord && t >= T_RELEASE_LABELS)
			strcat(cols, "i");
		CHECK(t == type || t >= T_RELEASE_LABELS || copy.out[t].len == 0,
		    "rows of %s for a record of %s", tables[t].name, data_types[type]);
		fuzz_check_copy(&copy.out[t], tables[t].name, cols, strict);
	}
	CHECK(copy.rows[type] == 1, "%lld rows of %s for one record", copy.rows[type],
	    tables[type].name);
}

/* Every --dry-run line is one strict JSON object. */
static void
check_json(void)
{
	const char *p = json.out[0].p, *end, *nl;
	bool nul;

	if (p == NULL)
		return;
	for (end = p + json.out[0].len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL, "--dry-run output does not end with a newline");
		CHECK(fuzz_json_ok(p, (size_t)(nl - p), &nul) && !nul,
		    "--dry-run line is not strict JSON without U+0000: %.*s", (int)(nl - p), p);
	}
}

static void
build(int type, int with_ord, const char *body, size_t n, bool strict)
{
	struct jval s = { body, n };
	const char *err;
	int rc;

	sink_reset(&copy);
	sink_reset(&json);
	copy.with_ord = with_ord;
	rc = rows_build(&copy, type, 42, SHA, s, &err);
	CHECK(rc == rows_build(&json, type, 42, SHA, s, &err), "the sinks disagree");
	CHECK(!strict || rc == 0, "a body tblhash accepts gives no rows (%s): %.*s", err,
	    (int)n, body);
	if (rc < 0)
		return;
	check_sink(type, strict, with_ord);
	if (strict)
		check_json();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o;
	const char *err;
	char *body;
	int type, with_ord;

	if (size < 1)
		return 0;
	type = data[0] & 3;
	with_ord = (data[0] >> 2) & 1;
	body = fuzz_cstr(data + 1, size - 1);
	build(type, with_ord, body, size - 1, false);
	if ((o = json_parse_strict(body, size - 1, &err)) != NULL) {
		if (json_object_is_type(o, json_type_object)) {
			buf_reset(&canon);
			canon_write(&canon, o, CANON_DROP_META);
			/* Exactly the body's bytes, as tblload gets it from the envelope. */
			free(body);
			body = fuzz_cstr((const uint8_t *)canon.p, canon.len);
			build(type, with_ord, body, canon.len, true);
		}
		json_object_put(o);
	}
	free(body);
	return 0;
}
