/* SPDX-License-Identifier: MIT */
/*
 * test-sentinel.c: freshet-worker across a Redis primary failover.
 *
 * A redis-server primary, one replica and three sentinels (redis-server
 * --sentinel) run on 127.0.0.1; the worker and reindex-page know only the
 * sentinels ([redis] sentinels, master_name).  Pages are edited through a
 * real MediaWiki's API and each change is published to the primary the
 * sentinels name, as a publisher following Sentinel would.  Halfway
 * through, the replication link is cut and, a few edits later, the
 * primary is killed with SIGKILL; the sentinels promote the replica, the
 * worker follows it without a restart and the later edits are indexed.
 * The events that the old primary acknowledged after the cut are lost with
 * it: the test finds them (entries missing on the new primary) and replays
 * their pages with `reindex-page --queue`, as an operator would.  Then the
 * fence counters are set back below the shards' tokens (INCRs lost in a
 * failover) and a new worker must raise every one before it writes.  At the end every page must be indexed at MediaWiki's
 * latest revision, with nothing pending.  The numbers (events published,
 * lost, handled more than once, the failover time) are printed, for
 * doc/operations.md.  Smaller tests check the connection's side alone: a
 * -READONLY reply, and sentinels that do not answer.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mw.h"
#include "now.h"
#include "redis.h"
#include "shard.h"
#include "testsupport.h"
#include "xapian-shim.h"

#define WIKI "testwiki"
#define SHARDS 4
#define MASTER "freshet-test"
#define PAGES 24
#define ROUNDS 6
/* Edits published between the replication cut and the primary's death. */
#define CUT_EDITS 3

/* One event as published: where it went and under which id. */
struct pub {
	long page_id;
	int port;          /* the primary that acknowledged it */
	char id[48];       /* its stream entry id */
};

