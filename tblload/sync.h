/*
 * What tblload's threads use to work together: mutexes, condition
 * variables and wake-up pipes whose failure (a bug) ends tblload with
 * status 70 and a message naming what failed.
 */
#ifndef TBL_SYNC_H
#define TBL_SYNC_H

#include <pthread.h>
#include <stdbool.h>

void	sync_lock(pthread_mutex_t *, const char *what);
void	sync_unlock(pthread_mutex_t *, const char *what);
void	sync_wait(pthread_cond_t *, pthread_mutex_t *, const char *what);
/* Wake one thread waiting on the condition, or all of them. */
void	sync_wake(pthread_cond_t *, bool all, const char *what);
/* Write a byte into a non-blocking wake-up pipe (a full pipe already holds
 * a wake-up). */
void	sync_poke(int fd, const char *what);

#endif
