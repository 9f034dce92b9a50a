/*
 * One record's element tree, built from parser events and written out as
 * the Rust extractor's JSON (reference/record-shape.md §1): attributes as
 * "@name", text beside attributes as "#text", text trimmed, one child a bare
 * value and repeated children an array, an empty element null, the text of
 * an element with children dropped, keys sorted by byte order.
 *
 * Everything lives in two arenas that are emptied for each record, so
 * memory is bounded by the largest record, not by the file.
 */
#ifndef TBLXML_XREC_H
#define TBLXML_XREC_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

struct xnode;
struct xframe;

struct xrec {
	struct buf	 strs;		/* keys and text, referred to by offset */
	struct xnode	*nodes;		/* nodes[0] is unused: index 0 means none */
	size_t		 nnodes, capnodes;
	struct xframe	*open;		/* elements started and not ended */
	size_t		 depth, capopen;
	size_t		*order;		/* scratch for sorting members */
	size_t		 caporder;
};

/* Empty the arenas for a new record (the next start is its element). */
void	xrec_reset(struct xrec *);
/* An element starts: name and the NULL-terminated name/value pairs. */
void	xrec_start(struct xrec *, const char *name, const char **atts);
/* Character data of the innermost open element. */
void	xrec_text(struct xrec *, const char *, size_t);
/* The innermost open element ends. */
void	xrec_end(struct xrec *);
/* Elements open now (1 while inside the record element only). */
static inline size_t
xrec_depth(const struct xrec *r)
{
	return r->depth;
}

/* The record has ended: append its message body and a newline to out, as
 * the Rust extractor publishes it. add_id: insert "id" from "@id" (masters
 * and releases); self_closing: the record was written <x .../>, which the
 * extractor treats apart. Returns false, writing nothing, when the record
 * is not an object (the extractor sends nothing then). */
bool	xrec_emit(struct xrec *, struct buf *out, bool add_id, bool self_closing);

void	xrec_free(struct xrec *);

#endif
