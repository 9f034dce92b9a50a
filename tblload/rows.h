/*
 * From a canonical record to the rows tblload writes: the typed columns of
 * docs/design.md#schema, the record as JSONB, and the link rows of a release. Rows go
 * to a sink that formats them, as COPY text for PostgreSQL or as JSON for
 * --dry-run.
 */
#ifndef TBL_ROWS_H
#define TBL_ROWS_H

#include <stddef.h>

#include "buf.h"
#include "envelope.h"
#include "json.h"

enum table {
	T_ARTISTS, T_LABELS, T_MASTERS, T_RELEASES,	/* same order as data_types */
	T_RELEASE_LABELS, T_RELEASE_ARTISTS,
	NTABLES
};

struct tabledef {
	const char	*name;
	const char	*columns[13];	/* NULL-terminated */
};
extern const struct tabledef tables[NTABLES];

enum sinkfmt { SINK_COPY, SINK_JSON };

/*
 * Where rows go. For SINK_COPY each table has its own buffer of COPY text
 * lines; for SINK_JSON every row is one JSON object line in out[0].
 */
struct sink {
	enum sinkfmt	 fmt;
	int		 with_ord;	/* link rows carry their position (staging) */
	struct buf	 out[NTABLES];
	size_t		 nuls;		/* U+0000 removed from text and JSON */
	long long	 rows[NTABLES];
	/* internal */
	enum table	 cur;
	int		 col;
	struct buf	 scratch, tmp;
};

/*
 * Append the rows of one record of data type `type` (0..3) to the sink.
 * body is the canonical record. Returns 0, or -1 with *err when the body
 * is not a JSON object.
 */
int	rows_build(struct sink *, int type, long long id, const char *sha256,
	    struct jval body, const char **err);

void	sink_reset(struct sink *);
void	sink_free(struct sink *);

#endif
