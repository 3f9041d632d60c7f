/* SPDX-License-Identifier: MIT */
/*
 * pagelist.h: which pages exist, asked of a wiki's Action API.
 *
 * reindex-page turns its selection (titles, page ids, an id range, a
 * namespace, all pages) into a list of pages through this module:
 * list=allpages (continued until the API says it is done) and prop=info
 * for titles and ids (50 per request, the API's limit for a normal user).
 * Only the configured API URL is ever requested, over http or https, with
 * bodies capped and redirects limited, as the fetcher does: at most 3, each
 * to the API's own scheme, host and port (fetch_redirect_refusal()); any
 * other is refused with STATUS_PERMANENT and a message naming the
 * Location and the reason.
 *
 * Threads: a struct pagelist is used by one thread at a time.
 */
#ifndef FRESHET_PAGELIST_H
#define FRESHET_PAGELIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* One page as the API lists it.  Strings are owned by the entry (freed by
 * pagelist_entries_free). */
struct pagelist_entry {
	int64_t page_id;     /* 0 when the page is missing */
	int namespace_id;
	char *title;         /* with spaces, as MediaWiki shows it */
	int64_t rev_id;      /* lastrevid; 0 when unknown or missing */
	int64_t rev_timestamp; /* that revision's time, unix seconds; 0 if unknown */
	char *language;      /* pagelanguage, or NULL when not asked/known */
	bool missing;        /* the title or id names no existing page */
	bool redirect;
};

/* A growable array of entries. */
struct pagelist_entries {
	struct pagelist_entry *v;
	size_t n, cap;
};

struct pagelist;

/* Returns a client of the Action API at `api` (copied), sending
 * `user_agent` (copied; NULL for the default).  Never NULL. */
struct pagelist *pagelist_new(const char *api, const char *user_agent);
void pagelist_free(struct pagelist *pl);

/* The message of the last failure, valid until the next call. */
const char *pagelist_errmsg(const struct pagelist *pl);

/* Appends every page of namespace `ns` (generator=allpages with the latest
 * revision's id and time; redirects included only when `redirects` is
 * true) to `out`, following the API's continuation to the end.  Returns STATUS_OK,
 * STATUS_TRANSIENT (network, 5xx), STATUS_DECODE (not JSON / API error). */
enum status pagelist_allpages(struct pagelist *pl, int ns, bool redirects,
			      struct pagelist_entries *out);

/* One request of pagelist_allpages() without redirects: appends up to
 * `limit` pages (1 .. 500) of namespace ns to `out`, starting at the
 * continuation `cont` (NULL or "" for the first page; else a *next of an
 * earlier call, an opaque string of URL parameters).  On STATUS_OK sets
 * *next (caller frees) to the continuation of the answer, or NULL when the
 * namespace is done.  For walks that stop and resume (saneitize.h).
 * Returns as pagelist_allpages(). */
enum status pagelist_allpages_page(struct pagelist *pl, int ns, int limit,
				   const char *cont, struct pagelist_entries *out,
				   char **next);

/* Appends every page that transcludes `title` (a template, or any page
 * used as one: generator=embeddedin, all namespaces, followed to the end),
 * with their latest revision.  For rerendering after a template edit. */
enum status pagelist_embeddedin(struct pagelist *pl, const char *title,
				struct pagelist_entries *out);

/* Appends the pages with these ids (prop=info); ids naming no page are
 * appended with missing = true and their id in page_id. */
enum status pagelist_by_ids(struct pagelist *pl, const int64_t *ids, size_t n,
			    struct pagelist_entries *out);

/* Appends the pages with these titles; a missing title is appended with
 * missing = true and page_id 0. */
enum status pagelist_by_titles(struct pagelist *pl, const char *const *titles,
			       size_t n, struct pagelist_entries *out);

/* Sets *pages to the wiki's own count of pages in all namespaces
 * (meta=siteinfo, statistics.pages). */
enum status pagelist_site_pages(struct pagelist *pl, int64_t *pages);

/* Frees the entries' strings and array; leaves `e` empty. */
void pagelist_entries_free(struct pagelist_entries *e);

#endif
