/*
 * tblload's input side: lines read with lineio (overlong ones cut to their
 * first bytes), grouped into batches by their frame headers as tblload's
 * reader does, then batch_prepare (envelope headers, classification, sort
 * by id) and batch_prebuild (rows of every id's last record).
 *
 * - Nothing reads outside the lines, whatever they hold.
 * - Every record kept is a complete envelope of the batch's type with an id
 *   in 1..2^31-1, a 64-byte sha256 and a body; every other line has a reason.
 * - The records are sorted by (id, position) and grouped by id, and the
 *   rows built are well framed COPY text (see fuzz/rows.c), one row of the
 *   type's table per record that gave rows.
 *
 * Input: one byte (bits 0-1: the longest line kept whole, 1024 << n; bit 2:
 * --dry-run's JSON rows), then the lines.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../tblload/batch.h"
#include "fuzz.h"
#include "lineio.h"

static int fd = -1;

const char fuzz_tool[] = "tblload";

void
fuzz_setup(void)
{
	if ((fd = memfd_create("batch", 0)) < 0)
		abort();
}

static void
check(struct batch *b)
{
	struct rec *r, *x, *y;
	size_t i, g, rows;
	int t;

	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		CHECK(r->kind != R_INVALID || r->reason != NULL, "line %zu: invalid without a "
		    "reason", i);
		if (r->kind != R_RECORD)
			continue;
		CHECK(r->e.has_id && r->e.id >= 1 && r->e.id <= 2147483647 &&
		    r->e.sha256.n == 64 && r->e.has_body && b->type_idx >= 0 &&
		    data_type_index(r->e.type.p, r->e.type.n) == b->type_idx,
		    "line %zu kept as a record: %.*s", i, (int)r->len, b->arena.p + r->off);
		CHECK(r->e.body.p >= b->arena.p + r->off &&
		    r->e.body.p + r->e.body.n <= b->arena.p + r->off + r->len,
		    "line %zu: the body is outside the line", i);
	}
	for (i = 1; i < b->nrec; i++) {
		x = &b->r[b->order[i - 1]];
		y = &b->r[b->order[i]];
		CHECK(x->e.id < y->e.id || (x->e.id == y->e.id && x->pos < y->pos),
		    "records out of order");
	}
	CHECK(b->ngrp <= b->nrec && (b->nrec == 0 || b->grp[0] == 0) &&
	    b->grp[b->ngrp] == b->nrec, "bad groups");
	for (g = 0; g < b->ngrp; g++) {
		CHECK(b->grp[g] < b->grp[g + 1], "empty group");
		CHECK(winner(b, g)->e.id == b->r[b->order[b->grp[g]]].e.id, "winner of "
		    "another id");
		CHECK(g + 1 == b->ngrp || winner(b, g)->e.id != winner(b, g + 1)->e.id,
		    "an id in two groups");
	}
	if (!b->prebuilt)
		return;
	CHECK(b->pre_rows + b->pre_failed == b->ngrp, "%zu rows and %zu failures for %zu "
	    "ids", b->pre_rows, b->pre_failed, b->ngrp);
	if (b->pre.fmt != SINK_COPY || b->ngrp == 0)
		return;
	for (t = 0, rows = 0; t < NTABLES; t++) {
		fuzz_check_copy(&b->pre.out[t], tables[t].name, fuzz_table_kinds[t], false);
		if (t < T_RELEASE_LABELS)
			rows += (size_t)b->pre.rows[t];
	}
	CHECK(rows == b->pre_rows && (size_t)b->pre.rows[b->type_idx] == rows,
	    "%zu rows in the sink, %zu built", rows, b->pre_rows);
}

/*
 * lr_init, keeping the buffer of the input before: a new 512 KiB buffer
 * for every input costs more than the input (ASan maps and fills it), and
 * so would freeing the batch, which tblload keeps from one to the next too.
 */
static void
reader_init(struct linereader *in, size_t max_line)
{
	char *buf = in->buf;
	size_t cap = in->cap;

	if (buf == NULL) {
		lr_init(in, fd, max_line);
		return;
	}
	memset(in, 0, sizeof(*in));
	in->fd = fd;
	in->max_line = max_line;
	in->buf = buf;
	in->cap = cap;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct batch b;
	static struct linereader in;
	struct jstr type;
	struct line l;
	const char *err;
	size_t max_line;
	int rc;

	if (size < 1)
		return 0;
	max_line = (size_t)1024 << (data[0] & 3);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1) ||
	    lseek(fd, 0, SEEK_SET) < 0)
		abort();
	b.pre.fmt = data[0] & 4 ? SINK_JSON : SINK_COPY;
	reader_init(&in, max_line);
	/* As tblload's reader: a header and its lines, or a line alone. */
	while ((rc = lr_getline(&in, &l, NULL)) == 1) {
		batch_clear(&b);
		if (!l.truncated && frame_scan(l.p, l.len, &type, &b.want, &err) == 0) {
			b.type_idx = data_type_index(type.p, type.n);
			while ((long long)b.n < b.want && (rc = lr_getline(&in, &l, NULL)) == 1)
				batch_add(&b, &l, max_line);
			b.cut_short = (long long)b.n < b.want;
		} else {
			b.unbatched = true;
			batch_add(&b, &l, max_line);
		}
		batch_prepare(&b);
		if (!b.cut_short)
			batch_prebuild(&b);
		check(&b);
		if (rc != 1)
			break;
	}
	CHECK(rc >= 0, "read error");
	return 0;
}
