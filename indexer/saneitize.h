/* SPDX-License-Identifier: MIT */
/*
 * saneitize.h: the consistency loop, which finds what the index got wrong
 * because events were lost (a Redis failover, a lost spool, an operator's
 * mistake) and repairs it through the ordinary pipeline.
 *
 * A pass ("cycle") over a wiki has two phases, walked in steps of
 * saneitize_batch pages:
 *
 *   pages      every page of each indexed namespace, as the Action API
 *              lists it (list=allpages without redirects, one request per
 *              step), against its document in the live generation:
 *              no document        -> an edit event   (fix "missing")
 *              an older revision  -> an edit event   (fix "stale")
 *              another title or
 *              namespace          -> a move event    (fix "moved")
 *   documents  every live document of every shard (its Q term, in term
 *              order), against the API (prop=info by page id, one request
 *              per step):
 *              no such page       -> a delete event  (fix "ghost")
 *              now a redirect, or
 *              outside the indexed
 *              namespaces         -> a move event    (fix "moved")
 *
 * Repairs are events on the page's partition stream, as the extension
 * would have sent them (stream_produce()): the worker that owns the
 * partition fetches the page and writes or deletes its document, under
 * its lease and with its rev guard.  The loop itself never writes a shard.
 * An edit event names the wiki's latest revision, so a page the index
 * already holds at that revision (fixed meanwhile) costs no fetch.
 *
 * State: the cursor and the counts live in the Redis hash
 * freshet:{<wiki>}:saneitize, written after every step, so a pass goes on
 * where it stopped after a restart (a step interrupted half-way is done
 * again; its repeated events are harmless).  Fields: cycle, started_ms,
 * done, restart, phase, ns, cont, shard, after, checked, total,
 * fix_<kind> (this cycle), last_cycle, last_started_ms, last_end_ms,
 * last_checked, last_fix_<kind> (the last finished pass).
 *
 * One worker at a time: a step runs under the lock
 * freshet:{<wiki>}:saneitize:lock (SET NX PX with the owner's token; a Lua
 * compare-and-pexpire renews it, a compare-and-delete drops it).  Workers
 * take it for one step and drop it; saneitize_pass() keeps it for the
 * whole pass.
 *
 * Pace: a worker spreads a pass over saneitize_days (or
 * saneitize_interval_s): the next step is due when the share of the pass's
 * pages checked catches up with the share of the period gone, estimating
 * the pass at twice the live documents when it starts.  A pass that ends
 * early waits for its period to end before the next begins.  Steps never
 * come closer together than one API request per 1/rate seconds of the
 * wiki's rate (none when rate is 0).
 *
 * Errors: functions return enum status with the message in
 * saneitize_errmsg(); STATUS_TRANSIENT (Redis or the API away) means try
 * again later.
 *
 * Threads: a struct saneitize is used by one thread; its redis handle is
 * borrowed and must not be used by other threads meanwhile.
 */
#ifndef FRESHET_SANEITIZE_H
#define FRESHET_SANEITIZE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "metrics.h"
#include "redis.h"
#include "status.h"

/* What a repair fixed. */
enum saneitize_fix {
	SANEITIZE_MISSING, /* a page without a document */
	SANEITIZE_STALE,   /* a document of an older revision */
	SANEITIZE_MOVED,   /* a document under another title or namespace, or
	                    * of a page no longer indexed (redirect, namespace) */
	SANEITIZE_GHOST,   /* a document of a page that does not exist */
	SANEITIZE_FIX__COUNT
};

/* "missing", "stale", "moved", "ghost"; never NULL. */
const char *saneitize_fix_str(enum saneitize_fix k);

/* The hash, decoded (saneitize_load()).  Strings are owned by it. */
struct saneitize_state {
	int64_t cycle;            /* the current pass, 1-based; 0 before the first */
	int64_t started_ms;       /* its start, unix milliseconds */
	bool done;                /* it ended; the next waits for its period */
	bool restart;             /* a new pass begins at the next step */
	int phase;                /* 0 pages, 1 documents */
	int ns;                   /* index into the wiki's namespaces */
	char *cont;               /* the allpages continuation ("" at the start) */
	int shard;                /* the shard being walked */
	char *after;              /* the last Q term checked in it ("") */
	uint64_t checked;         /* pages and documents checked this pass */
	uint64_t total;           /* the pass's estimated checks */
	uint64_t fixes[SANEITIZE_FIX__COUNT];
	int64_t last_cycle;       /* the last finished pass (0: none yet) */
	int64_t last_started_ms, last_end_ms;
	uint64_t last_checked;
	uint64_t last_fixes[SANEITIZE_FIX__COUNT];
};

