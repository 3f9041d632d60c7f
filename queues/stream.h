/* SPDX-License-Identifier: MIT */
/*
 * stream.h: a wiki's change-event queue on Redis Streams.
 *
 * Redis keys: see doc/queues.md.  A wiki's events are spread over
 * `partitions` streams: a page's events go to partition page_id mod
 * partitions, so one writer sees them in order.  Every partition stream is
 * read through the consumer group STREAM_GROUP, which stream_setup() creates
 * when missing.  This header is the producer's and the consumer's side; the
 * operator's side (queue depth, trimming, dead letters) is stream-ops.h.
 *
 * Reliable consumption.  A consumer (a struct stream with a read connection)
 * reads the partitions it was assigned (stream_assign()).  For each newly
 * assigned partition, and after every reconnect, it first re-reads its own
 * pending entries (XREADGROUP ... 0) and only then new ones (>).  Entries
 * left pending by another consumer for claim_idle_ms are claimed
 * (XAUTOCLAIM); after a full scan, consumers idle that long with nothing
 * pending (dead workers) are removed from the group.  Every entry handed out
 * carries its delivery count (from XPENDING for re-read and claimed entries,
 * 1 for new ones) and its failure count.  The caller acks a batch (stream_ack(): one XACK per
 * partition, pipelined) only when what it did with it is durable; it reports
 * an entry that failed with stream_nack(), which records the failure and
 * redelivers it (the entry is XCLAIMed again) after a jittered backoff, or
 * dead-letters it at its max_deliveries-th failure.
 *
 * Failures and interruptions are counted apart.  Redis raises an entry's
 * delivery count on every re-read of the pending list and every claim, so a
 * worker killed (or whose Redis restarted) while holding a hundred entries
 * raises all their counts, though none of them failed: counted as failures,
 * a few kill -9s would dead-letter good events.  So stream_nack() counts
 * failures in a counter of their own per entry (it expires a day after the
 * last failure and is deleted with the ack or the dead letter), and the
 * deliveries that ended with neither an ack nor a nack ("interrupted":
 * deliveries - 1 - failures) have their own, higher bound, max_interrupted:
 * an event that crashes the worker every time it is processed still ends in
 * the dead-letter stream instead of crashing it forever.  An entry that fails
 * to decode, or that was interrupted more than max_interrupted times, is
 * never handed out: it is moved to the dead-letter stream and acked in one
 * MULTI/EXEC.  So is an entry whose `event` field is longer than
 * max_event_bytes: its length is checked on the reply, before any JSON
 * decoding, so one huge event costs its bytes once, not a parse tree.
 *
 * Connections: `rd` is used only by stream_read() (XREADGROUP with BLOCK,
 * XPENDING, XAUTOCLAIM, and the XCLAIM that hands out a nacked entry again);
 * `ctl` for everything else (XACK, failure counters, dead letters, XADD,
 * setup).  Their read timeouts must be above block_ms (rd) and above a few
 * round trips (ctl).
 *
 * Thread rules: stream_read() and stream_assign() are called by one thread
 * (the reader); stream_ack(), stream_nack(), stream_produce(),
 * stream_dead_letter() and the functions of stream-ops.h may be called by
 * one other thread at the same time (a mutex in the stream guards `ctl` and
 * the shared bookkeeping).  The redis
 * handles are borrowed: they must outlive the stream and must not be used by
 * anyone else while the stream exists.
 */
#ifndef FRESHET_STREAM_H
#define FRESHET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "redis.h"
#include "status.h"

#define STREAM_GROUP "freshet"
/* Longest entry id "<ms>-<seq>" plus NUL. */
#define STREAM_ID_MAX 48
/* The highest partition count a stream accepts (stream_new(), and the
 * published count read back from Redis). */
#define STREAM_MAX_PARTITIONS 65536

struct stream;

struct stream_opts {
	const char *wiki;        /* required; copied */
	int partitions;          /* required, >= 1: the configured shard count */
	const char *consumer;    /* consumer name; NULL: "<host>-<pid>-<random>" */
	int batch;               /* entries per read; 0: 100 */
	int block_ms;            /* XREADGROUP BLOCK; 0: 1000 */
	int max_deliveries;      /* failures before the dead letter; 0: 5 */
	size_t max_event_bytes;  /* a longer `event` field is dead-lettered
	                          * with "too large", never decoded; 0: 65536 */
	int max_interrupted;     /* interrupted deliveries before the dead
	                          * letter (see above); 0: 20 */
	int claim_idle_ms;       /* claim others' entries idle this long; 0: 60000.
	                          * With leases, about lease_ms is right: the
	                          * previous owner of a partition has stopped by
	                          * then (and fencing stops it anyway). */
	int retry_base_ms;       /* nack backoff base; 0: 100 */
	int retry_cap_ms;        /* nack backoff cap; 0: 30000 */
};

/* One entry handed to the caller.  Everything is owned by the batch. */
struct stream_entry {
	int partition;
	char id[STREAM_ID_MAX];   /* stream entry id */
	long deliveries;          /* 1 for the first delivery */
	long failures;            /* stream_nack() calls before this delivery */
	struct event *event;      /* decoded, never NULL */
	char *payload;            /* the `event` field, verbatim, NUL-terminated */
	size_t len;               /* bytes in payload */
};

struct stream_batch {
	size_t n;
	struct stream_entry *entries;
};

