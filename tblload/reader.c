#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "log.h"
#include "reader.h"
#include "sync.h"
#include "util.h"

static struct {
	pthread_t	 thread;
	bool		 running;
	int		 fd;
	size_t		 max_line;
	struct batch	 slot[READER_SLOTS_MAX];
	size_t		 nslots, budget;
	/*
	 * A slot is free, being read, ready (read, not yet taken) or taken
	 * (being loaded). Free slots are a stack, so that the fewest slots
	 * keep memory; ready ones a queue, in input order. Taken slots come
	 * back in any order.
	 */
	int		 free[READER_SLOTS_MAX];
	size_t		 nfree;
	int		 ready[READER_SLOTS_MAX];
	size_t		 rhead, nready;
	size_t		 held;		/* slots not free */
	size_t		 mem;		/* memory of every slot, free ones too */
	size_t		 slot_mem[READER_SLOTS_MAX];
	pthread_mutex_t	 mu;
	pthread_cond_t	 freed;		/* a slot came back, or quit */
	bool		 ended, quit;
	enum reader_status end_status;
	int		 end_errno;
	int		 wake[2];	/* the thread tells the main thread: a batch, or the end */
	int		 stop[2];	/* the main thread tells the thread: quit */
	bool		 build_ahead;
} rd = { .mu = PTHREAD_MUTEX_INITIALIZER, .freed = PTHREAD_COND_INITIALIZER,
	.wake = { -1, -1 }, .stop = { -1, -1 } };

static void
lock(void)
{
	sync_lock(&rd.mu, "reader");
}

static void
unlock(void)
{
	sync_unlock(&rd.mu, "reader");
}

/* 1 when input can be read, 0 when asked to quit. */
static int
await_input(void)
{
	struct pollfd p[2] = { { rd.fd, POLLIN, 0 }, { rd.stop[0], POLLIN, 0 } };

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die(EXIT_SOFTWARE, "poll: %s", strerror(errno));
		}
		if (p[1].revents)
			return 0;
		if (p[0].revents)
			return 1;
	}
}

/* The next line: 1, 0 at the end of input, -1 on a read error, -2 to quit. */
static int
next_line(struct linereader *in, struct line *l)
{
	int rc;

	for (;;) {
		if ((rc = lr_next(in, l)) == 1)
			return 1;
		if (rc < 0)
			return 0;
		if (!await_input())
			return -2;
		if (lr_fill(in) < 0)
			return -1;
	}
}

/*
 * Read one batch: its header line and as many lines as it announces. A line
 * outside a batch is a batch of its own (so `tblhash | tblload` works, one
 * transaction per record). Returns 1 with a batch, else as next_line.
 */
static int
read_batch(struct linereader *in, struct batch *b)
{
	struct line l;
	struct jstr type;
	const char *err;
	int rc;

	batch_clear(b);
	if ((rc = next_line(in, &l)) != 1)
		return rc;
	b->lineno = l.lineno;
	if (!l.truncated && frame_scan(l.p, l.len, &type, &b->want, &err) == 0) {
		b->type_idx = data_type_index(type.p, type.n);
		while ((long long)b->n < b->want && (rc = next_line(in, &l)) == 1)
			batch_add(b, &l, rd.max_line);
		if (rc == -1 || rc == -2)
			return rc;
		b->cut_short = (long long)b->n < b->want;
		return 1;
	}
	b->unbatched = true;
	b->lineno = l.lineno - 1;
	batch_add(b, &l, rd.max_line);
	return 1;
}

static void *
read_loop(void *arg)
{
	struct linereader in;
	struct batch *b;
	int rc, slot;

	(void)arg;
	lr_init(&in, rd.fd, rd.max_line);
	for (;;) {
		lock();
		/* Memory stays bounded: a slot is read into while the slots hold
		 * less than the budget (one batch ahead of the one being loaded
		 * always may be read). */
		while (!rd.quit && (rd.nfree == 0 || (rd.held >= 2 && rd.mem >= rd.budget)))
			sync_wait(&rd.freed, &rd.mu, "reader");
		slot = rd.quit ? -1 : rd.free[--rd.nfree];
		if (slot >= 0)
			rd.held++;
		rc = rd.quit ? -2 : 0;
		unlock();
		b = slot >= 0 ? &rd.slot[slot] : NULL;
		if (rc == 0 && (rc = read_batch(&in, b)) == 1) {
			batch_prepare(b);
			if (rd.build_ahead && !b->cut_short)
				batch_prebuild(b);
		}
		lock();
		if (slot >= 0) {
			rd.mem -= rd.slot_mem[slot];
			rd.slot_mem[slot] = batch_mem(b);
			rd.mem += rd.slot_mem[slot];
		}
		if (rc == 1) {
			rd.ready[(rd.rhead + rd.nready++) % READER_SLOTS_MAX] = slot;
		} else {
			if (slot >= 0) {
				rd.free[rd.nfree++] = slot;
				rd.held--;
			}
			rd.ended = true;
			rd.end_status = rc == -1 ? RD_ERROR : RD_END;
			rd.end_errno = errno;
		}
		unlock();
		sync_poke(rd.wake[1], "reader");
		if (rc != 1)
			break;
	}
	lr_free(&in);
	return NULL;
}

