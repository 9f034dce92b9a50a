#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amq.h"
#include "buf.h"
#include "envelope.h"
#include "log.h"
#include "num.h"
#include "util.h"

/* Percent-decode n bytes; keep_slash leaves %2F encoded. NULL if malformed. */
static char *
pct_decode(const char *s, size_t n, bool keep_slash)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		if (s[i] != '%') {
			*o++ = s[i];
			continue;
		}
		if (i + 2 >= n || (hi = hex_digit(s[i + 1])) < 0 ||
		    (lo = hex_digit(s[i + 2])) < 0) {
			free(out);
			return NULL;
		}
		if (keep_slash && hi == 2 && lo == 15) {
			memcpy(o, "%2F", 3);
			o += 3;
		} else
			*o++ = (char)(hi << 4 | lo);
		i += 2;
	}
	*o = '\0';
	return out;
}

/*
 * The vhost as aiormq derives it: an empty path or "/" is "/"; otherwise
 * the leading "/" is dropped and every %2F becomes "/" (other escapes are
 * decoded as usual). So /%2F and // are "/", /discogsography is
 * "discogsography" and /a%2Fb is "a/b".
 */
static char *
vhost_of(const char *path, size_t n)
{
	struct buf b = { 0 };
	char *d, *p;

	if (n == 0 || (n == 1 && path[0] == '/'))
		return xstrdup("/");
	if ((d = pct_decode(path + 1, n - 1, true)) == NULL)
		return NULL;
	for (p = d; *p; p++) {
		if (strncmp(p, "%2F", 3) == 0) {
			buf_addc(&b, '/');
			p += 2;
		} else
			buf_addc(&b, *p);
	}
	free(d);
	if (b.p == NULL)
		return xstrdup("");
	return b.p;
}

static int
query_param(struct amq_url *u, const char *k, size_t kn, const char *v, size_t vn,
    const char **err)
{
	char *val = pct_decode(v, vn, false);
	const char *why;
	long long n;

	if (val == NULL) {
		*err = "AMQP_CONNECTION: bad %-escape in a query parameter";
		return -1;
	}
#define KEY(s) (kn == strlen(s) && strncmp(k, s, kn) == 0)
	if (KEY("heartbeat")) {
		if (parse_ll(val, 0, 65535, &n, &why) < 0) {
			free(val);
			*err = "AMQP_CONNECTION: heartbeat must be an integer from 0 to 65535";
			return -1;
		}
		u->heartbeat = (int)n;
		free(val);
	} else if (KEY("cafile")) {
		free(u->cafile);
		u->cafile = val;
	} else if (KEY("certfile")) {
		free(u->certfile);
		u->certfile = val;
	} else if (KEY("keyfile")) {
		free(u->keyfile);
		u->keyfile = val;
	} else if (KEY("no_verify_ssl")) {
		u->verify = !(strcmp(val, "1") == 0 || strcasecmp(val, "true") == 0);
		free(val);
	} else
		free(val);	/* aiormq's other parameters do not apply here */
#undef KEY
	return 0;
}

/* The names a URL goes by in messages, state files and metrics: the URL
 * without its password, and host:port. */
static void
set_names(struct amq_url *u)
{
	struct buf b = { 0 };

	buf_printf(&b, strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, u->port);
	free(u->node);
	u->node = b.p;
	b.p = NULL;
	b.len = b.cap = 0;
	buf_printf(&b, "%s://%s@%s/", u->tls ? "amqps" : "amqp", u->user, u->node);
	buf_adds(&b, u->vhost);
	free(u->redacted);
	u->redacted = b.p;
}

