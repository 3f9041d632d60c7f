/* SPDX-License-Identifier: MIT */
/*
 * document.c: builds a page's shard document from the fetcher's result, the
 * extractor's fields and the analyzer of the page's language.
 *
 * Invariant: a document is built from one fetch result only, so everything
 * in it (title, revision, text) describes the same revision.  The builder
 * keeps its analyzers (one per language seen, opened on first use) and its
 * extractor between pages; both belong to the builder's thread.
 */
#include "document.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

#include "buf.h"
#include "redact.h"
#include "xmalloc.h"

struct lang_slot {
	char *code;              /* the page language asked for */
	struct analyzer *an;
};

struct document_builder {
	const struct loader *ld;
	struct extract *x;
	struct lang_slot *langs;
	size_t n_langs;
	char errmsg[512];
};

/* Where the token callback puts terms. */
struct sink {
	struct shard_doc *doc;
	const char *prefix;      /* plain view prefix */
	const char *stem_prefix; /* stemmed view prefix */
	uint32_t base;           /* position of the field's first word */
	uint32_t next;           /* first position after the last term seen */
};

static void set_err(struct document_builder *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct document_builder *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(b->errmsg, sizeof b->errmsg, fmt, ap);
	va_end(ap);
}

struct document_builder *document_builder_new(const struct loader *ld)
{
	struct document_builder *b = xcalloc(1, sizeof *b);
	b->ld = ld;
	b->x = extract_new(NULL);
	return b;
}

void document_builder_free(struct document_builder *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n_langs; i++) {
		analyzer_close(b->langs[i].an);
		free(b->langs[i].code);
	}
	free(b->langs);
	extract_free(b->x);
	free(b);
}

const char *document_builder_errmsg(const struct document_builder *b)
{
	return b->errmsg;
}

/* Returns the builder's analyzer for lang, opening it on first use. */
static enum status get_analyzer(struct document_builder *b, const char *lang,
				struct analyzer **out)
{
	for (size_t i = 0; i < b->n_langs; i++)
		if (strcmp(b->langs[i].code, lang) == 0) {
			*out = b->langs[i].an;
			return STATUS_OK;
		}
	struct analyzer *an = NULL;
	char *msg = NULL;
	enum status st = analyzer_open(b->ld, lang, NULL, &an, &msg);
	if (st != STATUS_OK) {
		set_err(b, "no analyzer for language '%s': %s", lang,
			msg ? msg : status_str(st));
		free(msg);
		return st;
	}
	b->langs = xrealloc(b->langs, (b->n_langs + 1) * sizeof *b->langs);
	b->langs[b->n_langs].code = xstrdup(lang);
	b->langs[b->n_langs].an = an;
	b->n_langs++;
	*out = an;
	return STATUS_OK;
}

static int on_plain(void *ctx, const char *term, size_t len, size_t start,
		    size_t end, uint32_t pos)
{
	struct sink *s = ctx;
	(void)start;
	(void)end;
	uint32_t p = s->base + pos;
	shard_doc_add_posting(s->doc, s->prefix, term, len, p);
	if (p + 1 > s->next)
		s->next = p + 1;
	return 0;
}

static int on_stem(void *ctx, const char *term, size_t len, size_t start,
		   size_t end, uint32_t pos)
{
	struct sink *s = ctx;
	(void)start;
	(void)end;
	(void)pos;
	shard_doc_add_term(s->doc, s->stem_prefix, term, len);
	return 0;
}

/* Analyzes one piece of text of a field in both views.  s->base is where
 * it starts; afterwards s->next is past its last word. */
static enum status index_text(struct document_builder *b, struct analyzer *an,
			      struct sink *s, const char *text, size_t len)
{
	if (!len)
		return STATUS_OK;
	/* One pass for both views: segmenting and case folding once. */
	enum status st = analyzer_run_both(an, 0, text, len, on_stem, s,
					   on_plain, s);
	if (st != STATUS_OK)
		set_err(b, "analyzer %s failed: %s", analyzer_name(an),
			analyzer_errmsg(an));
	return st;
}

