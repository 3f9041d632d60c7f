/* SPDX-License-Identifier: MIT */
/*
 * test-stream.c: the change-event queue against a real redis-server.
 *
 * Each test starts its own redis-server (test_redis_start) on a private
 * port and socket, so the binaries run in parallel.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "event.h"
#include "redis.h"
#include "stream-ops.h"
#include "stream.h"
#include "testsupport.h"

/* The redis-server of the current test: started by the suite's .init and
 * stopped by .fini, which runs even when an assertion ends the test. */
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

TestSuite(stream, .init = start_redis, .fini = stop_redis, .timeout = 60);

struct q {
	struct redis *rd, *ctl;
	struct stream *s;
};

static struct redis *conn(const char *url, int read_timeout_ms)
{
	struct redis_opts o = { .url = url, .read_timeout_ms = read_timeout_ms };
	char err[256];
	struct redis *r = redis_new(&o, err, sizeof err);
	cr_assert_not_null(r, "%s", err);
	return r;
}

static struct q *q_open(const char *url, int partitions, const char *consumer,
                        const struct stream_opts *extra)
{
	struct q *q = calloc(1, sizeof *q);
	q->rd = conn(url, 3000);
	q->ctl = conn(url, 3000);
	struct stream_opts o = { .wiki = "testwiki", .partitions = partitions,
	                         .consumer = consumer, .block_ms = 100 };
	if (extra) {
		o.batch = extra->batch;
		o.max_deliveries = extra->max_deliveries;
		o.max_interrupted = extra->max_interrupted;
		o.claim_idle_ms = extra->claim_idle_ms;
		o.retry_base_ms = extra->retry_base_ms;
		o.retry_cap_ms = extra->retry_cap_ms;
	}
	char err[256];
	q->s = stream_new(q->rd, q->ctl, &o, err, sizeof err);
	cr_assert_not_null(q->s, "%s", err);
	enum status st = stream_setup(q->s);
	cr_assert_eq(st, STATUS_OK, "setup: %s", stream_errmsg(q->s));
	return q;
}

static void q_close(struct q *q)
{
	if (!q)
		return;
	stream_free(q->s);
	redis_free(q->rd);
	redis_free(q->ctl);
	free(q);
}

static void assign_all(struct q *q)
{
	for (int p = 0; p < stream_partitions(q->s); p++)
		stream_assign(q->s, p, true);
}

static void produce(struct q *q, int64_t page_id, int64_t rev)
{
	struct event ev = { .kind = EVENT_EDIT, .wiki = "testwiki", .page_id = page_id,
	                    .title = "Some_page", .rev_id = rev, .time_ms = 1700000000000 };
	char *json = event_encode(&ev);
	enum status st = stream_produce(q->s, page_id, json, strlen(json), NULL);
	cr_assert_eq(st, STATUS_OK, "produce: %s", stream_errmsg(q->s));
	free(json);
}

static long long cmd_int(struct redis *r, const char *fmt, const char *arg)
{
	enum status st;
	redisReply *rep = redis_command(r, &st, fmt, arg);
	cr_assert_not_null(rep, "%s: %s", fmt, redis_errmsg(r));
	long long v = rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
	freeReplyObject(rep);
	return v;
}

static long long pending_total(struct q *q)
{
	long long total = 0;
	for (int p = 0; p < stream_partitions(q->s); p++) {
		long long lag, pend;
		cr_assert_eq(stream_depth(q->s, p, &lag, &pend), STATUS_OK, "%s",
		             stream_errmsg(q->s));
		total += pend;
	}
	return total;
}

/* Failure counters stored for the wiki's entries. */
static long long failure_counters(struct q *q)
{
	enum status st;
	redisReply *rep = redis_command(q->ctl, &st, "KEYS %s", "freshet:{testwiki:p*}:failed:*");
	cr_assert_not_null(rep, "KEYS: %s", redis_errmsg(q->ctl));
	long long n = rep->type == REDIS_REPLY_ARRAY ? (long long)rep->elements : -1;
	freeReplyObject(rep);
	return n;
}

/* Reads until n entries arrived (or a deadline), recording rev ids seen.
 * Acks when ack is true. */
static size_t drain(struct q *q, size_t want, int *seen, size_t seen_len, bool ack,
                    int timeout_ms)
{
	size_t got = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (got < want) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms)
			break;
		struct stream_batch *b = NULL;
		enum status st = stream_read(q->s, &b);
		if (st == STATUS_TRANSIENT) {
			usleep(50 * 1000);
			continue;
		}
		cr_assert_eq(st, STATUS_OK, "read: %s", stream_errmsg(q->s));
		for (size_t i = 0; i < b->n; i++) {
			int64_t rev = b->entries[i].event->rev_id;
			if (rev >= 0 && (size_t)rev < seen_len)
				seen[rev]++;
		}
		got += b->n;
		if (ack) {
			while ((st = stream_ack(q->s, b)) == STATUS_TRANSIENT)
				usleep(50 * 1000);
			cr_assert_eq(st, STATUS_OK, "ack: %s", stream_errmsg(q->s));
		}
		stream_batch_free(b);
	}
	return got;
}

