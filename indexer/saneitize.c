/* SPDX-License-Identifier: MIT */
/*
 * saneitize.c: the consistency loop (see saneitize.h for what it checks
 * and repairs).
 *
 * Invariants: the hash in Redis is the only state that outlives a step; a
 * step reads it, checks one batch, enqueues that batch's repairs and only
 * then writes the advanced cursor back, so a failure at any point repeats
 * the batch instead of skipping it.  The loop reads the live generation
 * through its own read-only handles and never writes a shard: every repair
 * is an event for the partition's owner.
 */
#include "saneitize.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event.h"
#include "fetch.h"
#include "lease.h"
#include "log.h"
#include "now.h"
#include "pagelist.h"
#include "shard.h"
#include "stream.h"
#include "xapian-shim.h"
#include "xmalloc.h"

static const char *const FIX_NAMES[SANEITIZE_FIX__COUNT] = {
	"missing", "stale", "moved", "ghost"
};

struct saneitize {
	const struct conf *cfg;
	const struct conf_wiki *w;
	struct redis *r;
	char *owner;
	char hash_key[256], lock_key[256];
	bool locked;
	struct pagelist *pl;
	struct stream *stream;     /* producer, set up on first use */
	struct shard_set *set;
	char *gen;                 /* generation the readers are open on */
	struct xdb **dbs;          /* one read-only handle per shard */
	unsigned shards;
	int64_t last_request_ms;   /* monotonic time of the last API request */
	struct metrics *m;
	saneitize_fix_fn fix_fn;
	void *fix_arg;
	char errmsg[512];
};

const char *saneitize_fix_str(enum saneitize_fix k)
{
	return k < SANEITIZE_FIX__COUNT ? FIX_NAMES[k] : "invalid";
}

static enum status fail(struct saneitize *sz, enum status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static enum status fail(struct saneitize *sz, enum status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sz->errmsg, sizeof sz->errmsg, fmt, ap);
	va_end(ap);
	return st;
}

/* ---------------------------------------------------------------- state */

static void hash_key(const char *wiki, char *buf, size_t len)
{
	snprintf(buf, len, "freshet:{%s}:saneitize", wiki);
}

static int64_t to_i64(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

enum status saneitize_load(struct redis *r, const char *wiki,
			   struct saneitize_state *out)
{
	memset(out, 0, sizeof *out);
	char key[256];
	hash_key(wiki, key, sizeof key);
	enum status st;
	redisReply *rep = redis_command(r, &st, "HGETALL %s", key);
	if (!rep)
		return st == STATUS_OK ? STATUS_TRANSIENT : st;
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 1 < rep->elements; i += 2) {
		const char *k = rep->element[i]->str, *v = rep->element[i + 1]->str;
		if (!k || !v)
			continue;
		if (!strcmp(k, "cycle")) out->cycle = to_i64(v);
		else if (!strcmp(k, "started_ms")) out->started_ms = to_i64(v);
		else if (!strcmp(k, "done")) out->done = to_i64(v) != 0;
		else if (!strcmp(k, "restart")) out->restart = to_i64(v) != 0;
		else if (!strcmp(k, "phase")) out->phase = (int)to_i64(v);
		else if (!strcmp(k, "ns")) out->ns = (int)to_i64(v);
		else if (!strcmp(k, "cont")) out->cont = xstrdup(v);
		else if (!strcmp(k, "shard")) out->shard = (int)to_i64(v);
		else if (!strcmp(k, "after")) out->after = xstrdup(v);
		else if (!strcmp(k, "checked")) out->checked = (uint64_t)to_i64(v);
		else if (!strcmp(k, "total")) out->total = (uint64_t)to_i64(v);
		else if (!strcmp(k, "last_cycle")) out->last_cycle = to_i64(v);
		else if (!strcmp(k, "last_started_ms")) out->last_started_ms = to_i64(v);
		else if (!strcmp(k, "last_end_ms")) out->last_end_ms = to_i64(v);
		else if (!strcmp(k, "last_checked")) out->last_checked = (uint64_t)to_i64(v);
		for (int f = 0; f < SANEITIZE_FIX__COUNT; f++) {
			if (!strncmp(k, "fix_", 4) && !strcmp(k + 4, FIX_NAMES[f]))
				out->fixes[f] = (uint64_t)to_i64(v);
			if (!strncmp(k, "last_fix_", 9) && !strcmp(k + 9, FIX_NAMES[f]))
				out->last_fixes[f] = (uint64_t)to_i64(v);
		}
	}
	freeReplyObject(rep);
	if (!out->cont)
		out->cont = xstrdup("");
	if (!out->after)
		out->after = xstrdup("");
	return STATUS_OK;
}

