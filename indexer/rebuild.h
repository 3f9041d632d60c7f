/* SPDX-License-Identifier: MIT */
/*
 * rebuild.h: building a whole new generation of a wiki's shards beside the
 * live one, and swapping it in once it is complete (reindex-page --rebuild).
 *
 * The steps:
 *  1. note each partition's newest stream entry (the start position);
 *  2. create a new generation and index every listed page into it, while
 *     the workers go on updating the live generation;
 *  3. take every partition over from the workers (lease_take_over(), with
 *     the wiki held for the whole run so that a second rebuild is refused):
 *     a running worker commits, acks and hands its partitions over at its
 *     next tick, and takes none while the hold lasts.  A worker that does
 *     not hand over must be stopped; the rebuild names the partitions it
 *     waits for every 30 seconds;
 *  4. catch up: fetch again every page named by a stream entry newer than
 *     the start position (what the workers applied to the old generation
 *     during the build, and what no one applied yet), then list the wiki
 *     again and fetch again the pages on which the list and the new
 *     generation disagree; record the start position as each shard's
 *     stream position;
 *  5. check the count: documents == distinct pages whose last outcome was
 *     present, no page failed, and the wiki's own list agrees (or changes
 *     that arrived after the catch-up, which the workers will apply,
 *     explain the difference);
 *  6. swap `current` atomically and hand the partitions back.  Entries
 *     after the start position are still in the streams: the workers apply
 *     them to the new generation.
 * Until step 6 the live generation is untouched, so searches never see a
 * half-built index; a failed rebuild leaves its generation on disk for
 * inspection and `current` where it was.
 */
#ifndef FRESHET_REBUILD_H
#define FRESHET_REBUILD_H

#include "redis.h"
#include "reindex.h"
#include "status.h"

/* Called once the pages listed at the start are all done (step 2), before
 * the take-over: the pages of the later steps report no progress. */
typedef void (*rebuild_built_fn)(void *arg);

/*
 * Rebuilds the wiki of rx from the pages listed in rx (every page of the
 * wiki's namespaces, redirects included, as the workers index those too).
 * rx must be set up (reindex_setup()) with no target chosen yet; redis is
 * the wiki's Redis (borrowed, used by this thread only during the call);
 * built may be NULL.  Every step and failure is told through rx's
 * hooks.say.
 *
 * Returns STATUS_OK once the new generation serves; STATUS_CONFIG when the
 * wiki's streams do not match the configuration; another status when the
 * rebuild stopped without swapping (the live generation untouched, every
 * partition handed back).
 */
enum status rebuild_run(struct reindex *rx, struct redis *redis, rebuild_built_fn built,
                        void *arg);

#endif
