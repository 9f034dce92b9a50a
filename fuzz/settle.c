/*
 * The settle line scanner (settle_scan, amqp-drain) and writer
 * (settle_write, tblload), and the settlement window the lines drive.
 *
 * - settle_scan never reads outside the line.
 * - It accepts nothing the writer could not have written: what it returns
 *   (op, conn, tag, reason), settle_write writes again, settle_scan reads
 *   back the same, and that text is a fixed point.
 * - Whatever the writer writes (any connection id as tblload copies it from
 *   an envelope, any tag, any reason), the scanner reads back unchanged.
 * - Applied as amqp-drain applies them (win_ack, win_reject, then
 *   win_take_acks) to a window of delivered tags, accepted lines never
 *   settle a tag twice, never settle one that was not delivered, and a
 *   multiple ack never covers a tag that is still open, nor one held
 *   (win_hold: a reject that waits for its dead-letter queue) until it is
 *   released.
 *
 * Input: lines separated by '\n'. The window holds tags 1..64; a line whose
 * conn is not "c" is ignored, as a line of another connection is. A reject
 * whose reason starts with 'h' holds its tag instead, one whose reason
 * starts with 'r' releases it.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"
#include "window.h"

#define NTAGS	64

static struct buf w1, w2, reason, esc;

const char fuzz_tool[] = "settle";

static bool
same(struct jstr a, struct jstr b)
{
	return a.n == b.n && a.esc == b.esc && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Write s, scan it back; the fields must be those written. */
static void
roundtrip(const struct settle *s, const char *why, struct buf *out, const char *from)
{
	struct settle s2;
	struct buf r2 = { 0 };
	const char *err;

	buf_reset(out);
	settle_write(out, s->reject, s->conn, s->tag, why);
	CHECK(out->len > 0 && out->p[out->len - 1] == '\n', "no newline");
	CHECK(settle_scan(out->p, out->len - 1, &s2, &err) == 0,
	    "settle_write wrote what settle_scan refuses (%s): %s", err, out->p);
	CHECK(s2.reject == s->reject && same(s2.conn, s->conn) && s2.tag == s->tag,
	    "op, conn or tag changed: %s -> %s", from, out->p);
	if (s->reject) {
		jstr_decode(&r2, s2.reason);
		CHECK(r2.len == strlen(why) && memcmp(r2.p ? r2.p : "", why, r2.len) == 0,
		    "the reason changed: %s -> %s", from, out->p);
	} else
		CHECK(s2.reason.p == NULL, "an ack with a reason: %s", out->p);
	buf_free(&r2);
}

/* The window and a plain model of it: 0 open, 1 to ack, 2 done, 3 held. */
struct model {
	struct window	 w;
	unsigned char	 st[NTAGS + 1];
};

static void
take(struct model *m)
{
	uint64_t multi, singles[8], t;
	size_t n, i;

	do {
		win_take_acks(&m->w, &multi, singles, 8, &n);
		/* The broker refuses an ack of a tag it no longer holds. */
		CHECK(multi == 0 || (multi <= NTAGS && m->st[multi] == 1),
		    "multiple ack of tag %llu, which is not waiting for one",
		    (unsigned long long)multi);
		for (t = 1; t <= multi; t++) {
			CHECK(m->st[t] != 0 && m->st[t] != 3, "a multiple ack up to %llu covers "
			    "%s tag %llu", (unsigned long long)multi, m->st[t] ? "held" : "open",
			    (unsigned long long)t);
			m->st[t] = 2;
		}
		for (i = 0; i < n; i++) {
			CHECK(singles[i] >= 1 && singles[i] <= NTAGS && m->st[singles[i]] == 1,
			    "single ack of tag %llu, which is not waiting for one",
			    (unsigned long long)singles[i]);
			m->st[singles[i]] = 2;
		}
	} while (n == 8);
}

