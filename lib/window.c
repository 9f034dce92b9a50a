#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "window.h"

/* Per tag: the state in the low bits, the record type above them. */
#define ST_MASK		0x0f
#define ST(w, t)	((w)->st[(t) % (w)->cap])
#define STATE(w, t)	(ST(w, t) & ST_MASK)
#define SET_STATE(w, t, s)	(ST(w, t) = (unsigned char)((ST(w, t) & ~ST_MASK) | (s)))

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
	free(w->held);
	w->st = NULL;
	w->held = NULL;
	w->nheld = w->heldcap = 0;
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
win_add(struct window *w, uint64_t tag, int type)
{
	if (tag != w->next)
		return -1;
	if (w->next - w->base + 1 >= w->cap)
		grow(w);
	ST(w, tag) = (unsigned char)(TAG_OPEN | (type & 0x0f) << 4);
	w->next++;
	w->open++;
	return 0;
}

static int
settle(struct window *w, uint64_t tag, enum tagstate to)
{
	if (tag < w->base || tag >= w->next || STATE(w, tag) != TAG_OPEN)
		return -1;
	SET_STATE(w, tag, to);
	w->open--;
	if (to == TAG_ACK)
		w->pending++;
	return ST(w, tag) >> 4;
}

static void
advance(struct window *w)
{
	while (w->base < w->next && STATE(w, w->base) == TAG_DONE)
		w->base++;
}

int
win_ack(struct window *w, uint64_t tag)
{
	return settle(w, tag, TAG_ACK);
}

int
win_reject(struct window *w, uint64_t tag)
{
	int type;

	if ((type = settle(w, tag, TAG_DONE)) < 0)
		return -1;
	advance(w);
	return type;
}

int
win_type(const struct window *w, uint64_t tag)
{
	if (tag < w->base || tag >= w->next || STATE(w, tag) != TAG_OPEN)
		return -1;
	return ST(w, tag) >> 4;
}

int
win_hold(struct window *w, uint64_t tag)
{
	int type;

	if ((type = win_reject(w, tag)) < 0)
		return -1;
	if (w->nheld == w->heldcap) {
		w->heldcap = w->heldcap ? w->heldcap * 2 : 16;
		w->held = xrealloc(w->held, w->heldcap * sizeof(*w->held));
	}
	if (w->nheld == 0 || tag < w->held_min)
		w->held_min = tag;
	w->held[w->nheld++] = tag;
	return type;
}

int
win_release(struct window *w, uint64_t tag)
{
	size_t i;

	for (i = 0; i < w->nheld && w->held[i] != tag; i++)
		;
	if (i == w->nheld)
		return -1;
	w->held[i] = w->held[--w->nheld];
	if (tag == w->held_min)
		for (i = 0; i < w->nheld; i++)
			if (i == 0 || w->held[i] < w->held_min)
				w->held_min = w->held[i];
	return 0;
}

size_t
win_confirm(struct window *w, uint64_t tag, bool multiple)
{
	uint64_t t;
	size_t n = 0;

	if (!multiple)
		n = settle(w, tag, TAG_DONE) >= 0;
	else
		for (t = w->base; t <= tag && t < w->next; t++)
			if (settle(w, t, TAG_DONE) >= 0)
				n++;
	advance(w);
	return n;
}

void
win_take_acks(struct window *w, uint64_t *multi, uint64_t *singles, size_t max,
    size_t *nsingles)
{
	uint64_t t;
	bool open_seen = false;

	*multi = 0;
	*nsingles = 0;
	/* Everything from base up to the first open tag is settled: one
	 * multiple ack up to the last tag there that needs an ack. Settled
	 * tags beyond an open one are acked one by one, so they do not hold
	 * the consumer's prefetch while an older batch is still open. */
	for (t = w->base; t < w->next && w->pending > 0; t++) {
		if (STATE(w, t) == TAG_OPEN)
			open_seen = true;
		if (STATE(w, t) != TAG_ACK)
			continue;
		/* (A held tag is not open here, but is on the broker.) */
		if (!open_seen && (w->nheld == 0 || t < w->held_min))
			*multi = t;
		else if (*nsingles < max)
			singles[(*nsingles)++] = t;
		else
			break;
		SET_STATE(w, t, TAG_DONE);
		w->pending--;
	}
	advance(w);
}

bool
win_idle(const struct window *w)
{
	return w->open == 0;
}
