/* SPDX-License-Identifier: MIT */
/*
 * reindex.h: reindexing a list of pages, as the worker would, from a tool.
 *
 * A struct reindex holds a list of pages and writes them into one
 * generation of a wiki's shards: it fetches each page (fetch.h), builds its
 * document exactly as the worker does (document.h), and replaces or
 * deletes it in the page's shard.  reindex-page drives it for a selection
 * of pages; rebuild.h drives it for a whole new generation.  The target is
 * chosen once, after reindex_setup():
 *
 *   reindex_open_live()  the generation that serves searches.  A shard is
 *                        written only while holding its partition's lease
 *                        (taken on first use with the lease manager given
 *                        to reindex_set_lease(), renewed at each commit,
 *                        released at reindex_close()) and Xapian's write
 *                        lock; a worker holding either stops the run.
 *   reindex_create()     a new generation, which no one else sees until it
 *                        is swapped in (reindex_swap()).  Writing it needs
 *                        no lease; once the caller has taken every
 *                        partition over (lease_take_over()) it hands the
 *                        lease manager to reindex_set_lease(), and the
 *                        commits from then on carry its fencing tokens.
 *   reindex_dry_run()    nothing: each document goes to hooks.show.
 *
 * Invariants: a page id enters the list once until reindex_forget_seen();
 * every page processed gets one outcome (present, absent or failed) and is
 * counted once in reindex_counts().  Nothing reaches a shard of the live
 * generation except through shard_commit() with the token of a lease held.
 *
 * Messages: every failure is told once, through hooks.say, where it is
 * decided (a page that failed, a shard that cannot be written); the
 * functions then return false or a status without more to say.
 *
 * Threads: a struct reindex is used by one thread.  reindex_setup() calls
 * fetch_global_init(), so it runs before other threads start.
 */
#ifndef FRESHET_REINDEX_H
#define FRESHET_REINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "fetch.h"
#include "lease.h"
#include "pagelist.h"
#include "shard.h"
#include "status.h"

/* What became of a page. */
enum reindex_outcome {
	REINDEX_NONE,     /* not processed (yet) */
	REINDEX_PRESENT,  /* indexed, or the index had it already */
	REINDEX_ABSENT,   /* deleted: gone from the wiki, hidden, or outside the
	                   * wiki's namespaces */
	REINDEX_FAILED
};

/* A page of the list.  title is owned by the run. */
struct reindex_page {
	int64_t page_id;
	int ns;
	char *title;      /* as the API lists it (spaces), "" if unknown */
	bool missing;     /* the API says the page does not exist */
	int tries;        /* fetches so far that asked to be retried */
	enum reindex_outcome outcome;
	int64_t rev_id, rev_timestamp;  /* as listed (0 when unknown) */
};

/* Pages by outcome, for the summary; the caller may add its own (pages it
 * queued, titles that name nothing). */
struct reindex_counts {
	uint64_t indexed, unchanged, deleted, failed;
};

/* How a run talks to the tool that drives it; every member may be NULL. */
struct reindex_hooks {
	/* A message for the operator, without the program's name or a
	 * newline; msg is borrowed for the call.  NULL: written to stderr. */
	void (*say)(void *arg, const char *msg);
	/* done more pages are done, failed of them failures (a progress
	 * line). */
	void (*progress)(void *arg, uint64_t done, uint64_t failed);
	/* With reindex_dry_run(): the document d (borrowed) built for fr
	 * (borrowed), which would go to shard; d is NULL when the page would
	 * be deleted from the index instead. */
	void (*show)(void *arg, const struct fetch_result *fr, struct shard_doc *d,
	             unsigned shard);
	/* Asked between steps: true to stop now (a signal arrived). */
	bool (*stop)(void *arg);
	void *arg;
};

/* Returns a run for wiki w of cfg (both borrowed: they must outlive the
 * run), with an empty list and no target.  hooks is copied (NULL: none).
 * Never NULL. */
struct reindex *reindex_new(const struct conf *cfg, const struct conf_wiki *w,
                            const struct reindex_hooks *hooks);

/* Closes the writers (reindex_close()) and frees rx.  NULL is a no-op. */
void reindex_free(struct reindex *rx);