struct env {
	char *dir;
	struct test_redis *primary, *replica;
	struct test_sentinels *sentinels;
	struct mw *mw;
	char conf[512], log[512], data[512];
	int metrics_port;
	pid_t worker;
	struct pub *pubs;
	size_t n_pubs, cap_pubs;
	long ids[PAGES];
	char titles[PAGES][32];
};

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static redisContext *tcp(int port)
{
	struct timeval tv = { 0, 500000 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
		return c;
	if (c)
		redisFree(c);
	return NULL;
}

static bool is_primary(redisContext *c)
{
	redisReply *r = redisCommand(c, "ROLE");
	bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		  strcmp(r->element[0]->str, "master") == 0;
	if (r)
		freeReplyObject(r);
	return ok;
}

/* Publishes a page event of kind to the primary the sentinels name now,
 * retrying (as the extension's spool would) until one takes it. */
static void publish(struct env *e, const char *kind, long page_id, const char *title,
		    long rev)
{
	char *ev = test_event(kind, WIKI, page_id, title, rev);
	double end = now_s() + 60;
	while (now_s() < end) {
		int port = test_sentinels_primary(e->sentinels);
		redisContext *c = port ? tcp(port) : NULL;
		redisReply *r = NULL;
		if (c && is_primary(c))
			r = redisCommand(c, "XADD freshet:{" WIKI ":p%ld} * event %s",
					 page_id % SHARDS, ev);
		if (r && r->type == REDIS_REPLY_STRING) {
			if (e->n_pubs == e->cap_pubs) {
				e->cap_pubs = e->cap_pubs ? 2 * e->cap_pubs : 64;
				e->pubs = realloc(e->pubs, e->cap_pubs * sizeof *e->pubs);
			}
			struct pub *p = &e->pubs[e->n_pubs++];
			p->page_id = page_id;
			p->port = port;
			snprintf(p->id, sizeof p->id, "%s", r->str);
			freeReplyObject(r);
			redisFree(c);
			free(ev);
			return;
		}
		if (r)
			freeReplyObject(r);
		if (c)
			redisFree(c);
		msleep(100);
	}
	cr_assert_fail("no primary took an event for 60 s");
}

static void write_conf(struct env *e)
{
	FILE *f = fopen(e->conf, "w");
	cr_assert_not_null(f);
	/* The sentinels name the primary; the URL gives only the database. */
	fprintf(f,
		"[redis]\nurl = redis://127.0.0.1:1/0\nsentinels = %s\nmaster_name = " MASTER "\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\nbatch = 50\n"
		"commit_docs = 100\ncommit_ms = 200\nmax_deliveries = 3\n"
		"lease_ms = 2000\nshutdown_timeout_ms = 15000\n"
		"metrics_listen = 127.0.0.1:%d\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = %d\n"
		"namespaces = 0\nconcurrency = 4\nrate = 0\n",
		e->sentinels->list, e->data, e->metrics_port, mw_api_url(e->mw), SHARDS);
	fclose(f);
}

/* Runs a built program with args (NULL-terminated), output to the worker's
 * log; returns its exit status. */
static int run_tool(struct env *e, const char *prog, const char *const args[])
{
	pid_t pid = test_spawn(prog, args, e->log);
	int ws;
	waitpid(pid, &ws, 0);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void worker_start(struct env *e)
{
	const char *args[] = { "--config", e->conf, NULL };
	e->worker = test_spawn("freshet-worker", args, e->log);
}

static struct env *env_start(void)
{
	struct env *e = calloc(1, sizeof *e);
	e->dir = test_mkdtemp("sentinel-env");
	e->primary = test_redis_start();
	e->replica = test_redis_start_replica(e->primary);
	e->sentinels = test_sentinels_start(e->primary, MASTER, 3);
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en" };
	e->mw = mw_start(&o);
	snprintf(e->conf, sizeof e->conf, "%s/freshet.conf", e->dir);
	snprintf(e->log, sizeof e->log, "%s/worker.log", e->dir);
	snprintf(e->data, sizeof e->data, "%s/data", e->dir);
	e->metrics_port = test_free_port();
	write_conf(e);
	return e;
}

static void env_stop(struct env *e)
{
	if (e->worker > 0) {
		kill(e->worker, SIGKILL);
		waitpid(e->worker, NULL, 0);
	}
	mw_stop(e->mw);
	test_sentinels_stop(e->sentinels);
	test_redis_stop(e->replica);
	test_redis_stop(e->primary);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(e->dir);
	free(e->dir);
	free(e->pubs);
	free(e);
}

/* Sum of the worker's metric samples whose line starts with prefix. */
static double metric_sum(struct env *e, const char *prefix)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "curl -sf http://127.0.0.1:%d/metrics", e->metrics_port);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	double sum = 0;
	char line[1024];
	while (fgets(line, sizeof line, f))
		if (strncmp(line, prefix, strlen(prefix)) == 0 && strrchr(line, ' '))
			sum += strtod(strrchr(line, ' ') + 1, NULL);
	pclose(f);
	return sum;
}

/* The rev_id of page id's document, 0 when there is none. */
static long indexed_rev(struct xdb *db, long id)
{
	char q[32];
	snprintf(q, sizeof q, "Q%ld", id);
	struct xdoc *d = NULL;
	if (xdb_get(db, q, &d) != STATUS_OK)
		return 0;
	char *data = NULL;
	size_t len = 0;
	xdoc_get_data(d, &data, &len);
	json_t *j = json_loadb(data ? data : "", len, JSON_DISABLE_EOF_CHECK, NULL);
	long rev = (long)json_integer_value(json_object_get(j, "rev_id"));
	json_decref(j);
	free(data);
	xdoc_free(d);
	return rev;
}

/* NULL when every page is indexed at MediaWiki's latest revision and the
 * primary at port has nothing pending or undelivered; else why not. */
