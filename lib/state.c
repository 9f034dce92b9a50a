#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "num.h"
#include "state.h"
#include "util.h"

bool
state_open(struct statefile *s, const char *name)
{
	const char *dir = env_str("TBL_STATE_DIR", NULL);

	memset(s, 0, sizeof(*s));
	if (dir == NULL)
		return false;
	s->path = xasprintf("%s/%s.json", dir, name);
	s->tmp = xasprintf("%s/.%s.json.%ld", dir, name, (long)getpid());
	s->started = now_wall();
	s->last = -1e9;
	return true;
}

struct buf *
state_begin(struct statefile *s, double min_interval)
{
	if (s->path == NULL || now_mono() - s->last < min_interval)
		return NULL;
	buf_reset(&s->b);
	buf_printf(&s->b, "{\"tool\":\"%s\",\"pid\":%ld,\"started\":%.3f,\"heartbeat\":%.3f",
	    progname, (long)getpid(), s->started, now_wall());
	return &s->b;
}

void
state_commit(struct statefile *s)
{
	int fd, ok;

	if (s->path == NULL)
		return;
	buf_add(&s->b, "}\n", 2);
	s->last = now_mono();
	if ((fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		log_msg(LOG_WARNING, "⚠️ State file %s: %s", s->tmp, strerror(errno));
		return;
	}
	ok = write_all(fd, s->b.p, s->b.len) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(s->tmp, s->path) < 0) {
		/* Health reporting must never stop the data path. */
		log_msg(LOG_WARNING, "⚠️ State file %s: %s", s->path, strerror(errno));
		(void)unlink(s->tmp);
	}
}
