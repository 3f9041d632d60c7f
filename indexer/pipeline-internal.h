/* SPDX-License-Identifier: MIT */
/*
 * pipeline-internal.h: what pipeline.c and writer.c share, and nothing
 * else: the job, the blocking job queue, and the three ways a job leaves
 * the writer that are not a commit.  Not installed; nothing outside
 * indexer/pipeline.c and indexer/writer.c includes it.
 *
 * A job is one page's coalesced stream entries.  The reader creates it;
 * whoever holds it (a stage's queue, a stage thread, a writer) owns it
 * until it passes it on, and every job ends with pipeline_job_done() (or
 * pipeline_job_nack(), which calls it): the reader then frees it.
 */
#ifndef FRESHET_PIPELINE_INTERNAL_H
#define FRESHET_PIPELINE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fetch.h"
#include "shard.h"
#include "stream.h"

struct pipeline;

/* ACT_CHECK: the job goes to its writer first, which acks it unfetched
 * when the shard already holds its revision (or sends it on to fetch).
 * ACT_PROBE: likewise, for an event outside the indexed namespaces: acked
 * unfetched when the shard holds no document of the page, else fetched
 * (only a fetch may decide that a document goes). */
enum job_action { ACT_FETCH, ACT_REPLACE, ACT_DELETE, ACT_CHECK, ACT_PROBE };

struct job {
	struct job *next;              /* queue link */
	int64_t page_id;
	int partition;
	struct stream_entry **entries; /* copies, owned by the job */
	size_t n, cap;
	uint64_t expected_rev;
	int64_t event_time_ms;         /* newest event time */
	enum job_action action;
	struct fetch_result *fr;
	struct shard_doc *doc;
	char *an_lang, *an_name, *an_version;
	int64_t t_start;               /* monotonic ms when dispatched */
	bool upstream;                 /* counted in pipeline.upstream[] */
	bool scrub;                    /* hidden or suppressed: its text must
					  leave the shard's files (writer.h) */
	const char *outcome;           /* static string, set when it ends */
	const char *reason;            /* why it did not index, or NULL */
};

/* A FIFO of jobs that any thread may push to and pop from. */
struct queue {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct job *head, *tail;
	size_t n;
};

static inline void queue_init(struct queue *q)
{
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	q->head = q->tail = NULL;
	q->n = 0;
}

static inline void queue_destroy(struct queue *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cond);
}

static inline void queue_push_locked(struct queue *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	q->n++;
	pthread_cond_signal(&q->cond);
}

static inline void queue_push(struct queue *q, struct job *j)
{
	pthread_mutex_lock(&q->mu);
	queue_push_locked(q, j);
	pthread_mutex_unlock(&q->mu);
}

/* Pops a job, waiting up to wait_ms (0: do not wait).  NULL when none. */
static inline struct job *queue_pop(struct queue *q, int wait_ms)
{
	pthread_mutex_lock(&q->mu);
	if (!q->head && wait_ms > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&q->cond, &q->mu, &ts);
	}
	struct job *j = q->head;
	if (j) {
		q->head = j->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		j->next = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	return j;
}

static inline size_t queue_len(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	size_t n = q->n;
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Wakes every thread waiting in queue_pop() (to look at a state change). */
static inline void queue_wake(struct queue *q)
{
	pthread_mutex_lock(&q->mu);
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

/*
 * The exits of a job, defined in pipeline.c; any thread may call them.
 * Each takes j over: the caller must not touch j afterwards (the reader
 * may free it at once).
 */

/* Ends j: counts its events under outcome (a static string), logs its
 * line (reason, static or NULL, makes it a warning) and hands it back to
 * the reader. */
void pipeline_job_done(struct pipeline *p, struct job *j, const char *outcome,
		       const char *reason);

/* Redelivers every entry of j (or dead-letters it, when permanent or out
 * of deliveries), retrying while Redis is away, then ends j.  reason is
 * borrowed for the call. */
void pipeline_job_nack(struct pipeline *p, struct job *j, const char *reason,
		       bool permanent);

/* Sends j (back) to the fetch stage, counted as upstream of its writer. */
void pipeline_job_to_fetch(struct pipeline *p, struct job *j);

#endif
