/* SPDX-License-Identifier: MIT */
/*
 * extract.c: rendered MediaWiki HTML to search fields, in one streaming pass.
 *
 * The input first goes through the pre-pass (prepass.h): it is made valid
 * UTF-8, its nesting is bounded and the attributes that cannot change the
 * fields are dropped (keep_attr() below says which can).  The result is
 * given to libxml2's HTML push parser in one call with terminate set
 * (pieces only above 1 GiB), with a SAX handler; no tree is built.
 *
 * The handler keeps a stack of the open elements' roles (up to max_depth;
 * deeper elements only count an overflow depth) and three counters: how many
 * open elements are excluded (script, style, sup.reference, ...), auxiliary
 * (table, .thumbcaption, ...) or headings.  Character data goes to exactly
 * one place: nowhere if an excluded element is open, else the current
 * auxiliary entry, else the current heading, else the body text (and the
 * opening text while no heading has been seen).  libxml2 balances start and
 * end events (it closes implied elements itself), so the stack pops on each
 * end event whatever its name.
 *
 * Each output field is a struct field: a buffer that collapses white space
 * as it goes (a pending space is written only before the next visible
 * character, so there is never a leading, trailing or double space) and
 * stops growing at the byte cap, cutting on a character boundary.
 */
#include "extract.h"
#include "fetch.h"
#include "prepass.h"
#include "buf.h"
#include "xmalloc.h"

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_OUTPUT (4u << 20)
#define DEFAULT_MAX_DEPTH 256u
/* Documents up to this size go to libxml2 in one call (its chunk size is
 * an int). */
#define FEED_MAX (1u << 30)
/* libxml2's own depth above which the parse is stopped (safety net). */
#define HARD_DEPTH_SLACK 64

/* Roles of an element, as bits on the stack. */
enum {
	ROLE_EXCLUDED = 1,
	ROLE_AUX = 2,
	ROLE_HEADING = 4,
	ROLE_BLOCK = 8,
};

/* What an element's name or a class says about it.  Both tables are sorted
 * by name (bsearch); libxml2 reports HTML element names in lowercase. */
enum {
	F_BLOCK = 1,     /* a word break before and after */
	F_EXCLUDED = 2,  /* its text is dropped */
	F_VOID = 4,      /* never has content or an end tag */
	F_AUX = 8,       /* auxiliary text */
	F_HEADING = 16,
	F_REFERENCE = 32 /* the "reference" class: excluded on <sup> only */
};

/* One output field being built. */
struct field {
	struct buf b;
	size_t cap;
	bool space;      /* a word break is pending */
	bool truncated;
};

struct extract {
	struct extract_limits lim;
	char errmsg[256];

	/* Per-document state. */
	unsigned char *stack;
	struct prepass *pp;
	htmlParserCtxtPtr ctxt;
	/* Element name -> flags, by the pointer libxml2 interns the name at
	 * (its dictionary lives as long as one document's parser). */
	struct { const void *name; unsigned flags; } name_cache[128];
	unsigned depth;      /* tracked elements open (<= lim.max_depth) */
	size_t overflow;     /* open elements deeper than max_depth */
	unsigned excluded, aux, heading;
	bool seen_heading;
	struct field text, opening, cur_heading, cur_aux;
	struct extract_list headings, auxs;
	size_t headings_bytes, auxs_bytes;
	bool truncated;
};

/* --- fields ------------------------------------------------------------- */

static void field_init(struct field *f, size_t cap)
{
	buf_init(&f->b);
	f->cap = cap;
	f->space = false;
	f->truncated = false;
}

static void field_break(struct field *f)
{
	if (f->b.len)
		f->space = true;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}


