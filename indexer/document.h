/* SPDX-License-Identifier: MIT */
/*
 * document.h: a fetched page -> the shard document that indexes it.
 *
 * The builder joins three modules: the fetcher's result (fetch.h: title,
 * namespace, page language, revision, HTML, categories), the extractor's
 * fields (extract.h: text, headings, auxiliary text, display title) and the
 * analyzer of the page's language (loader.h).  Each text field (body
 * text, title, headings, auxiliary text) is analyzed in both views: the
 * plain view gives positional terms, the stemmed view terms without
 * positions, each under the field's prefix (SHARD_PREFIX_* in shard.h).
 * The titles of the redirects that point at the page (fetch_result
 * .redirects) are analyzed like the title into the redirect field (XR,
 * ZXR), each with a completion term (XRT + the folded title) and the
 * boolean term XRI + the redirect's page id, and listed in the data
 * ("redirects").  A page that is itself a redirect has no document.
 * The builder also sets the namespace, language and category filter terms,
 * the values (rev_id, rev timestamp, namespace; the shard store adds the
 * fingerprint at write time) and the data JSON that snippets come from.
 * doc/shards.md describes the resulting document.  Within one prefix,
 * positions rise through the document; successive headings (and auxiliary
 * blocks) are DOCUMENT_FIELD_GAP positions apart so that a phrase never
 * spans two of them.
 *
 * The page's language picks the analyzer: the language the API reports for
 * the page (fetch_result.language), which falls back to the wiki's.
 *
 * Used by freshet-worker (one builder per analysis thread) and by
 * reindex-page (direct mode and --dry-run, which prints the terms with
 * shard_doc_dump()).
 *
 * Threads: a struct document_builder is used by one thread at a time (it
 * holds an extractor and one analyzer per language seen); the loader it
 * borrows is shared read-only.
 */
#ifndef FRESHET_DOCUMENT_H
#define FRESHET_DOCUMENT_H

#include <stdint.h>

#include "extract.h"
#include "fetch.h"
#include "loader.h"
#include "shard.h"
#include "status.h"

/* Positions left between two headings or two auxiliary blocks. */
#define DOCUMENT_FIELD_GAP 100

struct document_builder;

/* What the writer must check with shard_check_analyzer() before writing
 * the document: the analyzer that produced its terms.  Strings are owned
 * by the builder and valid until document_builder_free(). */
struct document_analysis {
	const char *language;  /* the code the analyzer was created for */
	const char *name;      /* analyzer plugin name */
	const char *version;   /* analyzer plugin version */
};

/* Returns a new builder over the loaded plugins ld (borrowed; it must
 * outlive the builder).  Never NULL (aborts on out of memory). */
struct document_builder *document_builder_new(const struct loader *ld);

/* Closes the analyzers and frees b.  NULL is a no-op. */
void document_builder_free(struct document_builder *b);

/*
 * Builds the document of a FETCH_OK result r fetched from the wiki whose
 * Action API is api (used for the page's URL).  rev_timestamp is the
 * revision's time in unix seconds (0 when unknown).  On success sets *out
 * (caller frees with shard_doc_free()) and, when an is not NULL, *an to the
 * analyzer used, and returns STATUS_OK.  Returns STATUS_INVALID when r is
 * not FETCH_OK or is a redirect (fetch_result.is_redirect), STATUS_NOT_FOUND when no analyzer serves the language (no
 * generic plugin loaded), or the analyzer's or extractor's failure status;
 * the message is in document_builder_errmsg(b).  A failure is permanent for
 * this revision of the page (retrying the same input gives the same
 * result), except STATUS_NOMEM.
 */
enum status document_build(struct document_builder *b,
			   const struct fetch_result *r, const char *api,
			   int64_t rev_timestamp, struct shard_doc **out,
			   struct document_analysis *an);

/* The message of the last failure ("" if none), owned by b. */
const char *document_builder_errmsg(const struct document_builder *b);

/* Returns the URL of the page titled title (as MediaWiki shows it, spaces
 * allowed) on the wiki whose Action API is api: the api URL without its
 * userinfo (redact.h) and with its last path segment replaced by
 * "index.php?title=<title with underscores, percent-encoded>" (an api
 * without a path gets "/index.php?title=..." after its host).  Caller
 * frees. */
char *document_page_url(const char *api, const char *title);

/*
 * Returns title (len bytes of UTF-8) folded for title completion: accents
 * of Latin and Greek letters removed (other scripts keep their marks,
 * which are part of their letters: Cyrillic "й", Devanagari, kana),
 * letters with strokes mapped ("ø" -> "o", "ł" -> "l", "æ" -> "ae"),
 * NFKC_Casefold ("Straße" -> "strasse", full-width -> ASCII), and runs of
 * spaces and underscores made one space, trimmed.  "Élan_Vital" and
 * "elan vital" fold alike.  Invalid UTF-8 is replaced by U+FFFD.
 *
 * The builder indexes the page's title (without its namespace prefix) so
 * folded as one boolean term SHARD_PREFIX_TITLE_FOLDED + fold; the search
 * side folds what the user typed with the same function and expands it as
 * a prefix of those terms (search.h).  Never NULL; caller frees.  Any
 * thread.
 */
char *document_fold_title(const char *title, size_t len);

#endif