void saneitize_state_free(struct saneitize_state *s)
{
	free(s->cont);
	free(s->after);
	s->cont = s->after = NULL;
}

double saneitize_progress(const struct saneitize_state *s)
{
	if (s->done)
		return 100;
	if (s->cycle == 0 || !s->total)
		return 0;
	double p = 100.0 * (double)s->checked / (double)s->total;
	/* The total is an estimate: a pass is not done before it ends. */
	return p > 99 ? 99 : p;
}

enum status saneitize_reset(struct redis *r, const char *wiki)
{
	char key[256];
	hash_key(wiki, key, sizeof key);
	enum status st;
	redisReply *rep = redis_command(r, &st, "HSET %s restart 1", key);
	if (!rep)
		return st == STATUS_OK ? STATUS_TRANSIENT : st;
	freeReplyObject(rep);
	return STATUS_OK;
}

/* Writes every field of s to the hash at once. */
static enum status save(struct saneitize *sz, const struct saneitize_state *s)
{
	char nums[24][32];
	const char *argv[64];
	int argc = 0, n = 0;
	argv[argc++] = "HSET";
	argv[argc++] = sz->hash_key;
#define NUM(name, v) do { \
		snprintf(nums[n], sizeof nums[n], "%" PRId64, (int64_t)(v)); \
		argv[argc++] = name; argv[argc++] = nums[n++]; } while (0)
	NUM("cycle", s->cycle);
	NUM("started_ms", s->started_ms);
	NUM("done", s->done);
	NUM("restart", s->restart);
	NUM("phase", s->phase);
	NUM("ns", s->ns);
	NUM("shard", s->shard);
	NUM("checked", s->checked);
	NUM("total", s->total);
	NUM("last_cycle", s->last_cycle);
	NUM("last_started_ms", s->last_started_ms);
	NUM("last_end_ms", s->last_end_ms);
	NUM("last_checked", s->last_checked);
#undef NUM
	char names[2 * SANEITIZE_FIX__COUNT][32];
	for (int f = 0; f < SANEITIZE_FIX__COUNT; f++) {
		snprintf(names[2 * f], sizeof names[0], "fix_%s", FIX_NAMES[f]);
		snprintf(nums[n], sizeof nums[n], "%" PRIu64, s->fixes[f]);
		argv[argc++] = names[2 * f];
		argv[argc++] = nums[n++];
		snprintf(names[2 * f + 1], sizeof names[0], "last_fix_%s", FIX_NAMES[f]);
		snprintf(nums[n], sizeof nums[n], "%" PRIu64, s->last_fixes[f]);
		argv[argc++] = names[2 * f + 1];
		argv[argc++] = nums[n++];
	}
	argv[argc++] = "cont";
	argv[argc++] = s->cont;
	argv[argc++] = "after";
	argv[argc++] = s->after;
	enum status st;
	redisReply *rep = redis_commandv(sz->r, &st, argc, argv, NULL);
	if (!rep)
		return fail(sz, st == STATUS_OK ? STATUS_TRANSIENT : st, "saving %s: %s",
			    sz->hash_key, redis_errmsg(sz->r));
	freeReplyObject(rep);
	return STATUS_OK;
}

