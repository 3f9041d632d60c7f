/* SPDX-License-Identifier: MIT */
/*
 * analyzer.h: freshet's analyzer plugin ABI (installed header).
 *
 * An analyzer plugin is a shared object (built with libtool
 * `-module -avoid-version -export-symbols-regex '^freshet_'`) that exports
 * exactly one symbol:
 *
 *     const struct freshet_analyzer_api *freshet_analyzer_entry(void);
 *
 * The entry returns a pointer to a static, constant table that lives as long
 * as the shared object is loaded.  The table starts with the ABI version and
 * the size of the table as the plugin knows it, so that later versions of
 * this header can append members: a host reads a member only when
 * struct_size says the plugin has it.  A host refuses a plugin whose
 * abi_version differs from the FRESHET_ANALYZER_ABI_VERSION it was built
 * with, or whose struct_size is smaller than
 * FRESHET_ANALYZER_API_MIN_SIZE.
 *
 * Contract (modelled on SQLite's fts5 tokenizer API):
 *
 * Ownership.  Every pointer the host passes in (language, options, text) is
 * borrowed for the duration of the call; a plugin copies what it keeps.
 * Every pointer the plugin hands out (name, version, languages, errmsg,
 * the term passed to the token callback) stays owned by the plugin: the
 * table's strings live as long as the shared object, errmsg() until the next
 * call on that instance, and a term only until the callback returns (copy it
 * to keep it).
 *
 * Text.  Input text is UTF-8 given as pointer + length; it need not be
 * NUL-terminated and may contain NUL bytes or invalid UTF-8 (invalid
 * sequences are treated as U+FFFD and never produce a term).  Terms passed to
 * the callback are valid UTF-8, NUL-terminated at term[len], never empty, in
 * Unicode NFC/NFKC form as the view defines, and at most
 * FRESHET_ANALYZER_MAX_TERM bytes long (longer words are dropped, not cut).
 *
 * Offsets and positions.  start and end are the byte offsets in the input of
 * the word a term came from (end exclusive).  pos counts words from 0 in the
 * order they appear in the input; a word the view removes (a stopword in the
 * text view) still consumes its position, so the next term's pos jumps: this
 * keeps phrase queries honest.  Two terms may share a position (a plugin that
 * emits synonyms); positions never decrease.  Korean and unsegmented CJK runs
 * are emitted as overlapping bigrams, each bigram one position.
 *
 * Callback return.  The token callback returns 0 to go on.  Any non-zero
 * return stops the analysis at once: analyze() emits nothing more and
 * returns FRESHET_ANALYZER_STOPPED; the host keeps its own reason in its ctx.
 *
 * Threads.  The table and its functions may be used from any thread.
 * create() may be called from several threads at once.  An instance is used
 * by one thread at a time (analyze, errmsg, destroy are never called
 * concurrently on the same instance); different instances are independent.
 *
 * Failure.  A plugin never calls back into the host (it links nothing of the
 * host), never aborts, never exits and never prints: it returns a
 * freshet_analyzer_status, including FRESHET_ANALYZER_NOMEM when memory runs
 * out, and leaves a message in errmsg() (or in create()'s errbuf).  After a
 * failed analyze() the instance stays usable.
 *
 * Views.  FRESHET_VIEW_TEXT is the stemmed view: case folded, accent folded
 * (where the language's script allows it), elided, stopwords removed,
 * stemmed.  FRESHET_VIEW_PLAIN is the unstemmed view: case folded (NFKC
 * case fold), elided, accents kept, no stopword removal.  Both views exist
 * for documents and for queries (FRESHET_ANALYZE_QUERY); a query analyzed
 * with the same view as a document yields the same terms for the same words,
 * which is what makes a query find a document.
 */
#ifndef FRESHET_ANALYZER_H
#define FRESHET_ANALYZER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this ABI.  Bumped when a member changes meaning; appending
 * members does not bump it (struct_size tells). */
#define FRESHET_ANALYZER_ABI_VERSION 1

/* The longest term (in bytes, without the NUL) a plugin emits. */
#define FRESHET_ANALYZER_MAX_TERM 240

/* The name of the one exported entry symbol. */
#define FRESHET_ANALYZER_ENTRY "freshet_analyzer_entry"

/* What analyze() and create() return. */
enum freshet_analyzer_status {
	FRESHET_ANALYZER_OK = 0,
	FRESHET_ANALYZER_NOMEM = 1,      /* out of memory; nothing leaked */
	FRESHET_ANALYZER_INVALID = 2,    /* bad argument, unknown option */
	FRESHET_ANALYZER_UNSUPPORTED = 3,/* language not served by this plugin */
	FRESHET_ANALYZER_INTERNAL = 4,   /* a library (ICU, Snowball) failed */
	FRESHET_ANALYZER_STOPPED = 5     /* the token callback returned non-zero */
};

/* The two views of a text. */
enum freshet_view {
	FRESHET_VIEW_TEXT = 0,   /* stemmed: Z-prefixed terms in the index */
	FRESHET_VIEW_PLAIN = 1   /* unstemmed, accents kept, case folded */
};

