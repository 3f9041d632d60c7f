/* SPDX-License-Identifier: MIT */
/*
 * pipeline.c: reader -> fetcher -> analyzers -> per-shard writers, for one
 * wiki (see pipeline.h for the stages and the rules they keep).  This file
 * runs the reader, the fetch and analysis stages, starts and retires the
 * writers (writer.c) as leases come and go, and stops it all.
 *
 * A job is one page's coalesced events.  It is created by the reader,
 * travels through the stages by queue, and always ends in the done queue,
 * whatever happened to it (committed and acked, redelivered, dead-lettered,
 * dropped at shutdown); the reader then forgets the page or starts the
 * page's next job.  That single exit is what keeps "one job per page in
 * flight" true.
 *
 * Invariants:
 *   - only the reader thread touches the slot table (pages in flight), the
 *     lease handle and the read connection;
 *   - only a partition's writer thread touches its shard; writers[] is
 *     guarded by writers_mu, and a job is pushed to a writer (writer_push())
 *     and a writer is stopped (writer_stop()) only under that mutex, so a
 *     retired writer never receives new jobs;
 *   - the stream's control connection (acks, nacks, dead letters, produce)
 *     is shared by the stages: the stream serialises it with its own mutex.
 */
#include "pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "document.h"
#include "event.h"
#include "fetch.h"
#include "lease.h"
#include "log.h"
#include "pagelist.h"
#include "now.h"
#include "pipeline-internal.h"
#include "redis.h"
#include "replica.h"
#include "saneitize.h"
#include "shard.h"
#include "stream-ops.h"
#include "stream.h"
#include "writer.h"
#include "xmalloc.h"

struct slot {
	int64_t page_id;
	struct job *active;    /* dispatched, not done */
	struct job *pending;   /* events that arrived meanwhile */
};

/* A partition's replay (stream_replay()): the group was set back to the
 * shard's position, and the entries up to `to` come again. */
struct replay {
	bool active;
	char from[STREAM_ID_MAX], to[STREAM_ID_MAX];
	long long n;                 /* entries of the range read so far */
};

struct pipeline {
	const struct conf *cfg;
	const struct conf_wiki *wiki;
	const struct loader *ld;
	struct metrics *m;
	char labels[160];            /* wiki="<id>" */

	struct redis *rd, *ctl, *lr, *mr;
	struct stream *s;            /* reads through rd, writes through ctl */
	struct stream *ms;           /* depth and dead-letter counts through mr */
	struct lease *lease;
	/* The xapian-replicate children of the partitions this worker does
	 * not write (replica.h); NULL when the wiki is not replicated here.
	 * Reader thread only. */
	struct replica *repl;
	struct refill *refills;      /* started by the reader, joined at stop */
	struct fetch_wiki *fw;
	struct shard_set *set;
	/* A reader of every shard for the stages: which documents hold a
	 * redirect (redirect_follow_ups()); rd_mu serialises its use. */
	pthread_mutex_t rd_mu;
	struct shard_set *rd_set;

	pthread_mutex_t writers_mu;
	struct writer **writers;     /* [shards], NULL when not owned */
	struct writer **retired;     /* stopped writers, to join */
	size_t n_retired, cap_retired;
	struct writer_env wenv;      /* what every writer borrows */
	/* [shards]: jobs of the partition in the fetch or analyze stage
	 * (between fetch_q and their writer's queue).  A writer commits
	 * early only when its count is 0. */
	atomic_int *upstream;

	struct queue fetch_q, analyze_q, done_q;
	pthread_t fetcher;
	pthread_t *analyzers;
	int n_analyzers;
	bool stages_started;

	atomic_bool stop;            /* pipeline_stop() */
	atomic_bool stages_stop;     /* fetcher and analyzers exit */
	atomic_bool flushing;        /* writers commit as soon as idle */

	struct replay *replays;      /* [shards], reader only */
	struct slot *slots;          /* reader only */
	size_t n_slots, cap_slots;
	size_t held;                 /* entries held in slots (reader only) */
	size_t active;               /* jobs dispatched, not done */

	char errmsg[512];
};

/* --------------------------------------------------------------- jobs */

static struct stream_entry *entry_copy(const struct stream_entry *e)
{
	struct stream_entry *c = xcalloc(1, sizeof *c);
	c->partition = e->partition;
	memcpy(c->id, e->id, sizeof c->id);
	c->deliveries = e->deliveries;
	c->failures = e->failures;
	c->event = event_dup(e->event);
	c->payload = xmalloc(e->len + 1);
	memcpy(c->payload, e->payload, e->len);
	c->payload[e->len] = '\0';
	c->len = e->len;
	return c;
}

static void entry_free(struct stream_entry *e)
{
	if (!e)
		return;
	event_free(e->event);
	free(e->payload);
	free(e);
}

static struct job *job_new(int64_t page_id, int partition)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->page_id = page_id;
	j->partition = partition;
	return j;
}

static void job_add(struct job *j, struct stream_entry *e)
{
	if (j->n == j->cap) {
		j->cap = j->cap ? j->cap * 2 : 4;
		j->entries = xrealloc(j->entries, j->cap * sizeof *j->entries);
	}
	j->entries[j->n++] = e;
	if (e->event->time_ms > j->event_time_ms)
		j->event_time_ms = e->event->time_ms;
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->n; i++)
		entry_free(j->entries[i]);
	free(j->entries);
	fetch_result_free(j->fr);
	shard_doc_free(j->doc);
	free(j->an_lang);
	free(j->an_name);
	free(j->an_version);
	free(j);
}

static const struct event *job_last(const struct job *j)
{
	return j->entries[j->n - 1]->event;
}

/* Counts the job's events by kind and outcome and logs its one line. */
static void job_account(struct pipeline *p, struct job *j)
{
	const struct event *ev = job_last(j);
	int64_t dur = j->t_start ? now_ms() - j->t_start : 0;
	if (p->m) {
		char labels[256];
		for (size_t i = 0; i < j->n; i++) {
			snprintf(labels, sizeof labels, "%s,kind=\"%s\",outcome=\"%s\"",
				 p->labels, event_kind_str(j->entries[i]->event->kind),
				 j->outcome);
			metrics_add(p->m, "freshet_events_total", labels, 1);
		}
	}
	uint64_t rev = j->fr && j->fr->rev_id ? j->fr->rev_id : (uint64_t)ev->rev_id;
	enum log_level lvl = j->reason ? LOG_LEVEL_WARN : LOG_LEVEL_INFO;
	if (j->reason)
		log_write(lvl, "wiki=%s page=%" PRId64 " rev=%" PRIu64
			  " action=%s events=%zu duration_ms=%" PRId64 " reason=%s",
			  p->wiki->id, j->page_id, rev, j->outcome, j->n, dur,
			  log_quote(j->reason));
	else
		log_write(lvl, "wiki=%s page=%" PRId64 " rev=%" PRIu64
			  " action=%s events=%zu duration_ms=%" PRId64,
			  p->wiki->id, j->page_id, rev, j->outcome, j->n, dur);
}

/* Sends j to the fetch stage, counted as upstream of its writer (also
 * called by a writer, pipeline-internal.h). */
void pipeline_job_to_fetch(struct pipeline *p, struct job *j)
{
	j->action = ACT_FETCH;
	j->upstream = true;
	atomic_fetch_add(&p->upstream[j->partition], 1);
	queue_push(&p->fetch_q, j);
}