static const char *differs(struct env *e, int port)
{
	static char why[512];
	why[0] = '\0';
	struct shard_set *set = shard_set_new(e->data, WIKI);
	if (shard_set_open(set) != STATUS_OK) {
		snprintf(why, sizeof why, "shards: %s", shard_set_errmsg(set));
		shard_set_free(set);
		return why;
	}
	for (int i = 0; i < PAGES && !why[0]; i++) {
		struct mw_page_info info;
		mw_page_info_id(e->mw, e->ids[i], &info);
		long rev = indexed_rev(shard_set_db(set), e->ids[i]);
		if (rev != info.rev_id)
			snprintf(why, sizeof why, "page %ld: indexed rev %ld, MediaWiki rev %ld",
				 e->ids[i], rev, info.rev_id);
	}
	shard_set_free(set);
	redisContext *c = tcp(port);
	for (int p = 0; p < SHARDS && !why[0] && c; p++) {
		char key[64];
		snprintf(key, sizeof key, "freshet:{" WIKI ":p%d}", p);
		test_stream_drained(c, key, why, sizeof why);
	}
	if (c)
		redisFree(c);
	else if (!why[0])
		snprintf(why, sizeof why, "primary at %d does not answer", port);
	return why[0] ? why : NULL;
}

/* Cuts the replica off its primary for good (a replication link that
 * fails, as when the network drops it): the replica refuses to resync
 * because it now sends a password the primary does not have.  Writes the
 * primary acknowledges from now on are exactly the ones a failover loses. */
static void cut_replication(struct test_redis *replica)
{
	redisContext *c = tcp(replica->port);
	cr_assert_not_null(c);
	redisReply *r = redisCommand(c, "CONFIG SET masterauth not-the-primarys");
	cr_assert(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	r = redisCommand(c, "CLIENT KILL TYPE master");
	cr_assert_not_null(r);
	freeReplyObject(r);
	double end = now_s() + 10;
	bool down = false;
	while (!down && now_s() < end) {
		r = redisCommand(c, "INFO replication");
		down = r && r->type == REDIS_REPLY_STRING &&
		       strstr(r->str, "master_link_status:down");
		if (r)
			freeReplyObject(r);
		if (!down)
			msleep(20);
	}
	redisFree(c);
	cr_assert(down, "the replica did not lose its primary");
}

/* Stops the worker with SIGTERM and asserts that it exits 0. */
static void worker_stop(struct env *e)
{
	kill(e->worker, SIGTERM);
	int ws = 0;
	waitpid(e->worker, &ws, 0);
	e->worker = 0;
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0, "worker exit status %d; log in %s",
		  ws, e->log);
}

/* How many times needle occurs in the worker's log. */
static size_t count_in_log(struct env *e, const char *needle)
{
	char *log = test_read_file(e->log, NULL);
	size_t n = 0;
	for (const char *s = log; s && (s = strstr(s, needle)); s++)
		n++;
	free(log);
	return n;
}

/* Edits page i through the API and publishes the change. */
static void edit(struct env *e, int i, int round)
{
	char text[128];
	long id, rev;
	snprintf(text, sizeof text, "The river %s rose in round %d of the failover.",
		 e->titles[i], round);
	mw_edit(e->mw, e->titles[i], text, &id, &rev);
	publish(e, "edit", id, e->titles[i], rev);
}

TestSuite(sentinel, .timeout = 600);

