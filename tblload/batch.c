#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "util.h"

void
batch_add(struct batch *b, const struct line *l, size_t max_line)
{
	struct rec *r;

	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->r = xrealloc(b->r, b->cap * sizeof(*b->r));
	}
	r = &b->r[b->n];
	memset(r, 0, sizeof(*r));
	r->pos = b->n++;
	r->off = b->arena.len;
	r->len = l->len;
	if (l->truncated) {
		r->kind = R_INVALID;
		r->reason = xasprintf("line too long (%zu bytes, limit %zu)", l->full_len,
		    max_line);
	}
	/* Reserved even for an empty line: lines are read as arena.p + off. */
	buf_reserve(&b->arena, l->len);
	buf_add(&b->arena, l->p, l->len);
}

void
batch_clear(struct batch *b)
{
	size_t i, rows = 0;
	int k;

	for (i = 0; i < b->n; i++)
		free(b->r[i].reason);
	b->n = b->nrec = b->ngrp = 0;
	b->unbatched = b->cut_short = b->prebuilt = false;
	b->want = 0;
	b->type_idx = -1;
	buf_reset(&b->arena);
	for (k = 0; k < NTABLES; k++)
		rows += b->pre.out[k].cap;
	if (b->arena.cap + rows > (256u << 20)) {
		/* Give back the memory of an exceptionally large batch. */
		buf_free(&b->arena);
		sink_free(&b->pre);
		free(b->r);
		b->r = NULL;
		b->cap = 0;
	}
	sink_reset(&b->pre);
}

void
batch_free(struct batch *b)
{
	batch_clear(b);
	buf_free(&b->arena);
	sink_free(&b->pre);
	free(b->r);
	free(b->order);
	free(b->grp);
	free(b->known);
	free(b->outcome);
	memset(b, 0, sizeof(*b));
}

void
batch_shrink(struct batch *b)
{
	enum sinkfmt fmt = b->pre.fmt;
	int with_ord = b->pre.with_ord;

	batch_free(b);
	b->pre.fmt = fmt;
	b->pre.with_ord = with_ord;
}

/* The batch being sorted: each thread sorts its own. */
static _Thread_local const struct batch *cmp_batch;

