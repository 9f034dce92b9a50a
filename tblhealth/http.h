/*
 * The HTTP side of tblhealth, on libmicrohttpd: one internal polling
 * thread, bounded connections, and a deadline for each request besides
 * libmicrohttpd's idle timeout, so that a client sending one byte a second
 * is dropped too.
 */
#ifndef TBL_HTTP_H
#define TBL_HTTP_H

#include <stddef.h>

struct report_cfg;

struct http_cfg {
	int		 listen_fd;	/* bound and listening; closed by http_stop */
	unsigned int	 max_conns;	/* connections served at once */
	unsigned int	 max_per_ip;	/* of them from one address; 0 for no limit */
	unsigned int	 timeout;	/* seconds to send a whole request, or to stay idle */
	size_t		 conn_memory;	/* bytes per connection: request head and response head */
	const struct report_cfg *report;
};

struct http;

/* Start serving; NULL (with the reason logged) when libmicrohttpd refuses. */
struct http *http_start(const struct http_cfg *);
/* Drop the connections that are past their deadline; call a few times a second. */
void	http_sweep(struct http *);
void	http_stop(struct http *);

#endif
