/* SPDX-License-Identifier: MIT */
/*
 * extract.h: MediaWiki's rendered HTML -> the fields a search index wants.
 *
 * The fields are those CirrusSearch builds (WikiTextStructure.php):
 *
 *   text            the body text, without headings and without the
 *                   auxiliary text; reference markers (sup.reference),
 *                   .mw-cite-backlink, .mw-editsection, script, style,
 *                   .navigation-not-searchable, .autocollapse, audio and
 *                   video, and the table of contents (#toc, .toc) removed;
 *                   an element both excluded and auxiliary (a hatnote with
 *                   navigation-not-searchable) is excluded, as in
 *                   CirrusSearch
 *   opening_text    the text before the first heading (same exclusions)
 *   heading[]       the text of each h1-h6 (edit-section links removed);
 *                   like CirrusSearch, "References", "External links" and
 *                   "See also" headings are left out
 *   auxiliary_text[] one entry per top-level auxiliary block: table,
 *                   .thumbcaption, figcaption, .hatnote, .rellink,
 *                   .dablink, .searchaux
 *
 * and, from the API answer: display_title (HTML stripped), category[],
 * outgoing_link[], template[] (see extract_page()).
 *
 * Text rules: block elements (p, div, li, td, br, h1-h6, ...) are word
 * breaks, so "end.</p><p>Next" gives "end. Next"; entities are decoded;
 * runs of white space (and U+00A0, &nbsp;) become one space, none leading
 * or trailing; invalid UTF-8 is replaced with U+FFFD; the output is always
 * valid UTF-8.
 *
 * Bounds: the parser is libxml2's HTML push parser in SAX mode (no tree is
 * built).  A pre-pass (prepass.h) bounds element nesting at max_depth: a
 * start tag deeper than that, and an end tag that closes nothing, become
 * a space (a word break; text is kept, a script's or style's body is
 * dropped), because libxml2 scans its whole element stack for every
 * unmatched end tag (quadratic time on hostile input).  If libxml2's own
 * depth still passes the bound, the parse stops there and the document is
 * marked truncated.  Each output field stops growing at max_output bytes
 * on a character boundary (truncated is then set), so memory and time are
 * linear in the input whatever its shape.  For speed the same pre-pass
 * drops the attributes that cannot change the fields (all but a class
 * naming one of the classes above and id="toc"), only where it reads the
 * tags exactly as libxml2 does; the fields are the same as without it.
 *
 * A struct extract is used by one thread at a time; use one per thread.
 */
#ifndef FRESHET_EXTRACT_H
#define FRESHET_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

struct fetch_result;

struct extract_limits {
	size_t max_output;   /* bytes per output field [4 MiB] */
	unsigned max_depth;  /* element nesting that is tracked [256] */
};

/* A list of NUL-terminated UTF-8 strings. */
struct extract_list {
	char **v;
	size_t n;
};

/* The fields of one page.  Every string is valid UTF-8 and NUL-terminated
 * (never NULL after a successful call: empty fields are "").  Owned by the
 * struct; released by extract_doc_release(). */
struct extract_doc {
	char *text;
	size_t text_len;
	char *opening_text;
	struct extract_list heading;
	struct extract_list auxiliary_text;
	char *display_title;
	struct extract_list category;
	struct extract_list outgoing_link;
	struct extract_list template_;  /* "template" (C++ keyword) */
	bool truncated;                 /* a field hit max_output */
};

/* Zeroes doc (so that extract_doc_release() on it is safe). */
void extract_doc_init(struct extract_doc *doc);
/* Frees what doc holds and zeroes it. */
void extract_doc_release(struct extract_doc *doc);

struct extract;

/* Creates an extractor.  lim NULL means the defaults.  Aborts on OOM. */
struct extract *extract_new(const struct extract_limits *lim);
/* NULL is a no-op. */
void extract_free(struct extract *x);

/* Extracts text, opening_text, heading and auxiliary_text from html (len
 * bytes, need not be NUL-terminated, any bytes) into doc, which the call
 * initialises (earlier contents are not freed: release them first).
 * Returns STATUS_OK (malformed HTML is not an error: it is parsed as a
 * browser would, roughly), or STATUS_NOMEM if libxml2 cannot allocate its
 * parser (message in extract_errmsg()). */
enum status extract_html(struct extract *x, const char *html, size_t len,
			 struct extract_doc *doc);

/* extract_html() on r->html, plus display_title (r->display_title_html
 * with tags stripped, else r->title), category (names, hidden ones too, as
 * CirrusSearch does), outgoing_link and template_ (prefixed titles) from a
 * FETCH_OK result.  Returns as extract_html(); STATUS_INVALID if r is not
 * FETCH_OK. */
enum status extract_page(struct extract *x, const struct fetch_result *r,
			 struct extract_doc *doc);

/* Returns the text of an HTML fragment (tags stripped, entities decoded,
 * white space collapsed, valid UTF-8).  Caller frees.  For display titles. */
char *extract_strip_html(const char *html, size_t len);

/* The last error message ("" if none); owned by x. */
const char *extract_errmsg(const struct extract *x);

#endif
