/* SPDX-License-Identifier: MIT */
/*
 * test-mwsearch.c: MediaWiki's own search answered by freshet, end to end.
 *
 * A real MediaWiki 1.39 (tests/lib/mw.h) loads the Freshet extension with
 * $wgSearchType = 'freshet' and $wgDisableSearchUpdate = true, so its own
 * search index stays empty: every hit below can only come from freshet.
 * The shards are built by the real reindex-page and kept fresh by the real
 * freshet-worker; the real freshet-searchd serves them.  The tests ask the
 * wiki the way readers and tools do (Special:Search's HTML, list=search,
 * action=opensearch, REST /v1/search/page and /v1/search/title) and check
 * what they would see, including when freshet-searchd is down, slow, or
 * answers with markup a page must not run.
 *
 * Each test has its own wiki, Redis, data directory and ports, so the tests
 * run in parallel.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf.h"
#include "hostile.h"
#include "mw.h"
#include "now.h"
#include "testsupport.h"

#define WIKI "mwsearchwiki"
#define UNAVAILABLE "Search is temporarily unavailable"

struct env {
	char *dir;
	char conf[512];
	char data[512];
	char log[512];
	char mwlog[512];
	char token[512]; /* the wiki's $wgFreshetSearchTokenFile, if any */
	int port;        /* freshet-searchd's */
	pid_t daemon;
	pid_t worker;
	struct test_redis *redis;
	struct mw *mw;
	struct hostile *hostile;
};

static struct env E;

/* ------------------------------------------------------------ programs */

/* Starts prog --config E.conf args..., output appended to logfile. */
static pid_t spawn(const char *prog, const char *logfile, const char *const *args)
{
	const char *argv[32] = { "--config", E.conf };
	for (size_t i = 0, n = 2; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	return test_spawn(prog, argv, logfile);
}

static void stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* ---------------------------------------------------------------- HTTP */

struct page {
	long status;
	char *body;
	double secs; /* how long the request took */
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	buf_add(ctx, p, size * n);
	return size * n;
}

/* GETs url; status 0 when the request failed at the transport level. */
static struct page fetch(const char *url)
{
	CURL *c = curl_easy_init();
	cr_assert_not_null(c);
	struct buf b = BUF_INIT;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	struct page pg = { 0 };
	double t0 = now_s();
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &pg.status);
	pg.secs = now_s() - t0;
	pg.body = buf_detach(&b, NULL);
	if (!pg.body)
		pg.body = strdup("");
	curl_easy_cleanup(c);
	return pg;
}

/* GETs <wiki>/index.php?title=Special:Search&fulltext=1&search=<q>. */
static struct page special_search(const char *q)
{
	char *e = curl_easy_escape(NULL, q, 0);
	char url[2048];
	snprintf(url, sizeof url,
		 "http://127.0.0.1:%d/index.php?title=Special:Search&fulltext=1&search=%s",
		 mw_port(E.mw), e);
	curl_free(e);
	return fetch(url);
}

/* GETs <wiki>/rest.php<path>; the body is JSON (NULL if it is not). */
static json_t *rest(const char *path, long *status)
{
	char url[2048];
	snprintf(url, sizeof url, "%s%s", mw_rest_url(E.mw), path);
	struct page pg = fetch(url);
	*status = pg.status;
	json_t *j = json_loads(pg.body, 0, NULL);
	cr_assert_not_null(j, "REST %s: HTTP %ld, not JSON: %.300s", path, pg.status, pg.body);
	free(pg.body);
	return j;
}

