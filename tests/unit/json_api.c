/*
 * lib/json.c at its edges: what a string decodes to and compares equal to,
 * how far a value reaches, and where the writer puts its commas. Exits 0
 * when every check holds, else names the first that does not.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "num.h"

static int failed;

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "json_api.c:%d: %s\n", __LINE__, #cond);\
		failed = 1;						\
	}								\
} while (0)

/* The contents of a string literal's text, as the scanner reads them. */
static struct jstr
str(const char *text)
{
	struct jstr s;
	const char *end = text + strlen(text), *q;

	q = json_str_end(text + 1, end, &s);
	CHECK(q < end && *q == '"');
	return s;
}

static struct jval
val(const char *text)
{
	return (struct jval){ text, strlen(text) };
}

static int
decodes_to(const char *text, const char *want, size_t wantlen)
{
	struct buf b = { 0 };
	int ok;

	jstr_decode(&b, str(text));
	ok = b.len == wantlen && (wantlen == 0 || memcmp(b.p, want, wantlen) == 0);
	buf_free(&b);
	return ok;
}

static void
reading(void)
{
	struct jstr s, k;
	struct jval v;
	struct jiter it;
	const char *t;

	/* Decoded comparison: escapes count by what they stand for, the
	 * whole string must match, U+0000 included. */
	CHECK(jstr_eq(str("\"file_complete\""), "file_complete"));
	CHECK(jstr_eq(str("\"file_\\u0063omplete\""), "file_complete"));
	CHECK(jstr_eq(str("\"\\u0066ile_complet\\u0065\""), "file_complete"));
	CHECK(!jstr_eq(str("\"file_complete\\u0000x\""), "file_complete"));
	CHECK(!jstr_eq(str("\"file_complete \""), "file_complete"));
	CHECK(!jstr_eq(str("\"file_\\u0063omplet\""), "file_complete"));
	CHECK(jstr_eq(str("\"\""), ""));
	CHECK(!jstr_eq(str("\"\\u0000\""), ""));

	CHECK(decodes_to("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "a\"b\\c/d\b\f\n\r\t", 12));
	CHECK(decodes_to("\"\\u00e9\\u20AC\"", "\xc3\xa9\xe2\x82\xac", 5));
	CHECK(decodes_to("\"\\ud83c\\udfb5\"", "\xf0\x9f\x8e\xb5", 4));
	/* A lone surrogate is U+FFFD, as json-c makes it. */
	CHECK(decodes_to("\"\\ud800x\"", "\xef\xbf\xbdx", 4));
	CHECK(decodes_to("\"\\udc00\"", "\xef\xbf\xbd", 3));
	CHECK(decodes_to("\"a\\u0000b\"", "a\0b", 3));

	/* A string ends at its quote, or at a raw control byte, escaped or not. */
	t = "\"ab\\\x01\"";
	CHECK(json_str_end(t + 1, t + strlen(t), &s) == t + 4);
	t = "\"a\x1f\"";
	CHECK(json_str_end(t + 1, t + strlen(t), &s) == t + 2);
	t = "\"abc";
	CHECK(json_str_end(t + 1, t + strlen(t), &s) == t + 4);

	/* Values: literals exactly, numbers by their characters. */
	t = "[1,{\"a\":\"]}\"},\"x\"] tail";
	CHECK(json_value_end(t, t + strlen(t)) == t + 18);
	t = "tru,";
	CHECK(json_value_end(t, t + strlen(t)) == NULL);
	t = "-1.5e+3}";
	CHECK(json_value_end(t, t + strlen(t)) == t + 7);
	t = "{\"a\":[}";
	CHECK(json_value_end(t, t + strlen(t)) == NULL);

	/* The last of a repeated member; an escaped name is its decoded name. */
	v = json_member(val("{\"type\":\"a\",\"\\u0074ype\":\"b\",\"x\":[1,2]}"), "type");
	CHECK(v.n == 3 && memcmp(v.p, "\"b\"", 3) == 0);
	CHECK(json_kind(json_member(val("{\"a\":1}"), "b")) == J_NONE);
	CHECK(json_kind(json_member(val("[\"a\"]"), "a")) == J_NONE);

	/* The iterator says why it stops, and whether the text ran out in a string. */
	CHECK(jiter_object(&it, val("{\"a\":1 \"b\":2}")) == 0);
	CHECK(jiter_member(&it, &k, &v) == 1 && jiter_member(&it, &k, &v) == -1);
	CHECK(strcmp(it.err, "expected ',' or '}'") == 0 && !it.cut);
	CHECK(jiter_object(&it, val("{\"a\":\"bc")) == 0);
	CHECK(jiter_member(&it, &k, &v) == -1 && it.cut);
	CHECK(jiter_object(&it, val("{} x")) == 0);
	CHECK(jiter_member(&it, &k, &v) == 0 && strcmp(it.p, " x") == 0);
	CHECK(jiter_array(&it, val("{}")) == -1 && jiter_elem(&it, &v) == 0);

	CHECK(hex_digit('0') == 0 && hex_digit('a') == 10 && hex_digit('F') == 15);
	CHECK(hex_digit('g') == -1 && hex_digit('/') == -1 && hex_digit(0xc3) == -1);
}

