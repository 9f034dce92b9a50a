#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "util.h"
#include "xrec.h"

enum { V_NULL, V_STR, V_OBJ };

/* An element's value and, as a member of its parent, its key. Attributes
 * and "#text" are members too. Members are kept in document order and
 * sorted only when written. */
struct xnode {
	size_t		 key, klen;	/* in strs */
	size_t		 val, vlen;	/* V_STR: in strs */
	size_t		 first, last;	/* V_OBJ: members */
	size_t		 next;		/* the next member of the parent */
	size_t		 nmemb;
	unsigned char	 kind;
};

struct xframe {
	size_t		 node;
	size_t		 text;		/* where this element's text starts in strs */
	bool		 children;
};

/* Fixed keys at the start of strs. */
#define FIXED_KEYS	"#textid"
#define KEY_TEXT	0
#define KEY_TEXT_LEN	5
#define KEY_ID		5
#define KEY_ID_LEN	2

#define SORT_SMALL	16

void
xrec_reset(struct xrec *r)
{
	buf_reset(&r->strs);
	buf_adds(&r->strs, FIXED_KEYS);
	r->nnodes = 1;
	r->depth = 0;
}

void
xrec_free(struct xrec *r)
{
	buf_free(&r->strs);
	free(r->nodes);
	free(r->open);
	free(r->order);
	memset(r, 0, sizeof(*r));
}

static size_t
new_node(struct xrec *r, size_t key, size_t klen)
{
	struct xnode *n;

	if (r->nnodes >= r->capnodes) {
		r->capnodes = r->capnodes ? 2 * r->capnodes : 256;
		r->nodes = xrealloc(r->nodes, r->capnodes * sizeof(*r->nodes));
	}
	n = &r->nodes[r->nnodes];
	memset(n, 0, sizeof(*n));
	n->key = key;
	n->klen = klen;
	return r->nnodes++;
}

static void
add_member(struct xrec *r, size_t parent, size_t child)
{
	struct xnode *p = &r->nodes[parent];

	if (p->first == 0)
		p->first = child;
	else
		r->nodes[p->last].next = child;
	p->last = child;
	p->nmemb++;
}

static size_t
add_str(struct xrec *r, const char *s, size_t n)
{
	size_t off = r->strs.len;

	buf_add(&r->strs, s, n);
	return off;
}

void
xrec_start(struct xrec *r, const char *name, const char **atts)
{
	struct xframe *parent;
	size_t n, a, key, klen;

	if (r->depth > 0) {
		parent = &r->open[r->depth - 1];
		if (!parent->children) {
			/* The text of an element with children is dropped. */
			parent->children = true;
			r->strs.len = parent->text;
		}
	}
	klen = strlen(name);
	key = add_str(r, name, klen);
	n = new_node(r, key, klen);
	for (; atts[0] != NULL; atts += 2) {
		key = r->strs.len;
		buf_addc(&r->strs, '@');
		klen = strlen(atts[0]);
		buf_add(&r->strs, atts[0], klen);
		a = new_node(r, key, klen + 1);
		r->nodes[a].kind = V_STR;
		r->nodes[a].vlen = strlen(atts[1]);
		r->nodes[a].val = add_str(r, atts[1], r->nodes[a].vlen);
		add_member(r, n, a);
	}
	if (r->depth > 0)
		add_member(r, r->open[r->depth - 1].node, n);
	if (r->depth == r->capopen) {
		r->capopen = r->capopen ? 2 * r->capopen : 32;
		r->open = xrealloc(r->open, r->capopen * sizeof(*r->open));
	}
	r->open[r->depth++] = (struct xframe){ n, r->strs.len, false };
}

void
xrec_text(struct xrec *r, const char *s, size_t n)
{
	if (r->depth > 0 && !r->open[r->depth - 1].children)
		buf_add(&r->strs, s, n);
}

/* Length of the Unicode white space character (Rust's char::is_whitespace)
 * at p, or 0. The input is valid UTF-8. */
