/* SPDX-License-Identifier: MIT */
/*
 * stream-private.h: what the two halves of the stream module share.
 *
 * The consumer (stream.c) and the operator's functions (stream-ops.c) work
 * on the same struct stream: the operator's side needs the control
 * connection, the mutex that guards it, the wiki and the error message.  So
 * the struct is defined here, with the few helpers both files use; no other
 * file includes this header.  A partition's consumer bookkeeping (struct
 * part) stays private to stream.c.
 *
 * Lock rule (stream.c states the module's invariants): `rd` is touched only
 * by the reader thread, in stream_read(); `ctl`, the partitions'
 * bookkeeping and the counters only with mu held.
 */
#ifndef FRESHET_STREAM_PRIVATE_H
#define FRESHET_STREAM_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "redis.h"
#include "stream.h"

/* A stream entry id as two integers, for cheap comparisons. */
struct sid {
	uint64_t ms, seq;
};

struct part; /* one partition's consumer bookkeeping; defined in stream.c */

struct stream {
	struct redis *rd, *ctl;
	char *wiki;
	char *consumer;
	int partitions;
	int batch, block_ms, max_deliveries, max_interrupted, claim_idle_ms;
	size_t max_event_bytes;
	struct part *parts;
	uint64_t rd_generation;
	bool partitions_checked;
	pthread_mutex_t mu;
	struct backoff nack_backoff;
	struct stream_stats stats;
	char errmsg[512];
};

static inline void seterr(struct stream *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline void seterr(struct stream *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
}

/* Copies the redis handle's message into s (called under mu or by the
 * reader thread). */
static inline enum status redis_fail(struct stream *s, struct redis *r, enum status st,
                                     const char *what)
{
	seterr(s, "%s: %s", what, redis_errmsg(r));
	return st;
}

/* Parses a value read back from Redis as a decimal integer in 0..max:
 * digits only, no sign, no spaces, no trailing text.  Anything else
 * (a hand-set key, a corrupted value) is refused rather than read as 0. */
static inline bool parse_count(const char *s, long long max, long long *out)
{
	long long v = 0;
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (max - (*s - '0')) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

static inline bool parse_sid(const char *s, struct sid *out)
{
	char *end;
	out->ms = strtoull(s, &end, 10);
	if (*end != '-')
		return false;
	out->seq = strtoull(end + 1, &end, 10);
	return *end == '\0';
}

static inline int sid_cmp(struct sid a, struct sid b)
{
	if (a.ms != b.ms)
		return a.ms < b.ms ? -1 : 1;
	if (a.seq != b.seq)
		return a.seq < b.seq ? -1 : 1;
	return 0;
}

/* The key of the wiki's dead-letter stream into buf. */
static inline void dead_key(const struct stream *s, char *buf, size_t len)
{
	snprintf(buf, len, "freshet:{%s}:dead", s->wiki);
}

/* Returns the partition number of a stream key of this wiki, or -1. */
static inline int key_partition(const struct stream *s, const char *key)
{
	size_t wl = strlen(s->wiki);
	if (strncmp(key, "freshet:{", 9) != 0 || strncmp(key + 9, s->wiki, wl) != 0 ||
	    key[9 + wl] != ':' || key[10 + wl] != 'p')
		return -1;
	char *end;
	long p = strtol(key + 11 + wl, &end, 10);
	if (end == key + 11 + wl || strcmp(end, "}") != 0 || p < 0 || p >= s->partitions)
		return -1;
	return (int)p;
}

/* Finds key in an XINFO-style flat [k, v, k, v...] reply. */
static inline const redisReply *field(const redisReply *r, const char *key)
{
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, key) == 0)
			return r->element[i + 1];
	return NULL;
}

#endif
