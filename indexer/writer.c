/* SPDX-License-Identifier: MIT */
/*
 * writer.c: the writer thread of one partition's shard (see writer.h for
 * what it does with a job and when it commits).
 *
 * Invariants:
 *   - only the writer's thread touches its shard handle, its pending list
 *     and its analyzer cache; the pipeline touches the queue (through
 *     writer_push()), the state and the exited flag;
 *   - a job in pend has been applied to the shard's open transaction and
 *     is ended only by the commit that makes it durable (acked, then
 *     pipeline_job_done()) or by throwing that transaction away
 *     (writer_abandon());
 *   - entries are acked only after shard_commit() returned STATUS_OK for
 *     the transaction that holds their effect;
 *   - the stored position only moves forward: redelivered entries are
 *     older than what the shard has seen.
 */
#include "writer.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "now.h"
#include "pipeline-internal.h"
#include "stream-ops.h"
#include "xmalloc.h"

/* A writer commits early, as soon as it is idle and none of its
 * partition's jobs is being fetched or analyzed, but not sooner than this
 * after its previous commit (nor more often than commit_ms): under steady
 * load it still gathers many pages per commit, while the last pages of a
 * burst do not wait a whole commit_ms (which also paces the reader, whose
 * in-flight limit counts jobs until their commit). */
#define IDLE_COMMIT_GAP_MS 150
/* How often a writer with uncommitted writes looks again whether its
 * partition's jobs upstream are done (a job dropped upstream wakes no one). */
#define IDLE_POLL_MS 50
/* Deleted pages stay in the shard as dead documents (shard.h) until the
 * writer purges them: once its partition has had no job for PURGE_IDLE_MS,
 * one batch of PURGE_BATCH per commit, so that a job arriving meanwhile
 * waits for one small batch at most.  Under load that never idles, a
 * commit also purges a batch whenever more than PURGE_BACKLOG are dead. */
#define PURGE_IDLE_MS 1000
#define PURGE_BATCH 50
#define PURGE_BACKLOG 2000
/* A hidden or suppressed page's text must leave the shard's files, which a
 * delete does not do (freed blocks and the previous revision keep it): the
 * writer deletes the document for real and, right after the commit that
 * holds the delete, compacts the shard (shard_compact()).  A compaction
 * costs about a copy of the shard, so a writer compacts at most once per
 * SCRUB_GAP_MS; the hidden pages of that time wait for one compaction. */
#define SCRUB_GAP_MS (5 * 60 * 1000)

struct writer {
	const struct writer_env *env;
	int partition;
	uint64_t token;
	pthread_t thread;
	struct queue q;
	atomic_int state;      /* enum writer_state */
	atomic_bool exited;
	struct shard *sh;
	struct job **pend;     /* applied, waiting for the commit */
	size_t n_pend, cap_pend;
	char **checked;        /* "lang\tname\tversion" already checked */
	size_t n_checked;
	char stream_key[160];
	char position[STREAM_ID_MAX];  /* last position stored in the shard */
	bool scrub_pend;       /* a job in pend has scrub set */
	bool scrub_due;        /* committed scrub jobs wait for compaction */
	int64_t last_compact;  /* now_ms() of the last compaction, 0: none */
	int64_t next_trim;     /* now_ms() when the stream is trimmed next */
};

/* Ends every job waiting for a commit without acking it: nack (redeliver)
 * while running, leave pending at shutdown or when the lease is gone. */
static void writer_abandon(struct writer *w, const char *why, bool nack)
{
	const struct writer_env *e = w->env;
	for (size_t i = 0; i < w->n_pend; i++) {
		if (nack)
			pipeline_job_nack(e->pipeline, w->pend[i], why, false);
		else
			pipeline_job_done(e->pipeline, w->pend[i], "dropped", why);
	}
	w->n_pend = 0;
	w->scrub_pend = false;
}

/* Checks j's analyzer against the one the shard records, once per analyzer
 * for as long as the shard stays open. */
static enum status writer_check_analyzer(struct writer *w, struct job *j)
{
	char key[512];
	snprintf(key, sizeof key, "%s\t%s\t%s", j->an_lang, j->an_name, j->an_version);
	for (size_t i = 0; i < w->n_checked; i++)
		if (strcmp(w->checked[i], key) == 0)
			return STATUS_OK;
	enum status st = shard_check_analyzer(w->sh, j->an_lang, j->an_name,
					      j->an_version);
	if (st == STATUS_OK) {
		w->checked = xrealloc(w->checked, (w->n_checked + 1) * sizeof *w->checked);
		w->checked[w->n_checked++] = xstrdup(key);
	}
	return st;
}

