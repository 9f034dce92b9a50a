#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "window.h"

#define ST(w, t)	((w)->st[(t) % (w)->cap])

void
win_init(struct window *w)
{
	memset(w, 0, sizeof(*w));
	w->base = w->next = 1;	/* tags start at 1 on a new channel */
	w->cap = 4096;
	w->st = xcalloc(w->cap, 1);
}

void
win_free(struct window *w)
{
	free(w->st);
	w->st = NULL;
}

static void
grow(struct window *w)
{
	unsigned char *st;
	size_t cap = w->cap * 2;
	uint64_t t;

	st = xcalloc(cap, 1);
	for (t = w->base; t < w->next; t++)
		st[t % cap] = ST(w, t);
	free(w->st);
	w->st = st;
	w->cap = cap;
}

int
win_add(struct window *w, uint64_t tag)
{
	if (tag != w->next)
		return -1;
	if (w->next - w->base + 1 >= w->cap)
		grow(w);
	ST(w, tag) = TAG_OPEN;
	w->next++;
	w->open++;
	return 0;
}

static int
settle(struct window *w, uint64_t tag, enum tagstate to)
{
	if (tag < w->base || tag >= w->next || ST(w, tag) != TAG_OPEN)
		return -1;
	ST(w, tag) = (unsigned char)to;
	w->open--;
	if (to == TAG_ACK)
		w->pending++;
	return 0;
}

int
win_ack(struct window *w, uint64_t tag)
{
	return settle(w, tag, TAG_ACK);
}

int
win_reject(struct window *w, uint64_t tag)
{
	if (settle(w, tag, TAG_DONE) < 0)
		return -1;
	while (w->base < w->next && ST(w, w->base) == TAG_DONE)
		w->base++;
	return 0;
}

void
win_take_acks(struct window *w, uint64_t *multi, uint64_t *singles, size_t max,
    size_t *nsingles)
{
	uint64_t t, last_ack = 0;

	*multi = 0;
	*nsingles = 0;
	if (w->pending == 0)
		return;
	/* Everything from base up to the first open tag is settled: one
	 * multiple ack up to the last tag there that still needs an ack. */
	for (t = w->base; t < w->next && ST(w, t) != TAG_OPEN; t++)
		if (ST(w, t) == TAG_ACK)
			last_ack = t;
	if (last_ack != 0) {
		for (t = w->base; t <= last_ack; t++) {
			if (ST(w, t) == TAG_ACK)
				w->pending--;
			ST(w, t) = TAG_DONE;
		}
		*multi = last_ack;
	}
	while (w->base < w->next && ST(w, w->base) == TAG_DONE)
		w->base++;
	/* Settled tags beyond an open one are acked one by one, so they do not
	 * hold the consumer's prefetch while an older batch is still open. */
	for (t = w->base; t < w->next && w->pending > 0 && *nsingles < max; t++)
		if (ST(w, t) == TAG_ACK) {
			ST(w, t) = TAG_DONE;
			w->pending--;
			singles[(*nsingles)++] = t;
		}
	while (w->base < w->next && ST(w, w->base) == TAG_DONE)
		w->base++;
}

bool
win_idle(const struct window *w)
{
	return w->open == 0;
}
