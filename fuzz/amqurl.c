/*
 * The AMQP URL parser (amq_url_parse, AMQP_CONNECTION).
 *
 * - Whatever the text, it never reads past its end, and what it returns is
 *   complete: a host, a port in 1..65535, user, password and vhost.
 * - The redacted form that messages print is exactly
 *   scheme://user@host:port/vhost: the password is not in it.
 * - The host is taken from after the authority's last '@', never from the
 *   credentials before it (checked where no %-escape can blur the two).
 * - A URL built from parts (user, password, host, vhost, port, each
 *   percent-encoded as a client library would) parses back to exactly
 *   those parts, whatever bytes they hold.
 * - As a list (amq_brokers_parse): at most AMQ_MAX_BROKERS URLs, each
 *   complete as above, all of one scheme and one vhost; a text that no
 *   URL follows a ',' or ';' in is the one URL amq_url_parse reads, with
 *   the same parts.
 *
 * Input: the URL itself; and, taken apart at the bytes 0x01, the parts
 * user, password, host and vhost, then the port (two bytes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amq.h"
#include "fuzz.h"

static struct buf url, want;

const char fuzz_tool[] = "amqp-drain";

static bool
contains(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* scheme://user@host:port/vhost, with an IPv6 host in brackets. */
static void
redacted(struct buf *b, const struct amq_url *u)
{
	buf_reset(b);
	buf_printf(b, "%s://%s@", u->tls ? "amqps" : "amqp", u->user);
	buf_printf(b, strchr(u->host, ':') ? "[%s]:%d/%s" : "%s:%d/%s", u->host, u->port,
	    u->vhost);
}

/* What any successful parse must hold. */
static void
check_parsed(const struct amq_url *u, const char *text)
{
	const char *auth, *auth_end, *at, *colon, *q;
	char *secret, *hostpart;

	CHECK(u->host != NULL && u->host[0] != '\0' && u->user != NULL && u->password != NULL &&
	    u->vhost != NULL && u->redacted != NULL, "a part is missing: %s", text);
	CHECK(u->port >= 1 && u->port <= 65535, "port %d: %s", u->port, text);
	CHECK(u->heartbeat >= 0 && u->heartbeat <= 65535, "heartbeat %d", u->heartbeat);
	CHECK(u->tls || (!u->cafile && !u->certfile && !u->keyfile), "TLS files without TLS");
	/* Messages print this: no password in it, only what is named here. */
	redacted(&want, u);
	CHECK(strcmp(u->redacted, want.p) == 0, "redacted %s, want %s: %s", u->redacted,
	    want.p, text);
	/* The host comes from after the authority's last '@', never from the
	 * credentials before it: checked where no escape can blur the two. */
	auth = text + (strncmp(text, "amqps://", 8) == 0 ? 8 : 7);
	auth_end = auth + strcspn(auth, "/?");
	for (at = NULL, q = auth; q < auth_end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL || (colon = memchr(auth, ':', (size_t)(at - auth))) == NULL ||
	    at - colon < 2)
		return;
	secret = strndup(colon + 1, (size_t)(at - colon - 1));
	hostpart = strndup(at + 1, (size_t)(auth_end - at - 1));
	/* (With no host written, it is "localhost".) */
	if (strchr(secret, '%') == NULL && strchr(hostpart, '%') == NULL &&
	    hostpart[0] != '\0' && hostpart[0] != ':' && !contains(hostpart, secret))
		CHECK(!contains(u->host, secret), "host %s holds the password %s: %s", u->host,
		    secret, text);
	free(secret);
	free(hostpart);
}

static void
pct(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~')
			buf_addc(b, (char)c);
		else {
			buf_addc(b, '%');
			buf_addc(b, hex[c >> 4]);
			buf_addc(b, hex[c & 15]);
		}
	}
}