/* Appends text (valid UTF-8) collapsing white space, within the cap. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static void field_add(struct field *f, const unsigned char *s, size_t n)
{
	if (f->truncated || !n)
		return;
	/* Output never exceeds input plus one pending space. */
	if (f->b.cap - f->b.len <= n + 2)
		buf_grow(&f->b, n + 2);
	char *out = f->b.data;
	size_t len = f->b.len;
	bool space = f->space;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (is_space(c)) {
			space = len != 0;
			i++;
			continue;
		}
		if (c == 0xC2 && i + 1 < n && s[i + 1] == 0xA0) {
			space = len != 0;
			i += 2;
			continue;
		}
		if (c < 0x80) {
			/* A run of ASCII: the common case, copied bytewise. */
			if (len + 1 + (space ? 1 : 0) > f->cap) {
				f->truncated = true;
				space = false;
				break;
			}
			if (space) {
				out[len++] = ' ';
				space = false;
			}
			size_t room = f->cap - len;
			size_t lim = n - i < room ? n : i + room;
			size_t j = i;
			/* Words and the single spaces between them are
			 * copied as they are; only other white space, a
			 * second space or a non-ASCII byte ends the run. */
			for (;;) {
				/* Eight bytes at a time while they are
				 * printable ASCII with single spaces
				 * strictly inside the window. */
				while (lim - j >= 8 && s[j] != ' ' && s[j + 7] != ' ') {
					uint64_t w, sp;
					memcpy(&w, s + j, 8);
					uint64_t lt = ~((w | HIGHS) - ONES * 0x20) & HIGHS;
					sp = w ^ (ONES * ' ');
					sp = ~(((sp & ~HIGHS) + ~HIGHS) | sp) & HIGHS;
					if ((w & HIGHS) | lt | (sp & (sp << 8)))
						break;
					memcpy(out + len, s + j, 8);
					len += 8;
					j += 8;
				}
				while (j < lim && s[j] > ' ' && s[j] < 0x80)
					out[len++] = (char)s[j++];
				if (j + 1 < lim && s[j] == ' ' && s[j + 1] > ' ' &&
				    s[j + 1] < 0x80) {
					out[len++] = ' ';
					out[len++] = (char)s[j + 1];
					j += 2;
					continue;
				}
				break;
			}
			if (j == i) {
				/* A control character (from a character
				 * reference): a word break. */
				space = len != 0;
				j++;
			}
			i = j;
			continue;
		}
		size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (k > n - i)
			k = n - i; /* cannot happen: the input is valid UTF-8 */
		if (len + k + (space ? 1 : 0) > f->cap) {
			/* Stop on a character boundary, without the space. */
			f->truncated = true;
			space = false;
			break;
		}
		if (space) {
			out[len++] = ' ';
			space = false;
		}
		memcpy(out + len, s + i, k);
		len += k;
		i += k;
	}
	out[len] = '\0';
	f->b.len = len;
	f->space = space;
}

static char *field_take(struct field *f, size_t *len)
{
	if (!f->b.cap) {
		if (len)
			*len = 0;
		buf_release(&f->b);
		return xstrdup("");
	}
	return buf_detach(&f->b, len);
}

static void list_push(struct extract_list *l, char *s)
{
	if (l->n == 0 || (l->n >= 4 && (l->n & (l->n - 1)) == 0)) {
		size_t cap = l->n ? l->n * 2 : 4;
		l->v = xrealloc(l->v, cap * sizeof(*l->v));
	}
	l->v[l->n++] = s;
}

