#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <microhttpd.h>

#include "buf.h"
#include "http.h"
#include "log.h"
#include "report.h"
#include "util.h"

#define MAX_LOGGED	200	/* bytes of method and path in a debug line */
#define MAX_HEAD	8192	/* bytes of request line and header fields */

/* A client's address without its port: what the per-address limit counts. */
struct peer {
	sa_family_t	 family;
	unsigned char	 addr[16];
};

/*
 * A connection as the deadline keeper sees it. libmicrohttpd calls the
 * connection notifier with "closed" before it closes the socket, and the
 * entry leaves the list under the lock then, so a socket shut down under
 * the lock is always this connection's and never a reused descriptor.
 */
struct conn {
	struct conn	*prev, *next;
	int		 fd;
	struct peer	 peer;
	double		 since;		/* accepted, or last response done (monotonic) */
	bool		 busy;		/* a request arrived and is being answered */
	bool		 cut;		/* shut down; libmicrohttpd closes it next */
};

struct http {
	struct MHD_Daemon *d;
	struct http_cfg	 cfg;
	pthread_mutex_t	 lock;
	struct conn	*conns;		/* newest first */
	struct conn	*oldest;	/* the last of conns */
	unsigned int	 live;		/* connections in conns not cut */
	unsigned long	 displaced;	/* cut to make room, since the last sweep */
	unsigned long	 refused;	/* cut at once: every slot of the address busy */
	atomic_bool	 running;	/* libmicrohttpd's thread serves */
};

static const char json_type[] = "application/json";
static const char metrics_type[] = "text/plain; version=0.0.4; charset=utf-8";

static void
lock(struct http *h)
{
	int e;

	if ((e = pthread_mutex_lock(&h->lock)) != 0)
		die(EXIT_SOFTWARE, "pthread_mutex_lock: %s", strerror(e));
}

static void
unlock(struct http *h)
{
	int e;

	if ((e = pthread_mutex_unlock(&h->lock)) != 0)
		die(EXIT_SOFTWARE, "pthread_mutex_unlock: %s", strerror(e));
}

/* libmicrohttpd's own messages: errors while starting, debug once serving
 * (they are about single connections, and a client can cause them at will). */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	enum log_level level = atomic_load(&h->running) ? LOG_DEBUG : LOG_ERROR;
	char *msg;
	size_t n;

	if (!log_enabled(level) || vasprintf(&msg, fmt, ap) < 0)
		return;
	for (n = strlen(msg); n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'); n--)
		msg[n - 1] = '\0';
	log_msg(level, "libmicrohttpd: %s", msg);
	free(msg);
}

