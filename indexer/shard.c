/* SPDX-License-Identifier: MIT */
/*
 * shard.c: the shard store: a wiki's shard set on disk, the documents in
 * it, and the rules every write passes before it reaches Xapian.
 *
 * Role: the pipeline builds a struct shard_doc from analyzer tokens and
 * hands it to shard_replace(); the store turns it into a Xapian document
 * with Omega's prefixes, values and JSON data, fingerprints it, and writes
 * it through the shim unless the rev guard or the no-op check says not to.
 * Writes gather in one open Xapian transaction until shard_commit(), which
 * checks the fencing token and stores it, the commit time and the pending
 * metadata in the same commit, so a crash leaves the shard at its last
 * commit with the stream position that matches it.
 *
 * Invariants:
 *  - sh->pending counts the replacements and deletions in the open
 *    transaction; sh->dirty is true whenever the transaction holds anything
 *    (documents or metadata) that a commit must write.  A commit with
 *    nothing dirty and an unchanged token does not touch the disk.
 *  - Every shard written by this code carries freshet.schema; a shard
 *    without it that holds documents is refused like a version mismatch.
 *  - `current` only ever changes by rename(2) of a complete symlink, so a
 *    reader resolves it to exactly one generation.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <unicode/ucasemap.h>

#include "buf.h"
#include "now.h"
#include "shard.h"
#include "xmalloc.h"

#define META_SCHEMA      "freshet.schema"
#define META_ANALYZER    "freshet.analyzer."
#define META_POSITION    "freshet.position."
#define META_FENCE       "freshet.fence"
#define META_COMMIT_TIME "freshet.commit_time"

#define ERRMSG_MAX 1024

unsigned shard_route(uint64_t page_id, unsigned shards)
{
	return shards ? (unsigned)(page_id % shards) : 0;
}

/* Replaces a NULL from the shim's allocating constructors by an abort, as
 * xmalloc does for the program's own allocations. */
static void *need(void *p)
{
	if (!p) {
		fputs("freshet: out of memory in the Xapian shim\n", stderr);
		abort();
	}
	return p;
}

/* ------------------------------------------------------------- documents */

struct shard_doc {
	uint64_t page_id;
	struct xdoc *x;
	char *title;
	char *display_title;
	char *language;
	char *url;
	char *text;
	size_t text_len;
	int ns;
	uint64_t rev_id;
	int64_t rev_timestamp;
	char **categories;
	size_t ncategories;
	char **redirects;
	size_t nredirects;
	size_t skipped;
	uint64_t length; /* wdf summed: the length Xapian will give it */
	char idterm[32];
	char fingerprint[17];
	uint64_t hash;     /* running hash of every term added, in order */
	uint64_t body_hash; /* hash before doc_finish's terms (set once) */
	bool finished;
};

struct shard_doc *shard_doc_new(uint64_t page_id)
{
	struct shard_doc *d = xcalloc(1, sizeof *d);
	d->page_id = page_id;
	d->x = need(xdoc_new());
	d->hash = 0xcbf29ce484222325ULL; /* FNV-1a's offset basis */
	snprintf(d->idterm, sizeof d->idterm, SHARD_PREFIX_ID "%" PRIu64, page_id);
	if (xdoc_add_term(d->x, NULL, d->idterm, strlen(d->idterm), 0) == STATUS_NOMEM)
		need(NULL);
	return d;
}

void shard_doc_free(struct shard_doc *d)
{
	if (!d)
		return;
	xdoc_free(d->x);
	free(d->title);
	free(d->display_title);
	free(d->language);
	free(d->url);
	free(d->text);
	for (size_t i = 0; i < d->ncategories; i++)
		free(d->categories[i]);
	free(d->categories);
	for (size_t i = 0; i < d->nredirects; i++)
		free(d->redirects[i]);
	free(d->redirects);
	free(d);
}

uint64_t shard_doc_page_id(const struct shard_doc *d)
{
	return d->page_id;
}

/* Folds bytes into h (FNV-1a, 64 bits). */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Folds one term (prefix, bytes, position or a kind tag) into the
 * document's running hash.  The fingerprint is made from this hash rather
 * than by walking Xapian's term list at the end (a second pass over every
 * term of every document): the document builder adds the same terms in the same
 * order for the same content, so the hash is as good for the no-op check. */
static void doc_hash_term(struct shard_doc *d, const char *prefix,
			  const char *term, size_t len, uint64_t pos)
{
	uint64_t h = d->hash;
	if (prefix)
		h = fnv1a(h, prefix, strlen(prefix));
	h = fnv1a(h, "\x1f", 1);
	h = fnv1a(h, term, len);
	h = fnv1a(h, &pos, sizeof pos);
	d->hash = h;
}

/* Counts a refused term, or the wdf of an added one into the document's
 * length; aborts only when the shim ran out of memory. */
static void term_result(struct shard_doc *d, enum status st, unsigned wdf)
{
	if (st == STATUS_NOMEM)
		need(NULL);
	if (st != STATUS_OK)
		d->skipped++;
	else
		d->length += wdf;
}

void shard_doc_add_posting(struct shard_doc *d, const char *prefix,
			   const char *term, size_t len, uint32_t pos)
{
	doc_hash_term(d, prefix, term, len, pos);
	term_result(d, xdoc_add_posting(d->x, prefix, term, len, pos, 1), 1);
}

void shard_doc_add_term(struct shard_doc *d, const char *prefix,
			const char *term, size_t len)
{
	doc_hash_term(d, prefix, term, len, UINT64_MAX);
	term_result(d, xdoc_add_term(d->x, prefix, term, len, 1), 1);
}

void shard_doc_add_boolean(struct shard_doc *d, const char *prefix,
			   const char *term)
{
	doc_hash_term(d, prefix, term, strlen(term), UINT64_MAX - 1);
	term_result(d, xdoc_add_term(d->x, prefix, term, strlen(term), 0), 0);
}

size_t shard_doc_skipped(const struct shard_doc *d)
{
	return d->skipped;
}

uint64_t shard_doc_length(const struct shard_doc *d)
{
	return d->length;
}

static void set_str(char **dst, const char *s)
{
	free(*dst);
	*dst = s ? xstrdup(s) : NULL;
}

/* MediaWiki's db keys use underscores where titles show spaces. */
static char *underscores_to_spaces(const char *s)
{
	char *t = xstrdup(s);
	for (char *p = t; *p; p++)
		if (*p == '_')
			*p = ' ';
	return t;
}

void shard_doc_set_title(struct shard_doc *d, const char *title)
{
	free(d->title);
	d->title = underscores_to_spaces(title);
}

void shard_doc_set_display_title(struct shard_doc *d, const char *display)
{
	set_str(&d->display_title, display);
}

void shard_doc_set_namespace(struct shard_doc *d, int ns)
{
	d->ns = ns;
}

void shard_doc_set_language(struct shard_doc *d, const char *code)
{
	set_str(&d->language, code);
}

void shard_doc_set_url(struct shard_doc *d, const char *url)
{
	set_str(&d->url, url);
}

void shard_doc_set_rev(struct shard_doc *d, uint64_t rev_id, int64_t timestamp)
{
	d->rev_id = rev_id;
	d->rev_timestamp = timestamp;
}

void shard_doc_add_category(struct shard_doc *d, const char *name)
{
	d->categories = xrealloc(d->categories,
				 (d->ncategories + 1) * sizeof *d->categories);
	d->categories[d->ncategories++] = underscores_to_spaces(name);
}

void shard_doc_add_redirect(struct shard_doc *d, uint64_t redirect_page_id,
			    const char *title)
{
	d->redirects = xrealloc(d->redirects,
				(d->nredirects + 1) * sizeof *d->redirects);
	d->redirects[d->nredirects++] = underscores_to_spaces(title);
	char id[32];
	snprintf(id, sizeof id, "%" PRIu64, redirect_page_id);
	shard_doc_add_boolean(d, SHARD_PREFIX_REDIRECT_ID, id);
}

/* Returns the length of the longest prefix of s (at most max bytes) that
 * does not end inside a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	/* Back up over continuation bytes to the start of the last char. */
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

void shard_doc_set_text(struct shard_doc *d, const char *text, size_t len)
{
	free(d->text);
	d->text_len = utf8_cut(text, len, SHARD_TEXT_MAX);
	d->text = xstrndup(text, d->text_len);
	/* An embedded NUL ends the text. */
	d->text_len = strlen(d->text);
}