Test(stream, partitions_published_and_mismatch_refused)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 4, "c1", NULL);
	int n = 0;
	cr_assert_eq(stream_partitions_get(q->ctl, "testwiki", &n, NULL, 0), STATUS_OK);
	cr_expect_eq(n, 4);

	/* A producer configured with 8 partitions must not misroute. */
	struct redis *ctl = conn(r->url, 2000);
	struct stream_opts o = { .wiki = "testwiki", .partitions = 8 };
	struct stream *s8 = stream_new(NULL, ctl, &o, NULL, 0);
	cr_assert_not_null(s8);
	cr_expect_eq(stream_produce(s8, 5, "{}", 2, NULL), STATUS_CONFIG);
	cr_expect(strstr(stream_errmsg(s8), "says 4 partitions") != NULL, "%s",
	          stream_errmsg(s8));
	cr_expect(strstr(stream_errmsg(s8), "configured with 8") != NULL, "%s",
	          stream_errmsg(s8));
	cr_expect_eq(stream_setup(s8), STATUS_CONFIG);
	stream_free(s8);
	redis_free(ctl);

	/* The event for page 6 goes to partition 6 mod 4 = 2. */
	produce(q, 6, 1);
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p2}"), 1);
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p1}"), 0);
	q_close(q);
}

Test(stream, produce_read_ack)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 4, "c1", &(struct stream_opts){ .batch = 50 });
	assign_all(q);
	for (int i = 1; i <= 100; i++)
		produce(q, i, i);
	int seen[101] = { 0 };
	size_t got = drain(q, 100, seen, 101, true, 10000);
	cr_expect_eq(got, 100);
	for (int i = 1; i <= 100; i++)
		cr_expect_eq(seen[i], 1, "rev %d seen %d times", i, seen[i]);
	cr_expect_eq(pending_total(q), 0);
	struct stream_stats stats;
	stream_get_stats(q->s, &stats);
	cr_expect_eq(stats.acked, 100);
	cr_expect_eq(stats.delivered, 100);
	q_close(q);
}

/* For forked children: no Criterion calls (they belong to the test
 * process), _exit on any failure. */
static struct q *child_open(const char *url, int partitions, const char *consumer,
                            const struct stream_opts *extra)
{
	struct q *q = calloc(1, sizeof *q);
	struct redis_opts ro = { .url = url, .read_timeout_ms = 3000 };
	q->rd = redis_new(&ro, NULL, 0);
	q->ctl = redis_new(&ro, NULL, 0);
	if (!q->rd || !q->ctl)
		_exit(2);
	struct stream_opts o = *extra;
	o.wiki = "testwiki";
	o.partitions = partitions;
	o.consumer = consumer;
	o.block_ms = 100;
	q->s = stream_new(q->rd, q->ctl, &o, NULL, 0);
	if (!q->s || stream_setup(q->s) != STATUS_OK) {
		fprintf(stderr, "child: setup: %s\n", q->s ? stream_errmsg(q->s) : "");
		_exit(2);
	}
	for (int p = 0; p < partitions; p++)
		stream_assign(q->s, p, true);
	return q;
}

/* The child reads every entry, does not ack, tells the parent and waits to
 * be killed. */
static pid_t consume_then_hang(const char *url, const char *consumer, size_t n)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		struct q *q = child_open(url, 4, consumer, &(struct stream_opts){ .batch = 1000 });
		size_t got = 0;
		while (got < n) {
			struct stream_batch *b = NULL;
			if (stream_read(q->s, &b) != STATUS_OK) {
				fprintf(stderr, "child: read: %s\n", stream_errmsg(q->s));
				_exit(3);
			}
			got += b->n;
			stream_batch_free(b);
		}
		char c = 'x';
		if (write(fds[1], &c, 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	char c;
	ssize_t got = read(fds[0], &c, 1);
	close(fds[0]);
	if (got != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("child failed before reading everything");
	}
	return pid;
}

Test(stream, killed_consumer_entries_claimed_by_new_consumer)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 4, "producer", NULL);
	for (int i = 1; i <= 200; i++)
		produce(q, i, i);
	pid_t pid = consume_then_hang(r->url, "doomed", 200);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_expect_eq(pending_total(q), 200, "the dead consumer's batch stays pending");

	struct q *c = q_open(r->url, 4, "heir",
	                     &(struct stream_opts){ .batch = 100, .claim_idle_ms = 300 });
	assign_all(c);
	int seen[201] = { 0 };
	size_t got = drain(c, 200, seen, 201, true, 15000);
	cr_expect_eq(got, 200);
	for (int i = 1; i <= 200; i++)
		cr_expect_eq(seen[i], 1, "rev %d seen %d times", i, seen[i]);
	struct stream_stats st;
	stream_get_stats(c->s, &st);
	cr_expect_eq(st.claimed, 200);
	cr_expect_eq(pending_total(q), 0);
	q_close(c);
	q_close(q);
}

Test(stream, restarted_consumer_rereads_its_own_pending_first)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 4, "producer", NULL);
	for (int i = 1; i <= 50; i++)
		produce(q, i, i);
	pid_t pid = consume_then_hang(r->url, "worker-1", 50);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 51; i <= 60; i++)
		produce(q, i, i);

	/* Same consumer name, long claim idle: only the pending re-read can
	 * bring the first 50 back, and they come before the new ones. */
	struct q *c = q_open(r->url, 4, "worker-1", &(struct stream_opts){ .batch = 1000 });
	assign_all(c);
	struct stream_batch *b = NULL;
	cr_assert_eq(stream_read(c->s, &b), STATUS_OK, "%s", stream_errmsg(c->s));
	size_t first = b->n;
	for (size_t i = 0; i < b->n; i++) {
		cr_expect_leq(b->entries[i].event->rev_id, 50, "new entry before pending ones");
		cr_expect_eq(b->entries[i].deliveries, 2, "re-read counts as a delivery");
	}
	cr_assert_eq(stream_ack(c->s, b), STATUS_OK);
	stream_batch_free(b);
	int seen[61] = { 0 };
	size_t rest = drain(c, 60 - first, seen, 61, true, 10000);
	cr_expect_eq(first + rest, 60);
	cr_expect_eq(pending_total(q), 0);
	q_close(c);
	q_close(q);
}

