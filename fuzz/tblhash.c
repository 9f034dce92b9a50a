/*
 * tblhash's line handling (hash_line), as a differential oracle: every line
 * is hashed twice, once as tblhash runs (an already canonical body takes the
 * fast path, canon_recognise) and once with --always-parse (json-c, then
 * canon_write). The two outputs must be byte-identical. Each output line
 * must also be one envelope that tblbatch and tblload read back, and a
 * record's sha256 must be the hash of the body written beside it.
 *
 * Input: one byte choosing the mode (bit 0..2: 0-3 --type artists..releases,
 * else envelopes; bit 3: the lines are cut as overlong ones are), then the
 * lines, separated by '\n'.
 */
#define main tblhash_main
#include "../tblhash/tblhash.c"
#undef main

#include "fuzz.h"
#include "sha256.h"

static struct buf out_fast, out_slow, canon, scratch;

const char fuzz_tool[] = "tblhash";

/* Each output line is an envelope; a record's hash is its body's. */
static void
check_output(const struct buf *b, size_t nlines)
{
	const char *p = b->p, *end = b->p + b->len, *nl, *err;
	struct envelope e;
	char sha[65];
	size_t n = 0;

	for (; p < end; p = nl + 1, n++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL, "output does not end with a newline");
		CHECK(env_scan(p, (size_t)(nl - p), &e, &err) == 0,
		    "tblhash wrote an envelope it cannot read back (%s): %.*s", err,
		    (int)(nl - p), p);
		if (e.invalid.p != NULL || e.control.p != NULL)
			continue;
		CHECK(e.has_id && e.id >= 1 && e.id <= MAX_RECORD_ID && e.sha256.n == 64 &&
		    e.has_body, "a record without id, sha256 or body: %.*s", (int)(nl - p), p);
		sha256_hex(e.body.p, e.body.n, sha);
		CHECK(memcmp(sha, e.sha256.p, 64) == 0, "sha256 is not the body's hash: %.*s",
		    (int)(nl - p), p);
	}
	CHECK(n == nlines, "%zu lines in, %zu out", nlines, n);
}

static void
run(const char *text, size_t len, struct jstr type, bool cut, bool parse,
    struct buf *out, size_t *nlines)
{
	const char *p = text, *end = text + len, *nl;
	struct counts c = { 0 };
	struct line l;

	always_parse = parse;
	buf_reset(out);
	*nlines = 0;
	for (; p <= end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		memset(&l, 0, sizeof(l));
		l.p = p;
		l.len = l.full_len = (size_t)(nl - p);
		l.lineno = ++*nlines;
		if (cut) {
			/* As lineio keeps an overlong line: its first bytes only. */
			l.truncated = true;
			l.full_len = max_line + 1;
		}
		hash_line(&l, type, out, &canon, &scratch, &c);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jstr type = { NULL, 0, false };
	size_t n1, n2;
	char *text;

	if (size < 1)
		return 0;
	if ((data[0] & 7) < NTYPES)
		type = (struct jstr){ data_types[data[0] & 7], strlen(data_types[data[0] & 7]),
		    false };
	text = fuzz_cstr(data + 1, size - 1);
	run(text, size - 1, type, data[0] & 8, false, &out_fast, &n1);
	run(text, size - 1, type, data[0] & 8, true, &out_slow, &n2);
	CHECK(out_fast.len == out_slow.len && memcmp(out_fast.p, out_slow.p, out_fast.len) == 0,
	    "the fast path and json-c differ:\nfast: %s\njson-c: %s", out_fast.p, out_slow.p);
	check_output(&out_fast, n1);
	free(text);
	return 0;
}
