/* SPDX-License-Identifier: MIT */
/*
 * test-tools.c: the operator programs, run as real binaries (fork/exec from
 * $FRESHET_BUILDDIR) against a real MediaWiki (tests/lib/mw.h) and a real
 * redis-server (tests/lib/testsupport.h).
 *
 * Each test gets its own wiki, Redis, data directory and freshet.conf, so
 * the tests run in parallel with each other and with other test binaries.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "mw.h"
#include "testsupport.h"

#define WIKI "toolswiki"

struct env {
	char *dir;          /* scratch: conf, data, outputs */
	char *conf;
	char *data;
	struct test_redis *redis;
	struct mw *mw;
};

static struct env E;

/* Writes a configuration file `name` in the scratch directory for the
 * wiki, with `rate` fetches per second (0 = unbounded) and extra lines in
 * [wiki]; returns its path (caller frees). */
static char *conf_file(const char *name, const char *rate, const char *wiki_extra)
{
	char *path;
	cr_assert(asprintf(&path, "%s/%s", E.dir, name) > 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "[redis]\nurl = unix://%s\n\n[worker]\ndata_dir = %s\n"
		"commit_ms = 100\nlease_ms = 5000\n\n[wiki " WIKI "]\napi = %s\n"
		"language = en\nshards = 2\nnamespaces = 0\nrate = %s\n%s",
		E.redis->socket, E.data, E.mw ? mw_api_url(E.mw) : "http://127.0.0.1:9/api.php",
		rate, wiki_extra ? wiki_extra : "");
	fclose(f);
	return path;
}

static void write_conf(const char *wiki_extra)
{
	free(E.conf);
	E.conf = conf_file("freshet.conf", "0", wiki_extra);
}

static void setup_common(bool with_wiki)
{
	memset(&E, 0, sizeof E);
	E.dir = test_mkdtemp("tools");
	cr_assert(asprintf(&E.data, "%s/data", E.dir) > 0);
	/* The wiki first: if it cannot start, no Redis is left running. */
	if (with_wiki) {
		struct mw_opts o = { .wiki_id = WIKI, .lang = "en" };
		E.mw = mw_start(&o);
	}
	E.redis = test_redis_start();
	write_conf(NULL);
}

static void setup_wiki(void) { setup_common(true); }
static void setup_redis(void) { setup_common(false); }

static void teardown(void)
{
	mw_stop(E.mw);
	test_redis_stop(E.redis);
	test_rmtree(E.dir);
	free(E.dir);
	free(E.conf);
	free(E.data);
}

/* The output of a program run. */
struct out {
	int status;     /* exit status, or -1 when killed */
	char *out;      /* stdout */
	char *err;      /* stderr */
};

static void out_free(struct out *o)
{
	free(o->out);
	free(o->err);
}

static char *binpath(const char *prog)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	char *p;
	cr_assert(asprintf(&p, "%s/%s", b && *b ? b : ".", prog) > 0);
	return p;
}

/* Starts prog with args (NULL-terminated) and --config first; stdout and
 * stderr go to files named after `tag` in the scratch directory. */