static void list_free(struct extract_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Ends the current entry of a list field: keeps it if it has text and the
 * list's total is under the cap. */
static void entry_end(struct extract *x, struct field *f,
		      struct extract_list *l, size_t *total)
{
	if (f->truncated)
		x->truncated = true;
	if (f->b.len && *total + f->b.len <= x->lim.max_output) {
		*total += f->b.len;
		list_push(l, field_take(f, NULL));
	} else {
		if (f->b.len)
			x->truncated = true;
		buf_release(&f->b);
	}
	field_init(f, x->lim.max_output);
}

/* --- element roles -------------------------------------------------------- */

struct flag_name {
	const char *name;
	unsigned flags;
};

static const struct flag_name element_table[] = {
	{ "address", F_BLOCK }, { "area", F_VOID }, { "article", F_BLOCK },
	{ "aside", F_BLOCK }, { "audio", F_EXCLUDED }, { "base", F_VOID },
	{ "basefont", F_VOID }, { "blockquote", F_BLOCK }, { "body", F_BLOCK },
	{ "br", F_BLOCK | F_VOID }, { "button", F_BLOCK },
	{ "caption", F_BLOCK }, { "center", F_BLOCK }, { "col", F_VOID },
	{ "dd", F_BLOCK }, { "details", F_BLOCK }, { "dialog", F_BLOCK },
	{ "dir", F_BLOCK }, { "div", F_BLOCK }, { "dl", F_BLOCK },
	{ "dt", F_BLOCK }, { "embed", F_EXCLUDED | F_VOID },
	{ "fieldset", F_BLOCK }, { "figcaption", F_BLOCK | F_AUX },
	{ "figure", F_BLOCK }, { "footer", F_BLOCK }, { "form", F_BLOCK },
	{ "frame", F_VOID }, { "gallery", F_BLOCK },
	{ "h1", F_BLOCK | F_HEADING }, { "h2", F_BLOCK | F_HEADING },
	{ "h3", F_BLOCK | F_HEADING }, { "h4", F_BLOCK | F_HEADING },
	{ "h5", F_BLOCK | F_HEADING }, { "h6", F_BLOCK | F_HEADING },
	{ "head", F_BLOCK | F_EXCLUDED }, { "header", F_BLOCK },
	{ "hr", F_BLOCK | F_VOID }, { "html", F_BLOCK },
	{ "iframe", F_EXCLUDED }, { "img", F_BLOCK | F_VOID },
	{ "input", F_BLOCK | F_VOID }, { "isindex", F_VOID },
	{ "keygen", F_VOID }, { "label", F_BLOCK }, { "legend", F_BLOCK },
	{ "li", F_BLOCK }, { "link", F_VOID }, { "main", F_BLOCK },
	{ "meta", F_VOID }, { "nav", F_BLOCK }, { "noscript", F_EXCLUDED },
	{ "object", F_EXCLUDED }, { "ol", F_BLOCK }, { "option", F_BLOCK },
	{ "p", F_BLOCK }, { "param", F_VOID }, { "pre", F_BLOCK },
	{ "script", F_EXCLUDED }, { "section", F_BLOCK },
	{ "select", F_BLOCK }, { "source", F_VOID }, { "style", F_EXCLUDED },
	{ "summary", F_BLOCK }, { "table", F_BLOCK | F_AUX },
	{ "tbody", F_BLOCK }, { "td", F_BLOCK },
	{ "template", F_EXCLUDED }, { "textarea", F_BLOCK },
	{ "tfoot", F_BLOCK }, { "th", F_BLOCK }, { "thead", F_BLOCK },
	{ "title", F_BLOCK | F_EXCLUDED }, { "tr", F_BLOCK },
	{ "track", F_VOID }, { "ul", F_BLOCK }, { "video", F_EXCLUDED },
	{ "wbr", F_VOID },
};

/* CirrusSearch's WikiTextStructure selectors, by class: see
 * class_token_flags(). */

static int flag_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct flag_name *)elem)->name);
}

static unsigned lookup(const char *name, const struct flag_name *t, size_t n)
{
	const struct flag_name *f = bsearch(name, t, n, sizeof(*t), flag_cmp);
	return f ? f->flags : 0;
}

static unsigned name_flags(const char *name)
{
	return lookup(name, element_table,
		      sizeof(element_table) / sizeof(element_table[0]));
}

/* The flags of one class name (CirrusSearch's selectors), matched by
 * length first, since most class names on a page (mandoc's "Pp", MediaWiki's
 * "mw-headline") match none and are rejected without a comparison. */