int64_t saneitize_period_ms(const struct conf_wiki *w)
{
	if (w->saneitize_interval_s > 0)
		return (int64_t)w->saneitize_interval_s * 1000;
	return (int64_t)(w->saneitize_days * 86400.0 * 1000.0);
}

/* When the next step of s is due (unix ms; 0: now).  Checks keep pace
 * with the share of the period gone, so a pass ends about when its period
 * does. */
static int64_t due_ms(const struct saneitize_state *s, int64_t period)
{
	if (s->cycle == 0 || s->restart)
		return 0;
	if (s->done)
		return s->started_ms + period;
	if (!s->total || s->checked >= s->total)
		return 0;
	return s->started_ms + (int64_t)((double)period * (double)s->checked /
					 (double)s->total);
}

/* ------------------------------------------------------------- the loop */

struct saneitize *saneitize_new(const struct conf *cfg, const struct conf_wiki *w,
				struct redis *r, const char *owner)
{
	struct saneitize *sz = xcalloc(1, sizeof *sz);
	sz->cfg = cfg;
	sz->w = w;
	sz->r = r;
	if (owner && *owner) {
		sz->owner = xstrdup(owner);
	} else {
		char host[256] = "";
		gethostname(host, sizeof host - 1);
		sz->owner = xasprintf("%s-%ld-%06x", host, (long)getpid(),
				      (unsigned)(now_ms() * 2654435761u) & 0xffffffu);
	}
	hash_key(w->id, sz->hash_key, sizeof sz->hash_key);
	snprintf(sz->lock_key, sizeof sz->lock_key, "freshet:{%s}:saneitize:lock", w->id);
	char *ua = fetch_user_agent(w->user_agent_contact);
	sz->pl = pagelist_new(w->api, ua);
	free(ua);
	sz->set = shard_set_new(cfg->data_dir, w->id);
	return sz;
}

static void close_readers(struct saneitize *sz)
{
	for (unsigned k = 0; k < sz->shards; k++)
		xdb_free(sz->dbs[k]);
	free(sz->dbs);
	sz->dbs = NULL;
	sz->shards = 0;
	free(sz->gen);
	sz->gen = NULL;
}

void saneitize_free(struct saneitize *sz)
{
	if (!sz)
		return;
	saneitize_unlock(sz);
	close_readers(sz);
	shard_set_free(sz->set);
	stream_free(sz->stream);
	pagelist_free(sz->pl);
	free(sz->owner);
	free(sz);
}

const char *saneitize_errmsg(const struct saneitize *sz)
{
	return sz->errmsg;
}

void saneitize_on_fix(struct saneitize *sz, saneitize_fix_fn fn, void *arg)
{
	sz->fix_fn = fn;
	sz->fix_arg = arg;
}

void saneitize_set_metrics(struct saneitize *sz, struct metrics *m)
{
	sz->m = m;
	metrics_declare(m, "freshet_saneitize_pages_checked_total", METRICS_COUNTER,
			"Pages and documents the consistency loop compared.", NULL, 0);
	metrics_declare(m, "freshet_saneitize_fixes_total", METRICS_COUNTER,
			"Repairs the consistency loop enqueued, by kind.", NULL, 0);
}

enum status saneitize_lock(struct saneitize *sz, int ttl_ms)
{
	enum status st = lease_lock(sz->r, sz->lock_key, sz->owner, ttl_ms);
	if (st == STATUS_LOCKED)
		return fail(sz, st, "%s is held by another process", sz->lock_key);
	if (st != STATUS_OK)
		return fail(sz, st, "taking %s: %s", sz->lock_key, redis_errmsg(sz->r));
	sz->locked = true;
	return STATUS_OK;
}

void saneitize_unlock(struct saneitize *sz)
{
	if (sz->locked)
		lease_unlock(sz->r, sz->lock_key, sz->owner);
	sz->locked = false;
}

/* Opens (or brings up to date) one reader per shard of the live
 * generation. */