/* Indexes each string of a list as one field, DOCUMENT_FIELD_GAP apart. */
static enum status index_list(struct document_builder *b, struct analyzer *an,
			      struct shard_doc *doc, const char *prefix,
			      const char *stem_prefix,
			      const struct extract_list *list)
{
	struct sink s = { doc, prefix, stem_prefix, 0, 0 };
	for (size_t i = 0; i < list->n; i++) {
		enum status st = index_text(b, an, &s, list->v[i],
					    strlen(list->v[i]));
		if (st != STATUS_OK)
			return st;
		s.base = s.next + DOCUMENT_FIELD_GAP;
	}
	return STATUS_OK;
}

/* True for the scripts whose accents completion ignores: elsewhere a
 * combining mark is part of the letter (Cyrillic й, Devanagari, kana). */
static bool fold_script(UChar32 c)
{
	UErrorCode e = U_ZERO_ERROR;
	UScriptCode s = uscript_getScript(c, &e);
	return U_SUCCESS(e) && (s == USCRIPT_LATIN || s == USCRIPT_GREEK);
}

/* Letters with a stroke have no decomposition; they fold by hand. */
static const char *fold_special(UChar32 c)
{
	switch (c) {
	case 0xD8: case 0xF8: return "o";
	case 0xC6: case 0xE6: return "ae";
	case 0x152: case 0x153: return "oe";
	case 0x141: case 0x142: return "l";
	case 0x110: case 0x111: return "d";
	default: return NULL;
	}
}

char *document_fold_title(const char *title, size_t len)
{
	UErrorCode e = U_ZERO_ERROR;
	int32_t n16 = 0;
	/* Invalid UTF-8 becomes U+FFFD rather than failing. */
	u_strFromUTF8WithSub(NULL, 0, &n16, title, (int32_t)len, 0xFFFD, NULL, &e);
	e = U_ZERO_ERROR;
	UChar *u = xmalloc(((size_t)n16 + 1) * sizeof *u);
	u_strFromUTF8WithSub(u, n16 + 1, NULL, title, (int32_t)len, 0xFFFD, NULL, &e);
	const UNormalizer2 *nfd = unorm2_getNFDInstance(&e);
	const UNormalizer2 *fold = unorm2_getNFKCCasefoldInstance(&e);
	if (U_FAILURE(e)) {
		free(u);
		return xstrdup("");
	}
	int32_t cap = n16 * 4 + 16, dn;
	UChar *d = xmalloc((size_t)cap * sizeof *d);
	dn = unorm2_normalize(nfd, u, n16, d, cap, &e);
	if (U_FAILURE(e))
		dn = 0;
	/* Drop the accents of Latin and Greek letters, map the letters with
	 * strokes, and make every run of spaces, underscores and other
	 * separators one space (titles use both " " and "_"). */
	struct buf b = BUF_INIT;
	bool base_folds = false, space = true;
	for (int32_t i = 0; i < dn;) {
		UChar32 c;
		U16_NEXT(d, i, dn, c);
		bool mark = u_charType(c) == U_NON_SPACING_MARK;
		if (mark && base_folds)
			continue;
		if (c == '_' || u_isUWhiteSpace(c)) {
			if (!space)
				buf_addch(&b, ' ');
			space = true;
			base_folds = false;
			continue;
		}
		space = false;
		const char *sp = fold_special(c);
		if (sp) {
			buf_adds(&b, sp);
			base_folds = true;
			continue;
		}
		if (!mark)
			base_folds = fold_script(c);
		char tmp[4];
		int32_t k = 0;
		UBool err = false;
		U8_APPEND((uint8_t *)tmp, k, 4, c, err);
		if (!err)
			buf_add(&b, tmp, (size_t)k);
	}
	while (b.len && b.data[b.len - 1] == ' ')
		b.data[--b.len] = '\0';
	free(d);
	free(u);
	/* Then case folding with compatibility normalisation (NFKC_Casefold:
	 * "ß" -> "ss", full-width -> ASCII), which also recomposes. */
	e = U_ZERO_ERROR;
	u_strFromUTF8WithSub(NULL, 0, &n16, b.data ? b.data : "", (int32_t)b.len,
			     0xFFFD, NULL, &e);
	e = U_ZERO_ERROR;
	u = xmalloc(((size_t)n16 + 1) * sizeof *u);
	u_strFromUTF8WithSub(u, n16 + 1, NULL, b.data ? b.data : "",
			     (int32_t)b.len, 0xFFFD, NULL, &e);
	buf_release(&b);
	cap = n16 * 4 + 16;
	d = xmalloc((size_t)cap * sizeof *d);
	dn = unorm2_normalize(fold, u, n16, d, cap, &e);
	if (U_FAILURE(e))
		dn = 0;
	int32_t n8 = 0;
	e = U_ZERO_ERROR;
	u_strToUTF8(NULL, 0, &n8, d, dn, &e);
	char *out = xmalloc((size_t)n8 + 1);
	e = U_ZERO_ERROR;
	u_strToUTF8(out, n8 + 1, NULL, d, dn, &e);
	if (U_FAILURE(e))
		out[0] = '\0';
	out[n8] = '\0';
	free(d);
	free(u);
	return out;
}

