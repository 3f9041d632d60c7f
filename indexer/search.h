/* SPDX-License-Identifier: MIT */
/*
 * search.h: the one query path of freshet's two search front ends,
 * freshet-search (the command line) and freshet-searchd (the HTTP
 * service): from a request (wiki, query text, namespaces, page, language)
 * to the results, with their snippets, and the same for title completion.
 *
 * A struct searcher holds, for one thread, a reader on each configured
 * wiki's shards (shard.h) and the analyzers the queries need (one per
 * language, opened on first use).  Every call first brings the wiki's
 * reader to the newest commit, or to the new generation when `current`
 * moved, so a long-running server follows the worker and rebuilds without
 * restarting.
 *
 * Languages: without a language in the request the query is analyzed in
 * every language the wiki's shards hold documents of (their L<code> terms;
 * the wiki's configured language when the index is empty) and a document
 * matches in any of them (query_build_multi(), query.h); with one, in
 * that language only.
 *
 * Partial answers: a searcher made with SEARCHER_PARTIAL answers from the
 * shards that open and counts the others (search_result.shards_failed);
 * the caller must show that count (freshet-searchd answers 503 with the
 * results of the other shards).  Without it, one shard that cannot be
 * opened fails the call.
 *
 * Errors: the calls return STATUS_OK or a status, with a message and a
 * short code naming the kind of error (searcher_errmsg(),
 * searcher_errcode()): STATUS_INVALID for a bad request ("bad_parameter",
 * "query_too_long", "too_many_terms"), STATUS_NOT_FOUND for an unknown
 * wiki ("unknown_wiki"), other statuses when the shards cannot be searched
 * ("shards_unavailable", "search_failed").  Out of memory aborts
 * (xmalloc.h).
 *
 * Threads: a searcher is used by one thread at a time (its readers and
 * analyzers are); make one per thread.  The configuration and the loader
 * are borrowed, shared read-only, and must outlive every searcher.
 */
#ifndef FRESHET_SEARCH_H
#define FRESHET_SEARCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "loader.h"
#include "status.h"

/* Matches counted exactly before the total becomes a lower bound. */
#define SEARCH_COUNT_EXACT 1000
/* Title completion: at most this many completion prefix terms are read,
 * and pages passed over, per rank; a query longer than
 * SHARD_COMPLETION_CHARS expands at most this many folded titles (and as
 * many redirect titles) in byte order and ranks their pages. */
#define SEARCH_COMPLETE_EXPAND 256

struct searcher;

/* Flags of searcher_new(). */
#define SEARCHER_PARTIAL 0x1u /* answer from the shards that open (above) */

/* Returns a new searcher over every wiki of cfg, with analyzers from ld
 * (both borrowed; they must outlive it).  Nothing is opened yet.  Never
 * NULL. */
struct searcher *searcher_new(const struct conf *cfg, const struct loader *ld,
			      unsigned flags);
/* Closes the readers and analyzers and frees s.  NULL is a no-op. */
void searcher_free(struct searcher *s);
/* The message and the code of the last failure ("" when none); owned by
 * s, valid until the next call on s. */
const char *searcher_errmsg(const struct searcher *s);
const char *searcher_errcode(const struct searcher *s);

struct search_request {
	const char *wiki;        /* a configured wiki id */
	const char *query;       /* the query text (query.h's syntax) */
	size_t query_len;
	const int *ns;           /* namespaces to search; n_ns 0: all */
	size_t n_ns;
	unsigned offset, limit;
	const char *lang;        /* analyze in this language only; NULL: every
				    language of the shards */
	size_t max_query_bytes;  /* longer queries are refused; 0: no bound */
	size_t max_terms;        /* queries with more words are refused; 0: no
				    bound */
	unsigned timeout_ms;     /* matching time limit; 0: none */
	/* Snippets: the marks around matches (NULL for none), and
	 * QUERY_SNIPPET_HTML to keep the text HTML-escaped. */
	const char *hi_start, *hi_end;
	unsigned snippet_flags;
	size_t snippet_bytes;    /* about this long; 0 for 200 */
};