static enum status open_readers(struct saneitize *sz)
{
	char *gen = NULL;
	enum status st = shard_set_current(sz->set, &gen);
	if (st != STATUS_OK)
		return fail(sz, STATUS_NOT_FOUND, "%s has no index yet", sz->w->id);
	if (sz->gen && !strcmp(gen, sz->gen)) {
		free(gen);
		for (unsigned k = 0; k < sz->shards; k++)
			if ((st = xdb_reopen(sz->dbs[k])) != STATUS_OK)
				return fail(sz, st, "shard %u: %s", k, xdb_errmsg(sz->dbs[k]));
		return STATUS_OK;
	}
	close_readers(sz);
	unsigned n = 0;
	if ((st = shard_set_count(sz->set, gen, &n)) != STATUS_OK) {
		free(gen);
		return fail(sz, STATUS_NOT_FOUND, "%s has no index yet", sz->w->id);
	}
	sz->dbs = xcalloc(n, sizeof *sz->dbs);
	for (unsigned k = 0; k < n; k++) {
		sz->dbs[k] = xdb_new();
		if (!sz->dbs[k])
			abort();
		sz->shards = k + 1;
		char *path = shard_set_path(sz->set, gen, k);
		st = xdb_open_read(sz->dbs[k], path);
		free(path);
		if (st != STATUS_OK) {
			fail(sz, st, "shard %u: %s", k, xdb_errmsg(sz->dbs[k]));
			free(gen);
			close_readers(sz);
			return st;
		}
	}
	sz->gen = gen;
	return STATUS_OK;
}

/* A live document as the loop compares it. */
struct docinfo {
	bool found;
	int64_t rev;
	int ns;
	char title[512];
};

/* Reads page id's document from the readers into *d. */
static enum status lookup(struct saneitize *sz, int64_t id, struct docinfo *d)
{
	memset(d, 0, sizeof *d);
	struct xdb *db = sz->dbs[shard_route((uint64_t)id, sz->shards)];
	char term[32];
	snprintf(term, sizeof term, SHARD_PREFIX_ID "%" PRId64, id);
	struct xdoc *doc = NULL;
	enum status st = xdb_get(db, term, &doc);
	if (st == STATUS_MODIFIED && xdb_reopen(db) == STATUS_OK)
		st = xdb_get(db, term, &doc);
	if (st == STATUS_NOT_FOUND)
		return STATUS_OK;
	if (st != STATUS_OK)
		return fail(sz, st, "reading %s: %s", term, xdb_errmsg(db));
	char *mark = NULL, *data = NULL;
	size_t len = 0, dlen = 0;
	double rev = 0, ns = 0;
	if (xdoc_get_value(doc, SHARD_VALUE_DEAD, &mark, &len) == STATUS_OK && !len &&
	    xdoc_get_value_number(doc, SHARD_VALUE_REV, &rev) == STATUS_OK &&
	    xdoc_get_value_number(doc, SHARD_VALUE_NAMESPACE, &ns) == STATUS_OK &&
	    xdoc_get_data(doc, &data, &dlen) == STATUS_OK) {
		d->found = true;
		d->rev = (int64_t)rev;
		d->ns = (int)ns;
		struct shard_data sd;
		if (shard_data_decode(data, dlen, &sd) == STATUS_OK) {
			const char *t = json_string_value(
				json_object_get(sd.fields, "title"));
			snprintf(d->title, sizeof d->title, "%s", t ? t : "");
			shard_data_release(&sd);
		}
	}
	free(mark);
	free(data);
	xdoc_free(doc);
	return STATUS_OK;
}

/* The event's page_title for a title as MediaWiki shows it: the db key
 * (underscores), without the namespace's prefix. */
static char *db_key(const char *title, int ns)
{
	const char *t = title;
	const char *colon = ns ? strchr(t, ':') : NULL;
	if (colon && colon[1])
		t = colon + 1;
	char *k = xstrdup(*t ? t : "-");
	if (strlen(k) > EVENT_TITLE_MAX)
		k[EVENT_TITLE_MAX] = '\0';
	for (char *c = k; *c; c++)
		if (*c == ' ')
			*c = '_';
	return k;
}

