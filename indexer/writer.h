/* SPDX-License-Identifier: MIT */
/*
 * writer.h: the writer of one partition's shard, the last stage of the
 * worker pipeline (pipeline.h).  Internal to the pipeline: pipeline.c
 * starts a writer when it acquires a partition's lease and retires it when
 * the lease is released or lost.
 *
 * A writer is one thread that alone opens and writes its partition's
 * shard.  It takes jobs from its queue (writer_push()) and, for each:
 *
 *   apply   ACT_REPLACE: shard_replace() (rev guard and no-op check; the
 *           analyzer recorded in the shard must match the document's);
 *           ACT_DELETE: shard_delete() (a dead mark), or for a scrub
 *           job (below) shard_erase() (a real delete);
 *           ACT_CHECK: when the shard already holds the job's revision the
 *           job needs no fetch and waits for the commit like a write,
 *           otherwise it goes back to the fetch stage.
 *           ACT_PROBE (an event outside the indexed namespaces): when
 *           the shard holds no document of the page the job waits for
 *           the commit with the outcome "ignored", otherwise it goes to
 *           the fetch stage, whose answer decides.
 *           An applied job waits, uncommitted, for the group commit.
 *   commit  when commit_docs jobs wait, when the first of them has waited
 *           commit_ms, or earlier once nothing of the partition is queued,
 *           fetched or analyzed (but not within a short gap of the last
 *           commit), or as soon as the queue is empty while draining or
 *           flushing: the writes, the stream position (the highest entry
 *           id, moved forward only) and the lease's fencing token go to
 *           the shard in one shard_commit().  A commit also purges a batch
 *           of dead documents when there are many.
 *   ack     only after that commit returned (the commit is durable), the
 *           stream entries of every job it holds are acknowledged
 *           (XACK, retried while Redis is away) and each job ends with
 *           its outcome: "indexed", "skipped", "noop", "deleted",
 *           "current" or "ignored".
 *   purge   once the partition has been idle for a while, one batch of
 *           dead documents at a time, each committed alone.
 *   scrub   a job marked scrub (a hidden or suppressed revision of its
 *           page: a visibility_change event, or a fetch answering that
 *           the text is hidden) makes the writer compact the shard
 *           (shard_compact()) right after the commit that holds it,
 *           whatever the load, so that no file of the shard keeps the
 *           hidden text; at most once per SCRUB_GAP_MS (writer.c), the
 *           scrubs of that time waiting for one compaction, and before
 *           the writer exits when it drains.  Jobs wait while it runs.
 *   trim    with [redis] stream_retention_s set, every quarter of the
 *           retention (1 s .. 1 min) when nothing is pending, with a
 *           valid lease, the partition's stream is trimmed below the
 *           position the shard committed (stream_retain(): also never
 *           past the retention, a pending or undelivered entry, or a
 *           replica's published position).
 *
 * Lease and fencing: before every commit the writer checks that the
 * partition's lease is still valid; when it is not, the uncommitted
 * writes are thrown away (the shard is closed and reopened) and their
 * jobs are nacked with "lease lost", because a successor may already be
 * writing the shard.  A purge is skipped without a valid lease.
 * shard_commit() itself refuses a token lower than the one stored by the
 * last commit (STATUS_FENCED): a writer whose lease lapsed unnoticed
 * cannot overwrite its successor's commits.
 *
 * A failed commit: the shard has discarded the writes, nothing is acked,
 * and every job the commit held is nacked (redelivered with backoff, or
 * dead-lettered at the max_deliveries-th failure) with "commit failed" or
 * "fenced"; the writer goes on with the next jobs.  A failed write of one
 * job nacks that job alone; a document whose analyzer version differs from
 * the one the shard records is dead-lettered (the shard needs a rebuild).
 * An ack that still fails after retrying is logged (action=ack) and the
 * jobs end with their outcome all the same: the commit is durable, and
 * their entries stay pending in Redis.
 *
 * Jobs: every job passed to a writer is the writer's until it ends it
 * through pipeline_job_done() or pipeline_job_nack() or sends it back with
 * pipeline_job_to_fetch() (pipeline-internal.h).  A writer ends every job
 * it took, also when it stops: what is queued or uncommitted at an abort
 * is ended as "dropped" (its entries stay pending in Redis, for the
 * partition's next owner).
 *
 * Threads: writer_start(), writer_push(), writer_stop(), writer_wake(),
 * writer_exited() and writer_join_free() are called by the pipeline's
 * threads, never by the writer itself.  writer_push() and writer_stop()
 * of one writer must be serialised by the caller (pipeline.c holds its
 * writers mutex for both): that is what guarantees that a stopped writer
 * receives no job after it has ended what it had.
 */