char *shard_category_term(const char *name)
{
	char *spaced = underscores_to_spaces(name);
	size_t plen = strlen(SHARD_PREFIX_CATEGORY);
	size_t cap = plen + strlen(spaced) * 3 + 1;
	char *out = xmalloc(cap);
	memcpy(out, SHARD_PREFIX_CATEGORY, plen);
	UErrorCode err = U_ZERO_ERROR;
	UCaseMap *cm = ucasemap_open("", 0, &err);
	int32_t n = -1;
	if (U_SUCCESS(err)) {
		n = ucasemap_utf8ToLower(cm, out + plen, (int32_t)(cap - plen),
					 spaced, -1, &err);
		ucasemap_close(cm);
	}
	if (U_FAILURE(err) || n < 0 || (size_t)n >= cap - plen) {
		/* Invalid UTF-8 or ICU trouble: ASCII lowercasing will do. */
		size_t i = 0;
		for (; spaced[i]; i++) {
			char c = spaced[i];
			out[plen + i] = (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
		}
		n = (int32_t)i;
	}
	out[plen + (size_t)n] = '\0';
	free(spaced);
	return out;
}

/* Returns a JSON string of s, replacing invalid UTF-8 by U+FFFD so that the
 * data always parses. */
static json_t *json_text(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	struct buf b = BUF_INIT;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
			 : (c >> 3) == 30 ? 4 : 0;
		json_t *probe = n && i + n <= len ? json_stringn(s + i, n) : NULL;
		if (probe) {
			buf_add(&b, s + i, n);
			json_decref(probe);
			i += n;
		} else {
			buf_adds(&b, "\xEF\xBF\xBD");
			i++;
		}
	}
	j = json_stringn(b.data, b.len);
	buf_release(&b);
	return need(j);
}

static json_t *json_str_or_empty(const char *s)
{
	return json_text(s ? s : "", s ? strlen(s) : 0);
}

/* The words of a text: runs of bytes other than space, tab, CR and LF. */
static uint64_t count_words(const char *t, size_t len)
{
	uint64_t n = 0;
	bool in = false;
	for (size_t i = 0; i < len; i++) {
		bool sp = t[i] == ' ' || t[i] == '\n' || t[i] == '\t' ||
			  t[i] == '\r';
		if (!sp && !in)
			n++;
		in = !sp;
	}
	return n;
}

/* Sets *fields (the small fields' compact JSON, one line) and *data (the
 * fields, "\n", the raw text) of d, both caller frees (doc/shards.md). */
static void doc_data(const struct shard_doc *d, char **fields, char **data,
		     size_t *data_len)
{
	/* The text as valid UTF-8 (invalid bytes become U+FFFD), so that
	 * snippets and their JSON never fail. */
	json_t *text = json_text(d->text ? d->text : "",
				 d->text ? d->text_len : 0);
	const char *tv = json_string_value(text);
	size_t tlen = json_string_length(text);
	json_t *o = need(json_object());
	json_object_set_new(o, "page_id", json_integer((json_int_t)d->page_id));
	json_object_set_new(o, "title", json_str_or_empty(d->title));
	json_object_set_new(o, "display_title",
			    json_str_or_empty(d->display_title ? d->display_title
							       : d->title));
	json_object_set_new(o, "namespace", json_integer(d->ns));
	json_object_set_new(o, "url", json_str_or_empty(d->url));
	json_object_set_new(o, "language", json_str_or_empty(d->language));
	json_object_set_new(o, "rev_id", json_integer((json_int_t)d->rev_id));
	json_object_set_new(o, "rev_timestamp",
			    json_integer((json_int_t)d->rev_timestamp));
	json_t *cats = need(json_array());
	for (size_t i = 0; i < d->ncategories; i++)
		json_array_append_new(cats, json_str_or_empty(d->categories[i]));
	json_object_set_new(o, "categories", cats);
	json_t *rds = need(json_array());
	for (size_t i = 0; i < d->nredirects; i++)
		json_array_append_new(rds, json_str_or_empty(d->redirects[i]));
	json_object_set_new(o, "redirects", rds);
	json_object_set_new(o, "size", json_integer((json_int_t)tlen));
	json_object_set_new(o, "word_count",
			    json_integer((json_int_t)count_words(tv, tlen)));
	/* Compact JSON escapes every control character inside its strings:
	 * the first newline of the data ends the fields. */
	*fields = need(json_dumps(o, JSON_COMPACT));
	json_decref(o);
	struct buf b = BUF_INIT;
	buf_adds(&b, *fields);
	buf_add(&b, "\n", 1);
	buf_add(&b, tv, tlen);
	json_decref(text);
	*data = buf_detach(&b, data_len);
}

enum status shard_data_decode(const char *data, size_t len,
			      struct shard_data *out)
{
	const char *nl = data ? memchr(data, '\n', len) : NULL;
	json_t *f = json_loadb(data ? data : "", nl ? (size_t)(nl - data) : len,
			       0, NULL);
	if (!json_is_object(f)) {
		json_decref(f);
		return STATUS_CORRUPT;
	}
	struct shard_data d = { .fields = f };
	if (nl) {
		d.text = nl + 1;
		d.text_len = len - (size_t)(nl + 1 - data);
	} else {
		/* Schema 2: one JSON object, the text in it. */
		json_t *t = json_object_get(f, "text");
		d.text = json_is_string(t) ? json_string_value(t) : "";
		d.text_len = json_is_string(t) ? json_string_length(t) : 0;
	}
	json_t *size = json_object_get(f, "size"),
	       *words = json_object_get(f, "word_count");
	d.size = json_is_integer(size) ? (uint64_t)json_integer_value(size)
				       : d.text_len;
	d.word_count = json_is_integer(words)
			       ? (uint64_t)json_integer_value(words)
			       : count_words(d.text, d.text_len);
	*out = d;
	return STATUS_OK;
}

void shard_data_release(struct shard_data *d)
{
	json_decref(d->fields);
	memset(d, 0, sizeof *d);
}

/* Turns the fields into boolean terms, values and data and computes the
 * fingerprint.  Idempotent, so a document may be written twice. */
static enum status doc_finish(struct shard_doc *d, char *err)
{
	char tmp[64];
	enum status st;
	char *data = NULL;

	/* A second finish re-adds the same boolean terms: start their part of
	 * the hash from the same point, so the fingerprint does not change. */
	if (d->finished)
		d->hash = d->body_hash;
	d->body_hash = d->hash;
	d->finished = true;
	snprintf(tmp, sizeof tmp, "%d", d->ns);
	shard_doc_add_boolean(d, SHARD_PREFIX_NAMESPACE, tmp);
	if (d->language && *d->language)
		shard_doc_add_boolean(d, SHARD_PREFIX_LANGUAGE, d->language);
	for (size_t i = 0; i < d->ncategories; i++) {
		char *t = shard_category_term(d->categories[i]);
		if (*(t + strlen(SHARD_PREFIX_CATEGORY)))
			shard_doc_add_boolean(d, NULL, t);
		free(t);
	}
	char *fields = NULL;
	size_t data_len = 0;
	doc_data(d, &fields, &data, &data_len);
	st = xdoc_set_value(d->x, SHARD_VALUE_FIELDS, fields, strlen(fields));
	free(fields);
	if (st != STATUS_OK ||
	    (st = xdoc_set_data(d->x, data, data_len)) != STATUS_OK ||
	    (st = xdoc_set_value_number(d->x, SHARD_VALUE_REV,
					(double)d->rev_id)) != STATUS_OK ||
	    (st = xdoc_set_value_number(d->x, SHARD_VALUE_TIMESTAMP,
					(double)d->rev_timestamp)) !=
		    STATUS_OK ||
	    (st = xdoc_set_value_number(d->x, SHARD_VALUE_NAMESPACE,
					(double)d->ns)) != STATUS_OK)
		goto out;
	/* The data holds the fields the values are made from. */
	uint64_t h = fnv1a(d->hash, data, data_len);
	snprintf(d->fingerprint, sizeof d->fingerprint, "%016" PRIx64, h);
	st = xdoc_set_value(d->x, SHARD_VALUE_FINGERPRINT, d->fingerprint, 16);
out:
	if (st != STATUS_OK && err)
		snprintf(err, ERRMSG_MAX, "page %" PRIu64 ": %s", d->page_id,
			 xdoc_errmsg(d->x));
	free(data);
	return st;
}