int
amq_url_parse(const char *url, struct amq_url *u, const char **err)
{
	const char *p, *auth_end, *at, *hostp, *hend, *colon, *path, *query, *q, *amp, *eq;
	const char *why;
	long long port;

	memset(u, 0, sizeof(*u));
	u->heartbeat = 60;
	u->verify = true;
	if (strncmp(url, "amqp://", 7) == 0) {
		p = url + 7;
	} else if (strncmp(url, "amqps://", 8) == 0) {
		p = url + 8;
		u->tls = true;
	} else {
		*err = "AMQP_CONNECTION: want amqp://user:password@host:port/vhost or amqps://…";
		return -1;
	}
	auth_end = p + strcspn(p, "/?");
	path = auth_end;
	query = path + strcspn(path, "?");
	/*
	 * The authority ends at the first '/' or '?', so a password holding
	 * one of them unescaped ("u:12345/secret@h") leaves part of itself and
	 * the real host in the path or the query, where a message would show
	 * it. A vhost or a file with a real '@' writes it %40.
	 */
	if (strchr(auth_end, '@') != NULL) {
		*err = "AMQP_CONNECTION: '@' after the host: write a '/', '?' or '#' in the "
		    "password as %2F, %3F, %23 (and an '@' in the vhost or a query as %40)";
		return -1;
	}
	/* userinfo is everything up to the last '@' of the authority */
	at = NULL;
	for (q = p; q < auth_end; q++)
		if (*q == '@')
			at = q;
	hostp = at ? at + 1 : p;
	if (at != NULL) {
		colon = memchr(p, ':', (size_t)(at - p));
		u->user = pct_decode(p, (size_t)((colon ? colon : at) - p), false);
		u->password = colon ? pct_decode(colon + 1, (size_t)(at - colon - 1), false) : NULL;
		if (u->user == NULL || (colon && u->password == NULL)) {
			*err = "AMQP_CONNECTION: bad %-escape in the user or password";
			goto fail;
		}
	}
	if (u->user == NULL || u->user[0] == '\0') {
		free(u->user);
		u->user = xstrdup("guest");
	}
	if (u->password == NULL || u->password[0] == '\0') {
		free(u->password);
		u->password = xstrdup("guest");
	}
	if (*hostp == '[') {
		if ((hend = memchr(hostp, ']', (size_t)(auth_end - hostp))) == NULL) {
			*err = "AMQP_CONNECTION: missing ']' after an IPv6 address";
			goto fail;
		}
		u->host = xstrndup(hostp + 1, (size_t)(hend - hostp - 1));
		colon = hend + 1 < auth_end && hend[1] == ':' ? hend + 1 : NULL;
		if (hend + 1 < auth_end && colon == NULL) {
			*err = "AMQP_CONNECTION: unexpected text after the IPv6 address";
			goto fail;
		}
	} else {
		colon = memchr(hostp, ':', (size_t)(auth_end - hostp));
		/* A bad escape is no host: not localhost, where the credentials
		 * would go instead. */
		if ((u->host = pct_decode(hostp, (size_t)((colon ? colon : auth_end) - hostp),
		    false)) == NULL) {
			*err = "AMQP_CONNECTION: bad %-escape in the host";
			goto fail;
		}
	}
	if (u->host[0] == '\0') {
		free(u->host);
		u->host = xstrdup("localhost");
	}
	u->port = u->tls ? 5671 : 5672;
	if (colon != NULL) {
		char *ps = xstrndup(colon + 1, (size_t)(auth_end - colon - 1));
		int bad = parse_ll(ps, 1, 65535, &port, &why) < 0;

		free(ps);
		if (bad) {
			*err = "AMQP_CONNECTION: the port must be a number from 1 to 65535";
			goto fail;
		}
		u->port = (int)port;
	}
	if ((u->vhost = vhost_of(path, (size_t)(query - path))) == NULL) {
		*err = "AMQP_CONNECTION: bad %-escape in the vhost";
		goto fail;
	}
	for (q = *query == '?' ? query + 1 : query; *q; q = *amp ? amp + 1 : amp) {
		amp = q + strcspn(q, "&");
		eq = memchr(q, '=', (size_t)(amp - q));
		if (eq != NULL && query_param(u, q, (size_t)(eq - q), eq + 1,
		    (size_t)(amp - eq - 1), err) < 0)
			goto fail;
	}
	if (!u->tls && (u->cafile || u->certfile || u->keyfile)) {
		*err = "AMQP_CONNECTION: cafile, certfile and keyfile need amqps://";
		goto fail;
	}
	set_names(u);
	return 0;
fail:
	amq_url_free(u);
	return -1;
}