/* Flags for analyze(). */
#define FRESHET_ANALYZE_QUERY 0x1u
/* The text is analyzed as a query rather than a document.  Plugins of ABI
 * version 1 produce the same terms for both; the flag exists so that a
 * plugin may, for instance, keep a trailing partial word. */

#define FRESHET_ANALYZE_STEM_ONLY 0x2u
/* Stem only (text view only): the input is ONE already-normalised word; it is
 * neither segmented, case folded, accent folded nor checked against the
 * stopword list, only stemmed, and emitted as one term at pos 0 (with
 * offsets 0..len).  This is how the conformance tests run the Snowball
 * vocabularies through the plugin.  Plugins without a stemmer emit the word
 * unchanged.  When the stemmer reduces the word to nothing (Snowball does for
 * a few Greek, Tamil, Turkish and Yiddish words) no term is emitted; the
 * normal text view emits the unstemmed word instead. */

#define FRESHET_ANALYZE_SEGMENTS 0x4u
/* Conformance testing: emit every segment between two word boundaries
 * (words, spaces and punctuation alike) with its raw input bytes as the term,
 * pos counting segments from 0; no folding, no filtering, no length cap
 * beyond FRESHET_ANALYZER_MAX_TERM. */

/* An analyzer instance (opaque, plugin-defined). */
struct freshet_analyzer;

/* Receives one term.  term is NUL-terminated (term[len] == 0), owned by the
 * plugin and valid only during the call.  [start, end) are byte offsets in
 * the analyzed text, pos the word position (see above).  Returns 0 to go on,
 * non-zero to stop the analysis. */
typedef int (*freshet_token_fn)(void *ctx, const char *term, size_t len,
                                size_t start, size_t end, uint32_t pos);

struct freshet_analyzer_api {
	/* Must be FRESHET_ANALYZER_ABI_VERSION. */
	uint32_t abi_version;
	/* sizeof(struct freshet_analyzer_api) as the plugin was compiled. */
	uint32_t struct_size;

	/* The plugin's name ("snowball") and version ("1.0"): the index records
	 * them so that a change of analysis is detected (terms of a different
	 * analyzer version do not match).  Static strings. */
	const char *name;
	const char *version;

	/* The language codes this plugin serves, NULL-terminated, lowercase
	 * BCP 47 / MediaWiki codes ("en", "de", "zh", "pt-br").  The single code
	 * "*" means "every language": the generic fallback.  Static. */
	const char *const *languages;

	/* Creates an instance for language lang (one of languages, or any code
	 * for a "*" plugin) with options (NULL or a plugin-defined string of
	 * "key=value" pairs; freshet's plugins separate them with commas).
	 * On success sets *out and returns FRESHET_ANALYZER_OK; on failure
	 * leaves a NUL-terminated message in errbuf (errlen bytes, may be 0)
	 * and returns the status.  Thread-safe. */
	int (*create)(const char *lang, const char *options,
	              struct freshet_analyzer **out, char *errbuf, size_t errlen);

	/* Frees an instance; NULL is a no-op. */
	void (*destroy)(struct freshet_analyzer *an);

	/* Analyzes text[0..len) in the given view with flags
	 * (FRESHET_ANALYZE_*), calling cb(ctx, ...) once per term in order.
	 * Returns FRESHET_ANALYZER_OK, FRESHET_ANALYZER_STOPPED when cb asked to
	 * stop, or an error (message in errmsg()). */
	int (*analyze)(struct freshet_analyzer *an, enum freshet_view view,
	               unsigned flags, const char *text, size_t len,
	               freshet_token_fn cb, void *ctx);

	/* The message of the last failed call on an, "" if none.  Owned by the
	 * instance, valid until the next call on it. */
	const char *(*errmsg)(struct freshet_analyzer *an);

	/* Appended member (a host uses it only when struct_size covers it and
	 * it is not NULL; otherwise it calls analyze() once per view).
	 * Analyzes text[0..len) once for both views: text_cb receives exactly
	 * the terms analyze(FRESHET_VIEW_TEXT) would give and plain_cb exactly
	 * those of analyze(FRESHET_VIEW_PLAIN), with the same offsets and
	 * positions, interleaved word by word (a word's plain term before its
	 * text term).  Either callback may be NULL.  flags as for analyze(),
	 * except FRESHET_ANALYZE_STEM_ONLY and FRESHET_ANALYZE_SEGMENTS, which
	 * are single-view and refused.  It exists so that a page's text is
	 * segmented and case folded once, not once per view.  Returns as
	 * analyze(). */
	int (*analyze_both)(struct freshet_analyzer *an, unsigned flags,
	                    const char *text, size_t len,
	                    freshet_token_fn text_cb, void *text_ctx,
	                    freshet_token_fn plain_cb, void *plain_ctx);
};

/* The smallest table a host of this version accepts. */
#define FRESHET_ANALYZER_API_MIN_SIZE \
	(offsetof(struct freshet_analyzer_api, errmsg) + sizeof(void *))

/* The entry point every plugin exports. */
typedef const struct freshet_analyzer_api *(*freshet_analyzer_entry_fn)(void);
const struct freshet_analyzer_api *freshet_analyzer_entry(void);

#ifdef __cplusplus
}
#endif

#endif
