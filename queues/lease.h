/* SPDX-License-Identifier: MIT */
/*
 * lease.h: which worker writes which partition.
 *
 * Exactly one writer per shard: a worker writes partition N only while it
 * holds N's lease, the key freshet:{<wiki>:p<N>}:lease whose value is the
 * worker's owner token (SET NX PX ttl).  Taking a lease also INCRs the
 * fencing counter freshet:{<wiki>:p<N>}:fence (in the same Lua script) and
 * hands its value to the caller: the shard store records it at each commit
 * and refuses a commit with an older token, so a writer that lost its lease
 * while paused cannot overwrite its successor.  Renewal is a Lua script that
 * PEXPIREs the key only if it still holds our token; release is a Lua
 * compare-and-delete.  A lease whose renewal fails (taken over, expired, or
 * Redis unreachable until the local deadline passes) is reported lost at
 * once, and lease_valid() turns false before the key can expire in Redis
 * (local deadline = last successful renewal start + ttl - ttl/10).
 *
 * Splitting partitions between workers: every worker heartbeats into a
 * sorted set freshet:{<wiki>}:workers (member = owner token, score = expiry
 * time in ms, entries past their expiry are removed by whoever ticks) and
 * holds at most its fair share, ceil(partitions / live workers).  A worker
 * above its share releases its highest partitions so a newcomer can take
 * them; a worker below it takes free partitions, starting at an offset
 * derived from its token so that workers starting together do not all race
 * for partition 0.  When a worker dies, its heartbeat and its leases expire
 * after ttl and the survivors' share grows to cover its partitions.
 *
 * Holding a wiki: `reindex-page --rebuild` must write every partition while
 * it swaps generations, and a running worker keeps the shards it opened.  So
 * it takes the wiki's hold, freshet:{<wiki>}:hold (value = its owner token,
 * PX ttl, renewed like a lease): while another owner holds the wiki, every
 * worker's share is zero, so at its next tick it releases its partitions
 * (committing and acking first, through the callback) and takes none.  Once
 * the hold is gone (released, or expired with a crashed holder) the workers
 * take their partitions again and open whatever generation is current.
 *
 * Taking partitions over: a tool that must write partitions the workers
 * hold (`reindex-page --rebuild` swapping generations, `freshetctl compact`)
 * calls lease_take_over().  It holds the wiki, so that every running worker
 * hands its partitions over at its next tick, and takes each wanted
 * partition's lease, with a new fencing token, as it comes free.  While the
 * tool works it calls lease_keep() every third of the ttl; when it is done,
 * lease_hand_back() releases the leases and the hold, and the workers take
 * their partitions again at their next tick.
 *
 * With stream.h: on LEASE_ACQUIRED call stream_assign(s, p, true) (the
 * consumer then re-reads its own pending entries of p and claims entries the
 * previous owner left), and hand the token to the shard store; on
 * LEASE_LOST or LEASE_RELEASED stop writing p at once and call
 * stream_assign(s, p, false).  The callback runs before a voluntary release,
 * so the worker can commit and ack what it holds first.
 *
 * Thread rules: a struct lease is used by one thread (the one that calls
 * lease_tick()); its redis handle is borrowed and must not be used by other
 * threads meanwhile.  lease_valid() and lease_token() may be called from
 * other threads (they read atomics).
 */
#ifndef FRESHET_LEASE_H
#define FRESHET_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "redis.h"
#include "status.h"

struct lease;

enum lease_change {
	LEASE_ACQUIRED,  /* partition now ours; token is the new fencing token */
	LEASE_LOST,      /* renewal failed: stop writing the partition now */
	LEASE_RELEASED   /* we gave it up (over our share, or lease_release_all) */
};

/* Called by lease_tick() for each change, in the calling thread. */
typedef void (*lease_change_fn)(void *arg, int partition, enum lease_change what,
                                uint64_t token);

/*
 * Creates a lease manager for wiki's partitions 0..partitions-1.  owner is
 * a unique token of this worker (NULL: "<host>-<pid>-<random>"); ttl_ms is
 * the lease time (renew by calling lease_tick() every ttl_ms/3 or more
 * often).  r is borrowed.  Returns NULL for invalid arguments.
 */
struct lease *lease_new(struct redis *r, const char *wiki, int partitions,
                        const char *owner, int ttl_ms);

/* Releases nothing (call lease_release_all() first for a clean exit) and
 * frees l.  NULL is a no-op. */
void lease_free(struct lease *l);

/*
 * One round: heartbeat, renew every held lease (reporting LEASE_LOST for
 * those that failed), compute the fair share, release leases above it, and
 * try to take free partitions up to it.  fn may be NULL.  Returns STATUS_OK
 * or STATUS_TRANSIENT when Redis is away (held leases then stay valid until
 * their local deadline, after which the next tick reports them lost).
 */
enum status lease_tick(struct lease *l, lease_change_fn fn, void *arg);

/* Takes partition p if free (used by a single worker, or tests), without
 * the fair-share logic.  Returns STATUS_OK with the fencing token in
 * *token, STATUS_LOCKED when another owner holds it, STATUS_TRANSIENT. */
enum status lease_acquire(struct lease *l, int p, uint64_t *token);