void
amq_url_from_env(struct amq_url *u)
{
	const char *err;
	char *url;
	int rc;

	if ((url = env_secret("AMQP_CONNECTION", "AMQP_CONNECTION_FILE")) == NULL || *url == '\0')
		die(EXIT_CONFIG, "AMQP_CONNECTION (or AMQP_CONNECTION_FILE) is not set "
		    "(want amqp://user:password@host:port/vhost)");
	rc = amq_url_parse(url, u, &err);
	secret_free(url);
	if (rc < 0)
		die(EXIT_CONFIG, "%s", err);
}

void
amq_url_free(struct amq_url *u)
{
	free(u->host);
	free(u->user);
	if (u->password != NULL)
		explicit_bzero(u->password, strlen(u->password));
	free(u->password);
	free(u->vhost);
	free(u->cafile);
	free(u->certfile);
	free(u->keyfile);
	free(u->redacted);
	free(u->node);
	memset(u, 0, sizeof(*u));
}

static bool
is_scheme(const char *p)
{
	return strncmp(p, "amqp://", 7) == 0 || strncmp(p, "amqps://", 8) == 0;
}

/*
 * Where the list member at p ends: at the first ',' or ';' that blanks and
 * a scheme follow (*next then points at the scheme), else at the end of
 * the text (*next NULL). A password or a query may hold ',' and ';', but
 * not one followed by "amqp://".
 */
static const char *
member_end(const char *p, const char **next)
{
	const char *q, *r;

	for (q = p; *q; q++) {
		if (*q != ',' && *q != ';')
			continue;
		for (r = q + 1; *r == ' ' || *r == '\t'; r++)
			;
		if (is_scheme(r)) {
			*next = r;
			return q;
		}
	}
	*next = NULL;
	return q;
}

/* Replace *dst with a copy of src. */
static void
copy_str(char **dst, const char *src)
{
	if (*dst != NULL && *dst != src)
		explicit_bzero(*dst, strlen(*dst));
	free(*dst);
	*dst = src != NULL ? xstrdup(src) : NULL;
}

/*
 * A URL after the first takes what it leaves out from the first: the
 * credentials without user:password@, the vhost without a path, the query
 * parameters (heartbeat, TLS files, verification) without a query.
 */
static void
inherit(struct amq_url *u, const char *text, const struct amq_url *first)
{
	const char *auth = text + (u->tls ? 8 : 7), *auth_end = auth + strcspn(auth, "/?");

	if (memchr(auth, '@', (size_t)(auth_end - auth)) == NULL) {
		copy_str(&u->user, first->user);
		copy_str(&u->password, first->password);
	}
	if (*auth_end != '/')
		copy_str(&u->vhost, first->vhost);
	if (strchr(auth_end, '?') == NULL) {
		u->heartbeat = first->heartbeat;
		u->verify = first->verify;
		copy_str(&u->cafile, first->cafile);
		copy_str(&u->certfile, first->certfile);
		copy_str(&u->keyfile, first->keyfile);
	}
	set_names(u);
}

