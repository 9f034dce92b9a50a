/*
 * The batch header scanner (frame_scan), which tblload's reader tries on
 * every line outside a batch, and its writer (frame_write, tblbatch).
 *
 * - frame_scan never reads outside the line.
 * - What it accepts, frame_write writes again and frame_scan reads back
 *   with the same type and count; that text is a fixed point.
 * - Input from byte 0x01 on is also taken apart as a type (escaped JSON
 *   string contents, as tblbatch passes the envelope's) and a count: what
 *   frame_write makes of them, frame_scan must accept unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "fuzz.h"

static struct buf w1, w2, esc;

const char fuzz_tool[] = "frame";

static void
roundtrip(struct jstr type, long long n, struct buf *out, const char *from)
{
	struct jstr t2;
	long long n2;
	const char *err;

	buf_reset(out);
	frame_write(out, type, n);
	CHECK(out->len > 0 && out->p[out->len - 1] == '\n', "no newline");
	CHECK(frame_scan(out->p, out->len - 1, &t2, &n2, &err) == 0,
	    "frame_write wrote what frame_scan refuses (%s): %s", err, out->p);
	CHECK(t2.n == type.n && memcmp(t2.p, type.p, type.n) == 0 && n2 == n,
	    "the header changed: %s -> %s", from, out->p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jstr type;
	long long n;
	const char *err, *sep;
	char *line = fuzz_cstr(data, size);

	if (frame_scan(line, size, &type, &n, &err) == 0) {
		CHECK(type.p >= line && type.p + type.n <= line + size, "type outside the line");
		CHECK(n >= 0 && n <= 100000000, "count %lld out of range", n);
		roundtrip(type, n, &w1, line);
		roundtrip(type, n, &w2, line);
		CHECK(w1.len == w2.len && memcmp(w1.p, w2.p, w1.len) == 0, "not stable");
	}
	/* Generated: <type bytes> 0x01 <count digits>. */
	if ((sep = memchr(line, 1, size)) != NULL) {
		buf_reset(&esc);
		json_escape(&esc, line, (size_t)(sep - line));
		n = strtoll(sep + 1, NULL, 10);
		if (n >= 0 && n <= 100000000) {
			type = (struct jstr){ esc.p ? esc.p : "", esc.len, false };
			roundtrip(type, n, &w1, line);
		}
	}
	free(line);
	return 0;
}
