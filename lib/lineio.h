/*
 * Line-oriented input and buffered output on file descriptors. The reader is
 * binary-safe (NUL bytes are data), accepts a last line without a newline,
 * and bounds memory: a line longer than max_line is not stored; its first
 * bytes are kept (enough to read an envelope header) and it is returned
 * marked truncated with its full length.
 */
#ifndef TBL_LINEIO_H
#define TBL_LINEIO_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define LINE_KEEP	4096	/* bytes kept of an overlong line */

struct line {
	const char	*p;	/* without the newline */
	size_t		 len;
	bool		 truncated;	/* longer than max_line: p holds a prefix */
	size_t		 full_len;	/* length of the whole line */
	unsigned long long lineno;
};

struct linereader {
	int		 fd;
	char		*buf;
	size_t		 cap, start, end, scan;
	size_t		 max_line;
	bool		 eof;
	bool		 skipping;	/* inside an overlong line */
	size_t		 skipped;
	char		 prefix[LINE_KEEP];
	size_t		 prefix_len;
	unsigned long long lineno;
};

void	lr_init(struct linereader *, int fd, size_t max_line);
void	lr_free(struct linereader *);
/* Read once from the descriptor: >0 bytes read, 0 at EOF, -1 on error
 * (errno set; EAGAIN for a non-blocking descriptor with nothing to read). */
long	lr_fill(struct linereader *);
/* The next line already in the buffer: 1 if *l was set, 0 if more input is
 * needed, -1 at end of input. A line is valid until the next lr_fill. */
int	lr_next(struct linereader *, struct line *);
struct writer;
/* Blocking: 1 with a line, 0 at end of input, -1 on a read error. When the
 * next read may block, w (if not NULL) is flushed first, so that output
 * never waits in a buffer while the input is idle; a failed flush returns
 * -2 with errno set. */
int	lr_getline(struct linereader *, struct line *, struct writer *w);

/* Buffered writer; errors are sticky and reported by w_flush. */
struct writer {
	int		 fd;
	struct buf	 b;
	size_t		 flush_at;
	int		 err;	/* errno of the first failed write, 0 if none */
};

void	w_init(struct writer *, int fd, size_t flush_at);
/* Write out what is buffered: 0, or -1 with errno (also on an earlier error). */
int	w_flush(struct writer *);
/* Flush when more than flush_at bytes are buffered. */
int	w_maybe_flush(struct writer *);
void	w_free(struct writer *);

#endif