/* Applies one job to the shard; on success it waits in pend for the commit. */
static void writer_apply(struct writer *w, struct job *j)
{
	const struct writer_env *e = w->env;
	enum status st;
	if (j->action == ACT_CHECK) {
		/* The writer's own handle sees its pending writes too: a job
		 * acked here is acked by the commit that makes that revision
		 * durable (or nacked with it when the commit fails). */
		uint64_t have = 0;
		if (shard_get_rev(w->sh, (uint64_t)j->page_id, &have) != STATUS_OK ||
		    have < j->expected_rev) {
			if (atomic_load(e->stages_stop))
				pipeline_job_done(e->pipeline, j, "dropped", "shutdown");
			else
				pipeline_job_to_fetch(e->pipeline, j);
			return;
		}
		j->outcome = "current";
	} else if (j->action == ACT_PROBE) {
		uint64_t have = 0;
		if (shard_get_rev(w->sh, (uint64_t)j->page_id, &have) != STATUS_NOT_FOUND) {
			if (atomic_load(e->stages_stop))
				pipeline_job_done(e->pipeline, j, "dropped", "shutdown");
			else
				pipeline_job_to_fetch(e->pipeline, j);
			return;
		}
		j->outcome = "ignored";
	} else if (j->action == ACT_REPLACE) {
		st = writer_check_analyzer(w, j);
		if (st == STATUS_VERSION) {
			log_error("wiki=%s partition=%d action=refuse reason=%s",
				  e->wiki->id, w->partition,
				  log_quote(shard_errmsg(w->sh)));
			pipeline_job_nack(e->pipeline, j,
					  "analyzer version differs from the shard's: rebuild",
					  true);
			return;
		}
		if (st == STATUS_OK)
			st = shard_replace(w->sh, j->doc);
		j->outcome = st == STATUS_OK ? "indexed"
			   : st == STATUS_SKIPPED ? "skipped"
			   : st == STATUS_NOOP ? "noop" : NULL;
	} else {
		/* A hidden page's document goes for real, not as a mark that
		 * keeps its text in the index until an idle moment. */
		st = j->scrub ? shard_erase(w->sh, (uint64_t)j->page_id)
			      : shard_delete(w->sh, (uint64_t)j->page_id);
		j->outcome = st == STATUS_OK ? "deleted" : st == STATUS_NOOP ? "noop" : NULL;
	}
	shard_doc_free(j->doc);
	j->doc = NULL;
	if (!j->outcome) {
		log_error("wiki=%s page=%" PRId64 " action=write reason=%s",
			  e->wiki->id, j->page_id, log_quote(shard_errmsg(w->sh)));
		pipeline_job_nack(e->pipeline, j, "shard write failed", false);
		return;
	}
	if (w->n_pend == w->cap_pend) {
		w->cap_pend = w->cap_pend ? w->cap_pend * 2 : 64;
		w->pend = xrealloc(w->pend, w->cap_pend * sizeof *w->pend);
	}
	w->pend[w->n_pend++] = j;
	if (j->scrub)
		w->scrub_pend = true;
}

/* Opens the writer's shard and loads its stored position.  Returns false
 * (logged) when it cannot be opened now. */
static bool writer_open(struct writer *w)
{
	const struct writer_env *e = w->env;
	char *path = shard_set_path(e->set, NULL, (unsigned)w->partition);
	enum status st = shard_open(w->sh, path, SHARD_CREATE | SHARD_WAIT_LOCK);
	if (st != STATUS_OK) {
		log_error("wiki=%s partition=%d action=open path=%s reason=%s",
			  e->wiki->id, w->partition, log_quote(path),
			  log_quote(shard_errmsg(w->sh)));
		free(path);
		return false;
	}
	free(path);
	w->position[0] = '\0';
	char *pos = NULL;
	if (shard_get_position(w->sh, w->stream_key, &pos) == STATUS_OK) {
		snprintf(w->position, sizeof w->position, "%s", pos);
		free(pos);
	}
	/* Analyzer checks recorded but not committed are gone with a reopen. */
	for (size_t i = 0; i < w->n_checked; i++)
		free(w->checked[i]);
	w->n_checked = 0;
	return true;
}

/* Opens the shard, retrying every second while the writer should run.
 * Returns false when told to stop first. */
