/* SPDX-License-Identifier: MIT */
/*
 * test-lease.c: partition leases, fencing tokens and the split of
 * partitions between workers, against a real redis-server.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lease.h"
#include "now.h"
#include "redis.h"
#include "testsupport.h"

static struct test_redis *R;

static void start_redis(void)
{
	R = test_redis_start();
}

static void stop_redis(void)
{
	test_redis_stop(R);
	R = NULL;
}

TestSuite(lease, .init = start_redis, .fini = stop_redis, .timeout = 60);

static struct redis *conn(void)
{
	struct redis_opts o = { .url = R->url, .read_timeout_ms = 2000 };
	char err[256];
	struct redis *r = redis_new(&o, err, sizeof err);
	cr_assert_not_null(r, "%s", err);
	return r;
}

/* Counts the partitions whose lease key holds owner. */
static int owned_by(struct redis *r, const char *owner, int partitions)
{
	int n = 0;
	for (int p = 0; p < partitions; p++) {
		enum status st;
		redisReply *rep = redis_command(r, &st, "GET freshet:{w:p%d}:lease", p);
		cr_assert_not_null(rep, "%s", redis_errmsg(r));
		if (rep->type == REDIS_REPLY_STRING && strcmp(rep->str, owner) == 0)
			n++;
		freeReplyObject(rep);
	}
	return n;
}

/* A worker process: ticks every ttl/5 until killed. */
static pid_t spawn_worker(const char *owner, int ttl)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct redis_opts o = { .url = R->url, .read_timeout_ms = 2000 };
		struct redis *r = redis_new(&o, NULL, 0);
		struct lease *l = r ? lease_new(r, "w", 8, owner, ttl) : NULL;
		if (!l)
			_exit(2);
		for (;;) {
			lease_tick(l, NULL, NULL);
			usleep((useconds_t)ttl * 1000 / 5);
		}
	}
	return pid;
}

Test(lease, two_workers_split_and_survivor_takes_over)
{
	const int ttl = 500;
	struct redis *r = conn();
	pid_t a = spawn_worker("worker-a", ttl);
	pid_t b = spawn_worker("worker-b", ttl);
	int na = 0, nb = 0;
	int64_t t0 = now_ms();
	while (now_ms() - t0 < 10000) {
		na = owned_by(r, "worker-a", 8);
		nb = owned_by(r, "worker-b", 8);
		if (na == 4 && nb == 4)
			break;
		usleep(50 * 1000);
	}
	cr_expect_eq(na, 4, "worker a owns %d", na);
	cr_expect_eq(nb, 4, "worker b owns %d", nb);

	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	int64_t killed = now_ms();
	while (now_ms() - killed < 10000 && owned_by(r, "worker-b", 8) < 8)
		usleep(50 * 1000);
	int64_t took = now_ms() - killed;
	nb = owned_by(r, "worker-b", 8);
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
	cr_expect_eq(nb, 8, "the survivor owns %d of 8", nb);
	cr_expect_lt(took, 4 * ttl, "takeover took %lld ms", (long long)took);
	redis_free(r);
}

struct changes {
	int lost[8], acquired[8], released[8];
	uint64_t last_token[8];
};

static void record(void *arg, int p, enum lease_change what, uint64_t token)
{
	struct changes *c = arg;
	if (what == LEASE_LOST)
		c->lost[p]++;
	else if (what == LEASE_ACQUIRED)
		c->acquired[p]++;
	else
		c->released[p]++;
	c->last_token[p] = token;
}