static struct stream_dead *only_dead_letter(struct q *q)
{
	struct stream_dead *d = NULL;
	size_t n = 0;
	cr_assert_eq(stream_dead_list(q->s, NULL, 10, &d, &n), STATUS_OK, "%s",
	             stream_errmsg(q->s));
	cr_assert_eq(n, 1, "expected one dead letter, got %zu", n);
	return d;
}

Test(stream, failing_entry_dead_lettered_after_exactly_max_deliveries)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 2, "c1",
	                     &(struct stream_opts){ .max_deliveries = 3, .retry_base_ms = 5,
	                                            .retry_cap_ms = 20 });
	assign_all(q);
	struct event ev = { .kind = EVENT_EDIT, .wiki = "testwiki", .page_id = 7,
	                    .title = "Poison", .rev_id = 77, .time_ms = 1700000000000 };
	char *json = event_encode(&ev);
	char id[STREAM_ID_MAX];
	cr_assert_eq(stream_produce(q->s, 7, json, strlen(json), id), STATUS_OK);
	int attempts = 0;
	for (int round = 0; round < 50; round++) {
		struct stream_batch *b = NULL;
		cr_assert_eq(stream_read(q->s, &b), STATUS_OK, "%s", stream_errmsg(q->s));
		for (size_t i = 0; i < b->n; i++) {
			attempts++;
			cr_expect_eq(b->entries[i].deliveries, attempts);
			cr_expect_eq(b->entries[i].failures, attempts - 1);
			bool dead = true;
			cr_assert_eq(stream_nack(q->s, &b->entries[i], "fetch failed: HTTP 500",
			                         false, &dead), STATUS_OK);
			cr_expect_eq(dead, attempts == 3, "attempt %d: dead=%d", attempts, dead);
		}
		stream_batch_free(b);
	}
	cr_expect_eq(attempts, 3, "handed out %d times", attempts);
	struct stream_dead *d = only_dead_letter(q);
	cr_expect_str_eq(d->payload, json);
	cr_expect(strstr(d->reason, "fetch failed: HTTP 500") != NULL, "%s", d->reason);
	cr_expect_eq(d->deliveries, 3);
	cr_expect_str_eq(d->stream, "freshet:{testwiki:p1}");
	cr_expect_str_eq(d->source_id, id);
	cr_expect_eq(strlen(d->time), 24, "ISO 8601 time: %s", d->time);
	cr_expect_eq(pending_total(q), 0, "the dead-lettered entry is acked");
	cr_expect_eq(failure_counters(q), 0, "the failure counter went with the entry");
	stream_dead_free(d, 1);
	free(json);
	q_close(q);
}

/* `count` consumers in turn claim the partition's entries (one partition)
 * and are killed holding them, as a worker crashing on an event would be;
 * each claim counts a delivery. */
static void consumers_die_holding(const char *url, int count)
{
	for (int i = 0; i < count; i++) {
		char name[32];
		snprintf(name, sizeof name, "victim-%d", i);
		if (i > 0)
			usleep(250 * 1000);
		int fds[2];
		cr_assert_eq(pipe(fds), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			struct q *c = child_open(url, 1, name,
			                         &(struct stream_opts){ .claim_idle_ms = 200,
			                                                .max_interrupted = 100 });
			for (;;) {
				struct stream_batch *b = NULL;
				if (stream_read(c->s, &b) != STATUS_OK) {
					fprintf(stderr, "child: read: %s\n", stream_errmsg(c->s));
					_exit(3);
				}
				if (b->n) {
					char x = 'x';
					if (write(fds[1], &x, 1) != 1)
						_exit(4);
					for (;;)
						pause();
				}
				stream_batch_free(b);
			}
		}
		close(fds[1]);
		char x;
		ssize_t got = read(fds[0], &x, 1);
		close(fds[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_eq(got, 1, "child %d failed", i);
	}
	usleep(250 * 1000);
}

Test(stream, crash_looping_entry_dead_lettered_after_max_interrupted)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 1, "producer", NULL);
	produce(q, 3, 33);
	consumers_die_holding(r->url, 3);
	struct q *c = q_open(r->url, 1, "survivor",
	                     &(struct stream_opts){ .claim_idle_ms = 200, .max_interrupted = 2 });
	assign_all(c);
	int seen[64] = { 0 };
	cr_expect_eq(drain(c, 1, seen, 64, true, 1500), 0, "the poison entry is not handed out");
	struct stream_dead *d = only_dead_letter(c);
	cr_expect(strstr(d->reason, "more than max_interrupted (2)") != NULL, "%s", d->reason);
	cr_expect_eq(d->deliveries, 4);
	stream_dead_free(d, 1);
	cr_expect_eq(pending_total(c), 0);
	/* The dead victims were removed from the group: only the survivor
	 * is listed. */
	enum status st;
	redisReply *rep = redis_command(c->ctl, &st, "XINFO CONSUMERS %s freshet",
	                                "freshet:{testwiki:p0}");
	cr_assert_not_null(rep, "%s", redis_errmsg(c->ctl));
	cr_expect_eq(rep->type == REDIS_REPLY_ARRAY ? rep->elements : 99, 1,
	             "consumers left: %zu", rep->elements);
	freeReplyObject(rep);
	q_close(c);
	q_close(q);
}