/* mw_api() with the query string made by fmt. */
static json_t *api(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *api(const char *fmt, ...)
{
	char q[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(q, sizeof q, fmt, ap);
	va_end(ap);
	return mw_api(E.mw, false, q);
}

/* The value of freshet-searchd's requests_total for endpoint, status 200. */
static long searchd_requests(const char *endpoint)
{
	char url[256], key[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", E.port);
	snprintf(key, sizeof key, "freshet_searchd_requests_total{endpoint=\"%s\",status=\"200\"} ",
		 endpoint);
	struct page pg = fetch(url);
	cr_assert_eq(pg.status, 200, "metrics: %s", pg.body);
	const char *p = strstr(pg.body, key);
	long n = p ? strtol(p + strlen(key), NULL, 10) : 0;
	free(pg.body);
	return n;
}

/* --------------------------------------------------------------- setup */

/* Writes freshet.conf: the wiki (two shards, namespaces 0 and 1) and
 * [searchd] on E.port, with searchd_extra lines (may be NULL) in it. */
static void write_conf(const char *searchd_extra)
{
	FILE *f = fopen(E.conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = unix://%s\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\ncommit_ms = 100\n"
		"lease_ms = 2000\n\n"
		"[searchd]\nlisten = 127.0.0.1:%d\nthreads = 2\n%s\n"
		"[wiki " WIKI
		"]\napi = %s\nlanguage = en\nshards = 2\n"
		"namespaces = 0,1\nconcurrency = 4\nrate = 0\nsaneitize_days = 0\n",
		E.redis->socket, E.data, E.port, searchd_extra ? searchd_extra : "",
		mw_api_url(E.mw));
	fclose(f);
}

/* Starts Redis and the wiki with the search settings; search_url NULL
 * means freshet-searchd on E.port; with token, the wiki reads its token
 * from E.token.  The wiki's id is freshet's wiki name, so
 * $wgFreshetSearchWiki keeps its default. */
static void setup_with(const char *search_url, double timeout, bool token)
{
	memset(&E, 0, sizeof E);
	E.dir = test_mkdtemp("mwsearch");
	snprintf(E.conf, sizeof E.conf, "%s/freshet.conf", E.dir);
	snprintf(E.data, sizeof E.data, "%s/data", E.dir);
	snprintf(E.log, sizeof E.log, "%s/searchd.log", E.dir);
	snprintf(E.mwlog, sizeof E.mwlog, "%s/freshet-search.log", E.dir);
	snprintf(E.token, sizeof E.token, "%s/wiki.token", E.dir);
	E.port = test_free_port();
	E.redis = test_redis_start();
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", E.port);
	char settings[2048];
	snprintf(settings, sizeof settings,
		 "$wgSearchType = 'freshet';\n"
		 "$wgSearchTypeAlternatives = [ 'SearchSqlite' ];\n"
		 "$wgDisableSearchUpdate = true;\n"
		 "$wgFreshetSearchUrl = '%s';\n"
		 "$wgFreshetSearchTimeout = %g;\n"
		 "$wgDebugLogGroups['FreshetSearch'] = '%s';\n"
		 "$wgFreshetSearchTokenFile = %s%s%s;\n",
		 search_url ? search_url : url, timeout, E.mwlog, token ? "'" : "",
		 token ? E.token : "null", token ? "'" : "");
	struct mw_opts o = { .wiki_id = WIKI,
			     .lang = "en",
			     .freshet = true,
			     .redis_socket = E.redis->socket,
			     .partitions = 2,
			     .settings = settings };
	E.mw = mw_start(&o);
	write_conf(NULL);
}

static void setup_searchd(void)
{
	setup_with(NULL, 2, false);
}

static void teardown(void)
{
	stop_pid(&E.daemon);
	stop_pid(&E.worker);
	hostile_stop(E.hostile);
	mw_stop(E.mw);
	test_redis_stop(E.redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(E.dir);
	free(E.dir);
}

static void daemon_start(void)
{
	const char *none[] = { NULL };
	E.daemon = spawn("freshet-searchd", E.log, none);
	/* Up once it answers anything (starting under ASan takes a while). */
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", E.port);
	test_wait_http(url, E.daemon, E.log);
	/* Each of the daemon's threads opens its analyzers on its first
	 * search, slow under ASan: have that happen here rather than within
	 * the wiki's short timeout.  Which thread serves a connection is the
	 * kernel's choice, hence a few. */
	for (int i = 0; i < 8; i++) {
		snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/%s/%s?q=warm", E.port,
			 WIKI, i % 2 ? "complete" : "search");
		free(fetch(url).body);
	}
}

static void reindex_all(void)
{
	char log[600];
	snprintf(log, sizeof log, "%s/reindex-page.log", E.dir);
	const char *args[] = { "--wiki", WIKI, "--all", "--quiet", NULL };
	pid_t pid = spawn("reindex-page", log, args);
	int st;
	cr_assert(waitpid(pid, &st, 0) == pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reindex-page failed; log in %s", log);
}

/* ------------------------------------------------------------- helpers */

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

/* query.search of a list=search answer; fails the test on an error. */
static json_t *hits(json_t *j)
{
	json_t *s = json_object_get(json_object_get(j, "query"), "search");
	cr_assert(json_is_array(s), "no query.search in %s", json_dumps(j, 0));
	return s;
}

static long totalhits(json_t *j)
{
	return (long)json_integer_value(json_object_get(
		json_object_get(json_object_get(j, "query"), "searchinfo"), "totalhits"));
}

/* The titles of an array of objects (key "title"), joined by '|'. */
static char *titles(json_t *arr)
{
	struct buf b = BUF_INIT;
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) buf_addf(&b, "%s%s", i ? "|" : "", jstr(x, "title"));
	char *s = buf_detach(&b, NULL);
	return s ? s : strdup("");
}

static bool has(json_t *arr, const char *title)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (strcmp(jstr(x, "title"), title) == 0) return true;
	return false;
}

/* ----------------------------------------------------------------- tests */

TestSuite(mwsearch, .timeout = 240);

Test(mwsearch, api_rest_and_special_search_answer_from_freshet, .init = setup_searchd,
     .fini = teardown)
{
	const char *t[] = {
		"Okapi",      "Okapi page 1", "Okapi page 2", "Okapi page 3", "Okapi page 4",
		"Talk:Okapi", "Mbutiokapi",   "Книжный дом",  "Capybara",
	};
	const char *x[] = {
		"The okapi is a forest giraffe of the Congo; it eats leaves, buds and fruit.",
		"The okapi number 1 lives in the forest.",
		"The okapi number 2 lives in the forest.",
		"The okapi number 3 lives in the forest.",
		"The okapi number 4 lives in the forest.",
		"Talk about the okapi.",
		"#REDIRECT [[Okapi]]",
		"Книги стоят в библиотеке у реки.",
		"The capybara is the largest rodent.",
	};
	mw_seed(E.mw, 9, t, x, NULL, NULL);
	mw_set_language(E.mw, "Книжный дом", "ru");
	reindex_all();
	daemon_start();

	/* list=search: total hits, snippets with MediaWiki's markup, the
	 * fields, in the main namespace by default. */
	json_t *j = api(
		"action=query&list=search&srsearch=okapi&srlimit=50"
		"&srprop=snippet%%7Ctitlesnippet%%7Csize%%7Cwordcount%%7Ctimestamp");
	json_t *s = hits(j);
	char *ts = titles(s);
	cr_assert_eq(totalhits(j), 5, "%s", ts);
	cr_assert_eq(json_array_size(s), 5, "%s", ts);
	cr_assert(has(s, "Okapi") && has(s, "Okapi page 4") && !has(s, "Talk:Okapi"), "%s", ts);
	free(ts);
	json_t *h = json_array_get(s, 0);
	cr_assert(strstr(jstr(h, "snippet"), "<span class=\"searchmatch\">okapi</span>"),
		  "snippet: %s", jstr(h, "snippet"));
	cr_assert(strstr(jstr(h, "titlesnippet"), "<span class=\"searchmatch\">Okapi</span>"),
		  "title snippet: %s", jstr(h, "titlesnippet"));
	cr_assert_gt(json_integer_value(json_object_get(h, "size")), 0);
	cr_assert_gt(json_integer_value(json_object_get(h, "wordcount")), 0);
	cr_assert_eq(strlen(jstr(h, "timestamp")), 20, "timestamp %s", jstr(h, "timestamp"));
	struct mw_page_info info;
	cr_assert(mw_page_info(E.mw, jstr(h, "title"), &info));
	cr_assert_eq(json_integer_value(json_object_get(h, "pageid")), info.page_id);
	json_decref(j);

	/* MediaWiki's own index (the SQLite backend, asked through
	 * srbackend) knows none of it: the answers above came from freshet. */
	j = api("action=query&list=search&srsearch=okapi&srbackend=SearchSqlite");
	cr_assert_eq(json_array_size(hits(j)), 0, "MediaWiki's own index answered");
	json_decref(j);

	/* Namespaces. */
	j = api("action=query&list=search&srsearch=okapi&srnamespace=1");
	s = hits(j);
	cr_assert_eq(totalhits(j), 1);
	cr_assert_str_eq(jstr(json_array_get(s, 0), "title"), "Talk:Okapi");
	json_decref(j);
	j = api("action=query&list=search&srsearch=okapi&srnamespace=0%%7C1");
	cr_assert_eq(totalhits(j), 6);
	json_decref(j);

	/* Paging with sroffset: three pages, no title twice, the last one
	 * without a continuation. */
	char seen[2048] = "|";
	for (int off = 0; off <= 4; off += 2) {
		j = api("action=query&list=search&srsearch=okapi&srlimit=2&sroffset=%d", off);
		s = hits(j);
		cr_assert_eq(json_array_size(s), off < 4 ? 2 : 1, "offset %d", off);
		size_t i;
		json_t *r;
		json_array_foreach(s, i, r)
		{
			char key[600];
			snprintf(key, sizeof key, "|%s|", jstr(r, "title"));
			cr_assert_null(strstr(seen, key), "%s twice (offset %d)", key, off);
			strncat(seen, key + 1, sizeof seen - strlen(seen) - 1);
		}
		json_t *cont = json_object_get(json_object_get(j, "continue"), "sroffset");
		if (off < 4)
			cr_assert_eq(json_integer_value(cont), off + 2, "offset %d", off);
		else
			cr_assert_null(cont, "a continuation after the last page");
		json_decref(j);
	}

	/* A word only in a redirect's title finds the target, named with
	 * the redirect. */
	j = api("action=query&list=search&srsearch=mbutiokapi&srprop=redirecttitle");
	s = hits(j);
	cr_assert_eq(json_array_size(s), 1);
	cr_assert_str_eq(jstr(json_array_get(s, 0), "title"), "Okapi");
	cr_assert_str_eq(jstr(json_array_get(s, 0), "redirecttitle"), "Mbutiokapi");
	json_decref(j);

	/* A Russian page on an English wiki, found by the dictionary form of
	 * a word its text inflects, with no language given. */
	j = api("action=query&list=search&srsearch=%%D0%%B1%%D0%%B8%%D0%%B1%%D0%%BB%%D0%%B8"
		"%%D0%%BE%%D1%%82%%D0%%B5%%D0%%BA%%D0%%B0"); /* библиотека */
	s = hits(j);
	cr_assert_eq(json_array_size(s), 1);
	cr_assert_str_eq(jstr(json_array_get(s, 0), "title"), "Книжный дом");
	json_decref(j);

	/* action=opensearch: completion ignoring case past the first letter,
	 * which MediaWiki's own prefix search does not. */
	long before = searchd_requests("complete");
	j = api("action=opensearch&search=okapi%%20PAGE%%203");
	cr_assert(json_is_array(j));
	json_t *names = json_array_get(j, 1);
	cr_assert_eq(json_array_size(names), 1, "%s", json_dumps(j, 0));
	cr_assert_str_eq(json_string_value(json_array_get(names, 0)), "Okapi page 3");
	json_decref(j);
	j = api("action=opensearch&search=Okap&limit=10");
	cr_assert_eq(json_array_size(json_array_get(j, 1)), 5, "%s", json_dumps(j, 0));
	cr_assert_str_eq(json_string_value(json_array_get(json_array_get(j, 1), 0)), "Okapi");
	json_decref(j);
	cr_assert_geq(searchd_requests("complete"), before + 2, "opensearch did not ask freshet");

	/* REST: /v1/search/page and /v1/search/title. */
	long st;
	j = rest("/v1/search/page?q=okapi&limit=10", &st);
	cr_assert_eq(st, 200);
	json_t *pages = json_object_get(j, "pages");
	cr_assert_eq(json_array_size(pages), 5, "%s", json_dumps(j, 0));
	cr_assert(strstr(jstr(json_array_get(pages, 0), "excerpt"), "class=\"searchmatch\""), "%s",
		  json_dumps(j, 0));
	json_decref(j);
	j = rest("/v1/search/title?q=okapi%20PAGE%202&limit=5", &st);
	cr_assert_eq(st, 200);
	pages = json_object_get(j, "pages");
	cr_assert_eq(json_array_size(pages), 1, "%s", json_dumps(j, 0));
	cr_assert_str_eq(jstr(json_array_get(pages, 0), "title"), "Okapi page 2");
	json_decref(j);

	/* Special:Search's HTML: the results, their snippets and sizes, and
	 * freshet-searchd counted the request. */
	before = searchd_requests("search");
	struct page pg = special_search("okapi");
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, "mw-search-result-heading"), "no results: %.2000s", pg.body);
	cr_assert(strstr(pg.body, "title=\"Okapi page 3\""), "%.3000s", pg.body);
	cr_assert(strstr(pg.body, "<span class=\"searchmatch\">okapi</span>"), "%.3000s", pg.body);
	cr_assert(strstr(pg.body, "words)"), "no size line: %.3000s", pg.body);
	cr_assert_null(strstr(pg.body, UNAVAILABLE));
	free(pg.body);
	cr_assert_gt(searchd_requests("search"), before, "Special:Search did not ask freshet");

	/* A shard gone: the results of the other one, with a notice. */
	char s1[700], away[700];
	snprintf(s1, sizeof s1, "%s/" WIKI "/current/shard-1", E.data);
	snprintf(away, sizeof away, "%s/shard-1.away", E.dir);
	cr_assert_eq(rename(s1, away), 0, "%s", strerror(errno));
	pg = special_search("okapi");
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, "These results may be incomplete"), "%.3000s", pg.body);
	cr_assert(strstr(pg.body, "mw-search-result-heading"), "no results: %.3000s", pg.body);
	free(pg.body);
	cr_assert_eq(rename(away, s1), 0, "%s", strerror(errno));
}