Test(lease, takeover_reported_lost_and_tokens_increase)
{
	struct redis *r1 = conn(), *r2 = conn();
	struct lease *l1 = lease_new(r1, "w", 8, "one", 10000);
	struct lease *l2 = lease_new(r2, "w", 8, "two", 10000);
	cr_assert(l1 && l2);
	uint64_t t1 = 0, t2 = 0, t3 = 0;
	cr_assert_eq(lease_acquire(l1, 3, &t1), STATUS_OK, "%s", lease_errmsg(l1));
	cr_expect(lease_valid(l1, 3));
	cr_expect_eq(lease_token(l1, 3), t1);
	cr_expect_eq(lease_acquire(l2, 3, &t2), STATUS_LOCKED, "a held lease is not taken");

	/* The lease expires (simulated) and the other worker takes it. */
	enum status st;
	redisReply *rep = redis_command(r2, &st, "DEL freshet:{w:p3}:lease");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	cr_assert_eq(lease_acquire(l2, 3, &t2), STATUS_OK);
	cr_expect_gt(t2, t1, "fencing tokens strictly increase: %llu then %llu",
	             (unsigned long long)t1, (unsigned long long)t2);

	/* The old holder learns it at renewal. */
	struct changes c;
	memset(&c, 0, sizeof c);
	cr_expect_eq(lease_renew(l1, 3), STATUS_FENCED);
	cr_expect_not(lease_valid(l1, 3), "a lost lease is not valid");
	cr_expect_eq(lease_token(l1, 3), 0);
	/* A release by the loser must not delete the winner's key. */
	cr_expect_eq(lease_release(l1, 3), STATUS_OK);
	rep = redis_command(r2, &st, "GET freshet:{w:p3}:lease");
	cr_assert_not_null(rep);
	cr_expect_eq(rep->type, REDIS_REPLY_STRING);
	if (rep->type == REDIS_REPLY_STRING)
		cr_expect_str_eq(rep->str, "two");
	freeReplyObject(rep);

	/* Through lease_tick: take p5 then lose it to a takeover. */
	cr_assert_eq(lease_acquire(l1, 5, NULL), STATUS_OK);
	rep = redis_command(r2, &st, "SET freshet:{w:p5}:lease intruder");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	lease_tick(l1, record, &c);
	cr_expect_eq(c.lost[5], 1, "the takeover is reported lost");
	cr_expect_not(lease_valid(l1, 5));

	cr_assert_eq(lease_release(l2, 3), STATUS_OK);
	cr_assert_eq(lease_acquire(l1, 3, &t3), STATUS_OK);
	cr_expect_gt(t3, t2);
	lease_free(l1);
	lease_free(l2);
	redis_free(r1);
	redis_free(r2);
}

Test(lease, lease_invalid_before_expiry_when_redis_is_away)
{
	struct redis *r = conn();
	struct lease *l = lease_new(r, "w", 2, "solo", 400);
	struct changes c;
	memset(&c, 0, sizeof c);
	cr_assert_eq(lease_tick(l, record, &c), STATUS_OK, "%s", lease_errmsg(l));
	cr_expect_eq(lease_count(l), 2, "a lone worker takes every partition");
	cr_expect_eq(c.acquired[0] + c.acquired[1], 2);
	test_redis_pause(R);
	/* The leases were taken before t0, so by t0 + ttl the keys may have
	 * expired: neither lease may still be valid then.  (Checking at that
	 * moment, not timing how long they stay valid, keeps a busy machine's
	 * late wake-ups from failing the test.) */
	int64_t t0 = now_ms();
	while (now_ms() - t0 < 400)
		usleep(10 * 1000);
	cr_expect_not(lease_valid(l, 0), "lease 0 still valid past the ttl");
	cr_expect_not(lease_valid(l, 1), "lease 1 still valid past the ttl");
	lease_tick(l, record, &c);
	cr_expect_eq(c.lost[0] + c.lost[1], 2, "both leases reported lost");
	cr_expect_eq(lease_count(l), 0);
	test_redis_resume(R);
	/* Back: it takes them again with newer tokens. */
	uint64_t before = c.last_token[0];
	int64_t t1 = now_ms();
	while (lease_count(l) < 2 && now_ms() - t1 < 5000) {
		lease_tick(l, record, &c);
		usleep(50 * 1000);
	}
	cr_expect_eq(lease_count(l), 2);
	cr_expect_gt(lease_token(l, 0), before);
	cr_assert_eq(lease_release_all(l, record, &c), STATUS_OK);
	cr_expect_eq(c.released[0] + c.released[1], 2);
	cr_expect_eq(lease_count(l), 0);
	lease_free(l);
	redis_free(r);
}

/* A rebuild holds the wiki: the running workers hand every partition over
 * within a tick, the holder can take them all, and once the hold is gone
 * the workers take their partitions back. */
