/*
 * tblhealth's state-file reader and what it serves from the files:
 * report_health (/health) and report_metrics (/metrics) over the three
 * state files of docs/state.md, read afresh from a directory as a request
 * reads them.
 *
 * - Truncated, huge (over the 64 KiB limit, or just at it), deeply nested or
 *   otherwise hostile files never crash the reader or make it read out of
 *   bounds.
 * - /health is one strict JSON object whose "status" agrees with the HTTP
 *   status (503 exactly when unhealthy); /metrics is well formed exposition
 *   text: HELP and TYPE lines, then samples "name{label="value",…} number"
 *   with valid names, escaped label values and finite numbers.
 *
 * Input: one byte (bit i, 0-2: pad file i with spaces to 64 KiB, bit 3: one
 * byte more), then the contents of tableinator.json, amqp-drain.json and
 * tblload.json, separated by bytes 0xff; a file with no part is absent.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../tblhealth/report.h"
#include "canon.h"
#include "fuzz.h"

#define LIMIT	(64 * 1024)

static struct report_cfg cfg;
static char dir[256];
static struct buf out;

static void
cleanup(void)
{
	int i;

	for (i = 0; i < 3; i++)
		(void)unlink(cfg.path[i]);
	(void)rmdir(dir);
}

const char fuzz_tool[] = "tblhealth";

void
fuzz_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	/* Files are rewritten for every input: in memory if it can be. */
	if (access("/dev/shm", W_OK | X_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dir, sizeof(dir), "%s/fuzz-state.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	report_init(&cfg, dir, 30);
	atexit(cleanup);
}

static void
put(int i, const char *p, size_t n, bool pad, bool over)
{
	static char spaces[LIMIT];
	size_t want = LIMIT + over;
	int fd;

	if ((fd = open(cfg.path[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    write(fd, p, n) != (ssize_t)n)
		abort();
	if (pad && n < want) {
		memset(spaces, ' ', sizeof(spaces));
		for (; n < want; n += sizeof(spaces) < want - n ? sizeof(spaces) : want - n)
			if (write(fd, spaces, sizeof(spaces) < want - n ? sizeof(spaces) :
			    want - n) < 0)
				abort();
	}
	if (close(fd) < 0)
		abort();
}

static bool
name_ok(const char *p, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		    p[i] == '_' || p[i] == ':' || (i > 0 && p[i] >= '0' && p[i] <= '9')))
			return false;
	return true;
}

/* One sample line: name, optional {labels}, a space, a finite number. */
static void
check_sample(const char *p, const char *end)
{
	const char *q = p, *v;
	char *num, *e;
	double d;

	while (q < end && *q != '{' && *q != ' ')
		q++;
	CHECK(name_ok(p, (size_t)(q - p)), "bad metric name: %.*s", (int)(end - p), p);
	if (q < end && *q == '{') {
		for (q++; q < end && *q != '}';) {
			v = q;
			while (q < end && *q != '=')
				q++;
			CHECK(name_ok(v, (size_t)(q - v)) && q + 1 < end && q[1] == '"',
			    "bad label: %.*s", (int)(end - p), p);
			for (q += 2; q < end && *q != '"'; q++)
				if (*q == '\\') {
					q++;
					CHECK(q < end && (*q == '\\' || *q == '"' || *q == 'n'),
					    "bad escape in a label: %.*s", (int)(end - p), p);
				}
			CHECK(q < end, "unterminated label: %.*s", (int)(end - p), p);
			q++;
			if (q < end && *q == ',')
				q++;
		}
		CHECK(q < end, "no '}': %.*s", (int)(end - p), p);
		q++;
	}
	CHECK(q < end && *q == ' ', "no space before the value: %.*s", (int)(end - p), p);
	num = strndup(q + 1, (size_t)(end - q - 1));
	d = strtod(num, &e);
	CHECK(*num != '\0' && *e == '\0' && d == d && d - d == 0, "bad value %s: %.*s", num,
	    (int)(end - p), p);
	free(num);
}

static void
check_metrics(const struct buf *b)
{
	const char *p = b->p, *end = b->p + b->len, *nl;

	CHECK(b->len > 0 && end[-1] == '\n', "/metrics does not end with a newline");
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (strncmp(p, "# HELP ", 7) == 0 || strncmp(p, "# TYPE ", 7) == 0) {
			CHECK(memchr(p, '\0', (size_t)(nl - p)) == NULL, "NUL in a comment");
			continue;
		}
		check_sample(p, nl);
	}
}

static void
check_health(const struct buf *b, unsigned int code)
{
	struct json_object *o, *st;
	const char *err;
	bool nul;

	CHECK(code == 200 || code == 503, "HTTP status %u", code);
	CHECK(b->len > 0 && b->p[b->len - 1] == '\n', "/health does not end with a newline");
	CHECK(fuzz_json_ok(b->p, b->len - 1, &nul) && !nul, "/health is not strict JSON: %s",
	    b->p);
	o = json_parse_strict(b->p, b->len - 1, &err);
	CHECK(json_object_object_get_ex(o, "status", &st) &&
	    json_object_is_type(st, json_type_string), "no status");
	CHECK((strcmp(json_object_get_string(st), "unhealthy") == 0) == (code == 503),
	    "status %s with HTTP %u", json_object_get_string(st), code);
	json_object_put(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p, *end, *sep;
	unsigned int code;
	int i;

	if (size < 1)
		return 0;
	p = (const char *)data + 1;
	end = (const char *)data + size;
	for (i = 0; i < 3; i++) {
		if (p > end) {
			(void)unlink(cfg.path[i]);
			continue;
		}
		if ((sep = memchr(p, 0xff, (size_t)(end - p))) == NULL)
			sep = end;
		put(i, p, (size_t)(sep - p), data[0] & (1 << i), data[0] & 8);
		p = sep + 1;
	}
	buf_reset(&out);
	code = report_health(&cfg, &out);
	check_health(&out, code);
	buf_reset(&out);
	report_metrics(&cfg, &out);
	check_metrics(&out);
	return 0;
}