Test(sentinel, worker_follows_a_failover_and_converges)
{
	struct env *e = env_start();
	int old_port = e->primary->port, new_port = e->replica->port;
	cr_assert_eq(test_sentinels_primary(e->sentinels), old_port);
	worker_start(e);

	const char *titles[PAGES], *texts[PAGES];
	long revs[PAGES];
	for (int i = 0; i < PAGES; i++) {
		snprintf(e->titles[i], sizeof e->titles[i], "Failover %d", i);
		titles[i] = e->titles[i];
		texts[i] = "A page that lives through a Redis failover.";
	}
	mw_seed(e->mw, PAGES, titles, texts, e->ids, revs);
	for (int i = 0; i < PAGES; i++)
		publish(e, "create", e->ids[i], e->titles[i], revs[i]);

	/* Edits flow; the primary dies in the middle of round 2, with the
	 * worker reading, writing and acking. */
	double killed = 0, promoted = 0;
	for (int round = 1; round <= ROUNDS; round++) {
		for (int i = 0; i < PAGES; i++) {
			if (round == 2 && i == PAGES / 2)
				cut_replication(e->replica);
			if (round == 2 && i == PAGES / 2 + CUT_EDITS) {
				test_redis_kill9(e->primary);
				killed = now_s();
			}
			edit(e, i, round);
			if (killed && !promoted && e->pubs[e->n_pubs - 1].port == new_port)
				promoted = now_s();
		}
	}
	cr_assert_gt(promoted, 0, "the replica was never promoted");
	cr_assert_eq(test_sentinels_primary(e->sentinels), new_port);

	/* Lost: acknowledged by the old primary, missing on the new one. */
	redisContext *c = tcp(new_port);
	cr_assert_not_null(c);
	size_t lost = 0, on_old = 0;
	char ids[30][24];
	int n_ids = 0;
	for (size_t k = 0; k < e->n_pubs; k++) {
		struct pub *p = &e->pubs[k];
		if (p->port != old_port)
			continue;
		on_old++;
		redisReply *r = redisCommand(c, "XRANGE freshet:{" WIKI ":p%ld} %s %s",
					     p->page_id % SHARDS, p->id, p->id);
		cr_assert_not_null(r);
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
			lost++;
			if (n_ids < 30)
				snprintf(ids[n_ids++], sizeof ids[0], "%ld", p->page_id);
		}
		freeReplyObject(r);
	}
	redisFree(c);

	/* Every edit the old primary took after the cut is lost. */
	cr_assert_geq(lost, CUT_EDITS, "%zu events lost, %d expected", lost, CUT_EDITS);

	/* A replay of the lost pages, through the sentinels too. */
	{
		const char *args[70] = { "--config", e->conf, "--wiki", WIKI, "--queue" };
		int n = 5;
		for (int i = 0; i < n_ids; i++) {
			args[n++] = "--page-id";
			args[n++] = ids[i];
		}
		args[n] = NULL;
		cr_assert_eq(run_tool(e, "reindex-page", args), 0,
			     "reindex-page --queue failed; log in %s", e->log);
	}

	double end = now_s() + 120;
	const char *why = NULL;
	while (now_s() < end && (why = differs(e, new_port)))
		msleep(500);
	cr_assert_null(why, "the index did not converge after the failover: %s (log %s)",
		       why ? why : "", e->log);

	/* The same worker all along. */
	cr_assert_eq(waitpid(e->worker, NULL, WNOHANG), 0, "the worker exited; log in %s",
		     e->log);
	char *log = test_read_file(e->log, NULL);
	char want[64];
	snprintf(want, sizeof want, "address=127.0.0.1:%d previous=127.0.0.1:%d", new_port,
		 old_port);
	cr_assert(log && strstr(log, want), "the worker never logged the new primary (%s)",
		  e->log);
	/* No connection went to the URL's address (port 1, where nothing
	 * listens): the consistency loop, too, asks the sentinels. */
	cr_assert(!strstr(log, "127.0.0.1:1:"), "a connection to the URL's address; log in %s",
		  e->log);

	/* Entries on the new primary (the survivors and the replay) are each
	 * handled once at least; what the worker handled beyond them was
	 * handled again (acks lost with the old primary, jobs aborted with a
	 * lost lease) or read from the old primary before it died. */
	size_t surviving = e->n_pubs - lost;
	double handled = metric_sum(e, "freshet_events_total{");
	free(log);
	size_t raised = count_in_log(e, "action=fence_raise");
	/* Printed, not logged as a warning: Criterion fails a run that
	 * warned. */
	fprintf(stderr, "test-sentinel: %zu events published (%zu to the old primary), "
		"%zu lost and replayed, %.0f handled for %zu entries on the new primary "
		"(%.0f more), %zu fence raises; primary killed to first write on the new "
		"one: %.1f s\n", e->n_pubs, on_old, lost, handled, surviving + (size_t)n_ids,
		handled - (double)(surviving + (size_t)n_ids), raised, promoted - killed);

	worker_stop(e);

	/* Fence counters that fell behind the shards' tokens (their INCRs
	 * lost in a failover): a new worker must raise each one before it
	 * writes, or its commits would carry a token already used. */
	redisContext *c2 = tcp(new_port);
	cr_assert_not_null(c2);
	for (int p = 0; p < SHARDS; p++) {
		redisReply *r = redisCommand(c2, "SET freshet:{" WIKI ":p%d}:fence 0", p);
		cr_assert_not_null(r);
		freeReplyObject(r);
	}
	redisFree(c2);
	worker_start(e);
	for (int i = 0; i < PAGES; i++)
		edit(e, i, ROUNDS + 1);
	end = now_s() + 120;
	while (now_s() < end && (why = differs(e, new_port)))
		msleep(500);
	cr_assert_null(why, "the index did not converge with raised tokens: %s (log %s)",
		       why ? why : "", e->log);
	cr_assert_geq(count_in_log(e, "action=fence_raise") - raised, SHARDS,
		      "a partition was written without raising its token; log in %s", e->log);
	worker_stop(e);
	env_stop(e);
}

