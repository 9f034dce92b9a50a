#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sync.h"
#include "util.h"

void
sync_lock(pthread_mutex_t *m, const char *what)
{
	int err;

	if ((err = pthread_mutex_lock(m)) != 0)
		die(EXIT_SOFTWARE, "%s lock: %s", what, strerror(err));
}

void
sync_unlock(pthread_mutex_t *m, const char *what)
{
	int err;

	if ((err = pthread_mutex_unlock(m)) != 0)
		die(EXIT_SOFTWARE, "%s unlock: %s", what, strerror(err));
}

void
sync_wait(pthread_cond_t *c, pthread_mutex_t *m, const char *what)
{
	int err;

	if ((err = pthread_cond_wait(c, m)) != 0)
		die(EXIT_SOFTWARE, "%s wait: %s", what, strerror(err));
}

void
sync_wake(pthread_cond_t *c, bool all, const char *what)
{
	int err;

	if ((err = all ? pthread_cond_broadcast(c) : pthread_cond_signal(c)) != 0)
		die(EXIT_SOFTWARE, "%s signal: %s", what, strerror(err));
}

void
sync_poke(int fd, const char *what)
{
	char c = 0;

	if (write(fd, &c, 1) < 0 && errno != EAGAIN && errno != EINTR)
		die(EXIT_SOFTWARE, "%s pipe: %s", what, strerror(errno));
}