Test(lease, hold_makes_workers_hand_over_and_take_back)
{
	struct redis *r1 = conn(), *r2 = conn();
	struct lease *worker = lease_new(r1, "w", 8, "worker", 10000);
	struct lease *rebuild = lease_new(r2, "w", 8, "rebuild", 10000);
	struct changes c = { 0 };
	cr_assert_eq(lease_tick(worker, record, &c), STATUS_OK);
	cr_assert_eq(lease_count(worker), 8);
	uint64_t tok = 0;
	cr_expect_eq(lease_acquire(rebuild, 3, &tok), STATUS_LOCKED);

	cr_assert_eq(lease_hold(rebuild), STATUS_OK, "%s", lease_errmsg(rebuild));
	cr_expect_eq(lease_hold(worker), STATUS_LOCKED, "a second holder is refused");
	cr_assert_eq(lease_tick(worker, record, &c), STATUS_OK);
	cr_expect_eq(lease_count(worker), 0, "the worker still holds %d", lease_count(worker));
	for (int p = 0; p < 8; p++)
		cr_expect_eq(c.released[p], 1, "partition %d released %d times", p, c.released[p]);
	for (int p = 0; p < 8; p++)
		cr_expect_eq(lease_acquire(rebuild, p, &tok), STATUS_OK, "%s",
		             lease_errmsg(rebuild));
	/* Ticking while held off takes nothing, even partitions that are free. */
	lease_release(rebuild, 7);
	cr_assert_eq(lease_tick(worker, record, &c), STATUS_OK);
	cr_expect_eq(lease_count(worker), 0);
	cr_expect_eq(lease_hold(rebuild), STATUS_OK, "the holder renews its hold");

	for (int p = 0; p < 8; p++)
		lease_release(rebuild, p);
	cr_assert_eq(lease_unhold(rebuild), STATUS_OK);
	cr_assert_eq(lease_tick(worker, record, &c), STATUS_OK);
	cr_expect_eq(lease_count(worker), 8, "taken back: %d", lease_count(worker));
	for (int p = 0; p < 8; p++)
		cr_expect_eq(c.acquired[p], 2);
	lease_free(worker);
	lease_free(rebuild);
	redis_free(r1);
	redis_free(r2);
}

/* A holder that died (no unhold) stops holding after its ttl. */
Test(lease, hold_of_a_dead_holder_expires)
{
	struct redis *r1 = conn(), *r2 = conn();
	struct lease *worker = lease_new(r1, "w", 4, "worker", 10000);
	struct lease *rebuild = lease_new(r2, "w", 4, "rebuild", 300);
	cr_assert_eq(lease_hold(rebuild), STATUS_OK);
	cr_assert_eq(lease_tick(worker, NULL, NULL), STATUS_OK);
	cr_expect_eq(lease_count(worker), 0);
	lease_free(rebuild); /* crashed: the hold stays until its ttl */
	usleep(400 * 1000);
	cr_assert_eq(lease_tick(worker, NULL, NULL), STATUS_OK);
	cr_expect_eq(lease_count(worker), 4);
	lease_free(worker);
	redis_free(r1);
	redis_free(r2);
}

/* ------------------------------------------------------------ take-over */

/* True when key exists. */
static bool exists(struct redis *r, const char *key)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "EXISTS %s", key);
	cr_assert_not_null(rep, "%s", redis_errmsg(r));
	bool yes = rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
	freeReplyObject(rep);
	return yes;
}

/* The fencing counter of partition p (0 if never taken). */
static uint64_t fence(struct redis *r, int p)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, "GET freshet:{w:p%d}:fence", p);
	cr_assert_not_null(rep, "%s", redis_errmsg(r));
	uint64_t v = rep->type == REDIS_REPLY_STRING ? strtoull(rep->str, NULL, 10) : 0;
	freeReplyObject(rep);
	return v;
}

struct waits {
	int calls;
	int last_n;
	int stop_at;     /* return false at this call (0: never) */
};

static bool count_waits(void *arg, const int *waiting, int n_waiting)
{
	struct waits *w = arg;
	(void)waiting;
	w->calls++;
	w->last_n = n_waiting;
	return w->stop_at == 0 || w->calls < w->stop_at;
}

/* A running worker (another process, ticking) hands every partition over
 * once the wiki is held; the taker's tokens are newer than the worker's,
 * and once handed back the worker takes its partitions again. */
