/*
 * What amqp-drain and amqp-fill share: AMQP_CONNECTION parsed as the
 * original service parses it, connecting (TCP or TLS) and logging in, and
 * the original's topology (exchange, dead-letter exchange, quorum queues
 * and their dead-letter queues).
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

struct amq_url {
	bool	 tls;
	char	*host;
	int	 port;
	char	*user, *password, *vhost;
	int	 heartbeat;	/* seconds; 0 disables */
	char	*cafile, *certfile, *keyfile;
	bool	 verify;	/* check the server's certificate and name */
	char	*redacted;	/* the URL without its password, for messages */
};

/* Parse an amqp:// or amqps:// URL. Returns 0, or -1 with *err (the
 * message never contains the password). */
int	amq_url_parse(const char *, struct amq_url *, const char **err);
void	amq_url_free(struct amq_url *);
/* Parse AMQP_CONNECTION; exit 78 if it is unset or not such a URL. */
void	amq_url_from_env(struct amq_url *);

/* How a failure should end the process. */
enum amq_fail { AMQ_UNREACHABLE, AMQ_REFUSED, AMQ_LOST };

/* Connect and log in, with channel 1 open. NULL on failure, with the
 * reason in err and its kind in *fail (AMQ_REFUSED: credentials, vhost). */
amqp_connection_state_t amq_connect(const struct amq_url *, const char *name,
	    enum amq_fail *fail, char *err, size_t errsz);
/* amq_connect, or exit: 78 if the broker refuses us, 69 if it cannot be
 * reached or the connection fails. */
amqp_connection_state_t amq_connect_or_die(const struct amq_url *, const char *name);
/* Open another channel. */
int	amq_channel_open(amqp_connection_state_t, amqp_channel_t, char *err, size_t errsz);
/* Declare the topology on a channel, in the original's order: 0, or the exit
 * status the failure calls for (78: the broker refuses, e.g. a queue exists
 * with other arguments; 75: the connection went away). */
int	amq_declare_topology(amqp_connection_state_t, amqp_channel_t, char *err, size_t errsz);
/* Passive declare: the number of ready messages, or -1 (err set) if the
 * queue is missing (the channel is then closed) or the call failed. */
long	amq_queue_depth(amqp_connection_state_t, amqp_channel_t, const char *queue,
	    char *err, size_t errsz);
/* Queue name of a type index. */
void	amq_queue_name(int type, char *out, size_t outsz);
/* Describe a failed RPC reply. */
void	amq_reply_error(amqp_rpc_reply_t, const char *what, char *err, size_t errsz);
/* Close politely (channel 1 and the connection) and free. */
void	amq_close(amqp_connection_state_t);

#endif
