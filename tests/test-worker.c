/* SPDX-License-Identifier: MIT */
/*
 * test-worker.c: freshet-worker end to end, against a real redis-server and
 * a real MediaWiki with the Freshet extension publishing its changes.
 *
 * The worker is the real binary ($FRESHET_BUILDDIR/freshet-worker), run
 * with a generated configuration.  Pages are created in five languages
 * (en, de, fr, ru, ja) and then edited, deleted, undeleted, moved and
 * created at random through the API while the worker runs; afterwards the
 * shards must hold exactly MediaWiki's pages: one document per page with
 * MediaWiki's latest revision id and title, none for a deleted page, no
 * dead letters, nothing pending, and xapian-check clean.
 *
 * Size: FRESHET_TEST_PAGES and FRESHET_TEST_OPS; the defaults, 300 and
 * 1000, take a few minutes under ASan; smaller values make quick runs
 * while developing.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"
#include "mw.h"
#include "now.h"
#include "shard.h"
#include "testsupport.h"
#include "xapian-shim.h"

#define WIKI "testwiki"
#define SHARDS 4

struct env {
	char *dir;
	struct test_redis *redis;
	struct mw *mw;
	char conf[512];
	char log[512];
	char data[512];
	int metrics_port;
	pid_t worker;
	long log_start;     /* size of the log when the worker was started */
};

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : dflt;
}

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Writes the worker's configuration; extra is appended verbatim.  The
 * consistency loop is off: these tests check what the pipeline alone does
 * with events (tests/test-saneitize.c tests the loop). */
static void write_conf(struct env *e, const char *extra)
{
	FILE *f = fopen(e->conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = unix://%s\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\nbatch = 50\n"
		"commit_docs = 100\ncommit_ms = 200\nmax_deliveries = 3\n"
		"lease_ms = 2000\nshutdown_timeout_ms = 15000\n"
		"metrics_listen = 127.0.0.1:%d\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = %d\n"
		"namespaces = 0\nconcurrency = 4\nrate = 0\nsaneitize_days = 0\n%s",
		e->redis->socket, e->data, e->metrics_port, mw_api_url(e->mw), SHARDS,
		extra ? extra : "");
	fclose(f);
}

static struct env *env_start_ext(const char *extra_conf, bool extension)
{
	struct env *e = calloc(1, sizeof *e);
	e->dir = test_mkdtemp("worker");
	e->redis = test_redis_start();
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en", .freshet = extension,
			     .redis_socket = e->redis->socket, .partitions = SHARDS };
	e->mw = mw_start(&o);
	snprintf(e->conf, sizeof e->conf, "%s/freshet.conf", e->dir);
	snprintf(e->log, sizeof e->log, "%s/worker.log", e->dir);
	snprintf(e->data, sizeof e->data, "%s/data", e->dir);
	e->metrics_port = test_free_port();
	write_conf(e, extra_conf);
	return e;
}

static struct env *env_start(const char *extra_conf)
{
	return env_start_ext(extra_conf, true);
}

static void worker_start(struct env *e)
{
	struct stat st;
	e->log_start = stat(e->log, &st) == 0 ? (long)st.st_size : 0;
	const char *args[] = { "--config", e->conf, NULL };
	e->worker = test_spawn("freshet-worker", args, e->log);
}

/* Waits up to timeout_s for the worker to exit; returns its wait status,
 * or -1 if it is still running. */
static int worker_wait(struct env *e, double timeout_s)
{
	double end = now_s() + timeout_s;
	while (now_s() < end) {
		int ws;
		pid_t r = waitpid(e->worker, &ws, WNOHANG);
		if (r == e->worker) {
			e->worker = 0;
			return ws;
		}
		msleep(50);
	}
	return -1;
}

static void worker_kill9(struct env *e)
{
	if (e->worker <= 0)
		return;
	kill(e->worker, SIGKILL);
	waitpid(e->worker, NULL, 0);
	e->worker = 0;
}

/* True once the worker started last has logged its start (this
 * instance's part of the log: the log is shared by restarts). */
static bool worker_started(struct env *e)
{
	size_t len = 0;
	char *log = test_read_file(e->log, &len);
	bool up = log && (size_t)e->log_start <= len &&
		  strstr(log + e->log_start, "action=start ") != NULL;
	free(log);
	return up;
}

/* Stops the worker with SIGTERM and asserts it exits 0.  Like a service
 * manager, it signals only a worker that has started: one killed by a
 * SIGTERM before its main() could block the signal dies of it (under ASan,
 * starting takes a while; a test that sent SIGTERM right after a restart
 * saw exactly that). */
static void worker_term(struct env *e)
{
	cr_assert_gt(e->worker, 0);
	double end = now_s() + 30;
	while (now_s() < end && !worker_started(e))
		msleep(20);
	kill(e->worker, SIGTERM);
	int ws = worker_wait(e, 20);
	if (ws == -1)
		worker_kill9(e);
	cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "freshet-worker did not exit 0 on SIGTERM (status %d); log in %s",
		  ws, e->log);
}

static void env_stop(struct env *e)
{
	worker_kill9(e);
	mw_stop(e->mw);
	test_redis_stop(e->redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(e->dir);
	free(e->dir);
	free(e);
}

static redisContext *redis_conn(struct env *e)
{
	redisContext *c = redisConnectUnix(e->redis->socket);
	cr_assert(c && !c->err, "cannot connect to redis");
	return c;
}

static long long redis_int(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	cr_assert_not_null(r, "redis: %s", c->errstr);
	long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
	freeReplyObject(r);
	return v;
}

/* XADDs a page/change event of the given kind ("create", "edit": the
 * fixture of that name) for page id (title, revision rev) of wiki to its
 * partition p, as the extension would. */
static void xadd_event(redisContext *c, const char *wiki, long p, const char *kind,
		       long id, const char *title, long rev)
{
	char *ev = test_event(kind, wiki, id, title, rev);
	redisReply *r = redisCommand(c, "XADD freshet:{%s:p%ld} * event %s", wiki, p, ev);
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
	free(ev);
}

/* Pending (delivered, unacked) entries of partition p. */
static long long pending_count(redisContext *c, const char *wiki, int p)
{
	char key[128];
	snprintf(key, sizeof key, "freshet:{%s:p%d}", wiki, p);
	redisReply *r = redisCommand(c, "XPENDING %s freshet", key);
	long long n = -1;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		n = r->element[0]->integer;
	else if (r && r->type == REDIS_REPLY_ERROR)
		n = 0; /* no group yet: nothing pending */
	if (r)
		freeReplyObject(r);
	return n;
}

/* Entries not yet delivered to the group in partition p (its lag). */
static long long undelivered(redisContext *c, const char *wiki, int p)
{
	char key[128];
	snprintf(key, sizeof key, "freshet:{%s:p%d}", wiki, p);
	redisReply *r = redisCommand(c, "XINFO GROUPS %s", key);
	long long lag = 0;
	if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
		redisReply *g = r->element[0];
		for (size_t i = 0; i + 1 < g->elements; i += 2)
			if (strcmp(g->element[i]->str, "lag") == 0 &&
			    g->element[i + 1]->type == REDIS_REPLY_INTEGER)
				lag = g->element[i + 1]->integer;
	}
	if (r)
		freeReplyObject(r);
	return lag;
}

/* ------------------------------------------------------ MediaWiki truth */