/* j leaves the fetch and analyze stages (reaches its writer or ends). */
static void job_leave_upstream(struct pipeline *p, struct job *j)
{
	if (j->upstream) {
		j->upstream = false;
		atomic_fetch_sub(&p->upstream[j->partition], 1);
	}
}

/* Ends a job: accounts for it and hands it back to the reader (also
 * called by the writers). */
void pipeline_job_done(struct pipeline *p, struct job *j, const char *outcome,
		       const char *reason)
{
	job_leave_upstream(p, j);
	j->outcome = outcome;
	j->reason = reason;
	job_account(p, j);
	queue_push(&p->done_q, j);
}

/* stream_nack(), retried while Redis is away (bounded): a nack that does
 * not reach Redis would leave the entry in the stream's in-flight set,
 * never redelivered. */
static enum status nack_retry(struct pipeline *p, const struct stream_entry *e,
			      const char *reason, bool permanent, bool *dead)
{
	enum status st;
	int64_t until = now_ms() + 30000;
	unsigned delay = 100;
	while ((st = stream_nack(p->s, e, reason, permanent, dead)) == STATUS_TRANSIENT &&
	       now_ms() < until) {
		sleep_ms((int)delay);
		delay = delay < 2000 ? delay * 2 : 2000;
	}
	return st;
}

/* Redelivers (or, when permanent or out of deliveries, dead-letters) every
 * entry of j, then ends it (also called by the writers). */
void pipeline_job_nack(struct pipeline *p, struct job *j, const char *reason,
		       bool permanent)
{
	bool dead = permanent;
	for (size_t i = 0; i < j->n; i++) {
		bool d = false;
		enum status st = nack_retry(p, j->entries[i], reason, permanent, &d);
		dead = dead || d;
		if (st != STATUS_OK)
			log_warn("wiki=%s page=%" PRId64 " action=nack reason=%s",
				 p->wiki->id, j->page_id,
				 log_quote(stream_errmsg(p->s)));
	}
	/* The reason string may live in a buffer about to be freed: keep a
	 * static description in the job. */
	(void)reason;
	pipeline_job_done(p, j, dead ? "dead_lettered" : "retried",
			  dead ? "dead-lettered" : "will retry");
}

/* Hands a job to its partition's writer, or ends it when the partition is
 * no longer ours (its entries stay pending for the next owner). */
static void route_to_writer(struct pipeline *p, struct job *j)
{
	/* Before the push: once queued, the writer may end (and the reader
	 * free) the job.  The writer may see 0 an instant early; it then
	 * commits a little early, which is harmless. */
	job_leave_upstream(p, j);
	pthread_mutex_lock(&p->writers_mu);
	struct writer *w = p->writers[j->partition];
	if (w && writer_push(w, j)) {
		pthread_mutex_unlock(&p->writers_mu);
		return;
	}
	pthread_mutex_unlock(&p->writers_mu);
	pipeline_job_done(p, j, "dropped", "partition no longer owned");
}

/* ----------------------------------------------------------- redirects */

/* Puts a rerender event (always fetched) for page_id on its partition's
 * stream: the same path as any change. */
static enum status produce_rerender(struct pipeline *p, uint64_t page_id, int ns)
{
	struct event ev = { .kind = EVENT_RERENDER, .wiki = (char *)p->wiki->id,
			    .page_id = (int64_t)page_id, .title = (char *)"-",
			    .namespace_id = ns };
	char *json = event_encode(&ev);
	enum status st = stream_produce(p->s, ev.page_id, json, strlen(json), NULL);
	free(json);
	return st;
}

/* Asks the owner of page_id's partition to reindex it (a redirect's
 * target or former target). */
static enum status enqueue_reindex(struct pipeline *p, uint64_t page_id, int ns)
{
	enum status st = produce_rerender(p, page_id, ns);
	if (st == STATUS_OK)
		log_info("wiki=%s page=%" PRIu64 " action=enqueue_reindex reason=redirect",
			 p->wiki->id, page_id);
	return st;
}

/* A redirect's title belongs to its target's document, which lives in
 * another shard (and maybe with another worker), so when page j->page_id
 * has been fetched, the documents its title must join or leave are
 * reindexed through their own partitions: its target, when it is a
 * redirect now (the target's fetch lists it), and every document that
 * still holds it (its XRI term) but is not its target now (retargeted,
 * deleted, or no longer a redirect).  r is decoded; its class is ok,
 * missing or hidden.  Returns false with a reason when that could not be
 * done (the job is then retried). */
static bool redirect_follow_ups(struct pipeline *p, struct job *j,
				const struct fetch_result *r, const char **why)
{
	uint64_t target = r->cls == FETCH_OK && r->is_redirect ? r->redirect_target : 0;
	struct shard_redirect_holder *h = NULL;
	size_t n = 0;
	pthread_mutex_lock(&p->rd_mu);
	enum status st = shard_set_redirect_holders(p->rd_set, (uint64_t)j->page_id,
						    &h, &n);
	if (st != STATUS_OK)
		log_warn("wiki=%s page=%" PRId64 " action=redirect_lookup reason=%s",
			 p->wiki->id, j->page_id,
			 log_quote(shard_set_errmsg(p->rd_set)));
	pthread_mutex_unlock(&p->rd_mu);
	if (st != STATUS_OK) {
		*why = "could not look up the documents holding the redirect";
		return false;
	}
	bool ok = true;
	for (size_t i = 0; ok && i < n; i++)
		if (h[i].page_id != target)
			ok = enqueue_reindex(p, h[i].page_id, h[i].ns) == STATUS_OK;
	/* Also when the target holds it already: the redirect's title may
	 * have changed (a moved redirect). */
	if (ok && target && conf_wiki_indexes(p->wiki, r->redirect_target_ns))
		ok = enqueue_reindex(p, target, r->redirect_target_ns) == STATUS_OK;
	free(h);
	if (!ok)
		*why = "could not enqueue the reindex of a redirect's target";
	return ok;
}

/* ------------------------------------------------------------ fetcher */

/* Routes a job by its fetch result's class: the one place that maps a
 * class to what happens to the job.  r must be decoded
 * (fetch_result_decode()).  Returns true when the job is to be analyzed
 * (FETCH_OK in an indexed namespace): the caller analyzes it or queues it
 * for analysis; otherwise the job has gone on (writer, retry, dead letter). */
static bool on_fetched(struct pipeline *p, struct job *j, struct fetch_result *r)
{
	j->fr = r;
	if (p->m) {
		char labels[200];
		snprintf(labels, sizeof labels, "%s,class=\"%s\"", p->labels,
			 fetch_class_str(r->cls));
		metrics_add(p->m, "freshet_fetches_total", labels, 1);
	}
	const char *why = NULL;
	switch (r->cls) {
	case FETCH_OK:
		if (!redirect_follow_ups(p, j, r, &why)) {
			pipeline_job_nack(p, j, why, false);
			return false;
		}
		/* A redirect is not a document: its title is in its
		 * target's. */
		if (!r->is_redirect && conf_wiki_indexes(p->wiki, r->ns))
			return true;
		j->action = ACT_DELETE;
		route_to_writer(p, j);
		return false;
	case FETCH_MISSING:
	case FETCH_HIDDEN:
		if (r->cls == FETCH_HIDDEN)
			j->scrub = true;
		if (!redirect_follow_ups(p, j, r, &why)) {
			pipeline_job_nack(p, j, why, false);
			return false;
		}
		j->action = ACT_DELETE;
		route_to_writer(p, j);
		return false;
	case FETCH_LAGGING:
	case FETCH_TRANSIENT: {
		char reason[300];
		snprintf(reason, sizeof reason, "fetch %s: %s",
			 fetch_class_str(r->cls), r->error ? r->error : "");
		pipeline_job_nack(p, j, reason, false);
		return false;
	}
	case FETCH_PERMANENT: {
		char reason[300];
		snprintf(reason, sizeof reason, "fetch permanent: %s",
			 r->error ? r->error : "");
		pipeline_job_nack(p, j, reason, true);
		return false;
	}
	}
	return false;
}