static void
peer_of(const struct sockaddr *sa, struct peer *p)
{
	memset(p, 0, sizeof(*p));
	if (sa == NULL)
		return;
	p->family = sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(p->addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(p->addr, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
}

/* Shut a connection down (with the lock held); libmicrohttpd sees the end
 * of the stream on its next turn and closes it. */
static void
cut(struct http *h, struct conn *k)
{
	(void)shutdown(k->fd, SHUT_RDWR);
	k->cut = true;
	h->live--;
}

/*
 * Make room for the new connection k (with the lock held). libmicrohttpd's
 * own limits refuse the newest connection, so whoever holds every slot
 * (or every slot of an address) with connections that never send a
 * request keeps everyone else out until the timeout. Here the newcomer
 * displaces instead the oldest connection that has not sent a whole
 * request head: a client that sends its request at once is served, while
 * a flood can only push out its own connections. One slot is kept free
 * for the next client, as libmicrohttpd stops accepting when all are taken.
 * A connection being answered is never displaced.
 */
static void
make_room(struct http *h, struct conn *k)
{
	struct conn *o, *same = NULL, *any = NULL;
	unsigned int nsame = 0;

	for (o = h->oldest; o != NULL; o = o->prev) {
		if (o == k || o->cut)
			continue;
		if (memcmp(&o->peer, &k->peer, sizeof(k->peer)) == 0) {
			nsame++;
			if (!o->busy && same == NULL)
				same = o;
		}
		if (!o->busy && any == NULL)
			any = o;
	}
	if (h->cfg.max_per_ip > 0 && nsame >= h->cfg.max_per_ip) {
		if (same != NULL) {
			cut(h, same);
			h->displaced++;
		} else {
			cut(h, k);
			h->refused++;
		}
	} else if (h->live >= h->cfg.max_conns && any != NULL) {
		cut(h, any);
		h->displaced++;
	}
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct http *h = cls;
	const union MHD_ConnectionInfo *ci, *ca;
	struct conn *k;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		/* Untracked when this fails: only libmicrohttpd's limits apply. */
		if ((ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD)) == NULL)
			return;
		if ((k = calloc(1, sizeof(*k))) == NULL) {
			/* Refused: untracked, it would escape the limits and the deadline. */
			(void)shutdown(ci->connect_fd, SHUT_RDWR);
			return;
		}
		k->fd = ci->connect_fd;
		ca = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		peer_of(ca != NULL ? ca->client_addr : NULL, &k->peer);
		k->since = now_mono();
		lock(h);
		if ((k->next = h->conns) != NULL)
			k->next->prev = k;
		else
			h->oldest = k;
		h->conns = k;
		h->live++;
		make_room(h, k);
		unlock(h);
		*socket_context = k;
		return;
	}
	if ((k = *socket_context) == NULL)
		return;
	lock(h);
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		h->conns = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	else
		h->oldest = k->prev;
	if (!k->cut)
		h->live--;
	unlock(h);
	free(k);
	*socket_context = NULL;
}

/* A request arrived whole (busy), or its response is done and the
 * connection waits for the next one within the timeout. */
static void
set_busy(struct http *h, struct MHD_Connection *c, bool busy)
{
	const union MHD_ConnectionInfo *ci;
	struct conn *k;

	if ((ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) == NULL ||
	    (k = ci->socket_context) == NULL)
		return;
	lock(h);
	k->busy = busy;
	k->since = now_mono();
	unlock(h);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	set_busy(cls, c, false);
	*req_cls = NULL;
}

/* Paths are compared as sent: no percent-decoding, so "%00" stays three bytes. */
static size_t
keep_escapes(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned int status, const char *type,
    const struct buf *body, const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if ((r = MHD_create_response_from_buffer(body->len, body->p, MHD_RESPMEM_MUST_COPY)) == NULL)
		return MHD_NO;
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) == MHD_NO ||
	    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_NO ||
	    (allow != NULL && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow) == MHD_NO)) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* Add the bytes a query argument took in the request line ("k=v&"). */
static enum MHD_Result
add_argument(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	size_t *n = cls;

	(void)kind;
	*n += strlen(key) + (value != NULL ? strlen(value) + 1 : 0) + 1;
	return MHD_YES;
}

/*
 * Refuse a request head (request line and header fields) over MAX_HEAD
 * bytes: 414 when the request line alone is longer, else 431.
 * libmicrohttpd itself refuses a head that does not fit in the connection's
 * memory (twice as much) with the same statuses.
 */
static unsigned int
head_too_large(struct MHD_Connection *c, const char *url, const char *method,
    const char *version)
{
	const union MHD_ConnectionInfo *ci;
	size_t line;

	if ((ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE)) == NULL)
		return MHD_HTTP_BAD_REQUEST;
	if (ci->header_size <= MAX_HEAD)
		return 0;
	line = strlen(method) + strlen(url) + strlen(version) + 4;
	if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_argument, &line) < 0)
		return MHD_HTTP_BAD_REQUEST;
	return line > MAX_HEAD ? MHD_HTTP_URI_TOO_LONG : MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
}