int
amq_brokers_parse(const char *text, struct amq_brokers *b, const char **err)
{
	static char msg[256];
	struct amq_url *u;
	const char *p, *end, *next, *why;
	char *one;
	size_t n, len;
	int rc;

	memset(b, 0, sizeof(*b));
	b->url = xcalloc(AMQ_MAX_BROKERS, sizeof(*b->url));
	for (p = text, n = 0; p != NULL; p = next, n++) {
		end = member_end(p, &next);
		if (n == AMQ_MAX_BROKERS) {
			snprintf(msg, sizeof(msg), "AMQP_CONNECTION: more than %d URLs",
			    AMQ_MAX_BROKERS);
			*err = msg;
			goto fail;
		}
		/* One URL is taken as it is; in a list, blanks around a URL go. */
		len = (size_t)(end - p);
		while ((next != NULL || n > 0) && len > 0 &&
		    (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		one = xstrndup(p, len);
		u = &b->url[n];
		rc = amq_url_parse(one, u, &why);
		if (rc == 0 && n > 0)
			inherit(u, one, &b->url[0]);
		explicit_bzero(one, len);
		free(one);
		b->n = rc == 0 ? n + 1 : n;
		if (rc < 0) {
			if (next == NULL && n == 0) {
				*err = why;
				goto fail;
			}
			snprintf(msg, sizeof(msg), "AMQP_CONNECTION: URL %zu: %s", n + 1,
			    why + strlen("AMQP_CONNECTION: "));
			*err = msg;
			goto fail;
		}
		if (n > 0 && u->tls != b->url[0].tls) {
			snprintf(msg, sizeof(msg), "AMQP_CONNECTION: URL %zu: every URL must be "
			    "amqp:// or every one amqps:// (a failover must not drop TLS)", n + 1);
			*err = msg;
			goto fail;
		}
		if (n > 0 && strcmp(u->vhost, b->url[0].vhost) != 0) {
			snprintf(msg, sizeof(msg), "AMQP_CONNECTION: URL %zu: another vhost than "
			    "the first URL's (the URLs are nodes of one cluster)", n + 1);
			*err = msg;
			goto fail;
		}
	}
	return 0;
fail:
	amq_brokers_free(b);
	return -1;
}

void
amq_brokers_free(struct amq_brokers *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		amq_url_free(&b->url[i]);
	free(b->url);
	memset(b, 0, sizeof(*b));
}

void
amq_brokers_from_env(struct amq_brokers *b)
{
	const char *err;
	char *text;
	int rc;

	if ((text = env_secret("AMQP_CONNECTION", "AMQP_CONNECTION_FILE")) == NULL ||
	    *text == '\0')
		die(EXIT_CONFIG, "AMQP_CONNECTION (or AMQP_CONNECTION_FILE) is not set "
		    "(want amqp://user:password@host:port/vhost, or several separated by commas)");
	rc = amq_brokers_parse(text, b, &err);
	secret_free(text);
	if (rc < 0)
		die(EXIT_CONFIG, "%s", err);
}

/* The reply code of a channel or connection close in a failed reply, else 0. */
static unsigned
reply_code(amqp_rpc_reply_t r)
{
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION)
		return 0;
	if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
		return ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
	if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
		return ((amqp_connection_close_t *)r.reply.decoded)->reply_code;
	return 0;
}

void
amq_reply_error(amqp_rpc_reply_t r, const char *what, char *err, size_t errsz)
{
	amqp_connection_close_t *cc;
	amqp_channel_close_t *ch;

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(err, errsz, "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(err, errsz, "%s: missing RPC reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(err, errsz, "%s: %s", what, amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			cc = r.reply.decoded;
			snprintf(err, errsz, "%s: connection closed by the broker: %u %.*s", what,
			    cc->reply_code, (int)cc->reply_text.len, (char *)cc->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			ch = r.reply.decoded;
			snprintf(err, errsz, "%s: channel closed by the broker: %u %.*s", what,
			    ch->reply_code, (int)ch->reply_text.len, (char *)ch->reply_text.bytes);
		} else
			snprintf(err, errsz, "%s: unexpected broker method 0x%08x", what, r.reply.id);
		break;
	}
}

static amqp_table_entry_t
entry_str(const char *k, const char *v)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(k);
	e.value.kind = AMQP_FIELD_KIND_UTF8;
	e.value.value.bytes = amqp_cstring_bytes(v);
	return e;
}

static amqp_table_entry_t
entry_bool(const char *k, int v)
{
	amqp_table_entry_t e;

	e.key = amqp_cstring_bytes(k);
	e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
	e.value.value.boolean = v;
	return e;
}

/*
 * What the TLS handshake showed of the broker's wishes. Static: the SSL
 * object keeps the callback for the life of the connection (a TLS 1.2
 * renegotiation would call it again), after amq_connect has returned.
 */
static struct tls_seen {
	bool	 asked;		/* it asked for a client certificate */
	bool	 sent;		/* and we had one to send */
} seen;

/* OpenSSL calls this when the broker asks for a client certificate. */
static int
on_cert_request(SSL *ssl, void *arg)
{
	(void)arg;
	seen.asked = true;
	seen.sent = SSL_get_certificate(ssl) != NULL;
	return 1;
}

/*
 * rabbitmq-c says only "a SSL error occurred", and with TLS 1.3 says it at
 * login: the broker checks the client's certificate after the client is
 * done with the handshake, and answers with an alert. Append why: OpenSSL's
 * reason when its queue holds one (the alert, if it was read before the
 * broker's close reset the connection), and what the broker asked for. True
 * when the broker's TLS refused ours (an alert: no client certificate, one
 * of an authority it does not trust, no common protocol version), which no
 * retry changes.
 */
static bool
tls_failure(bool no_amqp_yet, char *err, size_t errsz)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	bool refused = false;
	size_t n = strlen(err);

	if (r != NULL) {
		snprintf(err + n, errsz - n, ": %s", r);
		refused = strstr(r, "alert") != NULL || strstr(r, "certificate") != NULL ||
		    strstr(r, "protocol") != NULL || strstr(r, "wrong version number") != NULL;
	}
	/* The broker asked for a certificate and dropped the connection before
	 * a word of AMQP, with no reason we could read or one about the
	 * certificate: it did not take what we sent. */
	if (seen.asked && no_amqp_yet && (r == NULL || strstr(r, "certificate") != NULL ||
	    strstr(r, "unknown ca") != NULL)) {
		n = strlen(err);
		snprintf(err + n, errsz - n, seen.sent ?
		    " (the broker does not take our client certificate)" :
		    " (the broker wants a client certificate: certfile= and keyfile=)");
		refused = true;
	}
	return refused;
}