/* Adds the completion terms of title (shard.h), folded once: whole + the
 * folded title, cut at a character boundary to fit a term (XT, XRT), and
 * prefixes + each of its first SHARD_COMPLETION_CHARS characters'
 * prefixes + SHARD_COMPLETION_SEP + the weight of a page of length terms
 * (XP, XRP). */
static void add_completion_terms(struct shard_doc *doc, const char *whole,
				 const char *prefixes, const char *title,
				 uint64_t length)
{
	char *f = document_fold_title(title, strlen(title));
	size_t max = XDB_MAX_TERM - strlen(whole), n = strlen(f);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)f[n] & 0xC0) == 0x80)
			n--;
	}
	char *cut = xstrndup(f, n);
	if (*cut)
		shard_doc_add_boolean(doc, whole, cut);
	free(cut);
	uint32_t inv = 0xffffffffu -
		       (uint32_t)(length > 0xffffffffu ? 0xffffffffu : length);
	char weight[16];
	snprintf(weight, sizeof weight, SHARD_COMPLETION_SEP "%08" PRIx32, inv);
	size_t room = XDB_MAX_TERM - strlen(prefixes) - strlen(weight);
	unsigned chars = 0;
	for (size_t i = 0; f[i] && chars < SHARD_COMPLETION_CHARS; chars++) {
		i++;
		while (((unsigned char)f[i] & 0xC0) == 0x80)
			i++;
		if (i > room)
			break;
		char *term = xasprintf("%.*s%s", (int)i, f, weight);
		shard_doc_add_boolean(doc, prefixes, term);
		free(term);
	}
	free(f);
}

/* The title without its namespace prefix, as the title field indexes it
 * ("Talk:Foo" is found by "foo"; the namespace is the XNS filter term). */
static const char *title_text(const char *title, int ns)
{
	if (ns != 0) {
		const char *colon = strchr(title, ':');
		if (colon)
			return colon + 1;
	}
	return title;
}

/* Indexes the redirects that point at the page: each title into the
 * redirect field (like the title, DOCUMENT_FIELD_GAP apart), and the data
 * and XRI term (shard_doc_add_redirect).  Their completion terms come
 * last (add_completion_terms()), once the page's length is known. */
static enum status index_redirects(struct document_builder *b,
				   struct analyzer *an, struct shard_doc *doc,
				   const struct fetch_result *r)
{
	struct sink s = { doc, SHARD_PREFIX_REDIRECT, SHARD_PREFIX_REDIRECT_STEM,
			  0, 0 };
	for (size_t i = 0; i < r->n_redirects; i++) {
		const struct fetch_redirect *rd = &r->redirects[i];
		shard_doc_add_redirect(doc, rd->page_id, rd->title);
		const char *text = title_text(rd->title, rd->ns);
		enum status st = index_text(b, an, &s, text, strlen(text));
		if (st != STATUS_OK)
			return st;
		s.base = s.next + DOCUMENT_FIELD_GAP;
	}
	return STATUS_OK;
}

