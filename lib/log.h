/*
 * Structured logging: one JSON object per line on stderr, as the original
 * service logs (timestamp, level, logger, event, then fields). LOG_LEVEL
 * filters. A record is built with log_begin, the log_* field adders and
 * log_end; log_begin returns NULL when the level is filtered out and every
 * adder accepts NULL, so call sites need no conditionals.
 */
#ifndef TBL_LOG_H
#define TBL_LOG_H

#include <stddef.h>
#include <stdnoreturn.h>

#include "json.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_CRITICAL };

struct logrec;

/* Set the tool name (logger "tableinator.<tool>") and read LOG_LEVEL;
 * a bad LOG_LEVEL exits 78. */
void	log_init(const char *tool);
int	log_enabled(enum log_level);

struct logrec *log_begin(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void	log_str(struct logrec *, const char *key, const char *val);
void	log_strn(struct logrec *, const char *key, const char *val, size_t n);
/* A string as read from JSON (escaped): logged decoded, escaped once. */
void	log_jstr(struct logrec *, const char *key, struct jstr);
void	log_int(struct logrec *, const char *key, long long);
void	log_num(struct logrec *, const char *key, double);
void	log_bool(struct logrec *, const char *key, int);
/* Add a member whose value is already JSON text. */
void	log_json(struct logrec *, const char *key, const char *json, size_t n);
void	log_end(struct logrec *);

/* An event with no fields. */
void	log_msg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Log at level error and exit with status. */
noreturn void die(int status, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif
