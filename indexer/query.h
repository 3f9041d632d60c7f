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
 *                forms in the four fields and its stemmed forms in the
 *                four fields (a word the analyzer gives only a stem for:
 *                Z, ZS and ZXR), the title and redirect title forms
 *                weighted QUERY_TITLE_WEIGHT times.  Groups are ANDed: every word must match somewhere.
 *                A stopword, which the stemmed view drops, still matches
 *                through its plain forms (the plain view keeps stopwords).
 *   "a phrase"   its plain terms in order and adjacent, in the body or
 *                (weighted) in the title or a redirect title.  A missing closing quote ends
 *                the phrase at the end of the text.
 *   -word        excludes the documents the word would match (as above).
 *   -"a phrase"  excludes the documents the phrase matches.
 *
 * A '-' excludes only at the start of the text or after a space or tab,
 * and only when something other than a space follows it.
 *
 * Words and phrases are separated by spaces or tabs.  A query with no
 * positive term (only exclusions, only punctuation) matches nothing:
 * query_build() then gives no query at all, and there is nothing to run.
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

#include <stddef.h>

#include "loader.h"
#include "status.h"
#include "xapian-shim.h"

/* How much more a match in the title weighs than one elsewhere. */
#define QUERY_TITLE_WEIGHT 3.0

/*
 * Builds the query of text (len bytes of UTF-8; a NUL byte ends it early)
 * analyzed with an (the caller's; see the thread rule above).  flags must
 * be 0 (no flag is defined yet).
 *
 * Returns STATUS_OK and sets *out to the query (caller frees with
 * xquery_free()), or to NULL when the text has no positive term (nothing
 * can match: do not search).  On failure returns the analyzer's status
 * (STATUS_NOMEM, STATUS_INVALID, STATUS_UNKNOWN; see analyzer_run()), or
 * STATUS_INVALID for a flag, leaves *out alone and, when errmsg is not
 * NULL, sets *errmsg to a message the caller frees.
 */
enum status query_build(struct analyzer *an, const char *text, size_t len,
			unsigned flags, struct xquery **out, char **errmsg);

/*
 * As query_build(), for n analyzers at once (one per language, e.g. each
 * language the shards hold): a document matches when the query, analyzed
 * in at least one of the languages, matches it, unless an excluded word or
 * phrase, analyzed in any of them, matches it.  Weights of a document
 * that matches in several languages add.  n must be at least 1
 * (STATUS_INVALID otherwise); with n == 1 this is query_build().  The
 * message of a failure is the failing analyzer's (analyzer_errmsg()),
 * which names its plugin and language.
 */
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
 * through, or NULL when it was not (caller frees).  data is the hit's data
 * JSON (data_len bytes; its "title" and "redirects"), an the analyzer the
 * query was built with.  A redirect title is the one found through when it
 * holds more of the query's words (compared by their stemmed and plain
 * forms, as the query matches them) than the page's title does; of
 * several, the one holding the most, the first of equals.  NULL also when
 * the data has no redirects or cannot be read, or the analyzer fails.
 * The search programs show it as "(redirect from <title>)".
 */
char *query_redirect_match(struct analyzer *an, const char *text, size_t len,
			   const char *data, size_t data_len);

/* Flags of query_snippet(). */
#define QUERY_SNIPPET_HTML 0x1u /* keep the text HTML-escaped (&amp; &lt; ...) */

/*
 * Returns a snippet of about max_len bytes of text (len bytes of UTF-8: a
 * document's stored text, the "text" of its data) around the words of the
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