/*
 * Raises the fencing token of held partition p above floor: when the lease
 * is still ours, sets the partition's fence counter to floor if it is below
 * it, INCRs it and makes the result p's token (in *token too).  For a token
 * that is not above the one the shard stores: Redis replication is
 * asynchronous, so a failover can lose the latest INCRs, and a new holding
 * would otherwise get a token some earlier holding already wrote with.
 * Returns STATUS_OK; STATUS_FENCED when the lease is no longer ours (p is
 * then no longer held); STATUS_TRANSIENT when Redis is away.
 */
enum status lease_raise(struct lease *l, int p, uint64_t floor, uint64_t *token);

/* Renews partition p now.  STATUS_OK; STATUS_FENCED when the lease was lost
 * (taken over or expired: the partition is then no longer held);
 * STATUS_TRANSIENT when Redis is away. */
enum status lease_renew(struct lease *l, int p);

/* Gives partition p up (compare-and-delete).  No-op if not held. */
enum status lease_release(struct lease *l, int p);

/* Takes or renews the wiki's hold (see above) for ttl.  STATUS_OK;
 * STATUS_LOCKED when another owner holds it; STATUS_TRANSIENT. */
enum status lease_hold(struct lease *l);
/* Gives the hold up (compare-and-delete); no-op if not ours. */
enum status lease_unhold(struct lease *l);

/* Releases every held lease and removes the heartbeat (clean shutdown),
 * reporting LEASE_RELEASED through fn. */
enum status lease_release_all(struct lease *l, lease_change_fn fn, void *arg);

/* Called by lease_take_over() after each round that left some wanted
 * partitions with another owner: waiting[0..n_waiting), in the order they
 * were wanted, borrowed for the call.  Returns false to stop waiting (the
 * tool was interrupted). */
typedef bool (*lease_wait_fn)(void *arg, const int *waiting, int n_waiting);

/* What lease_take_over() takes and how long it waits. */
struct lease_takeover {
	const int *partitions;  /* the partitions wanted; NULL: every one */
	int n_partitions;       /* their number (ignored when partitions is NULL) */
	bool hold_first;        /* hold the wiki even when every partition is free:
	                         * keeps a second holder out for the whole run */
	int wait_ms;            /* give up after this long; 0: no limit */
	int poll_ms;            /* pause between rounds; 0: 100 */
	lease_wait_fn fn;       /* may be NULL */
	void *arg;              /* passed to fn */
};

/*
 * Takes the wanted partitions over from the running workers.  A round tries
 * lease_acquire() on each wanted partition not held yet; when some other
 * owner keeps one, the wiki is held (lease_hold(), at once with hold_first)
 * and the rounds go on every poll_ms, renewing the hold and the leases
 * taken so far (lease_keep()) every third of the ttl, until every wanted
 * partition is held, wait_ms has passed, or fn returns false.  o is
 * borrowed for the call.
 *
 * Returns STATUS_OK when every wanted partition is held (lease_token() gives
 * each one's fencing token, newer than any earlier holding's); the hold, if
 * taken, is kept (lease_holding()).  STATUS_LOCKED when another owner holds
 * the wiki (lease_holding() is then false), or when wanted partitions were
 * still held by others as wait_ms passed or fn stopped the wait (the hold
 * is then ours).  STATUS_FENCED or STATUS_TRANSIENT when a lease, the hold
 * or Redis failed; STATUS_INVALID for a partition out of range.  On failure
 * lease_errmsg() says which partition or the hold, and what happened.
 * Whatever it returns, lease_hand_back() gives up what it took.
 */
enum status lease_take_over(struct lease *l, const struct lease_takeover *o);

/* Renews the hold (when ours) and every held lease, for a tool between
 * lease_take_over() and lease_hand_back(); call it every third of the ttl.
 * Returns STATUS_OK, or the first failure with lease_errmsg() naming the
 * hold or the partition lost (the rest is still renewed). */
enum status lease_keep(struct lease *l);

/* Releases every held lease and the hold, if ours (compare-and-delete: what
 * another owner took is left alone).  Returns the first failure; what is not
 * released expires after the ttl. */
enum status lease_hand_back(struct lease *l);

/* True while this owner holds the wiki: its last lease_hold() succeeded and
 * it has not let go since. */
bool lease_holding(const struct lease *l);

/* True while p is held and its local deadline has not passed. */
bool lease_valid(const struct lease *l, int p);
/* The fencing token of the current holding of p (0 if not held). */
uint64_t lease_token(const struct lease *l, int p);
/* Number of partitions held. */
int lease_count(const struct lease *l);
/* The owner token (never NULL). */
const char *lease_owner(const struct lease *l);
/* Last error message (never NULL). */
const char *lease_errmsg(const struct lease *l);

/* ---------------------------------------------------------- plain locks */

/* A lock on any key with the lease's rules, for work that one process at a
 * time may do (the consistency loop, saneitize.h): the key holds owner's
 * token for ttl_ms (SET NX PX); taking it again while ours renews it.
 * Returns STATUS_OK, STATUS_LOCKED when another owner holds it,
 * STATUS_TRANSIENT (or STATUS_INVALID) with redis_errmsg(r) when Redis
 * failed.  r, key and owner are borrowed for the call. */
enum status lease_lock(struct redis *r, const char *key, const char *owner,
		       int ttl_ms);
/* Drops the lock if owner holds it (compare-and-delete). */
enum status lease_unlock(struct redis *r, const char *key, const char *owner);

#endif