Test(lease, take_over_waits_for_the_worker_to_hand_over)
{
	const int ttl = 1000;
	struct redis *r = conn();
	pid_t worker = spawn_worker("worker", ttl);
	int64_t t0 = now_ms();
	while (owned_by(r, "worker", 8) < 8 && now_ms() - t0 < 10000)
		usleep(50 * 1000);
	cr_assert_eq(owned_by(r, "worker", 8), 8, "the worker did not take its partitions");
	uint64_t before[8];
	for (int p = 0; p < 8; p++)
		before[p] = fence(r, p);

	struct lease *l = lease_new(r, "w", 8, "taker", 10000);
	struct waits w = { 0 };
	struct lease_takeover o = { .hold_first = true, .wait_ms = 10000, .poll_ms = 50,
				    .fn = count_waits, .arg = &w };
	enum status st = lease_take_over(l, &o);
	cr_assert_eq(st, STATUS_OK, "%s", lease_errmsg(l));
	cr_expect_geq(w.calls, 1, "it took over without waiting for the worker");
	cr_expect(lease_holding(l));
	cr_expect_eq(lease_count(l), 8);
	cr_expect_eq(owned_by(r, "taker", 8), 8);
	for (int p = 0; p < 8; p++)
		cr_expect_gt(lease_token(l, p), before[p],
			     "partition %d: token %llu, the worker's was at most %llu", p,
			     (unsigned long long)lease_token(l, p),
			     (unsigned long long)before[p]);
	cr_expect_eq(lease_keep(l), STATUS_OK, "%s", lease_errmsg(l));

	cr_assert_eq(lease_hand_back(l), STATUS_OK, "%s", lease_errmsg(l));
	cr_expect_not(lease_holding(l));
	cr_expect_eq(lease_count(l), 0);
	cr_expect_not(exists(r, "freshet:{w}:hold"), "the hold outlived the hand-back");
	t0 = now_ms();
	while (owned_by(r, "worker", 8) < 8 && now_ms() - t0 < 10000)
		usleep(50 * 1000);
	cr_expect_eq(owned_by(r, "worker", 8), 8, "the worker did not take its partitions back");
	kill(worker, SIGKILL);
	waitpid(worker, NULL, 0);
	lease_free(l);
	redis_free(r);
}

/* A holder that never hands over (it does not tick) makes the take-over
 * give up at its deadline, keeping what it took for lease_hand_back(). */
Test(lease, take_over_gives_up_at_the_deadline)
{
	struct redis *r1 = conn(), *r2 = conn();
	struct lease *stuck = lease_new(r1, "w", 4, "stuck", 10000);
	struct lease *l = lease_new(r2, "w", 4, "taker", 10000);
	cr_assert_eq(lease_acquire(stuck, 2, NULL), STATUS_OK);
	int want[] = { 1, 2 };
	struct waits w = { 0 };
	struct lease_takeover o = { .partitions = want, .n_partitions = 2, .wait_ms = 300,
				    .poll_ms = 50, .fn = count_waits, .arg = &w };
	int64_t t0 = now_ms();
	enum status st = lease_take_over(l, &o);
	int64_t took = now_ms() - t0;
	cr_expect_eq(st, STATUS_LOCKED, "%s", status_str(st));
	cr_expect_geq(took, 300, "gave up after %lld ms", (long long)took);
	cr_expect_lt(took, 3000, "gave up after %lld ms", (long long)took);
	cr_expect_eq(w.last_n, 1, "waiting for %d partitions", w.last_n);
	cr_expect(strstr(lease_errmsg(l), "partition(s) 2 of w not handed over"), "%s",
		  lease_errmsg(l));
	cr_expect(lease_holding(l), "the hold is kept for the hand-back");
	cr_expect(lease_valid(l, 1), "the free partition was taken");
	cr_expect_not(lease_valid(l, 2));
	cr_expect(lease_valid(stuck, 2), "the holder keeps its lease");

	cr_assert_eq(lease_hand_back(l), STATUS_OK);
	cr_expect_not(exists(r1, "freshet:{w:p1}:lease"));
	cr_expect(exists(r1, "freshet:{w:p2}:lease"), "another owner's lease was released");
	cr_expect_not(exists(r1, "freshet:{w}:hold"));
	lease_free(stuck);
	lease_free(l);
	redis_free(r1);
	redis_free(r2);
}

/* Another owner's hold refuses the take-over at once; a take-over whose
 * partitions are free does not hold the wiki unless asked to; the wait
 * function can stop it. */
