/* SPDX-License-Identifier: MIT */
/*
 * fetch.h: fetching pages from a wiki's Action API, asynchronously.
 *
 * For a (wiki, page id [, expected rev id]) the fetcher GETs
 *
 *   <api>?action=parse&pageid=<id>&prop=text|displaytitle|categories|
 *         revid|links|templates&formatversion=2&format=json&
 *         disableeditsection=1&disablelimitreport=1&disabletoc=1
 *
 * (no "sections": nothing uses them, and every byte of the answer costs
 * JSON decoding time, the main cost of a fetch)
 *
 * and, batched by up to 50 page ids per request,
 *
 *   <api>?action=query&prop=info|revisions|redirects&rvprop=ids|timestamp&
 *         rdlimit=max&rdprop=pageid|title&pageids=<id>|<id>..&formatversion=2&format=json
 *
 * for what the parse answer lacks (the page's language and namespace, its
 * latest revision, whether it is a redirect, and the redirect pages that
 * point at it: their titles belong to its document).  A page the info
 * query calls a redirect gets one more request,
 *
 *   <api>?action=query&pageids=<id>&redirects=1&prop=info&formatversion=2&format=json
 *
 * which names its target (redirect_target), before it comes out of
 * fetch_next().  When the redirects of a batch's pages pass the API's
 * rdlimit, the info query is continued (rdcontinue) until every page's
 * list is complete.  The answer is classified (enum fetch_class) so that
 * the caller knows whether to index, delete, wait or dead-letter.
 *
 * Two steps, on two threads.  The thread that drives the fetch handle does
 * the transfers and every classification that needs no decoding of the
 * parse answer's JSON: HTTP status, transfer errors, redirects, caps, and
 * API errors (MediaWiki's Action API marks every error answer with a
 * "MediaWiki-API-Error: <code>" header: ApiMain::handleException; only
 * such an answer's small body is decoded there, for its message), and it
 * decodes the small batched info answers.  A parse answer that is HTTP 200,
 * without that header and starting with '{' comes out of fetch_next()
 * provisionally FETCH_OK with its raw JSON kept in the result.  Decoding it
 * (most of a fetch's CPU time: bench/README.md) is fetch_result_decode(),
 * which the consumer calls on its own thread (the pipeline's analysis threads, one per core), and which
 * may still turn the result permanent or lagging.  So every consumer calls
 * fetch_result_decode() before it looks at rev_id, html, title or the lists
 * (fetch_one() does it itself).
 *
 * Two objects:
 *
 *  - struct fetch_wiki: one per configured wiki, created in main before the
 *    threads start and shared by every fetching thread.  It holds the API
 *    base (the only place the wiki's pages are ever fetched from: the URL is
 *    built from it and numeric ids, so an event cannot choose the host, the
 *    scheme or the path), the limits, and the per-wiki bounds on
 *    concurrency and requests per second (a token bucket), which are shared
 *    between threads (a mutex inside).  It must outlive every fetch handle
 *    that uses it.
 *
 *  - struct fetch: one per fetching thread, wrapping one curl multi handle
 *    (keep-alive HTTP/1.1 connections are reused across requests).  Not
 *    thread-safe: one thread at a time.  Requests are submitted with
 *    fetch_submit(), driven with fetch_run(), and collected with
 *    fetch_next().  A request that the wiki's concurrency or rate bound does
 *    not let start yet waits in the handle's queue (unbounded; the caller
 *    bounds it by bounding what it submits: fetch_pending()).
 *
 * Info batching: a page whose parse answer is in waits for its info query.
 * A batch goes out at once when it holds 50 pages or when nothing else of
 * the handle is still fetching; otherwise once no info query is in flight
 * and its oldest page has waited 5 ms (on a wiki without a rate bound) or
 * the time a dozen parses take at the wiki's rate (at most 500 ms).  So
 * results come back in submission order only roughly, and a caller that
 * bounds fetch_pending() should allow for a batch (keep ~2x the wiki's
 * concurrency submitted).
 *
 * curl_global_init() must have been called (in main, before threads) before
 * the first fetch_new(); fetch_global_init() does it.
 */
#ifndef FRESHET_FETCH_H
#define FRESHET_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* What a fetch came to, and what the caller should do about it. */
enum fetch_class {
	FETCH_OK,        /* index it: rev_id and the parsed fields are set
	                    (after fetch_result_decode()) */
	FETCH_MISSING,   /* nosuchpageid, missingtitle, or "missing" in the info
	                    query: the page is gone, delete it from the index */
	FETCH_HIDDEN,    /* the current revision's text is suppressed or access
	                    is denied (permissiondenied, ...): delete it from the
	                    index (the text must not be searchable) */
	FETCH_LAGGING,   /* the API returned a revision older than the event's
	                    (replica lag): retry after retry_after_ms */
	FETCH_TRANSIENT, /* timeout, connection error, HTTP 5xx or 429,
	                    maxlag: retry after retry_after_ms */
	FETCH_PERMANENT  /* any other API error code, a body that is not the
	                    expected JSON, a refused redirect, a body over the
	                    cap: retrying will not help, dead-letter it */
};

