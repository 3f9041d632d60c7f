/* SPDX-License-Identifier: MIT */
/*
 * test-replication.c: shards copied between two hosts by Xapian's
 * replication, searched on the copies, and a copy promoted to writer.
 *
 * Two "hosts" on loopback: each has its own data_dir, its own
 * xapian-replicate-server (on a free 127.0.0.1 port, serving that
 * data_dir) and its own freshet-worker, whose configuration advertises
 * that server and replicates the wiki ([replication]); both share one
 * Redis and a real MediaWiki, whose page changes the test publishes as
 * the extension would.  Host A starts first and writes every partition;
 * when B starts, A gives B its share.  Each host then writes some shards
 * and replicates the others, and a search on either host (search =
 * replica) finds every edit.  Then A's worker is killed with SIGKILL: B
 * takes A's partitions after lease_ms, promotes its replicas
 * (action=promote) and indexes the later edits.  A second test rebuilds
 * the wiki on the writer (reindex-page --rebuild) and finds the rebuilt
 * index, with a page no event announced, on the replica.  A third loses
 * the writer's host before the other host copied anything: that host
 * says so (action=no_replica) and queues every page of the partition
 * again, which its worker indexes.
 */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mw.h"
#include "now.h"
#include "shard.h"
#include "testsupport.h"
#include "xapian-shim.h"

#define WIKI "testwiki"
#define PAGES 8
#define XAPIAN_REPLICATE_SERVER "/usr/bin/xapian-replicate-server"

struct host {
	char name;
	char data[512], conf[512], log[512], slog[512];
	int port;            /* its xapian-replicate-server */
	int search_port;     /* its freshet-searchd, when started */
	pid_t server, worker, searchd;
};

struct env {
	char *dir;
	struct test_redis *redis;
	struct mw *mw;
	redisContext *rc;
	int shards;
	struct host h[2];
	long ids[PAGES], revs[PAGES];
};

static void write_conf(struct env *e, struct host *h)
{
	FILE *f = fopen(h->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = %s\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\nbatch = 50\n"
		"commit_docs = 100\ncommit_ms = 200\nlease_ms = 2000\n"
		"shutdown_timeout_ms = 10000\n\n"
		"[searchd]\nlisten = 127.0.0.1:%d\n\n"
		"[replication]\nchangesets = 100\nadvertise = 127.0.0.1:%d\n"
		"wikis = " WIKI "\ninterval_s = 1\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = %d\n"
		"namespaces = 0\nconcurrency = 4\nrate = 0\nsearch = replica\n",
		e->redis->url, h->data, h->search_port, h->port, mw_api_url(e->mw), e->shards);
	fclose(f);
}

static struct env *env_start(int shards)
{
	struct env *e = calloc(1, sizeof *e);
	e->dir = test_mkdtemp("replication");
	e->shards = shards;
	e->redis = test_redis_start();
	e->rc = redisConnect("127.0.0.1", e->redis->port);
	cr_assert(e->rc && !e->rc->err);
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en" };
	e->mw = mw_start(&o);
	for (int i = 0; i < 2; i++) {
		struct host *h = &e->h[i];
		h->name = (char)('A' + i);
		snprintf(h->data, sizeof h->data, "%s/host-%c", e->dir, h->name);
		snprintf(h->conf, sizeof h->conf, "%s/host-%c.conf", e->dir, h->name);
		snprintf(h->log, sizeof h->log, "%s/worker-%c.log", e->dir, h->name);
		snprintf(h->slog, sizeof h->slog, "%s/server-%c.log", e->dir, h->name);
		cr_assert(mkdir(h->data, 0750) == 0);
		h->port = test_free_port();
		h->search_port = test_free_port();
		write_conf(e, h);
		char port[16];
		snprintf(port, sizeof port, "%d", h->port);
		const char *args[] = { "-I", "127.0.0.1", "-p", port, h->data, NULL };
		h->server = test_spawn(XAPIAN_REPLICATE_SERVER, args, h->slog);
	}
	return e;
}

