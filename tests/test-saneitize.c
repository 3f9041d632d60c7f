/* SPDX-License-Identifier: MIT */
/*
 * test-saneitize.c: the consistency loop (indexer/saneitize.c) end to end,
 * with the real programs (reindex-page, freshetctl, freshet-worker,
 * freshet-search) against a real MediaWiki (tests/lib/mw.h) whose
 * extension is not loaded, so its changes send no events at all, and a
 * real redis-server.  The index is also damaged by hand through the shard
 * API, as a lost write or an operator's mistake would leave it.
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
#include <unistd.h>

#include "mw.h"
#include "now.h"
#include "shard.h"
#include "testsupport.h"

#define WIKI "sanewiki"
#define SHARDS 2

struct env {
	char *dir;
	char conf[512], data[512], log[512];
	struct test_redis *redis;
	struct mw *mw;
	pid_t worker;
	int metrics_port;
};

/* Writes freshet.conf; extra goes at the end of [wiki]. */
static void write_conf(struct env *e, const char *extra)
{
	FILE *f = fopen(e->conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[redis]\nurl = unix://%s\n\n[worker]\ndata_dir = %s\nthreads = 2\n"
		"commit_ms = 100\nlease_ms = 2000\nshutdown_timeout_ms = 15000\n"
		"metrics_listen = 127.0.0.1:%d\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = %d\nnamespaces = 0\n"
		"rate = 0\n%s",
		e->redis->socket, e->data, e->metrics_port, mw_api_url(e->mw), SHARDS,
		extra ? extra : "");
	fclose(f);
}

static struct env *env_start(const char *extra)
{
	struct env *e = calloc(1, sizeof *e);
	e->dir = test_mkdtemp("saneitize");
	snprintf(e->conf, sizeof e->conf, "%s/freshet.conf", e->dir);
	snprintf(e->data, sizeof e->data, "%s/data", e->dir);
	snprintf(e->log, sizeof e->log, "%s/worker.log", e->dir);
	/* No extension: the wiki's changes reach no stream, as when their
	 * events were lost. */
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en" };
	e->mw = mw_start(&o);
	e->redis = test_redis_start();
	e->metrics_port = test_free_port();
	write_conf(e, extra);
	return e;
}

static void worker_kill(struct env *e)
{
	if (e->worker > 0) {
		kill(e->worker, SIGKILL);
		waitpid(e->worker, NULL, 0);
	}
	e->worker = 0;
}

static void env_stop(struct env *e)
{
	worker_kill(e);
	mw_stop(e->mw);
	test_redis_stop(e->redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(e->dir);
	free(e->dir);
	free(e);
}

static char *binpath(const char *prog)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	char *p;
	cr_assert(asprintf(&p, "%s/%s", b && *b ? b : ".", prog) > 0);
	return p;
}

/* Runs prog --config <conf> args... to its end; returns its exit status
 * and sets *out (caller frees) to its stdout, with stderr appended after a
 * line "--- stderr". */