static unsigned class_token_flags(const char *t, size_t n)
{
	switch (n) {
	case 3:
		return !memcmp(t, "toc", 3) ? F_EXCLUDED : 0;
	case 7:
		if (!memcmp(t, "dablink", 7) || !memcmp(t, "hatnote", 7) ||
		    !memcmp(t, "rellink", 7))
			return F_AUX | F_BLOCK;
		return 0;
	case 9:
		if (!memcmp(t, "reference", 9))
			return F_REFERENCE;
		return !memcmp(t, "searchaux", 9) ? F_AUX | F_BLOCK : 0;
	case 12:
		if (!memcmp(t, "thumbcaption", 12))
			return F_AUX | F_BLOCK;
		return !memcmp(t, "autocollapse", 12) ? F_EXCLUDED : 0;
	case 14:
		return !memcmp(t, "mw-editsection", 14) ? F_EXCLUDED : 0;
	case 16:
		return !memcmp(t, "mw-cite-backlink", 16) ? F_EXCLUDED : 0;
	case 25:
		return !memcmp(t, "navigation-not-searchable", 25) ? F_EXCLUDED : 0;
	case 28:
		return !memcmp(t, "wbmi-entityview-emptyCaption", 28) ? F_EXCLUDED
									: 0;
	}
	return 0;
}

/* The flags of every class in a space-separated class list of n bytes. */
static unsigned class_flags_n(const char *list, size_t n)
{
	unsigned flags = 0;
	const char *p = list, *end = list + n;
	while (p < end) {
		while (p < end && is_space((unsigned char)*p))
			p++;
		const char *s = p;
		while (p < end && !is_space((unsigned char)*p))
			p++;
		flags |= class_token_flags(s, (size_t)(p - s));
	}
	return flags;
}

static unsigned class_flags(const char *list)
{
	return class_flags_n(list, strlen(list));
}

/* The pre-pass's prepass_keep_fn: a class naming one of the classes of
 * class_token_flags(), and id="toc", are the attributes element_role()
 * reads. */
static bool keep_attr(const char *attr, const char *value, size_t n)
{
	if (attr[0] == 'c')
		return class_flags_n(value, n) != 0;
	return n == 3 && !memcmp(value, "toc", 3);
}

static unsigned char element_role(struct extract *x, const char *name,
				  const xmlChar **atts)
{
	/* A multiplicative hash of the whole pointer: libxml2 packs short
	 * names a few bytes apart in its dictionary, so the low bits alone
	 * collide. */
	size_t slot = (size_t)(((uint64_t)(uintptr_t)name *
				0x9E3779B97F4A7C15ull) >> 57);
	unsigned f;
	if (x->name_cache[slot].name == name) {
		f = x->name_cache[slot].flags;
	} else {
		f = name_flags(name);
		x->name_cache[slot].name = name;
		x->name_cache[slot].flags = f;
	}
	for (size_t i = 0; atts && atts[i]; i += 2) {
		const char *a = (const char *)atts[i];
		const char *v = (const char *)atts[i + 1];
		if (!v)
			continue;
		if (a[0] == 'c' && !strcmp(a, "class")) {
			unsigned c = class_flags(v);
			if (c & F_REFERENCE && !strcmp(name, "sup"))
				c |= F_EXCLUDED;
			f |= c;
		} else if (!strcmp(a, "id") && !strcmp(v, "toc")) {
			f |= F_EXCLUDED; /* the table of contents */
		}
	}
	unsigned char role = 0;
	if (f & F_BLOCK)
		role |= ROLE_BLOCK;
	if (f & F_EXCLUDED)
		role |= ROLE_EXCLUDED;
	if (f & F_AUX)
		role |= ROLE_AUX;
	if (f & F_HEADING)
		role |= ROLE_HEADING;
	return role;
}

/* CirrusSearch's default "cirrussearch-ignored-headings" message. */
static bool heading_ignored(const char *h)
{
	return strcasecmp(h, "References") == 0 ||
	       strcasecmp(h, "External links") == 0 ||
	       strcasecmp(h, "See also") == 0;
}