static bool writer_open_retry(struct writer *w)
{
	while (!writer_open(w)) {
		if (atomic_load(&w->state) != W_RUN)
			return false;
		sleep_ms(1000);
	}
	return true;
}

/* Throws the uncommitted writes away (close and open again), handing their
 * entries back for redelivery.  The writer keeps running: if the partition
 * is really gone, the reader retires it at the next lease tick. */
static bool writer_discard(struct writer *w, const char *why)
{
	shard_close(w->sh);
	writer_abandon(w, why, true);
	return writer_open_retry(w);
}

/* Compacts the shard when committed scrub jobs wait for it and the last
 * compaction is SCRUB_GAP_MS old (or force: the writer is stopping).
 * Nothing may be pending. */
static void writer_scrub(struct writer *w, bool force)
{
	const struct writer_env *e = w->env;
	int64_t t0 = now_ms();
	if (!w->scrub_due || w->n_pend ||
	    (!force && w->last_compact &&
	     t0 - w->last_compact < SCRUB_GAP_MS) ||
	    !lease_valid(e->lease, w->partition))
		return;
	enum status st = shard_compact(w->sh);
	w->last_compact = now_ms();
	if (st != STATUS_OK) {
		log_warn("wiki=%s partition=%d action=compact reason=%s",
			 e->wiki->id, w->partition,
			 log_quote(shard_errmsg(w->sh)));
		/* A failed reopen leaves the shard closed: open it again
		 * (closing an open one with nothing pending loses nothing). */
		shard_close(w->sh);
		if (!writer_open_retry(w))
			atomic_store(&w->state, W_ABORT);
		return;
	}
	w->scrub_due = false;
	log_info("wiki=%s partition=%d action=compact "
		 "reason=\"hidden pages\" duration_ms=%" PRId64,
		 e->wiki->id, w->partition, w->last_compact - t0);
}

/* Commits what is pending with the position and fencing token, then acks. */
static void writer_commit(struct writer *w)
{
	const struct writer_env *e = w->env;
	if (!w->n_pend)
		return;
	if (!lease_valid(e->lease, w->partition)) {
		/* Our lease lapsed: a successor may write this shard now. */
		log_warn("wiki=%s partition=%d action=discard reason=\"lease lost\" writes=%zu",
			 e->wiki->id, w->partition, w->n_pend);
		if (!writer_discard(w, "lease lost"))
			atomic_store(&w->state, W_ABORT);
		return;
	}
	const char *maxid = NULL;
	size_t n_entries = 0;
	int64_t newest = 0;
	for (size_t i = 0; i < w->n_pend; i++) {
		struct job *j = w->pend[i];
		n_entries += j->n;
		if (j->event_time_ms > newest)
			newest = j->event_time_ms;
		for (size_t k = 0; k < j->n; k++)
			if (!maxid || stream_id_cmp(j->entries[k]->id, maxid) > 0)
				maxid = j->entries[k]->id;
	}
	int64_t t0 = now_ms();
	enum status st = STATUS_OK;
	uint64_t dead = 0;
	size_t purged = 0;
	if (shard_dead_count(w->sh, &dead) == STATUS_OK && dead > PURGE_BACKLOG)
		st = shard_purge(w->sh, PURGE_BATCH, &purged);
	/* Redelivered entries are older than what the shard has seen: the
	 * position only moves forward. */
	bool forward = !w->position[0] || stream_id_cmp(maxid, w->position) > 0;
	if (st == STATUS_OK && forward)
		st = shard_set_position(w->sh, w->stream_key, maxid);
	if (st == STATUS_OK)
		st = shard_commit(w->sh, w->token);
	if (st == STATUS_OK && forward)
		snprintf(w->position, sizeof w->position, "%s", maxid);
	int64_t took = now_ms() - t0;
	if (e->m)
		metrics_observe(e->m, "freshet_commit_seconds", e->labels,
				(double)took / 1000.0);
	if (st != STATUS_OK) {
		log_error("wiki=%s partition=%d action=commit reason=%s",
			  e->wiki->id, w->partition, log_quote(shard_errmsg(w->sh)));
		/* The shard discarded the writes; a fenced writer's lease is
		 * gone and the reader retires it soon. */
		writer_abandon(w, st == STATUS_FENCED ? "fenced" : "commit failed", true);
		return;
	}
	const struct stream_entry **acks = xmalloc(n_entries * sizeof *acks);
	size_t a = 0;
	for (size_t i = 0; i < w->n_pend; i++)
		for (size_t k = 0; k < w->pend[i]->n; k++)
			acks[a++] = w->pend[i]->entries[k];
	/* The commit is durable: the ack must land, or the entries would stay
	 * in the stream's in-flight set, pending for ever.  Retry while Redis
	 * is away (an ack is idempotent). */
	int64_t until = now_ms() + 60000;
	unsigned delay = 100;
	while ((st = stream_ack_entries(e->s, (const struct stream_entry *const *)acks, a)) ==
		       STATUS_TRANSIENT &&
	       now_ms() < until && atomic_load(&w->state) != W_ABORT) {
		sleep_ms((int)delay);
		delay = delay < 2000 ? delay * 2 : 2000;
	}
	free(acks);
	if (st != STATUS_OK)
		log_warn("wiki=%s partition=%d action=ack reason=%s", e->wiki->id,
			 w->partition, log_quote(stream_errmsg(e->s)));
	log_debug("wiki=%s partition=%d action=commit docs=%zu entries=%zu purged=%zu "
		  "duration_ms=%" PRId64 " position=%s", e->wiki->id, w->partition,
		  w->n_pend, n_entries, purged, took, maxid);
	if (e->m && newest) {
		char labels[200];
		snprintf(labels, sizeof labels, "%s,partition=\"%d\"", e->labels,
			 w->partition);
		metrics_set(e->m, "freshet_lag_seconds", labels,
			    (double)(now_wall_ms() - newest) / 1000.0);
	}
	for (size_t i = 0; i < w->n_pend; i++)
		pipeline_job_done(e->pipeline, w->pend[i], w->pend[i]->outcome, NULL);
	w->n_pend = 0;
	if (w->scrub_pend)
		w->scrub_due = true;
	w->scrub_pend = false;
	/* At once, whatever the load: the next job waits for the compaction. */
	writer_scrub(w, false);
}

