/* SPDX-License-Identifier: MIT */
/*
 * rebuild.c: a whole new generation, swapped in when complete (see
 * rebuild.h for the steps).
 *
 * Invariants: nothing is written to the live generation; the new one is
 * swapped in only while this owner holds the wiki and every partition's
 * lease, after a count that matches both the pages processed and the
 * wiki's own list (or a difference that stream entries after the catch-up
 * explain).  pos[p] is partition p's stream position: the newest entry
 * before the build, then the last entry the catch-up read, which becomes
 * the new shard's stream position so that the workers go on from there.
 */
#include "rebuild.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "event.h"
#include "idset.h"
#include "lease.h"
#include "log.h"
#include "now.h"
#include "pagelist.h"
#include "shard.h"
#include "stream.h"
#include "xmalloc.h"

/* How often the take-over names the partitions it still waits for. */
#define WAIT_MESSAGE_MS 30000

/* The pages named by stream entries after pos in partition key (pos is
 * advanced to the last entry read), appended to rx's list. */
static enum status pages_since(struct reindex *rx, struct redis *redis, const char *key,
			       char *pos, size_t cap)
{
	for (;;) {
		enum status st;
		redisReply *rep = redis_command(redis, &st, "XRANGE %s (%s + COUNT 500",
						key, pos);
		if (!rep)
			return st;
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
			freeReplyObject(rep);
			return STATUS_OK;
		}
		for (size_t i = 0; i < rep->elements; i++) {
			redisReply *e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			snprintf(pos, cap, "%s", e->element[0]->str);
			redisReply *f = e->element[1];
			for (size_t k = 0; k + 1 < f->elements; k += 2) {
				if (strcmp(f->element[k]->str, "event") != 0)
					continue;
				struct event *ev = NULL;
				if (event_decode(f->element[k + 1]->str, f->element[k + 1]->len, &ev,
						 NULL) != STATUS_OK)
					continue;
				reindex_add_page(rx, ev->page_id, (int)ev->namespace_id, ev->title,
						 false);
				if (ev->prior_page_id)
					reindex_add_page(rx, ev->prior_page_id, 0, "", false);
				if (ev->redirect_page_id)
					reindex_add_page(rx, ev->redirect_page_id, 0, "", false);
				event_free(ev);
			}
		}
		freeReplyObject(rep);
	}
}

/* The ids of the pages whose last outcome was present, into *present
 * (cleared first). */
static void present_pages(struct reindex *rx, struct idset *present)
{
	struct idset last = { 0 };
	idset_clear(present);
	for (size_t i = reindex_n_pages(rx); i-- > 0;) {
		const struct reindex_page *p = reindex_page(rx, i);
		if (!idset_add(&last, p->page_id))
			continue;
		if (p->outcome == REINDEX_PRESENT)
			idset_add(present, p->page_id);
	}
	idset_clear(&last);
}

/* Compares the new generation with what the wiki holds now: lists every
 * page of the configured namespaces again and rewrites the pages on which
 * the two disagree (created or deleted during the build without an event
 * reaching the stream, e.g. while the extension spooled).  Sets
 * *wiki_pages to the count the wiki listed.  Returns false when the API
 * could not be asked or the run cannot go on. */
static bool reconcile_with_wiki(struct reindex *rx, uint64_t *wiki_pages)
{
	const struct conf_wiki *w = reindex_wiki(rx);
	char *ua = fetch_user_agent(w->user_agent_contact);
	struct pagelist *pl = pagelist_new(w->api, ua);
	free(ua);
	struct pagelist_entries now = { 0 };
	enum status st = STATUS_OK;
	for (size_t k = 0; k < w->n_namespaces && st == STATUS_OK; k++)
		st = pagelist_allpages(pl, w->namespaces[k], false, &now);
	if (st != STATUS_OK) {
		reindex_say(rx, "listing pages of %s: %s", w->id, pagelist_errmsg(pl));
		pagelist_free(pl);
		pagelist_entries_free(&now);
		return false;
	}
	struct idset present = { 0 }, listed = { 0 };
	present_pages(rx, &present);
	size_t from = reindex_n_pages(rx);
	reindex_forget_seen(rx);
	for (size_t i = 0; i < now.n; i++) {
		idset_add(&listed, now.v[i].page_id);
		if (!idset_has(&present, now.v[i].page_id))
			reindex_add_listed(rx, &now.v[i]);
	}
	for (size_t i = 0; i < from; i++) {
		const struct reindex_page *p = reindex_page(rx, i);
		if (p->outcome == REINDEX_PRESENT && !idset_has(&listed, p->page_id))
			reindex_add_page(rx, p->page_id, p->ns, p->title, false);
	}
	*wiki_pages = now.n;
	pagelist_entries_free(&now);
	pagelist_free(pl);
	idset_clear(&present);
	idset_clear(&listed);
	bool ok = true;
	size_t to = reindex_n_pages(rx);
	if (to > from) {
		reindex_say(rx, "%zu pages differ from the wiki's list: fetching them again",
			    to - from);
		ok = reindex_process(rx, from, to);
	}
	return ok;
}