/* A word break in whichever field is receiving text now. */
static void word_break(struct extract *x)
{
	if (x->excluded)
		return;
	if (x->aux) {
		field_break(&x->cur_aux);
	} else if (x->heading) {
		field_break(&x->cur_heading);
	} else {
		field_break(&x->text);
		if (!x->seen_heading)
			field_break(&x->opening);
	}
}

/* --- SAX callbacks -------------------------------------------------------- */

static void sax_start(void *ctx, const xmlChar *xname, const xmlChar **atts)
{
	struct extract *x = ctx;
	if (x->ctxt && x->ctxt->nameNr > (int)(x->lim.max_depth + HARD_DEPTH_SLACK)) {
		/* The pre-pass was fooled: stop rather than go quadratic. */
		x->truncated = true;
		xmlStopParser(x->ctxt);
		return;
	}
	if (x->depth >= x->lim.max_depth) {
		x->overflow++;
		return;
	}
	const char *name = (const char *)xname;
	unsigned char role = element_role(x, name, atts);
	/* Roles only start outside excluded content: an aux table inside a
	 * script is still excluded, a heading inside a table is aux. */
	if (role & ROLE_BLOCK)
		word_break(x);
	if (x->excluded)
		role &= (unsigned char)~(ROLE_AUX | ROLE_HEADING);
	if (x->aux)
		role &= (unsigned char)~ROLE_HEADING;
	if (role & ROLE_AUX && x->aux)
		role &= (unsigned char)~ROLE_AUX; /* nested: same entry */
	if (role & ROLE_HEADING && x->heading)
		role &= (unsigned char)~ROLE_HEADING;
	if (role & ROLE_EXCLUDED)
		x->excluded++;
	if (role & ROLE_AUX)
		x->aux++;
	if (role & ROLE_HEADING) {
		x->heading++;
		x->seen_heading = true;
	}
	x->stack[x->depth++] = role;
}

static void sax_end(void *ctx, const xmlChar *name)
{
	struct extract *x = ctx;
	(void)name;
	if (x->overflow) {
		x->overflow--;
		return;
	}
	if (!x->depth)
		return;
	unsigned char role = x->stack[--x->depth];
	if (role & ROLE_EXCLUDED)
		x->excluded--;
	if (role & ROLE_AUX) {
		x->aux--;
		entry_end(x, &x->cur_aux, &x->auxs, &x->auxs_bytes);
	}
	if (role & ROLE_HEADING) {
		x->heading--;
		if (heading_ignored(x->cur_heading.b.data)) {
			buf_release(&x->cur_heading.b);
			field_init(&x->cur_heading, x->lim.max_output);
		} else {
			entry_end(x, &x->cur_heading, &x->headings,
				  &x->headings_bytes);
		}
	}
	if (role & ROLE_BLOCK)
		word_break(x);
}

static void sax_chars(void *ctx, const xmlChar *ch, int len)
{
	struct extract *x = ctx;
	if (x->excluded || len <= 0)
		return;
	const unsigned char *s = ch;
	if (x->aux) {
		field_add(&x->cur_aux, s, (size_t)len);
	} else if (x->heading) {
		field_add(&x->cur_heading, s, (size_t)len);
	} else {
		field_add(&x->text, s, (size_t)len);
		if (!x->seen_heading)
			field_add(&x->opening, s, (size_t)len);
	}
}

static void sax_silent(void *ctx, const char *msg, ...)
{
	(void)ctx;
	(void)msg;
}

/* --- public ------------------------------------------------------------- */

void extract_doc_init(struct extract_doc *doc)
{
	memset(doc, 0, sizeof(*doc));
}

void extract_doc_release(struct extract_doc *doc)
{
	if (!doc)
		return;
	free(doc->text);
	free(doc->opening_text);
	free(doc->display_title);
	list_free(&doc->heading);
	list_free(&doc->auxiliary_text);
	list_free(&doc->category);
	list_free(&doc->outgoing_link);
	list_free(&doc->template_);
	extract_doc_init(doc);
}