/* Reads wiki's hash into *out (zeroed first; free with
 * saneitize_state_free()).  An absent hash gives a zero state.  Returns
 * STATUS_OK or STATUS_TRANSIENT with redis_errmsg(r). */
enum status saneitize_load(struct redis *r, const char *wiki,
			   struct saneitize_state *out);
void saneitize_state_free(struct saneitize_state *s);

/* The pass's progress in percent (0 .. 100; 100 when done). */
double saneitize_progress(const struct saneitize_state *s);

/* Asks for a new pass at the next step (the field restart), leaving the
 * last finished pass's figures alone.  STATUS_OK or STATUS_TRANSIENT. */
enum status saneitize_reset(struct redis *r, const char *wiki);

/* The period of a pass of w in milliseconds; 0 when the loop is off. */
int64_t saneitize_period_ms(const struct conf_wiki *w);

/* Called for each repair enqueued: kind, the page, its namespace and title
 * (as the wiki or the document names it, borrowed for the call). */
typedef void (*saneitize_fix_fn)(void *arg, enum saneitize_fix kind,
				 int64_t page_id, int ns, const char *title);

struct saneitize;

/* A loop for wiki w of cfg (both borrowed, outliving it) on Redis r
 * (borrowed).  owner names the lock's holder (copied; NULL:
 * "<host>-<pid>-<random>").  Never NULL. */
struct saneitize *saneitize_new(const struct conf *cfg, const struct conf_wiki *w,
				struct redis *r, const char *owner);
/* Drops the lock if held and frees sz.  NULL is a no-op. */
void saneitize_free(struct saneitize *sz);
/* The message of the last failure ("" if none), owned by sz. */
const char *saneitize_errmsg(const struct saneitize *sz);

/* Reports each repair to fn (NULL: none). */
void saneitize_on_fix(struct saneitize *sz, saneitize_fix_fn fn, void *arg);
/* Counts checks and repairs in m (borrowed, outliving sz):
 * freshet_saneitize_pages_checked_total{wiki} and
 * freshet_saneitize_fixes_total{wiki,kind}.  Declares them. */
void saneitize_set_metrics(struct saneitize *sz, struct metrics *m);

/* Takes the lock for ttl_ms, or renews it when held.  STATUS_OK,
 * STATUS_LOCKED (another owner has it), STATUS_TRANSIENT. */
enum status saneitize_lock(struct saneitize *sz, int ttl_ms);
/* Drops the lock if it is still ours. */
void saneitize_unlock(struct saneitize *sz);

/*
 * One step, with the lock held: loads the state, begins a new pass when
 * there is none, one was asked for (restart) or the last one's period is
 * over, checks one batch, enqueues its repairs and saves the state.  With
 * paced, a step that is not due yet does nothing.  Sets *did (may be NULL)
 * to whether a batch was checked and *pass_done (may be NULL) to whether
 * this step ended the pass.  Returns STATUS_OK; STATUS_NOT_FOUND when the
 * wiki has no index yet (nothing to compare: nothing done); STATUS_TRANSIENT
 * when Redis or the API is away; another status when the index cannot be
 * read or the stream refuses (STATUS_CONFIG: a partition count mismatch).
 */
enum status saneitize_step(struct saneitize *sz, bool paced, bool *did,
			   bool *pass_done);

/*
 * A whole pass now (freshetctl saneitize --now): takes the lock (waiting
 * up to wait_ms for a worker's step to end), asks for a new pass, and steps
 * until it ends, at most one API request per 1/rate seconds, keeping the
 * lock.  stop (may be NULL) is read between steps.  The pass's figures are
 * then in the hash (saneitize_load()).  Returns STATUS_OK, STATUS_LOCKED,
 * STATUS_TRANSIENT ("interrupted") when stop was set, or a step's failure;
 * a pass that did not end goes on at the worker's next step.
 */
enum status saneitize_pass(struct saneitize *sz, int wait_ms,
			   const volatile atomic_bool *stop);

/*
 * The worker's loop: until *stop, runs each due step under the lock
 * (held for the step only), sleeping in between; failures are logged and
 * retried after a pause.  Returns when *stop is set.
 */
void saneitize_run(struct saneitize *sz, const volatile atomic_bool *stop);

#endif