static void *fetcher_main(void *arg)
{
	struct pipeline *p = arg;
	struct fetch *f = fetch_new();
	/* The jobs submitted to f and not collected yet, so that none is lost
	 * when the fetcher stops with requests still running. */
	struct job **subm = NULL;
	size_t n_subm = 0, cap_subm = 0;
	while (!atomic_load(&p->stages_stop)) {
		struct job *j;
		int wait = n_subm ? 0 : 100;
		while ((j = queue_pop(&p->fetch_q, wait))) {
			wait = 0;
			if (fetch_submit(f, p->fw, (uint64_t)j->page_id,
					 j->expected_rev, j) != STATUS_OK) {
				pipeline_job_nack(p, j, "fetch refused the page id", true);
				continue;
			}
			if (n_subm == cap_subm) {
				cap_subm = cap_subm ? cap_subm * 2 : 64;
				subm = xrealloc(subm, cap_subm * sizeof *subm);
			}
			subm[n_subm++] = j;
		}
		if (!n_subm)
			continue;
		if (fetch_run(f, 20) != STATUS_OK) {
			log_error("wiki=%s action=fetch reason=%s", p->wiki->id,
				  log_quote(fetch_errmsg(f)));
			sleep_ms(100);
		}
		struct fetch_result *r;
		while ((r = fetch_next(f))) {
			struct job *dj = r->userdata;
			for (size_t i = 0; i < n_subm; i++)
				if (subm[i] == dj) {
					subm[i] = subm[--n_subm];
					break;
				}
			if (p->m)
				metrics_observe(p->m, "freshet_fetch_seconds", p->labels,
						(double)(now_ms() - dj->t_start) / 1000.0);
			/* A parse answer still to decode goes to the analysis
			 * threads, which decode it (jansson is most of a
			 * fetch's CPU time: this thread keeps to transfers)
			 * and then route it by its final class. */
			if (fetch_result_undecoded(r)) {
				dj->fr = r;
				queue_push(&p->analyze_q, dj);
			} else if (on_fetched(p, dj, r)) {
				queue_push(&p->analyze_q, dj);
			}
		}
	}
	/* Requests still running are abandoned: their entries stay pending. */
	fetch_free(f);
	for (size_t i = 0; i < n_subm; i++)
		pipeline_job_done(p, subm[i], "dropped", "shutdown");
	free(subm);
	return NULL;
}

/* ----------------------------------------------------------- analyzers */

static void *analyzer_main(void *arg)
{
	struct pipeline *p = arg;
	struct document_builder *b = document_builder_new(p->ld);
	while (!atomic_load(&p->stages_stop)) {
		struct job *j = queue_pop(&p->analyze_q, 200);
		if (!j)
			continue;
		if (fetch_result_undecoded(j->fr)) {
			fetch_result_decode(j->fr);
			if (!on_fetched(p, j, j->fr))
				continue; /* not to index after all, or gone on */
		}
		struct document_analysis an;
		/* The revision's own time when the API gave it, else the
		 * event's (about when the revision was made). */
		int64_t ts = fetch_result_rev_timestamp(j->fr);
		if (!ts)
			ts = j->event_time_ms / 1000;
		enum status st = document_build(b, j->fr, p->wiki->api, ts, &j->doc, &an);
		if (st == STATUS_OK) {
			j->an_lang = xstrdup(an.language);
			j->an_name = xstrdup(an.name);
			j->an_version = xstrdup(an.version);
			j->action = ACT_REPLACE;
			/* The HTML is not needed any more: free it before the
			 * job waits for its commit. */
			fetch_result_free(j->fr);
			j->fr = NULL;
			route_to_writer(p, j);
		} else {
			log_error("wiki=%s page=%" PRId64 " action=analyze reason=%s",
				  p->wiki->id, j->page_id,
				  log_quote(document_builder_errmsg(b)));
			pipeline_job_nack(p, j, document_builder_errmsg(b),
					  st != STATUS_NOMEM);
		}
	}
	document_builder_free(b);
	return NULL;
}

/* ------------------------------------------------------------- writers */

/* Starts partition's writer and enters it in the table (logged when the
 * thread cannot be created: the partition then has no writer and its jobs
 * are dropped, their entries left pending). */
static void start_writer(struct pipeline *p, int partition, uint64_t token)
{
	struct writer *w = writer_start(&p->wenv, partition, token);
	if (!w)
		return;
	pthread_mutex_lock(&p->writers_mu);
	p->writers[partition] = w;
	pthread_mutex_unlock(&p->writers_mu);
}

/* Retires partition's writer: drain (finish and commit) or abort. */
static void retire_writer(struct pipeline *p, int partition, enum writer_state how)
{
	pthread_mutex_lock(&p->writers_mu);
	struct writer *w = p->writers[partition];
	p->writers[partition] = NULL;
	if (w) {
		/* Under writers_mu, like every push: no job reaches w after. */
		writer_stop(w, how);
		if (p->n_retired == p->cap_retired) {
			p->cap_retired = p->cap_retired ? p->cap_retired * 2 : 8;
			p->retired = xrealloc(p->retired,
					      p->cap_retired * sizeof *p->retired);
		}
		p->retired[p->n_retired++] = w;
	}
	pthread_mutex_unlock(&p->writers_mu);
}

/* Joins retired writers that have exited (all of them when wait). */
static void writers_reap(struct pipeline *p, bool wait)
{
	size_t k = 0;
	for (size_t i = 0; i < p->n_retired; i++) {
		struct writer *w = p->retired[i];
		if (wait || writer_exited(w))
			writer_join_free(w);
		else
			p->retired[k++] = w;
	}
	p->n_retired = k;
}

/* -------------------------------------------------------------- reader */

/* Makes sure the new holding of partition writes with a token above the
 * one its shard stores: after a Redis failover lost the latest INCRs of the
 * fence counter, the counter can hand out a token an earlier holding
 * already committed with.  Returns false when the partition must not be
 * written now (the lease is given up; a later tick takes it again). */
static bool token_above_shard(struct pipeline *p, int partition, uint64_t *token)
{
	struct shard_set *set = shard_set_new(p->cfg->data_dir, p->wiki->id);
	struct shard_stats stats = { 0 };
	enum status st = shard_set_stats(set, (unsigned)partition, &stats);
	shard_set_free(set);
	if (st != STATUS_OK || *token > stats.fence)
		return true;
	uint64_t was = *token;
	st = lease_raise(p->lease, partition, stats.fence, token);
	if (st != STATUS_OK) {
		log_warn("wiki=%s partition=%d action=fence_raise token=%" PRIu64
			 " stored=%" PRIu64 " reason=%s", p->wiki->id, partition, was,
			 stats.fence, log_quote(lease_errmsg(p->lease)));
		lease_release(p->lease, partition);
		return false;
	}
	log_warn("wiki=%s partition=%d action=fence_raise token=%" PRIu64 " stored=%" PRIu64
		 " new=%" PRIu64 " reason=\"fence counter behind the shard (lost in a "
		 "Redis failover?)\"", p->wiki->id, partition, was, stats.fence, *token);
	return true;
}

