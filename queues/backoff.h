/* SPDX-License-Identifier: MIT */
/*
 * backoff.h: exponential backoff with full jitter, capped.
 *
 * The n-th delay (n = 0, 1, ...) is uniform in [0, min(cap, base * 2^n)]
 * ("full jitter", as in AWS's architecture blog): retries of many workers
 * spread out instead of arriving together.  Used by the queue consumer, the
 * fetcher and the worker for every transient failure.
 *
 * Thread rules: a struct backoff belongs to one thread; it carries its own
 * random state, so no global state is touched.
 */
#ifndef FRESHET_BACKOFF_H
#define FRESHET_BACKOFF_H

#include <stdint.h>

struct backoff {
	unsigned base_ms;  /* first ceiling, >= 1 */
	unsigned cap_ms;   /* largest delay ever returned */
	unsigned attempt;  /* delays handed out since the last reset */
	uint64_t rng;      /* xorshift state, never 0 */
};

/* Initialises b with the given base and cap (base 0 is taken as 1, a cap
 * below base as base) and a seed drawn from the clock and address of b. */
void backoff_init(struct backoff *b, unsigned base_ms, unsigned cap_ms);
/* Returns the next delay in milliseconds and counts the attempt. */
unsigned backoff_next(struct backoff *b);
/* Returns the ceiling the next delay is drawn under (no side effect). */
unsigned backoff_ceiling(const struct backoff *b);
/* Forgets the attempts after a success. */
void backoff_reset(struct backoff *b);
/* Sleeps for backoff_next(b) milliseconds (restarting on EINTR) and returns
 * the delay slept. */
unsigned backoff_sleep(struct backoff *b);

#endif