/* Build a URL from parts (no NUL in them), parse it, compare. */
static void
from_parts(const char *s, size_t n)
{
	const char *part[4] = { "", "", "", "" }, *sep, *end = s + n;
	size_t len[4] = { 0 }, i;
	struct amq_url u;
	const char *err;
	char *user, *pw, *host, *vhost;
	int port = 0;
	bool tls;

	if (memchr(s, '\0', n) != NULL)
		return;
	/* user 0x01 password 0x01 host 0x01 vhost 0x01 port */
	for (i = 0; i < 4; i++) {
		if ((sep = memchr(s, 1, (size_t)(end - s))) == NULL)
			return;
		part[i] = s;
		len[i] = (size_t)(sep - s);
		s = sep + 1;
	}
	if (end - s >= 2)
		port = ((unsigned char)s[0] << 8 | (unsigned char)s[1]) % 65536;
	/* As aiormq, the parser turns a "%2F" left after decoding into "/": a
	 * vhost holding that text cannot be written. */
	if (memmem(part[3], len[3], "%2F", 3) != NULL)
		return;
	tls = port & 1;
	user = strndup(part[0], len[0]);
	pw = strndup(part[1], len[1]);
	host = strndup(part[2], len[2]);
	vhost = strndup(part[3], len[3]);

	buf_reset(&url);
	buf_adds(&url, tls ? "amqps://" : "amqp://");
	pct(&url, user, len[0]);
	buf_addc(&url, ':');
	pct(&url, pw, len[1]);
	buf_addc(&url, '@');
	if (strchr(host, ':') != NULL && strpbrk(host, "[]/?#@%") == NULL) {
		buf_addc(&url, '[');	/* an IPv6 address, as written */
		buf_adds(&url, host);
		buf_addc(&url, ']');
	} else
		pct(&url, host, len[2]);
	if (port != 0)
		buf_printf(&url, ":%d", port);
	buf_addc(&url, '/');
	pct(&url, vhost, len[3]);

	CHECK(amq_url_parse(url.p, &u, &err) == 0, "refused (%s): %s", err, url.p);
	check_parsed(&u, url.p);
	CHECK(strcmp(u.user, len[0] ? user : "guest") == 0, "user %s: %s", u.user, url.p);
	CHECK(strcmp(u.password, len[1] ? pw : "guest") == 0, "password differs: %s", url.p);
	CHECK(strcmp(u.host, len[2] ? host : "localhost") == 0, "host %s: %s", u.host, url.p);
	CHECK(u.port == (port ? port : tls ? 5671 : 5672), "port %d: %s", u.port, url.p);
	CHECK(strcmp(u.vhost, len[3] ? vhost : "/") == 0, "vhost %s: %s", u.vhost, url.p);
	CHECK(u.tls == tls, "tls: %s", url.p);
	amq_url_free(&u);
	free(user);
	free(pw);
	free(host);
	free(vhost);
}

static bool
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Does a URL follow a ',' or ';' in text (after blanks)? */
static bool
listed(const char *text)
{
	const char *p, *q;

	for (p = text; (p = strpbrk(p, ",;")) != NULL; p++) {
		for (q = p + 1; *q == ' ' || *q == '\t'; q++)
			;
		if (strncmp(q, "amqp://", 7) == 0 || strncmp(q, "amqps://", 8) == 0)
			return true;
	}
	return false;
}

static void
check_list(const char *text, const struct amq_url *one, bool one_ok)
{
	struct amq_brokers b;
	const char *err;
	size_t i;

	if (amq_brokers_parse(text, &b, &err) < 0) {
		CHECK(err != NULL && strncmp(err, "AMQP_CONNECTION: ", 17) == 0, "no reason");
		CHECK(listed(text) || !one_ok, "one URL read alone, refused as a list: %s", text);
		return;
	}
	CHECK(b.n >= 1 && b.n <= AMQ_MAX_BROKERS, "%zu URLs", b.n);
	for (i = 0; i < b.n; i++) {
		CHECK(b.url[i].tls == b.url[0].tls && strcmp(b.url[i].vhost, b.url[0].vhost) == 0,
		    "URL %zu of another scheme or vhost: %s", i + 1, text);
		CHECK(b.url[i].host[0] != '\0' && b.url[i].port >= 1 && b.url[i].port <= 65535 &&
		    b.url[i].user != NULL && b.url[i].password != NULL, "URL %zu: a part is missing",
		    i + 1);
		redacted(&want, &b.url[i]);
		CHECK(strcmp(b.url[i].redacted, want.p) == 0, "redacted %s, want %s",
		    b.url[i].redacted, want.p);
	}
	if (!listed(text)) {
		CHECK(one_ok && b.n == 1, "one URL: %zu as a list, %s alone", b.n,
		    one_ok ? "taken" : "refused");
		CHECK(strcmp(b.url[0].host, one->host) == 0 && b.url[0].port == one->port &&
		    strcmp(b.url[0].user, one->user) == 0 &&
		    strcmp(b.url[0].password, one->password) == 0 &&
		    strcmp(b.url[0].vhost, one->vhost) == 0 && b.url[0].tls == one->tls &&
		    b.url[0].heartbeat == one->heartbeat && b.url[0].verify == one->verify &&
		    same_str(b.url[0].cafile, one->cafile) && same_str(b.url[0].certfile,
		    one->certfile) && same_str(b.url[0].keyfile, one->keyfile),
		    "one URL read otherwise as a list: %s", text);
	}
	amq_brokers_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct amq_url u;
	const char *err;
	char *text = fuzz_cstr(data, size);
	bool ok;

	if ((ok = amq_url_parse(text, &u, &err) == 0))
		check_parsed(&u, text);
	else
		CHECK(err != NULL && strncmp(err, "AMQP_CONNECTION: ", 17) == 0, "no reason");
	check_list(text, &u, ok);
	if (ok)
		amq_url_free(&u);
	from_parts(text, size);
	free(text);
	return 0;
}