/*
 * Every request is answered as soon as its head has arrived, and a body is
 * never read: libmicrohttpd then closes the connection after the response,
 * so each connection carries one request.
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	static int answered;
	struct http *h = cls;
	struct buf body = { 0 };
	enum MHD_Result ret;
	struct logrec *lr;
	const char *type = json_type, *allow = NULL;
	unsigned int status;
	bool health = strcmp(url, "/health") == 0, metrics = strcmp(url, "/metrics") == 0;

	(void)upload_data;
	if (*req_cls != NULL) {
		/* Body bytes of a request already answered: drop them. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	*req_cls = &answered;
	set_busy(h, c, true);
	if ((status = head_too_large(c, url, method, version)) != 0)
		buf_adds(&body, "{\"error\":\"request head too large\"}\n");
	else if (!health && !metrics) {
		status = MHD_HTTP_NOT_FOUND;
		buf_adds(&body, "{\"error\":\"not found\"}\n");
	} else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		allow = "GET, HEAD";
		buf_adds(&body, "{\"error\":\"method not allowed\"}\n");
	} else if (health)
		status = report_health(h->cfg.report, &body);
	else {
		status = MHD_HTTP_OK;
		type = metrics_type;
		report_metrics(h->cfg.report, &body);
	}
	ret = respond(c, status, type, &body, allow);
	buf_free(&body);
	if ((lr = log_begin(LOG_DEBUG, "Request")) != NULL) {
		log_strn(lr, "method", method, strnlen(method, MAX_LOGGED));
		log_strn(lr, "path", url, strnlen(url, MAX_LOGGED));
		log_int(lr, "status", status);
		log_bool(lr, "queued", ret == MHD_YES);
		log_end(lr);
	}
	return ret;
}

struct http *
http_start(const struct http_cfg *cfg)
{
	struct http *h = xcalloc(1, sizeof(*h));
	int e;

	h->cfg = *cfg;
	if ((e = pthread_mutex_init(&h->lock, NULL)) != 0)
		die(EXIT_SOFTWARE, "pthread_mutex_init: %s", strerror(e));
	atomic_init(&h->running, false);
	/*
	 * poll, not epoll: with 0.9.75's edge-triggered epoll, a client that
	 * sends part of a request and then shuts down its side is often not
	 * noticed until the timeout; poll sees the end of the stream at once.
	 */
	h->d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0,
	    NULL, NULL, on_request, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)cfg->listen_fd,
	    MHD_OPTION_CONNECTION_LIMIT, cfg->max_conns,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory,
	    MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	    MHD_OPTION_UNESCAPE_CALLBACK, keep_escapes, h,
	    MHD_OPTION_END);
	if (h->d == NULL) {
		(void)pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	atomic_store(&h->running, true);
	return h;
}

void
http_sweep(struct http *h)
{
	double now = now_mono();
	struct conn *k;
	unsigned long displaced, refused;
	unsigned int n = 0;

	lock(h);
	for (k = h->conns; k != NULL; k = k->next)
		if (!k->busy && !k->cut && now - k->since > h->cfg.timeout) {
			cut(h, k);
			n++;
		}
	displaced = h->displaced;
	refused = h->refused;
	h->displaced = h->refused = 0;
	unlock(h);
	if (n > 0)
		log_msg(LOG_DEBUG, "Dropped %u connection(s) without a whole request in %u s",
		    n, h->cfg.timeout);
	if (displaced > 0)
		log_msg(LOG_DEBUG, "Dropped %lu connection(s) without a request to make room "
		    "for newer ones", displaced);
	if (refused > 0)
		log_msg(LOG_DEBUG, "Refused %lu connection(s) from an address whose every "
		    "connection was being answered", refused);
}

void
http_stop(struct http *h)
{
	int e;

	atomic_store(&h->running, false);
	MHD_stop_daemon(h->d);
	if ((e = pthread_mutex_destroy(&h->lock)) != 0)
		die(EXIT_SOFTWARE, "pthread_mutex_destroy: %s", strerror(e));
	free(h);
}