static int run(struct env *e, char **out, const char *prog, ...)
{
	const char *argv[32];
	int n = 0;
	char *path = binpath(prog);
	argv[n++] = path;
	argv[n++] = "--config";
	argv[n++] = e->conf;
	va_list ap;
	va_start(ap, prog);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 31)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	char fo[600], fe[600];
	snprintf(fo, sizeof fo, "%s/run.out", e->dir);
	snprintf(fe, sizeof fe, "%s/run.err", e->dir);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int o = open(fo, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int er = open(fe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(er, 2);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	int ws;
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	free(path);
	char *so = test_read_file(fo, NULL), *se = test_read_file(fe, NULL);
	cr_assert(asprintf(out, "%s--- stderr\n%s", so ? so : "", se ? se : "") > 0);
	free(so);
	free(se);
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

static void worker_start(struct env *e)
{
	char *bin = binpath("freshet-worker");
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		int fd = open(e->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(bin, bin, "--config", e->conf, (char *)NULL);
		_exit(127);
	}
	free(bin);
	e->worker = pid;
}

/* SIGTERM, once the worker has started; asserts it exits 0. */
static void worker_term(struct env *e)
{
	double end = now_s() + 30;
	for (;;) {
		char *log = test_read_file(e->log, NULL);
		bool up = log && strstr(log, "action=start ");
		free(log);
		if (up || now_s() > end)
			break;
		sleep_ms(50);
	}
	kill(e->worker, SIGTERM);
	int ws = -1;
	end = now_s() + 30;
	while (now_s() < end && waitpid(e->worker, &ws, WNOHANG) == 0)
		sleep_ms(50);
	e->worker = 0;
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "freshet-worker did not exit 0 on SIGTERM; log in %s", e->log);
}

/* The titles freshet-search finds for query, joined by '|' ("" for none). */
static char *found(struct env *e, const char *query)
{
	char *out;
	int rc = run(e, &out, "freshet-search", "--wiki", WIKI, "--json", query, NULL);
	cr_assert_eq(rc, 0, "freshet-search %s: %s", query, out);
	json_t *root = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert(json_is_array(root), "not a JSON array: %s", out);
	char buf[1024] = "";
	size_t i;
	json_t *r;
	json_array_foreach(root, i, r) {
		const char *t = json_string_value(json_object_get(r, "title"));
		size_t len = strlen(buf);
		snprintf(buf + len, sizeof buf - len, "%s%s", len ? "|" : "", t ? t : "?");
	}
	json_decref(root);
	free(out);
	return strdup(buf);
}

static bool finds(struct env *e, const char *query, const char *want)
{
	char *t = found(e, query);
	bool ok = strcmp(t, want) == 0;
	free(t);
	return ok;
}

/* A document as the worker would write it, reduced to what a search and
 * the loop read: title, namespace 0, revision, one body word. */
static struct shard_doc *hand_doc(long id, const char *title, long rev, const char *word)
{
	struct shard_doc *d = shard_doc_new((uint64_t)id);
	shard_doc_set_title(d, title);
	shard_doc_set_namespace(d, 0);
	shard_doc_set_language(d, "en");
	shard_doc_set_url(d, "http://127.0.0.1/index.php/X");
	shard_doc_set_rev(d, (uint64_t)rev, 1700000000);
	shard_doc_set_text(d, word, strlen(word));
	shard_doc_add_posting(d, SHARD_PREFIX_BODY, word, strlen(word), 1);
	shard_doc_add_term(d, SHARD_PREFIX_STEM, word, strlen(word));
	shard_doc_add_posting(d, SHARD_PREFIX_TITLE, title, strlen(title), 1);
	return d;
}

/* Opens the live shard of page id as its writer. */
static struct shard *open_shard(struct env *e, long id)
{
	struct shard_set *set = shard_set_new(e->data, WIKI);
	char *path = shard_set_path(set, NULL, shard_route((uint64_t)id, SHARDS));
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, path, 0), STATUS_OK, "%s", shard_errmsg(sh));
	free(path);
	shard_set_free(set);
	return sh;
}

static void commit_shard(struct shard *sh)
{
	uint64_t fence = 0;
	cr_assert_eq(shard_get_fence(sh, &fence), STATUS_OK);
	cr_assert_eq(shard_commit(sh, fence), STATUS_OK, "%s", shard_errmsg(sh));
	shard_free(sh);
}

/* Removes page id's document from the index. */
static void drop_doc(struct env *e, long id)
{
	struct shard *sh = open_shard(e, id);
	cr_assert_eq(shard_delete(sh, (uint64_t)id), STATUS_OK, "%s", shard_errmsg(sh));
	commit_shard(sh);
}

/* Puts d in place of its page's document, whatever revision it had. */
static void force_doc(struct env *e, struct shard_doc *d)
{
	long id = (long)shard_doc_page_id(d);
	struct shard *sh = open_shard(e, id);
	/* The rev guard would skip an older revision: delete first. */
	enum status st = shard_delete(sh, (uint64_t)id);
	cr_assert(st == STATUS_OK || st == STATUS_NOOP, "%s", shard_errmsg(sh));
	cr_assert_eq(shard_replace(sh, d), STATUS_OK, "%s", shard_errmsg(sh));
	commit_shard(sh);
	shard_doc_free(d);
}

