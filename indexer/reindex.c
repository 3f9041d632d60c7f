/* SPDX-License-Identifier: MIT */
/*
 * reindex.c: reindexing a list of pages into a generation's shards (see
 * reindex.h).
 *
 * The list only grows; seen holds the ids appended since the last
 * reindex_forget_seen(), so that a page named twice (by title and by id) is
 * done once.  Shard writers are opened on first use; opening one that
 * fails sets fatal, because every later page of that shard would fail the
 * same way.  tokens[n] is the fencing token shard n's commits carry: the
 * partition lease's token for the live generation, and for a new
 * generation the shard's own (stored) token until the caller has taken the
 * partitions over, the lease's token after.
 */
#include "reindex.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "buf.h"
#include "document.h"
#include "idset.h"
#include "loader.h"
#include "log.h"
#include "now.h"
#include "xmalloc.h"

/* Fetches of one page that may ask to be retried before it counts as
 * failed. */
#define MAX_TRIES 5

enum target { TARGET_NONE, TARGET_LIVE, TARGET_NEW, TARGET_DRY };

struct reindex {
	const struct conf *cfg;
	const struct conf_wiki *w;
	struct reindex_hooks hooks;

	struct reindex_page *pages;
	size_t n_pages, cap_pages;
	struct idset seen;            /* ids in pages[] (see add_page) */
	struct reindex_counts counts;

	struct loader *ld;
	struct fetch_wiki *fw;
	struct fetch *fetch;
	struct document_builder *doc; /* analyzers per language, extractor */
	struct shard_set *set;

	enum target target;
	char *generation;             /* the generation written */
	struct shard **shards;        /* writers, opened on first use */
	uint64_t *tokens;             /* fencing token per shard */
	unsigned n_shards;
	bool fatal;                   /* a shard cannot be written: stop */
	/* Pages that a redirect's fetch asks to index too (its target, and
	 * the documents that hold it but are not its target any more):
	 * added to pages[] after the fetch that found them. */
	struct shard_redirect_holder *follow;
	size_t n_follow, cap_follow;
	struct lease *lease;          /* borrowed (reindex_set_lease) */
};

struct reindex *reindex_new(const struct conf *cfg, const struct conf_wiki *w,
                            const struct reindex_hooks *hooks)
{
	struct reindex *rx = xcalloc(1, sizeof *rx);
	rx->cfg = cfg;
	rx->w = w;
	if (hooks)
		rx->hooks = *hooks;
	return rx;
}

void reindex_free(struct reindex *rx)
{
	if (!rx)
		return;
	reindex_close(rx);
	free(rx->shards);
	free(rx->tokens);
	free(rx->follow);
	free(rx->generation);
	for (size_t i = 0; i < rx->n_pages; i++)
		free(rx->pages[i].title);
	free(rx->pages);
	idset_clear(&rx->seen);
	shard_set_free(rx->set);
	document_builder_free(rx->doc);
	fetch_free(rx->fetch);
	fetch_wiki_free(rx->fw);
	loader_free(rx->ld);
	free(rx);
}

void reindex_say(struct reindex *rx, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	va_start(ap, fmt);
	buf_vaddf(&b, fmt, ap);
	va_end(ap);
	if (rx->hooks.say)
		rx->hooks.say(rx->hooks.arg, b.data);
	else
		fprintf(stderr, "%s\n", b.data);
	buf_release(&b);
}

bool reindex_stopped(struct reindex *rx)
{
	return rx->hooks.stop && rx->hooks.stop(rx->hooks.arg);
}

const struct conf *reindex_conf(const struct reindex *rx)
{
	return rx->cfg;
}

const struct conf_wiki *reindex_wiki(const struct reindex *rx)
{
	return rx->w;
}