static void
apply(struct model *m, const struct settle *s, const struct buf *why)
{
	int t;
	bool known = s->tag >= 1 && s->tag <= NTAGS;
	char how = s->reject && why->len > 0 ? why->p[0] : 0;

	if (!jstr_eq(s->conn, "c"))
		return;
	if (how == 'h') {
		t = win_hold(&m->w, s->tag);
		CHECK((t >= 0) == (known && m->st[s->tag] == 0),
		    "win_hold(%llu) gave %d", s->tag, t);
		if (t >= 0)
			m->st[s->tag] = 3;
	} else if (how == 'r') {
		t = win_release(&m->w, s->tag);
		CHECK((t == 0) == (known && m->st[s->tag] == 3),
		    "win_release(%llu) gave %d", s->tag, t);
		if (t == 0)
			m->st[s->tag] = 2;
		t = -1;
	} else if (!s->reject) {
		t = win_ack(&m->w, s->tag);
		CHECK((t >= 0) == (known && m->st[s->tag] == 0),
		    "win_ack(%llu) gave %d", s->tag, t);
		if (t >= 0)
			m->st[s->tag] = 1;
	} else {
		t = win_reject(&m->w, s->tag);
		CHECK((t >= 0) == (known && m->st[s->tag] == 0),
		    "win_reject(%llu) gave %d", s->tag, t);
		if (t >= 0)
			m->st[s->tag] = 2;
	}
	CHECK(t < 0 || t == (int)(s->tag % 4), "tag %llu has type %d", s->tag, t);
	take(m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settle s;
	struct model m;
	const char *p, *end, *nl, *err, *sep;
	char *text = fuzz_cstr(data, size);
	uint64_t t;
	bool idle;

	memset(&m, 0, sizeof(m));
	win_init(&m.w);
	for (t = 1; t <= NTAGS; t++)
		CHECK(win_add(&m.w, t, (int)(t % 4)) == 0, "win_add(%llu)", (unsigned long long)t);
	for (p = text, end = text + size; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		/* A copy of the line alone, so that a read past it is seen. */
		char *line = fuzz_cstr((const uint8_t *)p, (size_t)(nl - p));

		if (settle_scan(line, (size_t)(nl - p), &s, &err) == 0) {
			CHECK(s.conn.p >= line && s.conn.p + s.conn.n <= line + (nl - p),
			    "conn outside the line");
			buf_reset(&reason);
			jstr_decode(&reason, s.reason);
			if (s.reject && reason.p != NULL && (memchr(reason.p, '\0', reason.len) ||
			    !fuzz_utf8(reason.p, reason.len)))
				buf_reset(&reason);	/* the writer takes clean text only */
			roundtrip(&s, reason.p ? reason.p : "", &w1, line);
			/* The text written is a fixed point. */
			CHECK(settle_scan(w1.p, w1.len - 1, &s, &err) == 0, "rescan");
			buf_reset(&reason);
			jstr_decode(&reason, s.reason);
			roundtrip(&s, reason.p ? reason.p : "", &w2, w1.p);
			CHECK(w1.len == w2.len && memcmp(w1.p, w2.p, w1.len) == 0,
			    "not stable: %s -> %s", w1.p, w2.p);
			apply(&m, &s, &reason);
		}
		/* Generated: conn bytes 0x01 reason bytes, written and read back. */
		if ((sep = memchr(line, 1, (size_t)(nl - p))) != NULL) {
			buf_reset(&esc);
			json_escape(&esc, line, (size_t)(sep - line));
			memset(&s, 0, sizeof(s));
			s.conn = (struct jstr){ esc.p ? esc.p : "", esc.len,
			    esc.p != NULL && memchr(esc.p, '\\', esc.len) != NULL };
			s.reject = (nl - p) & 1;
			s.tag = (unsigned long long)(nl - p) * 0x9e3779b97f4a7c15ULL;
			buf_reset(&reason);
			buf_add(&reason, sep + 1, strlen(sep + 1));
			if (!fuzz_utf8(reason.p, reason.len))
				buf_reset(&reason);
			roundtrip(&s, reason.p ? reason.p : "", &w1, line);
		}
		free(line);
	}
	idle = true;
	for (t = 1; t <= NTAGS; t++)
		idle &= m.st[t] != 0;
	CHECK(win_idle(&m.w) == idle, "win_idle says %d", !idle);
	win_free(&m.w);
	free(text);
	return 0;
}
