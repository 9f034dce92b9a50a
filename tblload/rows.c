#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "num.h"
#include "rows.h"
#include "util.h"

const struct tabledef tables[NTABLES] = {
	{ "artists", { "id", "name", "real_name", "profile", "urls", "aliases",
	    "hash", "data", NULL } },
	{ "labels", { "id", "name", "profile", "urls", "parent_label_id",
	    "hash", "data", NULL } },
	{ "masters", { "id", "title", "year", "genres", "styles", "main_release",
	    "hash", "data", NULL } },
	{ "releases", { "id", "title", "year", "country", "genres", "styles",
	    "formats", "tracklist", "label_id", "master_id", "hash", "data", NULL } },
	{ "release_labels", { "release_id", "label_id", "catno", NULL } },
	{ "release_artists", { "release_id", "artist_id", "name", "anv", "join",
	    "role", "extra", NULL } },
};

/* ---- formatting ------------------------------------------------------- */

/* COPY text format: backslash, newline, CR and tab are escaped; NUL cannot
 * be stored and is dropped (counted). */
static void
copy_escape(struct sink *s, struct buf *b, const char *p, size_t n)
{
	const char *end = p + n, *run;

	buf_reserve(b, n);
	while (p < end) {
		run = p;
		while (p < end && *p != '\\' && *p != '\n' && *p != '\r' && *p != '\t' && *p != '\0')
			p++;
		buf_add(b, run, (size_t)(p - run));
		if (p == end)
			break;
		switch (*p) {
		case '\\': buf_add(b, "\\\\", 2); break;
		case '\n': buf_add(b, "\\n", 2); break;
		case '\r': buf_add(b, "\\r", 2); break;
		case '\t': buf_add(b, "\\t", 2); break;
		case '\0': s->nuls++; break;
		}
		p++;
	}
}

/* Drop every \u0000 escape from JSON text (PostgreSQL's jsonb refuses it).
 * Returns the text to use: p itself when there is none. */
static struct jval
json_without_nul(struct sink *s, const char *p, size_t n)
{
	const char *hit, *q = p, *end = p + n, *b;
	struct buf *out = &s->scratch;

	if ((hit = memmem(p, n, "\\u0000", 6)) == NULL)
		return (struct jval){ p, n };
	buf_reset(out);
	while (hit != NULL) {
		/* It is an escape only if an even number of backslashes precede it. */
		for (b = hit; b > p && b[-1] == '\\'; b--)
			;
		buf_add(out, q, (size_t)(hit - q));
		if ((hit - b) % 2 == 0) {
			s->nuls++;
			q = hit + 6;
		} else {
			buf_add(out, hit, 6);
			q = hit + 6;
		}
		hit = memmem(q, (size_t)(end - q), "\\u0000", 6);
	}
	buf_add(out, q, (size_t)(end - q));
	return (struct jval){ out->p, out->len };
}

static void
key(struct sink *s)
{
	struct buf *b = &s->out[0];

	if (s->fmt == SINK_COPY) {
		if (s->col > 0)
			buf_addc(&s->out[s->cur], '\t');
	} else {
		json_key(b, tables[s->cur].columns[s->col]);
	}
	s->col++;
}

static struct buf *
dest(struct sink *s)
{
	return s->fmt == SINK_COPY ? &s->out[s->cur] : &s->out[0];
}

static void
row_begin(struct sink *s, enum table t)
{
	s->cur = t;
	s->col = 0;
	if (s->fmt == SINK_JSON) {
		buf_adds(&s->out[0], "{\"table\":\"");
		buf_adds(&s->out[0], tables[t].name);
		buf_addc(&s->out[0], '"');
	}
}

static void
row_end(struct sink *s, int ord)
{
	if (s->fmt == SINK_COPY) {
		if (s->with_ord && s->cur >= T_RELEASE_LABELS)
			buf_printf(&s->out[s->cur], "\t%d", ord);
		buf_addc(&s->out[s->cur], '\n');
	} else
		buf_add(&s->out[0], "}\n", 2);
	s->rows[s->cur]++;
}

static void
f_null(struct sink *s)
{
	key(s);
	if (s->fmt == SINK_COPY)
		buf_add(dest(s), "\\N", 2);
	else
		buf_add(dest(s), "null", 4);
}

static void
f_int(struct sink *s, long long v)
{
	key(s);
	buf_printf(dest(s), "%lld", v);
}

