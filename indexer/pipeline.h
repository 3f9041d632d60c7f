/* SPDX-License-Identifier: MIT */
/*
 * pipeline.h: one wiki's indexing pipeline, as freshet-worker runs it.
 *
 * Stages (each a thread or a pool of threads, joined by queues):
 *
 *   reader (1)     takes partition leases, reads batches from the wiki's
 *                  partition streams, coalesces them per page and hands one
 *                  job per page on;
 *   fetcher (1)    one curl multi handle: fetches each job's page and
 *                  classifies what it can without decoding the parse
 *                  answer's JSON (errors: delete, retry later,
 *                  dead-letter); a page to index goes on with its answer
 *                  still raw;
 *   analyzers (N)  decode the parse answer (fetch_result_decode(): the
 *                  costly part of a fetch, so it runs on every core; it
 *                  may still turn out lagging or permanent, and is then
 *                  routed the same way as on the fetcher), extract the
 *                  fields and build the document with the page's
 *                  language's analyzer (N = [worker] threads, 0 = one per
 *                  core);
 *   writers (1 per owned partition = shard)  apply the document (replace
 *                  with rev guard and no-op check, or delete), group-commit
 *                  with the stream position and the lease's fencing token in
 *                  the shard metadata, then XACK the entries the commit
 *                  holds (writer.h).
 *
 * Correctness rules (see README "Anatomy of an update"):
 *   - at most one job per page is in flight; events for a page that arrive
 *     meanwhile wait and form the next job, so writes of one page are never
 *     reordered;
 *   - an entry is acknowledged only after the commit that holds its effect
 *     (or its decision to skip) is durable; everything else is either
 *     redelivered (stream_nack: with backoff, dead-lettered at the
 *     max_deliveries-th failure) or left pending for the next owner;
 *   - the number of stream entries held by the pipeline is bounded (4 x
 *     batch), so memory does not grow with the backlog; an entry longer
 *     than [worker] max_event_bytes is dead-lettered by the stream before
 *     it is decoded (stream.h).
 *
 * Leases: the reader both reads and renews the leases (lease_tick()
 * every lease_ms / 3), because what a lease change does (starting and
 * retiring writers, assigning partitions to the stream) touches what only
 * the reader owns; a timer thread would need all of it behind locks.  So
 * the renewal is by deadline, checked before every read, between the
 * entries of a batch and while waiting out a Redis outage: no batch,
 * however slow to take in, delays it by more than one entry.  A read
 * blocks for at most lease_ms / 4.
 *
 * Replay: when the reader takes a partition's lease, before it reads the
 * partition, it compares the position the partition's shard stores with
 * the consumer group and, when the shard lacks entries that were already
 * acknowledged (a restored backup, a promoted replica), sets the group
 * back to the shard's position (stream_replay()): those entries come
 * again, first, through the ordinary path.  Entries after the position
 * that the stream no longer holds are logged (action=replay_gap) and make
 * the consistency loop start a new pass.  doc/queues.md, "Replay and
 * retention".
 *
 * Threads: pipeline_run() runs the reader in the calling thread and starts
 * and joins the others.  pipeline_stop() may be called from any thread or a
 * signal handler (it only stores an atomic flag).
 */
#ifndef FRESHET_PIPELINE_H
#define FRESHET_PIPELINE_H

#include "conf.h"
#include "loader.h"
#include "metrics.h"
#include "status.h"

struct pipeline;

/*
 * Creates the pipeline of wiki (one of cfg's wikis).  cfg, wiki, ld and m
 * are borrowed and must outlive the pipeline; m may be NULL (no metrics).
 * Nothing is connected yet.  Returns NULL with a message in err (errlen
 * bytes) when the wiki's settings are refused by the fetcher.
 */
struct pipeline *pipeline_new(const struct conf *cfg, const struct conf_wiki *wiki,
			      const struct loader *ld, struct metrics *m,
			      char *err, size_t errlen);

/*
 * Runs until pipeline_stop(): connects to Redis (retrying while it is
 * away), publishes or checks the partition count, creates the shard
 * generation when the wiki has none, then reads, indexes and acks.  On
 * stop it stops reading, lets what is in flight finish, commit and be
 * acked (for at most shutdown_timeout_ms), releases its leases and returns
 * STATUS_OK.  Returns STATUS_CONFIG (partition count mismatch, shard count
 * mismatch), STATUS_IO or STATUS_VERSION for failures that retrying cannot
 * fix, with the message in pipeline_errmsg(); STATUS_TRANSIENT when the
 * shutdown timed out with work in flight (it stays pending in Redis).
 */
enum status pipeline_run(struct pipeline *p);

/* Asks pipeline_run() to finish.  Async-signal-safe. */
void pipeline_stop(struct pipeline *p);

/* The message of the failure pipeline_run() returned ("" if none). */
const char *pipeline_errmsg(const struct pipeline *p);

/* Frees p (after pipeline_run() returned).  NULL is a no-op. */
void pipeline_free(struct pipeline *p);

#endif