/* Enqueues the repair of one page and counts it. */
static enum status repair(struct saneitize *sz, struct saneitize_state *s,
			  enum saneitize_fix kind, int64_t id, int ns, const char *title,
			  int64_t rev, const char *prior_title, int prior_ns)
{
	if (!sz->stream) {
		struct stream_opts o = { .wiki = sz->w->id, .partitions = sz->w->shards };
		char err[256];
		sz->stream = stream_new(NULL, sz->r, &o, err, sizeof err);
		if (!sz->stream)
			return fail(sz, STATUS_CONFIG, "%s", err);
		enum status st = stream_setup(sz->stream);
		if (st != STATUS_OK) {
			fail(sz, st, "%s", stream_errmsg(sz->stream));
			stream_free(sz->stream);
			sz->stream = NULL;
			return st;
		}
	}
	char *t = db_key(title, ns), *pt = prior_title ? db_key(prior_title, prior_ns) : NULL;
	struct event ev = { .wiki = (char *)sz->w->id, .page_id = id, .title = t,
			    .namespace_id = ns, .rev_id = rev };
	switch (kind) {
	case SANEITIZE_MISSING:
	case SANEITIZE_STALE:
		ev.kind = EVENT_EDIT;
		break;
	case SANEITIZE_MOVED:
		/* A move is always fetched, whatever revision the index
		 * holds; an edit naming that revision would not be. */
		ev.kind = EVENT_MOVE;
		ev.prior_title = pt ? pt : t;
		ev.prior_namespace_id = prior_title ? prior_ns : ns;
		break;
	default:
		ev.kind = EVENT_DELETE;
		ev.rev_id = 0;
		break;
	}
	if (ev.kind != EVENT_DELETE && ev.rev_id <= 0) {
		/* Kinds that name a revision need one: a rerender is fetched
		 * without. */
		ev.kind = EVENT_RERENDER;
	}
	char *json = event_encode(&ev);
	enum status st = stream_produce(sz->stream, id, json, strlen(json), NULL);
	free(json);
	free(t);
	free(pt);
	if (st != STATUS_OK)
		return fail(sz, st, "enqueueing a repair of page %" PRId64 ": %s", id,
			    stream_errmsg(sz->stream));
	s->fixes[kind]++;
	log_info("wiki=%s action=saneitize_fix kind=%s page=%" PRId64 " ns=%d title=%s",
		 sz->w->id, FIX_NAMES[kind], id, ns, log_quote(title));
	if (sz->m) {
		char labels[300];
		snprintf(labels, sizeof labels, "wiki=\"%s\",kind=\"%s\"", sz->w->id,
			 FIX_NAMES[kind]);
		metrics_add(sz->m, "freshet_saneitize_fixes_total", labels, 1);
	}
	if (sz->fix_fn)
		sz->fix_fn(sz->fix_arg, kind, id, ns, title);
	return STATUS_OK;
}

/* Keeps API requests at most `rate` per second. */
static void pace_request(struct saneitize *sz)
{
	if (sz->w->rate > 0 && sz->last_request_ms) {
		int64_t gap = (int64_t)(1000.0 / sz->w->rate);
		int64_t wait = sz->last_request_ms + gap - now_ms();
		if (wait > 0)
			sleep_ms(wait);
	}
	sz->last_request_ms = now_ms();
}