struct page {
	long id;
	long rev;
	char title[512];
	char redirects[2048]; /* titles of the redirects to it, sorted, "|" */
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes the strings of JSON array arr (or of its objects' "title"),
 * sorted and joined by "|", into out. */
static void joined_titles(json_t *arr, char *out, size_t cap)
{
	size_t n = json_array_size(arr);
	const char **v = calloc(n ? n : 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		v[i] = json_is_string(e) ? json_string_value(e)
					 : json_string_value(json_object_get(e, "title"));
		if (!v[i])
			v[i] = "";
	}
	qsort(v, n, sizeof *v, cmp_str);
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "|" : "", v[i]);
	free(v);
}

/* Every page of namespace 0 that is no redirect, with its latest revision
 * and the redirects that point at it (generator=allpages; small batches
 * keep every page's redirect list in one answer). */
static size_t mw_truth(struct mw *mw, struct page **out)
{
	size_t n = 0, cap = 64;
	struct page *v = malloc(cap * sizeof *v);
	char cont[512] = "";
	for (;;) {
		char params[1024];
		snprintf(params, sizeof params,
			 "action=query&generator=allpages&gapnamespace=0&gaplimit=20"
			 "&gapfilterredir=nonredirects&prop=info%%7Credirects&rdlimit=max"
			 "%s%s", *cont ? "&gapcontinue=" : "", cont);
		json_t *a = mw_api(mw, false, params);
		json_t *pages = json_object_get(json_object_get(a, "query"), "pages");
		size_t i;
		json_t *pg;
		json_array_foreach(pages, i, pg) {
			/* The installer's Main Page never had an event. */
			if (json_integer_value(json_object_get(pg, "pageid")) == 1)
				continue;
			if (n == cap)
				v = realloc(v, (cap *= 2) * sizeof *v);
			v[n].id = (long)json_integer_value(json_object_get(pg, "pageid"));
			v[n].rev = (long)json_integer_value(json_object_get(pg, "lastrevid"));
			snprintf(v[n].title, sizeof v[n].title, "%s",
				 json_string_value(json_object_get(pg, "title")));
			joined_titles(json_object_get(pg, "redirects"), v[n].redirects,
				      sizeof v[n].redirects);
			n++;
		}
		json_t *c = json_object_get(json_object_get(a, "continue"), "gapcontinue");
		if (!c) {
			json_decref(a);
			break;
		}
		/* Titles in continuation are db keys; encode the few specials. */
		const char *s = json_string_value(c);
		size_t o = 0;
		for (; *s && o < sizeof cont - 4; s++) {
			unsigned char ch = (unsigned char)*s;
			if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')
				cont[o++] = (char)ch;
			else
				o += (size_t)snprintf(cont + o, sizeof cont - o, "%%%02X", ch);
		}
		cont[o] = '\0';
		json_decref(a);
	}
	*out = v;
	return n;
}

/* Compares the shards with MediaWiki.  Returns NULL when they agree, else
 * a description of the first difference (static buffer). */
static const char *compare(struct env *e, bool want_quiet_queue)
{
	static char why[1024];
	struct page *pages;
	size_t n = mw_truth(e->mw, &pages);
	struct shard_set *set = shard_set_new(e->data, WIKI);
	enum status st = shard_set_open(set);
	if (st != STATUS_OK) {
		snprintf(why, sizeof why, "shards not readable: %s", shard_set_errmsg(set));
		goto out;
	}
	struct xdb *db = shard_set_db(set);
	uint64_t count = 0;
	xdb_doc_count(db, &count);
	why[0] = '\0';
	for (size_t i = 0; i < n && !why[0]; i++) {
		char q[32];
		snprintf(q, sizeof q, "Q%ld", pages[i].id);
		struct xdoc *d = NULL;
		if (xdb_get(db, q, &d) != STATUS_OK) {
			snprintf(why, sizeof why, "page %ld '%s' rev %ld: no document",
				 pages[i].id, pages[i].title, pages[i].rev);
			break;
		}
		char *data = NULL, *dead = NULL;
		size_t len = 0, dead_len = 0;
		xdoc_get_value(d, SHARD_VALUE_DEAD, &dead, &dead_len);
		free(dead);
		if (dead_len) {
			snprintf(why, sizeof why, "page %ld '%s' rev %ld: document marked deleted",
				 pages[i].id, pages[i].title, pages[i].rev);
			xdoc_free(d);
			break;
		}
		xdoc_get_data(d, &data, &len);
		json_t *j = json_loadb(data ? data : "", len, JSON_DISABLE_EOF_CHECK, NULL);
		long rev = (long)json_integer_value(json_object_get(j, "rev_id"));
		const char *title = json_string_value(json_object_get(j, "title"));
		char rds[2048];
		joined_titles(json_object_get(j, "redirects"), rds, sizeof rds);
		if (rev != pages[i].rev || !title || strcmp(title, pages[i].title) != 0)
			snprintf(why, sizeof why,
				 "page %ld: document has rev %ld title '%s', MediaWiki rev %ld title '%s'",
				 pages[i].id, rev, title ? title : "(none)", pages[i].rev,
				 pages[i].title);
		else if (strcmp(rds, pages[i].redirects) != 0)
			snprintf(why, sizeof why,
				 "page %ld '%.100s': document has redirects '%.300s', MediaWiki '%.300s'",
				 pages[i].id, title, rds, pages[i].redirects);
		json_decref(j);
		free(data);
		xdoc_free(d);
	}
	/* Page 1 (Main Page) has no document: no event ever named it.  The
	 * count is Xapian's own, dead documents included: it matches once the
	 * idle worker has purged every deleted page. */
	if (!why[0] && count != n)
		snprintf(why, sizeof why, "%llu documents for %zu pages (a deleted page is still indexed or not yet purged)",
			 (unsigned long long)count, n);
	if (!why[0] && want_quiet_queue) {
		redisContext *c = redis_conn(e);
		for (int p = 0; p < SHARDS && !why[0]; p++) {
			long long pend = pending_count(c, WIKI, p);
			long long lag = undelivered(c, WIKI, p);
			if (pend != 0 || lag != 0)
				snprintf(why, sizeof why, "partition %d: %lld pending, %lld undelivered",
					 p, pend, lag);
		}
		redisFree(c);
	}
out:
	shard_set_free(set);
	free(pages);
	return why[0] ? why : NULL;
}

/* Polls until the shards agree with MediaWiki (asserting after timeout). */
static void converge(struct env *e, double timeout_s)
{
	double end = now_s() + timeout_s;
	const char *why = NULL;
	while (now_s() < end) {
		why = compare(e, true);
		if (!why)
			return;
		msleep(1000);
	}
	cr_assert_fail("shards did not converge in %.0f s: %s (worker log %s)",
		       timeout_s, why, e->log);
}

static void assert_no_dead_letters(struct env *e, const char *wiki)
{
	redisContext *c = redis_conn(e);
	long long n = redis_int(c, "XLEN freshet:{%s}:dead", wiki);
	redisFree(c);
	cr_assert_eq(n, 0, "%lld dead letters for %s", n, wiki);
}

static void assert_xapian_check(struct env *e)
{
	for (int i = 0; i < SHARDS; i++) {
		char cmd[1024];
		snprintf(cmd, sizeof cmd, "xapian-check %s/" WIKI "/current/shard-%d >/dev/null 2>&1",
			 e->data, i);
		cr_assert_eq(system(cmd), 0, "xapian-check failed on shard %d", i);
	}
}

/* ----------------------------------------------------- random workload */

static const char *const LANGS[] = { "en", "de", "fr", "ru", "ja" };
static const char *const WORDS[][8] = {
	{ "river", "flood", "stream", "mountain", "village", "history", "bridge", "winter" },
	{ "Fluss", "Hochwasser", "Brücke", "Gebirge", "Dorf", "Geschichte", "Straße", "Winter" },
	{ "rivière", "crue", "pont", "montagne", "village", "histoire", "église", "hiver" },
	{ "река", "наводнение", "мост", "гора", "деревня", "история", "зима", "город" },
	{ "川", "洪水", "橋", "山", "村", "歴史", "冬", "東京" },
};

static char *random_text(unsigned *seed, int lang, int serial)
{
	char *t = malloc(2048);
	size_t o = (size_t)snprintf(t, 2048, "== %s %d ==\n", WORDS[lang][rand_r(seed) % 8],
				    serial);
	int words = 20 + rand_r(seed) % 40;
	for (int i = 0; i < words && o < 1900; i++)
		o += (size_t)snprintf(t + o, 2048 - o, "%s%s", WORDS[lang][rand_r(seed) % 8],
				      i % 9 == 8 ? ".\n\n" : " ");
	snprintf(t + o, 2048 - o, "\n[[Category:Lang %s]]\n", LANGS[lang]);
	return t;
}

struct wl_page {
	char title[128];
	int lang;
	bool deleted;
};

struct workload {
	struct wl_page *pages;
	size_t n, cap;
	unsigned seed;
	int serial;
};

static void wl_add(struct workload *w, const char *title, int lang)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->pages = realloc(w->pages, w->cap * sizeof *w->pages);
	}
	snprintf(w->pages[w->n].title, sizeof w->pages[w->n].title, "%s", title);
	w->pages[w->n].lang = lang;
	w->pages[w->n].deleted = false;
	w->n++;
}