struct dump_ctx {
	struct buf *b;
};

static int dump_term(void *ctx, const char *term, size_t len, uint32_t wdf,
		     const uint32_t *positions, size_t npos)
{
	struct dump_ctx *c = ctx;
	buf_add(c->b, term, len);
	buf_addf(c->b, " wdf=%" PRIu32, wdf);
	for (size_t i = 0; i < npos; i++)
		buf_addf(c->b, "%s%" PRIu32, i ? "," : " pos=", positions[i]);
	buf_addch(c->b, '\n');
	return 0;
}

char *shard_doc_dump(struct shard_doc *d)
{
	struct buf b = BUF_INIT;
	char err[ERRMSG_MAX];
	if (doc_finish(d, err) != STATUS_OK) {
		buf_addf(&b, "error: %s\n", err);
		return buf_detach(&b, NULL);
	}
	char *data;
	size_t len;
	struct shard_data sd;
	if (xdoc_get_data(d->x, &data, &len) == STATUS_OK) {
		/* The text may span lines: shown as a JSON string. */
		if (shard_data_decode(data, len, &sd) == STATUS_OK) {
			char *f = json_dumps(
				sd.fields, JSON_COMPACT | JSON_PRESERVE_ORDER);
			json_t *t = json_stringn(sd.text, sd.text_len);
			char *ts = t ? json_dumps(t, JSON_ENCODE_ANY) : NULL;
			buf_addf(&b, "data: %s\ntext: %s\n", f ? f : "",
				 ts ? ts : "\"\"");
			free(f);
			free(ts);
			json_decref(t);
			shard_data_release(&sd);
		}
		free(data);
	}
	static const char *const names[] = { "rev_id", "rev_timestamp",
					     "namespace" };
	for (unsigned slot = 0; slot < 3; slot++) {
		double v = 0;
		xdoc_get_value_number(d->x, slot, &v);
		buf_addf(&b, "value %u (%s): %.0f\n", slot, names[slot], v);
	}
	buf_addf(&b, "value %d (fingerprint): %s\n", SHARD_VALUE_FINGERPRINT,
		 d->fingerprint);
	struct dump_ctx c = { &b };
	xdoc_terms(d->x, dump_term, &c);
	return buf_detach(&b, NULL);
}

/* ---------------------------------------------------------------- writer */

struct pending_meta {
	char *key;
	char *value;
};

struct shard {
	struct xdb *db;
	char *path;
	bool open;
	bool in_txn;
	bool dirty;
	size_t pending;
	int64_t since_ms;
	/* Metadata written at the next commit (schema, analyzers), kept
	 * until a commit succeeds. */
	struct pending_meta *meta;
	size_t nmeta;
	char err[ERRMSG_MAX];
};

static enum status shard_fail(struct shard *sh, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum status shard_fail(struct shard *sh, enum status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sh->err, sizeof sh->err, fmt, ap);
	va_end(ap);
	return st;
}

/* Copies the shim's message for a failed call into sh. */
static enum status db_fail(struct shard *sh, enum status st, const char *what)
{
	return shard_fail(sh, st, "%s: %s", what, xdb_errmsg(sh->db));
}

struct shard *shard_new(void)
{
	struct shard *sh = xcalloc(1, sizeof *sh);
	sh->db = need(xdb_new());
	return sh;
}

static void clear_meta(struct shard *sh)
{
	for (size_t i = 0; i < sh->nmeta; i++) {
		free(sh->meta[i].key);
		free(sh->meta[i].value);
	}
	free(sh->meta);
	sh->meta = NULL;
	sh->nmeta = 0;
}

static void add_meta(struct shard *sh, const char *key, const char *value)
{
	sh->meta = xrealloc(sh->meta, (sh->nmeta + 1) * sizeof *sh->meta);
	sh->meta[sh->nmeta].key = xstrdup(key);
	sh->meta[sh->nmeta].value = xstrdup(value);
	sh->nmeta++;
	sh->dirty = true;
}

static const char *find_meta(const struct shard *sh, const char *key)
{
	for (size_t i = 0; i < sh->nmeta; i++)
		if (strcmp(sh->meta[i].key, key) == 0)
			return sh->meta[i].value;
	return NULL;
}

void shard_free(struct shard *sh)
{
	if (!sh)
		return;
	shard_close(sh);
	xdb_free(sh->db);
	free(sh->path);
	free(sh);
}

const char *shard_errmsg(const struct shard *sh)
{
	return sh->err;
}

static void reset_txn_state(struct shard *sh)
{
	sh->in_txn = false;
	sh->dirty = sh->nmeta > 0;
	sh->pending = 0;
	sh->since_ms = 0;
}

enum status shard_open(struct shard *sh, const char *path, unsigned flags)
{
	enum status st;
	sh->err[0] = '\0';
	if (sh->open)
		return shard_fail(sh, STATUS_INVALID, "%s: shard handle already open", path);
	unsigned xf = 0;
	if (flags & SHARD_CREATE)
		xf |= XDB_CREATE;
	if (flags & SHARD_WAIT_LOCK)
		xf |= XDB_WAIT_LOCK;
	st = xdb_open_write(sh->db, path, xf);
	if (st != STATUS_OK)
		return db_fail(sh, st, "cannot open shard for writing");
	free(sh->path);
	sh->path = xstrdup(path);
	sh->open = true;
	clear_meta(sh);
	reset_txn_state(sh);

	char *v = NULL;
	st = xdb_get_metadata(sh->db, META_SCHEMA, &v);
	if (st == STATUS_NOT_FOUND) {
		uint64_t n = 0;
		if ((st = xdb_doc_count(sh->db, &n)) != STATUS_OK)
			goto fail_db;
		if (n > 0) {
			st = shard_fail(sh, STATUS_VERSION,
					"%s: shard holds %" PRIu64 " documents but no "
					"schema version: it was not written by freshet "
					"(or by a version before schemas); rebuild the "
					"wiki into a new generation",
					path, n);
			goto fail;
		}
		char want[16];
		snprintf(want, sizeof want, "%d", SHARD_SCHEMA_VERSION);
		add_meta(sh, META_SCHEMA, want);
		return STATUS_OK;
	}
	if (st != STATUS_OK)
		goto fail_db;
	long have = strtol(v, NULL, 10);
	if (have != SHARD_SCHEMA_VERSION) {
		st = shard_fail(sh, STATUS_VERSION,
				"%s: shard has schema version %s but this freshet "
				"writes schema version %d; rebuild the wiki into a new "
				"generation (reindex-page --all) and swap it in",
				path, v, SHARD_SCHEMA_VERSION);
		free(v);
		goto fail;
	}
	free(v);
	return STATUS_OK;

fail_db:
	db_fail(sh, st, path);
fail:
	xdb_close(sh->db);
	sh->open = false;
	return st;
}

enum status shard_close(struct shard *sh)
{
	if (!sh->open)
		return STATUS_OK;
	sh->open = false;
	clear_meta(sh);
	reset_txn_state(sh);
	/* The open transaction is cancelled: uncommitted writes vanish. */
	enum status st = xdb_close(sh->db);
	if (st != STATUS_OK)
		return db_fail(sh, st, "closing shard");
	return STATUS_OK;
}

static enum status need_open(struct shard *sh, const char *what)
{
	if (!sh->open)
		return shard_fail(sh, STATUS_INVALID, "%s: shard not open", what);
	return STATUS_OK;
}

static enum status ensure_txn(struct shard *sh)
{
	if (sh->in_txn)
		return STATUS_OK;
	enum status st = xdb_begin(sh->db);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	sh->in_txn = true;
	return STATUS_OK;
}