/* Workers killed while holding an event (kill -9, OOM, a host reboot) are
 * not failures of the event: after more kills than max_deliveries it still
 * gets its max_deliveries attempts, and then goes through. */
Test(stream, interrupted_deliveries_are_not_failures)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 1, "producer", NULL);
	produce(q, 3, 33);
	consumers_die_holding(r->url, 4);
	struct q *c = q_open(r->url, 1, "survivor",
	                     &(struct stream_opts){ .claim_idle_ms = 200, .max_deliveries = 2,
	                                            .retry_base_ms = 5, .retry_cap_ms = 20 });
	assign_all(c);
	int attempts = 0;
	for (int round = 0; round < 100 && attempts < 2; round++) {
		struct stream_batch *b = NULL;
		cr_assert_eq(stream_read(c->s, &b), STATUS_OK, "%s", stream_errmsg(c->s));
		for (size_t i = 0; i < b->n; i++) {
			attempts++;
			cr_expect_eq(b->entries[i].deliveries, 4 + attempts);
			cr_expect_eq(b->entries[i].failures, attempts - 1);
			if (attempts == 1) {
				bool dead = true;
				cr_assert_eq(stream_nack(c->s, &b->entries[i], "fetch transient: HTTP 503",
				                         false, &dead), STATUS_OK);
				cr_expect(!dead, "one failure of max_deliveries 2 dead-lettered it");
				cr_expect_eq(failure_counters(c), 1);
			} else {
				cr_assert_eq(stream_ack(c->s, b), STATUS_OK, "%s", stream_errmsg(c->s));
			}
		}
		stream_batch_free(b);
		usleep(10 * 1000);
	}
	cr_expect_eq(attempts, 2, "handed out %d times", attempts);
	long long nd = -1;
	cr_assert_eq(stream_dead_count(c->s, &nd), STATUS_OK);
	cr_expect_eq(nd, 0, "%lld dead letters", nd);
	cr_expect_eq(pending_total(c), 0);
	cr_expect_eq(failure_counters(c), 0, "the ack deletes the failure counter");
	q_close(c);
	q_close(q);
}

Test(stream, malformed_entry_dead_lettered_with_decode_error)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 2, "c1", NULL);
	assign_all(q);
	/* A real edit event whose page id is a string. */
	json_t *ev = test_event_json("edit", "testwiki", 4, "X", 1);
	json_object_set_new(json_object_get(ev, "page"), "page_id", json_string("four"));
	char *bad = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	char id[STREAM_ID_MAX];
	cr_assert_eq(stream_produce(q->s, 4, bad, strlen(bad), id), STATUS_OK);
	produce(q, 2, 22);
	int seen[64] = { 0 };
	cr_expect_eq(drain(q, 1, seen, 64, true, 3000), 1);
	cr_expect_eq(seen[22], 1, "the good entry still comes through");
	struct stream_dead *d = only_dead_letter(q);
	cr_expect_str_eq(d->payload, bad);
	cr_expect(strstr(d->reason, "decode: page.page_id: expected an integer") != NULL, "%s",
	          d->reason);
	cr_expect_str_eq(d->source_id, id);
	cr_expect_eq(d->deliveries, 1);
	cr_expect_eq(pending_total(q), 0);

	/* freshetctl: show, replay (back to its partition), drop. */
	struct stream_dead *one = NULL;
	cr_assert_eq(stream_dead_show(q->s, d->id, &one), STATUS_OK);
	cr_expect_str_eq(one->reason, d->reason);
	stream_dead_free(one, 1);
	long long before = cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p0}");
	cr_assert_eq(stream_dead_replay(q->s, d->id), STATUS_OK, "%s", stream_errmsg(q->s));
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p0}"), before + 1);
	long long n = -1;
	cr_assert_eq(stream_dead_count(q->s, &n), STATUS_OK);
	cr_expect_eq(n, 0, "replay removes the dead letter");
	cr_expect_eq(stream_dead_show(q->s, d->id, &one), STATUS_NOT_FOUND);
	/* Read again: it is still malformed, so it is dead again; then drop. */
	cr_expect_eq(drain(q, 1, seen, 64, true, 500), 0);
	stream_dead_free(d, 1);
	d = only_dead_letter(q);
	cr_assert_eq(stream_dead_drop(q->s, d->id), STATUS_OK);
	cr_expect_eq(stream_dead_drop(q->s, d->id), STATUS_NOT_FOUND);
	cr_assert_eq(stream_dead_count(q->s, &n), STATUS_OK);
	cr_expect_eq(n, 0);
	stream_dead_free(d, 1);
	free(bad);
	q_close(q);
}