/* Purges one batch of dead documents and commits it alone (nothing else
 * is pending when this runs).  Returns true when it purged something. */
static bool writer_purge(struct writer *w)
{
	const struct writer_env *e = w->env;
	uint64_t dead = 0;
	if (shard_dead_count(w->sh, &dead) != STATUS_OK || dead == 0 ||
	    !lease_valid(e->lease, w->partition))
		return false;
	int64_t t0 = now_ms();
	size_t purged = 0;
	enum status st = shard_purge(w->sh, PURGE_BATCH, &purged);
	if (st == STATUS_OK)
		st = shard_commit(w->sh, w->token);
	if (st != STATUS_OK) {
		log_warn("wiki=%s partition=%d action=purge reason=%s", e->wiki->id,
			 w->partition, log_quote(shard_errmsg(w->sh)));
		/* Whatever the batch left in the transaction goes. */
		if (!writer_discard(w, "purge failed"))
			atomic_store(&w->state, W_ABORT);
		return false;
	}
	log_debug("wiki=%s partition=%d action=purge docs=%zu dead=%" PRIu64
		  " duration_ms=%" PRId64, e->wiki->id, w->partition, purged,
		  dead - purged, now_ms() - t0);
	return purged > 0;
}

/* Trims the partition's stream to its retention (stream_retain()): the
 * writer knows the position its shard committed, below which the shard
 * needs no entry any more.  Runs every quarter of the retention, within
 * 1 s .. 1 min, and only with a valid lease. */