static pid_t spawn(const char *tag, const char *prog, const char *const *args)
{
	char *path = binpath(prog);
	char *fo, *fe;
	cr_assert(asprintf(&fo, "%s/%s.out", E.dir, tag) > 0);
	cr_assert(asprintf(&fe, "%s/%s.err", E.dir, tag) > 0);
	const char *argv[64];
	size_t n = 0;
	argv[n++] = path;
	argv[n++] = "--config";
	argv[n++] = E.conf;
	for (size_t i = 0; args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int o = open(fo, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(fe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(o, 1);
		dup2(e, 2);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	free(path);
	free(fo);
	free(fe);
	return pid;
}

static struct out collect(const char *tag, pid_t pid)
{
	int st;
	cr_assert(waitpid(pid, &st, 0) == pid);
	struct out o = { .status = WIFEXITED(st) ? WEXITSTATUS(st) : -1 };
	char *fo, *fe;
	cr_assert(asprintf(&fo, "%s/%s.out", E.dir, tag) > 0);
	cr_assert(asprintf(&fe, "%s/%s.err", E.dir, tag) > 0);
	o.out = test_read_file(fo, NULL);
	o.err = test_read_file(fe, NULL);
	if (!o.out)
		o.out = strdup("");
	if (!o.err)
		o.err = strdup("");
	free(fo);
	free(fe);
	return o;
}

/* Runs prog to completion. */
static struct out run(const char *prog, ...)
{
	const char *args[48];
	size_t n = 0;
	va_list ap;
	va_start(ap, prog);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 47)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	static int seq;
	char tag[32];
	snprintf(tag, sizeof tag, "run%d", seq++);
	return collect(tag, spawn(tag, prog, args));
}

static redisContext *redis_ctx(void)
{
	redisContext *c = redisConnectUnix(E.redis->socket);
	cr_assert(c && !c->err, "redis connect");
	return c;
}

/* Parses the --json output of freshet-search; returns the results array
 * (borrowed from *root). */
static json_t *search_json(json_t **root, const char *query)
{
	struct out o = run("freshet-search", "--wiki", WIKI, "--json", query, NULL);
	cr_assert_eq(o.status, 0, "freshet-search failed: %s", o.err);
	json_error_t jerr;
	*root = json_loads(o.out, 0, &jerr);
	cr_assert_not_null(*root, "not JSON (%s): %s", jerr.text, o.out);
	json_t *res = *root;
	cr_assert(json_is_array(res), "not an array: %s", o.out);
	out_free(&o);
	return res;
}

/* True when the results hold a page with this title. */
static bool has_title(json_t *res, const char *title)
{
	size_t i;
	json_t *r;
	json_array_foreach(res, i, r) {
		const char *t = json_string_value(json_object_get(r, "title"));
		if (t && strcmp(t, title) == 0)
			return true;
	}
	return false;
}

/* Sums field ("documents", "dead") over the shards of freshetctl status
 * --json. */
static long shard_counts(const char *field)
{
	struct out o = run("freshetctl", "status", "--json", NULL);
	cr_assert_eq(o.status, 0, "freshetctl status failed: %s", o.err);
	json_t *root = json_loads(o.out, 0, NULL);
	cr_assert_not_null(root, "not JSON: %s", o.out);
	json_t *shards = json_object_get(json_object_get(root, WIKI), "shards");
	cr_assert(json_is_array(shards), "no shards: %s", o.out);
	long n = 0;
	size_t i;
	json_t *sh;
	json_array_foreach(shards, i, sh)
		n += (long)json_integer_value(json_object_get(sh, field));
	json_decref(root);
	out_free(&o);
	return n;
}

static void seed_pages(void)
{
	const char *titles[] = { "Aardvark facts", "Binturong notes", "Capybara life" };
	const char *texts[] = {
		"The aardvark digs burrows at night and eats termites with a long tongue.",
		"A binturong smells of popcorn; it climbs trees in southeast Asia.",
		"The capybara is the largest rodent and lives near rivers and lakes.",
	};
	mw_seed(E.mw, 3, titles, texts, NULL, NULL);
}

/* ------------------------------------------------------------------ tests */

Test(tools, direct_reindex_then_search, .init = setup_wiki, .fini = teardown,
     .timeout = 120)
{
	seed_pages();
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	/* The three pages and the wiki's Main Page. */
	cr_assert(strstr(o.err, "4 indexed") && strstr(o.err, " 0 failed"), "summary: %s", o.err);
	out_free(&o);

	/* Text output: title, score, URL and a highlighted snippet. */
	o = run("freshet-search", "--wiki", WIKI, "termites", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, "Aardvark facts"), "text output: %s", o.out);
	cr_assert(strstr(o.out, "score"), "text output: %s", o.out);
	cr_assert(strstr(o.out, "[termites]"), "no highlighted snippet: %s", o.out);
	cr_assert(strstr(o.out, "127.0.0.1"), "no URL: %s", o.out);
	cr_assert_null(strstr(o.out, "Capybara"), "unrelated page found: %s", o.out);
	out_free(&o);

	/* JSON output; stemming finds "rivers" from "river". */
	json_t *root;
	json_t *res = search_json(&root, "river");
	cr_assert_eq(json_array_size(res), 1, "results: %s", json_dumps(root, 0));
	json_t *r0 = json_array_get(res, 0);
	cr_assert_str_eq(json_string_value(json_object_get(r0, "title")), "Capybara life");
	struct mw_page_info info;
	cr_assert(mw_page_info(E.mw, "Capybara life", &info));
	cr_assert_eq(json_integer_value(json_object_get(r0, "page_id")), info.page_id);
	cr_assert(json_real_value(json_object_get(r0, "score")) > 0);
	cr_assert(strstr(json_string_value(json_object_get(r0, "snippet")), "[rivers]"),
		  "snippet: %s", json_string_value(json_object_get(r0, "snippet")));
	json_decref(root);

	/* A phrase matches only in order; a title word ranks its page first. */
	res = search_json(&root, "\"long tongue\"");
	cr_assert(has_title(res, "Aardvark facts"));
	json_decref(root);
	res = search_json(&root, "\"tongue long\"");
	cr_assert_eq(json_array_size(res), 0);
	json_decref(root);

	/* check and compact the shards; a shard whose partition someone
	 * holds is skipped, and searching goes on after the compaction. */
	o = run("freshetctl", "check", NULL);
	cr_assert_eq(o.status, 0, "%s%s", o.out, o.err);
	cr_assert(strstr(o.out, WIKI " shard 0: ok") && strstr(o.out, WIKI " shard 1: ok"),
		  "%s", o.out);
	out_free(&o);
	redisContext *c = redis_ctx();
	redisReply *lr = redisCommand(c, "SET freshet:{" WIKI ":p1}:lease some-worker PX 60000");
	freeReplyObject(lr);
	o = run("freshetctl", "compact", NULL);
	cr_assert_eq(o.status, 1, "a held shard must make compact fail: %s", o.out);
	cr_assert(strstr(o.out, WIKI " shard 0: compacted"), "%s%s", o.out, o.err);
	cr_assert(strstr(o.out, WIKI " shard 1: skipped"), "%s", o.out);
	out_free(&o);
	redisFree(c);
	o = run("freshet-search", "--wiki", WIKI, "termites", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, "Aardvark facts"), "after compaction: %s", o.out);
	out_free(&o);

	/* A deleted page is gone from searches and counts at once; it waits
	 * as a dead document until compact (or an idle worker) purges it. */
	lr = redisCommand(c = redis_ctx(), "DEL freshet:{" WIKI ":p1}:lease");
	freeReplyObject(lr);
	redisFree(c);
	cr_assert(mw_page_info(E.mw, "Binturong notes", &info));
	char gone[32];
	snprintf(gone, sizeof gone, "%ld", (long)info.page_id);
	mw_delete(E.mw, "Binturong notes");
	o = run("reindex-page", "--wiki", WIKI, "--page-id", gone, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	res = search_json(&root, "popcorn");
	cr_assert_eq(json_array_size(res), 0, "deleted page found: %s", json_dumps(root, 0));
	json_decref(root);
	cr_assert_eq(shard_counts("dead"), 1);
	cr_assert_eq(shard_counts("documents"), 3);
	o = run("freshetctl", "compact", NULL);
	cr_assert_eq(o.status, 0, "%s%s", o.out, o.err);
	cr_assert(strstr(o.out, "purged 1 deleted pages"), "%s", o.out);
	out_free(&o);
	cr_assert_eq(shard_counts("dead"), 0);
	cr_assert_eq(shard_counts("documents"), 3);
	res = search_json(&root, "popcorn");
	cr_assert_eq(json_array_size(res), 0, "results: %s", json_dumps(root, 0));
	json_decref(root);
	res = search_json(&root, "termites");
	cr_assert_eq(json_array_size(res), 1, "results: %s", json_dumps(root, 0));
	json_decref(root);

	/* A missing title makes the exit status say so. */
	o = run("reindex-page", "--wiki", WIKI, "--title", "No such page here", NULL);
	cr_assert_eq(o.status, 1, "exit %d: %s", o.status, o.err);
	out_free(&o);
}

/* Writes freshet.conf with api as the wiki's api. */
static void write_conf_api(const char *api)
{
	FILE *f = fopen(E.conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[redis]\nurl = unix://%s\n\n[worker]\ndata_dir = %s\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = 2\nrate = 0\n",
		E.redis->socket, E.data, api);
	fclose(f);
}

/* Credentials in the api URL reach the wiki, never a document or a message. */
Test(tools, api_credentials_are_not_shown, .init = setup_wiki, .fini = teardown,
     .timeout = 120)
{
	seed_pages();
	const char *api = mw_api_url(E.mw);
	cr_assert(strncmp(api, "http://", 7) == 0);
	char *secret_api;
	cr_assert(asprintf(&secret_api, "http://freshet:s3cret@%s", api + 7) > 0);
	write_conf_api(secret_api);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	cr_assert_null(strstr(o.err, "s3cret"), "%s", o.err);
	out_free(&o);
	json_t *root;
	json_t *res = search_json(&root, "termites");
	cr_assert_eq(json_array_size(res), 1);
	const char *url = json_string_value(json_object_get(json_array_get(res, 0), "url"));
	char *want;
	cr_assert(asprintf(&want, "http://127.0.0.1:%d/index.php?title=Aardvark_facts",
			   mw_port(E.mw)) > 0);
	cr_assert_str_eq(url, want);
	free(want);
	json_decref(root);
	o = run("freshet-search", "--wiki", WIKI, "termites", NULL);
	cr_assert_null(strstr(o.out, "s3cret"), "%s", o.out);
	out_free(&o);

	/* A wiki that cannot be reached: the error names the URL, without
	 * the credentials. */
	free(secret_api);
	cr_assert(asprintf(&secret_api, "http://freshet:s3cret@127.0.0.1:%d/w/api.php",
			   test_free_port()) > 0);
	write_conf_api(secret_api);
	o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_neq(o.status, 0);
	cr_assert(strstr(o.err, "127.0.0.1"), "the error names no URL: %s", o.err);
	cr_assert_null(strstr(o.err, "s3cret"), "%s", o.err);
	out_free(&o);
	free(secret_api);
}

/* Counts what under path (itself included) has a world permission bit,
 * and names the first in *first (caller frees). */
static int world_accessible(const char *path, char **first)
{
	struct stat st;
	if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode))
		return 0;
	int n = 0;
	if (st.st_mode & S_IRWXO) {
		if (!*first)
			*first = strdup(path);
		n++;
	}
	if (!S_ISDIR(st.st_mode))
		return n;
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "ls -A '%s'", path);
	FILE *f = popen(cmd, "r");
	char name[512];
	while (f && fgets(name, sizeof name, f)) {
		name[strcspn(name, "\n")] = '\0';
		char *child;
		cr_assert(asprintf(&child, "%s/%s", path, name) > 0);
		n += world_accessible(child, first);
		free(child);
	}
	if (f)
		pclose(f);
	return n;
}