static void
writing(void)
{
	struct buf b = { 0 };
	static const char want[] =
	    "{\"s\":\"a\\\"\\u0001\xc3\xa9\",\"e\":\"x\\u0041\",\"r\":{\"k\":[1,-2,true,null]},"
	    "\"a\":[],\"o\":{},\"f\":1.50,\"n\":null,\"l\":\"\\ufffd\"}\n{\"next\":0}";

	json_open(&b, '{');
	json_key(&b, "s");
	json_put_str(&b, "a\"\x01\xc3\xa9", 5);
	json_key(&b, "e");
	json_put_escaped(&b, (struct jstr){ "x\\u0041", 7, true });
	json_key(&b, "r");
	json_put_raw(&b, val("{\"k\":[1,-2,true,null]}"));
	json_key(&b, "a");
	json_open(&b, '[');
	json_close(&b, ']');
	json_key(&b, "o");
	json_open(&b, '{');
	json_close(&b, '}');
	json_key(&b, "f");
	json_put_fixed(&b, 1.5, 2);
	json_key(&b, "n");
	json_put_fixed(&b, NAN, 2);
	json_key(&b, "l");
	json_put_str_lossy(&b, "\xff", 1);
	json_close(&b, '}');
	/* A new line is a new value: no comma before it. */
	buf_addc(&b, '\n');
	json_open(&b, '{');
	json_key(&b, "next");
	json_put_uint(&b, 0);
	json_close(&b, '}');
	CHECK(b.len == sizeof(want) - 1 && memcmp(b.p, want, b.len) == 0);
	if (b.len != sizeof(want) - 1 || memcmp(b.p, want, b.len) != 0)
		fprintf(stderr, "wrote %s\n", b.p);

	/* Members of an array, one call each; an object begun elsewhere. */
	buf_reset(&b);
	buf_adds(&b, "{\"tool\":\"t\",\"heartbeat\":1.000");
	json_key(&b, "list");
	json_open(&b, '[');
	json_put_str(&b, "a", 1);
	json_put_int(&b, 2);
	json_put_bool(&b, false);
	json_put_null(&b);
	json_open(&b, '[');
	json_close(&b, ']');
	json_close(&b, ']');
	json_close(&b, '}');
	CHECK(strcmp(b.p, "{\"tool\":\"t\",\"heartbeat\":1.000,\"list\":[\"a\",2,false,null,[]]}") == 0);

	/* The contents alone: no quotes, no comma. */
	buf_reset(&b);
	buf_adds(&b, "x\"");
	json_escape(&b, "\t\\", 2);
	CHECK(strcmp(b.p, "x\"\\t\\\\") == 0);
	buf_free(&b);
}

int
main(void)
{
	reading();
	writing();
	return failed;
}