#ifndef FRESHET_WRITER_H
#define FRESHET_WRITER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "lease.h"
#include "metrics.h"
#include "shard.h"
#include "stream.h"

struct job;
struct pipeline;
struct writer;

/*
 * What the writers of a pipeline borrow from it.  The pipeline fills it
 * once before starting the first writer; it and everything it points to
 * must stay valid until the last writer is joined.
 */
struct writer_env {
	struct pipeline *pipeline;     /* where jobs end (pipeline-internal.h) */
	const struct conf *cfg;        /* commit_ms, commit_docs */
	const struct conf_wiki *wiki;  /* its id, in every log line */
	struct metrics *m;             /* NULL: no metrics */
	const char *labels;            /* wiki="<id>", the metrics' labels */
	struct lease *lease;           /* lease_valid() only */
	struct stream *s;              /* stream_key() and the acks */
	struct shard_set *set;         /* the current generation's shard paths */
	/* [shards]: jobs of each partition in the fetch or analyze stage; a
	 * writer commits early only while its partition's count is 0. */
	atomic_int *upstream;
	/* Set when the fetch and analyze stages have stopped: a job that
	 * would go back to fetch is dropped instead. */
	atomic_bool *stages_stop;
	/* Set when the pipeline stops: commit as soon as the queue is empty. */
	atomic_bool *flushing;
};

/* A writer's state: running, or told to stop. */
enum writer_state {
	W_RUN,   /* take jobs, apply, commit, purge */
	W_DRAIN, /* refuse new jobs; apply what is queued, commit it, exit */
	W_ABORT  /* exit at once; what is queued or uncommitted is dropped */
};

/*
 * Starts the writer of partition with the lease's fencing token: a thread
 * that opens the partition's shard in the current generation (retrying
 * every second while it cannot, e.g. while the previous owner still holds
 * Xapian's lock) and then runs until writer_stop().  env is borrowed (see
 * struct writer_env).  Returns NULL (logged) when the thread cannot be
 * created.
 */
struct writer *writer_start(const struct writer_env *env, int partition,
			    uint64_t token);

/*
 * Queues j for the writer and returns true when the writer runs (the
 * writer owns j from then on); returns false and leaves j to the caller
 * once writer_stop() was called.  Serialise with writer_stop() (see the
 * top of this file).
 */
bool writer_push(struct writer *w, struct job *j);

/*
 * Tells the writer to stop (how is W_DRAIN or W_ABORT) and wakes it.
 * Returns at once; join it with writer_join_free().  A draining writer
 * still applies what is queued, commits and acks it (after the lease
 * check above), then exits; an aborting one ends what it has as
 * "dropped".
 */
void writer_stop(struct writer *w, enum writer_state how);

/* Wakes the writer so that it looks at the pipeline's flushing flag now
 * rather than at its next timeout. */
void writer_wake(struct writer *w);

/* True once the writer's thread has ended every job it had and closed
 * its shard: writer_join_free() will not block. */
bool writer_exited(const struct writer *w);

/* Joins the writer's thread (after writer_stop()) and frees w.  NULL is a
 * no-op. */
void writer_join_free(struct writer *w);

#endif