enum status reindex_setup(struct reindex *rx)
{
	enum status st = fetch_global_init();
	if (st != STATUS_OK) {
		reindex_say(rx, "curl_global_init failed");
		return st;
	}
	rx->ld = loader_new();
	const char *adir = conf_analyzer_dir(rx->cfg);
	if (loader_load_dir(rx->ld, adir) != STATUS_OK) {
		reindex_say(rx, "analyzers in %s: %s", adir, loader_errmsg(rx->ld));
		return STATUS_CONFIG;
	}
	struct fetch_wiki_config fc;
	fetch_wiki_config_init(&fc);
	fc.name = rx->w->id;
	fc.api = rx->w->api;
	fc.language = rx->w->language;
	fc.user_agent_contact = rx->w->user_agent_contact;
	fc.concurrency = rx->w->concurrency;
	fc.rate = rx->w->rate;
	char *err = NULL;
	rx->fw = fetch_wiki_new(&fc, &err);
	if (!rx->fw) {
		reindex_say(rx, "wiki %s: %s", rx->w->id, err ? err : "");
		free(err);
		return STATUS_CONFIG;
	}
	rx->fetch = fetch_new();
	rx->doc = document_builder_new(rx->ld);
	rx->set = shard_set_new(rx->cfg->data_dir, rx->w->id);
	return STATUS_OK;
}

/* ------------------------------------------------------------ the list */

void reindex_add_page(struct reindex *rx, int64_t id, int ns, const char *title,
                      bool missing)
{
	/* A page named twice (by title and by id) is done once. */
	if (!idset_add(&rx->seen, id))
		return;
	if (rx->n_pages == rx->cap_pages) {
		rx->cap_pages = rx->cap_pages ? rx->cap_pages * 2 : 256;
		rx->pages = xrealloc(rx->pages, rx->cap_pages * sizeof *rx->pages);
	}
	rx->pages[rx->n_pages++] = (struct reindex_page){ .page_id = id, .ns = ns,
		.title = xstrdup(title ? title : ""), .missing = missing };
}

void reindex_add_listed(struct reindex *rx, const struct pagelist_entry *x)
{
	size_t before = rx->n_pages;
	reindex_add_page(rx, x->page_id, x->namespace_id, x->title, x->missing);
	if (rx->n_pages > before) {
		rx->pages[before].rev_id = x->rev_id;
		rx->pages[before].rev_timestamp = x->rev_timestamp;
	}
}

void reindex_forget_seen(struct reindex *rx)
{
	idset_clear(&rx->seen);
}

size_t reindex_n_pages(const struct reindex *rx)
{
	return rx->n_pages;
}

struct reindex_page *reindex_page(struct reindex *rx, size_t i)
{
	return &rx->pages[i];
}

struct reindex_counts *reindex_counts(struct reindex *rx)
{
	return &rx->counts;
}

/* ------------------------------------------------------------ targets */

/* Makes room for the writers of n shards. */
static void target(struct reindex *rx, enum target t, unsigned n)
{
	rx->target = t;
	rx->n_shards = n;
	rx->shards = xcalloc(n, sizeof *rx->shards);
	rx->tokens = xcalloc(n, sizeof *rx->tokens);
}

enum status reindex_open_live(struct reindex *rx)
{
	enum status st = shard_set_current(rx->set, &rx->generation);
	if (st == STATUS_NOT_FOUND) {
		rx->generation = shard_generation_name();
		st = shard_set_create(rx->set, rx->generation, (unsigned)rx->w->shards);
		if (st == STATUS_OK)
			st = shard_set_swap(rx->set, rx->generation);
		if (st == STATUS_OK)
			log_info("action=created wiki=%s generation=%s shards=%d", rx->w->id,
				 rx->generation, rx->w->shards);
	}
	if (st != STATUS_OK) {
		reindex_say(rx, "%s: %s", rx->w->id, shard_set_errmsg(rx->set));
		return st;
	}
	unsigned n = 0;
	if (shard_set_count(rx->set, rx->generation, &n) != STATUS_OK || n == 0) {
		reindex_say(rx, "%s: generation %s has no shards", rx->w->id, rx->generation);
		return STATUS_NOT_FOUND;
	}
	if (n != (unsigned)rx->w->shards) {
		reindex_say(rx, "%s: the index has %u shards but the configuration says %d: "
			    "rebuild it (--rebuild)", rx->w->id, n, rx->w->shards);
		return STATUS_CONFIG;
	}
	target(rx, TARGET_LIVE, n);
	return STATUS_OK;
}

