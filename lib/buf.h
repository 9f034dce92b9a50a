/* A growable byte buffer. */
#ifndef TBL_BUF_H
#define TBL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

/* The bytes are always followed by a NUL (once anything was added), so p
 * can be passed where a C string is wanted. */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
};

void	buf_reserve(struct buf *, size_t);
void	buf_add(struct buf *, const void *, size_t);
void	buf_adds(struct buf *, const char *);
void	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_vprintf(struct buf *, const char *, va_list);
void	buf_free(struct buf *);
/* Drop the first n bytes. */
void	buf_consume(struct buf *, size_t);

static inline void
buf_addc(struct buf *b, char c)
{
	if (b->len + 1 >= b->cap)
		buf_reserve(b, 1);
	b->p[b->len++] = c;
	b->p[b->len] = '\0';
}

static inline void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/*
 * The former names of json_put_str and json_put_str_lossy (json.h), which
 * put no comma first. Only tblxml and tblhealth still call them, because
 * other changes are rewriting those files at the same time; they move to
 * json.h after, and these go. New code uses json.h.
 */
void	buf_json_str(struct buf *, const char *, size_t);
void	buf_json_str_lossy(struct buf *, const char *, size_t);

#endif
