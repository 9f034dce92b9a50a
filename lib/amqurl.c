/*
 * AMQP_CONNECTION as text: one amqp:// or amqps:// URL parsed as the
 * original service reads it, or several, the nodes of one cluster
 * (amqurl.h). No connection is made here: lib/amq.c connects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "amqurl.h"
#include "buf.h"
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