/* Phase "pages": one batch of the current namespace's pages. */
static enum status step_pages(struct saneitize *sz, struct saneitize_state *s)
{
	if (s->ns < 0 || (size_t)s->ns >= sz->w->n_namespaces) {
		s->phase = 1;
		return STATUS_OK;
	}
	int ns = sz->w->namespaces[s->ns];
	struct pagelist_entries e = { 0 };
	char *next = NULL;
	pace_request(sz);
	enum status st = pagelist_allpages_page(sz->pl, ns, sz->w->saneitize_batch, s->cont,
						&e, &next);
	if (st != STATUS_OK) {
		pagelist_entries_free(&e);
		return fail(sz, st == STATUS_PERMANENT ? st : STATUS_TRANSIENT,
			    "listing pages: %s", pagelist_errmsg(sz->pl));
	}
	for (size_t i = 0; i < e.n && st == STATUS_OK; i++) {
		const struct pagelist_entry *x = &e.v[i];
		if (x->missing || x->redirect || x->page_id <= 0)
			continue;
		struct docinfo d;
		if ((st = lookup(sz, x->page_id, &d)) != STATUS_OK)
			break;
		s->checked++;
		/* A move comes before staleness: it makes a revision too. */
		if (!d.found)
			st = repair(sz, s, SANEITIZE_MISSING, x->page_id, x->namespace_id,
				    x->title, x->rev_id, NULL, 0);
		else if (d.ns != x->namespace_id || strcmp(d.title, x->title) != 0)
			st = repair(sz, s, SANEITIZE_MOVED, x->page_id, x->namespace_id,
				    x->title, x->rev_id, d.title, d.ns);
		else if (d.rev < x->rev_id)
			st = repair(sz, s, SANEITIZE_STALE, x->page_id, x->namespace_id,
				    x->title, x->rev_id, NULL, 0);
	}
	pagelist_entries_free(&e);
	if (st != STATUS_OK) {
		free(next);
		return st;
	}
	free(s->cont);
	s->cont = next ? next : xstrdup("");
	if (!next && (size_t)++s->ns >= sz->w->n_namespaces) {
		s->phase = 1;
		s->shard = 0;
		free(s->after);
		s->after = xstrdup("");
	}
	return STATUS_OK;
}

struct terms {
	char **v;
	size_t n, max;
};

static int collect_term(void *ctx, const char *term, size_t len, uint64_t docs)
{
	(void)docs;
	struct terms *t = ctx;
	t->v[t->n++] = xstrndup(term, len);
	return t->n == t->max;
}

/* Phase "documents": one batch of the current shard's documents. */
static enum status step_docs(struct saneitize *sz, struct saneitize_state *s)
{
	if (s->shard < 0 || (unsigned)s->shard >= sz->shards)
		return STATUS_OK;
	struct xdb *db = sz->dbs[s->shard];
	size_t batch = (size_t)sz->w->saneitize_batch;
	struct terms t = { xcalloc(batch, sizeof(char *)), 0, batch };
	enum status st = xdb_terms_after(db, SHARD_PREFIX_ID, s->after, batch, collect_term, &t);
	if (st != STATUS_OK) {
		fail(sz, st, "shard %d: %s", s->shard, xdb_errmsg(db));
		goto out;
	}
	if (t.n == 0) {
		s->shard++;
		free(s->after);
		s->after = xstrdup("");
		goto out;
	}
	int64_t *ids = xcalloc(t.n, sizeof *ids);
	struct docinfo *docs = xcalloc(t.n, sizeof *docs);
	size_t n = 0;
	for (size_t i = 0; i < t.n; i++) {
		int64_t id = strtoll(t.v[i] + strlen(SHARD_PREFIX_ID), NULL, 10);
		if (id <= 0)
			continue;
		if ((st = lookup(sz, id, &docs[n])) != STATUS_OK)
			break;
		/* Dead documents wait for the purge: they are absent. */
		if (docs[n].found)
			ids[n++] = id;
	}
	struct pagelist_entries e = { 0 };
	if (st == STATUS_OK && n) {
		pace_request(sz);
		st = pagelist_by_ids(sz->pl, ids, n, &e);
		if (st != STATUS_OK)
			fail(sz, st == STATUS_PERMANENT ? st : STATUS_TRANSIENT,
			     "asking for pages by id: %s", pagelist_errmsg(sz->pl));
	}
	for (size_t i = 0; i < e.n && st == STATUS_OK; i++) {
		const struct pagelist_entry *x = &e.v[i];
		const struct docinfo *d = NULL;
		for (size_t j = 0; j < n && !d; j++)
			if (ids[j] == x->page_id)
				d = &docs[j];
		if (!d)
			continue;
		if (x->missing)
			st = repair(sz, s, SANEITIZE_GHOST, x->page_id, d->ns, d->title, 0,
				    NULL, 0);
		else if (x->redirect || !conf_wiki_indexes(sz->w, x->namespace_id))
			st = repair(sz, s, SANEITIZE_MOVED, x->page_id, x->namespace_id,
				    x->title, x->rev_id, d->title, d->ns);
	}
	pagelist_entries_free(&e);
	if (st == STATUS_OK) {
		s->checked += n;
		free(s->after);
		s->after = xstrdup(t.v[t.n - 1]);
	}
	free(ids);
	free(docs);
out:
	for (size_t i = 0; i < t.n; i++)
		free(t.v[i]);
	free(t.v);
	return st;
}