static void
f_bool(struct sink *s, int v)
{
	key(s);
	if (s->fmt == SINK_COPY)
		buf_addc(dest(s), v ? 't' : 'f');
	else
		buf_adds(dest(s), v ? "true" : "false");
}

static void
put_text(struct sink *s, const char *p, size_t n)
{
	const char *z;

	if (s->fmt == SINK_COPY) {
		copy_escape(s, dest(s), p, n);
		return;
	}
	if ((z = memchr(p, '\0', n)) == NULL) {
		json_put_str(dest(s), p, n);
		return;
	}
	/* JSON output of text with NULs: the same text PostgreSQL would get. */
	struct buf clean = { 0 };
	for (; z != NULL; z = memchr(p, '\0', n)) {
		buf_add(&clean, p, (size_t)(z - p));
		n -= (size_t)(z - p) + 1;
		p = z + 1;
		s->nuls++;
	}
	buf_add(&clean, p, n);
	json_put_str(dest(s), clean.p, clean.len);
	buf_free(&clean);
}

static void
f_text(struct sink *s, const char *p, size_t n)
{
	key(s);
	put_text(s, p, n);
}

static void
f_json(struct sink *s, const char *p, size_t n)
{
	struct jval j = json_without_nul(s, p, n);

	key(s);
	if (s->fmt == SINK_COPY)
		copy_escape(s, dest(s), j.p, j.n);
	else
		buf_add(dest(s), j.p, j.n);
}

/* A text[] value: begin, elements, end. */
static void
f_array_begin(struct sink *s)
{
	key(s);
	buf_addc(dest(s), s->fmt == SINK_COPY ? '{' : '[');
}

static void
f_array_elem(struct sink *s, int i, const char *p, size_t n)
{
	struct buf *b = dest(s);
	const char *end = p + n;

	if (i > 0)
		buf_addc(b, ',');
	if (s->fmt == SINK_JSON) {
		put_text(s, p, n);
		return;
	}
	/* Array literal quoting ('\' and '"' escaped), then COPY escaping. */
	buf_addc(b, '"');
	for (; p < end; p++) {
		switch (*p) {
		case '\\': buf_add(b, "\\\\\\\\", 4); break;
		case '"':  buf_add(b, "\\\\\"", 3); break;
		case '\n': buf_add(b, "\\n", 2); break;
		case '\r': buf_add(b, "\\r", 2); break;
		case '\t': buf_add(b, "\\t", 2); break;
		case '\0': s->nuls++; break;
		default:   buf_addc(b, *p);
		}
	}
	buf_addc(b, '"');
}

static void
f_array_end(struct sink *s)
{
	buf_addc(dest(s), s->fmt == SINK_COPY ? '}' : ']');
}

void
sink_reset(struct sink *s)
{
	int i;

	for (i = 0; i < NTABLES; i++) {
		buf_reset(&s->out[i]);
		s->rows[i] = 0;
	}
	s->nuls = 0;
}

void
sink_free(struct sink *s)
{
	int i;

	for (i = 0; i < NTABLES; i++)
		buf_free(&s->out[i]);
	buf_free(&s->scratch);
	buf_free(&s->tmp);
}

/* ---- reading values --------------------------------------------------- */

/* Text of a value: a string, or the "#text" of an element with attributes. */
static int
text_of(struct jval v, struct buf *out)
{
	struct jstr s;

	buf_reset(out);
	if (json_kind(v) == J_OBJECT)
		v = json_member(v, "#text");
	if (!json_string(v, &s))
		return -1;
	jstr_decode(out, s);
	return 0;
}

static void
f_text_of(struct sink *s, struct jval v, struct buf *tmp)
{
	if (text_of(v, tmp) < 0)
		f_null(s);
	else
		f_text(s, tmp->p, tmp->len);
}

/* An integer column from a string (or "#text", or a number) within INTEGER. */
static int
int_of(struct jval v, struct buf *tmp, long long *out)
{
	const char *why;

	if (json_kind(v) == J_NUMBER) {
		buf_reset(tmp);
		buf_add(tmp, v.p, v.n);
	} else if (text_of(v, tmp) < 0)
		return -1;
	buf_addc(tmp, '\0');
	return parse_ll(tmp->p, INT32_MIN, INT32_MAX, out, &why);
}

static void
f_int_of(struct sink *s, struct jval v, struct buf *tmp)
{
	long long n;

	if (int_of(v, tmp, &n) < 0)
		f_null(s);
	else
		f_int(s, n);
}

