/*
 * What amqp-drain and amqp-fill share: AMQP_CONNECTION parsed as the
 * original service parses it (one URL, or several: the nodes of one
 * cluster), connecting (TCP or TLS) and logging in, and the original's
 * topology (exchange, dead-letter exchange, quorum queues and their
 * dead-letter queues).
 */
#ifndef TBL_AMQ_H
#define TBL_AMQ_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>

#define AMQ_EXCHANGE		"discogsography-exchange"
#define AMQ_DLX			"discogsography-exchange.dlx"
#define AMQ_QUEUE_PREFIX	"discogsography-tableinator-"
#define AMQ_DELIVERY_LIMIT	20
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

/* How a failure should end the process. */
enum amq_fail { AMQ_UNREACHABLE, AMQ_REFUSED, AMQ_LOST };

/* Connect and log in, with channel 1 open. NULL on failure, with the
 * reason in err and its kind in *fail (AMQ_REFUSED: credentials, vhost). */
amqp_connection_state_t amq_connect(const struct amq_url *, const char *name,
	    enum amq_fail *fail, char *err, size_t errsz);
/* amq_connect, or exit: 78 if the broker refuses us, 69 if it cannot be
 * reached or the connection fails. */
amqp_connection_state_t amq_connect_or_die(const struct amq_url *, const char *name);
/*
 * Connect to the first broker of the list that takes us, trying each once
 * from a random one on (so that several instances spread over a cluster),
 * each failure logged. *node is the index of the one connected. When none
 * takes us, *fail is AMQ_REFUSED if one of them refused us, and err says
 * why each failed.
 */
amqp_connection_state_t amq_connect_any(const struct amq_brokers *, const char *name,
	    size_t *node, enum amq_fail *fail, char *err, size_t errsz);
/* amq_connect_any, or exit as amq_connect_or_die does. */
amqp_connection_state_t amq_connect_any_or_die(const struct amq_brokers *, const char *name,
	    size_t *node);
/* Open another channel. */
int	amq_channel_open(amqp_connection_state_t, amqp_channel_t, char *err, size_t errsz);
/* Declare the topology on a channel, in the original's order: 0, or the exit
 * status the failure calls for (78: the broker refuses, e.g. a queue exists
 * with other arguments; 75: the connection went away). */
int	amq_declare_topology(amqp_connection_state_t, amqp_channel_t, char *err, size_t errsz);
/*
 * The same, with the dead-letter queues on a channel of their own, dlq_ch
 * (opened here and left open): a classic queue lives on the node that
 * declared it, and while that node is down the broker refuses its
 * declaration (404) although the rest of the topology is fine. Such a
 * queue is logged and its type's bit set in *dlq_down, and the rest goes
 * on.
 */
int	amq_declare(amqp_connection_state_t, amqp_channel_t ch, amqp_channel_t dlq_ch,
	    unsigned *dlq_down, char *err, size_t errsz);
/* Is the dead-letter queue of a type reachable now (a passive declare on
 * channel ch, which is opened again if the broker closed it)? 1 yes, 0 its
 * node is down, -1 (err set) the call failed otherwise. */
int	amq_dlq_reachable(amqp_connection_state_t, amqp_channel_t ch, int type, char *err,
	    size_t errsz);
/* Passive declare: the number of ready messages, or -1 (err set) if the
 * queue is missing (the channel is then closed) or the call failed. */
long	amq_queue_depth(amqp_connection_state_t, amqp_channel_t, const char *queue,
	    char *err, size_t errsz);
/* Queue name of a type index, and of its dead-letter queue. */
void	amq_queue_name(int type, char *out, size_t outsz);
void	amq_dlq_name(int type, char *out, size_t outsz);
/* Describe a failed RPC reply. */
void	amq_reply_error(amqp_rpc_reply_t, const char *what, char *err, size_t errsz);
/* Close politely (channel 1 and the connection) and free. */
void	amq_close(amqp_connection_state_t);

#endif
