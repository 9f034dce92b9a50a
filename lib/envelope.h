/*
 * Envelopes, batch frames and settle lines: the NDJSON that flows between
 * the tools (docs/protocol.md). Readers look only at the header members at
 * the front of a line; the body, always the last member, is located but
 * never parsed here.
 */
#ifndef TBL_ENVELOPE_H
#define TBL_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* The four record types, in the original's order. */
#define NTYPES	4
extern const char *const data_types[NTYPES];
/* Index of a type name in data_types, or -1. */
int	data_type_index(const char *, size_t);

/* A slice of a line. For string members it is the text between the quotes,
 * still escaped (esc says whether it holds any backslash). */
struct slice {
	const char	*p;
	size_t		 n;
	bool		 esc;
};

struct envelope {
	struct slice	 type, conn, sha256, control, invalid;
	bool		 has_tag, has_id;
	unsigned long long tag;
	long long	 id;
	struct slice	 body;	/* JSON text of the body, or empty */
	struct slice	 raw;	/* contents of the "raw" string, or empty */
	bool		 has_body, has_raw;
};

/* Parse the header of an envelope line. Returns 0, or -1 with *err set. */
int	env_scan(const char *line, size_t len, struct envelope *, const char **err);
/* The same for the first bytes of an overlong line: the body may be cut off. */
int	env_scan_prefix(const char *line, size_t len, struct envelope *, const char **err);

/* Append the decoded value of a string slice. */
void	slice_decode(struct buf *, struct slice);
bool	slice_eq(struct slice, const char *);

/* What env_write puts on a line; NULL/false members are left out. type and
 * conn are JSON string contents (already escaped, as read from a line);
 * control and invalid are plain text, escaped on output. */
struct envelope_out {
	struct slice	 type, conn;
	bool		 has_id;
	unsigned long long tag;		/* written when conn is */
	long long	 id;
	const char	*sha256;	/* 64 hex digits */
	const char	*control;	/* plain text of control_len bytes */
	size_t		 control_len;
	const char	*invalid;	/* plain text, escaped on output */
	const char	*body;		/* JSON text */
	size_t		 body_len;
	const char	*raw;		/* bytes, written as a JSON string */
	size_t		 raw_len;
};

/* Append one envelope line, newline included. */
void	env_write(struct buf *, const struct envelope_out *);

/* Batch frame header: {"batch":"<type>","n":<count>} */
int	frame_scan(const char *line, size_t len, struct slice *type, long long *n,
	    const char **err);
void	frame_write(struct buf *, struct slice type, long long n);

/* Settle line: {"op":"ack"|"reject","conn":"…","tag":N[,"reason":"…"]} */
struct settle {
	bool		 reject;
	struct slice	 conn, reason;
	unsigned long long tag;
};
int	settle_scan(const char *line, size_t len, struct settle *, const char **err);
void	settle_write(struct buf *, bool reject, struct slice conn,
	    unsigned long long tag, const char *reason);

#endif
