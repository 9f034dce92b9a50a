#include <sys/stat.h>

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
state_dir_ok(const char *dir, bool create, char *why, size_t whysz)
{
	struct stat st;

	if (*dir == '\0') {
		snprintf(why, whysz, "empty path");
		return false;
	}
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(why, whysz, "cannot create it: %s", strerror(errno));
		return false;
	}
	/* lstat: a link to a directory is refused, whoever owns the target. */
	if (lstat(dir, &st) < 0) {
		snprintf(why, whysz, "%s", strerror(errno));
		return false;
	}
	if (S_ISLNK(st.st_mode))
		snprintf(why, whysz, "is a symbolic link");
	else if (!S_ISDIR(st.st_mode))
		snprintf(why, whysz, "not a directory");
	else if (st.st_uid != geteuid())
		snprintf(why, whysz, "owned by uid %ld, not by this user (uid %ld)",
		    (long)st.st_uid, (long)geteuid());
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		snprintf(why, whysz, "writable by group or others (mode %04o)",
		    (unsigned int)(st.st_mode & 07777));
	else
		return true;
	return false;
}

bool
state_open(struct statefile *s, const char *name)
{
	const char *dir = env_str("TBL_STATE_DIR", NULL);
	char why[256];

	memset(s, 0, sizeof(*s));
	if (dir == NULL)
		return false;
	if (!state_dir_ok(dir, true, why, sizeof(why)))
		die(EXIT_CONFIG, "TBL_STATE_DIR %s: %s", dir, why);
	s->dir = xstrdup(dir);
	s->path = xasprintf("%s/%s.json", dir, name);
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

/*
 * The temporary file gets a fresh random name, created with O_EXCL (mkstemp
 * never follows or reuses a planted name) and mode 0600, then is renamed
 * over the state file.
 */
void
state_commit(struct statefile *s)
{
	char *tmp;
	int fd, ok;

	if (s->path == NULL)
		return;
	buf_add(&s->b, "}\n", 2);
	s->last = now_mono();
	tmp = xasprintf("%s/.%s.XXXXXX", s->dir, progname);
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		/* Health reporting must never stop the data path. */
		log_msg(LOG_WARNING, "⚠️ State file in %s: %s", s->dir, strerror(errno));
		free(tmp);
		return;
	}
	ok = write_all(fd, s->b.p, s->b.len) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, s->path) < 0) {
		log_msg(LOG_WARNING, "⚠️ State file %s: %s", s->path, strerror(errno));
		(void)unlink(tmp);
	}
	free(tmp);
}