/* Returns "ok", "missing", "hidden", "lagging", "transient" or "permanent". */
const char *fetch_class_str(enum fetch_class c);

/* Limits of one wiki.  fetch_wiki_config_init() sets every default. */
struct fetch_wiki_config {
	const char *name;          /* wiki id, e.g. "enwiki" (required) */
	const char *api;           /* http(s)://host[:port]/path/api.php
	                              (required; no query, no fragment) */
	const char *language;      /* content language ["en"] */
	const char *user_agent_contact; /* appended to the User-Agent [none] */
	int concurrency;           /* requests in flight, all threads [8] */
	double rate;               /* requests per second, all threads [50];
	                              0 = unbounded */
	long connect_timeout_ms;   /* [5000] */
	long timeout_ms;           /* whole transfer [30000] */
	long low_speed_bytes;      /* abort when slower than this many bytes/s */
	long low_speed_time_s;     /* ... for this many seconds [1024 B/s, 10 s] */
	size_t max_body;           /* cap on the decoded body [8 MiB] */
	int max_redirects;         /* same host only [3] */
	long lag_retry_ms;         /* retry_after_ms for FETCH_LAGGING [2000] */
	long transient_retry_ms;   /* retry_after_ms for FETCH_TRANSIENT when
	                              the server gives no Retry-After [1000] */
};

void fetch_wiki_config_init(struct fetch_wiki_config *cfg);

struct fetch_wiki;

/* Checks cfg and creates a wiki.  The strings are copied.  On failure
 * returns NULL and, if err is not NULL, sets *err to a message the caller
 * frees ("api: scheme must be http or https", ...). */
struct fetch_wiki *fetch_wiki_new(const struct fetch_wiki_config *cfg,
				  char **err);
/* Frees w.  No fetch handle may still use it.  NULL is a no-op. */
void fetch_wiki_free(struct fetch_wiki *w);
/* The wiki's name (owned by w). */
const char *fetch_wiki_name(const struct fetch_wiki *w);

/* Calls curl_global_init(CURL_GLOBAL_DEFAULT) once; call it in main before
 * threads start.  Returns STATUS_OK or STATUS_IO. */
enum status fetch_global_init(void);

/* One link or template as the parse answer gives it. */
struct fetch_title {
	int ns;
	char *title;    /* with spaces and namespace prefix: "Template:Cite web" */
	bool exists;
};

/* One category of the page. */
struct fetch_category {
	char *name;     /* with spaces, without "Category:" */
	bool hidden;    /* a hidden category (__HIDDENCAT__) */
};

/* A redirect page that points at the fetched page. */
struct fetch_redirect {
	uint64_t page_id;
	int ns;
	char *title;    /* with spaces and namespace prefix */
};

/* A completed request.  Every pointer in it is owned by the result and
 * freed by fetch_result_free(). */
struct fetch_result {
	enum fetch_class cls;
	struct fetch_wiki *wiki;   /* borrowed: the wiki it was submitted for */
	uint64_t page_id;
	uint64_t expected_rev;     /* as submitted (0 = any) */
	void *userdata;            /* as submitted */

	/* Set for FETCH_TRANSIENT and FETCH_LAGGING: milliseconds to wait
	 * before trying again (Retry-After when the server sent one). */
	long retry_after_ms;
	long http_status;          /* last HTTP status, 0 if none */
	char *error;               /* what went wrong (NULL for FETCH_OK):
	                              "HTTP 503", "API error nosuchpageid: ...",
	                              "body exceeds 8388608 bytes", ... */

	/* Set for FETCH_OK (rev_id also for FETCH_LAGGING). */
	uint64_t rev_id;           /* the revision that was rendered */
	uint64_t latest_rev;       /* lastrevid from the info query (0 unless
	                              FETCH_OK; may be newer than rev_id if the
	                              page was edited between the two queries) */
	int64_t latest_timestamp;  /* latest_rev's time (unix seconds), from the
	                              info query's revisions; 0 when unknown.
	                              Use fetch_result_rev_timestamp(). */
	char *title;               /* "Talk:Foo bar" (prefixed, spaces) */
	int ns;                    /* namespace id */
	char *language;            /* page language ("en"; the wiki's when the
	                              API does not say) */
	char *display_title_html;  /* displaytitle, HTML as MediaWiki gives it */
	char *html;                /* rendered page HTML (parse.text) */
	size_t html_len;
	struct fetch_category *categories;
	size_t n_categories;
	struct fetch_title *links;
	size_t n_links;
	struct fetch_title *templates;
	size_t n_templates;
	/* The redirects that point at this page (FETCH_OK; from the info
	 * query, so also set before fetch_result_decode()). */
	struct fetch_redirect *redirects;
	size_t n_redirects;
	/* FETCH_OK only: the page is itself a redirect.  It is then not a
	 * document of its own: its title belongs to its target's document.
	 * redirect_target is the target's page id, or 0 when the target is
	 * missing, is itself a redirect (MediaWiki does not follow double
	 * redirects) or is the page itself; redirect_target_ns its
	 * namespace. */
	bool is_redirect;
	uint64_t redirect_target;
	int redirect_target_ns;