/* An operator's shell umask (022) does not make the index world-readable. */
Test(tools, index_is_not_world_readable, .init = setup_wiki, .fini = teardown,
     .timeout = 120)
{
	seed_pages();
	mode_t old = umask(022);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	out_free(&o);
	o = run("freshetctl", "compact", NULL);
	cr_assert_eq(o.status, 0, "freshetctl compact failed: %s%s", o.out, o.err);
	out_free(&o);
	umask(old);
	char *first = NULL;
	int n = world_accessible(E.data, &first);
	cr_assert_eq(n, 0, "%d paths world-accessible, the first %s", n, first);
	struct stat st;
	cr_assert_eq(stat(E.data, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0750, "data_dir mode %o", st.st_mode & 0777);
	free(first);
}

/* The data "redirects" of the one hit of query, sorted and joined by
 * "|", with its title in *title (static buffer). */
static const char *hit_redirect(const char *query, const char **via)
{
	static char title[256], rt[256];
	json_t *root;
	json_t *res = search_json(&root, query);
	cr_assert_eq(json_array_size(res), 1, "'%s': %s", query, json_dumps(root, 0));
	json_t *r0 = json_array_get(res, 0);
	snprintf(title, sizeof title, "%s", json_string_value(json_object_get(r0, "title")));
	const char *v = json_string_value(json_object_get(r0, "redirect_title"));
	snprintf(rt, sizeof rt, "%s", v ? v : "");
	json_decref(root);
	*via = rt;
	return title;
}

Test(tools, reindex_all_puts_redirects_in_their_targets, .init = setup_wiki,
     .fini = teardown, .timeout = 120)
{
	seed_pages();
	mw_edit(E.mw, "Orycteropus", "#REDIRECT [[Aardvark facts]]", NULL, NULL);
	mw_edit(E.mw, "Earth pig", "#REDIRECT [[Aardvark facts]]", NULL, NULL);
	mw_edit(E.mw, "Bearcat", "#REDIRECT [[Binturong notes]]", NULL, NULL);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	/* The three pages and Main Page; the redirects are no documents. */
	cr_assert(strstr(o.err, "4 indexed") && strstr(o.err, " 0 failed"), "summary: %s",
		  o.err);
	out_free(&o);
	cr_assert_eq(shard_counts("documents"), 4);

	const char *via;
	cr_assert_str_eq(hit_redirect("orycteropus", &via), "Aardvark facts");
	cr_assert_str_eq(via, "Orycteropus");
	cr_assert_str_eq(hit_redirect("\"earth pig\"", &via), "Aardvark facts");
	cr_assert_str_eq(via, "Earth pig");
	cr_assert_str_eq(hit_redirect("bearcat", &via), "Binturong notes");
	cr_assert_str_eq(via, "Bearcat");
	/* A word of the title: found through the title, not a redirect. */
	cr_assert_str_eq(hit_redirect("aardvark", &via), "Aardvark facts");
	cr_assert_str_eq(via, "");

	/* The text output names the redirect. */
	o = run("freshet-search", "--wiki", WIKI, "bearcat", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, "Binturong notes (redirect from Bearcat)"), "%s", o.out);
	out_free(&o);

	/* A redirect named by id goes to its target in the same run; the
	 * target it left lets it go. */
	mw_edit(E.mw, "Bearcat", "#REDIRECT [[Capybara life]]", NULL, NULL);
	struct mw_page_info info;
	cr_assert(mw_page_info(E.mw, "Bearcat", &info));
	char id[32];
	snprintf(id, sizeof id, "%ld", info.page_id);
	o = run("reindex-page", "--wiki", WIKI, "--page-id", id, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	cr_assert_str_eq(hit_redirect("bearcat", &via), "Capybara life");
	cr_assert_str_eq(via, "Bearcat");
	json_t *root;
	json_t *res = search_json(&root, "bearcat");
	cr_assert_not(has_title(res, "Binturong notes"));
	cr_assert_not(has_title(res, "Bearcat"));
	json_decref(root);
	cr_assert_eq(shard_counts("documents"), 4);
}

Test(tools, dry_run_writes_nothing, .init = setup_wiki, .fini = teardown,
     .timeout = 120)
{
	seed_pages();
	struct out o = run("reindex-page", "--wiki", WIKI, "--dry-run", "--title",
			   "Binturong notes", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	/* The document's terms, per field: plain body, stemmed body, title. */
	cr_assert(strstr(o.out, "popcorn wdf="), "no body term: %s", o.out);
	cr_assert(strstr(o.out, "Zclimb"), "no stemmed term: %s", o.out);
	cr_assert(strstr(o.out, "Sbinturong"), "no title term: %s", o.out);
	cr_assert(strstr(o.out, "title:"), "no field grouping: %s", o.out);
	out_free(&o);
	struct stat sb;
	cr_assert(stat(E.data, &sb) != 0 && errno == ENOENT,
		  "--dry-run created %s", E.data);
}

Test(tools, queue_puts_rerender_events, .init = setup_wiki, .fini = teardown,
     .timeout = 120)
{
	seed_pages();
	struct mw_page_info a, b;
	cr_assert(mw_page_info(E.mw, "Aardvark facts", &a));
	cr_assert(mw_page_info(E.mw, "Binturong notes", &b));
	struct out o = run("reindex-page", "--wiki", WIKI, "--queue", "--title",
			   "Aardvark facts", "--page-id", "99999", "--title",
			   "Binturong notes", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);

	redisContext *c = redis_ctx();
	long found = 0;
	for (int p = 0; p < 2; p++) {
		redisReply *r = redisCommand(c, "XRANGE freshet:{" WIKI ":p%d} - +", p);
		cr_assert(r && r->type == REDIS_REPLY_ARRAY);
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *f = r->element[i]->element[1];
			cr_assert_str_eq(f->element[0]->str, "event");
			json_t *ev = json_loads(f->element[1]->str, 0, NULL);
			cr_assert_not_null(ev);
			long id = (long)json_integer_value(json_object_get(ev, "page_id"));
			const char *schema = json_string_value(json_object_get(ev, "$schema"));
			if (!id) /* a page/change event (the delete of the missing id) */
				id = (long)json_integer_value(json_object_get(
					json_object_get(ev, "page"), "page_id"));
			cr_assert_eq(id % 2, p, "page %ld on partition %d", id, p);
			if (id == a.page_id || id == b.page_id) {
				cr_assert(strstr(schema, "page_rerender"), "schema %s", schema);
				cr_assert_str_eq(json_string_value(json_object_get(ev, "wiki_id")),
						 WIKI);
				found++;
			} else {
				cr_assert_eq(id, 99999);
				found += 10;
			}
			json_decref(ev);
		}
		freeReplyObject(r);
	}
	cr_assert_eq(found, 12, "events found: %ld", found);
	redisFree(c);
}

/* Returns the generation `current` points at (caller frees). */
static char *current_generation(void)
{
	char *link, buf[256];
	cr_assert(asprintf(&link, "%s/" WIKI "/current", E.data) > 0);
	ssize_t n = readlink(link, buf, sizeof buf - 1);
	free(link);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	char *s = strrchr(buf, '/');
	return strdup(s ? s + 1 : buf);
}

static size_t count_generations(void)
{
	char *cmd;
	cr_assert(asprintf(&cmd, "ls -d %s/" WIKI "/g* 2>/dev/null | wc -l", E.data) > 0);
	FILE *p = popen(cmd, "r");
	free(cmd);
	size_t n = 0;
	cr_assert(fscanf(p, "%zu", &n) == 1);
	pclose(p);
	return n;
}

Test(tools, rebuild_swaps_while_search_answers, .init = setup_wiki,
     .fini = teardown, .timeout = 180)
{
	enum { N = 24 };
	const char *titles[N], *texts[N];
	char tb[N][64], xb[N][128];
	for (int i = 0; i < N; i++) {
		snprintf(tb[i], sizeof tb[i], "Okapi page %d", i);
		snprintf(xb[i], sizeof xb[i], "The okapi number %d lives in the forest.", i);
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	mw_seed(E.mw, N, titles, texts, NULL, NULL);

	/* Searches keep answering while the index is written (commits every
	 * 100 ms here), and never lose a page they had found. */
	const char *all[] = { "--wiki", WIKI, "--all", "--quiet", NULL };
	pid_t writer = spawn("first", "reindex-page", all);
	char *cur = NULL;
	for (int i = 0; i < 100 && !(cur = current_generation()); i++)
		usleep(50 * 1000);
	cr_assert_not_null(cur, "no live generation appeared");
	free(cur);
	size_t seen = 0, searches = 0;
	int wst;
	while (waitpid(writer, &wst, WNOHANG) == 0) {
		struct out so = run("freshet-search", "--wiki", WIKI, "--json", "--limit", "100",
				    "okapi", NULL);
		cr_assert_eq(so.status, 0, "a search during the writes failed: %s", so.err);
		json_t *j = json_loads(so.out, 0, NULL);
		cr_assert(json_is_array(j), "%s", so.out);
		size_t n = json_array_size(j);
		cr_assert_geq(n, seen, "a search lost pages: %zu after %zu", n, seen);
		seen = n;
		searches++;
		json_decref(j);
		out_free(&so);
	}
	cr_assert(WIFEXITED(wst) && WEXITSTATUS(wst) == 0, "reindex-page --all failed");
	cr_assert_geq(searches, 1);
	struct out o;
	char *old = current_generation();
	cr_assert_not_null(old);

	/* A slow rebuild (4 fetches/s, one at a time), so that searches run
	 * during it. */
	char *conf_fast = E.conf;
	E.conf = conf_file("slow.conf", "4", "concurrency = 1\n");
	const char *args[] = { "--wiki", WIKI, "--rebuild", NULL };
	pid_t pid = spawn("rebuild", "reindex-page", args);

	/* While the new generation is being built, searches answer from the
	 * old one with every page. */
	free(E.conf);
	E.conf = conf_fast;
	bool saw_building = false;
	for (int i = 0; i < 100 && !saw_building; i++) {
		if (count_generations() == 2)
			saw_building = true;
		else
			usleep(100 * 1000);
	}
	cr_assert(saw_building, "no new generation appeared");
	json_t *root;
	json_t *res;
	cur = current_generation();
	cr_assert_str_eq(cur, old, "current moved before the rebuild finished");
	free(cur);
	o = run("freshet-search", "--wiki", WIKI, "--json", "--limit", "100", "okapi", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	root = json_loads(o.out, 0, NULL);
	res = root;
	cr_assert_eq(json_array_size(res), N, "during rebuild: %zu results",
		     json_array_size(res));
	json_decref(root);
	out_free(&o);

	/* A change during the build, after its page was fetched (pages go in
	 * title order at 4/s: "Okapi page 0" is among the first), announced on
	 * the stream: the rebuild's catch-up must bring it into the new
	 * generation (no worker runs here). */
	usleep(2000 * 1000);
	mw_edit(E.mw, "Okapi page 0", "The okapi number 0 was zebrafied.", NULL, NULL);
	o = run("reindex-page", "--wiki", WIKI, "--queue", "--title", "Okapi page 0", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);

	struct out rb = collect("rebuild", pid);
	cr_assert_eq(rb.status, 0, "rebuild failed: %s", rb.err);
	cr_assert(strstr(rb.err, "catching up with 1 pages"), "no catch-up: %s", rb.err);
	out_free(&rb);
	cur = current_generation();
	cr_assert_str_neq(cur, old, "current did not move");
	free(cur);
	cr_assert_eq(count_generations(), 2, "the old generation is kept");
	o = run("freshet-search", "--wiki", WIKI, "--json", "--limit", "100", "okapi", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	root = json_loads(o.out, 0, NULL);
	cr_assert_eq(json_array_size(root), N,
		     "after the rebuild: %s", o.out);
	json_decref(root);
	out_free(&o);
	res = search_json(&root, "zebrafied");
	cr_assert(has_title(res, "Okapi page 0"), "the change during the build is lost");
	json_decref(root);
	free(old);
}

/* Adds a dead letter for page_id whose source is partition p. */
static char *add_dead(redisContext *c, long page_id, int p, const char *reason)
{
	char title[64];
	snprintf(title, sizeof title, "Page_%ld", page_id);
	char *payload = test_event("rerender", WIKI, page_id, title, 0);
	redisReply *r = redisCommand(c, "XADD freshet:{" WIKI "}:dead * payload %s "
				     "reason %s stream freshet:{" WIKI ":p%d} id 1-1 "
				     "deliveries 5 time 2026-11-29T12:00:01Z",
				     payload, reason, p);
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	char *id = strdup(r->str);
	freeReplyObject(r);
	free(payload);
	return id;
}

static long long xlen(redisContext *c, const char *key)
{
	redisReply *r = redisCommand(c, "XLEN %s", key);
	cr_assert(r && r->type == REDIS_REPLY_INTEGER);
	long long n = r->integer;
	freeReplyObject(r);
	return n;
}

Test(tools, ctl_dead_letters, .init = setup_redis, .fini = teardown, .timeout = 60)
{
	redisContext *c = redis_ctx();
	char *a = add_dead(c, 4, 0, "HTTP_500_five_times");
	char *b = add_dead(c, 7, 1, "permanent:_nosuchrevid");

	struct out o = run("freshetctl", "--wiki", WIKI, "dead", "list", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, a) && strstr(o.out, b), "list: %s", o.out);
	cr_assert(strstr(o.out, "HTTP_500_five_times"), "list: %s", o.out);
	cr_assert(strstr(o.out, "page=7"), "list: %s", o.out);
	out_free(&o);

	o = run("freshetctl", "--wiki", WIKI, "dead", "show", b, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, "\"page_id\": 7"), "show: %s", o.out);
	out_free(&o);

	/* Replay puts the payload back on its partition, verbatim. */
	o = run("freshetctl", "--wiki", WIKI, "dead", "replay", a, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	cr_assert_eq(xlen(c, "freshet:{" WIKI ":p0}"), 1);
	cr_assert_eq(xlen(c, "freshet:{" WIKI "}:dead"), 1);
	redisReply *r = redisCommand(c, "XRANGE freshet:{" WIKI ":p0} - +");
	cr_assert(strstr(r->element[0]->element[1]->element[1]->str, "\"page_id\":4"));
	freeReplyObject(r);

	/* Drop removes for good; an unknown id is an error. */
	o = run("freshetctl", "--wiki", WIKI, "dead", "drop", b, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	cr_assert_eq(xlen(c, "freshet:{" WIKI "}:dead"), 0);
	o = run("freshetctl", "--wiki", WIKI, "dead", "drop", b, NULL);
	cr_assert_eq(o.status, 1);
	out_free(&o);

	/* status shows partitions and the dead-letter count. */
	o = run("freshetctl", "status", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert(strstr(o.out, "wiki " WIKI ": 2 partitions"), "status: %s", o.out);
	cr_assert(strstr(o.out, "0 dead letters"), "status: %s", o.out);
	out_free(&o);
	free(a);
	free(b);
	redisFree(c);
}

/* The first control byte (C0, DEL) of s, or -1 when it has none but
 * newlines. */
static int raw_control(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if ((*c < 0x20 && *c != '\n') || *c == 0x7f)
			return *c;
	return -1;
}

/* Dead letters hold text from outside: what freshetctl prints of them
 * cannot drive the operator's terminal. */
Test(tools, ctl_dead_letters_escape_control_characters, .init = setup_redis,
     .fini = teardown, .timeout = 60)
{
	redisContext *c = redis_ctx();
	const char *reason = "API error x: \x1b[2J\x1b]0;pwned\x07 gone\x7f";
	const char *payload = "not json \x1b[31mred\r\x1b[0m\x08";
	redisReply *r = redisCommand(c, "XADD freshet:{" WIKI "}:dead * payload %s "
				     "reason %s stream freshet:{" WIKI ":p0} id 1-1 "
				     "deliveries 5 time 2026-11-29T12:00:01Z", payload, reason);
	cr_assert(r && r->type == REDIS_REPLY_STRING);
	char *id = strdup(r->str);
	freeReplyObject(r);
	char *json_id = add_dead(c, 4, 0, "in\x1b[1mjson");

	struct out o = run("freshetctl", "--wiki", WIKI, "dead", "list", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert_eq(raw_control(o.out), -1, "raw control byte in: %s", o.out);
	cr_assert(strstr(o.out, "API error x: \\x1b[2J\\x1b]0;pwned\\x07 gone\\x7f"),
		  "list: %s", o.out);
	out_free(&o);

	o = run("freshetctl", "--wiki", WIKI, "dead", "show", id, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert_eq(raw_control(o.out), -1, "raw control byte in: %s", o.out);
	cr_assert(strstr(o.out, "not json \\x1b[31mred\\x0d\\x1b[0m\\x08"), "show: %s", o.out);
	out_free(&o);

	o = run("freshetctl", "--wiki", WIKI, "dead", "show", json_id, NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert_eq(raw_control(o.out), -1, "raw control byte in: %s", o.out);
	cr_assert(strstr(o.out, "in\\x1b[1mjson"), "show: %s", o.out);
	cr_assert(strstr(o.out, "\"page_id\": 4"), "show: %s", o.out);
	out_free(&o);
	free(id);
	free(json_id);
	redisFree(c);
}

Test(tools, ctl_spool_replay, .init = setup_redis, .fini = teardown, .timeout = 60)
{
	char *spool;
	cr_assert(asprintf(&spool, "%s/spool.jsonl", E.dir) > 0);
	FILE *f = fopen(spool, "w");
	char *ev[3];
	ev[0] = test_event("rerender", WIKI, 3, "P", 0);
	ev[1] = test_event("rerender", WIKI, 8, "P", 0);
	ev[2] = test_event("rerender", WIKI, 5, "P", 0); /* wrong partition: 5 mod 2 = 1 */
	fprintf(f, "{\"stream\":\"freshet:{" WIKI ":p1}\",\"event\":%s}\n", ev[0]);
	fprintf(f, "not json\n");
	fprintf(f, "{\"stream\":\"freshet:{" WIKI ":p0}\",\"event\":%s}\n", ev[1]);
	fprintf(f, "{\"stream\":\"freshet:{" WIKI ":p0}\",\"event\":%s}\n", ev[2]);
	for (int i = 0; i < 3; i++)
		free(ev[i]);
	fclose(f);
	struct out o = run("freshetctl", "spool", "replay", spool, NULL);
	cr_assert_eq(o.status, 1, "bad lines must fail the run: %s", o.out);
	cr_assert(strstr(o.err, ":2:"), "line number of the bad line: %s", o.err);
	cr_assert(strstr(o.err, ":4:"), "wrong partition not reported: %s", o.err);
	cr_assert(strstr(o.out, "2 events added"), "%s", o.out);
	out_free(&o);
	redisContext *c = redis_ctx();
	cr_assert_eq(xlen(c, "freshet:{" WIKI ":p1}"), 1);
	cr_assert_eq(xlen(c, "freshet:{" WIKI ":p0}"), 1);
	redisFree(c);
	free(spool);
}

/* A partition count set by hand to nonsense is refused, never divided by. */
Test(tools, ctl_spool_replay_refuses_bad_partition_count, .init = setup_redis,
     .fini = teardown, .timeout = 60)
{
	char *spool;
	cr_assert(asprintf(&spool, "%s/spool.jsonl", E.dir) > 0);
	FILE *f = fopen(spool, "w");
	char *ev = test_event("rerender", WIKI, 3, "P", 0);
	fprintf(f, "{\"stream\":\"freshet:{" WIKI ":p1}\",\"event\":%s}\n", ev);
	free(ev);
	fclose(f);
	redisContext *c = redis_ctx();
	const char *values[] = { "0", "abc", "-2", "99999999999" };
	for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
		redisReply *r = redisCommand(c, "SET freshet:{" WIKI "}:partitions %s",
					     values[i]);
		freeReplyObject(r);
		struct out o = run("freshetctl", "spool", "replay", spool, NULL);
		cr_assert_eq(o.status, 1, "partitions=%s: exit %d, stderr %s", values[i],
			     o.status, o.err);
		cr_assert(strstr(o.err, "partitions holds no partition count"),
			  "partitions=%s: %s", values[i], o.err);
		cr_assert(strstr(o.out, "0 events added"), "%s", o.out);
		out_free(&o);
		o = run("freshetctl", "status", NULL);
		cr_assert_eq(o.status, 1, "status with partitions=%s: %s", values[i], o.err);
		cr_assert(strstr(o.err, "partitions holds no partition count"), "%s", o.err);
		out_free(&o);
	}
	cr_assert_eq(xlen(c, "freshet:{" WIKI ":p1}"), 0);
	redisFree(c);
	free(spool);
}

static void setup_dir(void)
{
	memset(&E, 0, sizeof E);
	E.dir = test_mkdtemp("tools");
	cr_assert(asprintf(&E.data, "%s/data", E.dir) > 0);
}

/* The real extension spools while Redis is down; freshetctl replays it. */
Test(tools, ctl_spool_from_extension, .init = setup_dir, .fini = teardown,
     .timeout = 120)
{
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en", .freshet = true,
			     .redis_host = "127.0.0.1", .redis_port = test_free_port(),
			     .partitions = 2 };
	E.mw = mw_start(&o);
	E.redis = test_redis_start();
	write_conf(NULL);
	long page_id = 0;
	mw_edit(E.mw, "Spooled page", "Written while Redis was away.", &page_id, NULL);
	size_t len = 0;
	char *spool = test_read_file(mw_spool_path(E.mw), &len);
	cr_assert_not_null(spool, "the extension wrote no spool file");
	cr_assert(strstr(spool, "Spooled_page"), "spool: %s", spool);
	free(spool);

	struct out r = run("freshetctl", "spool", "replay", mw_spool_path(E.mw), NULL);
	cr_assert_eq(r.status, 0, "%s%s", r.out, r.err);
	out_free(&r);
	redisContext *c = redis_ctx();
	char key[64];
	snprintf(key, sizeof key, "freshet:{" WIKI ":p%ld}", page_id % 2);
	cr_assert_geq(xlen(c, key), 1, "no event on %s", key);
	redisReply *rep = redisCommand(c, "XRANGE %s - +", key);
	bool found = false;
	for (size_t i = 0; i < rep->elements; i++)
		if (strstr(rep->element[i]->element[1]->element[1]->str, "Spooled_page"))
			found = true;
	freeReplyObject(rep);
	cr_assert(found, "the page's event is not on %s", key);
	redisFree(c);
}

Test(tools, template_edit_rerender, .init = setup_wiki, .fini = teardown,
     .timeout = 180)
{
	mw_edit(E.mw, "Template:Motto", "Our motto is wombatish.", NULL, NULL);
	const char *titles[] = { "Den one", "Den two", "Den three" };
	const char *texts[] = { "First den. {{Motto}}", "Second den. {{Motto}}",
				"Third den without the template." };
	mw_seed(E.mw, 3, titles, texts, NULL, NULL);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	json_t *root;
	json_t *res = search_json(&root, "wombatish");
	cr_assert_eq(json_array_size(res), 2);
	json_decref(root);

	/* The template changes; the pages' revisions do not.  MediaWiki's
	 * timestamps have one-second resolution: a parser-cache entry made in
	 * the same second as the template edit would still count as fresh, so
	 * let the clock move on first. */
	sleep(2);
	mw_edit(E.mw, "Template:Motto", "Our motto is quokkalike.", NULL, NULL);
	mw_run_jobs(E.mw);

	/* Queue the pages that transclude it (and only those)... */
	o = run("reindex-page", "--wiki", WIKI, "--queue", "--embedded-in",
		"Template:Motto", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	redisContext *c = redis_ctx();
	cr_assert_eq(xlen(c, "freshet:{" WIKI ":p0}") + xlen(c, "freshet:{" WIKI ":p1}"), 2);
	redisFree(c);

	/* ...and process them (direct mode does what a worker does). */
	o = run("reindex-page", "--wiki", WIKI, "--title", "Den one", "--title",
		"Den two", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	out_free(&o);
	res = search_json(&root, "quokkalike");
	cr_assert_eq(json_array_size(res), 2);
	cr_assert(has_title(res, "Den one") && has_title(res, "Den two"));
	json_decref(root);
	res = search_json(&root, "wombatish");
	cr_assert_eq(json_array_size(res), 0, "the old rendering is still indexed");
	json_decref(root);
}

Test(tools, usage_errors_exit_2, .init = setup_redis, .fini = teardown, .timeout = 30)
{
	struct out o = run("reindex-page", "--wiki", WIKI, NULL);
	cr_assert_eq(o.status, 2, "nothing selected: %d", o.status);
	out_free(&o);
	o = run("reindex-page", "--wiki", "nosuchwiki", "--all", NULL);
	cr_assert_eq(o.status, 2);
	cr_assert(strstr(o.err, "nosuchwiki"), "%s", o.err);
	out_free(&o);
	o = run("freshet-search", "--wiki", WIKI, NULL);
	cr_assert_eq(o.status, 2);
	out_free(&o);
	o = run("freshetctl", "frobnicate", NULL);
	cr_assert_eq(o.status, 2);
	out_free(&o);
	o = run("reindex-page", "--help", NULL);
	cr_assert_eq(o.status, 0);
	cr_assert(strstr(o.out, "--rebuild"));
	out_free(&o);
}

/* The progress line: figures, and the redrawn bar on a terminal. */
#include "progress.h"

Test(tools, progress_line)
{
	char b[160];
	progress_format(b, sizeof b, "pages", 120, 300, 0, 3.0);
	cr_assert_str_eq(b, "120/300 pages 40.0/s ETA 0:05");
	progress_format(b, sizeof b, "pages", 7200, 10800, 2, 3600.0);
	cr_assert_str_eq(b, "7200/10800 pages 2.0/s ETA 30:00 failed 2");
	progress_format(b, sizeof b, "pages", 3600, 10800, 0, 3600.0);
	cr_assert_str_eq(b, "3600/10800 pages 1.0/s ETA 2:00:00");
	progress_format(b, sizeof b, "pages queued", 5, 0, 0, 1.0);
	cr_assert_str_eq(b, "5 pages queued 5.0/s");

	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	struct progress *p = progress_new(f, "pages", 4, true, 0);
	progress_add(p, 2, 0);
	progress_add(p, 2, 1);
	progress_finish(p);
	fclose(f);
	/* Redrawn in place (carriage return, clear to end of line), a full
	 * bar at the end, and a newline only at the end. */
	cr_assert(mem[0] == '\r', "%s", mem);
	cr_assert(strstr(mem, "[################################] 4/4 pages"), "%s", mem);
	cr_assert(strstr(mem, "failed 1\033[K\n"), "%s", mem);
	cr_assert_eq(strchr(mem, '\n'), mem + len - 1);
	free(mem);

	mem = NULL;
	f = open_memstream(&mem, &len);
	p = progress_new(f, "pages", 4, false, 0);
	progress_add(p, 4, 0);
	progress_finish(p);
	fclose(f);
	cr_assert(strstr(mem, "progress: 4/4 pages") && strstr(mem, "(done)\n"), "%s", mem);
	cr_assert_null(strchr(mem, '\r'));
	free(mem);
}

/* One test at a time: the tests are dominated by MediaWiki's own start-up
 * and requests, which parallel jobs only make contend, and libcriterion
 * 2.4's runner leaks a small allocation (48 bytes, reported by
 * LeakSanitizer) when two of these long-running workers end together. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	criterion_options.jobs = 1;
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}

/* The titles of freshet-search --json's results for args, in rank order,
 * as "A|B" ("" for none). */
static char *search_titles(const char *a1, const char *a2, const char *a3, const char *a4)
{
	struct out o = run("freshet-search", "--wiki", WIKI, "--json", a1, a2, a3, a4, NULL);
	cr_assert_eq(o.status, 0, "freshet-search %s failed: %s", a1, o.err);
	json_t *res = json_loads(o.out, 0, NULL);
	cr_assert(json_is_array(res), "not an array: %s", o.out);
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	size_t i;
	json_t *r;
	json_array_foreach(res, i, r)
	{
		if (i)
			buf_addch(&b, '|');
		buf_adds(&b, json_string_value(json_object_get(r, "title")));
	}
	json_decref(res);
	out_free(&o);
	return buf_detach(&b, NULL);
}

/* Pages in six languages on an English wiki, each holding only inflected
 * forms: a query in any language's dictionary form finds its page without
 * --language, and an English word does not drown in another language's
 * stem of it. */
Test(tools, search_in_every_language_of_the_shards, .init = setup_wiki, .fini = teardown,
     .timeout = 180)
{
	const char *titles[] = { "Чтение", "Marktplatz", "Visite", "旅行", "读书", "Birthday" };
	const char *langs[] = { "ru", "de", "fr", "ja", "zh", "en" };
	const char *texts[] = {
		"Книги лежат в библиотеке города.",
		"Die Häuser am Markt sind alt. Manche Gifte wirken langsam.",
		"Nous avons visité l'église du village.",
		"私は昨日東京の美術館に行きました。",
		"我昨天在图书馆看书。",
		"Gifts were wrapped for her birthday party.",
	};
	mw_seed(E.mw, 6, titles, texts, NULL, NULL);
	for (int i = 0; i < 5; i++)
		mw_set_language(E.mw, titles[i], langs[i]);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	out_free(&o);

	const char *q[][2] = {
		{ "библиотека", "Чтение" }, { "Haus", "Marktplatz" }, { "eglise", "Visite" },
		{ "美術館", "旅行" },       { "图书馆", "读书" },
	};
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		char *t = search_titles(q[i][0], NULL, NULL, NULL);
		cr_assert_str_eq(t, q[i][1], "query %s", q[i][0]);
		free(t);
	}
	/* The wiki's language alone, as before: the Russian stem is not
	 * looked up. */
	char *t = search_titles("--language", "en", "библиотека", NULL);
	cr_assert_str_eq(t, "");
	free(t);
	/* German stems "gifts" as it stems "Gifte": the German page matches
	 * through German, below the English page holding the word; in
	 * English alone it does not match at all. */
	t = search_titles("gifts", NULL, NULL, NULL);
	cr_assert_str_eq(t, "Birthday|Marktplatz");
	free(t);
	t = search_titles("--language", "en", "gifts", NULL);
	cr_assert_str_eq(t, "Birthday");
	free(t);
	/* A query starting with an exclusion, after --. */
	t = search_titles("--", "-wirken gifts", NULL, NULL);
	cr_assert_str_eq(t, "Birthday");
	free(t);
	/* The term cap. */
	o = run("freshet-search", "--wiki", WIKI, "--max-terms", "1", "gifts", "party", NULL);
	cr_assert_eq(o.status, 2);
	cr_assert(strstr(o.err, "too many terms (2 > 1)"), "%s", o.err);
	out_free(&o);
}

/* Xapian cuts snippets at a byte count; a Cyrillic snippet must still come
 * out as whole characters, in text and in JSON (where a half character
 * would make the snippet vanish). */
Test(tools, snippet_of_cyrillic_text_is_whole_characters, .init = setup_wiki,
     .fini = teardown, .timeout = 120)
{
	struct buf text = BUF_INIT;
	/* No sentence ends: the generator then cuts inside a word. */
	for (int i = 0; i < 60; i++)
		buf_adds(&text, i % 7 ? "копирует файлы сохраняя права доступа "
				      : "каталоги ");
	const char *titles[] = { "Копирование файлов" };
	const char *texts[] = { text.data };
	mw_seed(E.mw, 1, titles, texts, NULL, NULL);
	buf_release(&text);
	struct out o = run("reindex-page", "--wiki", WIKI, "--all", NULL);
	cr_assert_eq(o.status, 0, "reindex-page --all failed: %s", o.err);
	out_free(&o);

	json_t *root;
	json_t *res = search_json(&root, "каталоги");
	cr_assert_eq(json_array_size(res), 1, "results: %s", json_dumps(root, 0));
	const char *snip = json_string_value(json_object_get(json_array_get(res, 0), "snippet"));
	cr_assert_not_null(snip, "no snippet in %s", json_dumps(root, 0));
	cr_assert(strstr(snip, "[каталоги]"), "snippet: %s", snip);
	json_decref(root);

	o = run("freshet-search", "--wiki", WIKI, "каталоги", NULL);
	cr_assert_eq(o.status, 0, "%s", o.err);
	cr_assert_null(strstr(o.out, "\xef\xbf\xbd"), "replacement character in: %s", o.out);
	for (const unsigned char *p = (const unsigned char *)o.out; *p;) {
		int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
		for (int k = 1; k < n; k++)
			cr_assert_eq(p[k] & 0xC0, 0x80, "cut character in: %s", o.out);
		p += n;
	}
	out_free(&o);
}
