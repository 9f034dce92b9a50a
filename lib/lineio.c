#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lineio.h"
#include "util.h"

#define READ_CHUNK	(256 * 1024)

void
lr_init(struct linereader *r, int fd, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->max_line = max_line;
	r->cap = 2 * READ_CHUNK;
	r->buf = xmalloc(r->cap);
}

void
lr_free(struct linereader *r)
{
	free(r->buf);
	r->buf = NULL;
}

long
lr_fill(struct linereader *r)
{
	ssize_t n;
	size_t want;

	if (r->eof)
		return 0;
	/* Move the partial line to the front, then grow only if a long line needs it. */
	if (r->start > 0 && (r->cap - r->end < READ_CHUNK || r->start == r->end)) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->scan -= r->start;
		r->start = 0;
	}
	if (r->cap - r->end < READ_CHUNK / 4) {
		r->cap *= 2;
		r->buf = xrealloc(r->buf, r->cap);
	}
	want = r->cap - r->end;
	n = read_some(r->fd, r->buf + r->end, want);
	if (n < 0)
		return -1;
	if (n == 0) {
		r->eof = true;
		return 0;
	}
	r->end += (size_t)n;
	return (long)n;
}

int
lr_next(struct linereader *r, struct line *l)
{
	char *nl;
	size_t have;

	for (;;) {
		have = r->end - r->scan;
		nl = have ? memchr(r->buf + r->scan, '\n', have) : NULL;
		if (r->skipping) {
			/* Discard the rest of an overlong line up to its newline. */
			if (nl == NULL && !r->eof) {
				r->skipped += have;
				r->start = r->scan = r->end;
				return 0;
			}
			r->skipped += nl ? (size_t)(nl - (r->buf + r->scan)) : have;
			r->start = r->scan = nl ? (size_t)(nl - r->buf) + 1 : r->end;
			r->skipping = false;
			l->p = r->prefix;
			l->len = r->prefix_len;
			l->truncated = true;
			l->full_len = r->skipped;
			l->lineno = ++r->lineno;
			return 1;
		}
		if (nl != NULL) {
			l->p = r->buf + r->start;
			l->len = (size_t)(nl - l->p);
			r->start = r->scan = (size_t)(nl - r->buf) + 1;
			if (l->len > r->max_line) {
				/* Overlong but complete within one buffer: keep the prefix only. */
				r->prefix_len = l->len < LINE_KEEP ? l->len : LINE_KEEP;
				memcpy(r->prefix, l->p, r->prefix_len);
				l->full_len = l->len;
				l->p = r->prefix;
				l->len = r->prefix_len;
				l->truncated = true;
			} else {
				l->truncated = false;
				l->full_len = l->len;
			}
			l->lineno = ++r->lineno;
			return 1;
		}
		r->scan = r->end;
		if (r->end - r->start > r->max_line) {
			/* Too long to keep: remember the start, drop the rest. */
			r->prefix_len = r->max_line < LINE_KEEP ? r->max_line : LINE_KEEP;
			memcpy(r->prefix, r->buf + r->start, r->prefix_len);
			r->skipped = r->end - r->start;
			r->start = r->scan = r->end;
			r->skipping = true;
			if (!r->eof)
				return 0;
			continue;
		}
		if (!r->eof)
			return 0;
		if (r->start == r->end)
			return -1;
		/* The last line has no newline. */
		l->p = r->buf + r->start;
		l->len = r->end - r->start;
		l->truncated = false;
		l->full_len = l->len;
		l->lineno = ++r->lineno;
		r->start = r->scan = r->end;
		return 1;
	}
}

int
lr_getline(struct linereader *r, struct line *l, struct writer *w)
{
	int rc;

	for (;;) {
		if ((rc = lr_next(r, l)) == 1)
			return 1;
		if (rc < 0)
			return 0;
		if (w != NULL && w->b.len > 0 && w_flush(w) < 0)
			return -2;
		if (lr_fill(r) < 0)
			return -1;
	}
}

void
w_init(struct writer *w, int fd, size_t flush_at)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	w->flush_at = flush_at;
}

int
w_flush(struct writer *w)
{
	if (w->err == 0 && w->b.len > 0 && write_all(w->fd, w->b.p, w->b.len) < 0)
		w->err = errno;
	buf_reset(&w->b);
	if (w->err != 0) {
		errno = w->err;
		return -1;
	}
	return 0;
}

int
w_maybe_flush(struct writer *w)
{
	if (w->b.len < w->flush_at)
		return w->err ? (errno = w->err, -1) : 0;
	return w_flush(w);
}

void
w_free(struct writer *w)
{
	buf_free(&w->b);
}
