/* SPDX-License-Identifier: MIT */
/*
 * loader.h: finds, loads and picks analyzer plugins (part of libfreshet).
 *
 * Two handles:
 *
 *  - struct loader: the set of loaded plugins.  Build it in main before any
 *    thread starts (loader_new, loader_load_dir); afterwards it is read-only
 *    and every loader_* lookup and analyzer_open() may be called from any
 *    thread at once.  loader_free() (after every thread stopped) unloads.
 *
 *  - struct analyzer: one plugin instance bound to one language, used by one
 *    thread at a time (one per worker thread).  It also caches the host side
 *    of query analysis (analyzer_query_terms).
 *
 * Language lookup (loader_pick): the code is lowercased and '_' becomes '-';
 * then the exact code is tried, then each shorter prefix cut at '-'
 * ("de-ch" -> "de", "zh-hans" -> "zh", "pt-br" -> "pt", "sr-el" -> "sr"),
 * then the plugin that serves "*" (generic).  No match at all gives
 * STATUS_NOT_FOUND (only when no generic plugin is loaded).
 */
#ifndef FRESHET_LOADER_H
#define FRESHET_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "analyzer.h"
#include "status.h"

struct loader;
struct analyzer;

/* Returns the plugin directory to use: env FRESHET_ANALYZER_DIR if set and
 * non-empty, else configured (if non-NULL and non-empty), else PKGLIBDIR.
 * The result is borrowed (from the environment or the arguments). */
const char *loader_default_dir(const char *configured);

/* Returns a new empty set of plugins.  Aborts on OOM (xmalloc). */
struct loader *loader_new(void);

/* Unloads every plugin.  Every analyzer opened from ld must be closed first.
 * NULL is a no-op. */
void loader_free(struct loader *ld);

/* Loads every "*.so" in dir (sorted by file name) with
 * dlopen(RTLD_NOW | RTLD_LOCAL).  A plugin is refused (and unloaded) when
 * dlopen fails, the entry symbol is missing, the entry returns NULL, the
 * ABI version differs, the table is smaller than
 * FRESHET_ANALYZER_API_MIN_SIZE, a function pointer or name is missing, or
 * its name or one of its languages is already served by a plugin loaded
 * earlier.  Each refusal is logged (log_warn) and kept as
 * "<path>: <reason>" (loader_refused); the others still load.
 * Returns STATUS_OK (even when some were refused), STATUS_IO when dir cannot
 * be read (message in loader_errmsg). Not thread-safe: call from main. */
enum status loader_load_dir(struct loader *ld, const char *dir);

/* Loads one plugin file (same checks as loader_load_dir).  Returns STATUS_OK,
 * or STATUS_VERSION (ABI version or size), STATUS_INVALID (no entry symbol,
 * dlopen failed, bad table, duplicate) with the reason in loader_errmsg and
 * in loader_refused. */
enum status loader_load_file(struct loader *ld, const char *path);

/* The number of loaded plugins and the i-th one's table (0 <= i < count);
 * owned by ld. */
size_t loader_count(const struct loader *ld);
const struct freshet_analyzer_api *loader_plugin(const struct loader *ld, size_t i);

/* The refusals so far: count, and the i-th "<path>: <reason>" (owned by ld). */
size_t loader_refused_count(const struct loader *ld);
const char *loader_refused(const struct loader *ld, size_t i);

/* The message of the last failed call on ld ("" if none); owned by ld. */
const char *loader_errmsg(const struct loader *ld);

/* Picks the plugin for language code lang (see above).  On success sets
 * *api and writes the code the plugin will be created with (the matched
 * code, or the normalised code for a "*" plugin) into lang_out (cap bytes,
 * NUL-terminated).  Returns STATUS_OK, STATUS_NOT_FOUND, STATUS_INVALID (lang
 * empty or longer than cap-1).  Thread-safe after loading. */
enum status loader_pick(const struct loader *ld, const char *lang,
                        const struct freshet_analyzer_api **api,
                        char *lang_out, size_t cap);

/* Opens an analyzer for language lang with plugin options (NULL for none).
 * On success sets *out (owned by the caller, close with analyzer_close).
 * On failure returns the status (STATUS_NOT_FOUND, STATUS_NOMEM,
 * STATUS_INVALID, STATUS_UNKNOWN) and, when errmsg is non-NULL, sets *errmsg
 * to a malloc'd message the caller frees.  Thread-safe after loading. */
enum status analyzer_open(const struct loader *ld, const char *lang,
                          const char *options, struct analyzer **out,
                          char **errmsg);

/* Frees an analyzer.  NULL is a no-op. */
void analyzer_close(struct analyzer *an);

/* The plugin's name and version, and the language code the instance was
 * created for (after fallback: "de" for "de-ch", the input code for the
 * generic plugin).  Owned by an; the index records name and version. */
const char *analyzer_name(const struct analyzer *an);
const char *analyzer_version(const struct analyzer *an);
const char *analyzer_language(const struct analyzer *an);

/* Runs the plugin's analyze (see analyzer.h for view, flags and cb).
 * Returns STATUS_OK; STATUS_NOMEM; STATUS_INVALID; STATUS_UNKNOWN for a
 * plugin-internal error; STATUS_SKIPPED when cb stopped the analysis.
 * Message in analyzer_errmsg. */
enum status analyzer_run(struct analyzer *an, enum freshet_view view,
                         unsigned flags, const char *text, size_t len,
                         freshet_token_fn cb, void *ctx);

/* Runs the analysis of text in both views: text_cb gets the text-view
 * terms and plain_cb the plain-view terms (either may be NULL), as two
 * analyzer_run() calls would give them.  Uses the plugin's one-pass
 * analyze_both when it has one (segmenting and case folding once), else
 * runs analyze once per view (plain view first).  The order of the calls
 * across the two callbacks is therefore plugin-dependent; within each
 * callback it is the order of the terms.  Returns as analyzer_run(). */
enum status analyzer_run_both(struct analyzer *an, unsigned flags,
                              const char *text, size_t len,
                              freshet_token_fn text_cb, void *text_ctx,
                              freshet_token_fn plain_cb, void *plain_ctx);

/* The message of the last failed call on an ("" if none); owned by an. */
const char *analyzer_errmsg(const struct analyzer *an);

/* One analyzed query term. */
struct analyzer_term {
	char *term;       /* NUL-terminated, owned by the list */
	size_t len;
	uint32_t pos;     /* word position in the query (gaps for stopwords) */
};

/* A list of analyzed terms (for one view). */
struct analyzer_terms {
	struct analyzer_term *v;
	size_t count;
};

/* Turns query text into its terms for both views: text (stemmed, what to
 * look up with the Z prefix) and plain (unstemmed, for phrases and exact
 * matches).  The same words analyzed as a document give the same terms, so
 * a query finds a document when and only when the words are in it after
 * analysis.  On success fills *text and *plain (free them with
 * analyzer_terms_release); on failure returns the status with both left
 * empty.  One thread at a time per analyzer. */
enum status analyzer_query_terms(struct analyzer *an, const char *query,
                                 size_t len, struct analyzer_terms *text,
                                 struct analyzer_terms *plain);

/* Frees the terms of a list and empties it; an empty list is a no-op. */
void analyzer_terms_release(struct analyzer_terms *terms);

#endif