/* A refill: every page of one partition, listed by the wiki's API and put
 * on the partition's stream as rerender events, in a thread of its own
 * (listing a large wiki takes a while).  For a shard this host must write
 * but holds no copy of: the worker holding the partition then indexes
 * them like any change. */
struct refill {
	struct pipeline *p;
	int partition;
	pthread_t thread;
	struct refill *next;
};

static void *refill_main(void *arg)
{
	struct refill *rf = arg;
	struct pipeline *p = rf->p;
	char *ua = fetch_user_agent(p->wiki->user_agent_contact);
	struct pagelist *pl = pagelist_new(p->wiki->api, ua);
	free(ua);
	size_t queued = 0;
	bool ok = true;
	for (size_t k = 0; ok && k < p->wiki->n_namespaces; k++) {
		int ns = p->wiki->namespaces[k];
		char *cont = NULL;
		bool first = true;
		while (ok && (first || cont) && !atomic_load(&p->stop)) {
			struct pagelist_entries e = { 0 };
			char *next = NULL;
			enum status st = pagelist_allpages_page(pl, ns, 500, cont, &e, &next);
			if (st == STATUS_TRANSIENT) {
				pagelist_entries_free(&e);
				sleep_ms(1000);
				continue;
			}
			first = false;
			for (size_t i = 0; st == STATUS_OK && i < e.n; i++) {
				const struct pagelist_entry *x = &e.v[i];
				if (x->page_id <= 0 ||
				    x->page_id % p->wiki->shards != rf->partition)
					continue;
				while ((st = produce_rerender(p, (uint64_t)x->page_id, ns)) ==
				       STATUS_TRANSIENT && !atomic_load(&p->stop))
					sleep_ms(1000);
				queued += st == STATUS_OK;
			}
			pagelist_entries_free(&e);
			if (st != STATUS_OK) {
				log_error("wiki=%s partition=%d action=refill reason=%s",
					  p->wiki->id, rf->partition,
					  log_quote(st == STATUS_DECODE ? pagelist_errmsg(pl)
						    : stream_errmsg(p->s)));
				ok = false;
				free(next);
				next = NULL;
			}
			free(cont);
			cont = next;
		}
		free(cont);
	}
	pagelist_free(pl);
	log_info("wiki=%s partition=%d action=refill_queued pages=%zu complete=%s",
		 p->wiki->id, rf->partition, queued,
		 ok && !atomic_load(&p->stop) ? "yes" : "no");
	return NULL;
}

/* Starts a refill of partition (reader thread). */
static void refill_start(struct pipeline *p, int partition)
{
	struct refill *rf = xcalloc(1, sizeof *rf);
	rf->p = p;
	rf->partition = partition;
	if (pthread_create(&rf->thread, NULL, refill_main, rf) != 0) {
		log_error("wiki=%s partition=%d action=refill reason=\"cannot start a thread\"",
			  p->wiki->id, partition);
		free(rf);
		return;
	}
	rf->next = p->refills;
	p->refills = rf;
}

/* Joins every refill (they end soon after pipeline_stop()). */
static void refills_join(struct pipeline *p)
{
	while (p->refills) {
		struct refill *rf = p->refills;
		p->refills = rf->next;
		pthread_join(rf->thread, NULL);
		free(rf);
	}
}

/* How long a published writer outlives its last renewal: past the
 * lease, so that the worker taking a dead writer's partition still sees
 * who wrote it (action=no_replica below), and a replica keeps its
 * client meanwhile. */
static int writer_ttl_ms(const struct pipeline *p)
{
	return 3 * p->cfg->lease_ms;
}

/* Before the first write of a newly held partition: when this host holds
 * a replica of its shard, the replica is the newest copy it has (the
 * client pulls only while another host writes), so it becomes the local
 * shard (shard_set_promote()).  Its stored fencing token and stream
 * position come with it; token_above_shard() then raises the lease's
 * token above that token. */
static void promote_replica(struct pipeline *p, int partition)
{
	struct shard_set *set = shard_set_new(p->cfg->data_dir, p->wiki->id);
	char *live = NULL;
	if (shard_set_replica_live(set, (unsigned)partition, &live) == STATUS_OK) {
		if (p->repl)
			replica_stop(p->repl, partition);
		if (shard_set_promote(set, (unsigned)partition) == STATUS_OK)
			log_info("wiki=%s partition=%d action=promote replica=%s",
				 p->wiki->id, partition, log_quote(live));
		else
			log_error("wiki=%s partition=%d action=promote reason=%s",
				  p->wiki->id, partition,
				  log_quote(shard_set_errmsg(set)));
	} else if (p->repl) {
		/* Another host wrote the partition and this one has no copy
		 * of its shard: the local shard is not the index. */
		char *was = NULL;
		char *mine = replica_writer_value(p->cfg, p->wiki->id, partition);
		if (replica_writer_get(p->lr, p->wiki->id, partition, &was) == STATUS_OK &&
		    was && (!mine || strcmp(was, mine) != 0)) {
			log_warn("wiki=%s partition=%d action=no_replica writer=%s "
				 "reason=\"no replica of the shard on this host; the local "
				 "shard misses what the previous writer wrote: every page "
				 "of the partition is queued again\"",
				 p->wiki->id, partition, log_quote(was));
			refill_start(p, partition);
		}
		free(was);
		free(mine);
	}
	free(live);
	shard_set_free(set);
}

/* Every lease tick: publishes the partitions this worker writes (and
 * their revision), runs the replica clients of the others, and reports
 * what this host's replicas hold (replica.h). */
static void replication_tick(struct pipeline *p)
{
	const char *adv = p->cfg->repl_advertise;
	if (!*adv && !p->repl)
		return;
	struct shard_set *set = shard_set_new(p->cfg->data_dir, p->wiki->id);
	for (int i = 0; i < p->wiki->shards; i++) {
		struct shard_stats stats = { 0 };
		bool have = false;
		if (lease_valid(p->lease, i)) {
			if (p->repl)
				replica_follow(p->repl, i, NULL);
			char *v = replica_writer_value(p->cfg, p->wiki->id, i);
			if (v)
				replica_publish(p->lr, p->wiki->id, i, v, writer_ttl_ms(p));
			free(v);
			have = shard_set_stats(set, (unsigned)i, &stats) == STATUS_OK;
		} else if (p->repl) {
			char *w = NULL;
			if (replica_writer_get(p->lr, p->wiki->id, i, &w) == STATUS_OK)
				replica_follow(p->repl, i, w);
			free(w);
			have = shard_set_replica_stats(set, (unsigned)i, &stats) == STATUS_OK;
		}
		if (have && *adv)
			replica_report(p->lr, p->wiki->id, i, adv, stats.revision,
				       stats.position, writer_ttl_ms(p));
	}
	shard_set_free(set);
}

/* Sets partition's consumer group back to its shard's stored position
 * when the shard lacks entries the group delivered and that were acked
 * (stream_replay()): a restored backup, a promoted replica, an empty shard
 * on a host that lost its data.  The entries then come again through the
 * ordinary path, before the partition's new ones.  Called when the lease
 * is taken, before the partition is read.  Returns false when Redis could
 * not be asked: the lease is given up, and a later tick takes it again. */