/* Loads the analyzers and prepares fetching and the shard set, which every
 * target needs.  Returns STATUS_OK; STATUS_CONFIG when the analyzers or the
 * wiki's settings are unusable; another status otherwise. */
enum status reindex_setup(struct reindex *rx);

/* ------------------------------------------------------------ the list */

/* Appends page id (ns, title may be NULL, missing: the API says it does
 * not exist) unless it is listed already.  title is copied. */
void reindex_add_page(struct reindex *rx, int64_t id, int ns, const char *title,
                      bool missing);

/* reindex_add_page() for a page as the API listed it (x borrowed), keeping
 * its revision and that revision's time. */
void reindex_add_listed(struct reindex *rx, const struct pagelist_entry *x);

/* Forgets which ids are listed, so that pages listed before may be appended
 * again (a rebuild fetches again the pages that changed since). */
void reindex_forget_seen(struct reindex *rx);

/* The number of pages listed. */
size_t reindex_n_pages(const struct reindex *rx);

/* Page i (< reindex_n_pages()), owned by rx and valid until the next
 * append. */
struct reindex_page *reindex_page(struct reindex *rx, size_t i);

/* The counts so far, owned by rx; the caller may add to them. */
struct reindex_counts *reindex_counts(struct reindex *rx);

/* ------------------------------------------------------------ targets */

/* Targets the live generation, creating an empty one when the wiki has no
 * index yet.  Give it the lease manager (reindex_set_lease()) before
 * processing.  Returns STATUS_OK; STATUS_CONFIG when the index has another
 * number of shards than the configuration; another status otherwise. */
enum status reindex_open_live(struct reindex *rx);

/* Targets a new generation (named by shard_generation_name()) of the
 * configured number of shards.  Returns STATUS_OK or the shard set's
 * failure. */
enum status reindex_create(struct reindex *rx);

/* Targets nothing: documents go to hooks.show. */
void reindex_dry_run(struct reindex *rx);

/* The lease manager l of the wiki (borrowed until reindex_close()).  For
 * the live generation, the writers take each partition's lease through it.
 * For a new generation, l holds every partition already: the commits from
 * now on carry its fencing tokens, and reindex_process() renews it
 * (lease_keep()) every third of lease_ms. */
void reindex_set_lease(struct reindex *rx, struct lease *l);

/* The generation targeted (owned by rx), or NULL before a target is
 * chosen or with reindex_dry_run(). */
const char *reindex_generation(const struct reindex *rx);

/* ------------------------------------------------------------ the work */

/*
 * Fetches and applies pages [from, to) of the list, keeping the wiki's
 * concurrency of fetches in flight and retrying those that ask for it, and
 * commits each shard when commit_ms or commit_docs say so.  A redirect
 * page gets no document; its target, and any document that still holds it
 * without being its target now, are appended to the list and done in the
 * same run (when the run's range ends the list), so that the redirect's
 * title lands in its target.  Returns true
 * when every page got an outcome; false when the run cannot go on (a shard
 * that cannot be opened or committed, a lease lost, fetching broken) or
 * hooks.stop asked to stop.
 */
bool reindex_process(struct reindex *rx, size_t from, size_t to);

/* Commits every shard that holds writes.  Returns STATUS_OK or the first
 * failure. */
enum status reindex_commit(struct reindex *rx);

/* The writer of shard n of the target, opened (as reindex_process() opens
 * it) on first use; owned by rx until reindex_close().  NULL when it cannot
 * be opened. */
struct shard *reindex_shard(struct reindex *rx, unsigned n);

/* Closes the writers.  The leases of the live generation are released; a
 * new generation's leases stay with their manager. */
void reindex_close(struct reindex *rx);

/* Makes the new generation the wiki's current one (shard_set_swap()).
 * Returns STATUS_OK with *previous (caller frees) set to the generation it
 * replaced, NULL if none; or the shard set's failure. */
enum status reindex_swap(struct reindex *rx, char **previous);

/* -------------------------------------- for modules that drive a run */

/* Tells the operator a message through hooks.say. */
void reindex_say(struct reindex *rx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* True when hooks.stop asks to stop. */
bool reindex_stopped(struct reindex *rx);

/* The configuration and the wiki given to reindex_new(). */
const struct conf *reindex_conf(const struct reindex *rx);
const struct conf_wiki *reindex_wiki(const struct reindex *rx);

#endif
