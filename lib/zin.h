/*
 * Input that may be gzip-compressed: the first bytes decide (the gzip magic
 * 1f 8b), never the file name, so a pipe works as well as a file. Several
 * concatenated gzip members read as one stream, as with zcat. Link with -lz.
 */
#ifndef TBL_ZIN_H
#define TBL_ZIN_H

#include <stdbool.h>
#include <stddef.h>

#include <zlib.h>

struct zin {
	int		 fd;
	bool		 gz;		/* the input is gzip */
	bool		 eof;		/* the descriptor is at end of file */
	bool		 member_end;	/* a gzip member ended; none started since */
	z_stream	 z;
	unsigned char	*in;		/* bytes read but not yet used */
	size_t		 in_cap, in_off, in_len;
	unsigned long long raw_bytes;	/* bytes read from the descriptor */
	const char	*err;		/* why the last call failed */
	char		 errbuf[128];
};

/* Start reading fd (not closed by zin_close): reads the first bytes to
 * detect gzip. Returns 0, or -1 with z->err set. */
int	zin_open(struct zin *, int fd);
/* Read up to n decompressed bytes: >0 bytes, 0 at the end of the input,
 * -1 with z->err set (read error, corrupt or truncated gzip data). */
long	zin_read(struct zin *, void *, size_t);
void	zin_close(struct zin *);

#endif