enum status shard_check_analyzer(struct shard *sh, const char *lang,
				 const char *name, const char *version)
{
	enum status st;
	if ((st = need_open(sh, "shard_check_analyzer")) != STATUS_OK)
		return st;
	char *key = xasprintf(META_ANALYZER "%s", lang);
	char *want = xasprintf("%s %s", name, version);
	char *have = NULL;
	const char *pending = find_meta(sh, key);
	if (pending)
		have = xstrdup(pending);
	else
		st = xdb_get_metadata(sh->db, key, &have);
	if (!have && st == STATUS_NOT_FOUND) {
		add_meta(sh, key, want);
		st = STATUS_OK;
	} else if (!have) {
		db_fail(sh, st, sh->path);
	} else if (strcmp(have, want) != 0) {
		st = shard_fail(sh, STATUS_VERSION,
				"%s: language %s was indexed with analyzer \"%s\" but "
				"this freshet runs \"%s\"; incremental writes would mix "
				"tokenisations: rebuild the wiki into a new generation",
				sh->path, lang, have, want);
	} else {
		st = STATUS_OK;
	}
	free(have);
	free(key);
	free(want);
	return st;
}

/* xdb_get() for the page behind unique id term `term`, with a dead
 * (deleted, not yet purged) document treated as absent.  STATUS_OK (caller
 * frees *doc), STATUS_NOT_FOUND, or an error (message in sh). */
static enum status get_live(struct shard *sh, const char *term, struct xdoc **doc)
{
	struct xdoc *d = NULL;
	enum status st = xdb_get(sh->db, term, &d);
	if (st == STATUS_NOT_FOUND)
		return shard_fail(sh, st, "no document with term %s in %s", term, sh->path);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	char *mark = NULL;
	size_t len = 0;
	if ((st = xdoc_get_value(d, SHARD_VALUE_DEAD, &mark, &len)) != STATUS_OK) {
		shard_fail(sh, st, "%s: %s", sh->path, xdoc_errmsg(d));
		xdoc_free(d);
		return st;
	}
	free(mark);
	if (len) {
		xdoc_free(d);
		return shard_fail(sh, STATUS_NOT_FOUND, "%s was deleted from %s", term,
				  sh->path);
	}
	*doc = d;
	return STATUS_OK;
}

static void count_write(struct shard *sh)
{
	if (sh->pending++ == 0)
		sh->since_ms = now_ms();
	sh->dirty = true;
}

enum status shard_replace(struct shard *sh, struct shard_doc *d)
{
	enum status st;
	if ((st = need_open(sh, "shard_replace")) != STATUS_OK)
		return st;
	if ((st = doc_finish(d, sh->err)) != STATUS_OK)
		return st;
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;

	struct xdoc *old = NULL;
	st = get_live(sh, d->idterm, &old);
	if (st == STATUS_OK) {
		double rev = 0;
		char *fp = NULL;
		size_t fplen = 0;
		st = xdoc_get_value_number(old, SHARD_VALUE_REV, &rev);
		if (st == STATUS_OK)
			st = xdoc_get_value(old, SHARD_VALUE_FINGERPRINT, &fp, &fplen);
		if (st != STATUS_OK) {
			shard_fail(sh, st, "%s: page %" PRIu64 ": %s", sh->path,
				   d->page_id, xdoc_errmsg(old));
			xdoc_free(old);
			return st;
		}
		xdoc_free(old);
		bool same = fplen == 16 && memcmp(fp, d->fingerprint, 16) == 0;
		free(fp);
		if ((uint64_t)rev > d->rev_id)
			return shard_fail(sh, STATUS_SKIPPED,
					  "page %" PRIu64 ": stored rev %.0f is newer "
					  "than rev %" PRIu64, d->page_id, rev, d->rev_id);
		if (same)
			return shard_fail(sh, STATUS_NOOP,
					  "page %" PRIu64 " rev %" PRIu64
					  ": identical document stored", d->page_id,
					  d->rev_id);
	} else if (st != STATUS_NOT_FOUND) {
		return st;
	}
	/* A deleted (dead) document is replaced whole: the new one has no
	 * dead mark, so the page is back. */
	st = xdb_replace(sh->db, d->idterm, d->x);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	count_write(sh);
	return STATUS_OK;
}

enum status shard_delete(struct shard *sh, uint64_t page_id)
{
	enum status st;
	if ((st = need_open(sh, "shard_delete")) != STATUS_OK)
		return st;
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;
	char term[32];
	snprintf(term, sizeof term, SHARD_PREFIX_ID "%" PRIu64, page_id);
	struct xdoc *doc = NULL;
	st = get_live(sh, term, &doc);
	if (st == STATUS_NOT_FOUND)
		return shard_fail(sh, STATUS_NOOP, "page %" PRIu64 " is not in %s",
				  page_id, sh->path);
	if (st != STATUS_OK)
		return st;
	/* Mark, do not delete: the document read from the database keeps its
	 * terms, so Xapian rewrites only its values (a few blocks) instead of
	 * every posting and position list the page touches (thousands).  The
	 * purge deletes it for real later (shard_purge). */
	char when[32];
	int n = snprintf(when, sizeof when, "%lld", (long long)time(NULL));
	st = xdoc_set_value(doc, SHARD_VALUE_DEAD, when, (size_t)n);
	if (st == STATUS_OK)
		st = xdb_replace(sh->db, term, doc);
	xdoc_free(doc);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	count_write(sh);
	return STATUS_OK;
}

enum status shard_erase(struct shard *sh, uint64_t page_id)
{
	enum status st;
	if ((st = need_open(sh, "shard_erase")) != STATUS_OK)
		return st;
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;
	char term[32];
	snprintf(term, sizeof term, SHARD_PREFIX_ID "%" PRIu64, page_id);
	st = xdb_delete(sh->db, term);
	if (st == STATUS_NOT_FOUND)
		return shard_fail(sh, STATUS_NOOP,
				  "page %" PRIu64 " is not in %s", page_id,
				  sh->path);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	count_write(sh);
	return STATUS_OK;
}

enum status shard_get_rev(struct shard *sh, uint64_t page_id, uint64_t *rev_id)
{
	enum status st;
	if ((st = need_open(sh, "shard_get_rev")) != STATUS_OK)
		return st;
	char term[32];
	snprintf(term, sizeof term, SHARD_PREFIX_ID "%" PRIu64, page_id);
	struct xdoc *old = NULL;
	if ((st = get_live(sh, term, &old)) != STATUS_OK)
		return st;
	double rev = 0;
	st = xdoc_get_value_number(old, SHARD_VALUE_REV, &rev);
	if (st != STATUS_OK)
		shard_fail(sh, st, "%s: %s", sh->path, xdoc_errmsg(old));
	else
		*rev_id = (uint64_t)rev;
	xdoc_free(old);
	return st;
}

enum status shard_dead_count(struct shard *sh, uint64_t *count)
{
	enum status st;
	if ((st = need_open(sh, "shard_dead_count")) != STATUS_OK)
		return st;
	if ((st = xdb_value_freq(sh->db, SHARD_VALUE_DEAD, count)) != STATUS_OK)
		return db_fail(sh, st, sh->path);
	return STATUS_OK;
}

enum status shard_purge(struct shard *sh, size_t max, size_t *purged)
{
	enum status st;
	*purged = 0;
	if ((st = need_open(sh, "shard_purge")) != STATUS_OK)
		return st;
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;
	if ((st = xdb_purge_value(sh->db, SHARD_VALUE_DEAD, max, purged)) != STATUS_OK)
		return db_fail(sh, st, sh->path);
	if (*purged)
		sh->dirty = true;
	return STATUS_OK;
}

enum status shard_set_position(struct shard *sh, const char *partition,
			       const char *stream_id)
{
	enum status st;
	if ((st = need_open(sh, "shard_set_position")) != STATUS_OK)
		return st;
	if (!*stream_id)
		return shard_fail(sh, STATUS_INVALID, "empty stream id for %s", partition);
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;
	char *key = xasprintf(META_POSITION "%s", partition);
	st = xdb_set_metadata(sh->db, key, stream_id);
	free(key);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	sh->dirty = true;
	return STATUS_OK;
}

enum status shard_get_position(struct shard *sh, const char *partition,
			       char **stream_id)
{
	enum status st;
	if ((st = need_open(sh, "shard_get_position")) != STATUS_OK)
		return st;
	char *key = xasprintf(META_POSITION "%s", partition);
	st = xdb_get_metadata(sh->db, key, stream_id);
	free(key);
	if (st != STATUS_OK)
		return db_fail(sh, st, sh->path);
	return STATUS_OK;
}

static enum status read_u64_meta(struct xdb *db, const char *key, uint64_t *v)
{
	char *s = NULL;
	enum status st = xdb_get_metadata(db, key, &s);
	if (st == STATUS_NOT_FOUND) {
		*v = 0;
		return STATUS_OK;
	}
	if (st != STATUS_OK)
		return st;
	*v = strtoull(s, NULL, 10);
	free(s);
	return STATUS_OK;
}