amqp_connection_state_t
amq_connect(const struct amq_url *u, const char *name, enum amq_fail *fail, char *err,
    size_t errsz)
{
	amqp_connection_state_t c;
	amqp_socket_t *s;
	amqp_rpc_reply_t r;
	struct timeval tv = { 10, 0 };
	amqp_table_entry_t caps[4], props[4];
	amqp_table_t capt, propt;
	int rc;

	*fail = AMQ_UNREACHABLE;
	seen.asked = seen.sent = false;
	if ((c = amqp_new_connection()) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s = u->tls ? amqp_ssl_socket_new(c) : amqp_tcp_socket_new(c);
	if (s == NULL) {
		snprintf(err, errsz, "cannot create a %s socket", u->tls ? "TLS" : "TCP");
		goto fail;
	}
	if (u->tls) {
		SSL_CTX *ctx = amqp_ssl_socket_get_context(s);
		struct in6_addr a6;
		struct in_addr a4;
		bool ip = inet_pton(AF_INET, u->host, &a4) == 1 || inet_pton(AF_INET6, u->host, &a6) == 1;

		SSL_CTX_set_cert_cb(ctx, on_cert_request, NULL);
		amqp_ssl_socket_set_verify_peer(s, u->verify);
		/* rabbitmq-c matches DNS names only; OpenSSL checks an IP address
		 * against the certificate's IP entries during the handshake. */
		amqp_ssl_socket_set_verify_hostname(s, u->verify && !ip);
		if (u->verify && ip &&
		    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx), u->host) != 1) {
			snprintf(err, errsz, "cannot check the certificate of %s", u->host);
			goto fail;
		}
		if (!u->cafile && SSL_CTX_set_default_verify_paths(ctx) != 1) {
			snprintf(err, errsz, "cannot load the system's certificate authorities");
			goto fail;
		}
		if (u->cafile && amqp_ssl_socket_set_cacert(s, u->cafile) != AMQP_STATUS_OK) {
			snprintf(err, errsz, "AMQP_CONNECTION: cannot read cafile %s", u->cafile);
			*fail = AMQ_REFUSED;
			goto fail;
		}
		if (u->certfile && amqp_ssl_socket_set_key(s, u->certfile,
		    u->keyfile ? u->keyfile : u->certfile) != AMQP_STATUS_OK) {
			snprintf(err, errsz, "AMQP_CONNECTION: cannot read certfile/keyfile");
			*fail = AMQ_REFUSED;
			goto fail;
		}
	}
	ERR_clear_error();
	if ((rc = amqp_socket_open_noblock(s, u->host, u->port, &tv)) != AMQP_STATUS_OK) {
		snprintf(err, errsz, "cannot connect to %s: %s", u->redacted, amqp_error_string2(rc));
		if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED ||
		    rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED ||
		    (rc == AMQP_STATUS_SSL_CONNECTION_FAILED && tls_failure(true, err, errsz)))
			*fail = AMQ_REFUSED;
		goto fail;
	}
	caps[0] = entry_bool("consumer_cancel_notify", 1);
	caps[1] = entry_bool("publisher_confirms", 1);
	caps[2] = entry_bool("basic.nack", 1);
	caps[3] = entry_bool("authentication_failure_close", 1);
	capt.num_entries = 4;
	capt.entries = caps;
	props[0] = entry_str("product", "tableinator");
	props[1] = entry_str("version", TBL_VERSION);
	props[2] = entry_str("connection_name", name);
	props[3].key = amqp_cstring_bytes("capabilities");
	props[3].value.kind = AMQP_FIELD_KIND_TABLE;
	props[3].value.value.table = capt;
	propt.num_entries = 4;
	propt.entries = props;
	r = amqp_login_with_properties(c, u->vhost, 0, 131072, u->heartbeat, &propt,
	    AMQP_SASL_METHOD_PLAIN, u->user, u->password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amq_reply_error(r, "login", err, errsz);
		/* A broker that answers and closes refuses us: credentials or vhost.
		 * Unless it says it is going down (320 CONNECTION_FORCED, a node
		 * that stops) or is not well (541 INTERNAL_ERROR, a vhost not yet
		 * up on a node that just started): another node, or a later try,
		 * can take us. */
		if ((r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		    reply_code(r) != AMQP_CONNECTION_FORCED && reply_code(r) != AMQP_INTERNAL_ERROR) ||
		    (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_CONNECTION_CLOSED) ||
		    (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_SSL_ERROR &&
		    tls_failure(amqp_get_server_properties(c)->num_entries == 0, err, errsz)))
			*fail = AMQ_REFUSED;
		goto fail;
	}
	if (amq_channel_open(c, 1, err, errsz) < 0) {
		*fail = AMQ_LOST;
		goto fail;
	}
	return c;