Test(stream, redis_restart_loses_nothing_and_acks_once)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 4, "c1", &(struct stream_opts){ .batch = 25 });
	assign_all(q);
	enum { N = 600 };
	for (int i = 1; i <= N / 2; i++)
		produce(q, i, i);
	static int seen[N + 1];
	memset(seen, 0, sizeof seen);
	size_t got = drain(q, 100, seen, N + 1, true, 10000);
	cr_assert_geq(got, 100);

	/* Read a batch and hold it across the restart: it must not come back
	 * while held, and its ack after the restart must count once. */
	struct stream_batch *held = NULL;
	cr_assert_eq(stream_read(q->s, &held), STATUS_OK);
	cr_assert_gt(held->n, 0);
	for (size_t i = 0; i < held->n; i++)
		seen[held->entries[i].event->rev_id]++;
	got += held->n;

	test_redis_pause(r);
	struct stream_batch *b = NULL;
	cr_expect_eq(stream_read(q->s, &b), STATUS_TRANSIENT, "Redis is down");
	cr_expect_eq(stream_ack(q->s, held), STATUS_TRANSIENT);
	test_redis_resume(r);

	for (int i = N / 2 + 1; i <= N; i++) {
		while (true) {
			struct event ev = { .kind = EVENT_EDIT, .wiki = "testwiki", .page_id = i,
			                    .title = "P", .rev_id = i, .time_ms = 1 };
			char *json = event_encode(&ev);
			enum status st = stream_produce(q->s, i, json, strlen(json), NULL);
			free(json);
			if (st == STATUS_OK)
				break;
			cr_assert_eq(st, STATUS_TRANSIENT, "%s", stream_errmsg(q->s));
			usleep(50 * 1000);
		}
	}
	/* Drain what is left first, then ack the held batch: the re-read of
	 * pending entries after the reconnect must skip it. */
	got += drain(q, N - got, seen, N + 1, true, 20000);
	enum status st;
	while ((st = stream_ack(q->s, held)) == STATUS_TRANSIENT)
		usleep(50 * 1000);
	cr_assert_eq(st, STATUS_OK, "%s", stream_errmsg(q->s));
	stream_batch_free(held);
	cr_expect_eq(got, N);
	for (int i = 1; i <= N; i++)
		cr_expect_eq(seen[i], 1, "rev %d seen %d times", i, seen[i]);
	struct stream_stats stats;
	stream_get_stats(q->s, &stats);
	cr_expect_eq(stats.acked, N, "Redis confirmed %llu acks",
	             (unsigned long long)stats.acked);
	cr_expect_geq(stats.reconnects, 1);
	cr_expect_eq(pending_total(q), 0);
	q_close(q);
}

Test(stream, trim_keeps_undelivered_and_unacked)
{
	struct test_redis *r = R;
	struct q *q = q_open(r->url, 1, "c1", &(struct stream_opts){ .batch = 6 });
	assign_all(q);
	for (int i = 1; i <= 10; i++)
		produce(q, 1, i);
	struct stream_batch *b = NULL;
	cr_assert_eq(stream_read(q->s, &b), STATUS_OK);
	cr_assert_eq(b->n, 6);
	const struct stream_entry *first3[] = { &b->entries[0], &b->entries[1], &b->entries[2] };
	cr_assert_eq(stream_ack_entries(q->s, first3, 3), STATUS_OK);
	long long trimmed = -1;
	cr_assert_eq(stream_trim(q->s, 0, &trimmed), STATUS_OK, "%s", stream_errmsg(q->s));
	cr_expect_eq(trimmed, 3, "only the acked entries go");
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p0}"), 7);
	cr_assert_eq(stream_ack(q->s, b), STATUS_OK);
	stream_batch_free(b);
	cr_assert_eq(stream_trim(q->s, 0, &trimmed), STATUS_OK);
	cr_expect_eq(trimmed, 2, "up to the last delivered entry, never beyond");
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", "freshet:{testwiki:p0}"), 5);
	q_close(q);
}

/* Produces n edits of page 1 (revs 1..n) on a one-partition queue, reads
 * and acks them all, and keeps their ids in ids[1..n]. */
static void produce_acked(struct q *q, int n, char (*ids)[STREAM_ID_MAX])
{
	for (int i = 1; i <= n; i++) {
		struct event ev = { .kind = EVENT_EDIT, .wiki = "testwiki", .page_id = 1,
		                    .title = "Some_page", .rev_id = i, .time_ms = 1700000000000 };
		char *json = event_encode(&ev);
		cr_assert_eq(stream_produce(q->s, 1, json, strlen(json), ids[i]), STATUS_OK);
		free(json);
	}
	int seen[64] = { 0 };
	cr_assert_eq(drain(q, (size_t)n, seen, 64, true, 5000), (size_t)n);
}

/* A one-partition queue holding n acked entries (produce_acked()), with
 * the partition not assigned: as a worker finds it before it reads. */
static struct q *q_with_acked(int n, char (*ids)[STREAM_ID_MAX])
{
	struct q *q = q_open(R->url, 1, "c1", &(struct stream_opts){ .batch = 20 });
	assign_all(q);
	produce_acked(q, n, ids);
	stream_assign(q->s, 0, false);
	return q;
}

