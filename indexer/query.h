/* SPDX-License-Identifier: MIT */
/*
 * query.h: query text -> the Xapian query (xapian-shim.h) that finds the
 * documents document.h writes.
 *
 * This is the mirror of document.c: the query goes through the analyzer of
 * a language in both views (analyzer_query_terms(), loader.h), so that it
 * meets the documents' terms exactly as the worker wrote them, under the
 * same prefixes (shard.h):
 *
 *   field          plain view   stemmed view
 *   body text      (none)       Z
 *   title          S            ZS
 *   headings       XH           ZXH
 *   auxiliary text XA           ZXA
 *   redirect title XR           ZXR
 *
 * Query syntax:
 *
 *   word         each loose word becomes one group: the OR of its plain
 *                forms in the five fields and its stemmed forms in the
 *                five fields (a word the analyzer gives only a stem for:
 *                its stemmed forms).  Groups are ANDed: every word must
 *                match somewhere.  A stopword, which the stemmed view
 *                drops, still matches through its plain forms (the plain
 *                view keeps stopwords).
 *   "a phrase"   its plain terms in order and adjacent, in the body, the
 *                title or a redirect title.  A missing closing quote ends the phrase at
 *                the end of the text.
 *   -word        excludes the documents the word would match (as above).
 *   -"a phrase"  excludes the documents the phrase matches.
 *
 * A '-' excludes only at the start of the text or after a space or tab,
 * and only when something other than a space follows it.  Words and
 * phrases are separated by spaces or tabs; each word, phrase and
 * exclusion is one *term* of the query, and a query holds at most
 * max_terms of them (struct query_options).  A query with no positive
 * term (only exclusions, only punctuation) matches nothing: query_build()
 * then gives no query at all, and there is nothing to run.
 *
 * Languages.  A query is analyzed in each language it is built with (one
 * analyzer per language: for a search of a whole wiki, every language its
 * shards hold, shard_set_languages()), and the rules are:
 *
 *   - A document matches when, in at least one of the languages, every
 *     group and phrase matches it, and no exclusion, analyzed in any of
 *     the languages, matches it.
 *   - A stemmed form of language X only matches documents in language X:
 *     their L term is L<X> or L<X>-<variant> (a page in de-ch is analyzed
 *     by the de analyzer).  A plain form matches documents in every
 *     language.  So "библиотека" finds a Russian page holding
 *     "библиотеке" through the Russian stem, and an English word whose
 *     German stem happens to equal a German word's stem finds at most the
 *     German pages, never the English ones through the German stem.
 *   - Accent-folded forms match through the stemmed view, which folds
 *     (doc/analyzers.md): "eglise" finds "l'église" in a French page.
 *     Chinese and Japanese text is segmented by the cjk analyzer when zh
 *     or ja is among the languages, as the page was when it was indexed.
 *   - Weights: a plain match weighs 1, a stemmed match QUERY_STEM_WEIGHT,
 *     a match in the title QUERY_TITLE_WEIGHT times as much as one in the
 *     body, headings or auxiliary text.  A document holding the very word
 *     gets both (its plain and its stemmed form), one holding only
 *     another inflection gets the stemmed weight: exact matches rank
 *     above stem-only ones, and a stem collision in another language
 *     ranks below the pages holding the word itself.  Each distinct term
 *     weighs once, however many languages analyze it alike.
 *
 * With several languages, matching is decided without weights (the match
 * side is boolean) and the weights come from the distinct terms on top
 * (XQUERY_AND_MAYBE).  With one (or several codes of one analyzer), the
 * match side carries the weights itself, a term met again weighing 0:
 * the same weights, each posting list opened once instead of twice.
 * Building takes time linear in the length of the text.
 *
 * Filters (query_filter_namespaces()) are boolean: they restrict the
 * results without changing their weights.
 *
 * Run the query with shard_set_search() (shard.h); query_snippet() makes
 * the snippets of its results.  Out of memory aborts (xmalloc.h), as
 * everywhere in libfreshet.
 *
 * Threads: the functions keep no state.  An analyzer is used by one thread
 * at a time (loader.h), so a thread that builds queries needs its own
 * analyzer; a query may be shared read-only.
 */
#ifndef FRESHET_QUERY_H
#define FRESHET_QUERY_H

#include <jansson.h>
#include <stddef.h>

#include "loader.h"
#include "status.h"
#include "xapian-shim.h"

/* How much more a match in the title weighs than one elsewhere. */
#define QUERY_TITLE_WEIGHT 3.0
/* How much a stemmed (or accent-folded) match weighs against a plain one:
 * below a third, so that a stem-only match in a title still weighs less
 * than the exact word in the body. */