/* Creates n pages in the five languages, sets their language, and edits
 * each once more so that an event follows the language change. */
static void wl_seed(struct env *e, struct workload *w, size_t n)
{
	char **titles = calloc(n, sizeof *titles);
	char **texts = calloc(n, sizeof *texts);
	for (size_t i = 0; i < n; i++) {
		int lang = (int)(i % 5);
		char t[128];
		snprintf(t, sizeof t, "Page %s %zu", LANGS[lang], i);
		wl_add(w, t, lang);
		titles[i] = strdup(t);
		texts[i] = random_text(&w->seed, lang, w->serial++);
	}
	mw_seed(e->mw, n, (const char *const *)titles, (const char *const *)texts, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		if (w->pages[i].lang != 0)
			mw_set_language(e->mw, titles[i], LANGS[w->pages[i].lang]);
		free(texts[i]);
		texts[i] = random_text(&w->seed, w->pages[i].lang, w->serial++);
	}
	mw_seed(e->mw, n, (const char *const *)titles, (const char *const *)texts, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(titles[i]);
		free(texts[i]);
	}
	free(titles);
	free(texts);
}

static struct wl_page *wl_pick(struct workload *w, bool deleted)
{
	for (int tries = 0; tries < 50; tries++) {
		struct wl_page *p = &w->pages[(size_t)rand_r(&w->seed) % w->n];
		if (p->deleted == deleted)
			return p;
	}
	return NULL;
}

/* One random operation: edit 50%, create 10%, delete 15%, undelete 10%,
 * move 15% (half of them leaving a redirect). */
static void wl_step(struct env *e, struct workload *w)
{
	int r = rand_r(&w->seed) % 100;
	struct wl_page *p;
	if (r < 50 && (p = wl_pick(w, false))) {
		char *t = random_text(&w->seed, p->lang, w->serial++);
		mw_edit(e->mw, p->title, t, NULL, NULL);
		free(t);
	} else if (r < 60) {
		int lang = rand_r(&w->seed) % 5;
		char title[128];
		snprintf(title, sizeof title, "New %s %d", LANGS[lang], w->serial);
		char *t = random_text(&w->seed, lang, w->serial++);
		mw_edit(e->mw, title, t, NULL, NULL);
		free(t);
		wl_add(w, title, lang);
	} else if (r < 75 && (p = wl_pick(w, false))) {
		mw_delete(e->mw, p->title);
		p->deleted = true;
	} else if (r < 85 && (p = wl_pick(w, true))) {
		mw_undelete(e->mw, p->title, NULL);
		p->deleted = false;
	} else if ((p = wl_pick(w, false))) {
		char to[128];
		snprintf(to, sizeof to, "Moved %d %s", w->serial++, LANGS[p->lang]);
		bool redirect = rand_r(&w->seed) % 2;
		char from[128];
		snprintf(from, sizeof from, "%s", p->title);
		mw_move(e->mw, from, to, redirect);
		snprintf(p->title, sizeof p->title, "%s", to);
		if (redirect)
			wl_add(w, from, 0); /* may move w->pages: p is stale after */
	}
}

static void wl_free(struct workload *w)
{
	free(w->pages);
}

/* -------------------------------------------------------------- tests */

TestSuite(worker, .timeout = 900);

/* Events XADDed by hand (as `reindex-page --queue` does), without the
 * extension: the worker alone indexes, reindexes and deletes. */
/* Sum of the metrics endpoint's samples whose line starts with prefix
 * (name and opening brace) and contains needle (NULL: any), -1 when the
 * endpoint does not answer. */
static double metric_sum(struct env *e, const char *prefix, const char *needle)
{
	return test_metric_sum(e->metrics_port, prefix, needle);
}

/* Polls metric_sum() until it equals want (up to timeout_s); returns it. */
static double metric_wait(struct env *e, const char *prefix, const char *needle,
			  double want, double timeout_s)
{
	double end = now_s() + timeout_s, v;
	while ((v = metric_sum(e, prefix, needle)) != want && now_s() < end)
		msleep(100);
	return v;
}

Test(worker, indexes_hand_made_events)
{
	struct env *e = env_start_ext(NULL, false);
	worker_start(e);
	const char *titles[] = { "Alpha", "Beta", "Gamma", "Delta" };
	long ids[4], revs[4];
	const char *texts[] = { "The river floods in spring.", "Der Fluss.",
				"La rivière.", "Река." };
	mw_seed(e->mw, 4, titles, texts, ids, revs);
	redisContext *c = redis_conn(e);
	for (int i = 0; i < 4; i++)
		xadd_event(c, WIKI, ids[i] % SHARDS, "create", ids[i], titles[i], revs[i]);
	converge(e, 60);
	/* Counted before the acks converge() waited for. */
	double fetches = metric_sum(e, "freshet_fetches_total{", NULL);
	cr_assert_geq(fetches, 4, "4 creates, at least 4 fetches expected");

	/* The same events again (a replayed backlog): the index holds these
	 * revisions, so they are acked without fetching the pages. */
	for (int i = 0; i < 4; i++)
		xadd_event(c, WIKI, ids[i] % SHARDS, "edit", ids[i], titles[i], revs[i]);
	converge(e, 60);
	cr_assert_eq(metric_wait(e, "freshet_events_total{", "outcome=\"current\"", 4, 10), 4,
		     "the replayed edits were not acked as current");
	cr_assert_eq(metric_sum(e, "freshet_fetches_total{", NULL), fetches,
		     "an edit of a revision already indexed was fetched");

	/* A delete through the API, announced by hand: the document goes. */
	mw_delete(e->mw, "Beta");
	char *ev = test_event("delete", WIKI, ids[1], "Beta", 0);
	redisReply *r = redisCommand(c, "XADD freshet:{" WIKI ":p%ld} * event %s",
				     ids[1] % SHARDS, ev);
	freeReplyObject(r);
	free(ev);
	converge(e, 60);

	/* An undelete that gave a page a new id (Delta's, here) names the old
	 * id (Gamma's, deleted meanwhile without an event) in prior_state: the
	 * old id's document must go, though it lives in another partition. */
	mw_delete(e->mw, "Gamma");
	json_t *undel = test_event_json("undelete", WIKI, ids[3], "Delta", revs[3]);
	json_object_set_new(undel, "prior_state",
			    json_pack("{s:{s:I}}", "page", "page_id", (json_int_t)ids[2]));
	ev = json_dumps(undel, JSON_COMPACT);
	json_decref(undel);
	cr_assert_neq(ids[2] % SHARDS, ids[3] % SHARDS);
	r = redisCommand(c, "XADD freshet:{" WIKI ":p%ld} * event %s", ids[3] % SHARDS, ev);
	freeReplyObject(r);
	free(ev);
	redisFree(c);
	converge(e, 60);
	worker_term(e);
	assert_xapian_check(e);
	env_stop(e);
}

