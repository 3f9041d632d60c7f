/* SPDX-License-Identifier: MIT */
/*
 * lease.c: partition leases with fencing tokens (see lease.h).
 *
 * Invariants: held[p] is true only between a successful acquisition and the
 * moment a renewal fails, the local deadline passes, or we release it; the
 * local deadline is computed from the time the last successful renewal was
 * *sent*, minus a tenth of the ttl, so it passes before the key can expire
 * in Redis even if the reply was slow.  Tokens come from INCR in the same
 * script that sets the lease, so every holding of a partition has a token
 * larger than every earlier holding's.  Times for the worker registry come
 * from Redis (TIME inside the script), so hosts' clocks need not agree.
 * holding is true only between a successful lease_hold() and the moment the
 * hold is refused to us or we let it go.
 */
#include "lease.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "buf.h"
#include "log.h"
#include "now.h"
#include "xmalloc.h"

/* Takes (or renews, if ours) KEYS[1]; returns 0 when another owner has
 * it, else the INCRed fencing counter KEYS[2] (a lease) or 1 (the hold,
 * which has no fence). */
static const char ACQUIRE_LUA[] =
	"local cur = redis.call('GET', KEYS[1])\n"
	"if cur == false then\n"
	"  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
	"elseif cur == ARGV[1] then\n"
	"  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"else\n"
	"  return 0\n"
	"end\n"
	"if #KEYS < 2 then return 1 end\n"
	"return redis.call('INCR', KEYS[2])\n";

/* Raises KEYS[2] to at least ARGV[3] and INCRs it, if KEYS[1] is ours. */
static const char RAISE_LUA[] =
	"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
	"local cur = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
	"if cur < tonumber(ARGV[2]) then redis.call('SET', KEYS[2], ARGV[2]) end\n"
	"return redis.call('INCR', KEYS[2])\n";

static const char RENEW_LUA[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
	"end\n"
	"return 0\n";

static const char RELEASE_LUA[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

/* Heartbeat: drop expired workers, refresh ours, return the live count and
 * the owner of the wiki's hold (false when there is none). */
static const char HEARTBEAT_LUA[] =
	"local t = redis.call('TIME')\n"
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
	"if ARGV[2] ~= '0' then\n"
	"  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
	"else\n"
	"  redis.call('ZREM', KEYS[1], ARGV[1])\n"
	"end\n"
	"return {redis.call('ZCARD', KEYS[1]), redis.call('GET', KEYS[2])}\n";

struct lease {
	struct redis *r;
	char *wiki;
	char *owner;
	int partitions;
	int ttl_ms;
	bool holding;                /* the wiki's hold is ours */
	unsigned offset;             /* where this worker starts looking */
	bool *held;                  /* only the ticking thread */
	_Atomic int64_t *deadline;   /* ms, monotonic; 0 when not held */
	_Atomic uint64_t *token;
	char errmsg[512];
};

static void seterr(struct lease *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct lease *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->errmsg, sizeof l->errmsg, fmt, ap);
	va_end(ap);
}

struct lease *lease_new(struct redis *r, const char *wiki, int partitions, const char *owner,
                        int ttl_ms)
{
	if (!r || !wiki || !*wiki || strpbrk(wiki, "{} \t\n") || partitions < 1 ||
	    partitions > 65536 || ttl_ms < 10)
		return NULL;
	struct lease *l = xcalloc(1, sizeof *l);
	l->r = r;
	l->wiki = xstrdup(wiki);
	struct backoff b;
	backoff_init(&b, 1, 0xffffff);
	b.attempt = 63;
	if (owner && *owner) {
		l->owner = xstrdup(owner);
	} else {
		char host[128] = "host";
		gethostname(host, sizeof host - 1);
		host[sizeof host - 1] = '\0';
		l->owner = xasprintf("%s-%ld-%06x", host, (long)getpid(), backoff_next(&b));
	}
	/* FNV-1a of the owner picks the starting partition. */
	uint32_t h = 2166136261u;
	for (const char *p = l->owner; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	l->offset = h % (unsigned)partitions;
	l->partitions = partitions;
	l->ttl_ms = ttl_ms;
	l->held = xcalloc((size_t)partitions, sizeof *l->held);
	l->deadline = xcalloc((size_t)partitions, sizeof *l->deadline);
	l->token = xcalloc((size_t)partitions, sizeof *l->token);
	return l;
}

void lease_free(struct lease *l)
{
	if (!l)
		return;
	free(l->held);
	free((void *)l->deadline);
	free((void *)l->token);
	free(l->wiki);
	free(l->owner);
	free(l);
}

const char *lease_owner(const struct lease *l)
{
	return l->owner;
}

const char *lease_errmsg(const struct lease *l)
{
	return l->errmsg;
}

static void keys(const struct lease *l, int p, char *lk, char *fk, size_t len)
{
	snprintf(lk, len, "freshet:{%s:p%d}:lease", l->wiki, p);
	snprintf(fk, len, "freshet:{%s:p%d}:fence", l->wiki, p);
}

static void drop(struct lease *l, int p)
{
	l->held[p] = false;
	atomic_store(&l->deadline[p], 0);
	atomic_store(&l->token[p], 0);
}

enum status lease_acquire(struct lease *l, int p, uint64_t *token)
{
	if (p < 0 || p >= l->partitions)
		return STATUS_INVALID;
	char lk[256], fk[256];
	keys(l, p, lk, fk, sizeof lk);
	int64_t sent = now_ms();
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 2 %s %s %s %d", ACQUIRE_LUA, lk, fk,
	                                l->owner, l->ttl_ms);
	if (!rep) {
		seterr(l, "acquire %s: %s", lk, redis_errmsg(l->r));
		return st;
	}
	long long t = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	if (t <= 0) {
		seterr(l, "%s is held by another worker", lk);
		return STATUS_LOCKED;
	}
	l->held[p] = true;
	atomic_store(&l->token[p], (uint64_t)t);
	atomic_store(&l->deadline[p], sent + l->ttl_ms - l->ttl_ms / 10);
	if (token)
		*token = (uint64_t)t;
	return STATUS_OK;
}

enum status lease_raise(struct lease *l, int p, uint64_t floor, uint64_t *token)
{
	if (p < 0 || p >= l->partitions || !l->held[p])
		return STATUS_FENCED;
	char lk[256], fk[256];
	keys(l, p, lk, fk, sizeof lk);
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 2 %s %s %s %llu", RAISE_LUA, lk, fk,
	                                l->owner, (unsigned long long)floor);
	if (!rep) {
		seterr(l, "raise %s: %s", fk, redis_errmsg(l->r));
		return st;
	}
	long long t = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	if (t <= 0) {
		seterr(l, "%s is no longer ours", lk);
		drop(l, p);
		return STATUS_FENCED;
	}
	atomic_store(&l->token[p], (uint64_t)t);
	if (token)
		*token = (uint64_t)t;
	return STATUS_OK;
}