/* A primary demoted under a connection answers writes with -READONLY: the
 * connection is dropped, so that the next command finds the new primary. */
Test(sentinel, readonly_reply_drops_the_connection)
{
	struct test_redis *a = test_redis_start(), *b = test_redis_start();
	struct redis_opts o = { .url = a->url };
	struct redis *r = redis_new(&o, NULL, 0);
	enum status st;
	redisReply *rep = redis_command(r, &st, "SET k v");
	cr_assert_not_null(rep, "%s", redis_errmsg(r));
	freeReplyObject(rep);
	rep = redis_command(r, &st, "REPLICAOF 127.0.0.1 %d", b->port);
	cr_assert_not_null(rep, "%s", redis_errmsg(r));
	freeReplyObject(rep);
	rep = redis_command(r, &st, "SET k w");
	cr_assert_null(rep);
	cr_assert_eq(st, STATUS_TRANSIENT);
	cr_assert(strstr(redis_errmsg(r), "READONLY"), "%s", redis_errmsg(r));
	cr_assert_null(redis_context(r));
	redis_free(r);
	test_redis_stop(b);
	test_redis_stop(a);
}

/* No sentinel answers: a transient failure naming each one, within the
 * connect timeouts. */
Test(sentinel, unreachable_sentinels_are_named)
{
	char list[64], err[256] = "";
	int p1 = test_free_port(), p2 = test_free_port();
	snprintf(list, sizeof list, "127.0.0.1:%d, 127.0.0.1:%d", p1, p2);
	struct redis_opts o = { .url = "redis://127.0.0.1/0", .sentinels = list,
				.master_name = "m", .connect_timeout_ms = 500 };
	struct redis *r = redis_new(&o, err, sizeof err);
	cr_assert_not_null(r, "%s", err);
	double t0 = now_s();
	cr_assert_eq(redis_connect(r), STATUS_TRANSIENT);
	cr_assert_lt(now_s() - t0, 2.0);
	char a1[32], a2[32];
	snprintf(a1, sizeof a1, "127.0.0.1:%d", p1);
	snprintf(a2, sizeof a2, "127.0.0.1:%d", p2);
	cr_assert(strstr(redis_errmsg(r), "primary 'm'") && strstr(redis_errmsg(r), a1) &&
		  strstr(redis_errmsg(r), a2), "%s", redis_errmsg(r));
	redis_free(r);
	o.master_name = NULL;
	cr_assert_null(redis_new(&o, err, sizeof err));
	cr_assert_str_eq(err, "sentinels need a master_name");
}