/* XADDs the event ev (JSON object, consumed) to page's partition. */
static void xadd_json(redisContext *c, long page_id, json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	redisReply *r = redisCommand(c, "XADD freshet:{" WIKI ":p%ld} * event %s",
				     page_id % SHARDS, text);
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
	free(text);
}

/* An event is a trigger: only what the wiki answers may delete a page. */
Test(worker, namespace_claimed_by_an_event_deletes_nothing)
{
	struct env *e = env_start_ext(NULL, false);
	worker_start(e);
	const char *titles[] = { "Kappa", "Lambda" };
	const char *texts[] = { "The river floods in spring.", "A bridge in winter." };
	long ids[2], revs[2];
	mw_seed(e->mw, 2, titles, texts, ids, revs);
	redisContext *c = redis_conn(e);
	for (int i = 0; i < 2; i++)
		xadd_event(c, WIKI, ids[i] % SHARDS, "create", ids[i], titles[i], revs[i]);
	converge(e, 60);
	double fetches = metric_sum(e, "freshet_fetches_total{", NULL);

	/* A hand-made edit that says Kappa is a user page (namespace 2,
	 * not indexed): the wiki is asked, says namespace 0, and the page
	 * stays. */
	json_t *ev = test_event_json("edit", WIKI, ids[0], "User:Kappa", revs[0]);
	json_object_set_new(json_object_get(ev, "page"), "namespace_id", json_integer(2));
	xadd_json(c, ids[0], ev);
	cr_assert_eq(metric_wait(e, "freshet_fetches_total{", NULL, fetches + 1, 30),
		     fetches + 1, "the wiki was not asked about the page");
	converge(e, 60);

	/* Lambda really moved to the talk namespace: its document goes. */
	mw_move(e->mw, "Lambda", "Talk:Lambda", false);
	struct mw_page_info info;
	cr_assert(mw_page_info_id(e->mw, ids[1], &info) && info.ns == 1);
	ev = test_event_json("move", WIKI, ids[1], "Talk:Lambda", info.rev_id);
	json_object_set_new(json_object_get(ev, "page"), "namespace_id", json_integer(1));
	json_object_del(ev, "created_redirect_page");
	json_object_set_new(json_object_get(json_object_get(ev, "prior_state"), "page"),
			    "page_id", json_integer(ids[1]));
	xadd_json(c, ids[1], ev);
	redisFree(c);
	converge(e, 60);
	worker_term(e);
	env_stop(e);
}

/* Runs freshet-search --json for query; returns the page ids found,
 * ascending, as "3 7" ("" for none), and in via the redirect_title of the
 * first hit ("" when none). */
static void search_ids(struct env *e, const char *query, char *ids, size_t cap,
		       char *via, size_t via_cap)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s/freshet-search --config %s --wiki " WIKI
		 " --json '%s' 2>/dev/null", getenv("FRESHET_BUILDDIR"), e->conf, query);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	json_error_t err;
	json_t *arr = json_loadf(f, 0, &err);
	pclose(f);
	ids[0] = via[0] = '\0';
	long v[64];
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(arr) && n < 64; i++)
		v[n++] = (long)json_integer_value(json_object_get(json_array_get(arr, i),
								 "page_id"));
	for (size_t i = 1; i < n; i++)
		for (size_t k = i; k > 0 && v[k - 1] > v[k]; k--) {
			long t = v[k];
			v[k] = v[k - 1];
			v[k - 1] = t;
		}
	size_t o = 0;
	for (size_t i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(ids + o, cap - o, "%s%ld", i ? " " : "", v[i]);
	const char *rt = json_string_value(json_object_get(json_array_get(arr, 0),
							   "redirect_title"));
	snprintf(via, via_cap, "%s", rt ? rt : "");
	json_decref(arr);
}

/* The live documents holding term, as search_ids() gives them. */
static void term_holders(struct env *e, const char *term, char *ids, size_t cap)
{
	struct shard_set *set = shard_set_new(e->data, WIKI);
	cr_assert_eq(shard_set_open(set), STATUS_OK, "%s", shard_set_errmsg(set));
	struct xquery *q = xquery_term(term, strlen(term), 1);
	struct xmset *ms = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 100, &ms), STATUS_OK);
	size_t o = 0;
	ids[0] = '\0';
	for (size_t i = 0; i < xmset_size(ms) && o < cap; i++) {
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(ms, i, &h), STATUS_OK);
		json_t *d = json_loadb(h.data, h.data_len, JSON_DISABLE_EOF_CHECK, NULL);
		o += (size_t)snprintf(ids + o, cap - o, "%s%lld", i ? " " : "",
				      (long long)json_integer_value(json_object_get(d,
									"page_id")));
		json_decref(d);
	}
	xmset_free(ms);
	xquery_free(q);
	shard_set_free(set);
}

/* Waits until searching query finds exactly the pages want ("" for none),
 * the first through the redirect title via (NULL: not checked), and the
 * completion term xrt is on exactly the pages xrt_want (NULL: want). */
static void expect_redirect(struct env *e, const char *query, const char *want,
			    const char *via, const char *xrt, const char *xrt_want)
{
	if (!xrt_want)
		xrt_want = want;
	char ids[256], got_via[512], holders[256];
	double end = now_s() + 60;
	for (;;) {
		search_ids(e, query, ids, sizeof ids, got_via, sizeof got_via);
		term_holders(e, xrt, holders, sizeof holders);
		bool ok = strcmp(ids, want) == 0 && strcmp(holders, xrt_want) == 0 &&
			  (!via || strcmp(got_via, via) == 0);
		if (ok)
			return;
		cr_assert(now_s() < end,
			  "'%s' found '%s' (via '%s'), %s on '%s'; want '%s' (via '%s'), on '%s'; log %s",
			  query, ids, got_via, xrt, holders, want, via ? via : "-",
			  xrt_want, e->log);
		msleep(300);
	}
}

Test(worker, redirects_belong_to_their_target)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	long a = 0, b = 0, g = 0, x = 0;
	char sa[32], sb[32];
	mw_edit(e->mw, "Alpha target", "Alpha is about rivers.", &a, NULL);
	mw_edit(e->mw, "Beta target", "Beta is about bridges.", &b, NULL);
	snprintf(sa, sizeof sa, "%ld", a);
	snprintf(sb, sizeof sb, "%ld", b);

	/* A new redirect: its title finds its target, never itself. */
	mw_edit(e->mw, "Gamma alias", "#REDIRECT [[Alpha target]]", &g, NULL);
	expect_redirect(e, "gamma", sa, "Gamma alias", "XRTgamma alias", NULL);

	/* Retargeted: the old target lets it go, the new one takes it. */
	mw_edit(e->mw, "Gamma alias", "#REDIRECT [[Beta target]]", NULL, NULL);
	expect_redirect(e, "gamma", sb, "Gamma alias", "XRTgamma alias", NULL);

	/* A move that leaves a redirect: the page keeps its id under the new
	 * title and the old title becomes its redirect.  Gamma now points at
	 * a redirect (a double redirect): it finds nothing. */
	mw_move(e->mw, "Beta target", "Delta target", true);
	expect_redirect(e, "beta", sb, "Beta target", "XRTbeta target", NULL);
	expect_redirect(e, "delta", sb, "", "XRTdelta target", "");
	expect_redirect(e, "gamma", "", NULL, "XRTgamma alias", NULL);

	/* Pointed at the moved page again, then deleted. */
	mw_edit(e->mw, "Gamma alias", "#REDIRECT [[Delta target]]", NULL, NULL);
	expect_redirect(e, "gamma", sb, "Gamma alias", "XRTgamma alias", NULL);
	mw_delete(e->mw, "Gamma alias");
	expect_redirect(e, "gamma", "", NULL, "XRTgamma alias", NULL);

	/* A redirect turned into an article: a document of its own. */
	mw_edit(e->mw, "Epsilon alias", "#REDIRECT [[Alpha target]]", &x, NULL);
	expect_redirect(e, "epsilon", sa, "Epsilon alias", "XRTepsilon alias", NULL);
	mw_edit(e->mw, "Epsilon alias", "Epsilon is an article now.", NULL, NULL);
	char sx[32];
	snprintf(sx, sizeof sx, "%ld", x);
	expect_redirect(e, "epsilon", sx, "", "XRTepsilon alias", "");

	/* The target deleted: its redirects point nowhere. */
	mw_edit(e->mw, "Zeta alias", "#REDIRECT [[Alpha target]]", NULL, NULL);
	expect_redirect(e, "zeta", sa, "Zeta alias", "XRTzeta alias", NULL);
	mw_delete(e->mw, "Alpha target");
	expect_redirect(e, "zeta", "", NULL, "XRTzeta alias", NULL);
	expect_redirect(e, "alpha", "", NULL, "XRTalpha target", NULL);

	converge(e, 120);
	assert_no_dead_letters(e, WIKI);
	worker_term(e);
	env_stop(e);
}