enum status shard_get_fence(struct shard *sh, uint64_t *token)
{
	enum status st;
	if ((st = need_open(sh, "shard_get_fence")) != STATUS_OK)
		return st;
	if ((st = read_u64_meta(sh->db, META_FENCE, token)) != STATUS_OK)
		return db_fail(sh, st, sh->path);
	return STATUS_OK;
}

/* Drops everything in the open transaction. */
static void discard(struct shard *sh)
{
	if (sh->in_txn)
		xdb_cancel(sh->db);
	reset_txn_state(sh);
}

enum status shard_commit(struct shard *sh, uint64_t token)
{
	enum status st;
	if ((st = need_open(sh, "shard_commit")) != STATUS_OK)
		return st;
	uint64_t stored = 0;
	if ((st = read_u64_meta(sh->db, META_FENCE, &stored)) != STATUS_OK) {
		db_fail(sh, st, sh->path);
		discard(sh);
		return st;
	}
	if (token < stored) {
		size_t lost = sh->pending;
		discard(sh);
		return shard_fail(sh, STATUS_FENCED,
				  "%s: commit refused: fencing token %" PRIu64
				  " is older than the shard's token %" PRIu64
				  " (another worker took this partition); %zu "
				  "pending writes discarded",
				  sh->path, token, stored, lost);
	}
	if (!sh->dirty && token == stored)
		return STATUS_OK;
	if ((st = ensure_txn(sh)) != STATUS_OK)
		return st;
	char num[32];
	for (size_t i = 0; i < sh->nmeta; i++)
		if ((st = xdb_set_metadata(sh->db, sh->meta[i].key,
					   sh->meta[i].value)) != STATUS_OK)
			goto fail;
	snprintf(num, sizeof num, "%" PRIu64, token);
	if ((st = xdb_set_metadata(sh->db, META_FENCE, num)) != STATUS_OK)
		goto fail;
	snprintf(num, sizeof num, "%lld", (long long)time(NULL));
	if ((st = xdb_set_metadata(sh->db, META_COMMIT_TIME, num)) != STATUS_OK)
		goto fail;
	sh->in_txn = false; /* xdb_commit ends the transaction either way */
	if ((st = xdb_commit(sh->db)) != STATUS_OK)
		goto fail;
	clear_meta(sh);
	reset_txn_state(sh);
	return STATUS_OK;
fail:
	db_fail(sh, st, sh->path);
	discard(sh);
	return st;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw);

/* Removes the directory tree at path; a missing one is no error. */
static bool rm_tree(const char *path)
{
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ||
	       errno == ENOENT;
}

enum status shard_compact(struct shard *sh)
{
	enum status st;
	if ((st = need_open(sh, "shard_compact")) != STATUS_OK)
		return st;
	if (sh->dirty || sh->pending)
		return shard_fail(sh, STATUS_INVALID,
				  "%s: compaction with writes pending",
				  sh->path);
	char *tmp = xasprintf("%s.compact", sh->path);
	/* A copy left by a compaction that died half way. */
	rm_tree(tmp);
	if ((st = xdb_compact(sh->db, tmp)) != STATUS_OK) {
		db_fail(sh, st, sh->path);
		rm_tree(tmp);
		free(tmp);
		return st;
	}
	/* One step: a reader opening the shard finds the old database or the
	 * copy, never nothing. */
	int rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, sh->path, RENAME_EXCHANGE);
	if (rc != 0) {
		st = shard_fail(sh, STATUS_IO, "exchanging %s and %s: %s", tmp,
				sh->path, strerror(errno));
		rm_tree(tmp);
		free(tmp);
		return st;
	}
	/* The writer still holds the old files (now at tmp) and their lock:
	 * close it before removing them, then open the copy. */
	char *path = xstrdup(sh->path);
	shard_close(sh);
	st = shard_open(sh, path, SHARD_WAIT_LOCK);
	free(path);
	if (st == STATUS_OK && !rm_tree(tmp))
		st = shard_fail(sh, STATUS_IO, "removing %s: %s", tmp,
				strerror(errno));
	free(tmp);
	return st;
}

size_t shard_pending(const struct shard *sh, int64_t *since_ms)
{
	if (since_ms)
		*since_ms = sh->pending ? sh->since_ms : 0;
	return sh->pending;
}

enum status shard_doc_count(struct shard *sh, uint64_t *count)
{
	enum status st;
	if ((st = need_open(sh, "shard_doc_count")) != STATUS_OK)
		return st;
	uint64_t all = 0, dead = 0;
	if ((st = xdb_doc_count(sh->db, &all)) != STATUS_OK ||
	    (st = xdb_value_freq(sh->db, SHARD_VALUE_DEAD, &dead)) != STATUS_OK)
		return db_fail(sh, st, sh->path);
	*count = all - dead;
	return STATUS_OK;
}

struct xdb *shard_xdb(struct shard *sh)
{
	return sh->db;
}

/* ------------------------------------------------- a wiki's set of shards */

struct shard_set {
	char *data_dir;
	char *wiki;
	char *wikidir;
	struct xdb *db;       /* combined reader, NULL when closed */
	char *generation;     /* of the open reader */
	unsigned shards;
	unsigned expect;      /* shard_set_allow_missing(): 0 = all or nothing */
	unsigned failed;      /* shards of the generation not in db */
	unsigned n_open;      /* shards in db ... */
	unsigned *open_idx;   /* ... and their numbers, in db's order */
	uint64_t opens;       /* reader (re)opens, for shard_set_opens() */
	char **remotes;       /* shard_set_remote(): "host:port" per shard */
	unsigned n_remotes;
	unsigned remote_timeout_ms;
	bool replicas;        /* shard_set_use_replicas() */
	char *sources;        /* the paths the reader opened, one per line */
	char err[ERRMSG_MAX];
};

static enum status set_fail(struct shard_set *set, enum status st,
			    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum status set_fail(struct shard_set *set, enum status st,
			    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(set->err, sizeof set->err, fmt, ap);
	va_end(ap);
	return st;
}

struct shard_set *shard_set_new(const char *data_dir, const char *wiki)
{
	struct shard_set *set = xcalloc(1, sizeof *set);
	set->data_dir = xstrdup(data_dir);
	set->wiki = xstrdup(wiki);
	set->wikidir = xasprintf("%s/%s", data_dir, wiki);
	return set;
}

static void reader_close(struct shard_set *set)
{
	xdb_free(set->db);
	set->db = NULL;
	free(set->generation);
	set->generation = NULL;
	set->shards = 0;
	set->failed = 0;
	set->n_open = 0;
	free(set->open_idx);
	set->open_idx = NULL;
	free(set->sources);
	set->sources = NULL;
}

void shard_set_free(struct shard_set *set)
{
	if (!set)
		return;
	reader_close(set);
	for (unsigned i = 0; i < set->n_remotes; i++)
		free(set->remotes[i]);
	free(set->remotes);
	free(set->data_dir);
	free(set->wiki);
	free(set->wikidir);
	free(set);
}

const char *shard_set_errmsg(const struct shard_set *set)
{
	return set->err;
}

char *shard_set_path(const struct shard_set *set, const char *generation,
		     unsigned n)
{
	const char *g = generation ? generation : "current";
	if (n == SHARD_SET_DIR)
		return xasprintf("%s/%s", set->wikidir, g);
	return xasprintf("%s/%s/shard-%u", set->wikidir, g, n);
}

char *shard_generation_name(void)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	return xasprintf("g%s.%09ldZ", stamp, ts.tv_nsec);
}

/* A generation name must be one plain path component. */
static bool valid_generation(const char *g)
{
	return g && *g && strcmp(g, ".") && strcmp(g, "..") &&
	       strcmp(g, "current") && !strchr(g, '/') && g[0] != '.';
}

enum status shard_set_current(struct shard_set *set, char **generation)
{
	char *link = xasprintf("%s/current", set->wikidir);
	char target[PATH_MAX];
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0) {
		int e = errno;
		enum status st = set_fail(set, e == ENOENT ? STATUS_NOT_FOUND : STATUS_IO,
					  "%s: %s", link, strerror(e));
		free(link);
		return st;
	}
	free(link);
	target[n] = '\0';
	*generation = xstrdup(target);
	return STATUS_OK;
}

