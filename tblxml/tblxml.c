/*
 * tblxml: convert Discogs XML dumps (plain or gzip) into the message bodies
 * the Rust Discogs extractor publishes, one compact JSON body per line.
 * Each record's tree is built, written and freed as soon as its end tag is
 * read, so memory is bounded by the largest record.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <expat.h>

#include "buf.h"
#include "cli.h"
#include "envelope.h"
#include "lineio.h"
#include "log.h"
#include "num.h"
#include "util.h"
#include "xrec.h"
#include "zin.h"

#define READ_SIZE	(64 * 1024)	/* XML bytes handed to expat at a time */
#define MAX_NESTING	1000		/* element levels below the root */
#define PARSER_SPARE	(16LL << 20)	/* expat's memory beyond 4 * --max-record */
#define OUT_FLUSH	(256 * 1024)

static const char *usage_text =
    "usage: tblxml [-t type] [--file-complete] [--max-record bytes] [file ...]\n"
    "  -t, --type type        records are <artist>, <label>, <master> or <release>\n"
    "                         elements for artists, labels, masters or releases,\n"
    "                         whatever the root element; without it the root\n"
    "                         element names the type\n"
    "      --file-complete    after each file, write the extractor's file_complete\n"
    "                         control body\n"
    "      --max-record n     longest record, and longest tag, comment or other\n"
    "                         token, accepted in bytes of XML (default 67108864);\n"
    "                         it also bounds the XML parser's memory\n"
    "  -h, --help             show this help\n"
    "  -V, --version          show the version\n"
    "Files may be gzip-compressed; none or '-' reads standard input.\n";

struct options {
	int		 type;		/* --type, or -1 */
	bool		 file_complete;
	long long	 max_record;
};

struct totals {
	unsigned long long records[NTYPES], skipped, files, failed;
	unsigned long long raw_bytes, xml_bytes;
};

/* The state of one file's conversion, shared with the expat handlers. */
struct conv {
	XML_Parser		 p;
	const struct options	*opt;
	const char		*name;		/* for messages */
	int			 type;		/* -1 until the root is read */
	unsigned long		 depth;		/* elements open in the document */
	bool			 in_record;
	bool			 root_seen;
	bool			 add_id;	/* masters, releases: "id" from "@id" */
	XML_Index		 record_start;
	unsigned long long	 records, skipped;
	struct xrec		*rec;
	struct writer		*out;
	char			 err[512];	/* set when the parse was stopped */
	unsigned long		 err_line, err_col;	/* where it did */
};

/*
 * expat's memory, counted: the names it has seen stay in its tables until
 * the end of the document and the tags it holds open keep their buffers,
 * so without a bound a long file of distinct names grows it without end.
 * expat's allocator takes no context, and one file is parsed at a time.
 */
static struct {
	size_t	used, limit;
	bool	hit;		/* an allocation was refused for the limit */
} xmem;

union xmem_head {
	size_t		n;
	max_align_t	align;	/* expat's blocks stay aligned as malloc's */
};

static void *
xmem_malloc(size_t n)
{
	union xmem_head *h;

	if (n > xmem.limit - xmem.used) {
		xmem.hit = true;
		return NULL;
	}
	if ((h = malloc(sizeof(*h) + n)) == NULL)
		return NULL;
	h->n = n;
	xmem.used += n;
	return h + 1;
}

static void *
xmem_realloc(void *p, size_t n)
{
	union xmem_head *h;
	size_t was;

	if (p == NULL)
		return xmem_malloc(n);
	h = (union xmem_head *)p - 1;
	was = h->n;
	if (n > was && n - was > xmem.limit - xmem.used) {
		xmem.hit = true;
		return NULL;
	}
	if ((h = realloc(h, sizeof(*h) + n)) == NULL)
		return NULL;
	h->n = n;
	xmem.used = xmem.used - was + n;
	return h + 1;
}

static void
xmem_free(void *p)
{
	union xmem_head *h;

	if (p == NULL)
		return;
	h = (union xmem_head *)p - 1;
	xmem.used -= h->n;
	free(h);
}