/* Starts pass s->cycle + 1 now. */
static void begin_pass(struct saneitize *sz, struct saneitize_state *s)
{
	uint64_t live = 0;
	for (unsigned k = 0; k < sz->shards; k++) {
		uint64_t docs = 0, dead = 0;
		if (xdb_doc_count(sz->dbs[k], &docs) == STATUS_OK &&
		    xdb_value_freq(sz->dbs[k], SHARD_VALUE_DEAD, &dead) == STATUS_OK &&
		    docs > dead)
			live += docs - dead;
	}
	s->cycle++;
	s->started_ms = now_wall_ms();
	s->done = s->restart = false;
	s->phase = s->ns = s->shard = 0;
	free(s->cont);
	s->cont = xstrdup("");
	free(s->after);
	s->after = xstrdup("");
	s->checked = 0;
	/* The wiki's pages and the documents: about twice the documents. */
	s->total = live ? 2 * live : 1;
	memset(s->fixes, 0, sizeof s->fixes);
	log_info("wiki=%s action=saneitize_begin cycle=%" PRId64 " documents=%" PRIu64,
		 sz->w->id, s->cycle, live);
}

enum status saneitize_step(struct saneitize *sz, bool paced, bool *did, bool *pass_done)
{
	bool did_ = false, done_ = false;
	struct saneitize_state s;
	enum status st = saneitize_load(sz->r, sz->w->id, &s);
	if (st != STATUS_OK) {
		fail(sz, st, "reading %s: %s", sz->hash_key, redis_errmsg(sz->r));
		goto out;
	}
	if ((st = open_readers(sz)) != STATUS_OK)
		goto out;
	int64_t period = saneitize_period_ms(sz->w), now = now_wall_ms();
	bool begin = s.cycle == 0 || s.restart || (s.done && now >= s.started_ms + period);
	if (!begin && (s.done || (paced && now < due_ms(&s, period))))
		goto out;
	if (begin)
		begin_pass(sz, &s);
	uint64_t before = s.checked;
	st = s.phase == 0 ? step_pages(sz, &s) : step_docs(sz, &s);
	if (st != STATUS_OK)
		goto out;
	did_ = true;
	if (s.phase == 1 && (unsigned)s.shard >= sz->shards) {
		s.done = true;
		s.last_cycle = s.cycle;
		s.last_started_ms = s.started_ms;
		s.last_end_ms = now_wall_ms();
		s.last_checked = s.checked;
		memcpy(s.last_fixes, s.fixes, sizeof s.fixes);
		done_ = true;
		uint64_t fixes = 0;
		for (int f = 0; f < SANEITIZE_FIX__COUNT; f++)
			fixes += s.fixes[f];
		log_info("wiki=%s action=saneitize_end cycle=%" PRId64 " checked=%" PRIu64
			 " fixes=%" PRIu64 " missing=%" PRIu64 " stale=%" PRIu64
			 " moved=%" PRIu64 " ghost=%" PRIu64, sz->w->id, s.cycle, s.checked,
			 fixes, s.fixes[SANEITIZE_MISSING], s.fixes[SANEITIZE_STALE],
			 s.fixes[SANEITIZE_MOVED], s.fixes[SANEITIZE_GHOST]);
	}
	st = save(sz, &s);
	if (st == STATUS_OK && sz->m && s.checked > before) {
		char labels[300];
		snprintf(labels, sizeof labels, "wiki=\"%s\"", sz->w->id);
		metrics_add(sz->m, "freshet_saneitize_pages_checked_total", labels,
			    (double)(s.checked - before));
	}
out:
	saneitize_state_free(&s);
	if (did)
		*did = did_ && st == STATUS_OK;
	if (pass_done)
		*pass_done = done_ && st == STATUS_OK;
	return st;
}

