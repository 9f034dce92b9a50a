#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "zin.h"

#define ZIN_CHUNK	(128 * 1024)

/* Read more raw bytes after those not yet used: >0, 0 at EOF, -1 on error. */
static long
fill(struct zin *z)
{
	ssize_t n;

	if (z->eof)
		return 0;
	if (z->in_off > 0) {
		memmove(z->in, z->in + z->in_off, z->in_len - z->in_off);
		z->in_len -= z->in_off;
		z->in_off = 0;
	}
	if ((n = read_some(z->fd, z->in + z->in_len, z->in_cap - z->in_len)) < 0) {
		snprintf(z->errbuf, sizeof(z->errbuf), "read error: %s", strerror(errno));
		z->err = z->errbuf;
		return -1;
	}
	if (n == 0)
		z->eof = true;
	z->in_len += (size_t)n;
	z->raw_bytes += (unsigned long long)n;
	return n;
}

int
zin_open(struct zin *z, int fd)
{
	memset(z, 0, sizeof(*z));
	z->fd = fd;
	z->in_cap = ZIN_CHUNK;
	z->in = xmalloc(z->in_cap);
	/* A pipe may deliver the first byte alone. */
	while (z->in_len < 2 && !z->eof)
		if (fill(z) < 0)
			return -1;
	if (z->in_len >= 2 && z->in[0] == 0x1f && z->in[1] == 0x8b) {
		z->gz = true;
		/* 15 + 16: gzip wrapper only, largest window. */
		if (inflateInit2(&z->z, 15 + 16) != Z_OK) {
			z->err = "zlib: cannot initialise";
			z->gz = false;
			return -1;
		}
	}
	return 0;
}

static long
read_plain(struct zin *z, void *p, size_t n)
{
	ssize_t r;

	if (z->in_off < z->in_len) {
		/* The bytes read to detect gzip come first. */
		if (n > z->in_len - z->in_off)
			n = z->in_len - z->in_off;
		memcpy(p, z->in + z->in_off, n);
		z->in_off += n;
		return (long)n;
	}
	if (z->eof)
		return 0;
	if ((r = read_some(z->fd, p, n)) < 0) {
		snprintf(z->errbuf, sizeof(z->errbuf), "read error: %s", strerror(errno));
		z->err = z->errbuf;
		return -1;
	}
	if (r == 0)
		z->eof = true;
	z->raw_bytes += (unsigned long long)r;
	return (long)r;
}

static long
read_gzip(struct zin *z, void *p, size_t n)
{
	int rc;

	/* zlib counts in uInt: ask for at most 1 GiB at a time. */
	if (n > 0x40000000)
		n = 0x40000000;
	z->z.next_out = p;
	z->z.avail_out = (uInt)n;
	for (;;) {
		if (z->in_off == z->in_len) {
			if (fill(z) < 0)
				return -1;
			if (z->in_len == z->in_off) {
				if (z->member_end)
					return 0;
				z->err = "gzip: unexpected end of compressed data (truncated file?)";
				return -1;
			}
		}
		if (z->member_end) {
			/* Another member follows: zcat reads it as more of the stream. */
			if (inflateReset(&z->z) != Z_OK) {
				z->err = "zlib: cannot reset";
				return -1;
			}
			z->member_end = false;
		}
		z->z.next_in = z->in + z->in_off;
		z->z.avail_in = (uInt)(z->in_len - z->in_off);
		rc = inflate(&z->z, Z_NO_FLUSH);
		z->in_off = z->in_len - z->z.avail_in;
		if (rc == Z_STREAM_END)
			z->member_end = true;
		else if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(z->errbuf, sizeof(z->errbuf), "gzip: %s",
			    z->z.msg != NULL ? z->z.msg : "corrupt compressed data");
			z->err = z->errbuf;
			return -1;
		}
		if (z->z.avail_out < n)
			return (long)(n - z->z.avail_out);
	}
}

long
zin_read(struct zin *z, void *p, size_t n)
{
	if (n == 0)
		return 0;
	return z->gz ? read_gzip(z, p, n) : read_plain(z, p, n);
}

void
zin_close(struct zin *z)
{
	if (z->gz)
		inflateEnd(&z->z);
	free(z->in);
	z->in = NULL;
}
