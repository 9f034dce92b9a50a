/*
 * jsonc-parse: json-c's bare parse speed on an NDJSON file, the ceiling of
 * any tool built on json-c (make bench prints it beside tblhash's speed).
 * Parses every line with the flags tblhash uses, best of --runs passes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "util.h"

int
main(int argc, char *argv[])
{
	json_tokener *tok;
	json_object *o;
	FILE *f;
	char *buf, *p, *end, *nl;
	size_t n, cap = 1 << 20;
	double t0, dt, best = 1e9;
	int runs, r;

	if (argc != 3 || (runs = atoi(argv[2])) < 1) {
		fprintf(stderr, "usage: jsonc-parse file runs\n");
		return 64;
	}
	if ((f = fopen(argv[1], "r")) == NULL) {
		fprintf(stderr, "jsonc-parse: %s: %s\n", argv[1], strerror(errno));
		return 66;
	}
	buf = xmalloc(cap);
	n = 0;
	while (!feof(f)) {
		if (n == cap)
			buf = xrealloc(buf, cap *= 2);
		n += fread(buf + n, 1, cap - n, f);
		if (ferror(f)) {
			fprintf(stderr, "jsonc-parse: read error\n");
			return 74;
		}
	}
	fclose(f);
	tok = json_tokener_new_ex(200);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	for (r = 0; r < runs; r++) {
		t0 = now_mono();
		for (p = buf, end = buf + n; p < end; p = nl + 1) {
			if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
				nl = end;
			json_tokener_reset(tok);
			if ((o = json_tokener_parse_ex(tok, p, (int)(nl - p))) == NULL) {
				fprintf(stderr, "jsonc-parse: parse error\n");
				return 65;
			}
			json_object_put(o);
		}
		if ((dt = now_mono() - t0) < best)
			best = dt;
	}
	printf("%.1f\n", (double)n / 1e6 / best);
	json_tokener_free(tok);
	free(buf);
	return 0;
}