enum status shard_set_count(struct shard_set *set, const char *generation,
			    unsigned *shards)
{
	char *gen = NULL;
	enum status st;
	if (!generation) {
		if ((st = shard_set_current(set, &gen)) != STATUS_OK)
			return st;
		generation = gen;
	}
	unsigned n = 0;
	for (;; n++) {
		char *p = shard_set_path(set, generation, n);
		struct stat sb;
		int r = stat(p, &sb);
		free(p);
		if (r != 0 || !S_ISDIR(sb.st_mode))
			break;
	}
	if (n == 0)
		st = set_fail(set, STATUS_NOT_FOUND, "%s/%s: no shard-0", set->wikidir,
			      generation);
	else
		*shards = n;
	free(gen);
	return n ? STATUS_OK : st;
}

void shard_private_umask(void)
{
	mode_t old = umask(027);
	umask(old | 027);
}

static enum status mkdir_p(struct shard_set *set, const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, 0750) != 0 && errno != EEXIST) {
				enum status st = set_fail(set, STATUS_IO, "mkdir %s: %s",
							  p, strerror(errno));
				free(p);
				return st;
			}
			*s = c;
			if (!c)
				break;
		}
	}
	free(p);
	return STATUS_OK;
}

static void fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

enum status shard_set_create(struct shard_set *set, const char *generation,
			     unsigned shards)
{
	enum status st;
	if (!valid_generation(generation))
		return set_fail(set, STATUS_INVALID, "bad generation name \"%s\"",
				generation ? generation : "");
	if (shards == 0)
		return set_fail(set, STATUS_INVALID, "a generation needs at least one shard");
	if ((st = mkdir_p(set, set->wikidir)) != STATUS_OK)
		return st;
	char *dir = shard_set_path(set, generation, SHARD_SET_DIR);
	if (mkdir(dir, 0750) != 0) {
		st = set_fail(set, errno == EEXIST ? STATUS_INVALID : STATUS_IO,
			      "mkdir %s: %s", dir, strerror(errno));
		free(dir);
		return st;
	}
	struct shard *sh = shard_new();
	st = STATUS_OK;
	for (unsigned i = 0; i < shards && st == STATUS_OK; i++) {
		char *p = shard_set_path(set, generation, i);
		st = shard_open(sh, p, SHARD_CREATE);
		if (st == STATUS_OK)
			st = shard_commit(sh, 0);
		if (st != STATUS_OK)
			set_fail(set, st, "%s", shard_errmsg(sh));
		shard_close(sh);
		free(p);
	}
	shard_free(sh);
	fsync_dir(dir);
	free(dir);
	return st;
}

enum status shard_set_swap(struct shard_set *set, const char *generation)
{
	enum status st;
	unsigned n;
	if (!valid_generation(generation))
		return set_fail(set, STATUS_INVALID, "bad generation name \"%s\"",
				generation ? generation : "");
	if ((st = shard_set_count(set, generation, &n)) != STATUS_OK)
		return st;
	char *tmp = xasprintf("%s/.current.%ld.tmp", set->wikidir, (long)getpid());
	char *cur = xasprintf("%s/current", set->wikidir);
	unlink(tmp);
	/* A relative target keeps the data dir movable. */
	if (symlink(generation, tmp) != 0) {
		st = set_fail(set, STATUS_IO, "symlink %s: %s", tmp, strerror(errno));
	} else if (rename(tmp, cur) != 0) {
		st = set_fail(set, STATUS_IO, "rename %s to %s: %s", tmp, cur,
			      strerror(errno));
		unlink(tmp);
	} else {
		fsync_dir(set->wikidir);
		st = STATUS_OK;
	}
	free(tmp);
	free(cur);
	return st;
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path) != 0 ? -1 : 0;
}

enum status shard_set_remove(struct shard_set *set, const char *generation)
{
	if (!valid_generation(generation))
		return set_fail(set, STATUS_INVALID, "bad generation name \"%s\"",
				generation ? generation : "");
	char *cur = NULL;
	if (shard_set_current(set, &cur) == STATUS_OK && strcmp(cur, generation) == 0) {
		free(cur);
		return set_fail(set, STATUS_INVALID,
				"%s: generation %s is current; swap first",
				set->wikidir, generation);
	}
	free(cur);
	char *dir = shard_set_path(set, generation, SHARD_SET_DIR);
	enum status st = STATUS_OK;
	if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		st = set_fail(set, errno == ENOENT ? STATUS_NOT_FOUND : STATUS_IO,
			      "removing %s: %s", dir, strerror(errno));
	free(dir);
	return st;
}

/* Opens generation gen (all its shards) as set->db.  With
 * shard_set_allow_missing(), a shard that cannot be opened (or is missing
 * below the expected count) is left out and counted in set->failed, its
 * message kept in set->err; only when none opens does this fail. */
/* Opens shard i of a remote set into db, first (open) or added. */
static enum status open_remote(struct shard_set *set, struct xdb *db, unsigned i, bool first)
{
	const char *addr = set->remotes[i];
	const char *colon = strrchr(addr, ':');
	char host[256];
	size_t hl = colon ? (size_t)(colon - addr) : 0;
	if (!colon || hl == 0 || hl >= sizeof host)
		return STATUS_INVALID;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	unsigned port = (unsigned)strtoul(colon + 1, NULL, 10);
	unsigned t = set->remote_timeout_ms;
	return first ? xdb_open_remote(db, host, port, t, t) : xdb_add_remote(db, host, port, t, t);
}

/* The path the reader opens for shard i of generation gen: with
 * shard_set_use_replicas(), the live slot of the shard's replica when the
 * host has one, else the generation's own shard.  Caller frees. */
static char *reader_source(struct shard_set *set, const char *gen, unsigned i)
{
	char *live = NULL;
	if (set->replicas && shard_set_replica_live(set, i, &live) == STATUS_OK)
		return live;
	return shard_set_path(set, gen, i);
}

/* True when some shard would now be opened from another path than the
 * open reader's (a replica appeared, went, or switched to its other slot
 * after a full copy): only a new Database object sees that. */
static bool reader_sources_moved(struct shard_set *set)
{
	if (!set->replicas || !set->sources)
		return false;
	struct buf now;
	buf_init(&now);
	for (unsigned i = 0; i < set->shards; i++) {
		char *p = reader_source(set, set->generation, i);
		buf_adds(&now, p);
		buf_addch(&now, '\n');
		free(p);
	}
	bool moved = strcmp(now.data, set->sources) != 0;
	buf_release(&now);
	return moved;
}

static enum status reader_open_gen(struct shard_set *set, const char *gen)
{
	unsigned n = 0;
	enum status st = set->n_remotes ? (n = set->n_remotes, STATUS_OK)
		: shard_set_count(set, gen, &n);
	if (st != STATUS_OK && !set->expect)
		return st;
	if (n < set->expect)
		n = set->expect;
	struct xdb *db = need(xdb_new());
	unsigned *idx = xcalloc(n, sizeof *idx);
	struct buf sources;
	buf_init(&sources);
	unsigned opened = 0, failed = 0;
	char first_err[ERRMSG_MAX] = "";
	enum status first_st = STATUS_OK;
	for (unsigned i = 0; i < n; i++) {
		if (set->n_remotes) {
			st = i < set->n_remotes ? open_remote(set, db, i, opened == 0)
				: STATUS_NOT_FOUND;
		} else {
			char *p = reader_source(set, gen, i);
			buf_adds(&sources, p);
			buf_addch(&sources, '\n');
			st = opened == 0 ? xdb_open_read(db, p) : xdb_add_read(db, p);
			free(p);
		}
		if (st == STATUS_OK) {
			idx[opened++] = i;
			continue;
		}
		if (!failed++) {
			first_st = st;
			snprintf(first_err, sizeof first_err, "%s", xdb_errmsg(db));
		}
		if (!set->expect)
			break;
	}
	if (failed && (!set->expect || opened == 0)) {
		set_fail(set, first_st, "%s", first_err);
		xdb_free(db);
		free(idx);
		buf_release(&sources);
		return first_st;
	}
	reader_close(set);
	set->sources = buf_detach(&sources, NULL);
	set->db = db;
	set->generation = xstrdup(gen);
	set->shards = n;
	set->failed = failed;
	set->n_open = opened;
	set->open_idx = idx;
	set->opens++;
	if (failed)
		set_fail(set, first_st, "%s", first_err);
	return STATUS_OK;
}