static const XML_Memory_Handling_Suite xmem_suite = {
	xmem_malloc, xmem_realloc, xmem_free
};

/* Stop the parse; the reason goes with expat's position (between two
 * buffers, the start of the token not yet complete). expat may still call
 * handlers after this: they see err set and return. */
static void __attribute__((format(printf, 2, 3)))
stop(struct conv *c, const char *fmt, ...)
{
	va_list ap;

	if (c->err[0] == '\0') {
		c->err_line = XML_GetCurrentLineNumber(c->p);
		c->err_col = XML_GetCurrentColumnNumber(c->p);
		va_start(ap, fmt);
		vsnprintf(c->err, sizeof(c->err), fmt, ap);
		va_end(ap);
	}
	XML_StopParser(c->p, XML_FALSE);
}

/* Is name the record element of type t: "artist" for "artists"...? */
static bool
is_record_name(const char *name, int t)
{
	size_t n = strlen(data_types[t]) - 1;

	return strncmp(name, data_types[t], n) == 0 && name[n] == '\0';
}

/* Refuse a record that has grown past --max-record; more is the length
 * of the current event (expat's index is where the event starts). Returns
 * false when it did. */
static bool
check_size(struct conv *c, long long more)
{
	if (XML_GetCurrentByteIndex(c->p) + more - c->record_start <= c->opt->max_record)
		return true;
	stop(c, "record longer than %lld bytes (see --max-record)",
	    c->opt->max_record);
	return false;
}

static void XMLCALL
on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct conv *c = ud;

	if (c->err[0] != '\0')
		return;
	/* expat keeps every open tag, so nesting is bounded outside records
	 * too; a record's own element is level 1 below the root. */
	if (++c->depth > MAX_NESTING + 1) {
		stop(c, "elements nested more than %d levels deep %s", MAX_NESTING,
		    c->in_record ? "in a record" : "below the root element");
		return;
	}
	if (c->in_record) {
		/* The tag with its attributes counts, not only where it starts. */
		if (check_size(c, XML_GetCurrentByteCount(c->p)))
			xrec_start(c->rec, name, atts);
	} else if (c->depth == 1) {
		c->root_seen = true;
		if (c->type < 0 && (c->type = data_type_index(name, strlen(name))) < 0)
			stop(c, "root element <%s> is not artists, labels, masters or "
			    "releases (use --type)", name);
		c->add_id = c->type >= 0 &&
		    (strcmp(data_types[c->type], "masters") == 0 ||
		    strcmp(data_types[c->type], "releases") == 0);
	} else if (c->depth == 2) {
		if (!is_record_name(name, c->type)) {
			c->skipped++;
			return;
		}
		c->in_record = true;
		c->record_start = XML_GetCurrentByteIndex(c->p);
		xrec_reset(c->rec);
		if (check_size(c, XML_GetCurrentByteCount(c->p)))
			xrec_start(c->rec, name, atts);
	}
}

static void XMLCALL
on_end(void *ud, const XML_Char *name)
{
	struct conv *c = ud;
	bool self_closing;

	(void)name;
	if (c->err[0] != '\0')
		return;
	c->depth--;
	if (!c->in_record || !check_size(c, XML_GetCurrentByteCount(c->p)))
		return;
	xrec_end(c->rec);
	if (xrec_depth(c->rec) > 0)
		return;
	c->in_record = false;
	/* expat reports no bytes for the end of an empty-element tag. */
	self_closing = XML_GetCurrentByteCount(c->p) == 0;
	if (xrec_emit(c->rec, &c->out->b, c->add_id, self_closing))
		c->records++;
	else
		c->skipped++;
	if (w_maybe_flush(c->out) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
}

static void XMLCALL
on_text(void *ud, const XML_Char *s, int len)
{
	struct conv *c = ud;

	if (c->in_record && c->err[0] == '\0') {
		xrec_text(c->rec, s, (size_t)len);
		check_size(c, len);
	}
}

/*
 * Entities and default attributes declared in the document could make a
 * record far larger than its XML (a chain of entities is a gigabyte from a
 * few kilobytes), and Discogs dumps declare none: a DOCTYPE with an internal
 * subset is refused before expat reads the subset. An external DTD is never
 * read (see on_skipped_entity).
 */
static void XMLCALL
on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
    const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	if (has_internal_subset)
		stop(ud, "DOCTYPE with an internal subset: entity and attribute "
		    "declarations are not accepted");
}