Test(lease, take_over_refused_free_and_stopped)
{
	struct redis *r1 = conn(), *r2 = conn();
	struct lease *other = lease_new(r1, "w", 4, "other", 10000);
	struct lease *l = lease_new(r2, "w", 4, "taker", 10000);
	int want[] = { 0 };
	struct lease_takeover o = { .partitions = want, .n_partitions = 1, .wait_ms = 5000,
				    .poll_ms = 50 };

	/* Free: taken without holding the wiki. */
	cr_assert_eq(lease_take_over(l, &o), STATUS_OK, "%s", lease_errmsg(l));
	cr_expect_not(lease_holding(l));
	cr_expect_not(exists(r1, "freshet:{w}:hold"));
	cr_expect(lease_valid(l, 0));
	lease_hand_back(l);

	/* Free, but hold_first: the wiki is held all the same. */
	o.hold_first = true;
	cr_assert_eq(lease_take_over(l, &o), STATUS_OK, "%s", lease_errmsg(l));
	cr_expect(lease_holding(l));
	cr_expect(exists(r1, "freshet:{w}:hold"));
	lease_hand_back(l);
	o.hold_first = false;

	/* Held by another owner while someone else holds the wiki. */
	cr_assert_eq(lease_acquire(other, 0, NULL), STATUS_OK);
	cr_assert_eq(lease_hold(other), STATUS_OK);
	cr_expect_eq(lease_take_over(l, &o), STATUS_LOCKED);
	cr_expect_not(lease_holding(l));
	cr_expect(strstr(lease_errmsg(l), "held by another owner"), "%s", lease_errmsg(l));
	lease_unhold(other);

	/* The wait function stops it. */
	struct waits w = { .stop_at = 2 };
	o.fn = count_waits;
	o.arg = &w;
	cr_expect_eq(lease_take_over(l, &o), STATUS_LOCKED);
	cr_expect_eq(w.calls, 2);
	cr_expect(strstr(lease_errmsg(l), "stopped waiting for partition(s) 0"), "%s",
		  lease_errmsg(l));
	cr_expect(lease_holding(l));
	lease_hand_back(l);

	int bad[] = { 4 };
	o.partitions = bad;
	cr_expect_eq(lease_take_over(l, &o), STATUS_INVALID);
	lease_free(other);
	lease_free(l);
	redis_free(r1);
	redis_free(r2);
}

/* lease_keep() says which lease or hold was lost. */
Test(lease, keep_names_what_was_lost)
{
	struct redis *r = conn();
	struct lease *l = lease_new(r, "w", 4, "taker", 10000);
	struct lease_takeover o = { .hold_first = true };
	cr_assert_eq(lease_take_over(l, &o), STATUS_OK, "%s", lease_errmsg(l));
	enum status st;
	redisReply *rep = redis_command(r, &st, "SET freshet:{w:p3}:lease intruder");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	cr_expect_eq(lease_keep(l), STATUS_FENCED);
	cr_expect(strstr(lease_errmsg(l), "lost the lease of partition 3"), "%s",
		  lease_errmsg(l));
	cr_expect_eq(lease_count(l), 3);
	cr_expect_eq(lease_keep(l), STATUS_OK, "%s", lease_errmsg(l));

	rep = redis_command(r, &st, "SET freshet:{w}:hold intruder");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	cr_expect_eq(lease_keep(l), STATUS_LOCKED);
	cr_expect(strstr(lease_errmsg(l), "lost the hold of w"), "%s", lease_errmsg(l));
	cr_expect_not(lease_holding(l));
	cr_assert_eq(lease_hand_back(l), STATUS_OK);
	cr_expect(exists(r, "freshet:{w}:hold"), "another owner's hold was removed");
	lease_free(l);
	redis_free(r);
}

/* A fence counter that fell behind (a Redis failover lost its last INCRs)
 * is raised past the shard's stored token, under the lease only. */
Test(lease, raise_puts_the_token_above_a_floor)
{
	struct redis *r = conn();
	struct lease *a = lease_new(r, "w", 1, "a", 5000);
	uint64_t tok = 0;
	cr_assert_eq(lease_acquire(a, 0, &tok), STATUS_OK);
	cr_assert_eq(tok, 1);
	/* Below the counter: the floor changes nothing but the INCR. */
	cr_assert_eq(lease_raise(a, 0, 0, &tok), STATUS_OK);
	cr_assert_eq(tok, 2);
	cr_assert_eq(lease_raise(a, 0, 41, &tok), STATUS_OK);
	cr_assert_eq(tok, 42);
	cr_assert_eq(lease_token(a, 0), 42);
	/* Taken over meanwhile: no raise, and the partition is no longer
	 * held. */
	enum status st;
	redisReply *rep = redis_command(r, &st, "SET freshet:{w:p0}:lease b");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	cr_assert_eq(lease_raise(a, 0, 100, &tok), STATUS_FENCED);
	cr_assert_eq(tok, 42);
	cr_assert_not(lease_valid(a, 0));
	rep = redis_command(r, &st, "GET freshet:{w:p0}:fence");
	cr_assert_str_eq(rep->str, "42");
	freeReplyObject(rep);
	lease_free(a);
	redis_free(r);
}