/*
 * Creates a stream handle for one wiki.  rd may be NULL for a handle that
 * only produces, acks or serves stream-ops.h (stream_read() then returns
 * STATUS_INVALID).  ctl is required.  Nothing is sent to Redis yet.  Returns
 * NULL only for invalid options (wiki NULL/empty or containing '{', '}' or
 * whitespace, partitions < 1), with the reason in err.
 */
struct stream *stream_new(struct redis *rd, struct redis *ctl,
                          const struct stream_opts *opts, char *err, size_t errlen);

/* Frees s and its bookkeeping (not the redis handles).  Entries it handed
 * out and that were not acked stay pending in Redis.  NULL is a no-op. */
void stream_free(struct stream *s);

/*
 * Publishes or checks the wiki's partition count (stored once with SET NX;
 * a different stored value is STATUS_CONFIG with a message naming both
 * values) and creates the consumer group on every partition stream when
 * missing.  Call once before producing or reading.  STATUS_TRANSIENT when
 * Redis is away.
 */
enum status stream_setup(struct stream *s);

/* The stream key of partition p ("freshet:{wiki:pN}") into buf. */
void stream_key(const struct stream *s, int p, char *buf, size_t len);
/* Returns page_id mod partitions. */
int stream_partition_of(const struct stream *s, int64_t page_id);
/* Compares two entry ids "<ms>-<seq>" numerically: <0, 0 or >0.  An id
 * that does not parse compares as "0-0". */
int stream_id_cmp(const char *a, const char *b);
/* The consumer name in use (never NULL). */
const char *stream_consumer(const struct stream *s);
int stream_partitions(const struct stream *s);

/*
 * Producer: XADDs json (len bytes, copied verbatim into field `event`) to the
 * partition of page_id.  The first call checks the published partition count
 * (as stream_setup() does) so that a producer configured with a different
 * count fails with STATUS_CONFIG instead of misrouting.  The new entry id
 * goes to id_out (STREAM_ID_MAX bytes) when not NULL.  STATUS_TRANSIENT when
 * Redis is away (nothing was added, or the caller cannot know: a retry may
 * add a duplicate, which the worker tolerates).
 */
enum status stream_produce(struct stream *s, int64_t page_id, const char *json,
                           size_t len, char *id_out);

/* Consumer: starts (owned true) or stops (false) reading partition p.  A
 * partition that is (re)assigned first re-reads this consumer's pending
 * entries.  Stopping forgets the in-flight bookkeeping of p; its unacked
 * entries stay pending (another owner claims them after claim_idle_ms). */
void stream_assign(struct stream *s, int p, bool owned);
bool stream_assigned(const struct stream *s, int p);

/*
 * Reads up to opts.batch entries from the assigned partitions, blocking up
 * to block_ms when there is nothing to read.  Order: pending entries of this
 * consumer first (after assignment, reconnect or nack backoff), then entries
 * of dead consumers idle for claim_idle_ms (checked at most every
 * claim_idle_ms/4), then new entries.  Malformed and over-delivered entries
 * are dead-lettered here and not returned.  Sets *out to a batch (possibly
 * n == 0; caller frees with stream_batch_free()) and returns STATUS_OK;
 * STATUS_TRANSIENT when Redis is away (retry after backoff: the handle
 * reconnects and re-reads its pending entries); STATUS_INVALID with no read
 * connection.  With no partition assigned, sleeps block_ms and returns an
 * empty batch.
 */
enum status stream_read(struct stream *s, struct stream_batch **out);

void stream_batch_free(struct stream_batch *b);

/* Acks every entry of b (one XACK per partition, pipelined).  Call only when
 * their effect is durable.  Entries of partitions no longer assigned are
 * acked too (the ack is idempotent in Redis). */
enum status stream_ack(struct stream *s, const struct stream_batch *b);
/* Acks n entries given by pointer (for callers that split batches). */
enum status stream_ack_entries(struct stream *s, const struct stream_entry *const *e,
                               size_t n);

/*
 * Reports that e failed with reason.  If this is its max_deliveries-th
 * failure (e->failures + 1 >= max_deliveries), or permanent is true, the
 * entry is dead-lettered (reason recorded) and acked; otherwise the failure
 * is recorded in Redis and the entry stays pending and is handed out again
 * (XCLAIM) after a backoff of full jitter under
 * min(retry_cap_ms, retry_base_ms * 2^(deliveries-1)).  *dead (may be NULL)
 * says which of the two happened.  Returns STATUS_OK, or STATUS_TRANSIENT
 * when Redis is away (nothing was recorded: call again).
 */
enum status stream_nack(struct stream *s, const struct stream_entry *e,
                        const char *reason, bool permanent, bool *dead);

/* Moves one raw entry to the dead-letter stream and acks it (one MULTI/EXEC).
 * deliveries and reason are recorded as given. */
enum status stream_dead_letter(struct stream *s, int p, const char *id,
                               const char *payload, size_t len, long deliveries,
                               const char *reason);

/* Counters since stream_new() (for metrics and tests). */
struct stream_stats {
	uint64_t delivered;   /* entries handed to the caller */
	uint64_t redelivered; /* of which re-read from this consumer's pending list */
	uint64_t claimed;     /* entries taken over from other consumers */
	uint64_t acked;       /* entries Redis confirmed acked (XACK replies) */
	uint64_t dead;        /* entries moved to the dead-letter stream */
	uint64_t reconnects;  /* times the read connection had to reconnect */
};
void stream_get_stats(struct stream *s, struct stream_stats *out);

/* The last error message of either thread (never NULL; a copy is safest:
 * the other thread may overwrite it). */
const char *stream_errmsg(const struct stream *s);

#endif