Test(mwsearch, an_edit_shows_in_special_search_within_2s, .init = setup_searchd, .fini = teardown)
{
	mw_edit(E.mw, "Numbat", "The numbat eats termites.", NULL, NULL);
	reindex_all();
	daemon_start();
	char wlog[600];
	snprintf(wlog, sizeof wlog, "%s/worker.log", E.dir);
	const char *none[] = { NULL };
	E.worker = spawn("freshet-worker", wlog, none);

	/* The worker is up once a first edit has gone through it. */
	mw_edit(E.mw, "Numbat", "The numbat eats termites and warmups.", NULL, NULL);
	double end = now_s() + 90;
	bool up = false;
	while (!up && now_s() < end) {
		struct page pg = special_search("warmups");
		up = strstr(pg.body, "title=\"Numbat\"") != NULL;
		free(pg.body);
		if (!up)
			sleep_ms(200);
	}
	cr_assert(up, "the worker never applied an edit; logs in %s", E.dir);

	mw_edit(E.mw, "Numbat", "The numbat was zebrafied.", NULL, NULL);
	double t0 = now_s();
	bool found = false;
	while (!found && now_s() - t0 < 2.0) {
		struct page pg = special_search("zebrafied");
		cr_assert_eq(pg.status, 200);
		found = strstr(pg.body, "title=\"Numbat\"") != NULL &&
			strstr(pg.body, "<span class=\"searchmatch\">zebrafied</span>");
		free(pg.body);
		if (!found)
			sleep_ms(50);
	}
	cr_assert(found, "the edit did not show in Special:Search within 2 s (%.2f s); logs in %s",
		  now_s() - t0, E.dir);
}