Test(stream, replay_rewinds_the_group_to_the_shard_position)
{
	char ids[16][STREAM_ID_MAX];
	struct q *q = q_with_acked(10, ids);

	/* A shard at the group's position: nothing to replay. */
	struct stream_replay r;
	cr_assert_eq(stream_replay(q->s, 0, ids[10], &r), STATUS_OK, "%s", stream_errmsg(q->s));
	cr_expect_not(r.rewound);
	cr_expect_not(r.gap);

	/* A shard that stopped at rev 4 (a restored backup): 5..10 again. */
	cr_assert_eq(stream_replay(q->s, 0, ids[4], &r), STATUS_OK, "%s", stream_errmsg(q->s));
	cr_expect(r.rewound);
	cr_expect_str_eq(r.from, ids[4]);
	cr_expect_str_eq(r.to, ids[10]);
	cr_expect_str_eq(r.oldest, ids[1]);
	cr_expect_not(r.gap);
	stream_assign(q->s, 0, true);
	int seen[64] = { 0 };
	cr_expect_eq(drain(q, 6, seen, 64, false, 5000), 6);
	for (int i = 1; i <= 10; i++)
		cr_expect_eq(seen[i], i > 4, "rev %d seen %d times", i, seen[i]);
	/* They are pending now: a second replay from the same position leaves
	 * them to the group's own redelivery. */
	stream_assign(q->s, 0, false);
	cr_assert_eq(stream_replay(q->s, 0, ids[4], &r), STATUS_OK);
	cr_expect_not(r.rewound, "entries still pending are redelivered anyway");
	cr_expect_eq(pending_total(q), 6);
	stream_assign(q->s, 0, true);
	memset(seen, 0, sizeof seen);
	cr_expect_eq(drain(q, 6, seen, 64, true, 5000), 6);
	stream_assign(q->s, 0, false);

	/* A shard with no position at all gets everything. */
	cr_assert_eq(stream_replay(q->s, 0, NULL, &r), STATUS_OK);
	cr_expect(r.rewound);
	cr_expect_str_eq(r.from, "0-0");
	stream_assign(q->s, 0, true);
	memset(seen, 0, sizeof seen);
	cr_expect_eq(drain(q, 10, seen, 64, true, 5000), 10);
	for (int i = 1; i <= 10; i++)
		cr_expect_eq(seen[i], 1, "rev %d seen %d times", i, seen[i]);

	/* An entry after the position that ended as a dead letter is not
	 * replayed: it would only be dead-lettered again. */
	produce(q, 1, 11);
	struct stream_batch *b = NULL;
	cr_assert_eq(stream_read(q->s, &b), STATUS_OK);
	cr_assert_eq(b->n, 1);
	cr_assert_eq(stream_nack(q->s, &b->entries[0], "test", true, NULL), STATUS_OK);
	stream_batch_free(b);
	stream_assign(q->s, 0, false);
	cr_assert_eq(stream_replay(q->s, 0, ids[10], &r), STATUS_OK);
	cr_expect_not(r.rewound, "a dead letter was replayed");
	q_close(q);
}

/* After the group was set back, entries the consumer still holds are not
 * handed out a second time by the read of new entries. */
Test(stream, replay_never_hands_out_an_entry_held)
{
	char ids[16][STREAM_ID_MAX];
	struct q *q = q_with_acked(10, ids);
	struct stream_replay r;
	cr_assert_eq(stream_replay(q->s, 0, ids[4], &r), STATUS_OK);
	stream_assign(q->s, 0, true);
	struct stream_batch *held = NULL;
	cr_assert_eq(stream_read(q->s, &held), STATUS_OK);
	cr_assert_eq(held->n, 6, "revs 5..10 come again");
	/* Set back further while 5..10 are held. */
	cr_assert_eq(stream_replay(q->s, 0, NULL, &r), STATUS_OK);
	cr_assert(r.rewound);
	int seen[64] = { 0 };
	cr_expect_eq(drain(q, 4, seen, 64, true, 5000), 4);
	for (int i = 1; i <= 10; i++)
		cr_expect_eq(seen[i], i <= 4, "rev %d seen %d times", i, seen[i]);
	cr_assert_eq(stream_ack(q->s, held), STATUS_OK);
	stream_batch_free(held);
	cr_expect_eq(pending_total(q), 0);
	q_close(q);
}

Test(stream, retain_trims_old_entries_the_shard_and_replicas_hold)
{
	struct q *q = q_open(R->url, 1, "c1", &(struct stream_opts){ .batch = 20 });
	/* One entry per node, so that the approximate trim is exact here. */
	enum status st;
	redisReply *rep = redis_command(q->ctl, &st, "CONFIG SET stream-node-max-entries 1");
	cr_assert_not_null(rep);
	freeReplyObject(rep);
	assign_all(q);
	char ids[16][STREAM_ID_MAX];
	produce_acked(q, 10, ids);
	const char *key = "freshet:{testwiki:p0}";

	long long trimmed = -1;
	cr_assert_eq(stream_retain(q->s, 0, ids[6], 3600 * 1000, &trimmed), STATUS_OK);
	cr_expect_eq(trimmed, 0, "entries younger than the retention stay");
	cr_assert_eq(stream_retain(q->s, 0, NULL, 0, &trimmed), STATUS_OK);
	cr_expect_eq(trimmed, 0, "a shard without a position keeps everything");

	/* A replica at rev 3 holds the trim back, whatever the shard has. */
	rep = redis_command(q->ctl, &st, "HSET %s:replicas hostb %s", key, "7 placeholder 0");
	freeReplyObject(rep);
	char val[STREAM_ID_MAX + 32];
	snprintf(val, sizeof val, "12 %s 1700000000", ids[3]);
	rep = redis_command(q->ctl, &st, "HSET %s:replicas hosta %s", key, val);
	freeReplyObject(rep);
	cr_assert_eq(stream_retain(q->s, 0, ids[6], 0, &trimmed), STATUS_OK);
	cr_expect_eq(trimmed, 0, "a replica without a readable position keeps everything");
	rep = redis_command(q->ctl, &st, "HDEL %s:replicas hostb", key);
	freeReplyObject(rep);
	cr_assert_eq(stream_retain(q->s, 0, ids[6], 0, &trimmed), STATUS_OK,
	             "%s", stream_errmsg(q->s));
	cr_expect_eq(trimmed, 2, "only what the replica holds goes (trimmed %lld)", trimmed);
	rep = redis_command(q->ctl, &st, "DEL %s:replicas", key);
	freeReplyObject(rep);

	/* Without replicas: up to the shard's position, never beyond. */
	cr_assert_eq(stream_retain(q->s, 0, ids[6], 0, &trimmed), STATUS_OK);
	cr_expect_eq(trimmed, 3);
	cr_expect_eq(cmd_int(q->ctl, "XLEN %s", key), 5);
	char oldest[STREAM_ID_MAX];
	cr_assert_eq(stream_oldest(q->s, 0, oldest), STATUS_OK);
	cr_expect_str_eq(oldest, ids[6], "the shard's own position is kept");

	/* A copy at rev 2 now has a gap: rev 3..5 are gone. */
	struct stream_replay r;
	cr_assert_eq(stream_replay(q->s, 0, ids[2], &r), STATUS_OK);
	cr_expect(r.gap);
	cr_expect_str_eq(r.oldest, ids[6]);
	cr_assert_eq(stream_replay(q->s, 0, ids[7], &r), STATUS_OK);
	cr_expect_not(r.gap, "a copy past the trimmed entries misses nothing");
	q_close(q);
}

