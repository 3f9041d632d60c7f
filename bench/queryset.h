/* SPDX-License-Identifier: MIT */
/*
 * queryset.h: the queries the search benchmarks ask (bench-searchd,
 * bench-failover) and the HTTP request that asks one of freshet-searchd.
 *
 * The set is drawn deterministically (harness_rnd(), a fixed xorshift
 * seed) from the extracted text of random pages of a corpus of
 * bench/make-pipeline-corpus.sh, the text the shards hold, in each page's
 * language: QUERYSET_N queries of 1 to 3 words of a page, every tenth a
 * quoted phrase of 2 or 3 adjacent words, and as many completion
 * prefixes, "Man:" (which every title of the corpus starts with) followed
 * by 1 to 6 characters of a page's name.
 *
 * The set is process-wide state, made once by queryset_make() before
 * threads start and only read afterwards; queryset_search() may then be
 * called from any thread, each with its own curl handle.
 */
#ifndef FRESHET_BENCH_QUERYSET_H
#define FRESHET_BENCH_QUERYSET_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define QUERYSET_N 1000

struct query {
	char *q;           /* the query text */
	char lang[16];     /* the page's language */
	const char *pgcfg; /* PostgreSQL text search configuration */
	bool phrase;
};

extern struct query queryset_queries[QUERYSET_N];
extern char *queryset_prefixes[QUERYSET_N];
/* Per page id (1..harness_npages) of the corpus: its language and title
 * (NULL when pages.tsv lists none), from queryset_read_pages(). */
extern char (*queryset_page_lang)[16];
extern char **queryset_page_title;

/* Reads the corpus's pages.tsv (languages and titles).  Dies on a missing
 * file. */
void queryset_read_pages(const char *corpus);
/* Draws the queries and the prefixes from the corpus (after
 * queryset_read_pages()). */
void queryset_make(const char *corpus);
/* The extracted text of page id (text, headings, auxiliary text), as the
 * shards hold it; x is the caller's extractor.  Caller frees. */
struct extract;
char *queryset_page_text(struct extract *x, const char *corpus, long id);
/* PostgreSQL's text search configuration for a language code ("simple"
 * for the languages it has none for). */
const char *queryset_pg_config(const char *lang);

/* Asks freshet-searchd on 127.0.0.1:port GET /v1/<wiki>/search?q=<q>&lang=
 * <its language>&limit=20 (complete: GET /v1/<wiki>/complete?q=<prefix k>
 * instead, k the index of the query) through h, a keep-alive handle of the
 * calling thread; the answer goes to body (reset first).  Returns true on
 * a 200, false with a message in err otherwise. */
bool queryset_search(CURL *h, int port, const char *wiki, size_t k, bool complete, struct buf *body,
		     char *err, size_t errlen);

#endif