enum status lease_renew(struct lease *l, int p)
{
	if (p < 0 || p >= l->partitions || !l->held[p])
		return STATUS_FENCED;
	char lk[256], fk[256];
	keys(l, p, lk, fk, sizeof lk);
	int64_t sent = now_ms();
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 1 %s %s %d", RENEW_LUA, lk, l->owner,
	                                l->ttl_ms);
	if (!rep) {
		seterr(l, "renew %s: %s", lk, redis_errmsg(l->r));
		if (now_ms() >= atomic_load(&l->deadline[p])) {
			drop(l, p);
			return STATUS_FENCED;
		}
		return st;
	}
	long long ok = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	if (!ok) {
		seterr(l, "lease %s lost: taken over or expired", lk);
		drop(l, p);
		return STATUS_FENCED;
	}
	atomic_store(&l->deadline[p], sent + l->ttl_ms - l->ttl_ms / 10);
	return STATUS_OK;
}

enum status lease_release(struct lease *l, int p)
{
	if (p < 0 || p >= l->partitions || !l->held[p])
		return STATUS_OK;
	char lk[256], fk[256];
	keys(l, p, lk, fk, sizeof lk);
	drop(l, p);
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 1 %s %s", RELEASE_LUA, lk, l->owner);
	if (!rep) {
		/* It expires on its own after ttl. */
		seterr(l, "release %s: %s", lk, redis_errmsg(l->r));
		return st;
	}
	freeReplyObject(rep);
	return STATUS_OK;
}

/* *held_off: another owner holds the wiki (lease_hold()). */
static enum status heartbeat(struct lease *l, int ttl, long long *live, bool *held_off)
{
	enum status st;
	redisReply *rep = redis_command(l->r, &st,
	                                "EVAL %s 2 freshet:{%s}:workers freshet:{%s}:hold %s %d",
	                                HEARTBEAT_LUA, l->wiki, l->wiki, l->owner, ttl);
	if (!rep) {
		seterr(l, "heartbeat: %s", redis_errmsg(l->r));
		return st;
	}
	*live = 1;
	*held_off = false;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
	    rep->element[0]->type == REDIS_REPLY_INTEGER)
		*live = rep->element[0]->integer;
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2 &&
	    rep->element[1]->type == REDIS_REPLY_STRING)
		*held_off = strcmp(rep->element[1]->str, l->owner) != 0;
	freeReplyObject(rep);
	return STATUS_OK;
}