void shard_set_remote(struct shard_set *set, const char *const *addrs, unsigned n,
		      unsigned timeout_ms)
{
	set->remotes = xcalloc(n ? n : 1, sizeof *set->remotes);
	for (unsigned i = 0; i < n; i++)
		set->remotes[i] = xstrdup(addrs[i]);
	set->n_remotes = n;
	set->remote_timeout_ms = timeout_ms;
}

void shard_set_allow_missing(struct shard_set *set, unsigned shards)
{
	set->expect = shards ? shards : 1;
}

void shard_set_use_replicas(struct shard_set *set)
{
	set->replicas = true;
}

char *shard_set_replica_dir(const struct shard_set *set, unsigned n)
{
	if (n == SHARD_SET_DIR)
		return xasprintf("%s/replica", set->wikidir);
	return xasprintf("%s/replica/shard-%u", set->wikidir, n);
}

/* Sets *slot (caller frees) to the live slot named by the stub XAPIANDB in
 * dir ("auto replica_1" gives "replica_1"). */
static enum status replica_slot(const char *dir, char **slot)
{
	char *stub = xasprintf("%s/XAPIANDB", dir);
	FILE *f = fopen(stub, "r");
	free(stub);
	if (!f)
		return errno == ENOENT || errno == ENOTDIR ? STATUS_NOT_FOUND : STATUS_IO;
	char line[512];
	enum status st = STATUS_NOT_FOUND;
	while (st == STATUS_NOT_FOUND && fgets(line, sizeof line, f)) {
		if (strncmp(line, "auto ", 5) != 0)
			continue;
		char *v = line + 5;
		v[strcspn(v, "\r\n")] = '\0';
		/* xapian-replicate writes a slot name beside the stub. */
		if (*v && !strchr(v, '/') && strcmp(v, ".") != 0 && strcmp(v, "..") != 0) {
			*slot = xstrdup(v);
			st = STATUS_OK;
		} else {
			st = STATUS_CORRUPT;
		}
	}
	fclose(f);
	return st;
}

enum status shard_set_replica_live(const struct shard_set *set, unsigned n, char **live)
{
	char *dir = shard_set_replica_dir(set, n);
	char *slot = NULL;
	enum status st = replica_slot(dir, &slot);
	if (st == STATUS_OK)
		*live = xasprintf("%s/%s", dir, slot);
	free(slot);
	free(dir);
	return st;
}

enum status shard_set_promote(struct shard_set *set, unsigned n)
{
	char *dir = shard_set_replica_dir(set, n);
	char *aside = xasprintf("%s/replica/.promote-%u", set->wikidir, n);
	char *slot = NULL, *gen = NULL, *live = NULL, *target = NULL;
	enum status st = replica_slot(dir, &slot);
	if (st != STATUS_OK) {
		set_fail(set, st, "%s: no replica to promote (no XAPIANDB stub)", dir);
		goto out;
	}
	if ((st = shard_set_current(set, &gen)) != STATUS_OK)
		goto out;
	/* Readers fall back to the local shard once the replica's directory
	 * has gone aside; the exchange below then puts the replica's copy
	 * there in one step. */
	rm_tree(aside);
	if (rename(dir, aside) != 0) {
		st = set_fail(set, STATUS_IO, "moving %s aside: %s", dir, strerror(errno));
		goto out;
	}
	live = xasprintf("%s/%s", aside, slot);
	target = shard_set_path(set, gen, n);
	int rc = renameat2(AT_FDCWD, live, AT_FDCWD, target, RENAME_EXCHANGE);
	if (rc != 0 && errno == ENOENT)
		rc = rename(live, target);
	if (rc != 0) {
		st = set_fail(set, STATUS_IO, "moving %s to %s: %s", live, target,
			      strerror(errno));
		goto out;
	}
	/* What is left aside is the other slot, the stub and the local shard
	 * the replica's copy replaced. */
	if (!rm_tree(aside))
		st = set_fail(set, STATUS_IO, "removing %s: %s", aside, strerror(errno));
out:
	free(dir);
	free(aside);
	free(slot);
	free(gen);
	free(live);
	free(target);
	return st;
}

unsigned shard_set_failed(const struct shard_set *set)
{
	return set->failed;
}

uint64_t shard_set_opens(const struct shard_set *set)
{
	return set->opens;
}

enum status shard_set_open(struct shard_set *set)
{
	enum status st = STATUS_NOT_FOUND;
	if (set->n_remotes)
		return reader_open_gen(set, "remote");
	/* A swap and removal of the old generation can land between reading
	 * `current` and opening its shards: read the link again and retry. */
	for (int attempt = 0; attempt < 5; attempt++) {
		char *gen = NULL;
		if ((st = shard_set_current(set, &gen)) != STATUS_OK)
			return st;
		st = reader_open_gen(set, gen);
		char *again = NULL;
		bool moved = shard_set_current(set, &again) == STATUS_OK &&
			     strcmp(again, gen) != 0;
		free(again);
		free(gen);
		if (st == STATUS_OK || !moved)
			return st;
	}
	return st;
}

struct xdb *shard_set_db(struct shard_set *set)
{
	return set->db;
}

unsigned shard_set_shards(const struct shard_set *set)
{
	return set->shards;
}

const char *shard_set_generation(const struct shard_set *set)
{
	return set->generation;
}

enum status shard_set_reopen(struct shard_set *set)
{
	if (!set->db || (set->n_remotes && set->failed))
		return shard_set_open(set);
	if (set->n_remotes) {
		enum status st = xdb_reopen(set->db);
		return st == STATUS_OK ? st : set_fail(set, st, "%s", xdb_errmsg(set->db));
	}
	char *gen = NULL;
	enum status st = shard_set_current(set, &gen);
	if (st != STATUS_OK)
		return st;
	/* A new generation, shards left out last time, or a replica's new
	 * copy: open afresh. */
	if (strcmp(gen, set->generation) != 0 || set->failed ||
	    reader_sources_moved(set)) {
		free(gen);
		return shard_set_open(set);
	}
	free(gen);
	if ((st = xdb_reopen(set->db)) != STATUS_OK)
		return set_fail(set, st, "%s", xdb_errmsg(set->db));
	return STATUS_OK;
}

enum status shard_set_search(struct shard_set *set, const struct xquery *q,
			     unsigned offset, unsigned count, struct xmset **mset)
{
	return shard_set_search_opts(set, q, offset, count, NULL, mset);
}

enum status shard_set_search_opts(struct shard_set *set, const struct xquery *q,
				  unsigned offset, unsigned count,
				  const struct xsearch_opts *opts,
				  struct xmset **mset)
{
	if (!set->db)
		return set_fail(set, STATUS_INVALID, "%s: shard set not open", set->wikidir);
	/* Deleted pages wait for the purge as dead documents: never show them. */
	struct xquery *dead = need(xquery_value_ge(SHARD_VALUE_DEAD, "0", 1));
	struct xquery *live = need(xquery_combine(XQUERY_AND_NOT, q, dead));
	xquery_free(dead);
	enum status st = xdb_search_opts(set->db, live, offset, count, opts, mset);
	/* A remote that died since the open fails the whole combined search:
	 * open afresh, which leaves it out, and answer from the others. */
	if (st == STATUS_TRANSIENT && set->n_remotes && set->expect) {
		set->opens++;
		if ((st = shard_set_open(set)) == STATUS_OK)
			st = xdb_search_opts(set->db, live, offset, count, opts, mset);
		else {
			xquery_free(live);
			return st;
		}
	}
	if (st == STATUS_MODIFIED) {
		set->opens++;
		if ((st = shard_set_reopen(set)) == STATUS_OK)
			st = xdb_search_opts(set->db, live, offset, count, opts,
					     mset);
		else {
			xquery_free(live);
			return st;
		}
	}
	xquery_free(live);
	if (st != STATUS_OK)
		return set_fail(set, st, "%s", xdb_errmsg(set->db));
	return STATUS_OK;
}