enum status saneitize_pass(struct saneitize *sz, int wait_ms,
			   const volatile atomic_bool *stop)
{
	int ttl = sz->cfg->lease_ms;
	int64_t end = now_ms() + wait_ms;
	enum status st;
	while ((st = saneitize_lock(sz, ttl)) == STATUS_LOCKED && now_ms() < end &&
	       !(stop && atomic_load(stop)))
		sleep_ms(100);
	if (st != STATUS_OK)
		return st;
	if ((st = saneitize_reset(sz->r, sz->w->id)) != STATUS_OK) {
		saneitize_unlock(sz);
		return fail(sz, st, "resetting %s: %s", sz->hash_key, redis_errmsg(sz->r));
	}
	bool done = false;
	while (!done) {
		if (stop && atomic_load(stop)) {
			st = fail(sz, STATUS_TRANSIENT, "interrupted");
			break;
		}
		/* Each step renews the lock: a step is far shorter than it. */
		if ((st = saneitize_lock(sz, ttl)) != STATUS_OK)
			break;
		if ((st = saneitize_step(sz, false, NULL, &done)) != STATUS_OK)
			break;
	}
	saneitize_unlock(sz);
	return st;
}

void saneitize_run(struct saneitize *sz, const volatile atomic_bool *stop)
{
	int64_t period = saneitize_period_ms(sz->w);
	int ttl = sz->cfg->lease_ms;
	while (!atomic_load(stop)) {
		int64_t pause = 0;
		struct saneitize_state s;
		enum status st = saneitize_load(sz->r, sz->w->id, &s);
		int64_t due = st == STATUS_OK ? due_ms(&s, period) : 0;
		saneitize_state_free(&s);
		int64_t now = now_wall_ms();
		if (st != STATUS_OK) {
			log_warn("wiki=%s action=saneitize reason=%s", sz->w->id,
				 log_quote(redis_errmsg(sz->r)));
			pause = 5000;
		} else if (due > now) {
			pause = due - now;
		} else if ((st = saneitize_lock(sz, ttl)) == STATUS_LOCKED) {
			pause = 1000;
		} else if (st != STATUS_OK) {
			pause = 5000;
		} else {
			bool did = false;
			st = saneitize_step(sz, true, &did, NULL);
			saneitize_unlock(sz);
			if (st == STATUS_NOT_FOUND) {
				log_debug("wiki=%s action=saneitize reason=%s", sz->w->id,
					  log_quote(sz->errmsg));
				pause = 5000;
			} else if (st != STATUS_OK) {
				log_warn("wiki=%s action=saneitize status=%s reason=%s", sz->w->id,
					 status_str(st), log_quote(sz->errmsg));
				pause = 5000;
			} else if (!did) {
				pause = 200;
			}
		}
		/* Look again every few seconds, so that a reset (freshetctl
		 * saneitize) is seen soon; sleep in short slices so that a stop
		 * is seen at once. */
		int64_t until = now_ms() + (pause > 5000 ? 5000 : pause);
		while (!atomic_load(stop) && now_ms() < until) {
			int64_t left = until - now_ms();
			sleep_ms(left > 100 ? 100 : left);
		}
	}
}
