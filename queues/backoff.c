/* SPDX-License-Identifier: MIT */
/*
 * backoff.c: capped exponential backoff with full jitter.
 *
 * Invariants: rng is never 0 (xorshift64 would stay at 0); the ceiling
 * doubles per attempt until it reaches cap_ms and never overflows (the
 * doubling stops once the cap is reached).
 */
#include "backoff.h"
#include "now.h"

#include <stdint.h>
#include <time.h>

void backoff_init(struct backoff *b, unsigned base_ms, unsigned cap_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->base_ms = base_ms ? base_ms : 1;
	b->cap_ms = cap_ms < b->base_ms ? b->base_ms : cap_ms;
	b->attempt = 0;
	b->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)b;
	if (b->rng == 0)
		b->rng = 0x9e3779b97f4a7c15ULL;
}

unsigned backoff_ceiling(const struct backoff *b)
{
	uint64_t c = b->base_ms;
	for (unsigned i = 0; i < b->attempt && c < b->cap_ms; i++)
		c *= 2;
	return c > b->cap_ms ? b->cap_ms : (unsigned)c;
}

unsigned backoff_next(struct backoff *b)
{
	unsigned ceil = backoff_ceiling(b);
	uint64_t x = b->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	b->rng = x;
	if (b->attempt < 64)
		b->attempt++;
	return (unsigned)(x % ((uint64_t)ceil + 1));
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

unsigned backoff_sleep(struct backoff *b)
{
	unsigned ms = backoff_next(b);
	sleep_ms(ms);
	return ms;
}