/* The year of "1999-03-00", "1999" or "0" (none). */
static void
f_year_of(struct sink *s, struct jval v, struct buf *tmp)
{
	long long y = 0;
	size_t i;

	if (text_of(v, tmp) == 0) {
		/* Exactly four leading digits. */
		for (i = 0; i < tmp->len && i < 5 && tmp->p[i] >= '0' && tmp->p[i] <= '9'; i++)
			y = y * 10 + (tmp->p[i] - '0');
		if (i != 4)
			y = 0;
	}
	if (y > 0)
		f_int(s, y);
	else
		f_null(s);
}

/* A text[] column from a repeated element: a value or an array of values;
 * nulls are skipped and an empty list is NULL. */
static void
f_texts_of(struct sink *s, struct jval v, struct buf *tmp)
{
	struct jval e;
	struct jiter it;
	int n = 0;

	if (json_kind(v) != J_ARRAY) {
		if (text_of(v, tmp) < 0) {
			f_null(s);
			return;
		}
		f_array_begin(s);
		f_array_elem(s, 0, tmp->p, tmp->len);
		f_array_end(s);
		return;
	}
	jiter_array(&it, v);
	while (jiter_elem(&it, &e) == 1) {
		if (text_of(e, tmp) < 0)
			continue;
		if (n == 0)
			f_array_begin(s);
		f_array_elem(s, n++, tmp->p, tmp->len);
	}
	if (n == 0)
		f_null(s);
	else
		f_array_end(s);
}

/* A jsonb column that is always an array: [] for nothing, [x] for one x. */
static void
f_json_array_of(struct sink *s, struct jval v)
{
	struct buf *w = &s->scratch;
	struct jval j;

	switch (json_kind(v)) {
	case J_ARRAY:
		f_json(s, v.p, v.n);
		return;
	case J_NONE:
	case J_NULL:
		f_json(s, "[]", 2);
		return;
	default:
		break;
	}
	/* json_without_nul may use the scratch buffer: strip first, then wrap. */
	j = json_without_nul(s, v.p, v.n);
	if (j.p != w->p) {
		buf_reset(w);
		buf_add(w, j.p, j.n);
	}
	buf_reserve(w, 2);
	memmove(w->p + 1, w->p, w->len);
	w->p[0] = '[';
	w->p[w->len + 1] = ']';
	w->len += 2;
	w->p[w->len] = '\0';
	key(s);
	if (s->fmt == SINK_COPY)
		copy_escape(s, dest(s), w->p, w->len);
	else
		buf_add(dest(s), w->p, w->len);
}

/* Each element of a repeated element, one at a time. */
struct each {
	struct jval	 one;
	struct jiter	 it;
	int		 state;	/* 0 single pending, 1 iterating array, 2 done */
};

static void
each_init(struct each *e, struct jval v)
{
	if (json_kind(v) == J_ARRAY) {
		jiter_array(&e->it, v);
		e->state = 1;
	} else if (json_kind(v) == J_NONE || json_kind(v) == J_NULL)
		e->state = 2;
	else {
		e->one = v;
		e->state = 0;
	}
}

static int
each_next(struct each *e, struct jval *v)
{
	if (e->state == 0) {
		e->state = 2;
		*v = e->one;
		return 1;
	}
	if (e->state == 1 && jiter_elem(&e->it, v) == 1)
		return 1;
	e->state = 2;
	return 0;
}

/* ---- records ---------------------------------------------------------- */

enum member {
	M_NAME, M_REALNAME, M_PROFILE, M_URLS, M_ALIASES, M_PARENTLABEL, M_TITLE,
	M_YEAR, M_RELEASED, M_GENRES, M_STYLES, M_MAIN_RELEASE, M_COUNTRY, M_FORMATS,
	M_TRACKLIST, M_LABELS, M_MASTER_ID, M_ARTISTS, M_EXTRAARTISTS, NMEMBERS
};

static const char *const member_names[NMEMBERS] = {
	"name", "realname", "profile", "urls", "aliases", "parentLabel", "title",
	"year", "released", "genres", "styles", "main_release", "country", "formats",
	"tracklist", "labels", "master_id", "artists", "extraartists"
};

/* One pass over the record's top-level members, keeping the wanted ones. */
static int
collect(struct jval body, struct jval m[NMEMBERS])
{
	struct jstr k;
	struct jval v;
	struct jiter it;
	int i, rc;

	memset(m, 0, sizeof(struct jval) * NMEMBERS);
	if (jiter_object(&it, body) < 0)
		return -1;
	while ((rc = jiter_member(&it, &k, &v)) == 1) {
		for (i = 0; i < NMEMBERS; i++)
			if (jstr_eq(k, member_names[i])) {
				m[i] = v;
				break;
			}
	}
	return rc;
}