static int
cmp_id_pos(const void *a, const void *b)
{
	const struct rec *x = &cmp_batch->r[*(const size_t *)a];
	const struct rec *y = &cmp_batch->r[*(const size_t *)b];

	if (x->e.id != y->e.id)
		return x->e.id < y->e.id ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void
batch_prepare(struct batch *b)
{
	const char *err;
	struct rec *r;
	struct buf dec = { 0 };
	size_t i;
	int type;

	b->order = xrealloc(b->order, (b->n ? b->n : 1) * sizeof(size_t));
	b->grp = xrealloc(b->grp, (b->n + 1) * sizeof(size_t));
	b->known = xrealloc(b->known, b->n + 1);
	memset(b->known, G_NEW, b->n + 1);
	b->outcome = xrealloc(b->outcome, b->n + 1);
	memset(b->outcome, O_UNCHANGED, b->n + 1);
	b->nrec = b->ngrp = 0;
	for (i = 0; i < b->n; i++) {
		r = &b->r[i];
		if (r->kind == R_INVALID) {
			/* An overlong line: its header tells who to reject. */
			(void)env_scan_prefix(b->arena.p + r->off, r->len, &r->e, &err);
			r->e.has_body = r->e.has_raw = false;
			continue;
		}
		if (env_scan(b->arena.p + r->off, r->len, &r->e, &err) < 0) {
			r->kind = R_INVALID;
			r->reason = xasprintf("malformed envelope: %s", err);
			memset(&r->e, 0, sizeof(r->e));
			continue;
		}
		if (r->e.invalid.p != NULL) {
			r->kind = R_INVALID;
			buf_reset(&dec);
			jstr_decode(&dec, r->e.invalid);
			r->reason = xstrndup(dec.p ? dec.p : "", dec.len);
		} else if (r->e.control.p != NULL)
			r->kind = R_CONTROL;
		else if (!r->e.has_id || r->e.id < 1 || r->e.id > 2147483647 ||
		    r->e.sha256.n != 64 || !r->e.has_body) {
			r->kind = R_INVALID;
			r->reason = xstrdup("envelope has no id, sha256 or body (pipe through tblhash)");
		} else if ((type = data_type_index(r->e.type.p, r->e.type.n)) < 0 ||
		    r->e.type.esc) {
			r->kind = R_INVALID;
			r->reason = xstrdup("unknown type");
		} else if (b->type_idx >= 0 && type != b->type_idx) {
			r->kind = R_INVALID;
			r->reason = xstrdup("type differs from its batch");
		} else {
			/* A batch whose header names no known type takes the type
			 * of its first record: all its rows go to one table. */
			b->type_idx = type;
			r->kind = R_RECORD;
			b->order[b->nrec++] = i;
		}
	}
	buf_free(&dec);
	cmp_batch = b;
	qsort(b->order, b->nrec, sizeof(size_t), cmp_id_pos);
	for (i = 0; i < b->nrec; i++)
		if (i == 0 || b->r[b->order[i]].e.id != b->r[b->order[i - 1]].e.id)
			b->grp[b->ngrp++] = i;
	b->grp[b->ngrp] = b->nrec;
}

struct rec *
winner(const struct batch *b, size_t g)
{
	return &b->r[b->order[b->grp[g + 1] - 1]];
}

long long
group_id(const struct batch *b, size_t g)
{
	return b->r[b->order[b->grp[g]]].e.id;
}

/* The rows of group g's record, as new; 0, or -1 with its build_err set. */
static int
build_group(struct batch *b, size_t g, struct sink *sk)
{
	struct rec *r = winner(b, g);
	size_t nuls = sk->nuls;
	char sha[65];
	int rc;

	r->build_err = NULL;
	memcpy(sha, r->e.sha256.p, 64);
	sha[64] = '\0';
	rc = rows_build(sk, b->type_idx, r->e.id, sha, r->e.body, &r->build_err);
	r->nuls = sk->nuls - nuls;
	return rc;
}

void
batch_prebuild(struct batch *b)
{
	size_t g;

	sink_reset(&b->pre);
	b->pre_rows = b->pre_failed = 0;
	for (g = 0; g < b->ngrp; g++)
		if (build_group(b, g, &b->pre) == 0)
			b->pre_rows++;
		else
			b->pre_failed++;
	b->prebuilt = true;
}

bool
batches_conflict(const struct batch *x, const struct batch *y)
{
	size_t i = 0, j = 0;
	long long a, c;

	if (x->type_idx != y->type_idx || x->ngrp == 0 || y->ngrp == 0)
		return false;
	/* Groups are sorted by id: most batches do not even overlap. */
	if (group_id(x, x->ngrp - 1) < group_id(y, 0) || group_id(y, y->ngrp - 1) < group_id(x, 0))
		return false;
	while (i < x->ngrp && j < y->ngrp) {
		a = group_id(x, i);
		c = group_id(y, j);
		if (a == c)
			return true;
		if (a < c)
			i++;
		else
			j++;
	}
	return false;
}

size_t
batch_mem(const struct batch *b)
{
	size_t n = b->arena.cap + b->cap * sizeof(struct rec) +
	    b->n * (2 * sizeof(size_t) + 2) + b->pre.scratch.cap + b->pre.tmp.cap;
	int k;

	for (k = 0; k < NTABLES; k++)
		n += b->pre.out[k].cap;
	return n;
}

/* ---- units --------------------------------------------------------------- */

void
unit_add(struct unit *u, struct batch *b)
{
	if (u->nb == 0)
		u->type = b->type_idx;
	u->b[u->nb++] = b;
	u->nrec += b->nrec;
}

void
unit_prepare(struct unit *u)
{
	size_t i, n = 0, best, pos[UNIT_MAX] = { 0 };
	long long id, min;

	for (i = 0; i < u->nb; i++)
		n += u->b[i]->ngrp;
	if (n > u->cap) {
		u->cap = n;
		u->gr = xrealloc(u->gr, n * sizeof(*u->gr));
	}
	/* A merge of sorted lists; there are few of them. */
	for (u->ngrp = 0; u->ngrp < n; u->ngrp++) {
		best = UNIT_MAX;
		min = 0;
		for (i = 0; i < u->nb; i++)
			if (pos[i] < u->b[i]->ngrp && ((id = group_id(u->b[i], pos[i])) < min ||
			    best == UNIT_MAX)) {
				best = i;
				min = id;
			}
		u->gr[u->ngrp].b = u->b[best];
		u->gr[u->ngrp].g = pos[best]++;
	}
}

void
unit_clear(struct unit *u)
{
	u->nb = u->nrec = u->ngrp = 0;
	u->type = -1;
}

void
unit_free(struct unit *u)
{
	free(u->gr);
	memset(u, 0, sizeof(*u));
}

size_t
unit_build_rows(struct unit *u, size_t lo, size_t hi, unsigned mask, struct sink *sk,
    size_t *failed)
{
	size_t i, n = 0;

	for (i = lo; i < hi; i++) {
		if (!(mask & (1u << *unit_known(u, i))))
			continue;
		if (build_group(u->gr[i].b, u->gr[i].g, sk) == 0)
			n++;
		else
			(*failed)++;
	}
	return n;
}
