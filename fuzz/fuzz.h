/*
 * What the fuzz targets share: quiet logs, the oracle check that aborts
 * (so libFuzzer keeps the input as a crash), and validators for what the
 * tools write (COPY text, JSON, UTF-8). Each target is a thin
 * LLVMFuzzerTestOneInput over public functions of lib/ and the tools; see
 * fuzz/README.md for what each one drives and asserts.
 */
#ifndef TBL_FUZZ_H
#define TBL_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "buf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/*
 * Each target names the tool it drives (its logger), and may set itself up
 * once in fuzz_setup. LLVMFuzzerInitialize (common.c) turns logging down to
 * critical messages only (a target runs millions of inputs), then calls it.
 */
extern const char fuzz_tool[];
void	fuzz_setup(void);

/* An oracle failed: say which and abort, so the input is kept. */
#define CHECK(cond, ...) do {						\
	if (!(cond))							\
		fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);	\
} while (0)

noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));

/* A malloc'ed copy of the input with a NUL after it, so that ASan sees a
 * read past its end. */
char	*fuzz_cstr(const uint8_t *, size_t);

/* Is the text valid UTF-8 (RFC 3629)? */
bool	fuzz_utf8(const char *, size_t);

/* Is every string (and key) of the JSON text free of U+0000, once parsed
 * strictly? false when the text is not strict JSON at all. */
bool	fuzz_json_ok(const char *, size_t, bool *has_nul);

/*
 * Check COPY text as tblload writes it: lines of exactly strlen(cols)
 * tab-separated fields, each "\N" or text with only the escapes \\ \n \r \t,
 * no raw CR or NUL. cols gives each column's kind: i integer (int32), t text,
 * h a 64-digit hex hash, A text[] literal, j jsonb, b boolean. With strict
 * (the body came through tblhash), decoded text must also be valid UTF-8
 * without NUL, and jsonb strict JSON without U+0000.
 */
void	fuzz_check_copy(const struct buf *, const char *table, const char *cols,
	    bool strict);
/* The column kinds of tblload's tables, in the order of tables[] (rows.h). */
extern const char *const fuzz_table_kinds[];

#endif