fail:
	amqp_destroy_connection(c);
	return NULL;
}

amqp_connection_state_t
amq_connect_or_die(const struct amq_url *u, const char *name)
{
	amqp_connection_state_t c;
	enum amq_fail fail;
	char err[512];

	if ((c = amq_connect(u, name, &fail, err, sizeof(err))) == NULL)
		die(fail == AMQ_REFUSED ? EXIT_CONFIG : EXIT_UNAVAILABLE, "RabbitMQ (%s): %s",
		    u->redacted, err);
	return c;
}

amqp_connection_state_t
amq_connect_any(const struct amq_brokers *b, const char *name, size_t *node,
    enum amq_fail *fail, char *err, size_t errsz)
{
	amqp_connection_state_t c;
	enum amq_fail f = AMQ_UNREACHABLE;
	struct logrec *r;
	char one[512];
	uint32_t rnd = 0;
	size_t i, k, len;
	bool refused = false;

	/* Several instances given the same list spread over the nodes. */
	if (b->n > 1 && getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)getpid();
	if (errsz > 0)
		err[0] = '\0';
	for (i = 0; i < b->n; i++) {
		k = (rnd + i) % b->n;
		if ((c = amq_connect(&b->url[k], name, &f, one, sizeof(one))) != NULL) {
			*node = k;
			return c;
		}
		refused = refused || f == AMQ_REFUSED;
		if (b->n == 1) {
			snprintf(err, errsz, "%s", one);
			break;
		}
		len = strlen(err);
		if (len < errsz)
			snprintf(err + len, errsz - len, "%s%s: %s", i ? "; " : "", b->url[k].node,
			    one);
		r = log_begin(LOG_WARNING, i + 1 < b->n ?
		    "⚠️ RabbitMQ node unavailable: trying the next one" :
		    "⚠️ RabbitMQ node unavailable: it was the last one");
		log_str(r, "broker", b->url[k].redacted);
		log_str(r, "error", one);
		log_end(r);
	}
	*fail = refused ? AMQ_REFUSED : f;
	return NULL;
}

