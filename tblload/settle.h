/*
 * What becomes of each delivery (docs/design.md#delivery): once the
 * commit that holds it is done, a settle line goes to the ack file (a FIFO
 * read by amqp-drain, or a regular file); a message PostgreSQL or tblload
 * refuses is logged, counted, and appended to the rejects file, and its
 * settle line rejects it.
 */
#ifndef TBL_SETTLE_H
#define TBL_SETTLE_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "buf.h"

/* --acks and --rejects (either may be NULL). A regular ack file or the
 * rejects file that cannot be opened exits 78 at once; a FIFO is opened
 * at the first settle line, when its reader is sure to be there. */
void	settle_open(const char *acks, const char *rejects);
/* Send the first len bytes of settle lines in b (main thread only), and
 * take them out of b. */
void	settle_send(struct buf *b, size_t len);
/* Append r's settle line (if it came from the broker) to out. */
void	settle_one(struct buf *out, const struct rec *r, bool reject, const char *reason);
/* Reject r of batch b for reason, its settle line into out (any thread). */
void	reject(struct batch *, const struct rec *r, const char *reason, struct buf *out);
/*
 * Take a batch from the reader: reject its invalid lines at once, log its
 * control messages and append their settle lines to controls (they are
 * sent once the records before them are committed). Returns whether it
 * has records to commit.
 */
bool	settle_intake(struct batch *, struct buf *controls);
void	settle_close(void);

#endif