#define QUERY_STEM_WEIGHT 0.25
/* The default cap on the terms (words, phrases, exclusions) of a query. */
#define QUERY_MAX_TERMS 32

/* How to build a query (query_build_opts()). */
struct query_options {
	unsigned flags;   /* must be 0 (no flag is defined yet) */
	size_t max_terms; /* most terms a query may hold; 0: QUERY_MAX_TERMS */
};

/*
 * Builds the query of text (len bytes of UTF-8; a NUL byte ends it early)
 * analyzed in each of the n languages of an[0..n) (the caller's analyzers,
 * one per language; see the thread rule above and "Languages" for what the
 * query then matches).  Analyzers of the same language (analyzer_language(),
 * e.g. opened for "de" and "de-ch") count once.  opt NULL means the
 * defaults (flags 0, QUERY_MAX_TERMS).
 *
 * Returns STATUS_OK and sets *out to the query (caller frees with
 * xquery_free()), or to NULL when the text has no positive term (nothing
 * can match: do not search).  On failure leaves *out alone and, when
 * errmsg is not NULL, sets *errmsg to a message the caller frees:
 *   STATUS_INVALID  n is 0, an unknown flag, or more terms than
 *                   max_terms ("too many terms (N > MAX)");
 *   the failing analyzer's status (STATUS_NOMEM, STATUS_INVALID,
 *   STATUS_UNKNOWN; see analyzer_run()), with its message
 *   (analyzer_errmsg(), which names its plugin and language).
 */
enum status query_build_opts(struct analyzer *const *an, size_t n,
			     const char *text, size_t len,
			     const struct query_options *opt,
			     struct xquery **out, char **errmsg);

/* The number of terms (words, phrases, exclusions) in text, counted as
 * query_build_opts() counts them against max_terms. */
size_t query_count_terms(const char *text, size_t len);

/* query_build_opts() with one language: the query analyzed with an only
 * (an explicit language: stems then match an's language's documents
 * only), flags as query_options, at most QUERY_MAX_TERMS terms. */
enum status query_build(struct analyzer *an, const char *text, size_t len,
			unsigned flags, struct xquery **out, char **errmsg);

/* query_build_opts() with flags and the default cap (QUERY_MAX_TERMS).  A
 * search of a whole wiki passes one analyzer per language its shards hold
 * (shard_set_languages(), plus the wiki's own language), opened with
 * analyzer_open() on each code; a search in one given language passes
 * that language's analyzer alone.  With n == 1 this is query_build(). */
enum status query_build_multi(struct analyzer *const *an, size_t n,
			      const char *text, size_t len, unsigned flags,
			      struct xquery **out, char **errmsg);

/*
 * Restricts *q to the documents in one of the n namespaces ns (the XNS
 * terms; boolean, adds no weight): replaces *q with the filtered query and
 * frees the old one.  n == 0, or *q NULL (no query), leaves *q as it is.
 */
void query_filter_namespaces(struct xquery **q, const int *ns, size_t n);

/*
 * For a hit found by text: returns the title of the redirect it was found
 * through, or NULL when it was not (caller frees).  fields are the hit's
 * data fields (shard_data_decode(), borrowed; their "title" and
 * "redirects"), an the analyzer the query was built with.  A redirect title is the one found through when it
 * holds more of the query's words (compared by their stemmed and plain
 * forms, as the query matches them) than the page's title does; of
 * several, the one holding the most, the first of equals.  NULL also when
 * the fields hold no redirects, or the analyzer fails.
 * The search programs show it as "(redirect from <title>)".
 */
char *query_redirect_match(struct analyzer *an, const char *text, size_t len,
			   const json_t *fields);

/* Flags of query_snippet(). */
#define QUERY_SNIPPET_HTML 0x1u /* keep the text HTML-escaped (&amp; &lt; ...) */

/*
 * Returns a snippet of about max_len bytes of text (len bytes of UTF-8: a
 * document's stored text, shard_data's text) around the words of the
 * search that gave ms, each match between hi_start and hi_end (NULL for
 * nothing); omitted text is marked "...".  language is the document's
 * language code (its data's "language"): its Snowball stemmer (language.h)
 * lets stemmed matches light up too; a language without a stemmer, or one
 * whose stemmer Xapian lacks, lights up exact words only.
 *
 * Without QUERY_SNIPPET_HTML the result is plain text: the HTML escaping
 * Xapian applies to the text is undone (hi_start and hi_end are never
 * escaped).  With it the text stays escaped, for an HTML page.
 *
 * Never NULL: "" when no snippet could be made.  Caller frees.  ms is used
 * by one thread at a time (xapian-shim.h).
 */
char *query_snippet(struct xmset *ms, const char *text, size_t len,
		    const char *language, size_t max_len,
		    const char *hi_start, const char *hi_end, unsigned flags);

#endif