enum status reindex_create(struct reindex *rx)
{
	unsigned n = (unsigned)rx->w->shards;
	rx->generation = shard_generation_name();
	enum status st = shard_set_create(rx->set, rx->generation, n);
	if (st != STATUS_OK) {
		reindex_say(rx, "%s", shard_set_errmsg(rx->set));
		return st;
	}
	target(rx, TARGET_NEW, n);
	return STATUS_OK;
}

void reindex_dry_run(struct reindex *rx)
{
	rx->target = TARGET_DRY;
	rx->n_shards = (unsigned)rx->w->shards;
}

void reindex_set_lease(struct reindex *rx, struct lease *l)
{
	rx->lease = l;
	if (rx->target == TARGET_NEW)
		for (unsigned p = 0; p < rx->n_shards; p++)
			rx->tokens[p] = lease_token(l, (int)p);
}

const char *reindex_generation(const struct reindex *rx)
{
	return rx->generation;
}

/* -------------------------------------------------------------- shards */

/* Opens the writer of shard n (first use): takes the partition's lease
 * when writing the live generation, then Xapian's lock. */
static enum status open_shard(struct reindex *rx, unsigned n)
{
	if (rx->shards[n])
		return STATUS_OK;
	if (rx->fatal)
		return STATUS_INVALID;
	rx->fatal = true;
	if (rx->target == TARGET_LIVE) {
		uint64_t token = 0;
		enum status st = lease_acquire(rx->lease, (int)n, &token);
		if (st == STATUS_LOCKED) {
			reindex_say(rx, "a worker holds partition %u of %s: use --queue "
				    "(or stop the workers)", n, rx->w->id);
			return st;
		}
		if (st != STATUS_OK) {
			reindex_say(rx, "lease of partition %u: %s", n, lease_errmsg(rx->lease));
			return st;
		}
		rx->tokens[n] = token;
	}
	char *path = shard_set_path(rx->set, rx->generation, n);
	struct shard *sh = shard_new();
	enum status st = shard_open(sh, path, SHARD_CREATE);
	if (st != STATUS_OK) {
		reindex_say(rx, "shard %u (%s): %s%s", n, path, shard_errmsg(sh),
			    st == STATUS_LOCKED ? " (another writer: use --queue)" : "");
		shard_free(sh);
		free(path);
		return st;
	}
	free(path);
	if (rx->target == TARGET_NEW) {
		/* Before the take-over the shard's own token; after it, the
		 * partition lease's. */
		uint64_t fence = 0;
		shard_get_fence(sh, &fence);
		rx->tokens[n] = rx->lease ? lease_token(rx->lease, (int)n) : fence;
	}
	rx->shards[n] = sh;
	rx->fatal = false;
	return STATUS_OK;
}

static enum status commit_shard(struct reindex *rx, unsigned n)
{
	struct shard *sh = rx->shards[n];
	if (!sh || shard_pending(sh, NULL) == 0)
		return STATUS_OK;
	if (rx->target == TARGET_LIVE && lease_renew(rx->lease, (int)n) != STATUS_OK) {
		reindex_say(rx, "lost the lease of partition %u: %s", n,
			    lease_errmsg(rx->lease));
		return STATUS_FENCED;
	}
	enum status st = shard_commit(sh, rx->tokens[n]);
	if (st != STATUS_OK)
		reindex_say(rx, "commit of shard %u: %s", n, shard_errmsg(sh));
	return st;
}

/* Commits the shards whose oldest write is older than commit_ms, or that
 * hold commit_docs writes; all of them when `all`.  The leases of the
 * live shards not committed are renewed. */