static size_t
space_at(const unsigned char *p, const unsigned char *end)
{
	size_t n = (size_t)(end - p);

	if (p[0] < 0x80)
		return p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r');
	if (p[0] == 0xc2)
		return n >= 2 && (p[1] == 0x85 || p[1] == 0xa0) ? 2 : 0;
	if (n < 3)
		return 0;
	if (p[0] == 0xe1)
		return p[1] == 0x9a && p[2] == 0x80 ? 3 : 0;
	if (p[0] == 0xe2) {
		if (p[1] == 0x80)
			return p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 ||
			    p[2] == 0xaf ? 3 : 0;
		return p[1] == 0x81 && p[2] == 0x9f ? 3 : 0;
	}
	if (p[0] == 0xe3)
		return p[1] == 0x80 && p[2] == 0x80 ? 3 : 0;
	return 0;
}

/* The same for the character that ends at end. */
static size_t
space_before(const unsigned char *start, const unsigned char *end)
{
	const unsigned char *p = end - 1;

	while (p > start && end - p < 4 && (*p & 0xc0) == 0x80)
		p--;
	return space_at(p, end) == (size_t)(end - p) ? (size_t)(end - p) : 0;
}

void
xrec_end(struct xrec *r)
{
	struct xframe f = r->open[--r->depth];
	const unsigned char *s, *e, *base;
	size_t k, t;

	if (!f.children) {
		base = (const unsigned char *)r->strs.p;
		s = base + f.text;
		e = base + r->strs.len;
		while (s < e && (k = space_at(s, e)) > 0)
			s += k;
		while (e > s && (k = space_before(s, e)) > 0)
			e -= k;
		if (s == e) {
			r->strs.len = f.text;
		} else {
			r->strs.len = (size_t)(e - base);
			if (r->nodes[f.node].nmemb == 0) {
				/* Text only: a plain string. */
				r->nodes[f.node].kind = V_STR;
				r->nodes[f.node].val = (size_t)(s - base);
				r->nodes[f.node].vlen = (size_t)(e - s);
				return;
			}
			t = new_node(r, KEY_TEXT, KEY_TEXT_LEN);
			r->nodes[t].kind = V_STR;
			r->nodes[t].val = (size_t)(s - base);
			r->nodes[t].vlen = (size_t)(e - s);
			add_member(r, f.node, t);
		}
	}
	r->nodes[f.node].kind = r->nodes[f.node].nmemb > 0 ? V_OBJ : V_NULL;
}

static int
keycmp(const struct xrec *r, size_t a, size_t b)
{
	const struct xnode *x = &r->nodes[a], *y = &r->nodes[b];
	int c;

	c = memcmp(r->strs.p + x->key, r->strs.p + y->key,
	    x->klen < y->klen ? x->klen : y->klen);
	if (c != 0)
		return c;
	return (x->klen > y->klen) - (x->klen < y->klen);
}

/* Stable sort of member indices by key; tmp has room for n. */
static void
sort_members(const struct xrec *r, size_t *a, size_t *tmp, size_t n)
{
	size_t i, j, h, l, m, v;

	if (n <= SORT_SMALL) {
		for (i = 1; i < n; i++) {
			v = a[i];
			for (j = i; j > 0 && keycmp(r, a[j - 1], v) > 0; j--)
				a[j] = a[j - 1];
			a[j] = v;
		}
		return;
	}
	h = n / 2;
	sort_members(r, a, tmp, h);
	sort_members(r, a + h, tmp + h, n - h);
	if (keycmp(r, a[h - 1], a[h]) <= 0)
		return;
	memcpy(tmp, a, n * sizeof(*a));
	for (i = 0, l = 0, m = h; l < h && m < n; i++)
		a[i] = keycmp(r, tmp[m], tmp[l]) < 0 ? tmp[m++] : tmp[l++];
	while (l < h)
		a[i++] = tmp[l++];
	while (m < n)
		a[i++] = tmp[m++];
}

static void write_value(struct xrec *, size_t, struct buf *, size_t);

/* Write the members of object n, sorted, repeated keys grouped into arrays.
 * order[top..] is free scratch space. */