static bool replay_start(struct pipeline *p, int partition)
{
	char key[STREAM_ID_MAX + 128];
	stream_key(p->s, partition, key, sizeof key);
	struct shard_set *set = shard_set_new(p->cfg->data_dir, p->wiki->id);
	char *pos = NULL;
	enum status st = shard_set_read_position(set, (unsigned)partition, key, &pos);
	if (st != STATUS_OK && st != STATUS_NOT_FOUND)
		log_warn("wiki=%s partition=%d action=replay reason=%s", p->wiki->id,
			 partition, log_quote(shard_set_errmsg(set)));
	shard_set_free(set);
	struct stream_replay r;
	struct replay *rp = &p->replays[partition];
	rp->active = false;
	st = stream_replay(p->ms, partition, pos, &r);
	free(pos);
	if (st == STATUS_NOT_FOUND)
		return true; /* no group yet: nothing was ever delivered */
	if (st != STATUS_OK) {
		log_warn("wiki=%s partition=%d action=replay reason=%s", p->wiki->id,
			 partition, log_quote(stream_errmsg(p->ms)));
		lease_release(p->lease, partition);
		return false;
	}
	if (r.gap) {
		/* The entries after the position were trimmed: what they changed
		 * is repaired by the consistency loop, whose next pass starts
		 * now. */
		enum status zs = saneitize_reset(p->mr, p->wiki->id);
		log_warn("wiki=%s partition=%d action=replay_gap from=%s oldest=%s "
			 "reason=\"entries after the shard's position are no longer in the "
			 "stream; %s\"", p->wiki->id, partition, r.from,
			 r.oldest[0] ? r.oldest : "-",
			 zs == STATUS_OK ? "a consistency pass was asked for"
					 : "asking for a consistency pass failed");
		if (p->m)
			metrics_add(p->m, "freshet_replay_gaps_total", p->labels, 1);
	}
	if (r.rewound) {
		rp->active = true;
		rp->n = 0;
		memcpy(rp->from, r.from, sizeof rp->from);
		memcpy(rp->to, r.to, sizeof rp->to);
		log_info("wiki=%s partition=%d action=replay_start from=%s to=%s",
			 p->wiki->id, partition, r.from, r.to);
	}
	return true;
}

/* Ends partition's replay: logs it.  Reader thread. */
static void replay_end(struct pipeline *p, int partition)
{
	struct replay *rp = &p->replays[partition];
	if (!rp->active)
		return;
	rp->active = false;
	log_info("wiki=%s partition=%d action=replay from=%s to=%s entries=%lld",
		 p->wiki->id, partition, rp->from, rp->to, rp->n);
}

/* Counts e when it is one of its partition's replayed entries; the first
 * entry past the range (or the end of the range) ends the replay. */
static void replay_count(struct pipeline *p, const struct stream_entry *e)
{
	struct replay *rp = &p->replays[e->partition];
	if (!rp->active)
		return;
	int c = stream_id_cmp(e->id, rp->to);
	if (c <= 0) {
		rp->n++;
		if (p->m)
			metrics_add(p->m, "freshet_replayed_entries_total", p->labels, 1);
	}
	if (c >= 0)
		replay_end(p, e->partition);
}

static void on_lease(void *arg, int partition, enum lease_change what,
		     uint64_t token)
{
	struct pipeline *p = arg;
	switch (what) {
	case LEASE_ACQUIRED:
		promote_replica(p, partition);
		if (!token_above_shard(p, partition, &token))
			break;
		log_info("wiki=%s partition=%d action=lease_acquired token=%" PRIu64,
			 p->wiki->id, partition, token);
		if (!replay_start(p, partition))
			break;
		pthread_mutex_lock(&p->writers_mu);
		bool stale = p->writers[partition] != NULL;
		pthread_mutex_unlock(&p->writers_mu);
		if (stale) {
			/* Unassigning forgets the stream's in-flight entries of
			 * the old holding, so that they are read again. */
			retire_writer(p, partition, W_ABORT);
			stream_assign(p->s, partition, false);
		}
		start_writer(p, partition, token);
		stream_assign(p->s, partition, true);
		break;
	case LEASE_LOST:
		log_warn("wiki=%s partition=%d action=lease_lost", p->wiki->id, partition);
		p->replays[partition].active = false;
		stream_assign(p->s, partition, false);
		retire_writer(p, partition, W_ABORT);
		break;
	case LEASE_RELEASED:
		log_info("wiki=%s partition=%d action=lease_released", p->wiki->id,
			 partition);
		p->replays[partition].active = false;
		stream_assign(p->s, partition, false);
		retire_writer(p, partition, W_DRAIN);
		break;
	}
}

static struct slot *slot_find(struct pipeline *p, int64_t page_id)
{
	for (size_t i = 0; i < p->n_slots; i++)
		if (p->slots[i].page_id == page_id)
			return &p->slots[i];
	return NULL;
}

static struct slot *slot_get(struct pipeline *p, int64_t page_id)
{
	struct slot *s = slot_find(p, page_id);
	if (s)
		return s;
	if (p->n_slots == p->cap_slots) {
		p->cap_slots = p->cap_slots ? p->cap_slots * 2 : 64;
		p->slots = xrealloc(p->slots, p->cap_slots * sizeof *p->slots);
	}
	s = &p->slots[p->n_slots++];
	s->page_id = page_id;
	s->active = s->pending = NULL;
	return s;
}

static void slot_remove(struct pipeline *p, struct slot *s)
{
	*s = p->slots[--p->n_slots];
}

/* True when every event of j only announces a revision (create, edit,
 * undelete, with its rev_id): if the shard holds that revision or a newer
 * one, the job has nothing to change.  A delete, move, visibility change
 * or rerender in the job (or an event without rev_id) always fetches: the
 * same revision may have to go or look different. */
static bool job_checkable(const struct job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		const struct event *ev = j->entries[i]->event;
		if ((ev->kind != EVENT_CREATE && ev->kind != EVENT_EDIT &&
		     ev->kind != EVENT_UNDELETE) || ev->rev_id <= 0)
			return false;
	}
	return j->expected_rev > 0;
}

/* Starts a job: decides from its last event whether to fetch. */
static void dispatch(struct pipeline *p, struct slot *s)
{
	struct job *j = s->pending;
	s->pending = NULL;
	s->active = j;
	p->active++;
	j->t_start = now_ms();
	const struct event *ev = job_last(j);
	/* The last event wins: a delete beats the edits before it, a create or
	 * undelete after a delete beats the delete.  The fetch then tells what
	 * MediaWiki holds now. */
	j->expected_rev = ev->kind == EVENT_DELETE || ev->kind == EVENT_RERENDER ||
				  ev->kind == EVENT_VISIBILITY_CHANGE
			  ? 0 : (uint64_t)ev->rev_id;
	/* A revision hidden or suppressed, of this page or of an older
	 * revision the shard's files may still hold: whatever the fetch
	 * says, that text must leave the shard at once. */
	for (size_t i = 0; i < j->n; i++)
		if (j->entries[i]->event->kind == EVENT_VISIBILITY_CHANGE)
			j->scrub = true;
	if (ev->kind != EVENT_DELETE &&
	    !conf_wiki_indexes(p->wiki, (int)ev->namespace_id)) {
		/* The event says the page is outside the indexed namespaces
		 * (a talk page, or one moved out).  It is a claim, not the
		 * truth: the writer fetches the page when the shard holds a
		 * document for it, and the fetch's namespace decides whether
		 * it goes; otherwise there is nothing to delete and the job
		 * is acknowledged without a fetch. */
		j->action = ACT_PROBE;
		route_to_writer(p, j);
		return;
	}
	if (job_checkable(j)) {
		/* The writer looks up the stored revision first and fetches
		 * only when the shard does not hold this one yet (a backlog
		 * replayed over a built index costs no fetches). */
		j->action = ACT_CHECK;
		route_to_writer(p, j);
		return;
	}
	pipeline_job_to_fetch(p, j);
}

