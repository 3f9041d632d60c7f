/* SPDX-License-Identifier: MIT */
/*
 * language.h: the one table of the languages freshet analyzes with more
 * than the generic chain: which plugin serves each language code, which
 * Snowball stemmer it uses, and what the analysis chain does differently
 * for it.
 *
 * Both sides of the index read this table, so that a query meets the
 * documents' terms:
 *
 *  - the plugins (analyzers/chain.c, which compiles language.c in): each
 *    serves the codes whose row names it (language_codes()) and builds an
 *    instance from the row (language_find());
 *  - the host (libfreshet): the query side asks for the Snowball stemmer
 *    of a document's language (query.h, for snippets).
 *
 * A code that is in no row is served by the generic plugin: no stemmer,
 * no stopwords.  Adding a language is adding a row here (and a stopword
 * list in analyzers/stopwords/ if it has one); a change of a served
 * language's row changes its terms, so raise the plugin version with it.
 *
 * This module is plain data: no allocation, no logging, nothing from
 * libfreshet, so that a plugin can compile it in.  Thread-safe.
 */
#ifndef FRESHET_LANGUAGE_H
#define FRESHET_LANGUAGE_H

#include <stdbool.h>
#include <stddef.h>

/* How freshet analyzes one language.  Every string is static. */
struct language {
	const char *code;      /* "de": lowercase, as the plugin serves it */
	const char *plugin;    /* the plugin that serves it: "snowball", "cjk",
	                          "sea" */
	const char *stemmer;   /* Snowball algorithm ("german"), NULL for none */
	/* What the chain does beyond stemming (see chain.c): */
	const char *const *elision; /* articles elided before an apostrophe
	                               (l'église -> église), NULL-terminated;
	                               NULL for none */
	bool possessive;       /* strip English 's */
	bool turkish;          /* Turkish lowercasing first (I -> ı) */
	bool german;           /* ß kept in the plain view; ae/oe/ue -> ä/ö/ü in
	                          the text view */
	bool cjk;              /* bigrams for Hangul and long Han runs */
	const char *keep;      /* letters not accent-folded (UTF-8, lowercase),
	                          NULL for none */
};

/* Returns the row of code: the exact code, else its primary subtag (the
 * part before the first '-' or '_': "pt-br" -> "pt").  Codes are compared
 * as they are (lowercase, as MediaWiki writes them).  Returns NULL when
 * neither is in the table (NULL or "" code too): the generic chain. */
const struct language *language_find(const char *code);

/* Stores the codes of the rows whose plugin is `plugin`, in table order,
 * into out[0..cap) and returns how many there are (which may exceed cap:
 * then only cap were stored).  The strings are static. */
size_t language_codes(const char *plugin, const char **out, size_t cap);

#endif