Test(mwsearch, searchd_down_gives_a_message_and_the_wiki_goes_on, .init = setup_searchd,
     .fini = teardown)
{
	/* freshet-searchd never started: nothing listens on its port. */
	struct page pg = special_search("okapi");
	cr_assert_eq(pg.status, 200, "%.2000s", pg.body);
	cr_assert(strstr(pg.body, UNAVAILABLE), "no error message: %.3000s", pg.body);
	cr_assert(strstr(pg.body, "mw-message-box-error"), "not an error box: %.3000s", pg.body);
	free(pg.body);

	/* The API says so as an error; completion gives nothing. */
	json_t *j = api("action=query&list=search&srsearch=okapi");
	cr_assert_str_eq(jstr(json_object_get(j, "error"), "code"), "freshet-search-unavailable",
			 "%s", json_dumps(j, 0));
	json_decref(j);
	j = api("action=opensearch&search=Main");
	cr_assert_eq(json_array_size(json_array_get(j, 1)), 0, "%s", json_dumps(j, 0));
	json_decref(j);

	/* Pages render and edits save. */
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/index.php?title=Main_Page", mw_port(E.mw));
	pg = fetch(url);
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, "id=\"firstHeading\""), "%.2000s", pg.body);
	free(pg.body);
	long rev = 0;
	cr_assert(mw_edit(E.mw, "Okapi", "The okapi, while search is down.", NULL, &rev));
	cr_assert_gt(rev, 0);

	/* The failure is logged on the extension's channel. */
	char *log = test_read_file(E.mwlog, NULL);
	cr_assert(log && strstr(log, "freshet-searchd"), "nothing logged in %s", E.mwlog);
	free(log);
}