struct extract *extract_new(const struct extract_limits *lim)
{
	struct extract *x = xcalloc(1, sizeof(*x));
	x->lim.max_output = lim && lim->max_output ? lim->max_output
						  : DEFAULT_MAX_OUTPUT;
	x->lim.max_depth = lim && lim->max_depth ? lim->max_depth
						: DEFAULT_MAX_DEPTH;
	x->stack = xmalloc(x->lim.max_depth);
	x->pp = prepass_new(x->lim.max_depth, keep_attr);
	return x;
}

void extract_free(struct extract *x)
{
	if (!x)
		return;
	free(x->stack);
	prepass_free(x->pp);
	free(x);
}

const char *extract_errmsg(const struct extract *x)
{
	return x->errmsg;
}

static void doc_reset(struct extract *x)
{
	memset(x->name_cache, 0, sizeof(x->name_cache));
	x->depth = 0;
	x->overflow = 0;
	x->excluded = x->aux = x->heading = 0;
	x->seen_heading = false;
	x->truncated = false;
	field_init(&x->text, x->lim.max_output);
	field_init(&x->opening, x->lim.max_output);
	field_init(&x->cur_heading, x->lim.max_output);
	field_init(&x->cur_aux, x->lim.max_output);
	memset(&x->headings, 0, sizeof(x->headings));
	memset(&x->auxs, 0, sizeof(x->auxs));
	x->headings_bytes = x->auxs_bytes = 0;
}

static void doc_discard(struct extract *x)
{
	buf_release(&x->text.b);
	buf_release(&x->opening.b);
	buf_release(&x->cur_heading.b);
	buf_release(&x->cur_aux.b);
	list_free(&x->headings);
	list_free(&x->auxs);
}

enum status extract_html(struct extract *x, const char *html, size_t len,
			 struct extract_doc *doc)
{
	extract_doc_init(doc);
	x->errmsg[0] = '\0';

	/* Copies are made only when something must change. */
	size_t src_len;
	const char *src = prepass_run(x->pp, html, len, &src_len);
	struct { const char *data; size_t len; } clean = { src, src_len };

	htmlSAXHandler sax;
	memset(&sax, 0, sizeof(sax));
	sax.startElement = sax_start;
	sax.endElement = sax_end;
	sax.characters = sax_chars;
	sax.cdataBlock = sax_chars;
	sax.warning = sax_silent;
	sax.error = sax_silent;
	sax.fatalError = sax_silent;

	doc_reset(x);
	/* The body text is about half of a page's HTML: room for that at
	 * once, rather than a realloc at every doubling. */
	buf_grow(&x->text.b, (src_len < 2 * x->lim.max_output
				      ? src_len / 2 : x->lim.max_output) + 64);
	htmlParserCtxtPtr ctxt = htmlCreatePushParserCtxt(
		&sax, x, NULL, 0, NULL, XML_CHAR_ENCODING_UTF8);
	if (!ctxt) {
		prepass_release(x->pp);
		doc_discard(x);
		snprintf(x->errmsg, sizeof(x->errmsg),
			 "libxml2 could not create an HTML parser");
		return STATUS_NOMEM;
	}
	x->ctxt = ctxt;
	/* Not HTML_PARSE_NOIMPLIED, although it would save libxml2 the name
	 * comparisons deciding whether to imply <html>/<body>: without an
	 * implied root the push parser drops everything after the first
	 * top-level element of a fragment. */
	htmlCtxtUseOptions(ctxt, HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
				 HTML_PARSE_NONET | HTML_PARSE_NOBLANKS |
				 HTML_PARSE_IGNORE_ENC | HTML_PARSE_COMPACT);
	/* The whole document in one call with terminate set: libxml2's push
	 * parser then skips its look-ahead for the end of each token (which it
	 * does when more input may follow).  Only a document over FEED_MAX
	 * goes in pieces. */
	size_t off = 0;
	do {
		size_t n = clean.len - off;
		if (n > FEED_MAX) {
			n = FEED_MAX;
			/* Never split a UTF-8 sequence between chunks. */
			while (((unsigned char)clean.data[off + n] & 0xC0) == 0x80)
				n--;
		}
		bool last = off + n >= clean.len;
		htmlParseChunk(ctxt, clean.data + off, (int)n, last);
		off += n;
		if (ctxt->instate == XML_PARSER_EOF)
			break; /* stopped by the safety net, or the end */
	} while (off < clean.len);
	if (ctxt->instate != XML_PARSER_EOF)
		htmlParseChunk(ctxt, NULL, 0, 1);
	htmlFreeParserCtxt(ctxt);
	x->ctxt = NULL;
	prepass_release(x->pp);