static void env_stop(struct env *e)
{
	for (int i = 0; i < 2; i++) {
		struct host *h = &e->h[i];
		if (h->worker > 0) {
			/* A clean stop: the worker stops its replica clients. */
			kill(h->worker, SIGCONT);
			kill(h->worker, SIGTERM);
			waitpid(h->worker, NULL, 0);
		}
		test_stop_pid(&h->searchd);
		test_stop_pid(&h->server);
	}
	/* The replica clients of a worker killed with SIGKILL get their
	 * SIGTERM from the kernel and may still be writing for a moment:
	 * removing the directory under them would leave part of it. */
	sleep_ms(1000);
	redisFree(e->rc);
	mw_stop(e->mw);
	test_redis_stop(e->redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(e->dir);
	free(e->dir);
	free(e);
}

static void worker_start(struct host *h)
{
	const char *args[] = { "--config", h->conf, NULL };
	h->worker = test_spawn("freshet-worker", args, h->log);
}

/* Publishes a page event as the extension would. */
static void publish(struct env *e, const char *kind, long page_id, const char *title,
		    long rev)
{
	char *ev = test_event(kind, WIKI, page_id, title, rev);
	redisReply *r = redisCommand(e->rc, "XADD freshet:{" WIKI ":p%ld} * event %s",
				     page_id % e->shards, ev);
	cr_assert(r && r->type == REDIS_REPLY_STRING, "XADD failed");
	freeReplyObject(r);
	free(ev);
}

/* The published writer of partition, "" when none. */
static void writer_of(struct env *e, int partition, char *out, size_t len)
{
	redisReply *r = redisCommand(e->rc, "GET freshet:{" WIKI ":p%d}:writer", partition);
	snprintf(out, len, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
	if (r)
		freeReplyObject(r);
}

/* Waits until partition's published writer is host h. */
static void wait_writer(struct env *e, int partition, const struct host *h)
{
	char want[600], got[600] = "";
	snprintf(want, sizeof want, "127.0.0.1:%d " WIKI "/current/shard-%d", h->port,
		 partition);
	for (double end = now_s() + 60; now_s() < end; sleep_ms(100)) {
		writer_of(e, partition, got, sizeof got);
		if (strcmp(got, want) == 0)
			return;
	}
	cr_assert_fail("partition %d: writer \"%s\", want \"%s\" (logs in %s)", partition,
		       got, want, e->dir);
}

/* The rev_id of page id's document as host h's search sees it (replicas
 * first, as search = replica does), 0 when none, -1 when it cannot open. */
static long host_rev(const struct host *h, long id)
{
	struct shard_set *set = shard_set_new(h->data, WIKI);
	shard_set_use_replicas(set);
	long rev = -1;
	if (shard_set_open(set) == STATUS_OK) {
		rev = 0;
		char q[32];
		snprintf(q, sizeof q, "Q%ld", id);
		struct xdoc *d = NULL;
		if (xdb_get(shard_set_db(set), q, &d) == STATUS_OK) {
			char *data = NULL;
			size_t len = 0;
			xdoc_get_data(d, &data, &len);
			json_t *j = json_loadb(data ? data : "", len, JSON_DISABLE_EOF_CHECK, NULL);
			rev = (long)json_integer_value(json_object_get(j, "rev_id"));
			json_decref(j);
			free(data);
			xdoc_free(d);
		}
	}
	shard_set_free(set);
	return rev;
}

/* Waits until host h's search holds page id at rev; returns the seconds
 * it took. */
static double wait_rev(struct env *e, const struct host *h, long id, long rev)
{
	double start = now_s();
	long got = -1;
	for (double end = start + 60; now_s() < end; sleep_ms(100))
		if ((got = host_rev(h, id)) == rev)
			return now_s() - start;
	cr_assert_fail("host %c: page %ld at rev %ld, want %ld (logs in %s)", h->name, id,
		       got, rev, e->dir);
	return 0;
}

/* Host h's freshet-searchd answer to q (caller frees). */
static char *searchd_get(const struct host *h, const char *q)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "curl -s 'http://127.0.0.1:%d/v1/" WIKI "/search?q=%s'",
		 h->search_port, q);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	pclose(f);
	return strdup(buf);
}