amqp_connection_state_t
amq_connect_any_or_die(const struct amq_brokers *b, const char *name, size_t *node)
{
	amqp_connection_state_t c;
	enum amq_fail fail;
	char err[1024];

	if ((c = amq_connect_any(b, name, node, &fail, err, sizeof(err))) != NULL)
		return c;
	if (b->n == 1)
		die(fail == AMQ_REFUSED ? EXIT_CONFIG : EXIT_UNAVAILABLE, "RabbitMQ (%s): %s",
		    b->url[0].redacted, err);
	die(fail == AMQ_REFUSED ? EXIT_CONFIG : EXIT_UNAVAILABLE, "RabbitMQ (none of %zu "
	    "brokers%s): %s", b->n, fail == AMQ_REFUSED ? ", one refused us" : "", err);
}

int
amq_channel_open(amqp_connection_state_t c, amqp_channel_t ch, char *err, size_t errsz)
{
	amqp_rpc_reply_t r;

	amqp_channel_open(c, ch);
	r = amqp_get_rpc_reply(c);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		amq_reply_error(r, "channel.open", err, errsz);
		return -1;
	}
	return 0;
}

void
amq_queue_name(int type, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s", AMQ_QUEUE_PREFIX, data_types[type]);
}

/* 0, or the exit status a failed RPC calls for: 78 when the broker refuses
 * (403 access refused, 406 a queue declared with other arguments), 75
 * otherwise (the connection or channel went away). */
static int
check(amqp_connection_state_t c, const char *what, char *err, size_t errsz)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
	unsigned code;

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	amq_reply_error(r, what, err, errsz);
	code = reply_code(r);
	return code == AMQP_ACCESS_REFUSED || code == AMQP_PRECONDITION_FAILED ||
	    code == AMQP_NOT_ALLOWED ? EXIT_CONFIG : EXIT_TEMPFAIL;
}

/*
 * check() for a call on the dead-letter channel, where one failure is
 * expected: a classic queue lives on the node that declared it, and while
 * that node is down the broker answers 404 NOT_FOUND ("home node ... of
 * durable queue ... is down or inaccessible") and closes the channel. Then
 * the close is confirmed, the channel opened again, and 1 returned.
 */
static int
check_dlq(amqp_connection_state_t c, amqp_channel_t ch, const char *what, char *err,
    size_t errsz)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(c);
	amqp_channel_close_ok_t close_ok = { 0 };
	char why[256];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id !=
	    AMQP_CHANNEL_CLOSE_METHOD || reply_code(r) != AMQP_NOT_FOUND)
		return check(c, what, err, errsz);
	amq_reply_error(r, what, err, errsz);
	if (amqp_send_method(c, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok) != AMQP_STATUS_OK ||
	    amq_channel_open(c, ch, why, sizeof(why)) < 0)
		return EXIT_TEMPFAIL;
	return 1;
}

void
amq_dlq_name(int type, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s.dlq", AMQ_QUEUE_PREFIX, data_types[type]);
}