/* Takes one entry of a batch into the slot table, or refuses it. */
static void take_entry(struct pipeline *p, const struct stream_entry *e)
{
	const struct event *ev = e->event;
	char reason[300];
	if (strcmp(ev->wiki, p->wiki->id) != 0) {
		snprintf(reason, sizeof reason, "event of wiki '%s' on wiki '%s''s stream",
			 ev->wiki, p->wiki->id);
		nack_retry(p, e, reason, true, NULL);
		return;
	}
	int want = (int)(ev->page_id % p->wiki->shards);
	if (want != e->partition) {
		snprintf(reason, sizeof reason,
			 "page %" PRId64 " belongs to partition %d, not %d",
			 ev->page_id, want, e->partition);
		nack_retry(p, e, reason, true, NULL);
		return;
	}
	if (ev->kind == EVENT_UNDELETE && ev->prior_page_id &&
	    ev->prior_page_id != ev->page_id) {
		/* The page came back under a new id: the old id's document must
		 * go.  It may live in another partition's shard, which another
		 * worker may own, so ask that partition's owner with a delete
		 * event (its fetch finds the old id gone). */
		struct event del = *ev;
		del.kind = EVENT_DELETE;
		del.page_id = ev->prior_page_id;
		del.rev_id = 0;
		del.prior_page_id = 0;
		del.prior_title = NULL;
		del.redirect_page_id = 0;
		char *json = event_encode(&del);
		enum status st = stream_produce(p->s, del.page_id, json, strlen(json), NULL);
		free(json);
		if (st != STATUS_OK) {
			nack_retry(p, e, "could not enqueue the delete of the prior page id",
				   false, NULL);
			return;
		}
	}
	struct slot *s = slot_get(p, ev->page_id);
	if (!s->pending)
		s->pending = job_new(ev->page_id, e->partition);
	job_add(s->pending, entry_copy(e));
	p->held++;
}

/* Ends jobs the stages finished; starts the next job of their pages. */
static void reap_done(struct pipeline *p, int wait_ms)
{
	struct job *j;
	while ((j = queue_pop(&p->done_q, wait_ms))) {
		wait_ms = 0;
		p->active--;
		p->held -= j->n;
		struct slot *s = slot_find(p, j->page_id);
		if (s && s->active == j) {
			s->active = NULL;
			/* Also while stopping: those entries were read, so they
			 * are finished and acked like the rest of the work in
			 * flight (no new entries are read meanwhile). */
			if (s->pending)
				dispatch(p, s);
			else if (!s->pending)
				slot_remove(p, s);
		}
		job_free(j);
	}
}

static void dispatch_ready(struct pipeline *p)
{
	for (size_t i = 0; i < p->n_slots; i++)
		if (!p->slots[i].active && p->slots[i].pending)
			dispatch(p, &p->slots[i]);
}

static void refresh_gauges(struct pipeline *p)
{
	if (!p->m)
		return;
	long long dead = 0;
	if (stream_dead_count(p->ms, &dead) == STATUS_OK)
		metrics_set(p->m, "freshet_dead_letters", p->labels, (double)dead);
	for (int i = 0; i < p->wiki->shards; i++) {
		if (!lease_valid(p->lease, i))
			continue;
		long long lag = 0, pending = 0;
		if (stream_depth(p->ms, i, &lag, &pending) != STATUS_OK)
			continue;
		char labels[200];
		snprintf(labels, sizeof labels, "%s,partition=\"%d\"", p->labels, i);
		metrics_set(p->m, "freshet_pending_entries", labels, (double)pending);
		metrics_set(p->m, "freshet_undelivered_entries", labels, (double)lag);
	}
	metrics_set(p->m, "freshet_jobs_in_flight", p->labels, (double)p->active);
}

