/*
 * The envelope scanners (env_scan, env_scan_prefix) and writer (env_write).
 *
 * - Neither scanner reads outside the line, whatever it holds.
 * - What env_scan accepts, env_write writes again, and env_scan reads that
 *   back with the same members (a decoded string that the writer has to
 *   make lossy, U+0000 or bad UTF-8, is compared only when it is clean);
 *   written once more, it still reads the same.
 * - An overlong line is read with env_scan_prefix from its first bytes only:
 *   for every cut of a written envelope, what the prefix scan returns must
 *   be what the whole line says. A cut must never give another delivery
 *   tag, type or connection (tblhash and tblload settle by them).
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"

static struct buf line2, line3, d1, d2, ctl;

const char fuzz_tool[] = "envelope";

static bool
same(struct jstr a, struct jstr b)
{
	return (a.p == NULL) == (b.p == NULL) && a.n == b.n && a.esc == b.esc &&
	    (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool
same_text(struct jval a, struct jval b)
{
	return (a.p == NULL) == (b.p == NULL) && a.n == b.n &&
	    (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* The decoded string as the writer gets it: a C string, made lossy. */
static bool
clean(struct buf *b, struct jstr s)
{
	buf_reset(b);
	jstr_decode(b, s);
	return b->p == NULL || (memchr(b->p, '\0', b->len) == NULL && fuzz_utf8(b->p, b->len));
}

/* env_write of what was scanned. */
static void
rewrite(struct buf *out, const struct envelope *e)
{
	struct envelope_out o;

	memset(&o, 0, sizeof(o));
	o.type = e->type;
	if (e->has_tag) {
		o.conn = e->conn;
		o.tag = e->tag;
	}
	o.has_id = e->has_id;
	o.id = e->id;
	if (e->sha256.n == 64)
		o.sha256 = e->sha256.p;
	/* control, invalid and raw are plain text for the writer: decoded. */
	buf_reset(&ctl);
	if (e->control.p != NULL) {
		jstr_decode(&ctl, e->control);
		o.control = ctl.p != NULL ? ctl.p : "";
		o.control_len = ctl.len;
	}
	buf_reset(&d1);
	if (e->invalid.p != NULL) {
		jstr_decode(&d1, e->invalid);
		o.invalid = d1.p != NULL ? d1.p : "";
	}
	if (e->has_body)
		o.body = e->body;
	else if (e->has_raw) {
		buf_reset(&d2);
		jstr_decode(&d2, e->raw);
		o.raw = d2.p != NULL ? d2.p : "";
		o.raw_len = d2.len;
	}
	buf_reset(out);
	env_write(out, &o);
}

/* Plain text that went through the writer says the same, decoded, when it
 * was clean; it comes or goes with the member. */
static void
same_text_of(struct jstr a, struct jstr b, const char *what, const char *line)
{
	static struct buf x, y;

	CHECK((a.p == NULL) == (b.p == NULL), "%s came or went: %s", what, line);
	if (a.p != NULL && clean(&x, a)) {
		clean(&y, b);
		CHECK(x.len == y.len && (x.len == 0 || memcmp(x.p, y.p, x.len) == 0),
		    "%s changed: %s", what, line);
	}
}

static void
compare(const struct envelope *a, const struct envelope *b, const char *line)
{
	CHECK(same(a->type, b->type), "type changed: %s", line);
	CHECK(a->has_tag == b->has_tag && a->tag == b->tag &&
	    (!a->has_tag || same(a->conn, b->conn)), "conn or tag changed: %s", line);
	CHECK(a->has_id == b->has_id && (!a->has_id || a->id == b->id), "id changed: %s", line);
	CHECK(a->sha256.n != 64 || same(a->sha256, b->sha256), "sha256 changed: %s", line);
	same_text_of(a->control, b->control, "control", line);
	same_text_of(a->invalid, b->invalid, "invalid", line);
	CHECK(a->has_body == b->has_body && (!a->has_body || same_text(a->body, b->body)),
	    "body changed: %s", line);
	if (!a->has_body && a->has_raw)
		same_text_of(a->raw, b->raw, "raw", line);
}

/* Every member the prefix scan returns is the whole line's. */
static void
check_prefixes(const char *line, size_t len, const struct envelope *whole)
{
	struct envelope p;
	const char *err;
	char *buf = malloc(len), *cut;
	size_t k, upto = len;

	/* Past the start of the body or raw string every cut reads the same. */
	if (whole->has_body)
		upto = (size_t)(whole->body.p - line) + 2;
	else if (whole->has_raw)
		upto = (size_t)(whole->raw.p - line) + 2;
	for (k = 0; k < len && k < upto; k++) {
		/* Inside the text of a long string every cut reads the same too:
		 * past the first bytes, cut only next to JSON's own characters
		 * (a long "invalid" reason would cost a scan per byte). */
		if (k > 256 && !strchr("\"\\:,{}-0123456789", line[k - 1]) &&
		    !strchr("\"\\:,{}-0123456789", line[k]))
			continue;
		/* The cut ends where the allocation does: ASan sees a read past it. */
		cut = buf + len - k;
		memcpy(cut, line, k);
		if (env_scan_prefix(cut, k, &p, &err) == 0) {
			CHECK(same(p.type, whole->type), "a cut at %zu gives type %.*s: %s", k,
			    (int)p.type.n, p.type.p, line);
			CHECK(!p.has_tag || (p.tag == whole->tag && same(p.conn, whole->conn)),
			    "a cut at %zu gives tag %llu, not %llu: %s", k, p.tag, whole->tag, line);
			CHECK(!p.has_id || p.id == whole->id, "a cut at %zu gives id %lld: %s",
			    k, p.id, line);
			CHECK(p.control.p == NULL || same(p.control, whole->control),
			    "a cut at %zu gives another control: %s", k, line);
			CHECK(p.sha256.p == NULL || same(p.sha256, whole->sha256),
			    "a cut at %zu gives another sha256: %s", k, line);
		}
	}
	free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope e, e2, e3;
	const char *err;
	char *line = fuzz_cstr(data, size);

	/* Whatever the line, a prefix scan of it stays inside it. */
	(void)env_scan_prefix(line, size, &e, &err);
	if (env_scan(line, size, &e, &err) == 0) {
		CHECK(e.type.p != NULL, "accepted without a type: %s", line);
		CHECK(e.has_tag == (e.conn.p != NULL), "conn without tag: %s", line);
		rewrite(&line2, &e);
		CHECK(line2.len > 0 && line2.p[line2.len - 1] == '\n', "no newline written");
		CHECK(env_scan(line2.p, line2.len - 1, &e2, &err) == 0,
		    "env_write wrote what env_scan refuses (%s): %s -> %s", err, line, line2.p);
		compare(&e, &e2, line);
		/* Written again, it says the same (a byte the writer made U+FFFD
		 * is then written as the character, not as the escape). */
		rewrite(&line3, &e2);
		CHECK(env_scan(line3.p, line3.len - 1, &e3, &err) == 0,
		    "env_write wrote what env_scan refuses (%s): %s", err, line3.p);
		compare(&e2, &e3, line2.p);
		check_prefixes(line2.p, line2.len - 1, &e2);
	}
	free(line);
	return 0;
}