/* True when some partition has an entry newer than pos[]. */
static bool entries_since(struct stream *s, struct redis *redis, unsigned ns,
			  char (*pos)[STREAM_ID_MAX])
{
	for (unsigned p = 0; p < ns; p++) {
		char key[256];
		stream_key(s, (int)p, key, sizeof key);
		enum status st;
		redisReply *rep = redis_command(redis, &st, "XRANGE %s (%s + COUNT 1",
						key, pos[p]);
		bool some = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0;
		if (rep)
			freeReplyObject(rep);
		if (some)
			return true;
	}
	return false;
}

/* The take-over's wait: names the partitions still held every
 * WAIT_MESSAGE_MS, and stops when the run is asked to. */
struct wait {
	struct reindex *rx;
	int64_t last_msg;
	bool stopped;
};

static bool still_waiting(void *arg, const int *waiting, int n_waiting)
{
	struct wait *wt = arg;
	int64_t t = now_ms();
	if (t - wt->last_msg >= WAIT_MESSAGE_MS) {
		struct buf held_by = BUF_INIT;
		for (int i = 0; i < n_waiting; i++)
			buf_addf(&held_by, " %d", waiting[i]);
		reindex_say(wt->rx, "the new generation is ready; waiting for the workers to "
			    "hand over partition(s)%s of %s (a worker that does not must be "
			    "stopped, and started again after the swap)", held_by.data,
			    reindex_wiki(wt->rx)->id);
		buf_release(&held_by);
		wt->last_msg = t;
	}
	wt->stopped = reindex_stopped(wt->rx);
	return !wt->stopped;
}

/* Takes every partition over from the workers, holding the wiki first so
 * that a second rebuild is refused.  Sets *lp to the lease manager (NULL
 * when none could be made), which holds them all on STATUS_OK and must be
 * handed back in any case.  Says why it failed, unless asked to stop. */
static enum status take_over(struct reindex *rx, struct redis *redis, struct lease **lp)
{
	const struct conf_wiki *w = reindex_wiki(rx);
	struct lease *l = lease_new(redis, w->id, w->shards, NULL, reindex_conf(rx)->lease_ms);
	*lp = l;
	if (!l) {
		reindex_say(rx, "cannot manage the leases of %s", w->id);
		return STATUS_INVALID;
	}
	struct wait wt = { .rx = rx, .last_msg = now_ms() };
	struct lease_takeover o = { .hold_first = true, .poll_ms = 500,
				    .fn = still_waiting, .arg = &wt };
	enum status st = lease_take_over(l, &o);
	if (st != STATUS_OK && !wt.stopped)
		reindex_say(rx, "%s", lease_errmsg(l));
	return st;
}