enum status lease_hold(struct lease *l)
{
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 1 freshet:{%s}:hold %s %d",
	                                ACQUIRE_LUA, l->wiki, l->owner, l->ttl_ms);
	if (!rep) {
		seterr(l, "hold freshet:{%s}:hold: %s", l->wiki, redis_errmsg(l->r));
		return st;
	}
	long long ok = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	if (!ok) {
		seterr(l, "freshet:{%s}:hold is held by another owner (a rebuild or compaction)",
		       l->wiki);
		l->holding = false;
		return STATUS_LOCKED;
	}
	l->holding = true;
	return STATUS_OK;
}

enum status lease_unhold(struct lease *l)
{
	l->holding = false;
	enum status st;
	redisReply *rep = redis_command(l->r, &st, "EVAL %s 1 freshet:{%s}:hold %s",
	                                RELEASE_LUA, l->wiki, l->owner);
	if (!rep) {
		/* It expires on its own after ttl. */
		seterr(l, "unhold freshet:{%s}:hold: %s", l->wiki, redis_errmsg(l->r));
		return st;
	}
	freeReplyObject(rep);
	return STATUS_OK;
}

enum status lease_tick(struct lease *l, lease_change_fn fn, void *arg)
{
	enum status result = STATUS_OK;
	/* Renew first: losing a lease must be noticed even if Redis is slow. */
	for (int p = 0; p < l->partitions; p++) {
		if (!l->held[p])
			continue;
		uint64_t tok = atomic_load(&l->token[p]);
		enum status st = lease_renew(l, p);
		if (st == STATUS_FENCED) {
			if (fn)
				fn(arg, p, LEASE_LOST, tok);
		} else if (st != STATUS_OK) {
			result = st;
		}
	}
	if (result != STATUS_OK)
		return result;
	long long live = 1;
	bool held_off = false;
	enum status st = heartbeat(l, l->ttl_ms, &live, &held_off);
	if (st != STATUS_OK)
		return st;
	if (live < 1)
		live = 1;
	/* While another owner holds the wiki (a rebuild swapping generations),
	 * our share is nothing: hand every partition over. */
	int share = held_off ? 0 : (int)((l->partitions + live - 1) / live);
	int held = lease_count(l);
	/* Above our share (a worker joined): give up the highest partitions. */
	for (int p = l->partitions - 1; p >= 0 && held > share; p--) {
		if (!l->held[p])
			continue;
		if (fn)
			fn(arg, p, LEASE_RELEASED, atomic_load(&l->token[p]));
		lease_release(l, p);
		held--;
	}
	for (int i = 0; i < l->partitions && held < share; i++) {
		int p = (int)((l->offset + (unsigned)i) % (unsigned)l->partitions);
		if (l->held[p])
			continue;
		uint64_t tok;
		st = lease_acquire(l, p, &tok);
		if (st == STATUS_OK) {
			held++;
			if (fn)
				fn(arg, p, LEASE_ACQUIRED, tok);
		} else if (st != STATUS_LOCKED) {
			return st;
		}
	}
	return STATUS_OK;
}

enum status lease_release_all(struct lease *l, lease_change_fn fn, void *arg)
{
	enum status result = STATUS_OK;
	for (int p = 0; p < l->partitions; p++) {
		if (!l->held[p])
			continue;
		if (fn)
			fn(arg, p, LEASE_RELEASED, atomic_load(&l->token[p]));
		enum status st = lease_release(l, p);
		if (st != STATUS_OK)
			result = st;
	}
	long long live;
	bool held_off;
	enum status st = heartbeat(l, 0, &live, &held_off);
	return result != STATUS_OK ? result : st;
}

bool lease_valid(const struct lease *l, int p)
{
	if (p < 0 || p >= l->partitions)
		return false;
	int64_t d = atomic_load(&l->deadline[p]);
	return d != 0 && now_ms() < d;
}

uint64_t lease_token(const struct lease *l, int p)
{
	if (p < 0 || p >= l->partitions)
		return 0;
	return atomic_load(&l->token[p]);
}

int lease_count(const struct lease *l)
{
	int n = 0;
	for (int p = 0; p < l->partitions; p++)
		n += l->held[p];
	return n;
}

bool lease_holding(const struct lease *l)
{
	return l->holding;
}

/* ------------------------------------------------------------ take-over */