char *document_page_url(const char *api, const char *title)
{
	struct buf u = BUF_INIT;
	/* Stored and shown in every search result: never the credentials. */
	char *clean = redact_userinfo(api);
	/* The last '/' of the path, never one of "scheme://": an api with no
	 * path keeps its host. */
	const char *auth = strstr(clean, "://");
	const char *path = auth ? auth + 3 + strcspn(auth + 3, "/") : clean;
	const char *slash = strrchr(path, '/');
	size_t keep = slash ? (size_t)(slash - clean) + 1 : strlen(clean);
	buf_add(&u, clean, keep);
	if (!slash)
		buf_addch(&u, '/');
	free(clean);
	buf_adds(&u, "index.php?title=");
	for (const unsigned char *c = (const unsigned char *)title; *c; c++) {
		if (*c == ' ')
			buf_addch(&u, '_');
		else if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
			 (*c >= '0' && *c <= '9') || strchr("-_.~:/()!,", *c))
			buf_addch(&u, (char)*c);
		else
			buf_addf(&u, "%%%02X", *c);
	}
	return buf_detach(&u, NULL);
}

enum status document_build(struct document_builder *b,
			   const struct fetch_result *r, const char *api,
			   int64_t rev_timestamp, struct shard_doc **out,
			   struct document_analysis *info)
{
	b->errmsg[0] = '\0';
	if (r->cls != FETCH_OK || !r->title) {
		set_err(b, "page %llu: not a successful fetch (%s)",
			(unsigned long long)r->page_id, fetch_class_str(r->cls));
		return STATUS_INVALID;
	}
	if (r->is_redirect) {
		set_err(b, "page %llu: a redirect has no document of its own",
			(unsigned long long)r->page_id);
		return STATUS_INVALID;
	}
	const char *lang = r->language && *r->language ? r->language : "en";
	struct analyzer *an;
	enum status st = get_analyzer(b, lang, &an);
	if (st != STATUS_OK)
		return st;

	struct extract_doc x;
	extract_doc_init(&x);
	st = extract_page(b->x, r, &x);
	if (st != STATUS_OK) {
		set_err(b, "page %llu: extraction failed: %s",
			(unsigned long long)r->page_id, extract_errmsg(b->x));
		extract_doc_release(&x);
		return st;
	}

	struct shard_doc *doc = shard_doc_new(r->page_id);
	shard_doc_set_title(doc, r->title);
	shard_doc_set_display_title(doc, *x.display_title ? x.display_title
							  : r->title);
	shard_doc_set_namespace(doc, r->ns);
	shard_doc_set_language(doc, lang);
	char *url = document_page_url(api, r->title);
	shard_doc_set_url(doc, url);
	free(url);
	shard_doc_set_rev(doc, r->rev_id, rev_timestamp);
	for (size_t i = 0; i < r->n_categories; i++)
		shard_doc_add_category(doc, r->categories[i].name);
	shard_doc_set_text(doc, x.text, x.text_len);

	const char *title = title_text(r->title, r->ns);
	struct sink s = { doc, SHARD_PREFIX_TITLE, SHARD_PREFIX_TITLE_STEM, 0, 0 };
	st = index_text(b, an, &s, title, strlen(title));
	if (st == STATUS_OK) {
		struct sink body = { doc, SHARD_PREFIX_BODY, SHARD_PREFIX_STEM, 0, 0 };
		st = index_text(b, an, &body, x.text, x.text_len);
	}
	if (st == STATUS_OK)
		st = index_list(b, an, doc, SHARD_PREFIX_HEADING,
				SHARD_PREFIX_HEADING_STEM, &x.heading);
	if (st == STATUS_OK)
		st = index_list(b, an, doc, SHARD_PREFIX_AUX,
				SHARD_PREFIX_AUX_STEM, &x.auxiliary_text);
	if (st == STATUS_OK)
		st = index_redirects(b, an, doc, r);
	if (st == STATUS_OK) {
		/* Last: the weight is the length of the whole document. */
		uint64_t length = shard_doc_length(doc);
		add_completion_terms(doc, SHARD_PREFIX_TITLE_FOLDED,
				     SHARD_PREFIX_TITLE_PREFIX, title, length);
		for (size_t i = 0; i < r->n_redirects; i++)
			add_completion_terms(doc,
					     SHARD_PREFIX_REDIRECT_COMPLETION,
					     SHARD_PREFIX_REDIRECT_PREFIX,
					     title_text(r->redirects[i].title,
							r->redirects[i].ns),
					     length);
	}
	extract_doc_release(&x);
	if (st != STATUS_OK) {
		shard_doc_free(doc);
		return st;
	}
	if (info) {
		info->language = analyzer_language(an);
		info->name = analyzer_name(an);
		info->version = analyzer_version(an);
	}
	*out = doc;
	return STATUS_OK;
}