Test(worker, converges_with_random_changes_in_five_languages)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	struct workload w = { .seed = 12345 };
	size_t pages = (size_t)env_int("FRESHET_TEST_PAGES", 300);
	int ops = env_int("FRESHET_TEST_OPS", 1000);
	wl_seed(e, &w, pages);
	for (int i = 0; i < ops; i++)
		wl_step(e, &w);
	converge(e, 180);
	assert_no_dead_letters(e, WIKI);

	/* Every language got its analyzer: an L<code> document exists for
	 * each, and the metrics endpoint counted the events. */
	struct shard_set *set = shard_set_new(e->data, WIKI);
	cr_assert_eq(shard_set_open(set), STATUS_OK);
	for (int l = 0; l < 5; l++) {
		char term[16];
		snprintf(term, sizeof term, "L%s", LANGS[l]);
		struct xquery *q = xquery_term(term, strlen(term), 1);
		struct xmset *ms = NULL;
		cr_assert_eq(shard_set_search(set, q, 0, 10, &ms), STATUS_OK);
		cr_assert_gt(xmset_size(ms), 0, "no document in language %s", LANGS[l]);
		xmset_free(ms);
		xquery_free(q);
	}
	shard_set_free(set);

	char cmd[256];
	snprintf(cmd, sizeof cmd,
		 "curl -sf http://127.0.0.1:%d/metrics | grep -q 'freshet_events_total{wiki=\"" WIKI "\",kind=\"edit\",outcome=\"indexed\"}'",
		 e->metrics_port);
	cr_assert_eq(system(cmd), 0, "metrics endpoint lacks the indexed edits");

	worker_term(e);
	assert_xapian_check(e);
	wl_free(&w);
	env_stop(e);
}

Test(worker, survives_kill9_and_redis_restarts)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	struct workload w = { .seed = 777 };
	size_t pages = (size_t)env_int("FRESHET_TEST_PAGES", 300);
	int ops = env_int("FRESHET_TEST_OPS", 1000);
	wl_seed(e, &w, pages);
	unsigned seed = 99;
	int kills = 0, restarts = 0;
	const int want_kills = 10;
	int every = ops / want_kills > 0 ? ops / want_kills : 1;
	for (int i = 0; i < ops; i++) {
		wl_step(e, &w);
		if (i % every == every / 2 && kills < want_kills) {
			/* kill -9 at a random moment of the next few operations. */
			msleep(rand_r(&seed) % 700);
			worker_kill9(e);
			kills++;
			msleep(rand_r(&seed) % 500);
			worker_start(e);
		}
		if ((i == ops / 3 || i == 2 * ops / 3) && restarts < 2) {
			/* Redis goes away and comes back (its data kept). No edit
			 * is made meanwhile: the extension would spool it. */
			msleep(300);
			test_redis_pause(e->redis);
			msleep(1500);
			test_redis_resume(e->redis);
			restarts++;
		}
	}
	cr_assert_eq(kills, want_kills);
	cr_assert_eq(restarts, 2);
	converge(e, 240);
	assert_no_dead_letters(e, WIKI);
	/* Every failure counter left with its acked entry. */
	redisContext *c = redis_conn(e);
	redisReply *keys = redisCommand(c, "KEYS freshet:{" WIKI ":p*}:failed:*");
	cr_assert(keys && keys->type == REDIS_REPLY_ARRAY);
	cr_expect_eq(keys->elements, 0, "%zu failure counters left", keys->elements);
	freeReplyObject(keys);
	redisFree(c);
	worker_term(e);
	assert_xapian_check(e);
	wl_free(&w);
	env_stop(e);
}

/* The live generation's name (the target of <data>/<wiki>/current). */
static char *current_generation(struct env *e)
{
	char link[1024], target[256];
	snprintf(link, sizeof link, "%s/" WIKI "/current", e->data);
	ssize_t n = readlink(link, target, sizeof target - 1);
	cr_assert_gt(n, 0, "%s: %s", link, strerror(errno));
	target[n] = '\0';
	return strdup(target);
}

/* `reindex-page --rebuild` while the worker runs and pages change: the
 * worker hands its partitions over for the swap (no one stops it), takes
 * them back, and goes on writing the new generation. */
Test(worker, rebuild_while_the_worker_runs)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	/* The installer's Main Page had no event (see mw_truth()); a rebuild
	 * lists every page, so it must not exist. */
	mw_delete(e->mw, "Main Page");
	struct workload w = { .seed = 4242 };
	wl_seed(e, &w, 30);
	converge(e, 120);
	char *old = current_generation(e);

	char rlog[1024];
	snprintf(rlog, sizeof rlog, "%s/rebuild.log", e->dir);
	pid_t rb = fork();
	cr_assert_neq(rb, -1);
	if (rb == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(rlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		char bin[512];
		snprintf(bin, sizeof bin, "%s/reindex-page", getenv("FRESHET_BUILDDIR"));
		execl(bin, bin, "--config", e->conf, "--wiki", WIKI, "--rebuild", "--quiet",
		      (char *)NULL);
		_exit(127);
	}
	/* A move that leaves a redirect: the redirect page is no document,
	 * its title joins the moved page's, in the rebuild too. */
	char from[128];
	snprintf(from, sizeof from, "%s", w.pages[0].title);
	mw_move(e->mw, from, "Moved during the rebuild", true);
	snprintf(w.pages[0].title, sizeof w.pages[0].title, "Moved during the rebuild");
	wl_add(&w, from, w.pages[0].lang);
	for (int i = 0; i < 20; i++)
		wl_step(e, &w);
	int ws = -1;
	double end = now_s() + 240;
	while (now_s() < end && waitpid(rb, &ws, WNOHANG) == 0)
		msleep(100);
	if (now_s() >= end) {
		kill(rb, SIGKILL);
		waitpid(rb, &ws, 0);
	}
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "the rebuild failed (status %d); see %s", ws, rlog);
	char *now = current_generation(e);
	cr_assert_str_neq(now, old, "current did not move");

	/* Compaction while the worker runs: it hands each partition over in
	 * turn, and takes it back. */
	char cmd[1536];
	snprintf(cmd, sizeof cmd, "%s/freshetctl --config %s compact > %s/compact.log 2>&1",
		 getenv("FRESHET_BUILDDIR"), e->conf, e->dir);
	cr_assert_eq(system(cmd), 0, "freshetctl compact failed; see %s/compact.log", e->dir);
	snprintf(cmd, sizeof cmd, "grep -c ': compacted$' %s/compact.log | grep -qx %d",
		 e->dir, SHARDS);
	cr_assert_eq(system(cmd), 0, "not every shard was compacted; see %s/compact.log",
		     e->dir);

	/* After the swap the worker, still running, writes the new generation. */
	for (int i = 0; i < 20; i++)
		wl_step(e, &w);
	converge(e, 120);
	cr_assert_eq(waitpid(e->worker, NULL, WNOHANG), 0, "the worker ended");
	char *log = test_read_file(e->log, NULL);
	cr_assert(log && strstr(log, "action=lease_released"),
		  "the worker did not hand its partitions over");
	free(log);
	assert_no_dead_letters(e, WIKI);
	worker_term(e);
	assert_xapian_check(e);
	free(old);
	free(now);
	wl_free(&w);
	env_stop(e);
}