enum status lease_keep(struct lease *l)
{
	enum status first = STATUS_OK;
	int lost = -1;                   /* the first failure's partition; -1: the hold */
	char why[sizeof l->errmsg] = "";
	if (l->holding) {
		first = lease_hold(l);
		if (first != STATUS_OK)
			memcpy(why, l->errmsg, sizeof why);
	}
	for (int p = 0; p < l->partitions; p++) {
		if (!l->held[p])
			continue;
		enum status st = lease_renew(l, p);
		if (st != STATUS_OK && first == STATUS_OK) {
			memcpy(why, l->errmsg, sizeof why);
			lost = p;
			first = st;
		}
	}
	if (first != STATUS_OK && lost < 0)
		seterr(l, "lost the hold of %s: %s", l->wiki, why);
	else if (first != STATUS_OK)
		seterr(l, "lost the lease of partition %d: %s", lost, why);
	return first;
}

enum status lease_hand_back(struct lease *l)
{
	enum status first = STATUS_OK;
	for (int p = 0; p < l->partitions; p++) {
		enum status st = lease_release(l, p);
		if (st != STATUS_OK && first == STATUS_OK)
			first = st;
	}
	if (l->holding) {
		enum status st = lease_unhold(l);
		if (st != STATUS_OK && first == STATUS_OK)
			first = st;
	}
	return first;
}

/* Formats the partitions in waiting[0..n) as " 1 3 7". */
static void list_partitions(struct buf *b, const int *waiting, int n)
{
	for (int i = 0; i < n; i++)
		buf_addf(b, " %d", waiting[i]);
}

enum status lease_take_over(struct lease *l, const struct lease_takeover *o)
{
	int n = o->partitions ? o->n_partitions : l->partitions;
	for (int i = 0; o->partitions && i < n; i++)
		if (o->partitions[i] < 0 || o->partitions[i] >= l->partitions) {
			seterr(l, "no partition %d: %s has %d", o->partitions[i], l->wiki,
			       l->partitions);
			return STATUS_INVALID;
		}
	int poll_ms = o->poll_ms > 0 ? o->poll_ms : 100;
	int64_t start = now_ms(), last_keep = start;
	enum status st;
	if (o->hold_first && (st = lease_hold(l)) != STATUS_OK)
		return st;
	int *waiting = xcalloc(n > 0 ? (size_t)n : 1, sizeof *waiting);
	for (;;) {
		int n_waiting = 0;
		for (int i = 0; i < n; i++) {
			int p = o->partitions ? o->partitions[i] : i;
			if (l->held[p])
				continue;
			st = lease_acquire(l, p, NULL);
			if (st == STATUS_LOCKED) {
				waiting[n_waiting++] = p;
			} else if (st != STATUS_OK) {
				char why[sizeof l->errmsg];
				memcpy(why, l->errmsg, sizeof why);
				seterr(l, "lease of partition %d: %s", p, why);
				goto out;
			}
		}
		if (!n_waiting) {
			st = STATUS_OK;
			goto out;
		}
		/* Someone else writes a wanted partition: hold the wiki, so
		 * that the workers hand their partitions over at their next
		 * tick (lease_tick() computes a share of zero). */
		if (!l->holding && (st = lease_hold(l)) != STATUS_OK)
			goto out;
		bool go_on = !o->fn || o->fn(o->arg, waiting, n_waiting);
		int64_t t = now_ms();
		if (!go_on || (o->wait_ms > 0 && t - start >= o->wait_ms)) {
			struct buf b = BUF_INIT;
			list_partitions(&b, waiting, n_waiting);
			if (go_on)
				seterr(l, "partition(s)%s of %s not handed over within %d ms",
				       b.data, l->wiki, o->wait_ms);
			else
				seterr(l, "stopped waiting for partition(s)%s of %s", b.data,
				       l->wiki);
			buf_release(&b);
			st = STATUS_LOCKED;
			goto out;
		}
		if (t - last_keep >= l->ttl_ms / 3) {
			if ((st = lease_keep(l)) != STATUS_OK)
				goto out;
			last_keep = t;
		}
		struct timespec pause = { poll_ms / 1000, (long)(poll_ms % 1000) * 1000000L };
		nanosleep(&pause, NULL);
	}
out:
	free(waiting);
	return st;
}

/* ---------------------------------------------------------- plain locks */

enum status lease_lock(struct redis *r, const char *key, const char *owner,
		       int ttl_ms)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "EVAL %s 1 %s %s %d", ACQUIRE_LUA, key,
					owner, ttl_ms);
	if (!rep)
		return st;
	long long t = rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	freeReplyObject(rep);
	return t > 0 ? STATUS_OK : STATUS_LOCKED;
}

enum status lease_unlock(struct redis *r, const char *key, const char *owner)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "EVAL %s 1 %s %s", RELEASE_LUA, key, owner);
	if (!rep)
		return st;
	freeReplyObject(rep);
	return STATUS_OK;
}
