/*
 * amqp-drain's parts and what they share. One process has one struct
 * drain, which every part is given:
 *
 *   delivery.c	frames from the broker assembled into deliveries, each
 *		written as an envelope for stdout; consumer cancels
 *   settle.c	settle lines from the ack FIFO applied to the window,
 *		acks and rejects sent to the broker; capture mode's sync
 *   amqp-drain.c	options, setup, the state file and the event loop
 */
#ifndef TBL_DRAIN_H
#define TBL_DRAIN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include <amqp.h>

#include "buf.h"
#include "envelope.h"
#include "lineio.h"
#include "window.h"

#define CH_CONSUME	1
#define CH_CHECK	2
#define DLQ_CHECK	5.0	/* seconds between checks of an unreachable dead-letter queue
				 * while rejects wait for it; 6 times as long otherwise */
#define REASON_MAX	512	/* bytes of a held reject's reason kept */

enum mode { M_PIPE, M_CAPTURE };

struct consumer {
	char		 queue[128];
	char		 tag[128];	/* consumer tag from the broker */
	bool		 active;	/* consuming (no cancel-ok yet) */
	bool		 cancel_sent;
	bool		 complete;	/* file_complete seen */
	double		 cancel_at;	/* 0: no cancel scheduled */
	unsigned long long count;
	unsigned long long acked, rejected;	/* settled by the pipeline */
	double		 last_time;
};

/* A reject held while its dead-letter queue is unreachable. */
struct held {
	uint64_t	 tag;
	int		 type;
	char		 reason[REASON_MAX];
};

/* The delivery being assembled from its frames. */
struct delivery {
	bool		 active;
	uint64_t	 tag;
	char		 rk[128];
	uint64_t	 size;
	bool		 have_size;
	bool		 redelivered;
	struct buf	 body;
};

struct drain {
	amqp_connection_state_t conn;
	char		 conn_id[17];	/* random, in envelopes and settle lines */
	enum mode	 mode;
	double		 cancel_delay;	/* --cancel-delay */
	struct consumer	 cons[NTYPES];
	struct delivery	 cur;
	struct window	 win;		/* the state of every unsettled tag */

	struct buf	 out;		/* envelopes not yet written to stdout */
	size_t		 out_off;
	bool		 out_closed;
	int		 fifo_fd;	/* pipe mode: the ack FIFO, else -1 */
	struct linereader fifo;		/* capture mode: unused, never at eof */
	uint64_t	 captured_tag;	/* capture mode: last tag written, not yet synced */
	double		 last_sync, last_delivery;

	bool		 stopping;	/* cancelling consumers, then draining */
	double		 drain_deadline, next_check;
	unsigned long long ndeliveries, nacked, nrejected, ncontrols, nredelivered;

	/*
	 * The dead-letter side. A classic dead-letter queue lives on one node;
	 * while that node is down, RabbitMQ drops what is rejected to it. So a
	 * reject of a type whose queue is unreachable is held, the delivery
	 * left unacked (win_hold), until a check every DLQ_CHECK seconds finds
	 * the queue back; a pipeline that ends meanwhile leaves it to the
	 * broker, which delivers it again.
	 */
	unsigned	 dlq_down;	/* bit per type: its dead-letter queue is unreachable */
	double		 next_dlq_check;
	struct held	*held;
	size_t		 nheld, heldcap;
};

/* The connection is lost or unusable: write the state file, exit 75. */
noreturn void drain_lost(struct drain *, const char *fmt, const char *detail);

/* delivery.c */
void	pump_broker(struct drain *);
void	write_out(struct drain *);
void	cancel_consumer(struct drain *, int type);

/* settle.c */
void	read_fifo(struct drain *);
void	send_acks(struct drain *);
void	sync_capture(struct drain *, bool force);
void	check_dead_letters(struct drain *, double now);

#endif