static enum status commit_due(struct reindex *rx, bool all)
{
	enum status worst = STATUS_OK;
	int64_t t = now_ms();
	for (unsigned n = 0; n < rx->n_shards; n++) {
		if (!rx->shards[n])
			continue;
		int64_t since = 0;
		size_t pending = shard_pending(rx->shards[n], &since);
		if (!pending)
			continue;
		if (all || pending >= (size_t)rx->cfg->commit_docs ||
		    t - since >= rx->cfg->commit_ms) {
			enum status st = commit_shard(rx, n);
			if (st != STATUS_OK)
				worst = st;
		} else if (rx->target == TARGET_LIVE &&
			   lease_renew(rx->lease, (int)n) != STATUS_OK) {
			worst = STATUS_FENCED;
		}
	}
	return worst;
}

enum status reindex_commit(struct reindex *rx)
{
	return commit_due(rx, true);
}

struct shard *reindex_shard(struct reindex *rx, unsigned n)
{
	if (n >= rx->n_shards || !rx->shards || open_shard(rx, n) != STATUS_OK)
		return NULL;
	return rx->shards[n];
}

void reindex_close(struct reindex *rx)
{
	for (unsigned n = 0; rx->shards && n < rx->n_shards; n++) {
		if (!rx->shards[n])
			continue;
		shard_close(rx->shards[n]);
		shard_free(rx->shards[n]);
		rx->shards[n] = NULL;
		if (rx->lease && rx->tokens[n] && rx->target == TARGET_LIVE)
			lease_release(rx->lease, (int)n);
	}
	rx->lease = NULL;
}

enum status reindex_swap(struct reindex *rx, char **previous)
{
	char *old = NULL;
	shard_set_current(rx->set, &old);
	enum status st = shard_set_swap(rx->set, rx->generation);
	if (st != STATUS_OK) {
		reindex_say(rx, "swap: %s", shard_set_errmsg(rx->set));
		free(old);
		return st;
	}
	*previous = old;
	return STATUS_OK;
}

/* ------------------------------------------------------------ the work */

/* Counts a page whose shard write failed, saying why. */
static void write_failed(struct reindex *rx, struct reindex_page *p, unsigned n,
			 const struct fetch_result *fr)
{
	if (rx->shards[n])
		reindex_say(rx, "page %" PRIu64 ": %s", fr->page_id,
			    shard_errmsg(rx->shards[n]));
	rx->counts.failed++;
	p->outcome = REINDEX_FAILED;
}

static void follow(struct reindex *rx, uint64_t page_id, int ns)
{
	if (!conf_wiki_indexes(rx->w, ns))
		return;
	if (rx->n_follow == rx->cap_follow) {
		rx->cap_follow = rx->cap_follow ? rx->cap_follow * 2 : 8;
		rx->follow = xrealloc(rx->follow, rx->cap_follow * sizeof *rx->follow);
	}
	rx->follow[rx->n_follow++] = (struct shard_redirect_holder){ page_id, ns };
}

/* A redirect's title belongs to its target's document: after page
 * fr->page_id's fetch, its target (when it is a redirect) and the
 * documents that hold it but are not its target now are to be indexed
 * too (in the shards being written, pending writes included).  Returns
 * false when a shard could not be asked. */
static bool redirect_follow_ups(struct reindex *rx, const struct fetch_result *fr)
{
	uint64_t target = fr->cls == FETCH_OK && fr->is_redirect ? fr->redirect_target : 0;
	if (target)
		follow(rx, target, fr->redirect_target_ns);
	if (rx->target == TARGET_DRY)
		return true;
	for (unsigned n = 0; n < rx->n_shards; n++) {
		struct shard_redirect_holder *h = NULL;
		size_t k = 0;
		enum status st = open_shard(rx, n);
		if (st == STATUS_OK)
			st = shard_redirect_holders(rx->shards[n], fr->page_id, &h, &k);
		if (st != STATUS_OK) {
			if (rx->shards[n])
				reindex_say(rx, "page %" PRIu64 ": %s", fr->page_id,
					    shard_errmsg(rx->shards[n]));
			return false;
		}
		for (size_t i = 0; i < k; i++)
			if (h[i].page_id != target)
				follow(rx, h[i].page_id, h[i].ns);
		free(h);
	}
	return true;
}