/* A field of the loop's hash, as a number (0 when absent). */
static long long hash_field(struct env *e, const char *field)
{
	redisContext *c = redisConnectUnix(e->redis->socket);
	cr_assert(c && !c->err);
	redisReply *r = redisCommand(c, "HGET freshet:{" WIKI "}:saneitize %s", field);
	cr_assert_not_null(r);
	long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

static void build_index(struct env *e)
{
	char *out;
	int rc = run(e, &out, "reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(rc, 0, "reindex-page --all: %s", out);
	free(out);
}

TestSuite(saneitize, .timeout = 600);

Test(saneitize, one_pass_repairs_every_kind_of_drift)
{
	struct env *e = env_start(NULL);
	long id_edit, id_del, id_move, id_removed, id_old, rev_old1, rev_old2;
	mw_edit(e->mw, "Sane edit", "An original alphaword page.", &id_edit, NULL);
	mw_edit(e->mw, "Sane delete", "A deleteword page.", &id_del, NULL);
	mw_edit(e->mw, "Sane move", "A moveword page.", &id_move, NULL);
	mw_edit(e->mw, "Sane removed", "A removedword page.", &id_removed, NULL);
	mw_edit(e->mw, "Sane old", "An oldrevword page.", &id_old, &rev_old1);
	mw_edit(e->mw, "Sane old", "A newrevword page.", NULL, &rev_old2);
	mw_edit(e->mw, "Sane fine", "A fineword page.", NULL, NULL);
	cr_assert_gt(rev_old2, rev_old1);
	build_index(e);
	cr_assert(finds(e, "alphaword", "Sane edit"));

	/* The wiki changes; no event reaches Redis. */
	long id_new;
	mw_edit(e->mw, "Sane edit", "A changed zebraword page.", NULL, NULL);
	mw_delete(e->mw, "Sane delete");
	mw_move(e->mw, "Sane move", "Sane moved", false);
	mw_edit(e->mw, "Sane created", "A createdword page.", &id_new, NULL);
	/* The index is damaged by hand. */
	const long ghost = 900001;
	drop_doc(e, id_removed);
	force_doc(e, hand_doc(id_old, "Sane old", rev_old1, "oldrevword"));
	force_doc(e, hand_doc(ghost, "Sane ghost", 5, "ghostword"));
	cr_assert(finds(e, "ghostword", "Sane ghost"));
	cr_assert(finds(e, "oldrevword", "Sane old"));
	cr_assert(finds(e, "removedword", ""));
	cr_assert(finds(e, "zebraword", ""));

	char *out;
	int rc = run(e, &out, "freshetctl", "saneitize", "--wiki", WIKI, "--now", NULL);
	cr_assert_eq(rc, 0, "freshetctl saneitize --now: %s", out);
	char want[128];
	struct { const char *kind; long id; } fixes[] = {
		{ "stale", id_edit }, { "ghost", id_del }, { "moved", id_move },
		{ "missing", id_new }, { "missing", id_removed }, { "stale", id_old },
		{ "ghost", ghost },
	};
	for (size_t i = 0; i < sizeof fixes / sizeof fixes[0]; i++) {
		snprintf(want, sizeof want, "%-8s page %ld ", fixes[i].kind, fixes[i].id);
		cr_assert_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
	}
	cr_assert_not_null(strstr(out, "fixes: missing 2, stale 2, moved 1, ghost 2"), "%s",
			   out);
	free(out);
	cr_assert_eq(hash_field(e, "last_fix_ghost"), 2);

	/* The worker applies the repairs like any event. */
	worker_start(e);
	double end = now_s() + 120;
	bool ok = false;
	while (!ok && now_s() < end) {
		ok = finds(e, "zebraword", "Sane edit") && finds(e, "deleteword", "") &&
		     finds(e, "moveword", "Sane moved") && finds(e, "createdword", "Sane created") &&
		     finds(e, "ghostword", "") && finds(e, "newrevword", "Sane old") &&
		     finds(e, "removedword", "Sane removed");
		if (!ok)
			sleep_ms(500);
	}
	worker_term(e);
	cr_assert(ok, "not repaired: zebraword [%s] deleteword [%s] moveword [%s] "
		  "createdword [%s] ghostword [%s] newrevword [%s] removedword [%s]",
		  found(e, "zebraword"), found(e, "deleteword"), found(e, "moveword"),
		  found(e, "createdword"), found(e, "ghostword"), found(e, "newrevword"),
		  found(e, "removedword"));

	/* A second pass finds nothing left to repair: it checks each page of
	 * the wiki and each document once. */
	struct mw_page_list *pages = mw_all_pages(e->mw);
	long n = 0;
	for (size_t i = 0; i < pages->n; i++)
		n += pages->pages[i].ns == 0;
	mw_page_list_free(pages);
	rc = run(e, &out, "freshetctl", "saneitize", "--wiki", WIKI, "--now", NULL);
	cr_assert_eq(rc, 0, "%s", out);
	snprintf(want, sizeof want, WIKI ": pass 2 checked %ld pages and documents; "
		 "fixes: missing 0, stale 0, moved 0, ghost 0", 2 * n);
	cr_assert_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
	free(out);
	rc = run(e, &out, "freshetctl", "--wiki", WIKI, "status", NULL);
	cr_assert_eq(rc, 0, "%s", out);
	snprintf(want, sizeof want, "saneitize: pass 2 100%% (%ld checked; fixes: missing 0, "
		 "stale 0, moved 0, ghost 0)", 2 * n);
	cr_assert_not_null(strstr(out, want), "no '%s' in:\n%s", want, out);
	cr_assert_not_null(strstr(out, "last full pass: 2, ended"), "%s", out);
	free(out);
	env_stop(e);
}

Test(saneitize, worker_loop_resumes_its_pass_after_a_restart)
{
	/* A pass over 10 pages and their documents, two per step, spread
	 * over 20 seconds: about a step a second. */
	struct env *e = env_start("saneitize_interval_s = 20\nsaneitize_batch = 2\n");
	const char *titles[9];
	const char *texts[9];
	char tb[9][32], xb[9][64];
	for (int i = 0; i < 9; i++) {
		snprintf(tb[i], sizeof tb[i], "Loop page %d", i);
		snprintf(xb[i], sizeof xb[i], "Loop text loopword%c.", 'a' + i);
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	long ids[9];
	mw_seed(e->mw, 9, titles, texts, ids, NULL);
	build_index(e);
	drop_doc(e, ids[4]);
	cr_assert(finds(e, "loopworde", ""));

	worker_start(e);
	double end = now_s() + 60;
	while (hash_field(e, "checked") < 6 && now_s() < end)
		sleep_ms(100);
	worker_term(e);
	long long cycle = hash_field(e, "cycle"), started = hash_field(e, "started_ms");
	long long checked = hash_field(e, "checked");
	cr_assert_eq(cycle, 1, "the first pass");
	cr_assert_eq(hash_field(e, "done"), 0, "the pass ended before the restart");
	cr_assert_geq(checked, 6);

	/* The restarted worker goes on with the same pass. */
	worker_start(e);
	end = now_s() + 90;
	while (hash_field(e, "last_cycle") < 1 && now_s() < end)
		sleep_ms(200);
	cr_assert_eq(hash_field(e, "last_cycle"), 1, "the pass did not end; log in %s", e->log);
	cr_assert_eq(hash_field(e, "last_started_ms"), started,
		     "the pass began again instead of going on");
	/* 10 pages (Main Page too) and their documents; the missing one may
	 * be back before the documents are walked. */
	long long last_checked = hash_field(e, "last_checked");
	cr_assert(last_checked == 19 || last_checked == 20, "checked %lld", last_checked);
	cr_assert_eq(hash_field(e, "last_fix_missing"), 1);
	end = now_s() + 60;
	while (!finds(e, "loopworde", "Loop page 4") && now_s() < end)
		sleep_ms(300);
	cr_assert(finds(e, "loopworde", "Loop page 4"));
	/* This run's checks are counted in its metrics (a next pass may
	 * have begun meanwhile). */
	double m = test_metric_sum(e->metrics_port, "freshet_saneitize_pages_checked_total{",
				   "wiki=\"" WIKI "\"");
	cr_assert_geq(m, last_checked - checked, "checked metric %g", m);
	worker_term(e);
	env_stop(e);
}