/* The wiki's search goes to route of a hostile server (tests/lib/hostile.h)
 * instead of freshet-searchd. */
static void setup_hostile(const char *route, double timeout)
{
	struct hostile *h = hostile_start();
	cr_assert_not_null(h);
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", hostile_port(h), route);
	setup_with(url, timeout, false);
	E.hostile = h;
}

static void setup_stalling(void)
{
	setup_hostile("stall", 1);
}
static void setup_markup(void)
{
	setup_hostile("searchd-markup", 2);
}

Test(mwsearch, a_searchd_that_hangs_costs_the_timeout_only, .init = setup_stalling,
     .fini = teardown)
{
	/* The page's own time, without a search (no term: the form only),
	 * once the server's workers have compiled the code. */
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/index.php?title=Special:Search",
		 mw_port(E.mw));
	double own = 1e9;
	for (int i = 0; i < 4; i++) {
		struct page pg = fetch(url);
		cr_assert_eq(pg.status, 200);
		own = pg.secs < own ? pg.secs : own;
		free(pg.body);
	}
	cr_assert_eq(hostile_requests(E.hostile), 0);

	/* The timeout is 1 s: a search costs that once, not once per call. */
	struct page pg = special_search("okapi");
	cr_assert_eq(pg.status, 200, "%.2000s", pg.body);
	cr_assert(strstr(pg.body, UNAVAILABLE), "no error message: %.3000s", pg.body);
	cr_assert_lt(pg.secs, own + 1.0 + 1.0,
		     "Special:Search took %.2f s with a 1 s timeout (%.2f s without a search)",
		     pg.secs, own);
	cr_assert_geq(pg.secs, 1.0, "answered before the timeout: %.2f s", pg.secs);
	cr_assert_eq(hostile_requests(E.hostile), 1, "asked %ld times",
		     hostile_requests(E.hostile));
	free(pg.body);

	json_t *j = api("action=opensearch&search=Main");
	cr_assert_eq(json_array_size(json_array_get(j, 1)), 0, "%s", json_dumps(j, 0));
	json_decref(j);
}