/* The query for the live documents that hold redirect_page_id. */
static struct xquery *holders_query(uint64_t redirect_page_id)
{
	char term[48];
	int len = snprintf(term, sizeof term, SHARD_PREFIX_REDIRECT_ID "%" PRIu64,
			   redirect_page_id);
	struct xquery *q = need(xquery_term(term, (size_t)len, 1));
	struct xquery *dead = need(xquery_value_ge(SHARD_VALUE_DEAD, "0", 1));
	struct xquery *live = need(xquery_combine(XQUERY_AND_NOT, q, dead));
	xquery_free(q);
	xquery_free(dead);
	return live;
}

/* A redirect has one target: more than a few holders only while
 * retargets are in flight. */
#define HOLDERS_MAX 100

/* Takes the holders out of ms (freed) into *holders and *n. */
static void holders_take(struct xmset *ms, struct shard_redirect_holder **holders,
			 size_t *n)
{
	size_t cnt = xmset_size(ms);
	struct shard_redirect_holder *v = cnt ? xcalloc(cnt, sizeof *v) : NULL;
	size_t k = 0;
	for (size_t i = 0; i < cnt; i++) {
		struct xmset_hit h;
		if (xmset_hit(ms, i, &h) != STATUS_OK)
			continue;
		struct shard_data sd;
		if (shard_data_decode(h.data, h.data_len, &sd) != STATUS_OK)
			continue;
		json_int_t id = json_integer_value(
			json_object_get(sd.fields, "page_id"));
		json_int_t ns = json_integer_value(
			json_object_get(sd.fields, "namespace"));
		shard_data_release(&sd);
		if (id > 0) {
			v[k].page_id = (uint64_t)id;
			v[k++].ns = (int)ns;
		}
	}
	xmset_free(ms);
	if (!k) {
		free(v);
		v = NULL;
	}
	*holders = v;
	*n = k;
}

enum status shard_set_redirect_holders(struct shard_set *set,
				       uint64_t redirect_page_id,
				       struct shard_redirect_holder **holders,
				       size_t *n)
{
	enum status st = set->db ? shard_set_reopen(set) : shard_set_open(set);
	if (st != STATUS_OK)
		return st;
	struct xquery *q = holders_query(redirect_page_id);
	struct xmset *ms = NULL;
	st = xdb_search(set->db, q, 0, HOLDERS_MAX, &ms);
	xquery_free(q);
	if (st != STATUS_OK)
		return set_fail(set, st, "%s", xdb_errmsg(set->db));
	holders_take(ms, holders, n);
	return STATUS_OK;
}

enum status shard_redirect_holders(struct shard *sh, uint64_t redirect_page_id,
				   struct shard_redirect_holder **holders,
				   size_t *n)
{
	if (!sh->open)
		return shard_fail(sh, STATUS_INVALID, "shard not open");
	struct xquery *q = holders_query(redirect_page_id);
	struct xmset *ms = NULL;
	enum status st = xdb_search(sh->db, q, 0, HOLDERS_MAX, &ms);
	xquery_free(q);
	if (st != STATUS_OK)
		return shard_fail(sh, st, "%s", xdb_errmsg(sh->db));
	holders_take(ms, holders, n);
	return STATUS_OK;
}

unsigned shard_set_hit_shard(const struct shard_set *set, uint32_t docid)
{
	return set->n_open && docid ? set->open_idx[(docid - 1) % set->n_open] : 0;
}

enum status shard_set_read_position(struct shard_set *set, unsigned n,
				    const char *partition, char **stream_id)
{
	enum status st;
	char *gen = NULL;
	if ((st = shard_set_current(set, &gen)) != STATUS_OK)
		return st;
	char *path = shard_set_path(set, gen, n);
	free(gen);
	struct xdb *db = need(xdb_new());
	char *key = xasprintf(META_POSITION "%s", partition);
	st = xdb_open_read(db, path);
	if (st == STATUS_OK)
		st = xdb_get_metadata(db, key, stream_id);
	if (st != STATUS_OK && st != STATUS_NOT_FOUND)
		set_fail(set, st, "%s", xdb_errmsg(db));
	free(key);
	free(path);
	xdb_free(db);
	return st;
}

/* Fills *st_out from the database at path, partition n's. */
static enum status stats_at(struct shard_set *set, const char *path, unsigned n,
			    struct shard_stats *st_out)
{
	enum status st;
	struct xdb *db = need(xdb_new());
	struct shard_stats s = { 0 };
	uint64_t v = 0;
	if ((st = xdb_open_read(db, path)) != STATUS_OK ||
	    (st = xdb_doc_count(db, &s.docs)) != STATUS_OK ||
	    (st = xdb_value_freq(db, SHARD_VALUE_DEAD, &s.dead)) != STATUS_OK ||
	    (st = xdb_revision(db, &s.revision)) != STATUS_OK ||
	    (st = read_u64_meta(db, META_FENCE, &s.fence)) != STATUS_OK ||
	    (st = read_u64_meta(db, META_COMMIT_TIME, &v)) != STATUS_OK)
		goto out;
	s.docs -= s.dead;
	s.last_commit = (int64_t)v;
	if ((st = read_u64_meta(db, META_SCHEMA, &v)) != STATUS_OK)
		goto out;
	s.schema = (unsigned)v;
	char *key = xasprintf(META_POSITION "freshet:{%s:p%u}", set->wiki, n);
	char *pos = NULL;
	st = xdb_get_metadata(db, key, &pos);
	free(key);
	if (st == STATUS_OK)
		snprintf(s.position, sizeof s.position, "%s", pos);
	free(pos);
	if (st != STATUS_OK && st != STATUS_NOT_FOUND)
		goto out;
	st = STATUS_OK;
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			struct stat sb;
			char *f = xasprintf("%s/%s", path, e->d_name);
			if (stat(f, &sb) == 0 && S_ISREG(sb.st_mode))
				s.bytes += (uint64_t)sb.st_size;
			free(f);
		}
		closedir(d);
	}
	*st_out = s;
out:
	if (st != STATUS_OK)
		set_fail(set, st, "%s", xdb_errmsg(db));
	xdb_free(db);
	return st;
}

enum status shard_set_stats(struct shard_set *set, unsigned n,
			    struct shard_stats *st_out)
{
	char *gen = NULL;
	enum status st = shard_set_current(set, &gen);
	if (st != STATUS_OK)
		return st;
	char *path = shard_set_path(set, gen, n);
	free(gen);
	st = stats_at(set, path, n, st_out);
	free(path);
	return st;
}

enum status shard_set_replica_stats(struct shard_set *set, unsigned n,
				    struct shard_stats *st_out)
{
	char *live = NULL;
	enum status st = shard_set_replica_live(set, n, &live);
	if (st != STATUS_OK)
		return set_fail(set, st, "%s/replica/shard-%u: no replica", set->wikidir, n);
	st = stats_at(set, live, n, st_out);
	free(live);
	return st;
}

/* Collects the language of each freshet.analyzer.<lang> key. */
struct lang_list {
	char **v;
	size_t n;
};

static int add_language(void *ctx, const char *key)
{
	struct lang_list *l = ctx;
	const char *code = key + strlen(META_ANALYZER);
	if (!*code)
		return 0;
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], code) == 0)
			return 0;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = xstrdup(code);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum status shard_set_languages(struct shard_set *set, char ***codes, size_t *n)
{
	enum status st;
	char *gen = NULL;
	unsigned shards = 0;
	if ((st = shard_set_current(set, &gen)) != STATUS_OK)
		return st;
	if ((st = shard_set_count(set, gen, &shards)) != STATUS_OK) {
		free(gen);
		return st;
	}
	struct lang_list l = { NULL, 0 };
	/* Metadata read through a combined reader comes from its first
	 * shard only: each shard is opened on its own. */
	for (unsigned i = 0; i < shards && st == STATUS_OK; i++) {
		char *path = shard_set_path(set, gen, i);
		struct xdb *db = need(xdb_new());
		if ((st = xdb_open_read(db, path)) == STATUS_OK)
			st = xdb_metadata_keys(db, META_ANALYZER, add_language,
					       &l);
		if (st != STATUS_OK)
			set_fail(set, st, "%s", xdb_errmsg(db));
		xdb_free(db);
		free(path);
	}
	free(gen);
	if (st != STATUS_OK) {
		for (size_t i = 0; i < l.n; i++)
			free(l.v[i]);
		free(l.v);
		return st;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, cmp_str);
	*codes = l.v;
	*n = l.n;
	return STATUS_OK;
}