static void
link_artists(struct sink *s, long long id, struct jval artists, int extra, int *ord,
    struct buf *tmp)
{
	struct each e;
	struct jval a;

	each_init(&e, json_member(artists, "artist"));
	while (each_next(&e, &a)) {
		if (json_kind(a) != J_OBJECT)
			continue;
		row_begin(s, T_RELEASE_ARTISTS);
		f_int(s, id);
		f_int_of(s, json_member(a, "id"), tmp);
		f_text_of(s, json_member(a, "name"), tmp);
		f_text_of(s, json_member(a, "anv"), tmp);
		f_text_of(s, json_member(a, "join"), tmp);
		f_text_of(s, json_member(a, "role"), tmp);
		f_bool(s, extra);
		row_end(s, (*ord)++);
	}
}

int
rows_build(struct sink *s, int type, long long id, const char *sha256, struct jval body,
    const char **err)
{
	struct jval m[NMEMBERS], l;
	struct buf *tmp = &s->tmp;
	struct each e;
	long long n;
	size_t nuls = s->nuls;
	int ord;

	if (collect(body, m) != 0) {
		*err = "body is not a valid JSON object";
		return -1;
	}
	row_begin(s, (enum table)type);
	f_int(s, id);
	switch (type) {
	case T_ARTISTS:
		f_text_of(s, m[M_NAME], tmp);
		f_text_of(s, m[M_REALNAME], tmp);
		f_text_of(s, m[M_PROFILE], tmp);
		f_texts_of(s, json_member(m[M_URLS], "url"), tmp);
		f_texts_of(s, json_member(m[M_ALIASES], "name"), tmp);
		break;
	case T_LABELS:
		f_text_of(s, m[M_NAME], tmp);
		f_text_of(s, m[M_PROFILE], tmp);
		f_texts_of(s, json_member(m[M_URLS], "url"), tmp);
		f_int_of(s, json_member(m[M_PARENTLABEL], "@id"), tmp);
		break;
	case T_MASTERS:
		f_text_of(s, m[M_TITLE], tmp);
		f_year_of(s, m[M_YEAR], tmp);
		f_texts_of(s, json_member(m[M_GENRES], "genre"), tmp);
		f_texts_of(s, json_member(m[M_STYLES], "style"), tmp);
		f_int_of(s, m[M_MAIN_RELEASE], tmp);
		break;
	case T_RELEASES:
		f_text_of(s, m[M_TITLE], tmp);
		f_year_of(s, json_kind(m[M_RELEASED]) == J_STRING ? m[M_RELEASED] : m[M_YEAR], tmp);
		f_text_of(s, m[M_COUNTRY], tmp);
		f_texts_of(s, json_member(m[M_GENRES], "genre"), tmp);
		f_texts_of(s, json_member(m[M_STYLES], "style"), tmp);
		f_json_array_of(s, json_member(m[M_FORMATS], "format"));
		f_json_array_of(s, json_member(m[M_TRACKLIST], "track"));
		/* label_id: the first label's id. */
		each_init(&e, json_member(m[M_LABELS], "label"));
		if (each_next(&e, &l) && int_of(json_member(l, "@id"), tmp, &n) == 0)
			f_int(s, n);
		else
			f_null(s);
		f_int_of(s, m[M_MASTER_ID], tmp);
		break;
	}
	f_text(s, sha256, 64);
	/* Every string of the record is in data: count each U+0000 there only,
	 * not again for each typed column or link row that holds a copy. */
	s->nuls = nuls;
	f_json(s, body.p, body.n);
	nuls = s->nuls;
	row_end(s, 0);

	if (type == T_RELEASES) {
		ord = 0;
		each_init(&e, json_member(m[M_LABELS], "label"));
		while (each_next(&e, &l)) {
			if (json_kind(l) != J_OBJECT)
				continue;
			row_begin(s, T_RELEASE_LABELS);
			f_int(s, id);
			f_int_of(s, json_member(l, "@id"), tmp);
			f_text_of(s, json_member(l, "@catno"), tmp);
			row_end(s, ord++);
		}
		ord = 0;
		link_artists(s, id, m[M_ARTISTS], 0, &ord, tmp);
		link_artists(s, id, m[M_EXTRAARTISTS], 1, &ord, tmp);
	}
	s->nuls = nuls;
	return 0;
}
