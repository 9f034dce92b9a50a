/*
 * Envelopes, batch frames and settle lines: the NDJSON that flows between
 * the tools (docs/protocol.md). Readers look only at the header members at
 * the front of a line; the body, always the last member, is located but
 * never parsed here. They read with the scanner of json.h and write with
 * its writer.
 */
#ifndef TBL_ENVELOPE_H
#define TBL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "json.h"

/* The four record types, in the original's order. */
#define NTYPES	4
extern const char *const data_types[NTYPES];
/* Index of a type name in data_types, or -1. */
int	data_type_index(const char *, size_t);

struct envelope {
	/* The string members, as read: escaped. */
	struct jstr	 type, conn, sha256, control, invalid, raw;
	bool		 has_tag, has_id;
	unsigned long long tag;
	long long	 id;
	struct jval	 body;	/* the body's JSON text, or none */
	bool		 has_body, has_raw;
};

/* Parse the header of an envelope line. Returns 0, or -1 with *err set. */
int	env_scan(const char *line, size_t len, struct envelope *, const char **err);
/* The same for the first bytes of an overlong line: the body may be cut off. */
int	env_scan_prefix(const char *line, size_t len, struct envelope *, const char **err);

/* What env_write puts on a line; NULL members are left out. The types say
 * which text is escaped already and which is escaped on output. */
struct envelope_out {
	struct jstr	 type, conn;	/* as read from a line */
	bool		 has_id;
	unsigned long long tag;		/* written when conn is */
	long long	 id;
	const char	*sha256;	/* 64 hex digits */
	const char	*control;	/* plain text of control_len bytes */
	size_t		 control_len;
	const char	*invalid;	/* plain text */
	struct jval	 body;		/* JSON text */
	const char	*raw;		/* plain bytes, written as a string */
	size_t		 raw_len;
};

/* Append one envelope line, newline included. */
void	env_write(struct buf *, const struct envelope_out *);

/* Batch frame header: {"batch":"<type>","n":<count>} */
int	frame_scan(const char *line, size_t len, struct jstr *type, long long *n,
	    const char **err);
void	frame_write(struct buf *, struct jstr type, long long n);

/* Settle line: {"op":"ack"|"reject","conn":"…","tag":N[,"reason":"…"]} */
struct settle {
	bool		 reject;
	struct jstr	 conn, reason;
	unsigned long long tag;
};
int	settle_scan(const char *line, size_t len, struct settle *, const char **err);
/* reason is plain text (NULL for an ack). */
void	settle_write(struct buf *, bool reject, struct jstr conn,
	    unsigned long long tag, const char *reason);

#endif