/* Creates PAGES pages in MediaWiki and publishes their creation. */
static void seed(struct env *e, const char *word)
{
	const char *titles[PAGES], *texts[PAGES];
	char tb[PAGES][64], xb[PAGES][128];
	for (int i = 0; i < PAGES; i++) {
		snprintf(tb[i], sizeof tb[i], "Replicated page %d", i);
		snprintf(xb[i], sizeof xb[i], "This page holds the word %s%c.", word, 'a' + i);
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	mw_seed(e->mw, PAGES, titles, texts, e->ids, e->revs);
	for (int i = 0; i < PAGES; i++)
		publish(e, "create", e->ids[i], titles[i], e->revs[i]);
}

/* How many times needle occurs in file path. */
static size_t count_in(const char *path, const char *needle)
{
	char *s = test_read_file(path, NULL);
	size_t n = 0;
	for (const char *p = s; p && (p = strstr(p, needle)); p++)
		n++;
	free(s);
	return n;
}

/* Runs command, returns its exit status and (if out) its output. */
static int run(const char *cmd, char **out)
{
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	int ws = pclose(f);
	if (out)
		*out = strdup(buf);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

/* The live slot of host h's replica of shard n, or NULL. */
static char *replica_live(const struct host *h, unsigned n)
{
	struct shard_set *set = shard_set_new(h->data, WIKI);
	char *live = NULL;
	if (shard_set_replica_live(set, n, &live) != STATUS_OK)
		live = NULL;
	shard_set_free(set);
	return live;
}

/* Live documents of host h's own shard n (its current generation). */
static unsigned long local_docs(const struct host *h, unsigned n)
{
	struct shard_set *set = shard_set_new(h->data, WIKI);
	struct shard_stats st = { 0 };
	cr_assert(shard_set_stats(set, n, &st) == STATUS_OK, "%s", shard_set_errmsg(set));
	shard_set_free(set);
	return (unsigned long)st.docs;
}

/* The index of a page of partition p among e->ids. */
static int page_in(const struct env *e, int p)
{
	for (int i = 0; i < PAGES; i++)
		if (e->ids[i] % e->shards == p)
			return i;
	cr_assert_fail("no seeded page in partition %d", p);
	return -1;
}

Test(replication, edits_reach_replicas_and_a_replica_is_promoted, .timeout = 300)
{
	struct env *e = env_start(2);
	struct host *a = &e->h[0], *b = &e->h[1];
	worker_start(a);
	wait_writer(e, 0, a);
	wait_writer(e, 1, a);
	/* A alone writes both; once B runs, A gives B its share. */
	worker_start(b);
	wait_writer(e, 1, b);
	wait_writer(e, 0, a);

	seed(e, "flumtrix");
	for (int i = 0; i < PAGES; i++)
		for (int k = 0; k < 2; k++)
			wait_rev(e, &e->h[k], e->ids[i], e->revs[i]);

	/* B finds A's pages through its replica: its own shard 0 is empty. */
	char *live_b = replica_live(b, 0), *live_a = replica_live(a, 1);
	cr_assert_not_null(live_b, "B has no replica of shard 0");
	cr_assert_not_null(live_a, "A has no replica of shard 1");
	cr_assert_eq(local_docs(b, 0), 0);
	cr_assert_eq(local_docs(a, 1), 0);
	char cmd[2048];
	const char *live[] = { live_a, live_b };
	for (int k = 0; k < 2; k++) {
		snprintf(cmd, sizeof cmd, "xapian-check %s 2>&1", live[k]);
		char *out = NULL;
		cr_assert_eq(run(cmd, &out), 0, "%s: %s", cmd, out);
		free(out);
	}
	free(live_a);
	free(live_b);

	/* What a user of host B runs. */
	int i0 = page_in(e, 0);
	snprintf(cmd, sizeof cmd, "%s/freshet-search --config %s --wiki " WIKI " flumtrix%c",
		 getenv("FRESHET_BUILDDIR"), b->conf, 'a' + i0);
	char *out = NULL;
	cr_assert_eq(run(cmd, &out), 0, "%s", out);
	char title[64];
	snprintf(title, sizeof title, "Replicated page %d", i0);
	cr_assert(strstr(out, title), "B's search for A's page: %s", out);
	free(out);

	/* An edit of A's shard reaches B within a few seconds. */
	long rev;
	mw_edit(e->mw, title, "Edited: the word quorbleflax is new here.", NULL, &rev);
	publish(e, "edit", e->ids[i0], title, rev);
	double took = wait_rev(e, b, e->ids[i0], rev);
	cr_assert(took < 15, "the edit took %.1f s to reach B", took);
	printf("an edit of A's shard was searchable on B after %.1f s\n", took);

	/* Status on either host names the writer and the replica of each
	 * shard, with the replica's revision and lag. */
	snprintf(cmd, sizeof cmd, "%s/freshetctl --config %s status",
		 getenv("FRESHET_BUILDDIR"), b->conf);
	cr_assert_eq(run(cmd, &out), 0, "%s", out);
	printf("%s", out);
	char row[128];
	for (int p = 0; p < 2; p++)
		for (int k = 0; k < 2; k++) {
			/* Shard 0 is A's, shard 1 is B's. */
			char host[32];
			snprintf(host, sizeof host, "127.0.0.1:%d", e->h[k].port);
			snprintf(row, sizeof row, "  %-6d %-24s %-8s", p, host,
				 p == k ? "writer" : "replica");
			cr_assert(strstr(out, row), "no row \"%s\" in:\n%s", row, out);
		}
	free(out);

	/* A dies: B takes its partition over, promotes its replica, and
	 * indexes what comes next. */
	kill(a->worker, SIGKILL);
	waitpid(a->worker, NULL, 0);
	a->worker = 0;
	wait_writer(e, 0, b);
	cr_assert(count_in(b->log, "partition=0 action=promote") >= 1,
		  "no promotion in %s", b->log);
	cr_assert_null(replica_live(b, 0), "B's replica of shard 0 is still there");
	cr_assert(local_docs(b, 0) > 0, "B's promoted shard 0 is empty");
	int i1 = page_in(e, 1);
	for (int k = 0; k < 2; k++) {
		int i = k ? i1 : i0;
		snprintf(title, sizeof title, "Replicated page %d", i);
		mw_edit(e->mw, title, "After the failover: zindlequop.", NULL, &rev);
		publish(e, "edit", e->ids[i], title, rev);
		wait_rev(e, b, e->ids[i], rev);
	}
	snprintf(cmd, sizeof cmd, "%s/freshet-search --config %s --wiki " WIKI " zindlequop",
		 getenv("FRESHET_BUILDDIR"), b->conf);
	cr_assert_eq(run(cmd, &out), 0, "%s", out);
	snprintf(title, sizeof title, "Replicated page %d", i0);
	cr_assert(strstr(out, title), "B's search after the failover: %s", out);
	free(out);
	env_stop(e);
}

Test(replication, a_rebuild_on_the_writer_reaches_the_replica, .timeout = 300)
{
	struct env *e = env_start(1);
	struct host *a = &e->h[0], *b = &e->h[1];
	worker_start(a);
	wait_writer(e, 0, a);
	worker_start(b);
	seed(e, "grobnitz");
	for (int i = 0; i < PAGES; i++)
		wait_rev(e, b, e->ids[i], e->revs[i]);
	/* A page no event announced: only the rebuild finds it. */
	long id, rev;
	mw_edit(e->mw, "Unannounced page", "Only a rebuild indexes vrelmquist.", &id, &rev);
	cr_assert_eq(host_rev(b, id), 0);
	/* A search service on B, its reader open on the replica's slot. */
	const char *sargs[] = { "--config", b->conf, NULL };
	char url[128], slog[600];
	snprintf(slog, sizeof slog, "%s/searchd-B.log", e->dir);
	b->searchd = test_spawn("freshet-searchd", sargs, slog);
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", b->search_port);
	test_wait_http(url, b->searchd, slog);
	char *got = searchd_get(b, "grobnitza");
	cr_assert(strstr(got, "Replicated page 0"), "searchd on B: %s", got);
	free(got);

	/* B's worker waits while the rebuild holds the wiki, so that A's
	 * worker takes the partition back; B's replica client goes on. */
	kill(b->worker, SIGSTOP);
	size_t taken = count_in(a->log, "action=lease_acquired");
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "%s/reindex-page --config %s --wiki " WIKI
		 " --rebuild >>%s/rebuild.log 2>&1", getenv("FRESHET_BUILDDIR"), a->conf,
		 e->dir);
	cr_assert_eq(run(cmd, NULL), 0, "reindex-page --rebuild failed (%s)", e->dir);
	for (double end = now_s() + 30;
	     count_in(a->log, "action=lease_acquired") == taken && now_s() < end; sleep_ms(100))
		;
	cr_assert(count_in(a->log, "action=lease_acquired") > taken,
		  "A did not take the partition back");
	kill(b->worker, SIGCONT);

	/* The new generation reaches B as a full copy. */
	double took = wait_rev(e, b, id, rev);
	printf("a rebuild on A was searchable on B after %.1f s\n", took);
	/* The running search service follows the replica to its new slot. */
	got = NULL;
	for (double end = now_s() + 30; now_s() < end; sleep_ms(200)) {
		free(got);
		got = searchd_get(b, "vrelmquist");
		if (strstr(got, "Unannounced page"))
			break;
	}
	cr_assert(strstr(got, "Unannounced page"), "searchd on B after the rebuild: %s", got);
	free(got);
	for (int i = 0; i < PAGES; i++)
		cr_assert_eq(host_rev(b, e->ids[i]), e->revs[i]);
	cr_assert_eq(count_in(b->log, "action=promote"), 0);
	char *live = replica_live(b, 0);
	cr_assert_not_null(live);
	snprintf(cmd, sizeof cmd, "xapian-check %s >/dev/null 2>&1", live);
	cr_assert_eq(run(cmd, NULL), 0, "xapian-check %s", live);
	free(live);
	env_stop(e);
}

Test(replication, a_host_without_a_replica_refills_the_shard, .timeout = 300)
{
	struct env *e = env_start(1);
	struct host *a = &e->h[0], *b = &e->h[1];
	worker_start(a);
	wait_writer(e, 0, a);
	seed(e, "plinketude");
	for (int i = 0; i < PAGES; i++)
		wait_rev(e, a, e->ids[i], e->revs[i]);
	/* Host A is gone, its server with it, before B ever copied its shard. */
	kill(a->worker, SIGKILL);
	waitpid(a->worker, NULL, 0);
	a->worker = 0;
	test_stop_pid(&a->server);
	worker_start(b);
	wait_writer(e, 0, b);
	/* B says so, and builds its shard again from the wiki's pages rather
	 * than serving its empty one as the index. */
	for (int i = 0; i < PAGES; i++)
		wait_rev(e, b, e->ids[i], e->revs[i]);
	cr_assert(count_in(b->log, "partition=0 action=no_replica") >= 1,
		  "no action=no_replica in %s", b->log);
	/* The seeded pages and the wiki's main page. */
	cr_assert(count_in(b->log, "action=refill_queued pages=9 complete=yes") == 1,
		  "no complete refill in %s", b->log);
	cr_assert_eq(count_in(b->log, "action=promote"), 0);
	env_stop(e);
}