static void
make_pipe(int p[2])
{
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		die(EXIT_SOFTWARE, "pipe: %s", strerror(errno));
}

void
reader_start(int fd, size_t max_line, enum sinkfmt fmt, size_t nslots, size_t budget,
    bool build_ahead)
{
	sigset_t all, old;
	int i, err;

	rd.fd = fd;
	rd.max_line = max_line;
	rd.nslots = nslots < 2 ? 2 : nslots > READER_SLOTS_MAX ? READER_SLOTS_MAX : nslots;
	rd.budget = budget;
	rd.build_ahead = build_ahead;
	for (i = 0; i < (int)rd.nslots; i++) {
		rd.slot[i].pre.fmt = fmt;
		rd.slot[i].pre.with_ord = 0;
		/* The first slot on top of the stack. */
		rd.free[rd.nfree++] = (int)rd.nslots - 1 - i;
	}
	make_pipe(rd.wake);
	make_pipe(rd.stop);
	/* The thread inherits a mask that blocks every signal. */
	sigfillset(&all);
	if ((err = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0 ||
	    (err = pthread_create(&rd.thread, NULL, read_loop, NULL)) != 0 ||
	    (err = pthread_sigmask(SIG_SETMASK, &old, NULL)) != 0)
		die(EXIT_SOFTWARE, "reader thread: %s", strerror(err));
	rd.running = true;
}

enum reader_status
reader_next(double timeout, struct batch **bp)
{
	struct pollfd p = { rd.wake[0], POLLIN, 0 };
	enum reader_status st;
	char drain[64];

	for (;;) {
		lock();
		if (rd.nready > 0) {
			*bp = &rd.slot[rd.ready[rd.rhead]];
			rd.rhead = (rd.rhead + 1) % READER_SLOTS_MAX;
			rd.nready--;
			unlock();
			return RD_BATCH;
		}
		if (rd.ended) {
			st = rd.end_status;
			errno = rd.end_errno;
			unlock();
			return st;
		}
		unlock();
		switch (poll(&p, 1, timeout < 0 ? -1 : (int)(timeout * 1000))) {
		case -1:
			if (errno != EINTR)
				die(EXIT_SOFTWARE, "poll: %s", strerror(errno));
			/* FALLTHROUGH */
		case 0:
			return RD_WAIT;
		}
		while (read(rd.wake[0], drain, sizeof(drain)) > 0)
			;
	}
}

int
reader_fd(void)
{
	return rd.wake[0];
}

void
reader_release(struct batch *b)
{
	int slot = (int)(b - rd.slot);

	lock();
	rd.held--;
	if (rd.mem > rd.budget) {
		/* Over the budget (after a large batch): this slot's memory goes. */
		rd.mem -= rd.slot_mem[slot];
		rd.slot_mem[slot] = 0;
		batch_shrink(b);
	}
	rd.free[rd.nfree++] = slot;
	sync_wake(&rd.freed, false, "reader");
	unlock();
}

void
reader_stop(void)
{
	int i, err;

	if (!rd.running)
		return;
	lock();
	rd.quit = true;
	sync_wake(&rd.freed, false, "reader");
	unlock();
	sync_poke(rd.stop[1], "reader");
	if ((err = pthread_join(rd.thread, NULL)) != 0)
		die(EXIT_SOFTWARE, "reader thread: %s", strerror(err));
	rd.running = false;
	for (i = 0; i < (int)rd.nslots; i++)
		batch_free(&rd.slot[i]);
	for (i = 0; i < 2; i++)
		if (close(rd.wake[i]) < 0 || close(rd.stop[i]) < 0)
			die(EXIT_SOFTWARE, "reader pipe: %s", strerror(errno));
}