/* Applies one fetch result: index, delete, or count a failure.  Returns
 * true when the page is done, false when it should be fetched again. */
static bool apply(struct reindex *rx, struct fetch_result *fr, struct reindex_page *p)
{
	unsigned n = shard_route(fr->page_id, rx->n_shards);
	bool dry = rx->target == TARGET_DRY;
	enum status st = STATUS_OK;
	if ((fr->cls == FETCH_OK || fr->cls == FETCH_MISSING ||
	     fr->cls == FETCH_HIDDEN) && !redirect_follow_ups(rx, fr)) {
		rx->counts.failed++;
		p->outcome = REINDEX_FAILED;
		return true;
	}
	switch (fr->cls) {
	case FETCH_OK: {
		if (!conf_wiki_indexes(rx->w, fr->ns) || fr->is_redirect) {
			/* Moved out of the indexed namespaces, or a redirect
			 * (its title is in its target's document): not a
			 * document of its own. */
			goto delete;
		}
		struct shard_doc *d = NULL;
		struct document_analysis an;
		/* The revision's time: as the API gave it, else as listed when
		 * the fetched revision is the listed one, else it is newer than
		 * the listing, i.e. about now. */
		int64_t ts = fetch_result_rev_timestamp(fr);
		if (!ts)
			ts = p->rev_id && (uint64_t)p->rev_id == fr->rev_id
			     ? p->rev_timestamp : (int64_t)time(NULL);
		st = document_build(rx->doc, fr, rx->w->api, ts, &d, &an);
		if (st != STATUS_OK) {
			reindex_say(rx, "page %" PRIu64 ": building the document: %s",
				    fr->page_id, document_builder_errmsg(rx->doc));
			rx->counts.failed++;
			p->outcome = REINDEX_FAILED;
			return true;
		}
		if (dry) {
			if (rx->hooks.show)
				rx->hooks.show(rx->hooks.arg, fr, d, n);
			shard_doc_free(d);
			rx->counts.indexed++;
			p->outcome = REINDEX_PRESENT;
			return true;
		}
		st = open_shard(rx, n);
		if (st == STATUS_OK)
			st = shard_check_analyzer(rx->shards[n], an.language, an.name,
						  an.version);
		if (st == STATUS_OK)
			st = shard_replace(rx->shards[n], d);
		shard_doc_free(d);
		if (st == STATUS_OK) {
			rx->counts.indexed++;
			p->outcome = REINDEX_PRESENT;
		} else if (st == STATUS_NOOP || st == STATUS_SKIPPED) {
			rx->counts.unchanged++;
			p->outcome = REINDEX_PRESENT;
		} else {
			write_failed(rx, p, n, fr);
		}
		log_debug("action=%s wiki=%s page=%" PRIu64 " rev=%" PRIu64,
			  st == STATUS_OK ? "indexed" : status_str(st), rx->w->id,
			  fr->page_id, fr->rev_id);
		return true;
	}
	case FETCH_MISSING:
	case FETCH_HIDDEN:
	delete:
		if (dry) {
			if (rx->hooks.show)
				rx->hooks.show(rx->hooks.arg, fr, NULL, n);
			rx->counts.deleted++;
			p->outcome = REINDEX_ABSENT;
			return true;
		}
		st = open_shard(rx, n);
		if (st == STATUS_OK)
			st = shard_delete(rx->shards[n], fr->page_id);
		if (st == STATUS_OK || st == STATUS_NOOP) {
			rx->counts.deleted++;
			p->outcome = REINDEX_ABSENT;
		} else {
			write_failed(rx, p, n, fr);
		}
		return true;
	case FETCH_LAGGING:
	case FETCH_TRANSIENT:
		if (++p->tries < MAX_TRIES)
			return false;
		/* fall through */
	case FETCH_PERMANENT:
	default:
		reindex_say(rx, "page %" PRIu64 " (%s): %s: %s", fr->page_id, p->title,
			    fetch_class_str(fr->cls), fr->error ? fr->error : "");
		rx->counts.failed++;
		p->outcome = REINDEX_FAILED;
		return true;
	}
}

