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

/* What the commit did with a group's record. */
enum { O_INSERTED, O_UPDATED, O_UNCHANGED, O_REJECTED };

struct rec {
	enum kind	 kind;
	size_t		 off, len;	/* the line, in the batch arena */
	struct envelope	 e;
	char		*reason;	/* for R_INVALID */
	const char	*build_err;	/* the body gave no row (R_RECORD) */
	size_t		 pos;		/* position in the batch */
	size_t		 nuls;		/* U+0000 removed from its rows, as last built */
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
	unsigned char	*outcome;	/* per group, once committed: O_* */
	unsigned long long seq;		/* arrival order, given by the loader */

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
/* Free its memory; it can be read into again. */
void	batch_shrink(struct batch *);
/* Read the envelope headers, classify the lines, sort and group the records. */
void	batch_prepare(struct batch *);
/* The record that counts in group g: the last one with that id. */
struct rec *winner(const struct batch *, size_t g);
/* The id of group g. */
long long group_id(const struct batch *, size_t g);
/* Build pre: every group's rows, as new. */
void	batch_prebuild(struct batch *);
/* Whether two batches hold a record of the same type and id. */
bool	batches_conflict(const struct batch *, const struct batch *);
/* Bytes of memory the batch holds (its lines, records, rows built ahead),
 * counting what its buffers keep for the next batch. */
size_t	batch_mem(const struct batch *);

/*
 * What one transaction commits: one batch, or several batches of one type
 * that have no id in common, their groups merged in id order (so that
 * locks are taken in id order whatever the batches).
 */
#define UNIT_MAX	64

struct gref {
	struct batch	*b;
	size_t		 g;
};

struct unit {
	struct batch	*b[UNIT_MAX];
	size_t		 nb;
	size_t		 nrec;		/* records of its batches */
	int		 type;
	struct gref	*gr;		/* every group of every batch, by id */
	size_t		 ngrp, cap;
};

/* Add a batch (of the unit's type, no id in common with the others). */
void	unit_add(struct unit *, struct batch *);
/* Merge the groups of the unit's batches into gr, in id order. */
void	unit_prepare(struct unit *);
void	unit_clear(struct unit *);
void	unit_free(struct unit *);

static inline struct rec *
unit_winner(const struct unit *u, size_t i)
{
	return winner(u->gr[i].b, u->gr[i].g);
}

static inline unsigned char *
unit_known(const struct unit *u, size_t i)
{
	return &u->gr[i].b->known[u->gr[i].g];
}

static inline unsigned char *
unit_outcome(const struct unit *u, size_t i)
{
	return &u->gr[i].b->outcome[u->gr[i].g];
}

/*
 * Rows for the unit's groups [lo, hi) whose state is in mask (bit
 * 1 << G_*), into sk; returns how many records gave rows. A record whose
 * body gives none keeps the reason in build_err and is counted in *failed.
 */
size_t	unit_build_rows(struct unit *, size_t lo, size_t hi, unsigned mask, struct sink *,
	    size_t *failed);

#endif