int
amq_declare(amqp_connection_state_t c, amqp_channel_t ch, amqp_channel_t dlq_ch,
    unsigned *dlq_down, char *err, size_t errsz)
{
	amqp_table_entry_t qargs[3], dlqargs[1];
	amqp_table_t qt, dlqt;
	char q[128], dlq[136];
	struct logrec *r;
	int t, rc;

	*dlq_down = 0;
	amqp_exchange_declare(c, ch, amqp_cstring_bytes(AMQ_EXCHANGE), amqp_cstring_bytes("topic"),
	    0, 1, 0, 0, amqp_empty_table);
	if ((rc = check(c, "exchange.declare " AMQ_EXCHANGE, err, errsz)) != 0)
		return rc;
	amqp_exchange_declare(c, ch, amqp_cstring_bytes(AMQ_DLX), amqp_cstring_bytes("topic"),
	    0, 1, 0, 0, amqp_empty_table);
	if ((rc = check(c, "exchange.declare " AMQ_DLX, err, errsz)) != 0)
		return rc;
	if (dlq_ch != ch && amq_channel_open(c, dlq_ch, err, errsz) < 0)
		return EXIT_TEMPFAIL;
	qargs[0] = entry_str("x-queue-type", "quorum");
	qargs[1] = entry_str("x-dead-letter-exchange", AMQ_DLX);
	qargs[2].key = amqp_cstring_bytes("x-delivery-limit");
	qargs[2].value.kind = AMQP_FIELD_KIND_I32;
	qargs[2].value.value.i32 = AMQ_DELIVERY_LIMIT;
	qt.num_entries = 3;
	qt.entries = qargs;
	dlqargs[0] = entry_str("x-queue-type", "classic");
	dlqt.num_entries = 1;
	dlqt.entries = dlqargs;
	for (t = 0; t < NTYPES; t++) {
		amq_queue_name(t, q, sizeof(q));
		amq_dlq_name(t, dlq, sizeof(dlq));
		amqp_queue_declare(c, dlq_ch, amqp_cstring_bytes(dlq), 0, 1, 0, 0, dlqt);
		rc = dlq_ch == ch ? check(c, "queue.declare (dead-letter queue)", err, errsz) :
		    check_dlq(c, dlq_ch, "queue.declare (dead-letter queue)", err, errsz);
		if (rc == 0) {
			amqp_queue_bind(c, dlq_ch, amqp_cstring_bytes(dlq),
			    amqp_cstring_bytes(AMQ_DLX), amqp_cstring_bytes(data_types[t]),
			    amqp_empty_table);
			rc = dlq_ch == ch ? check(c, "queue.bind (dead-letter queue)", err, errsz) :
			    check_dlq(c, dlq_ch, "queue.bind (dead-letter queue)", err, errsz);
		}
		if (rc == 1) {
			*dlq_down |= 1u << t;
			r = log_begin(LOG_WARNING, "⚠️ Dead-letter queue unreachable: going on "
			    "without it (poison waits unacked until it is back)");
			log_str(r, "queue", dlq);
			log_str(r, "error", err);
			log_end(r);
		} else if (rc != 0)
			return rc;
		amqp_queue_declare(c, ch, amqp_cstring_bytes(q), 0, 1, 0, 0, qt);
		if ((rc = check(c, "queue.declare", err, errsz)) != 0)
			return rc;
		amqp_queue_bind(c, ch, amqp_cstring_bytes(q), amqp_cstring_bytes(AMQ_EXCHANGE),
		    amqp_cstring_bytes(data_types[t]), amqp_empty_table);
		if ((rc = check(c, "queue.bind", err, errsz)) != 0)
			return rc;
	}
	return 0;
}

int
amq_declare_topology(amqp_connection_state_t c, amqp_channel_t ch, char *err, size_t errsz)
{
	unsigned down;

	return amq_declare(c, ch, ch, &down, err, errsz);
}

int
amq_dlq_reachable(amqp_connection_state_t c, amqp_channel_t ch, int type, char *err,
    size_t errsz)
{
	char dlq[136];
	int rc;

	amq_dlq_name(type, dlq, sizeof(dlq));
	amqp_queue_declare(c, ch, amqp_cstring_bytes(dlq), 1, 0, 0, 0, amqp_empty_table);
	rc = check_dlq(c, ch, "queue.declare (passive, dead-letter queue)", err, errsz);
	return rc == 0 ? 1 : rc == 1 ? 0 : -1;
}

long
amq_queue_depth(amqp_connection_state_t c, amqp_channel_t ch, const char *queue, char *err,
    size_t errsz)
{
	amqp_queue_declare_ok_t *ok;
	amqp_rpc_reply_t r;
	amqp_channel_close_ok_t close_ok = { 0 };

	ok = amqp_queue_declare(c, ch, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
	if (ok == NULL) {
		r = amqp_get_rpc_reply(c);
		amq_reply_error(r, "queue.declare (passive)", err, errsz);
		/* A missing queue closes the channel: confirm the close, so that
		 * the channel can be opened again (the broker refuses a second
		 * channel.open before the close-ok and closes the connection). */
		if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
		    r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
			(void)amqp_send_method(c, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
		return -1;
	}
	return (long)ok->message_count;
}

void
amq_close(amqp_connection_state_t c)
{
	if (c == NULL)
		return;
	(void)amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
	(void)amqp_connection_close(c, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(c);
}