static void declare_metrics(struct metrics *m)
{
	static const double fetch_b[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
	static const double commit_b[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
	metrics_declare(m, "freshet_events_total", METRICS_COUNTER,
			"Events handled, by kind and outcome.", NULL, 0);
	metrics_declare(m, "freshet_fetches_total", METRICS_COUNTER,
			"Page fetches, by classification.", NULL, 0);
	metrics_declare(m, "freshet_fetch_seconds", METRICS_HISTOGRAM,
			"Time from dispatch to fetched page.", fetch_b,
			(int)(sizeof fetch_b / sizeof fetch_b[0]));
	metrics_declare(m, "freshet_commit_seconds", METRICS_HISTOGRAM,
			"Duration of shard commits.", commit_b,
			(int)(sizeof commit_b / sizeof commit_b[0]));
	metrics_declare(m, "freshet_lag_seconds", METRICS_GAUGE,
			"Now minus the time of the newest event in the last commit.",
			NULL, 0);
	metrics_declare(m, "freshet_pending_entries", METRICS_GAUGE,
			"Entries delivered and not yet acknowledged.", NULL, 0);
	metrics_declare(m, "freshet_undelivered_entries", METRICS_GAUGE,
			"Entries not yet delivered to the consumer group.", NULL, 0);
	metrics_declare(m, "freshet_dead_letters", METRICS_GAUGE,
			"Entries in the dead-letter stream.", NULL, 0);
	metrics_declare(m, "freshet_jobs_in_flight", METRICS_GAUGE,
			"Pages being fetched, analyzed or written.", NULL, 0);
	metrics_declare(m, "freshet_replayed_entries_total", METRICS_COUNTER,
			"Entries delivered again because a shard was behind its stream.",
			NULL, 0);
	metrics_declare(m, "freshet_replay_gaps_total", METRICS_COUNTER,
			"Shards found behind entries their stream no longer holds.",
			NULL, 0);
	metrics_declare(m, "freshet_trimmed_entries_total", METRICS_COUNTER,
			"Entries trimmed from the partition streams by retention.",
			NULL, 0);
}

struct pipeline *pipeline_new(const struct conf *cfg, const struct conf_wiki *wiki,
			      const struct loader *ld, struct metrics *m,
			      char *err, size_t errlen)
{
	struct fetch_wiki_config fc;
	fetch_wiki_config_init(&fc);
	fc.name = wiki->id;
	fc.api = wiki->api;
	fc.language = wiki->language;
	fc.user_agent_contact = *wiki->user_agent_contact ? wiki->user_agent_contact
							  : NULL;
	fc.concurrency = wiki->concurrency;
	fc.rate = wiki->rate;
	char *ferr = NULL;
	struct fetch_wiki *fw = fetch_wiki_new(&fc, &ferr);
	if (!fw) {
		snprintf(err, errlen, "[wiki %s]: %s", wiki->id, ferr ? ferr : "refused");
		free(ferr);
		return NULL;
	}
	struct pipeline *p = xcalloc(1, sizeof *p);
	p->cfg = cfg;
	p->wiki = wiki;
	p->ld = ld;
	p->m = m;
	p->fw = fw;
	snprintf(p->labels, sizeof p->labels, "wiki=\"%s\"", wiki->id);
	pthread_mutex_init(&p->writers_mu, NULL);
	pthread_mutex_init(&p->rd_mu, NULL);
	p->writers = xcalloc((size_t)wiki->shards, sizeof *p->writers);
	p->upstream = xcalloc((size_t)wiki->shards, sizeof *p->upstream);
	p->replays = xcalloc((size_t)wiki->shards, sizeof *p->replays);
	for (int i = 0; i < wiki->shards; i++)
		atomic_init(&p->upstream[i], 0);
	queue_init(&p->fetch_q);
	queue_init(&p->analyze_q);
	queue_init(&p->done_q);
	atomic_init(&p->stop, false);
	atomic_init(&p->stages_stop, false);
	atomic_init(&p->flushing, false);
	if (m)
		declare_metrics(m);
	if (conf_replicates(cfg, wiki->id))
		p->repl = replica_new(cfg, wiki);
	return p;
}

void pipeline_stop(struct pipeline *p)
{
	atomic_store(&p->stop, true);
}

const char *pipeline_errmsg(const struct pipeline *p)
{
	return p->errmsg;
}

/* mkdir -p; returns 0 or -1 with errno. */
static int mkdir_p(const char *path)
{
	char *tmp = xstrdup(path);
	for (char *c = tmp + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(tmp, 0750) != 0 && errno != EEXIST) {
			free(tmp);
			return -1;
		}
		*c = '/';
	}
	int rc = mkdir(tmp, 0750) != 0 && errno != EEXIST ? -1 : 0;
	free(tmp);
	return rc;
}

/* Connections, stream setup and the shard generation.  Retries what is
 * transient until stop. */
static enum status setup(struct pipeline *p)
{
	const struct conf *cfg = p->cfg;
	char err[256] = "";
	int block_ms = cfg->lease_ms / 4 < 1000 ? cfg->lease_ms / 4 : 1000;
	struct redis_opts ro = { .url = cfg->redis_url,
				 .password_file = cfg->redis_password_file,
				 .connect_timeout_ms = 2000,
				 .read_timeout_ms = 5000,
				 .sentinels = cfg->redis_sentinels,
				 .master_name = cfg->redis_master_name };
	p->ctl = redis_new(&ro, err, sizeof err);
	p->lr = p->ctl ? redis_new(&ro, err, sizeof err) : NULL;
	p->mr = p->lr ? redis_new(&ro, err, sizeof err) : NULL;
	ro.read_timeout_ms = block_ms + 5000;
	p->rd = p->mr ? redis_new(&ro, err, sizeof err) : NULL;
	if (!p->rd) {
		snprintf(p->errmsg, sizeof p->errmsg, "redis: %s", err);
		return STATUS_CONFIG;
	}
	int claim = 2 * cfg->lease_ms;
	struct stream_opts so = { .wiki = p->wiki->id, .partitions = p->wiki->shards,
				  .batch = cfg->batch, .block_ms = block_ms,
				  .max_deliveries = cfg->max_deliveries,
				  .max_interrupted = cfg->max_interrupted,
				  .max_event_bytes = (size_t)cfg->max_event_bytes,
				  .claim_idle_ms = claim < 2000 ? 2000 : claim };
	p->s = stream_new(p->rd, p->ctl, &so, err, sizeof err);
	p->ms = p->s ? stream_new(NULL, p->mr, &so, err, sizeof err) : NULL;
	if (!p->ms) {
		snprintf(p->errmsg, sizeof p->errmsg, "stream: %s", err);
		return STATUS_CONFIG;
	}
	p->lease = lease_new(p->lr, p->wiki->id, p->wiki->shards, stream_consumer(p->s),
			     cfg->lease_ms);
	if (!p->lease) {
		snprintf(p->errmsg, sizeof p->errmsg, "lease: invalid settings");
		return STATUS_CONFIG;
	}

	struct backoff bo;
	backoff_init(&bo, 100, 5000);
	for (;;) {
		if (atomic_load(&p->stop))
			return STATUS_TRANSIENT;
		enum status st = stream_setup(p->s);
		if (st == STATUS_OK)
			break;
		if (st != STATUS_TRANSIENT) {
			snprintf(p->errmsg, sizeof p->errmsg, "%s", stream_errmsg(p->s));
			return st;
		}
		log_warn("wiki=%s action=setup reason=%s", p->wiki->id,
			 log_quote(stream_errmsg(p->s)));
		backoff_sleep(&bo);
	}

	p->set = shard_set_new(cfg->data_dir, p->wiki->id);
	p->rd_set = shard_set_new(cfg->data_dir, p->wiki->id);
	/* Workers starting together on a new wiki must not each create a
	 * generation (the one swapped in first could be written to after
	 * being swapped out): an exclusive lock file in the wiki's directory
	 * makes "create if there is none" atomic between processes. */
	char *wdir = xasprintf("%s/%s", cfg->data_dir, p->wiki->id);
	char *lockpath = xasprintf("%s/.create.lock", wdir);
	int lockfd = -1;
	if (mkdir_p(wdir) == 0)
		lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
		snprintf(p->errmsg, sizeof p->errmsg, "%s: %s", lockpath, strerror(errno));
		if (lockfd >= 0)
			close(lockfd);
		free(wdir);
		free(lockpath);
		return STATUS_IO;
	}
	free(wdir);
	free(lockpath);
	char *gen = NULL;
	enum status st = shard_set_current(p->set, &gen);
	if (st == STATUS_NOT_FOUND) {
		gen = shard_generation_name();
		st = shard_set_create(p->set, gen, (unsigned)p->wiki->shards);
		if (st == STATUS_OK)
			st = shard_set_swap(p->set, gen);
		if (st == STATUS_OK)
			log_info("wiki=%s action=create_shards generation=%s shards=%d",
				 p->wiki->id, gen, p->wiki->shards);
	}
	free(gen);
	close(lockfd); /* releases the lock */
	if (st != STATUS_OK) {
		snprintf(p->errmsg, sizeof p->errmsg, "shards in %s: %s", cfg->data_dir,
			 shard_set_errmsg(p->set));
		return st;
	}
	unsigned n = 0;
	st = shard_set_count(p->set, NULL, &n);
	if (st != STATUS_OK || n != (unsigned)p->wiki->shards) {
		snprintf(p->errmsg, sizeof p->errmsg,
			 "wiki %s has %u shards on disk but shards = %d in the configuration",
			 p->wiki->id, n, p->wiki->shards);
		return STATUS_CONFIG;
	}
	return STATUS_OK;
}

static bool start_stages(struct pipeline *p)
{
	int n = p->cfg->threads;
	if (n <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (int)c : 1;
	}
	p->analyzers = xcalloc((size_t)n, sizeof *p->analyzers);
	if (pthread_create(&p->fetcher, NULL, fetcher_main, p) != 0)
		return false;
	p->stages_started = true;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&p->analyzers[i], NULL, analyzer_main, p) != 0)
			break;
		p->n_analyzers++;
	}
	return p->n_analyzers > 0;
}