bool reindex_process(struct reindex *rx, size_t from, size_t to)
{
	/* Redirect follow-ups are appended to pages[] and done in this run;
	 * retry[] is indexed by page, so it grows with them. */
	size_t cap_retry = to - from;
	size_t next = from, done = 0, total = to - from;
	size_t window = (size_t)(rx->w->concurrency > 0 ? rx->w->concurrency : 8) * 2;
	bool dry = rx->target == TARGET_DRY;
	/* A new generation taken over keeps every partition until the swap:
	 * its leases are renewed here, as nothing else renews them. */
	bool keep = rx->target == TARGET_NEW && rx->lease;
	/* Pages waiting for a retry, with the time they may go again. */
	struct retry { size_t idx; int64_t at; } *retry = xcalloc(total ? total : 1,
								  sizeof *retry);
	if (!cap_retry)
		cap_retry = 1;
	size_t n_retry = 0;
	bool ok = true;
	int64_t last_renew = now_ms();
	while (done < total && !reindex_stopped(rx) && ok) {
		int64_t t = now_ms();
		for (size_t i = 0; i < n_retry && fetch_pending(rx->fetch) < window;) {
			if (retry[i].at <= t) {
				size_t idx = retry[i].idx;
				fetch_submit(rx->fetch, rx->fw, (uint64_t)rx->pages[idx].page_id, 0,
					     (void *)(uintptr_t)idx);
				retry[i] = retry[--n_retry];
			} else {
				i++;
			}
		}
		while (next < to && fetch_pending(rx->fetch) < window) {
			fetch_submit(rx->fetch, rx->fw, (uint64_t)rx->pages[next].page_id, 0,
				     (void *)(uintptr_t)next);
			next++;
		}
		if (fetch_run(rx->fetch, 100) != STATUS_OK) {
			reindex_say(rx, "fetch: %s", fetch_errmsg(rx->fetch));
			ok = false;
			break;
		}
		struct fetch_result *fr;
		while ((fr = fetch_next(rx->fetch))) {
			size_t idx = (size_t)(uintptr_t)fr->userdata;
			/* One thread here: the parse answer is decoded where
			 * it is used (it may still turn out lagging or bad). */
			fetch_result_decode(fr);
			uint64_t failed_before = rx->counts.failed;
			if (apply(rx, fr, &rx->pages[idx])) {
				done++;
				if (rx->hooks.progress)
					rx->hooks.progress(rx->hooks.arg, 1,
							   rx->counts.failed - failed_before);
			} else {
				retry[n_retry].idx = idx;
				retry[n_retry].at = now_ms() + (fr->retry_after_ms > 0
							       ? fr->retry_after_ms : 1000);
				n_retry++;
			}
			fetch_result_free(fr);
			for (size_t i = 0; i < rx->n_follow; i++) {
				size_t before = rx->n_pages;
				reindex_add_page(rx, (int64_t)rx->follow[i].page_id,
						 rx->follow[i].ns, "", false);
				if (rx->n_pages == before)
					continue;
				if (to == before) { /* the run's range grows */
					to++;
					total++;
				} else {
					/* Pages were added past the range
					 * already: this run does not own them. */
					rx->n_pages--;
					continue;
				}
				if (total > cap_retry) {
					cap_retry = total * 2;
					retry = xrealloc(retry, cap_retry * sizeof *retry);
				}
			}
			rx->n_follow = 0;
		}
		if (!dry && commit_due(rx, false) != STATUS_OK)
			ok = false;
		if (keep && now_ms() - last_renew >= rx->cfg->lease_ms / 3) {
			if (lease_keep(rx->lease) != STATUS_OK) {
				reindex_say(rx, "%s", lease_errmsg(rx->lease));
				ok = false;
			}
			last_renew = now_ms();
		}
		if (rx->fatal)
			ok = false;
	}
	free(retry);
	return ok && !reindex_stopped(rx);
}