enum status rebuild_run(struct reindex *rx, struct redis *redis, rebuild_built_fn built,
			void *arg)
{
	const struct conf_wiki *w = reindex_wiki(rx);
	struct stream_opts so = { .wiki = w->id, .partitions = w->shards };
	char err[256];
	struct stream *s = stream_new(NULL, redis, &so, err, sizeof err);
	if (!s) {
		reindex_say(rx, "%s", err);
		return STATUS_CONFIG;
	}
	enum status st = stream_setup(s);
	if (st != STATUS_OK) {
		reindex_say(rx, "%s: %s", w->id, stream_errmsg(s));
		stream_free(s);
		return st;
	}
	/* 1. The start position. */
	unsigned ns = (unsigned)w->shards;
	char (*pos)[STREAM_ID_MAX] = xcalloc(ns, sizeof *pos);
	for (unsigned p = 0; p < ns; p++) {
		char key[256];
		stream_key(s, (int)p, key, sizeof key);
		redisReply *rep = redis_command(redis, &st, "XREVRANGE %s + - COUNT 1", key);
		if (!rep) {
			reindex_say(rx, "%s: %s", key, redis_errmsg(redis));
			free(pos);
			stream_free(s);
			return STATUS_TRANSIENT;
		}
		snprintf(pos[p], STREAM_ID_MAX, "%s",
			 rep->type == REDIS_REPLY_ARRAY && rep->elements == 1
			 ? rep->element[0]->element[0]->str : "0-0");
		freeReplyObject(rep);
		log_info("action=rebuild-start wiki=%s partition=%u position=%s", w->id, p,
			 pos[p]);
	}

	/* 2. The build. */
	st = reindex_create(rx);
	if (st != STATUS_OK) {
		free(pos);
		stream_free(s);
		return st;
	}
	reindex_say(rx, "building generation %s of %s (%zu pages)", reindex_generation(rx),
		    w->id, reindex_n_pages(rx));
	size_t listed = reindex_n_pages(rx);
	enum status why = STATUS_INVALID;   /* why it did not swap */
	bool ok = reindex_process(rx, 0, listed);
	if (ok && reindex_commit(rx) != STATUS_OK)
		ok = false;
	if (built)
		built(arg);

	/* 3. The take-over: from here on no worker writes the old generation. */
	struct lease *l = NULL;
	if (ok) {
		st = take_over(rx, redis, &l);
		if (st == STATUS_OK) {
			reindex_set_lease(rx, l);
		} else {
			why = st;
			ok = false;
		}
	}

	/* 4. Catch up.  The pages named since the start are fetched again even
	 * though they were listed (their first fetch may predate the change),
	 * so the duplicate check starts afresh. */
	size_t before = reindex_n_pages(rx);
	reindex_forget_seen(rx);
	for (unsigned p = 0; p < ns && ok; p++) {
		char key[256];
		stream_key(s, (int)p, key, sizeof key);
		if (pages_since(rx, redis, key, pos[p], STREAM_ID_MAX) != STATUS_OK) {
			reindex_say(rx, "%s: %s", key, redis_errmsg(redis));
			why = STATUS_TRANSIENT;
			ok = false;
		}
	}
	size_t caught = reindex_n_pages(rx) - before;
	if (ok && caught) {
		reindex_say(rx, "catching up with %zu pages changed during the build", caught);
		ok = reindex_process(rx, before, reindex_n_pages(rx));
	}
	/* The wiki's own list is the reference for the count. */
	uint64_t wiki_pages = 0;
	if (ok)
		ok = reconcile_with_wiki(rx, &wiki_pages);
	for (unsigned p = 0; p < ns && ok; p++) {
		char key[256];
		stream_key(s, (int)p, key, sizeof key);
		struct shard *sh = reindex_shard(rx, p);
		if (!sh || shard_set_position(sh, key, pos[p]) != STATUS_OK)
			ok = false;
	}
	if (ok && reindex_commit(rx) != STATUS_OK)
		ok = false;
	if (ok && (st = lease_keep(l)) != STATUS_OK) {
		reindex_say(rx, "%s", lease_errmsg(l));
		why = st;
		ok = false;
	}

	/* 5. The count. */
	uint64_t docs = 0;
	for (unsigned p = 0; p < ns && ok; p++) {
		uint64_t c = 0;
		if (shard_doc_count(reindex_shard(rx, p), &c) != STATUS_OK)
			ok = false;
		docs += c;
	}
	/* Close the writers, keeping the leases until the swap. */
	reindex_close(rx);
	/* A page's last outcome counts (the catch-up may have fixed a failure
	 * or deleted a page indexed in the first pass). */
	uint64_t expected = 0, absent = 0, failed = 0;
	struct idset last = { 0 };
	for (size_t i = reindex_n_pages(rx); i-- > 0;) {
		const struct reindex_page *p = reindex_page(rx, i);
		if (!idset_add(&last, p->page_id))
			continue;
		switch (p->outcome) {
		case REINDEX_PRESENT: expected++; break;
		case REINDEX_ABSENT: absent++; break;
		default: failed++; break;
		}
	}
	idset_clear(&last);
	if (ok && (failed || docs != expected)) {
		reindex_say(rx, "rebuild of %s: %" PRIu64 " documents written, %" PRIu64
			    " expected (%zu pages listed, %" PRIu64 " gone or not indexed, %"
			    PRIu64 " failed): not swapping; generation %s left for inspection",
			    w->id, docs, expected, listed, absent, failed,
			    reindex_generation(rx));
		ok = false;
	}
	/* Against the wiki: a difference is acceptable only when changes that
	 * arrived after the catch-up explain it (the workers apply them). */
	if (ok && docs != wiki_pages) {
		if (entries_since(s, redis, ns, pos)) {
			reindex_say(rx, "%" PRIu64 " documents, the wiki lists %" PRIu64
				    " pages: changes made since are queued for the workers",
				    docs, wiki_pages);
		} else {
			reindex_say(rx, "rebuild of %s: %" PRIu64 " documents but the wiki "
				    "lists %" PRIu64 " pages and no change explains it: not "
				    "swapping; generation %s left for inspection", w->id, docs,
				    wiki_pages, reindex_generation(rx));
			ok = false;
		}
	}

	/* 6. The swap. */
	char *old = NULL;
	if (ok && (st = reindex_swap(rx, &old)) != STATUS_OK) {
		why = st;
		ok = false;
	}
	if (l) {
		lease_hand_back(l);
		lease_free(l);
	}
	free(pos);
	stream_free(s);
	if (!ok) {
		free(old);
		/* Only the set-up of the streams reports a configuration error;
		 * a later failure of the same connection is the run's. */
		return why == STATUS_CONFIG ? STATUS_TRANSIENT : why;
	}
	reindex_say(rx, "%s now serves generation %s (%" PRIu64 " documents; previous: %s, "
		    "kept: remove it once nothing reads it)", w->id, reindex_generation(rx),
		    docs, old ? old : "none");
	log_info("action=swapped wiki=%s generation=%s previous=%s documents=%" PRIu64,
		 w->id, reindex_generation(rx), old ? old : "-", docs);
	free(old);
	return STATUS_OK;
}