Test(worker, malformed_event_is_dead_lettered_with_reason)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	redisContext *c = redis_conn(e);
	/* Wait until the worker created the groups (the stream exists). */
	double end = now_s() + 30;
	while (now_s() < end && redis_int(c, "EXISTS freshet:{" WIKI ":p0}") != 1)
		msleep(100);
	redisReply *r = redisCommand(c, "XADD freshet:{" WIKI ":p0} * event %s",
				     "{\"not\": \"an event\"");
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	char id[64];
	snprintf(id, sizeof id, "%s", r->str);
	freeReplyObject(r);
	end = now_s() + 30;
	while (now_s() < end && redis_int(c, "XLEN freshet:{" WIKI "}:dead") < 1)
		msleep(100);
	r = redisCommand(c, "XRANGE freshet:{" WIKI "}:dead - +");
	cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1,
		  "the malformed event is not in the dead-letter stream");
	redisReply *fields = r->element[0]->element[1];
	const char *payload = NULL, *reason = NULL, *src = NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		if (!strcmp(fields->element[i]->str, "payload"))
			payload = fields->element[i + 1]->str;
		else if (!strcmp(fields->element[i]->str, "reason"))
			reason = fields->element[i + 1]->str;
		else if (!strcmp(fields->element[i]->str, "id"))
			src = fields->element[i + 1]->str;
	}
	cr_assert_str_eq(payload, "{\"not\": \"an event\"");
	cr_assert(reason && *reason, "no reason recorded");
	cr_assert_str_eq(src, id);
	freeReplyObject(r);
	cr_assert_eq(pending_count(c, WIKI, 0), 0, "the malformed entry is still pending");
	redisFree(c);
	worker_term(e);
	env_stop(e);
}

/* An event over max_event_bytes is dead-lettered undecoded, and neither it
 * nor the events after it cost the worker its leases. */
Test(worker, oversized_event_is_dead_lettered_and_leases_kept)
{
	struct env *e = env_start_ext(NULL, false);
	worker_start(e);
	const char *titles[] = { "Mu" };
	const char *texts[] = { "A village by the river." };
	long ids[1], revs[1];
	mw_seed(e->mw, 1, titles, texts, ids, revs);
	redisContext *c = redis_conn(e);
	double end = now_s() + 30;
	while (now_s() < end && redis_int(c, "EXISTS freshet:{" WIKI ":p%ld}:lease",
					  ids[0] % SHARDS) != 1)
		msleep(100);
	/* 4 MiB: a comment no wiki would send, in a well-formed event. */
	size_t big = 4u << 20;
	char *comment = malloc(big + 1);
	memset(comment, 'x', big);
	comment[big] = '\0';
	json_t *ev = test_event_json("edit", WIKI, ids[0], titles[0], revs[0]);
	json_object_set_new(ev, "comment", json_string(comment));
	free(comment);
	xadd_json(c, ids[0], ev);
	xadd_event(c, WIKI, ids[0] % SHARDS, "create", ids[0], titles[0], revs[0]);
	converge(e, 60);

	redisReply *r = redisCommand(c, "XRANGE freshet:{" WIKI "}:dead - +");
	cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1,
		  "the oversized event is not in the dead-letter stream");
	redisReply *fields = r->element[0]->element[1];
	const char *reason = NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2)
		if (!strcmp(fields->element[i]->str, "reason"))
			reason = fields->element[i + 1]->str;
	cr_assert(reason && strstr(reason, "too large"), "reason: %s", reason ? reason : "-");
	freeReplyObject(r);

	/* Every lease is still this worker's, and none was lost meanwhile. */
	char *log = test_read_file(e->log, NULL);
	cr_assert_not_null(log);
	cr_assert_null(strstr(log, "action=lease_lost"), "log: %s", log);
	const char *cons = strstr(log, "consumer=");
	cr_assert_not_null(cons, "log: %s", log);
	cons += strlen("consumer=");
	for (int p = 0; p < SHARDS; p++) {
		r = redisCommand(c, "GET freshet:{" WIKI ":p%d}:lease", p);
		cr_assert(r && r->type == REDIS_REPLY_STRING, "partition %d has no lease", p);
		cr_assert(strncmp(cons, r->str, strlen(r->str)) == 0,
			  "partition %d leased to %s", p, r->str);
		freeReplyObject(r);
	}
	free(log);
	redisFree(c);
	worker_term(e);
	env_stop(e);
}

/* Puts one edit event of page 7 on partition 1 of wiki (once the worker
 * created the stream), waits up to timeout_s for its dead letter, and
 * returns its delivery count and reason (caller frees).  The entry must be
 * acked. */
static char *dead_letter_of_one_edit(struct env *e, const char *wiki, double timeout_s,
				     long *deliveries)
{
	redisContext *c = redis_conn(e);
	double end = now_s() + 30;
	while (now_s() < end && redis_int(c, "EXISTS freshet:{%s:p1}", wiki) != 1)
		msleep(100);
	xadd_event(c, wiki, 1, "edit", 7, "Failing", 11);
	end = now_s() + timeout_s;
	while (now_s() < end && redis_int(c, "XLEN freshet:{%s}:dead", wiki) < 1)
		msleep(100);
	redisReply *r = redisCommand(c, "XRANGE freshet:{%s}:dead - +", wiki);
	cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1,
		  "the event was not dead-lettered");
	redisReply *fields = r->element[0]->element[1];
	*deliveries = 0;
	char *reason = NULL;
	for (size_t i = 0; i + 1 < fields->elements; i += 2) {
		if (!strcmp(fields->element[i]->str, "deliveries"))
			*deliveries = atol(fields->element[i + 1]->str);
		else if (!strcmp(fields->element[i]->str, "reason"))
			reason = strdup(fields->element[i + 1]->str);
	}
	freeReplyObject(r);
	cr_assert_eq(pending_count(c, wiki, 1), 0, "the dead-lettered entry is still pending");
	redisFree(c);
	return reason ? reason : strdup("");
}

Test(worker, failing_fetch_ends_dead_lettered_after_max_deliveries)
{
	/* A second wiki whose API is a closed port: every fetch fails. */
	char extra[256];
	int closed = test_free_port();
	snprintf(extra, sizeof extra,
		 "\n[wiki brokenwiki]\napi = http://127.0.0.1:%d/api.php\nshards = 2\n",
		 closed);
	struct env *e = env_start(extra);
	worker_start(e);
	long deliveries;
	char *reason = dead_letter_of_one_edit(e, "brokenwiki", 90, &deliveries);
	cr_assert_eq(deliveries, 3, "dead-lettered after %ld deliveries", deliveries);
	cr_assert(strstr(reason, "fetch") != NULL && strstr(reason, "max_deliveries reached"),
		  "reason: %s", reason);
	free(reason);
	/* The healthy wiki is not held up by the broken one. */
	assert_no_dead_letters(e, WIKI);
	worker_term(e);
	env_stop(e);
}