static void stop_stages(struct pipeline *p)
{
	if (!p->stages_started)
		return;
	atomic_store(&p->stages_stop, true);
	queue_wake(&p->fetch_q);
	queue_wake(&p->analyze_q);
	pthread_join(p->fetcher, NULL);
	for (int i = 0; i < p->n_analyzers; i++)
		pthread_join(p->analyzers[i], NULL);
	p->stages_started = false;
	/* Jobs left in the stage queues end here (their entries stay pending). */
	struct job *j;
	while ((j = queue_pop(&p->fetch_q, 0)))
		pipeline_job_done(p, j, "dropped", "shutdown");
	while ((j = queue_pop(&p->analyze_q, 0)))
		pipeline_job_done(p, j, "dropped", "shutdown");
}

/* Renews the leases (and reaps retired writers) when *next_tick is due.
 * Reader thread only: on_lease() touches what the reader owns.  Called
 * between reads and between the entries of a batch, so a slow batch
 * cannot outlast a lease. */
static void lease_tick_due(struct pipeline *p, int64_t *next_tick)
{
	int64_t now = now_ms();
	if (now < *next_tick)
		return;
	if (lease_tick(p->lease, on_lease, p) != STATUS_OK)
		log_warn("wiki=%s action=lease reason=%s", p->wiki->id,
			 log_quote(lease_errmsg(p->lease)));
	replication_tick(p);
	*next_tick = now + p->cfg->lease_ms / 3;
	writers_reap(p, false);
}

enum status pipeline_run(struct pipeline *p)
{
	enum status st = setup(p);
	if (st != STATUS_OK)
		return st == STATUS_TRANSIENT ? STATUS_OK : st; /* stopped early */
	/* Before the first lease_tick(), which starts the writers. */
	p->wenv = (struct writer_env){ .pipeline = p, .cfg = p->cfg, .wiki = p->wiki,
				       .m = p->m, .labels = p->labels,
				       .lease = p->lease, .s = p->s, .set = p->set,
				       .upstream = p->upstream,
				       .stages_stop = &p->stages_stop,
				       .flushing = &p->flushing };
	if (!start_stages(p)) {
		snprintf(p->errmsg, sizeof p->errmsg, "cannot start threads");
		stop_stages(p);
		return STATUS_IO;
	}
	log_info("wiki=%s action=start partitions=%d analyzers=%d consumer=%s",
		 p->wiki->id, p->wiki->shards, p->n_analyzers, stream_consumer(p->s));

	const struct conf *cfg = p->cfg;
	size_t cap = (size_t)cfg->batch * 4;
	if (cap < 64)
		cap = 64;
	int64_t next_tick = 0, next_gauges = 0;
	struct backoff bo;
	backoff_init(&bo, 50, 2000);
	while (!atomic_load(&p->stop)) {
		lease_tick_due(p, &next_tick);
		int64_t now = now_ms();
		if (now >= next_gauges) {
			refresh_gauges(p);
			next_gauges = now + 2000;
		}
		reap_done(p, 0);
		if (p->held + (size_t)cfg->batch > cap) {
			/* Enough in flight: wait for the stages before reading. */
			reap_done(p, 100);
			continue;
		}
		struct stream_batch *b = NULL;
		st = stream_read(p->s, &b);
		if (st != STATUS_OK) {
			log_warn("wiki=%s action=read reason=%s", p->wiki->id,
				 log_quote(stream_errmsg(p->s)));
			stream_batch_free(b);
			/* Keep finishing jobs while Redis is away. */
			int64_t until = now_ms() + (int)backoff_next(&bo);
			while (now_ms() < until && !atomic_load(&p->stop)) {
				reap_done(p, 50);
				lease_tick_due(p, &next_tick);
			}
			continue;
		}
		backoff_reset(&bo);
		for (size_t i = 0; i < b->n; i++) {
			/* A lease acquired or lost here changes what the next
			 * entries meet (their writer): take_entry() routes
			 * by the table as it is then. */
			lease_tick_due(p, &next_tick);
			replay_count(p, &b->entries[i]);
			take_entry(p, &b->entries[i]);
		}
		/* An empty read: every owned partition has been read to its
		 * end, replayed ranges included. */
		if (b->n == 0)
			for (int i = 0; i < p->wiki->shards; i++)
				replay_end(p, i);
		stream_batch_free(b);
		dispatch_ready(p);
	}

	/* Shutdown: stop reading; let the jobs in flight finish and commit. */
	refills_join(p);
	log_info("wiki=%s action=stopping in_flight=%zu", p->wiki->id, p->active);
	atomic_store(&p->flushing, true);
	for (int i = 0; i < p->wiki->shards; i++) {
		pthread_mutex_lock(&p->writers_mu);
		struct writer *w = p->writers[i];
		pthread_mutex_unlock(&p->writers_mu);
		if (w)
			writer_wake(w);
	}
	int64_t deadline = now_ms() + cfg->shutdown_timeout_ms;
	int64_t next = now_ms();
	while (p->active > 0 && now_ms() < deadline) {
		if (now_ms() >= next) {
			/* Keep the leases while finishing. */
			lease_tick(p->lease, on_lease, p);
			next = now_ms() + cfg->lease_ms / 3;
		}
		reap_done(p, 50);
	}
	bool clean = p->active == 0;
	for (int i = 0; i < p->wiki->shards; i++)
		retire_writer(p, i, clean ? W_DRAIN : W_ABORT);
	writers_reap(p, true);
	stop_stages(p);
	reap_done(p, 0);
	lease_release_all(p->lease, NULL, NULL);
	/* In the thread that started the clients (replica.h). */
	replica_free(p->repl);
	p->repl = NULL;
	/* After a timed-out stop, events that waited behind an in-flight job
	 * stay pending in Redis. */
	for (size_t i = 0; i < p->n_slots; i++) {
		job_free(p->slots[i].pending);
		p->slots[i].pending = NULL;
	}
	p->n_slots = 0;
	if (!clean) {
		snprintf(p->errmsg, sizeof p->errmsg,
			 "shutdown timed out with %zu jobs in flight; they stay pending",
			 p->active);
		log_warn("wiki=%s action=stopped reason=%s", p->wiki->id,
			 log_quote(p->errmsg));
		return STATUS_TRANSIENT;
	}
	log_info("wiki=%s action=stopped", p->wiki->id);
	return STATUS_OK;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	stop_stages(p);
	for (int i = 0; p->writers && i < p->wiki->shards; i++)
		retire_writer(p, i, W_ABORT);
	writers_reap(p, true);
	struct job *j;
	/* A writer may have sent a job on to fetch after the stages stopped. */
	while ((j = queue_pop(&p->fetch_q, 0)))
		job_free(j);
	while ((j = queue_pop(&p->done_q, 0)))
		job_free(j);
	for (size_t i = 0; i < p->n_slots; i++)
		job_free(p->slots[i].pending);
	free(p->slots);
	free(p->writers);
	free(p->retired);
	free(p->upstream);
	free(p->replays);
	free(p->analyzers);
	refills_join(p);
	replica_free(p->repl);
	lease_free(p->lease);
	stream_free(p->ms);
	stream_free(p->s);
	redis_free(p->rd);
	redis_free(p->ctl);
	redis_free(p->lr);
	redis_free(p->mr);
	shard_set_free(p->set);
	shard_set_free(p->rd_set);
	pthread_mutex_destroy(&p->rd_mu);
	fetch_wiki_free(p->fw);
	queue_destroy(&p->fetch_q);
	queue_destroy(&p->analyze_q);
	queue_destroy(&p->done_q);
	pthread_mutex_destroy(&p->writers_mu);
	free(p);
}
