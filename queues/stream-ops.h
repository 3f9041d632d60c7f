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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/*
 * Replay and retention (doc/queues.md, "Replay and retention").  A shard
 * stores the id of the last entry it applied (its position).  A copy of
 * the shard that is behind the consumer group (a restored backup, a
 * replica promoted after its writer died, an empty shard on a host that
 * lost its data) lacks entries the group already delivered and that were
 * acknowledged, so the group will never deliver them again.
 */

/* What stream_replay() found for a partition. */
struct stream_replay {
	char from[STREAM_ID_MAX];   /* the position given, "0-0" for none */
	char to[STREAM_ID_MAX];     /* the group's last-delivered id before the
	                             * call, "0-0" for none */
	char oldest[STREAM_ID_MAX]; /* the oldest entry the stream holds, ""
	                             * when it is empty */
	bool rewound;               /* the group was set back to `from` */
	bool gap;                   /* entries after `from` were trimmed or
	                             * deleted: the stream cannot bring the
	                             * shard up to date alone */
};

/*
 * Brings partition p's consumer group back to position (the id of the last
 * entry the shard holds; NULL or "" for a shard that has none) when entries
 * after it, up to the group's last-delivered id, were acknowledged: XGROUP
 * SETID p's stream to position, so that the group delivers them again, in
 * order, through the ordinary path (they become pending, acked after the
 * commit that applies them; a crash meanwhile loses nothing).  Nothing is
 * rewound when every such entry is still pending (the group delivers those
 * again anyway) or is one of the wiki's recent dead letters (it would only
 * be dead-lettered again).  out->gap tells whether entries after position
 * are gone from the stream (XINFO STREAM's max-deleted-entry-id is past
 * it).  Call only while holding the partition's lease and before reading
 * it (stream_assign()): the group is the partition's, and the lease makes
 * this consumer its only reader.  STATUS_NOT_FOUND when the partition has
 * no consumer group; out is filled on STATUS_OK only.
 */
enum status stream_replay(struct stream *s, int p, const char *position,
                          struct stream_replay *out);

/*
 * Retention: trims partition p's stream (XTRIM MINID ~, whole nodes only)
 * below the oldest of: the entries newer than retention_ms (by Redis's
 * clock, which made the ids), position (the shard's; nothing is trimmed
 * when it is NULL or ""), the oldest pending entry, the group's
 * last-delivered id, and the position of every replica published in the
 * hash freshet:{<wiki>:p<N>}:replicas (field: host, value: "<revision>
 * <position> <time>"; an absent hash bounds nothing).  So an entry goes
 * only once it is older than the retention and every copy has it.
 * *trimmed (may be NULL) gets the number of entries removed.
 * STATUS_NOT_FOUND when the partition has no consumer group.
 */
enum status stream_retain(struct stream *s, int p, const char *position,
                          int64_t retention_ms, long long *trimmed);

/* The oldest entry of partition p: its id into id (STREAM_ID_MAX bytes).
 * STATUS_NOT_FOUND when the stream is empty or absent. */
enum status stream_oldest(struct stream *s, int p, char *id);

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