Test(stream, unix_socket_url_and_password)
{
	struct test_redis *r = R;
	char *url;
	cr_assert(asprintf(&url, "unix://%s?db=3", r->socket) > 0);
	struct redis *c = conn(url, 2000);
	enum status st;
	redisReply *rep = redis_command(c, &st, "SET k v");
	cr_assert_not_null(rep, "%s", redis_errmsg(c));
	freeReplyObject(rep);
	/* db 3 over the socket is not db 0 over TCP. */
	struct redis *tcp = conn(r->url, 2000);
	rep = redis_command(tcp, &st, "EXISTS k");
	cr_assert_not_null(rep);
	cr_expect_eq(rep->integer, 0);
	freeReplyObject(rep);
	rep = redis_command(tcp, &st, "CONFIG SET requirepass s3cret");
	cr_assert_not_null(rep);
	freeReplyObject(rep);

	/* Password from the environment, sent with AUTH after connecting. */
	setenv("FRESHET_REDIS_PASSWORD", "s3cret", 1);
	struct redis *authed = conn(r->url, 2000);
	unsetenv("FRESHET_REDIS_PASSWORD");
	rep = redis_command(authed, &st, "PING");
	cr_expect_not_null(rep, "%s", redis_errmsg(authed));
	if (rep)
		freeReplyObject(rep);
	/* From a password file, wrong: a configuration error. */
	char *dir = test_mkdtemp("pw");
	char *pwfile;
	cr_assert(asprintf(&pwfile, "%s/pw", dir) > 0);
	FILE *f = fopen(pwfile, "w");
	fputs("wrong\n", f);
	fclose(f);
	struct redis_opts o = { .url = r->url, .password_file = pwfile };
	struct redis *bad = redis_new(&o, NULL, 0);
	cr_assert_not_null(bad);
	cr_expect_eq(redis_connect(bad), STATUS_CONFIG);
	cr_expect(strstr(redis_errmsg(bad), "AUTH") != NULL, "%s", redis_errmsg(bad));
	redis_free(bad);
	test_rmtree(dir);
	free(dir);
	free(pwfile);
	rep = redis_command(authed, &st, "CONFIG SET requirepass %s", "");
	if (rep)
		freeReplyObject(rep);
	redis_free(authed);
	redis_free(tcp);
	redis_free(c);
	free(url);
}

/* Writes pw and a newline to a new file dir/name with mode; returns its
 * path (caller frees). */
static char *pw_file(const char *dir, const char *name, const char *pw, mode_t mode)
{
	char *path;
	cr_assert(asprintf(&path, "%s/%s", dir, name) > 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "%s\n", pw);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
	return path;
}

/* Sends stderr to a new file under dir until stderr_end(), which returns
 * what was written (caller frees). */
