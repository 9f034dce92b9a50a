/*
 * A batch as tblload holds it: its lines in one arena, each line's envelope
 * header, its records sorted by (id, position) and grouped by id. The last
 * record of each id is the one that counts.
 */
#ifndef TBL_BATCH_H
#define TBL_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "envelope.h"
#include "lineio.h"
#include "rows.h"

enum kind { R_RECORD, R_CONTROL, R_INVALID };

/* What the database holds of a group's id: nothing, the same record, or
 * another version of it. */
enum { G_NEW, G_SAME, G_CHANGED };

struct rec {
	enum kind	 kind;
	size_t		 off, len;	/* the line, in the batch arena */
	struct envelope	 e;
	char		*reason;	/* for R_INVALID */
	const char	*build_err;	/* the body gave no row (R_RECORD) */
	size_t		 pos;		/* position in the batch */
};

struct batch {
	struct buf	 arena;
	struct rec	*r;
	size_t		 n, cap;
	int		 type_idx;	/* from the header, else of the first record;
					 * after batch_prepare, of every record */
	unsigned long long lineno;	/* of the header (of the line before, unbatched) */
	size_t		*order;		/* records sorted by (id, position) */
	size_t		 nrec;
	size_t		*grp;		/* start of each id's group in order[] */
	size_t		 ngrp;
	unsigned char	*known;		/* per group: G_NEW, G_SAME or G_CHANGED */

	/* How the reader found it. */
	bool		 unbatched;	/* a line outside any batch, alone */
	bool		 cut_short;	/* the input ended inside it */
	long long	 want;		/* lines its header announced */

	/*
	 * The rows of every group as if none were stored yet, built ahead by
	 * the reader while the batch before was in the database (batch_prebuild).
	 */
	struct sink	 pre;
	bool		 prebuilt;
	size_t		 pre_rows, pre_failed;
};

/* Append one input line; an overlong one becomes an invalid record. */
void	batch_add(struct batch *, const struct line *, size_t max_line);
/* Empty the batch for the next one (its memory is kept, unless it was huge). */
void	batch_clear(struct batch *);
void	batch_free(struct batch *);
/* Read the envelope headers, classify the lines, sort and group the records. */
void	batch_prepare(struct batch *);
/* The record that counts in group g: the last one with that id. */
struct rec *winner(struct batch *, size_t g);
/*
 * Rows for the groups [lo, hi) whose state is in mask (bit 1 << G_*), into
 * sk; returns how many records gave rows. A record whose body gives none
 * keeps the reason in build_err and is counted in *failed.
 */
size_t	build_rows(struct batch *, size_t lo, size_t hi, unsigned mask, struct sink *,
	    size_t *failed);
/* Build pre: every group's rows, as new. */
void	batch_prebuild(struct batch *);

#endif