Test(mwsearch, snippets_keep_only_the_searchmatch_markup, .init = setup_markup, .fini = teardown)
{
	json_t *j = api("action=query&list=search&srsearch=okapi&srprop=snippet%%7Ctitlesnippet");
	json_t *h = json_array_get(hits(j), 0);
	cr_assert_str_eq(jstr(h, "snippet"),
			 "&lt;script&gt;alert(1)&lt;/script&gt; the "
			 "<span class=\"searchmatch\">okapi</span> "
			 "&lt;img src=x onerror=alert(2)&gt; &lt;span class=&quot;evil&quot;&gt;x"
			 "&lt;/span&gt;&lt;/span&gt; &amp;lt;b&amp;gt;");
	cr_assert_str_eq(jstr(h, "titlesnippet"), "&lt;b&gt;Main&lt;/b&gt; Page");
	json_decref(j);

	struct page pg = special_search("okapi");
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, "&lt;script&gt;alert(1)"), "%.3000s", pg.body);
	cr_assert_null(strstr(pg.body, "<script>alert"), "a script got through");
	cr_assert_null(strstr(pg.body, "<img src=x"), "an image got through");
	cr_assert_null(strstr(pg.body, "class=\"evil\""), "a foreign span got through");
	free(pg.body);
}

/* Writes line to path (mode 0600). */
static void write_token(const char *path, const char *line)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fprintf(f, "%s\n", line);
	fclose(f);
	chmod(path, 0600);
}

static void setup_token(void)
{
	setup_with(NULL, 2, true);
}

Test(mwsearch, the_token_file_opens_a_protected_searchd, .init = setup_token, .fini = teardown)
{
	char searchd_tok[600], extra[700];
	snprintf(searchd_tok, sizeof searchd_tok, "%s/searchd.token", E.dir);
	write_token(searchd_tok, "s3cret-token");
	snprintf(extra, sizeof extra, "token_file = %s\n", searchd_tok);
	write_conf(extra);
	write_token(E.token, "s3cret-token");
	mw_edit(E.mw, "Okapi", "The okapi is a forest giraffe.", NULL, NULL);
	reindex_all();
	daemon_start();

	struct page pg = special_search("okapi");
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, "<span class=\"searchmatch\">okapi</span>"),
		  "no result with the token: %.3000s", pg.body);
	free(pg.body);

	/* A wrong token: refused, and the reader is told. */
	write_token(E.token, "wrong-token");
	pg = special_search("okapi");
	cr_assert_eq(pg.status, 200);
	cr_assert(strstr(pg.body, UNAVAILABLE), "%.3000s", pg.body);
	cr_assert_null(strstr(pg.body, "mw-search-result-heading"));
	free(pg.body);
}