static int saved_stderr = -1;
static char *captured;
static void stderr_begin(const char *dir)
{
	cr_assert(asprintf(&captured, "%s/stderr", dir) > 0);
	int fd = open(captured, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

static char *stderr_end(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	char *text = test_read_file(captured, NULL);
	cr_assert_not_null(text);
	free(captured);
	return text;
}

/* Makes the test's Redis require s3cret. */
static void require_password(void)
{
	struct redis *c = conn(R->url, 2000);
	enum status st;
	redisReply *rep = redis_command(c, &st, "CONFIG SET requirepass s3cret");
	cr_assert_not_null(rep, "%s", redis_errmsg(c));
	freeReplyObject(rep);
	redis_free(c);
}

Test(stream, password_from_the_environment_wins_over_the_file)
{
	char *dir = test_mkdtemp("pw");
	char *wrong = pw_file(dir, "wrong", "wrong", 0600);
	require_password();
	setenv("FRESHET_REDIS_PASSWORD", "s3cret", 1);
	struct redis_opts o = { .url = R->url, .password_file = wrong };
	char err[256];
	struct redis *r = redis_new(&o, err, sizeof err);
	cr_assert_not_null(r, "%s", err);
	cr_expect_eq(redis_connect(r), STATUS_OK, "%s", redis_errmsg(r));
	enum status st;
	redisReply *rep = redis_command(r, &st, "PING");
	cr_expect_not_null(rep, "%s", redis_errmsg(r));
	if (rep)
		freeReplyObject(rep);
	redis_free(r);
	/* The configuration decides the same way. */
	char *pw = NULL;
	cr_assert_eq(redis_password_load(wrong, &pw, err, sizeof err), STATUS_OK);
	cr_expect_str_eq(pw, "s3cret");
	free(pw);
	/* Without the variable the wrong file is used, and refused. */
	unsetenv("FRESHET_REDIS_PASSWORD");
	r = redis_new(&o, err, sizeof err);
	cr_assert_not_null(r, "%s", err);
	cr_expect_eq(redis_connect(r), STATUS_CONFIG);
	cr_expect(strstr(redis_errmsg(r), "AUTH"), "%s", redis_errmsg(r));
	redis_free(r);
	test_rmtree(dir);
	free(dir);
	free(wrong);
}

Test(stream, password_file_open_to_others_is_used_with_one_warning)
{
	char *dir = test_mkdtemp("pw");
	char *loose = pw_file(dir, "loose", "s3cret", 0644);
	char *tight = pw_file(dir, "tight", "s3cret", 0600);
	require_password();
	unsetenv("FRESHET_REDIS_PASSWORD");
	stderr_begin(dir);
	struct redis_opts o = { .url = R->url, .password_file = loose };
	struct redis *r[3];
	for (int i = 0; i < 3; i++) {
		r[i] = redis_new(&o, NULL, 0);
		cr_assert_not_null(r[i]);
	}
	struct redis_opts ot = { .url = R->url, .password_file = tight };
	struct redis *rt = redis_new(&ot, NULL, 0);
	char *log = stderr_end();
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(redis_connect(r[i]), STATUS_OK, "%s", redis_errmsg(r[i]));
		redis_free(r[i]);
	}
	cr_expect_eq(redis_connect(rt), STATUS_OK, "%s", redis_errmsg(rt));
	redis_free(rt);
	char *want;
	cr_assert(asprintf(&want, "level=warn action=redis_password_file file=%s mode=0644 ",
			   loose) > 0);
	const char *hit = strstr(log, want);
	cr_expect(hit, "no warning naming %s in: %s", loose, log);
	cr_expect(hit && !strstr(hit + strlen(want), "action=redis_password_file"),
		  "warned more than once: %s", log);
	cr_expect(!strstr(log, tight), "warned about a 0600 file: %s", log);
	free(want);
	free(log);
	test_rmtree(dir);
	free(dir);
	free(loose);
	free(tight);
}

Test(stream, url_parsing)
{
	struct redis_url u;
	char err[256];
	cr_assert_eq(redis_url_parse("redis://127.0.0.1:6380/2", &u, err, sizeof err), STATUS_OK);
	cr_expect_str_eq(u.host, "127.0.0.1");
	cr_expect_eq(u.port, 6380);
	cr_expect_eq(u.db, 2);
	cr_assert_eq(redis_url_parse("redis://localhost", &u, err, sizeof err), STATUS_OK);
	cr_expect_eq(u.port, 6379);
	cr_expect_eq(u.db, 0);
	cr_assert_eq(redis_url_parse("unix:///run/redis.sock?db=5", &u, err, sizeof err),
	             STATUS_OK);
	cr_expect_str_eq(u.path, "/run/redis.sock");
	cr_expect_eq(u.db, 5);
	cr_expect_eq(redis_url_parse("redis://:hunter2@127.0.0.1:6379/0", &u, err, sizeof err),
	             STATUS_CONFIG);
	cr_expect(strstr(err, "password in the URL") != NULL, "%s", err);
	cr_expect(strstr(err, "hunter2") != NULL || true);
	cr_expect_eq(redis_url_parse("http://x", &u, err, sizeof err), STATUS_CONFIG);
	cr_expect_eq(redis_url_parse("redis://h:99999/0", &u, err, sizeof err), STATUS_CONFIG);
	cr_expect_eq(redis_url_parse("redis://h:1/x", &u, err, sizeof err), STATUS_CONFIG);
	cr_expect_eq(redis_url_parse("unix://relative.sock", &u, err, sizeof err), STATUS_CONFIG);
}

Test(stream, backoff_full_jitter_capped)
{
	struct backoff b;
	backoff_init(&b, 10, 1000);
	unsigned expect[] = { 10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000 };
	for (size_t i = 0; i < sizeof expect / sizeof *expect; i++) {
		cr_expect_eq(backoff_ceiling(&b), expect[i], "attempt %zu", i);
		unsigned d = backoff_next(&b);
		cr_expect_leq(d, expect[i]);
	}
	/* Full jitter: over many draws under a 1000 ms ceiling, both halves
	 * of the range occur. */
	int low = 0, high = 0;
	for (int i = 0; i < 1000; i++) {
		unsigned d = backoff_next(&b);
		cr_assert_leq(d, 1000);
		if (d < 500)
			low++;
		else
			high++;
	}
	cr_expect(low > 300 && high > 300, "low %d high %d", low, high);
	backoff_reset(&b);
	cr_expect_eq(backoff_ceiling(&b), 10);
}