	/* The parse answer's JSON, not decoded yet (NULL once it is, or when
	 * there was none to keep).  Only fetch_result_decode() and
	 * fetch_result_free() use it; a bench may read raw_len. */
	char *raw;
	size_t raw_len;
};

/* Decodes the parse answer kept in r, if any: fills rev_id, html,
 * html_len, title (the parse answer's wins over the info query's),
 * display_title_html and the lists, and frees the raw JSON.  It may change
 * r's class: FETCH_PERMANENT when the answer is not JSON ("parse: response
 * is not a JSON object (...)"), HTML ("parse: response is HTML, not JSON"),
 * or lacks "parse", "parse.revid" or "parse.text"; FETCH_LAGGING (rev_id
 * set, retry_after_ms the wiki's lag_retry_ms) when the revision is older
 * than expected_rev; and, for an API error object that came without the
 * MediaWiki-API-Error header (not MediaWiki's behaviour, but a proxy's
 * could be), the class of its code as the fetch thread gives it.  On any
 * class but FETCH_OK, latest_rev is 0 and error says why.
 *
 * Idempotent: a result already decoded, or one with nothing kept (every
 * class but a provisional FETCH_OK), is left as it is.  Thread-safe for
 * distinct results: it touches only r (and reads r->wiki's immutable
 * configuration), so any thread may call it, also after the fetch handle
 * that produced r is freed (the wiki must still exist).  Aborts on out of
 * memory; cannot fail otherwise. */
void fetch_result_decode(struct fetch_result *r);

/* True when r holds a parse answer that fetch_result_decode() has not
 * decoded yet. */
bool fetch_result_undecoded(const struct fetch_result *r);

/* Frees r and everything in it (decoded or not).  NULL is a no-op. */
void fetch_result_free(struct fetch_result *r);

/* The time of the rendered revision rev_id (unix seconds) when the API told
 * it (it is the page's latest), else 0: the caller falls back to the time it
 * knows (the event's).  r must be decoded. */
int64_t fetch_result_rev_timestamp(const struct fetch_result *r);

struct fetch;

/* Creates a fetch handle (one curl multi handle) for the calling thread.
 * Aborts on out of memory. */
struct fetch *fetch_new(void);
/* Aborts every request not collected yet, frees their results and the
 * handle.  NULL is a no-op. */
void fetch_free(struct fetch *f);

/* Queues a fetch of page_id of wiki w.  expected_rev (0 = any) is the
 * revision the event named: an older answer is FETCH_LAGGING.  userdata is
 * handed back in the result.  Never blocks; the request starts in a later
 * fetch_run() once the wiki's concurrency and rate allow.  Returns
 * STATUS_OK, or STATUS_INVALID for page_id 0. */
enum status fetch_submit(struct fetch *f, struct fetch_wiki *w,
			 uint64_t page_id, uint64_t expected_rev,
			 void *userdata);

/* Drives the transfers: starts queued requests that may start, performs
 * I/O, and waits up to timeout_ms (0 = do not wait) for something to
 * happen.  Completed requests become available to fetch_next().  Returns
 * STATUS_OK, or STATUS_IO when curl's multi interface fails (message in
 * fetch_errmsg()). */
enum status fetch_run(struct fetch *f, int timeout_ms);

/* Returns the next completed request, or NULL when none is ready.  The
 * caller owns it (fetch_result_free()).  A FETCH_OK result is not decoded
 * yet: see fetch_result_decode(). */
struct fetch_result *fetch_next(struct fetch *f);

/* Requests submitted and not yet returned by fetch_next(). */
size_t fetch_pending(const struct fetch *f);
/* Requests currently in flight (HTTP transfers running) in this handle. */
size_t fetch_in_flight(const struct fetch *f);

/* New connections the handle's transfers have opened so far (curl's
 * CURLINFO_NUM_CONNECTS summed over completed transfers): with keep-alive
 * reuse it stays near the number of transfers in flight however many
 * pages are fetched.  Added for bench-fetch; optional. */
uint64_t fetch_connects(const struct fetch *f);

/* The last handle-level error message ("" if none); owned by f. */
const char *fetch_errmsg(const struct fetch *f);

/* Convenience for tools and tests: submits one request, runs until it
 * completes and returns its result (never NULL), decoded
 * (fetch_result_decode()). */
struct fetch_result *fetch_one(struct fetch *f, struct fetch_wiki *w,
			       uint64_t page_id, uint64_t expected_rev);

/* Builds the User-Agent string: "freshet/<version> (<contact>)" or
 * "freshet/<version>".  Caller frees. */
char *fetch_user_agent(const char *contact);

/* The one redirect rule of every request freshet makes to a wiki (the
 * fetcher's and reindex-page's listings): a redirect from the wiki whose
 * API is `api` may be followed to the absolute URL `location` only if both
 * have the same scheme (http or https), host (case aside) and port (a
 * missing port is the scheme's default).  Returns NULL when it may, else
 * why not, as a static string for a message: "not http or https",
 * "another scheme", "another host" or "another port".  Thread-safe. */
const char *fetch_redirect_refusal(const char *api, const char *location);

#endif