	/* An unterminated heading or aux block at EOF still counts. */
	if (x->cur_aux.b.len)
		entry_end(x, &x->cur_aux, &x->auxs, &x->auxs_bytes);
	if (x->cur_heading.b.len && !heading_ignored(x->cur_heading.b.data))
		entry_end(x, &x->cur_heading, &x->headings, &x->headings_bytes);
	buf_release(&x->cur_aux.b);
	buf_release(&x->cur_heading.b);

	doc->truncated = x->truncated || x->text.truncated ||
			 x->opening.truncated;
	doc->text = field_take(&x->text, &doc->text_len);
	doc->opening_text = field_take(&x->opening, NULL);
	doc->heading = x->headings;
	doc->auxiliary_text = x->auxs;
	memset(&x->headings, 0, sizeof(x->headings));
	memset(&x->auxs, 0, sizeof(x->auxs));
	return STATUS_OK;
}

/* The text of a fragment: a one-field extraction. */
char *extract_strip_html(const char *html, size_t len)
{
	struct extract_limits lim = { .max_output = 65536, .max_depth = 64 };
	struct extract *x = extract_new(&lim);
	struct extract_doc d;
	struct buf out = BUF_INIT;
	if (extract_html(x, html, len, &d) == STATUS_OK) {
		/* Headings or tables in a title are unusual; keep their text. */
		buf_adds(&out, d.text);
		for (size_t i = 0; i < d.heading.n; i++) {
			if (out.len)
				buf_addch(&out, ' ');
			buf_adds(&out, d.heading.v[i]);
		}
		for (size_t i = 0; i < d.auxiliary_text.n; i++) {
			if (out.len)
				buf_addch(&out, ' ');
			buf_adds(&out, d.auxiliary_text.v[i]);
		}
	}
	extract_doc_release(&d);
	extract_free(x);
	char *s = buf_detach(&out, NULL);
	return s;
}

static char *clean_dup(const char *s)
{
	struct buf b = BUF_INIT;
	prepass_utf8_clean(&b, s, strlen(s));
	return buf_detach(&b, NULL);
}

enum status extract_page(struct extract *x, const struct fetch_result *r,
			 struct extract_doc *doc)
{
	if (r->cls != FETCH_OK) {
		extract_doc_init(doc);
		snprintf(x->errmsg, sizeof(x->errmsg),
			 "result of page %llu is %s, not ok",
			 (unsigned long long)r->page_id, fetch_class_str(r->cls));
		return STATUS_INVALID;
	}
	enum status st = extract_html(x, r->html ? r->html : "", r->html_len, doc);
	if (st != STATUS_OK)
		return st;
	if (r->display_title_html && *r->display_title_html)
		doc->display_title = extract_strip_html(
			r->display_title_html, strlen(r->display_title_html));
	if (!doc->display_title || !*doc->display_title) {
		free(doc->display_title);
		doc->display_title = clean_dup(r->title ? r->title : "");
	}
	for (size_t i = 0; i < r->n_categories; i++)
		list_push(&doc->category, clean_dup(r->categories[i].name));
	for (size_t i = 0; i < r->n_links; i++)
		list_push(&doc->outgoing_link, clean_dup(r->links[i].title));
	for (size_t i = 0; i < r->n_templates; i++)
		list_push(&doc->template_, clean_dup(r->templates[i].title));
	return STATUS_OK;
}