static void XMLCALL
on_skipped_entity(void *ud, const XML_Char *name, int is_param)
{
	(void)is_param;
	stop(ud, "entity '%s' is not defined (external DTDs are not read)", name);
}

/* Append the extractor's file_complete body for a finished file. */
static void
put_file_complete(struct buf *b, int type, unsigned long long n, const char *path)
{
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	struct timespec ts;
	struct tm tm;
	char stamp[64];
	size_t k;

	/* chrono's RFC 3339 form: 0, 3, 6 or 9 decimals, as few as exact. */
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	k = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (ts.tv_nsec % 1000000000L == 0)
		snprintf(stamp + k, sizeof(stamp) - k, "Z");
	else if (ts.tv_nsec % 1000000 == 0)
		snprintf(stamp + k, sizeof(stamp) - k, ".%03ldZ", ts.tv_nsec / 1000000);
	else if (ts.tv_nsec % 1000 == 0)
		snprintf(stamp + k, sizeof(stamp) - k, ".%06ldZ", ts.tv_nsec / 1000);
	else
		snprintf(stamp + k, sizeof(stamp) - k, ".%09ldZ", ts.tv_nsec);
	buf_printf(b, "{\"type\":\"file_complete\",\"data_type\":\"%s\","
	    "\"timestamp\":\"%s\",\"total_processed\":%llu,\"file\":",
	    data_types[type], stamp, n);
	buf_json_str_lossy(b, base, strlen(base));
	buf_adds(b, "}\n");
}

static void
log_failure(const struct conv *c, const char *why)
{
	struct logrec *r;
	/* expat's position, as xmlwf prints it: lines from 1, columns from 0. */
	unsigned long line = XML_GetCurrentLineNumber(c->p);
	unsigned long col = XML_GetCurrentColumnNumber(c->p);

	if (c->err[0] != '\0') {
		line = c->err_line;
		col = c->err_col;
	}

	r = log_begin(LOG_ERROR, "❌ %s:%lu:%lu: %s", c->name, line, col, why);
	log_str(r, "file", c->name);
	log_int(r, "line", (long long)line);
	log_int(r, "column", (long long)col);
	log_int(r, "records", (long long)c->records);
	log_end(r);
}

/* expat's reason, with a hint when the input ended too soon. */
static const char *
xml_error(const struct conv *c, bool at_end, char *why, size_t size)
{
	enum XML_Error e = XML_GetErrorCode(c->p);

	if (at_end && (e == XML_ERROR_NO_ELEMENTS || e == XML_ERROR_UNCLOSED_TOKEN ||
	    e == XML_ERROR_PARTIAL_CHAR || e == XML_ERROR_UNCLOSED_CDATA_SECTION))
		snprintf(why, size, "%s (%s)", XML_ErrorString(e),
		    c->root_seen ? "the input ends inside the document: truncated file?" :
		    "the input has no root element: empty file?");
	else
		snprintf(why, size, "%s", XML_ErrorString(e));
	return why;
}

/* expat refused memory: past the limit a data error, else exit 75. */
static const char *
no_memory(struct conv *c)
{
	if (!xmem.hit)
		die(EXIT_TEMPFAIL, "out of memory for the XML parser");
	stop(c, "the XML parser needs more than %zu bytes: too many distinct "
	    "names, or attributes in a tag (see --max-record)", xmem.limit);
	return c->err;
}

