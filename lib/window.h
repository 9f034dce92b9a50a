/*
 * The settlement window of one channel: every delivery tag from the oldest
 * one not yet settled on the broker to the newest one received, with its
 * state. It decides which basic.ack (multiple or single) and basic.reject
 * frames to send, so that no tag is settled twice and a multiple ack never
 * covers a tag that is not settled.
 *
 * A publisher keeps one for its confirms: the tags are those of its
 * publishes, and the broker's basic.ack and basic.nack settle them, in
 * whatever order they come (win_confirm).
 */
#ifndef TBL_WINDOW_H
#define TBL_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum tagstate {
	TAG_OPEN,	/* delivered, not settled */
	TAG_ACK,	/* to be acked */
	TAG_DONE	/* acked or rejected on the broker */
};

struct window {
	uint64_t	 base;	/* oldest tag not DONE */
	uint64_t	 next;	/* next tag expected from the broker */
	unsigned char	*st;	/* ring of states, indexed by tag % cap */
	size_t		 cap;
	size_t		 open;	/* tags in TAG_OPEN */
	size_t		 pending;	/* tags in TAG_ACK */
	uint64_t	*held;	/* tags held unsettled on the broker (win_hold) */
	size_t		 nheld, heldcap;
	uint64_t	 held_min;	/* the lowest of them, when nheld > 0 */
};

void	win_init(struct window *);
void	win_free(struct window *);
/* Record a new delivery of a record type (0..15, for counting); -1 if the
 * tag is not the next one. */
int	win_add(struct window *, uint64_t tag, int type);
/* Mark a delivered tag settled: its type, or -1 if it is unknown or already
 * settled. */
int	win_ack(struct window *, uint64_t tag);
int	win_reject(struct window *, uint64_t tag);	/* caller sends basic.reject */
/* The type of a tag still open, or -1. */
int	win_type(const struct window *, uint64_t tag);
/*
 * A reject that cannot be sent yet (its dead-letter queue is unreachable):
 * the tag counts as settled here, so that the window moves on and stays
 * small however long it waits, but no multiple ack covers it from now on.
 * Its type, or -1 as win_reject. win_release ends the hold (0, or -1 if
 * the tag was not held): the caller then sends the basic.reject.
 */
int	win_hold(struct window *, uint64_t tag);
int	win_release(struct window *, uint64_t tag);
/* A publisher confirm (basic.ack or basic.nack) from the broker: settle tag,
 * or with multiple every tag up to it, that is still open. Returns how many
 * it settled (tags already settled are not counted again). */
size_t	win_confirm(struct window *, uint64_t tag, bool multiple);

/* The acks to send now: at most one multiple ack (*multi, 0 if none), then
 * single acks for settled tags above the oldest open one (written to
 * singles, at most max of them; *nsingles set). Marks them all DONE. */
void	win_take_acks(struct window *, uint64_t *multi, uint64_t *singles, size_t max,
	    size_t *nsingles);
bool	win_idle(const struct window *);	/* nothing delivered is unsettled */

#endif