static void writer_trim(struct writer *w)
{
	const struct writer_env *e = w->env;
	int64_t ret_ms = (int64_t)e->cfg->stream_retention_s * 1000;
	int64_t every = ret_ms / 4 < 1000 ? 1000 : ret_ms / 4 > 60000 ? 60000 : ret_ms / 4;
	w->next_trim = now_ms() + every;
	if (!w->position[0] || !lease_valid(e->lease, w->partition))
		return;
	long long n = 0;
	if (stream_retain(e->s, w->partition, w->position, ret_ms, &n) != STATUS_OK) {
		log_warn("wiki=%s partition=%d action=trim reason=%s", e->wiki->id,
			 w->partition, log_quote(stream_errmsg(e->s)));
		return;
	}
	if (n <= 0)
		return;
	log_info("wiki=%s partition=%d action=trim entries=%lld position=%s",
		 e->wiki->id, w->partition, n, w->position);
	if (e->m) {
		char labels[200];
		snprintf(labels, sizeof labels, "%s,partition=\"%d\"", e->labels,
			 w->partition);
		metrics_add(e->m, "freshet_trimmed_entries_total", labels, (double)n);
	}
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	const struct writer_env *e = w->env;
	if (!writer_open_retry(w))
		atomic_store(&w->state, W_ABORT);
	int64_t first = 0, last_commit = 0, last_job = now_ms();
	int64_t gap = e->cfg->commit_ms < IDLE_COMMIT_GAP_MS ? e->cfg->commit_ms
							     : IDLE_COMMIT_GAP_MS;
	for (;;) {
		int state = atomic_load(&w->state);
		if (state == W_ABORT)
			break;
		int wait = 200;
		if (w->n_pend) {
			int64_t now = now_ms();
			int64_t left = first + e->cfg->commit_ms - now;
			int64_t gap_left = last_commit + gap - now;
			if (gap_left <= 0)
				gap_left = IDLE_POLL_MS;
			if (gap_left < left)
				left = gap_left;
			wait = left <= 0 ? 0 : left < 200 ? (int)left : 200;
		}
		struct job *j = queue_pop(&w->q, wait);
		if (j) {
			if (!w->n_pend)
				first = now_ms();
			last_job = now_ms();
			writer_apply(w, j);
		}
		bool idle = !j;
		/* Nothing queued and nothing of the partition still on its way:
		 * waiting longer would only delay what is pending. */
		bool quiet = (idle || queue_len(&w->q) == 0) &&
			     atomic_load(&e->upstream[w->partition]) == 0;
		int64_t now = now_ms();
		bool due = w->n_pend &&
			   ((int)w->n_pend >= e->cfg->commit_docs ||
			    now - first >= e->cfg->commit_ms ||
			    (quiet && now - last_commit >= gap) ||
			    (idle && (state == W_DRAIN || atomic_load(e->flushing))));
		if (due) {
			writer_commit(w);
			last_commit = now_ms();
		}
		if (w->scrub_due && !w->n_pend)
			writer_scrub(w, state == W_DRAIN);
		if (state == W_DRAIN && idle && !w->n_pend)
			break;
		if (state == W_RUN && !w->n_pend && e->cfg->stream_retention_s > 0 &&
		    now >= w->next_trim)
			writer_trim(w);
		if (state == W_RUN && idle && !w->n_pend &&
		    now - last_job >= PURGE_IDLE_MS && queue_len(&w->q) == 0 &&
		    atomic_load(&e->upstream[w->partition]) == 0 && !writer_purge(w))
			last_job = now_ms(); /* nothing to purge: look again later */
	}
	/* Aborting: what is queued or uncommitted stays pending in Redis. */
	writer_abandon(w, "writer stopped", false);
	struct job *j;
	while ((j = queue_pop(&w->q, 0)))
		pipeline_job_done(e->pipeline, j, "dropped", "writer stopped");
	shard_close(w->sh);
	atomic_store(&w->exited, true);
	return NULL;
}

struct writer *writer_start(const struct writer_env *env, int partition,
			    uint64_t token)
{
	const struct writer_env *e = env;
	struct writer *w = xcalloc(1, sizeof *w);
	w->env = env;
	w->partition = partition;
	w->token = token;
	queue_init(&w->q);
	atomic_init(&w->state, W_RUN);
	atomic_init(&w->exited, false);
	w->sh = shard_new();
	stream_key(e->s, partition, w->stream_key, sizeof w->stream_key);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		log_error("wiki=%s partition=%d action=start reason=\"cannot create a thread\"",
			  e->wiki->id, partition);
		shard_free(w->sh);
		queue_destroy(&w->q);
		free(w);
		return NULL;
	}
	return w;
}

bool writer_push(struct writer *w, struct job *j)
{
	if (atomic_load(&w->state) != W_RUN)
		return false;
	queue_push(&w->q, j);
	return true;
}

void writer_stop(struct writer *w, enum writer_state how)
{
	atomic_store(&w->state, how);
	queue_wake(&w->q);
}

void writer_wake(struct writer *w)
{
	queue_wake(&w->q);
}

bool writer_exited(const struct writer *w)
{
	return atomic_load(&w->exited);
}

void writer_join_free(struct writer *w)
{
	if (!w)
		return;
	pthread_join(w->thread, NULL);
	shard_free(w->sh);
	for (size_t i = 0; i < w->n_checked; i++)
		free(w->checked[i]);
	free(w->checked);
	free(w->pend);
	queue_destroy(&w->q);
	free(w);
}