struct search_hit {
	json_t *data;            /* the document's data fields (doc/shards.md,
				    shard_data_decode(); no text), owned */
	unsigned rank;           /* 0-based, in the whole result list */
	double score;
	char *snippet;           /* of the text, never NULL */
	char *title_snippet;     /* the title with its matches, never NULL */
	char *redirect_title;    /* the redirect title the page matched through
				    (query_redirect_match()), or NULL */
	uint64_t size;           /* bytes of the stored text */
	uint64_t word_count;     /* words (runs of non-space) of the stored text */
};

struct search_result {
	uint64_t total;          /* matches: exact, or a lower bound */
	bool total_exact;        /* "eq" (true) or "gte" (false) */
	unsigned shards_total, shards_ok, shards_failed;
	char *shard_error;       /* why the first failed shard failed, or NULL */
	double took_ms;
	struct search_hit *hits; /* best first */
	size_t n_hits;
};

/* Runs rq.  On STATUS_OK fills *res (release with search_result_release()),
 * also when shards failed (res->shards_failed > 0; results come from the
 * others) or when nothing matched.  On failure leaves *res empty (still
 * safe to release) and sets the message and code. */
enum status searcher_search(struct searcher *s, const struct search_request *rq,
			    struct search_result *res);
/* Frees what res holds and zeroes it. */
void search_result_release(struct search_result *res);
/* The result as freshet-searchd's JSON answer (doc/freshet-searchd.1):
 * {"query", "total", "total_relation", "shards", "took_ms", "results"}.
 * query is rq's text.  Caller owns the reference. */
json_t *search_result_json(const struct search_result *res,
			   const struct search_request *rq);

struct complete_request {
	const char *wiki;
	const char *query;       /* the beginning of a title */
	size_t query_len;
	const int *ns;           /* n_ns 0: all namespaces */
	size_t n_ns;
	unsigned limit;
	size_t max_query_bytes;  /* 0: no bound */
};

struct complete_hit {
	uint64_t page_id;
	char *title;
	char *url;
	char *redirect_title;    /* the redirect title that completed, or NULL */
};

struct complete_result {
	unsigned shards_total, shards_ok, shards_failed;
	struct complete_hit *hits;
	size_t n_hits;
};

/*
 * Completes rq->query as the beginning of titles: the pages whose folded
 * title (document_fold_title(), without the namespace prefix) starts with
 * the folded query, the exact title first, then the titles it starts,
 * then the redirect titles it starts; within each, the longer document
 * first (its length in terms: a longer page is likelier the one meant),
 * then the older document.  The ranking reads the posting and length
 * lists of the expanded terms only; then the stored fields (value
 * SHARD_VALUE_FIELDS) of the best candidates, until limit live pages in
 * the namespaces asked for are found.
 * Returns as searcher_search(); STATUS_INVALID for an empty or too long
 * query.
 */
enum status searcher_complete(struct searcher *s,
			      const struct complete_request *rq,
			      struct complete_result *res);
void complete_result_release(struct complete_result *res);
/* {"query", "results": [{"page_id", "title", "url", "redirect_title"}]} */
json_t *complete_result_json(const struct complete_result *res,
			     const struct complete_request *rq);

/* Opens (or brings up to date) the reader of wiki and sets *total and
 * *failed to its shard counts.  STATUS_NOT_FOUND for an unknown wiki; the
 * status of the open when no shard opens (then *failed == *total). */
enum status searcher_check(struct searcher *s, const char *wiki,
			   unsigned *total, unsigned *failed);
/* How many times the wiki's reader was opened anew or reopened after a
 * concurrent commit (shard_set_opens()); 0 for an unknown wiki. */
uint64_t searcher_opens(const struct searcher *s, const char *wiki);

#endif
