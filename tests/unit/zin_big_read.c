/*
 * zin_read asked for more than zlib's 1 GiB at once returns the bytes it
 * decompressed, not the size asked for less what was left of the first
 * GiB (which claimed bytes that were never written). Exits 0 when right.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "zin.h"

int
main(void)
{
	static const char text[] = "hello, zin\n";
	char path[] = "/tmp/zin-test.XXXXXX";
	size_t big = ((size_t)1 << 30) + 4096;
	struct zin z;
	gzFile gz;
	char *buf;
	long n;
	int fd;

	if ((fd = mkstemp(path)) < 0 || unlink(path) < 0 ||
	    (gz = gzdopen(dup(fd), "wb")) == NULL ||
	    gzwrite(gz, text, sizeof(text) - 1) != (int)(sizeof(text) - 1) || gzclose(gz) != Z_OK ||
	    lseek(fd, 0, SEEK_SET) != 0) {
		perror("zin_big_read: setup");
		return 2;
	}
	/* Untouched pages of a large allocation cost no memory. */
	if ((buf = malloc(big)) == NULL || zin_open(&z, fd) < 0) {
		perror("zin_big_read: malloc or zin_open");
		return 2;
	}
	n = zin_read(&z, buf, big);
	if (n != (long)(sizeof(text) - 1) || memcmp(buf, text, sizeof(text) - 1) != 0) {
		fprintf(stderr, "zin_big_read: read %ld bytes, want %zu\n", n, sizeof(text) - 1);
		return 1;
	}
	if ((n = zin_read(&z, buf, big)) != 0) {
		fprintf(stderr, "zin_big_read: %ld bytes after the end, want 0\n", n);
		return 1;
	}
	zin_close(&z);
	free(buf);
	close(fd);
	return 0;
}
