/*
 * AMQP_CONNECTION parsed as the original service parses it: one amqp:// or
 * amqps:// URL, or several separated by ',' or ';' (the nodes of one
 * cluster). Parsing only; lib/amq.h connects.
 */
#ifndef TBL_AMQURL_H
#define TBL_AMQURL_H

#include <stdbool.h>
#include <stddef.h>

#define AMQ_MAX_BROKERS		16

struct amq_url {
	bool	 tls;
	char	*host;
	int	 port;
	char	*user, *password, *vhost;
	int	 heartbeat;	/* seconds; 0 disables */
	char	*cafile, *certfile, *keyfile;
	bool	 verify;	/* check the server's certificate and name */
	char	*redacted;	/* the URL without its password, for messages */
	char	*node;		/* host:port ([v6]:port), for logs, state and metrics */
};

/* AMQP_CONNECTION: the nodes of one cluster, in the order given. */
struct amq_brokers {
	struct amq_url	*url;
	size_t		 n;
};

/* Parse an amqp:// or amqps:// URL. Returns 0, or -1 with *err (the
 * message never contains the password). */
int	amq_url_parse(const char *, struct amq_url *, const char **err);
void	amq_url_free(struct amq_url *);
/* Parse AMQP_CONNECTION; exit 78 if it is unset or not such a URL. */
void	amq_url_from_env(struct amq_url *);
/*
 * Parse a list of URLs separated by ',' or ';' (a separator counts only
 * when amqp:// or amqps:// follows it, after blanks). After the first, a
 * URL without user:password@, without a path or without a query takes the
 * first one's credentials, vhost or query parameters. All must use one
 * scheme and name one vhost. Returns 0, or -1 with *err (never holding a
 * password); *err stays valid until the next call.
 */
int	amq_brokers_parse(const char *, struct amq_brokers *, const char **err);
void	amq_brokers_free(struct amq_brokers *);
/* Parse AMQP_CONNECTION as a list; exit 78 if it is unset or malformed. */
void	amq_brokers_from_env(struct amq_brokers *);

#endif