Test(worker, answer_found_bad_when_decoded_is_dead_lettered_at_once)
{
	/* The fetch thread hands the parse answer on undecoded (it is a
	 * JSON object and its info answer is good); the analysis thread
	 * that decodes it finds no "parse" in it: permanent, so dead-lettered
	 * on its first delivery, with the reason. */
	struct hostile *h = hostile_start();
	cr_assert_not_null(h);
	char *api = hostile_api(h, "badparse");
	char extra[512];
	snprintf(extra, sizeof extra, "\n[wiki badwiki]\napi = %s\nshards = 2\n",
		 api);
	free(api);
	struct env *e = env_start(extra);
	worker_start(e);
	long deliveries;
	char *reason = dead_letter_of_one_edit(e, "badwiki", 60, &deliveries);
	cr_expect_eq(deliveries, 1, "dead-lettered after %ld deliveries", deliveries);
	cr_expect(strstr(reason, "fetch permanent: parse: JSON has no \"parse\" object"),
		  "reason: %s", reason);
	free(reason);
	worker_term(e);
	env_stop(e);
	hostile_stop(h);
}

/* Scaling out: two workers share the partitions (fair share through the
 * leases, the shard lock handed over when a partition moves), one dies by
 * kill -9 and the other takes its partitions and its pending entries. */
Test(worker, two_workers_share_partitions_and_survive_one)
{
	struct env *e = env_start(NULL);
	/* The second worker: same configuration but no metrics port. */
	struct env e2 = *e;
	snprintf(e2.conf, sizeof e2.conf, "%s/freshet2.conf", e->dir);
	snprintf(e2.log, sizeof e2.log, "%s/worker2.log", e->dir);
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "grep -v '^metrics_listen' %s > %s", e->conf, e2.conf);
	cr_assert_eq(system(cmd), 0);
	worker_start(e);
	worker_start(&e2);
	struct workload w = { .seed = 31337 };
	wl_seed(e, &w, 20);
	for (int i = 0; i < 30; i++)
		wl_step(e, &w);
	/* Both hold partitions by now (fair share: 2 each). */
	redisContext *c = redis_conn(e);
	int owners = 0;
	char first[256] = "";
	for (int p = 0; p < SHARDS; p++) {
		redisReply *r = redisCommand(c, "GET freshet:{" WIKI ":p%d}:lease", p);
		if (r && r->type == REDIS_REPLY_STRING) {
			if (!*first)
				snprintf(first, sizeof first, "%s", r->str);
			else if (strcmp(first, r->str) != 0)
				owners = 2;
		}
		if (r)
			freeReplyObject(r);
	}
	cr_assert_eq(owners, 2, "the partitions were not shared between the workers");
	redisFree(c);
	worker_kill9(&e2);
	for (int i = 0; i < 30; i++)
		wl_step(e, &w);
	converge(e, 120);
	assert_no_dead_letters(e, WIKI);
	worker_term(e);
	assert_xapian_check(e);
	wl_free(&w);
	env_stop(e);
}

Test(worker, sigterm_exits_zero_with_everything_acked)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	struct workload w = { .seed = 4242 };
	wl_seed(e, &w, 15);
	for (int i = 0; i < 20; i++)
		wl_step(e, &w);
	/* Stop while the last events are being handled. */
	worker_term(e);
	redisContext *c = redis_conn(e);
	for (int p = 0; p < SHARDS; p++)
		cr_assert_eq(pending_count(c, WIKI, p), 0,
			     "partition %d has unacked entries after SIGTERM", p);
	for (int p = 0; p < SHARDS; p++)
		cr_assert_eq(redis_int(c, "EXISTS freshet:{" WIKI ":p%d}:lease", p), 0,
			     "lease of partition %d not released", p);
	redisFree(c);
	/* A restarted worker finishes the rest.  Stopped twice in a row (an
	 * impatient operator), it still drains and exits 0, and says who sent
	 * the second signal. */
	worker_start(e);
	converge(e, 120);
	while (!worker_started(e))
		msleep(20);
	kill(e->worker, SIGTERM);
	msleep(50);
	worker_term(e);
	char *log = test_read_file(e->log, NULL);
	char want[96];
	snprintf(want, sizeof want, "action=late_signal signal=TERM sender_pid=%ld\n",
		 (long)getpid());
	cr_assert(log && strstr(log, want), "no '%s' in %s", want, e->log);
	free(log);
	assert_xapian_check(e);
	wl_free(&w);
	env_stop(e);
}

/* Edits the pages in a child process until it is killed: other edits
 * arrive at the worker all the time (the extension publishes them). */
static pid_t load_start(struct env *e, const char *const *titles, size_t n)
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		mw_own_connection(e->mw);
		for (unsigned i = 0;; i++) {
			char text[128];
			snprintf(text, sizeof text, "Load edit %u of the river and the mill.", i);
			mw_edit(e->mw, titles[i % n], text, NULL, NULL);
		}
	}
	return pid;
}

/* A revision made hidden, of a page that is also deleted, or an older
 * revision of a live page: within a commit interval (plus the fetch and
 * the compaction that follows the commit) the page does not match and no
 * file of the shards holds the text, although other edits never let the
 * worker idle (the deferred purge of deleted pages would wait). */
Test(worker, hidden_text_leaves_the_shard_files)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	const char *load[] = { "Load one", "Load two", "Load three", "Load four",
			       "Load five", "Load six", "Load seven", "Load eight" };
	const char *load_text[8];
	for (int i = 0; i < 8; i++)
		load_text[i] = "The river floods in spring.";
	mw_seed(e->mw, 8, load, load_text, NULL, NULL);
	long gone_id = 0, old_id = 0, old_rev = 0;
	mw_edit(e->mw, "Hidden one", "The zqxwintlefarb stood by the river.", &gone_id, NULL);
	mw_edit(e->mw, "Hidden two", "A zqxplumbrovet was seen in town.", &old_id, &old_rev);
	converge(e, 60);
	char ids[256], via[64], want[64];
	search_ids(e, "zqxwintlefarb", ids, sizeof ids, via, sizeof via);
	snprintf(want, sizeof want, "%ld", gone_id);
	cr_assert_str_eq(ids, want);
	/* A later edit replaces the document, yet the shard's files keep
	 * the old text: what the test must see go. */
	mw_edit(e->mw, "Hidden two", "Nothing to see here any more.", NULL, NULL);
	converge(e, 60);
	char wikidir[600];
	snprintf(wikidir, sizeof wikidir, "%s/" WIKI, e->data);
	cr_assert(test_dir_holds(wikidir, "zqxplumbrovet"));
	cr_assert(test_dir_holds(wikidir, "zqxwintlefarb"));

	/* A plain delete marks the document: the text stays. */
	mw_delete(e->mw, "Hidden one");
	msleep(1000);
	cr_assert(test_dir_holds(wikidir, "zqxwintlefarb"), "a delete scrubbed the text");

	/* While other edits keep coming: the older revision of "Hidden two"
	 * is hidden (MediaWiki hides no current revision's text), and the
	 * extension announces it; "Hidden one" gets the visibility_change
	 * the extension publishes after a suppressed delete (which the API
	 * cannot make). */
	pid_t loader = load_start(e, load, 8);
	msleep(2000);
	double t0 = now_s();
	redisContext *c = redis_conn(e);
	xadd_event(c, WIKI, gone_id % SHARDS, "visibility_change", gone_id, "Hidden_one", 0);
	redisFree(c);
	char params[256];
	snprintf(params, sizeof params,
		 "action=revisiondelete&type=revision&target=Hidden_two&ids=%ld"
		 "&hide=content&reason=test",
		 old_rev);
	json_t *r = mw_api(e->mw, true, params);
	cr_assert_null(json_object_get(r, "error"), "revisiondelete: %s",
		       json_dumps(r, JSON_COMPACT));
	json_decref(r);
	bool gone = false;
	while (!gone && now_s() - t0 < 10) {
		msleep(200);
		gone = !test_dir_holds(wikidir, "zqxwintlefarb") &&
		       !test_dir_holds(wikidir, "zqxplumbrovet");
	}
	double took = now_s() - t0;
	kill(loader, SIGKILL);
	waitpid(loader, NULL, 0);
	cr_assert(gone, "hidden text still in the shard files after %.1f s (log %s)", took, e->log);
	cr_log_info("hidden text gone from the shard files %.1f s after the change", took);
	search_ids(e, "zqxwintlefarb", ids, sizeof ids, via, sizeof via);
	cr_assert_str_eq(ids, "");
	search_ids(e, "zqxplumbrovet", ids, sizeof ids, via, sizeof via);
	cr_assert_str_eq(ids, "");
	worker_term(e);
	assert_xapian_check(e);
	assert_no_dead_letters(e, WIKI);
	env_stop(e);
}