/* What the unfinished token at expat's position is, from its first bytes. */
static const char *
token_kind(XML_Parser p)
{
	static const struct {
		const char	*start, *kind;
	} kinds[] = {
		{ "<!--", "comment" }, { "<?", "processing instruction" },
		{ "<!", "declaration" }, { "</", "end tag" }, { "<", "start tag" },
		{ "&", "reference" }, { "\"", "quoted string" }, { "'", "quoted string" },
	};
	const char *b;
	size_t i, k;
	int off, size;

	if ((b = XML_GetInputContext(p, &off, &size)) == NULL)
		return "XML token";
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		k = strlen(kinds[i].start);
		if ((size_t)(size - off) >= k && memcmp(b + off, kinds[i].start, k) == 0)
			return kinds[i].kind;
	}
	return "XML token";
}

/* Read up to n bytes, less only at the end of the input. */
static long
read_full(struct zin *in, char *p, size_t n)
{
	size_t got = 0;
	long k;

	while (got < n) {
		if ((k = zin_read(in, p + got, n - got)) < 0)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (long)got;
}

/*
 * Feed one input to expat. Returns NULL, or why it stopped.
 *
 * expat holds a token (a tag with its attributes, a comment...) until its
 * end has come, and before 2.6 scans it again from its start with every
 * buffer: a token of n bytes fed 64 KB at a time costs n * n / 128 KB. So no
 * token may be longer than --max-record, like a record, and while one is
 * unfinished as many new bytes as it holds are fed at once (only as many as
 * tell whether it is too long): the scans add up to a few times its length.
 */
static const char *
parse_input(struct conv *c, struct zin *in, struct totals *t, char *why,
    size_t size)
{
	long long cap = c->opt->max_record, fed = 0, held = 0, at;
	size_t want;
	void *chunk;
	long n;

	for (;;) {
		want = READ_SIZE;
		if (held > READ_SIZE)
			want = (size_t)(held < cap + 1 - held ? held : cap + 1 - held);
		if (want < READ_SIZE)
			want = READ_SIZE;
		if ((chunk = XML_GetBuffer(c->p, (int)want)) == NULL)
			return no_memory(c);
		n = want > READ_SIZE ? read_full(in, chunk, want) :
		    zin_read(in, chunk, want);
		if (n < 0)
			return in->err;
		t->xml_bytes += (unsigned long long)n;
		if (XML_ParseBuffer(c->p, (int)n, n == 0) != XML_STATUS_OK) {
			if (c->err[0] != '\0')
				return c->err;
			if (XML_GetErrorCode(c->p) == XML_ERROR_NO_MEMORY)
				return no_memory(c);
			return xml_error(c, n == 0, why, size);
		}
		if (n == 0)
			return NULL;
		/* Between buffers expat's position is the unfinished token. */
		fed += n;
		held = (at = XML_GetCurrentByteIndex(c->p)) >= 0 ? fed - at : 0;
		if (held > cap) {
			stop(c, "%s longer than %lld bytes (see --max-record)",
			    token_kind(c->p), cap);
			return c->err;
		}
	}
}

static void
log_converted(const struct conv *c, bool gz)
{
	struct logrec *r;

	r = log_begin(LOG_INFO, "📄 Converted %s", c->name);
	log_str(r, "file", c->name);
	log_str(r, "type", data_types[c->type]);
	log_int(r, "records", (long long)c->records);
	log_int(r, "skipped", (long long)c->skipped);
	log_bool(r, "gzip", gz);
	log_end(r);
}

/* Convert one file ("-" is standard input). Returns 0, or -1 if it failed. */
static int
convert(const char *path, const struct options *opt, struct xrec *rec,
    struct writer *out, struct totals *t)
{
	struct conv c;
	struct zin in;
	struct logrec *r;
	const char *fault;
	char why[256];
	int fd = STDIN_FILENO;

	memset(&c, 0, sizeof(c));
	c.opt = opt;
	c.name = strcmp(path, "-") == 0 ? "stdin" : path;
	c.type = opt->type;
	c.rec = rec;
	c.out = out;
	if (strcmp(path, "-") != 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = log_begin(LOG_ERROR, "❌ %s: %s", path, strerror(errno));
		log_str(r, "file", path);
		log_end(r);
		return -1;
	}
	xmem.limit = (size_t)(4 * opt->max_record + PARSER_SPARE);
	xmem.hit = false;
	if ((c.p = XML_ParserCreate_MM(NULL, &xmem_suite, NULL)) == NULL)
		die(EXIT_TEMPFAIL, "out of memory for the XML parser");
	XML_SetUserData(c.p, &c);
	XML_SetElementHandler(c.p, on_start, on_end);
	XML_SetCharacterDataHandler(c.p, on_text);
	XML_SetStartDoctypeDeclHandler(c.p, on_doctype);
	XML_SetSkippedEntityHandler(c.p, on_skipped_entity);
	fault = zin_open(&in, fd) < 0 ? in.err :
	    parse_input(&c, &in, t, why, sizeof(why));
	if (fault == NULL && opt->file_complete)
		put_file_complete(&out->b, c.type, c.records, path);
	/* Every record before a fault is out before the fault is reported. */
	if (w_flush(out) < 0)
		die(EXIT_TEMPFAIL, "stdout: %s", strerror(errno));
	if (fault != NULL)
		log_failure(&c, fault);
	else
		log_converted(&c, in.gz);
	t->raw_bytes += in.raw_bytes;
	t->skipped += c.skipped;
	if (c.type >= 0)
		t->records[c.type] += c.records;
	zin_close(&in);
	XML_ParserFree(c.p);
	if (fd != STDIN_FILENO)
		close(fd);
	return fault != NULL ? -1 : 0;
}

static void
log_summary(const struct totals *t, double t0)
{
	struct logrec *r;
	struct buf b = { 0 };
	unsigned long long all = 0;
	double secs = now_mono() - t0;
	int i;

	buf_addc(&b, '{');
	for (i = 0; i < NTYPES; i++) {
		buf_printf(&b, "%s\"%s\":%llu", i ? "," : "", data_types[i], t->records[i]);
		all += t->records[i];
	}
	buf_addc(&b, '}');
	r = log_begin(t->failed ? LOG_WARNING : LOG_INFO, "%s Conversion finished",
	    t->failed ? "⚠️" : "✅");
	log_int(r, "files", (long long)t->files);
	log_int(r, "failed_files", (long long)t->failed);
	log_int(r, "records", (long long)all);
	log_json(r, "records_by_type", b.p, b.len);
	log_int(r, "skipped", (long long)t->skipped);
	log_int(r, "bytes_read", (long long)t->raw_bytes);
	log_int(r, "xml_bytes", (long long)t->xml_bytes);
	log_num(r, "duration_s", secs);
	log_num(r, "mb_per_s", (double)t->xml_bytes / 1e6 / (secs + 1e-9));
	log_int(r, "peak_rss_kb", peak_rss_kb());
	log_end(r);
	buf_free(&b);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "file-complete", no_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "max-record", required_argument, NULL, 'M' },
		{ "type", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct options opt = { -1, false, 64LL << 20 };
	struct totals t = { 0 };
	struct xrec rec = { 0 };
	struct writer out;
	char *stdin_only[] = { "-", NULL }, **files;
	double t0;
	int ch;

	log_init("tblxml");
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":hVt:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'F':
			opt.file_complete = true;
			break;
		case 'h':
			print_usage(usage_text);
		case 'M':
			opt.max_record = opt_ll("--max-record", optarg, 1024, 1LL << 30);
			break;
		case 't':
			if ((opt.type = data_type_index(optarg, strlen(optarg))) < 0)
				die(EXIT_USAGE, "option --type: unknown type '%s' (want "
				    "artists, labels, masters or releases)", optarg);
			break;
		case 'V':
			print_version();
		default:
			die_bad_option(ch, argv);
		}
	}
	files = optind < argc ? argv + optind : stdin_only;

	ignore_sigpipe();
	w_init(&out, STDOUT_FILENO, OUT_FLUSH);
	t0 = now_mono();
	for (; *files != NULL; files++) {
		t.files++;
		if (convert(*files, &opt, &rec, &out, &t) < 0)
			t.failed++;
	}
	log_summary(&t, t0);
	xrec_free(&rec);
	w_free(&out);
	return t.failed ? EXIT_DATA : EXIT_OK;
}
