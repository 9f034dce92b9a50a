/*
 * tblxml's record conversion: the whole of convert() (gzip detection,
 * expat, the record tree of xrec.c, xrec_emit) on one input file.
 *
 * - Nothing crashes or reads out of bounds, and memory stays bounded
 *   (--max-record, the nesting limit), whatever the bytes.
 * - Every line written is a message body as the Rust extractor writes it:
 *   strict JSON {"type":"data","id":…,"sha256":"<64 hex>",<members>}, whose
 *   record ("{" and the members) is already in canonical form (json-c and
 *   canon_write give the same bytes back) and hashes to its sha256, so that
 *   tblhash takes it as it is and stores that hash.
 *
 * Input: one byte (bits 0-2: --type artists..releases, else the root names
 * the type; bit 3: --max-record 1024), then the file's bytes.
 */
#define main tblxml_main
#include "../tblxml/tblxml.c"
#undef main

#include <sys/mman.h>

#include "canon.h"
#include "fuzz.h"
#include "sha256.h"

#define WRAPPER	"{\"type\":\"data\",\"id\":\""
#define SHA_KEY	",\"sha256\":\""

static int in_fd = -1, out_fd = -1;
static char in_path[64];
static struct xrec rec;
static struct buf canon, text;

const char fuzz_tool[] = "tblxml";

void
fuzz_setup(void)
{
	if ((in_fd = memfd_create("xml", 0)) < 0 || (out_fd = memfd_create("out", 0)) < 0)
		abort();
	snprintf(in_path, sizeof(in_path), "/proc/self/fd/%d", in_fd);
}

/* The deepest nesting of brackets outside strings. */
static int
depth(const char *p, const char *end)
{
	int d = 0, max = 0;
	bool str = false;

	for (; p < end; p++) {
		if (str) {
			if (*p == '\\')
				p++;
			else if (*p == '"')
				str = false;
		} else if (*p == '"')
			str = true;
		else if (*p == '{' || *p == '[')
			max = ++d > max ? d : max;
		else if (*p == '}' || *p == ']')
			d--;
	}
	return max;
}

static void
check_body(const char *p, size_t n)
{
	struct json_object *o;
	const char *err, *sha, *rest;
	char want[65];

	CHECK(n > sizeof(WRAPPER) && memcmp(p, WRAPPER, sizeof(WRAPPER) - 1) == 0,
	    "not the extractor's wrapper: %.*s", (int)n, p);
	if (depth(p, p + n) > 190)
		return;		/* json-c refuses it; tblhash then marks it invalid */
	o = json_parse_strict(p, n, &err);
	CHECK(o != NULL, "not strict JSON (%s): %.*s", err, (int)n, p);
	json_object_put(o);
	/* A JSON string cannot hold this text unescaped: the first is the key. */
	sha = memmem(p, n, SHA_KEY, sizeof(SHA_KEY) - 1);
	CHECK(sha != NULL && (size_t)(p + n - sha) >= sizeof(SHA_KEY) - 1 + 64 + 2,
	    "no sha256: %.*s", (int)n, p);
	sha += sizeof(SHA_KEY) - 1;
	CHECK(strspn(sha, "0123456789abcdef") >= 64 && sha[64] == '"' && sha[65] == ',',
	    "bad sha256: %.*s", (int)n, p);
	rest = sha + 66;
	buf_reset(&text);
	buf_addc(&text, '{');
	buf_add(&text, rest, (size_t)(p + n - rest));
	sha256_hex(text.p, text.len, want);
	CHECK(memcmp(want, sha, 64) == 0, "sha256 is not the record's: %.*s", (int)n, p);
	o = json_parse_strict(text.p, text.len, &err);
	CHECK(o != NULL, "the record is not strict JSON (%s): %s", err, text.p);
	buf_reset(&canon);
	canon_write(&canon, o, 0);
	json_object_put(o);
	CHECK(canon.len == text.len && memcmp(canon.p, text.p, text.len) == 0,
	    "the record is not canonical:\n%s\ncanonical:\n%s", text.p, canon.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct options opt = { -1, false, 64LL << 20 };
	struct totals t = { 0 };
	struct writer out;
	off_t len;
	char *lines, *p, *end, *nl;

	if (size < 1)
		return 0;
	if ((data[0] & 7) < NTYPES)
		opt.type = data[0] & 7;
	if (data[0] & 8)
		opt.max_record = 1024;
	if (ftruncate(in_fd, 0) < 0 || pwrite(in_fd, data + 1, size - 1, 0) != (ssize_t)(size - 1) ||
	    ftruncate(out_fd, 0) < 0 || lseek(out_fd, 0, SEEK_SET) < 0)
		abort();
	w_init(&out, out_fd, SIZE_MAX);
	(void)convert(in_path, &opt, &rec, &out, &t);
	w_free(&out);
	if ((len = lseek(out_fd, 0, SEEK_CUR)) < 0)
		abort();
	if (len == 0)
		return 0;
	lines = xmalloc((size_t)len + 1);
	if (pread(out_fd, lines, (size_t)len, 0) != len)
		abort();
	lines[len] = '\0';
	for (p = lines, end = lines + len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		CHECK(nl != NULL, "output does not end with a newline");
		check_body(p, (size_t)(nl - p));
	}
	free(lines);
	return 0;
}