/* ------------------------------------------------- replay and retention */

/* Polls the log of the worker started last until it holds needle (up to
 * timeout_s).  Returns whether it does. */
static bool log_wait(struct env *e, const char *needle, double timeout_s)
{
	double end = now_s() + timeout_s;
	for (;;) {
		size_t len = 0;
		char *log = test_read_file(e->log, &len);
		bool found = log && (size_t)e->log_start <= len &&
			     strstr(log + e->log_start, needle) != NULL;
		free(log);
		if (found || now_s() >= end)
			return found;
		msleep(200);
	}
}

/* Replaces directory to with a copy of from (cp -a). */
static void copy_dir(const char *from, const char *to)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* A shard restored from a backup is behind its stream: the changes made
 * since (edits, a new page, deletes) were acknowledged long ago, so only
 * the replay from the shard's stored position brings them back.  Then the
 * streams are trimmed past the backup's position and the backup restored
 * again: the worker reports the gap and asks for a consistency pass. */
Test(worker, restored_backup_is_replayed_and_a_trimmed_gap_reported)
{
	struct env *e = env_start(NULL);
	worker_start(e);
	struct workload w = { .seed = 2718 };
	wl_seed(e, &w, 20);
	converge(e, 120);
	worker_term(e);
	char *gen = current_generation(e);
	char live[1024], backup[1024];
	snprintf(live, sizeof live, "%s/" WIKI "/%s", e->data, gen);
	snprintf(backup, sizeof backup, "%s/backup", e->dir);
	copy_dir(live, backup);

	worker_start(e);
	long marker = 0;
	mw_edit(e->mw, "Replay marker", "The zanzibarquux arrived after the backup.",
		&marker, NULL);
	for (int i = 0; i < 3; i++) {
		struct wl_page *p = wl_pick(&w, false);
		cr_assert_not_null(p);
		mw_delete(e->mw, p->title);
		p->deleted = true;
	}
	for (int i = 0; i < 25; i++)
		wl_step(e, &w);
	converge(e, 120);
	worker_term(e);

	copy_dir(backup, live);
	cr_assert_not_null(compare(e, false), "the restored shards match the wiki already");
	worker_start(e);
	cr_assert(log_wait(e, "action=replay from=", 60), "no replay in %s", e->log);
	converge(e, 120);
	char ids[256], via[256], want[32];
	search_ids(e, "zanzibarquux", ids, sizeof ids, via, sizeof via);
	snprintf(want, sizeof want, "%ld", marker);
	cr_expect_str_eq(ids, want, "the page created after the backup is not found");
	cr_expect_gt(metric_sum(e, "freshet_replayed_entries_total{", NULL), 0);
	cr_expect_eq(metric_sum(e, "freshet_replay_gaps_total{", NULL), 0);
	assert_no_dead_letters(e, WIKI);
	worker_term(e);

	/* Trim every stream to its newest entry (the retention of a copy
	 * that was away too long), and restore the backup once more. */
	redisContext *c = redis_conn(e);
	for (int p = 0; p < SHARDS; p++) {
		redisReply *r = redisCommand(c, "XREVRANGE freshet:{" WIKI ":p%d} + - COUNT 1", p);
		cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
		redisReply *t = redisCommand(c, "XTRIM freshet:{" WIKI ":p%d} MINID %s", p,
					     r->element[0]->element[0]->str);
		freeReplyObject(t);
		freeReplyObject(r);
	}
	copy_dir(backup, live);
	worker_start(e);
	cr_assert(log_wait(e, "action=replay_gap", 60), "no replay_gap in %s", e->log);
	cr_expect_geq(metric_wait(e, "freshet_replay_gaps_total{", NULL, SHARDS, 10), 1);
	redisReply *r = redisCommand(c, "HGET freshet:{" WIKI "}:saneitize restart");
	cr_expect(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0,
		  "no consistency pass asked for after the gap");
	if (r)
		freeReplyObject(r);
	redisFree(c);
	worker_term(e);
	free(gen);
	wl_free(&w);
	env_stop(e);
}

/* With a short retention, the worker trims its streams up to its shards'
 * positions, never past them, and freshetctl status shows how far back
 * each stream reaches. */
Test(worker, retention_trims_what_the_shards_hold)
{
	struct env *e = env_start("\n[redis]\nstream_retention_s = 1\n");
	redisContext *c = redis_conn(e);
	/* One entry per node, so that the approximate trim is exact. */
	redisReply *r = redisCommand(c, "CONFIG SET stream-node-max-entries 1");
	cr_assert(r && r->type == REDIS_REPLY_STATUS);
	freeReplyObject(r);
	worker_start(e);
	struct workload w = { .seed = 1414 };
	wl_seed(e, &w, 12);
	for (int i = 0; i < 10; i++)
		wl_step(e, &w);
	converge(e, 120);
	double trimmed = 0, until = now_s() + 15;
	while ((trimmed = metric_sum(e, "freshet_trimmed_entries_total{", NULL)) <= 0 &&
	       now_s() < until)
		msleep(200);
	cr_expect_gt(trimmed, 0, "no entry trimmed");
	/* Once trimmed, each stream holds its shard's position, and nothing
	 * older. */
	double end = now_s() + 20;
	long long total = 0;
	while (now_s() < end) {
		total = 0;
		for (int p = 0; p < SHARDS; p++)
			total += redis_int(c, "XLEN freshet:{" WIKI ":p%d}", p);
		if (total <= SHARDS)
			break;
		msleep(200);
	}
	cr_expect_leq(total, SHARDS, "the streams still hold %lld entries", total);
	worker_term(e);

	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s/freshetctl --config %s status --json",
		 getenv("FRESHET_BUILDDIR"), e->conf);
	FILE *f = popen(cmd, "r");
	cr_assert_not_null(f);
	json_error_t err;
	json_t *st = json_loadf(f, 0, &err);
	pclose(f);
	json_t *parts = json_object_get(json_object_get(st, WIKI), "partitions");
	cr_assert_eq(json_array_size(parts), SHARDS, "status: %s", err.text);
	for (int p = 0; p < SHARDS; p++) {
		json_t *jp = json_array_get(parts, (size_t)p);
		const char *oldest = json_string_value(json_object_get(jp, "oldest"));
		const char *pos = json_string_value(json_object_get(jp, "position"));
		cr_assert(oldest && pos, "partition %d: no oldest entry or position", p);
		cr_expect_str_eq(oldest, pos, "partition %d keeps its position's entry only", p);
		cr_expect_eq(json_integer_value(json_object_get(jp, "margin_s")), 0);
	}
	json_decref(st);
	snprintf(cmd, sizeof cmd, "%s/freshetctl --config %s status | grep -q 'retention: 1 s'",
		 getenv("FRESHET_BUILDDIR"), e->conf);
	cr_expect_eq(system(cmd), 0, "the text status does not show the retention");
	redisFree(c);
	wl_free(&w);
	env_stop(e);
}