static void
write_members(struct xrec *r, size_t n, struct buf *out, size_t top)
{
	const struct xnode *x;
	size_t cnt = r->nodes[n].nmemb, i, j, k, m;

	if (top + 2 * cnt > r->caporder) {
		r->caporder = 2 * (top + 2 * cnt);
		r->order = xrealloc(r->order, r->caporder * sizeof(*r->order));
	}
	for (i = 0, m = r->nodes[n].first; m != 0; m = r->nodes[m].next)
		r->order[top + i++] = m;
	sort_members(r, r->order + top, r->order + top + cnt, cnt);
	for (i = 0; i < cnt; i = j) {
		m = r->order[top + i];
		for (j = i + 1; j < cnt && keycmp(r, m, r->order[top + j]) == 0; j++)
			;
		if (i > 0)
			buf_addc(out, ',');
		/* XML names need no escaping in JSON. */
		x = &r->nodes[m];
		buf_reserve(out, x->klen + 3);
		out->p[out->len++] = '"';
		memcpy(out->p + out->len, r->strs.p + x->key, x->klen);
		out->len += x->klen;
		out->p[out->len++] = '"';
		out->p[out->len++] = ':';
		if (j - i == 1) {
			write_value(r, m, out, top + cnt);
			continue;
		}
		buf_addc(out, '[');
		for (k = i; k < j; k++) {
			if (k > i)
				buf_addc(out, ',');
			write_value(r, r->order[top + k], out, top + cnt);
		}
		buf_addc(out, ']');
	}
}

static void
write_value(struct xrec *r, size_t n, struct buf *out, size_t top)
{
	const struct xnode *x = &r->nodes[n];

	switch (x->kind) {
	case V_STR:
		buf_json_str(out, r->strs.p + x->val, x->vlen);
		break;
	case V_OBJ:
		buf_addc(out, '{');
		write_members(r, n, out, top);
		buf_addc(out, '}');
		break;
	default:
		buf_adds(out, "null");
	}
}

/* The member of object n with this key: its index, 0 if none; *count (if
 * not NULL) says how many there are (several make an array). */
static size_t
find_member(const struct xrec *r, size_t n, const char *key, size_t klen,
    size_t *count)
{
	size_t m, found = 0, k = 0;

	for (m = r->nodes[n].first; m != 0; m = r->nodes[m].next)
		if (r->nodes[m].klen == klen &&
		    memcmp(r->strs.p + r->nodes[m].key, key, klen) == 0) {
			if (found == 0)
				found = m;
			k++;
		}
	if (count != NULL)
		*count = k;
	return found;
}

bool
xrec_emit(struct xrec *r, struct buf *out, bool add_id, bool self_closing)
{
	static const char unknown[] = "unknown";
	const char *id = unknown;
	size_t root = 1, at, plain, nplain, idlen = sizeof(unknown) - 1;
	size_t sha_at, open_at, m;
	char sha[65];

	if (r->nnodes < 2 || r->nodes[root].kind != V_OBJ)
		return false;
	/* The message id: "@id", else "id", if it is a string. A self-closing
	 * record is looked up by "id" only and gets no "id" added. */
	at = self_closing ? 0 : find_member(r, root, "@id", 3, NULL);
	plain = find_member(r, root, "id", 2, &nplain);
	m = at != 0 ? at : nplain == 1 ? plain : 0;
	if (m != 0 && r->nodes[m].kind == V_STR) {
		id = r->strs.p + r->nodes[m].val;
		idlen = r->nodes[m].vlen;
	}
	if (add_id && at != 0 && plain == 0) {
		m = new_node(r, KEY_ID, KEY_ID_LEN);
		r->nodes[m].kind = V_STR;
		r->nodes[m].val = r->nodes[at].val;
		r->nodes[m].vlen = r->nodes[at].vlen;
		add_member(r, root, m);
	}

	buf_adds(out, "{\"type\":\"data\",\"id\":");
	buf_json_str(out, id, idlen);
	buf_adds(out, ",\"sha256\":\"");
	sha_at = out->len;
	buf_add(out, "0000000000000000000000000000000000000000000000000000000000000000\"", 65);
	/* The record is hashed in place: its '{' stands where the body has
	 * the ',' before the record's members. */
	open_at = out->len;
	buf_addc(out, '{');
	write_members(r, root, out, 0);
	buf_addc(out, '}');
	sha256_hex(out->p + open_at, out->len - open_at, sha);
	memcpy(out->p + sha_at, sha, 64);
	out->p[open_at] = ',';
	buf_addc(out, '\n');
	return true;
}
