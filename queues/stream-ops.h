/* SPDX-License-Identifier: MIT */
/*
 * stream-ops.h: the operator's side of a wiki's event queue: the published
 * partition count, queue depth, trimming, and the dead letters (list, show,
 * replay, drop, count).  freshetctl uses all of it; the worker reads the
 * depth and the dead-letter count for its metrics.  The consumer's side
 * (produce, read, ack, nack) is stream.h.
 *
 * Redis keys: see doc/queues.md.
 *
 * Every function but stream_partitions_get() works on a handle from
 * stream_new(), which needs no read connection for them (rd may be NULL),
 * and talks to Redis over its control connection.  STATUS_TRANSIENT means
 * Redis is away (try again later); stream_errmsg(s) says why a call failed,
 * except for a partition number out of range (STATUS_INVALID).
 *
 * Thread rules: these functions take the stream's mutex; they count among
 * the calls that stream.h allows one thread besides the reader to make.
 */
#ifndef FRESHET_STREAM_OPS_H
#define FRESHET_STREAM_OPS_H

#include <stddef.h>

#include "redis.h"
#include "status.h"
#include "stream.h"

/* Reads the published partition count of wiki through r into *out.
 * STATUS_NOT_FOUND when it was never published; STATUS_INVALID when the key
 * holds anything but a decimal integer from 1 to STREAM_MAX_PARTITIONS;
 * STATUS_TRANSIENT or STATUS_INVALID (a Redis error reply) when Redis
 * fails.  On any failure the reason is written to err (errlen bytes; err
 * may be NULL). */
enum status stream_partitions_get(struct redis *r, const char *wiki, int *out,
                                  char *err, size_t errlen);

/*
 * Trims partition p without ever dropping an entry that was not delivered
 * and acked: XTRIM MINID <m> where m is the older of the oldest pending
 * entry and the group's last delivered id.  *trimmed (may be NULL) gets the
 * number of entries removed.  STATUS_NOT_FOUND when the partition has no
 * consumer group.
 */
enum status stream_trim(struct stream *s, int p, long long *trimmed);

/* Queue depth of partition p (for freshetctl and the worker's metrics):
 * entries not yet delivered to the group (lag; -1 when Redis cannot tell)
 * and pending (delivered, not acked).  STATUS_NOT_FOUND when the partition
 * has no consumer group. */
enum status stream_depth(struct stream *s, int p, long long *lag, long long *pending);

/* A dead letter as stored (every string owned by the struct). */
struct stream_dead {
	char id[STREAM_ID_MAX];   /* id in the dead-letter stream */
	char *payload;            /* original event JSON */
	size_t len;
	char *reason;
	char *stream;             /* source stream key */
	char *source_id;          /* source entry id */
	long deliveries;
	char *time;               /* ISO 8601 UTC */
};

/* Lists up to count dead letters with id > after (NULL or "": from the
 * start) in *out (n in *n; caller frees with stream_dead_free()). */
enum status stream_dead_list(struct stream *s, const char *after, size_t count,
                             struct stream_dead **out, size_t *n);
/* One dead letter by id; STATUS_NOT_FOUND when absent.  Caller frees with
 * stream_dead_free(*out, 1). */
enum status stream_dead_show(struct stream *s, const char *id, struct stream_dead **out);
/* XADDs the payload back to its source stream and XDELs the dead letter
 * (MULTI/EXEC).  STATUS_NOT_FOUND when absent; STATUS_INVALID when the
 * recorded source stream is not a partition of this wiki. */
enum status stream_dead_replay(struct stream *s, const char *id);
/* Deletes a dead letter.  STATUS_NOT_FOUND when absent. */
enum status stream_dead_drop(struct stream *s, const char *id);
/* Number of dead letters. */
enum status stream_dead_count(struct stream *s, long long *n);
void stream_dead_free(struct stream_dead *d, size_t n);

#endif
