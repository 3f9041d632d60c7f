/* SPDX-License-Identifier: MIT */
/*
 * test-searchd.c: freshet-searchd, the real binary ($FRESHET_BUILDDIR),
 * asked over HTTP with libcurl, serving shards that the real reindex-page
 * and freshet-worker built from a real MediaWiki (tests/lib/mw.h); and the
 * title folding completion relies on (document_fold_title()).
 *
 * Each test has its own wiki, Redis, data directory, port and
 * configuration, so the tests run in parallel.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "document.h"
#include "mw.h"
#include "now.h"
#include "shard.h"
#include "testsupport.h"
#include "xapian-shim.h"

#define WIKI "searchwiki"

struct env {
	char *dir;
	char conf[512];
	char data[512];
	char log[512];
	int port;
	pid_t daemon;
	struct test_redis *redis;
	struct mw *mw;
	pid_t worker;
};

static struct env E;

static void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Writes freshet.conf: the wiki (two shards, namespaces 0 and 1, no
 * consistency loop: the worker applies only the tests' changes) and
 * [searchd] on E.port, with extra lines appended to [searchd]. */
static void write_conf(const char *searchd_extra)
{
	FILE *f = fopen(E.conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = unix://%s\n\n"
		"[worker]\ndata_dir = %s\nthreads = 2\ncommit_ms = 100\n"
		"lease_ms = 2000\nshutdown_timeout_ms = 15000\n\n"
		"[searchd]\nlisten = 127.0.0.1:%d\nthreads = 2\n"
		"max_connections = 600\nconnection_timeout_s = 30\n%s\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = 2\n"
		"namespaces = 0,1\nconcurrency = 4\nrate = 0\nsaneitize_days = 0\n",
		E.redis ? E.redis->socket : "/nonexistent", E.data, E.port,
		searchd_extra ? searchd_extra : "",
		E.mw ? mw_api_url(E.mw) : "http://127.0.0.1:9/api.php");
	fclose(f);
}

static void setup_common(bool wiki, bool extension)
{
	memset(&E, 0, sizeof E);
	E.dir = test_mkdtemp("searchd");
	snprintf(E.conf, sizeof E.conf, "%s/freshet.conf", E.dir);
	snprintf(E.data, sizeof E.data, "%s/data", E.dir);
	snprintf(E.log, sizeof E.log, "%s/searchd.log", E.dir);
	E.port = test_free_port();
	if (wiki) {
		E.redis = test_redis_start();
		struct mw_opts o = { .wiki_id = WIKI, .lang = "en", .freshet = extension,
				     .redis_socket = E.redis->socket, .partitions = 2 };
		E.mw = mw_start(&o);
	}
	write_conf(NULL);
}

static void setup_wiki(void) { setup_common(true, false); }
static void setup_events(void) { setup_common(true, true); }
static void setup_bare(void) { setup_common(false, false); }

static void stop_pid(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static void teardown(void)
{
	stop_pid(&E.daemon);
	stop_pid(&E.worker);
	mw_stop(E.mw);
	test_redis_stop(E.redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(E.dir);
	free(E.dir);
}

/* Starts prog --config E.conf args..., output appended to logfile. */
static pid_t spawn(const char *prog, const char *logfile, const char *const *args)
{
	const char *argv[32] = { "--config", E.conf };
	for (size_t i = 0, n = 2; args && args[i] && n < 31; i++)
		argv[n++] = args[i];
	return test_spawn(prog, argv, logfile);
}

/* Runs prog to completion; returns its exit status (-1 if killed). */
static int run(const char *prog, ...)
{
	const char *args[24];
	size_t n = 0;
	va_list ap;
	va_start(ap, prog);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 23)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	char log[600];
	snprintf(log, sizeof log, "%s/%s.log", E.dir, prog);
	pid_t pid = spawn(prog, log, args);
	int st;
	cr_assert(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------- HTTP */

struct resp {
	long status;
	char *body;
	json_t *json;        /* parsed body, or NULL */
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	buf_add(ctx, p, size * n);
	return size * n;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	json_decref(r->json);
	memset(r, 0, sizeof *r);
}

/* Sends method path (with query string) to the daemon; header may be
 * NULL.  status 0 when the request failed at the transport level. */
static struct resp http(const char *method, const char *path, const char *header)
{
	CURL *c = curl_easy_init();
	cr_assert_not_null(c);
	char *url;
	cr_assert(asprintf(&url, "http://127.0.0.1:%d%s", E.port, path) > 0);
	struct buf b = BUF_INIT;
	struct curl_slist *h = header ? curl_slist_append(NULL, header) : NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
	if (h)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	struct resp r = { 0 };
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	r.body = buf_detach(&b, NULL);
	if (!r.body)
		r.body = strdup("");
	r.json = json_loads(r.body, 0, NULL);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	free(url);
	return r;
}

static struct resp get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct resp get(const char *fmt, ...)
{
	char path[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	return http("GET", path, NULL);
}

/* Adds to m a GET of path on the daemon, its body to body, i as its
 * CURLINFO_PRIVATE.  Returns the handle (the caller cleans it up). */
static CURL *multi_get(CURLM *m, const char *path, struct buf *body, int i, long timeout_ms)
{
	char url[8300];
	snprintf(url, sizeof url, "http://127.0.0.1:%d%s", E.port, path);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (char *)(intptr_t)i);
	curl_multi_add_handle(m, h);
	return h;
}

/* The next finished transfer of m, or NULL when no other has finished:
 * its HTTP status in *status and its multi_get() index in *i. */
static CURLMsg *multi_done(CURLM *m, long *status, int *i)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(m, &left)) && msg->msg != CURLMSG_DONE)
		;
	if (!msg)
		return NULL;
	*status = 0;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, status);
	char *pv;
	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &pv);
	*i = (int)(intptr_t)pv;
	return msg;
}

static void daemon_start(void)
{
	const char *none[] = { NULL };
	E.daemon = spawn("freshet-searchd", E.log, none);
	/* Up once it answers anything (starting under ASan takes a while). */
	char url[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/healthz", E.port);
	test_wait_http(url, E.daemon, E.log);
}

/* Sends SIGTERM and asserts a prompt exit 0. */
static void daemon_term(void)
{
	kill(E.daemon, SIGTERM);
	double end = now_s() + 10;
	int ws = 0;
	pid_t r = 0;
	while (now_s() < end && (r = waitpid(E.daemon, &ws, WNOHANG)) == 0)
		msleep(20);
	cr_assert_eq(r, E.daemon, "freshet-searchd did not exit within 10 s of SIGTERM");
	E.daemon = 0;
	cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
		  "freshet-searchd did not exit 0 on SIGTERM (status %d); log in %s",
		  ws, E.log);
	/* Built with sanitizers, the daemon reports leaks and errors in its
	 * log at exit. */
	char *log = test_read_file(E.log, NULL);
	cr_assert(log && !strstr(log, "Sanitizer"), "sanitizer report in %s:\n%s",
		  E.log, log ? log : "");
	cr_assert(strstr(log, "action=exit code=0"), "%s", log);
	free(log);
}

static const char *jstr(json_t *o, const char *k)
{
	const char *v = json_string_value(json_object_get(o, k));
	return v ? v : "";
}

static json_t *results(struct resp *r)
{
	json_t *res = json_object_get(r->json, "results");
	cr_assert(json_is_array(res), "no results in: %s", r->body);
	return res;
}

static bool has_title(json_t *res, const char *title)
{
	size_t i;
	json_t *x;
	json_array_foreach(res, i, x)
		if (strcmp(jstr(x, "title"), title) == 0)
			return true;
	return false;
}

static void assert_error(struct resp *r, long status, const char *code)
{
	cr_assert_eq(r->status, status, "status %ld, not %ld: %s", r->status, status,
		     r->body);
	json_t *e = json_object_get(r->json, "error");
	cr_assert(json_is_object(e), "no error object: %s", r->body);
	cr_assert_str_eq(jstr(e, "code"), code, "%s", r->body);
	cr_assert(*jstr(e, "message"), "no message: %s", r->body);
}

static void reindex_all(void)
{
	cr_assert_eq(run("reindex-page", "--wiki", WIKI, "--all", "--quiet", NULL), 0,
		     "reindex-page --all failed; log in %s/reindex-page.log", E.dir);
}

/* ------------------------------------------------------------------ tests */

/* One timeout for the whole suite: Criterion leaks a little at exit when
 * the tests of an undeclared suite carry different ones. */
TestSuite(searchd, .timeout = 240);

Test(searchd, fold_title)
{
	struct { const char *in, *out; } cases[] = {
		{ "Élan_Vital", "elan vital" },
		{ "  ÉLAN   vital ", "elan vital" },
		{ "Straße", "strasse" },
		{ "Øresund Łódź", "oresund lodz" },
		{ "Ἀθῆναι", "αθηναι" },
		{ "Йошкар-Ола", "йошкар-ола" },
		{ "ガイド", "ガイド" },
		{ "ＡＢＣ", "abc" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *f = document_fold_title(cases[i].in, strlen(cases[i].in));
		cr_assert_str_eq(f, cases[i].out, "fold(\"%s\")", cases[i].in);
		free(f);
	}
	/* Invalid UTF-8 does not break it. */
	char *f = document_fold_title("a\xff" "b", 3);
	cr_assert_str_eq(f, "a\xef\xbf\xbd" "b");
	free(f);
}

Test(searchd, old_schema_is_refused_with_rebuild_message, .init = setup_bare,
     .fini = teardown)
{
	char path[600];
	snprintf(path, sizeof path, "%s/shard-old", E.dir);
	struct xdb *db = xdb_new();
	cr_assert_eq(xdb_open_write(db, path, XDB_CREATE), STATUS_OK);
	cr_assert_eq(xdb_set_metadata(db, "freshet.schema", "1"), STATUS_OK);
	cr_assert_eq(xdb_commit(db), STATUS_OK);
	xdb_free(db);
	struct shard *sh = shard_new();
	cr_assert_eq(shard_open(sh, path, 0), STATUS_VERSION);
	cr_assert(strstr(shard_errmsg(sh), "rebuild"), "%s", shard_errmsg(sh));
	shard_free(sh);
}

Test(searchd, search_complete_errors_metrics_term, .init = setup_wiki,
     .fini = teardown)
{
	const char *titles[] = {
		"Aardvark facts", "Capybara life", "Okapi", "Okapi page 1",
		"Okapi page 2", "Okapi page 3", "Okapi page 4", "Élan vital",
		"Talk:Okapi chat", "Markup page",
	};
	const char *texts[] = {
		"The aardvark digs burrows at night and eats termites with a long tongue.",
		"The capybara is the largest rodent and lives near rivers and lakes.",
		"The okapi is a forest giraffe.",
		"The okapi number 1 lives in the forest.",
		"The okapi number 2 lives in the forest.",
		"The okapi number 3 lives in the forest.",
		"The okapi number 4 lives in the forest.",
		"Bergson wrote of the vital impetus.",
		"Talk about the okapi.",
		"Angle brackets: 3 < 4 & 5 > 2 in this quokka text.",
	};
	mw_seed(E.mw, 10, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();

	/* A hit and its fields. */
	struct resp r = get("/v1/" WIKI "/search?q=termites");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "query"), "termites");
	cr_assert_eq(json_integer_value(json_object_get(r.json, "total")), 1, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "total_relation"), "eq");
	json_t *sh = json_object_get(r.json, "shards");
	cr_assert_eq(json_integer_value(json_object_get(sh, "total")), 2, "%s", r.body);
	cr_assert_eq(json_integer_value(json_object_get(sh, "ok")), 2);
	cr_assert_eq(json_integer_value(json_object_get(sh, "failed")), 0);
	cr_assert(json_is_integer(json_object_get(r.json, "took_ms")));
	json_t *h = json_array_get(results(&r), 0);
	cr_assert_str_eq(jstr(h, "title"), "Aardvark facts");
	struct mw_page_info info;
	cr_assert(mw_page_info(E.mw, "Aardvark facts", &info));
	cr_assert_eq(json_integer_value(json_object_get(h, "page_id")), info.page_id);
	cr_assert_eq(json_integer_value(json_object_get(h, "rev_id")), info.rev_id);
	cr_assert_eq(json_integer_value(json_object_get(h, "namespace")), 0);
	cr_assert_str_eq(jstr(h, "language"), "en");
	cr_assert(strstr(jstr(h, "url"), "title=Aardvark_facts"), "%s", r.body);
	cr_assert(strlen(jstr(h, "timestamp")) == 20 && jstr(h, "timestamp")[19] == 'Z',
		  "timestamp: %s", r.body);
	cr_assert(json_real_value(json_object_get(h, "score")) > 0);
	cr_assert(strstr(jstr(h, "snippet"), "<span class=\"searchmatch\">termites</span>"),
		  "snippet: %s", r.body);
	cr_assert(json_is_null(json_object_get(h, "redirect_title")), "%s", r.body);
	cr_assert(json_integer_value(json_object_get(h, "size")) > 40, "%s", r.body);
	long wc = (long)json_integer_value(json_object_get(h, "word_count"));
	cr_assert(wc >= 13 && wc <= 16, "word_count %ld: %s", wc, r.body);
	resp_free(&r);

	/* The title snippet marks title matches; snippets are HTML-escaped. */
	r = get("/v1/" WIKI "/search?q=aardvark");
	h = json_array_get(results(&r), 0);
	cr_assert_str_eq(jstr(h, "title_snippet"),
			 "<span class=\"searchmatch\">Aardvark</span> facts", "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/search?q=quokka");
	h = json_array_get(results(&r), 0);
	cr_assert(strstr(jstr(h, "snippet"), "3 &lt; 4 &amp; 5 &gt; 2"), "%s", r.body);
	resp_free(&r);

	/* Paging: five okapi pages in namespace 0, in three pages. */
	r = get("/v1/" WIKI "/search?q=okapi&ns=0&limit=2");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(json_integer_value(json_object_get(r.json, "total")), 5, "%s", r.body);
	cr_assert_eq(json_array_size(results(&r)), 2);
	cr_assert_str_eq(jstr(json_array_get(results(&r), 0), "title"), "Okapi",
			 "the title match ranks first: %s", r.body);
	struct resp r2 = get("/v1/" WIKI "/search?q=okapi&ns=0&limit=2&offset=2");
	struct resp r3 = get("/v1/" WIKI "/search?q=okapi&ns=0&limit=2&offset=4");
	cr_assert_eq(json_array_size(results(&r2)), 2);
	cr_assert_eq(json_array_size(results(&r3)), 1, "%s", r3.body);
	json_t *seen = json_object();
	struct resp *pages[] = { &r, &r2, &r3 };
	for (int p = 0; p < 3; p++) {
		size_t i;
		json_t *x;
		json_array_foreach(results(pages[p]), i, x) {
			cr_assert_null(json_object_get(seen, jstr(x, "title")),
				       "%s twice", jstr(x, "title"));
			json_object_set_new(seen, jstr(x, "title"), json_true());
		}
	}
	cr_assert_eq(json_object_size(seen), 5);
	json_decref(seen);
	resp_free(&r);
	resp_free(&r2);
	resp_free(&r3);

	/* Namespaces: the talk page only in 1; all by default. */
	r = get("/v1/" WIKI "/search?q=okapi&ns=1");
	cr_assert_eq(json_array_size(results(&r)), 1, "%s", r.body);
	cr_assert_str_eq(jstr(json_array_get(results(&r), 0), "title"), "Talk:Okapi chat");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(results(&r), 0),
							"namespace")), 1);
	resp_free(&r);
	r = get("/v1/" WIKI "/search?q=okapi&ns=0&ns=1");
	cr_assert_eq(json_array_size(results(&r)), 6, "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/search?q=okapi&limit=20");
	cr_assert_eq(json_array_size(results(&r)), 6, "%s", r.body);
	resp_free(&r);
	/* One language; a stem ("rivers" from "river"). */
	r = get("/v1/" WIKI "/search?q=river&lang=en");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert(has_title(results(&r), "Capybara life"), "%s", r.body);
	resp_free(&r);

	/* Completion: prefix, case, accents; the exact title first. */
	r = get("/v1/" WIKI "/complete?q=okap");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "query"), "okap");
	cr_assert_eq(json_array_size(results(&r)), 6, "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=OKAPI&ns=0");
	cr_assert_eq(json_array_size(results(&r)), 5, "%s", r.body);
	h = json_array_get(results(&r), 0);
	cr_assert_str_eq(jstr(h, "title"), "Okapi", "exact title first: %s", r.body);
	cr_assert(strstr(jstr(h, "url"), "title=Okapi"), "%s", r.body);
	cr_assert(json_integer_value(json_object_get(h, "page_id")) > 0);
	cr_assert(json_is_null(json_object_get(h, "redirect_title")));
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=okapi%%20PAGE%%203");
	cr_assert_eq(json_array_size(results(&r)), 1, "%s", r.body);
	cr_assert_str_eq(jstr(json_array_get(results(&r), 0), "title"), "Okapi page 3");
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=elan%%20v");
	cr_assert_eq(json_array_size(results(&r)), 1, "%s", r.body);
	cr_assert_str_eq(jstr(json_array_get(results(&r), 0), "title"), "Élan vital");
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=%%C3%%89LAN");
	cr_assert_eq(json_array_size(results(&r)), 1, "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=okapi&limit=2");
	cr_assert_eq(json_array_size(results(&r)), 2, "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=zzz");
	cr_assert_eq(r.status, 200);
	cr_assert_eq(json_array_size(results(&r)), 0, "%s", r.body);
	resp_free(&r);

	/* Every error is JSON with its status. */
	struct buf longq = BUF_INIT;
	for (int i = 0; i < 1100; i++)
		buf_addch(&longq, 'a');
	r = get("/v1/" WIKI "/search?q=%s", longq.data);
	assert_error(&r, 400, "query_too_long");
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=%s", longq.data);
	assert_error(&r, 400, "query_too_long");
	resp_free(&r);
	buf_release(&longq);
	struct buf many = BUF_INIT;
	for (int i = 0; i < 33; i++)
		buf_addf(&many, "%sw%d", i ? "%20" : "", i);
	r = get("/v1/" WIKI "/search?q=%s", many.data);
	assert_error(&r, 400, "too_many_terms");
	resp_free(&r);
	buf_release(&many);
	const char *bad[] = {
		"/v1/" WIKI "/search?q=okapi&limit=abc",
		"/v1/" WIKI "/search?q=okapi&limit=0",
		"/v1/" WIKI "/search?q=okapi&limit=101",
		"/v1/" WIKI "/search?q=okapi&offset=-1",
		"/v1/" WIKI "/search?q=okapi&ns=x",
		"/v1/" WIKI "/search?q=okapi&lang=..%2F",
		"/v1/" WIKI "/search",
		"/v1/" WIKI "/search?q=%20",
		"/v1/" WIKI "/search?q=%FF",
		"/v1/" WIKI "/complete",
		"/v1/" WIKI "/complete?q=okapi&limit=x",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = get("%s", bad[i]);
		assert_error(&r, 400, "bad_parameter");
		resp_free(&r);
	}
	r = get("/v1/nosuchwiki/search?q=okapi");
	assert_error(&r, 404, "unknown_wiki");
	resp_free(&r);
	r = get("/v1/nosuchwiki/complete?q=okapi");
	assert_error(&r, 404, "unknown_wiki");
	resp_free(&r);
	r = get("/v2/" WIKI "/search?q=okapi");
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	r = get("/");
	assert_error(&r, 404, "not_found");
	resp_free(&r);
	r = http("POST", "/v1/" WIKI "/search?q=okapi", NULL);
	assert_error(&r, 405, "method_not_allowed");
	resp_free(&r);
	r = http("DELETE", "/healthz", NULL);
	assert_error(&r, 405, "method_not_allowed");
	resp_free(&r);

	/* An oversized request (a 40 KB URL) is refused, and the daemon
	 * goes on answering. */
	struct buf huge = BUF_INIT;
	buf_adds(&huge, "/v1/" WIKI "/search?q=");
	for (int i = 0; i < 40000; i++)
		buf_addch(&huge, 'b');
	r = http("GET", huge.data, NULL);
	cr_assert(r.status == 414 || r.status == 431 || r.status == 400,
		  "oversized request answered %ld", r.status);
	resp_free(&r);
	buf_release(&huge);

	/* Health and metrics. */
	r = get("/healthz");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_str_eq(jstr(r.json, "status"), "ok");
	resp_free(&r);
	r = get("/metrics");
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "freshet_searchd_requests_total{endpoint=\"search\",status=\"200\"}"),
		  "%s", r.body);
	cr_assert(strstr(r.body, "freshet_searchd_requests_total{endpoint=\"search\",status=\"400\"}"),
		  "%s", r.body);
	cr_assert(strstr(r.body, "freshet_searchd_request_duration_seconds_bucket{endpoint=\"search\""),
		  "%s", r.body);
	cr_assert(strstr(r.body, "freshet_searchd_open_shards{wiki=\"" WIKI "\"} 2"), "%s", r.body);
	resp_free(&r);

	/* The command line answers from the same path. */
	char out[600];
	snprintf(out, sizeof out, "%s/freshet-search.log", E.dir);
	cr_assert_eq(run("freshet-search", "--wiki", WIKI, "--json", "termites", NULL), 0);
	char *txt = test_read_file(out, NULL);
	cr_assert(txt && strstr(txt, "Aardvark facts"), "%s", txt ? txt : "");
	free(txt);

	daemon_term();
}

Test(searchd, missing_shard_gives_503_with_the_other_results, .init = setup_wiki,
     .fini = teardown)
{
	enum { N = 8 };
	const char *titles[N], *texts[N];
	char tb[N][64], xb[N][128];
	for (int i = 0; i < N; i++) {
		snprintf(tb[i], sizeof tb[i], "Wombat %d", i);
		snprintf(xb[i], sizeof xb[i], "The wombat number %d digs.", i);
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	mw_seed(E.mw, N, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();
	struct resp r = get("/v1/" WIKI "/search?q=wombat&limit=50");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(json_array_size(results(&r)), N, "%s", r.body);
	resp_free(&r);

	/* Shard 1 goes away: 503, shards.failed = 1, and shard 0's pages
	 * (even page ids) still in the body. */
	char s1[700], moved[700];
	snprintf(s1, sizeof s1, "%s/" WIKI "/current/shard-1", E.data);
	snprintf(moved, sizeof moved, "%s/shard-1.away", E.dir);
	cr_assert_eq(rename(s1, moved), 0, "%s", strerror(errno));
	r = get("/v1/" WIKI "/search?q=wombat&limit=50");
	assert_error(&r, 503, "shards_unavailable");
	json_t *sh = json_object_get(r.json, "shards");
	cr_assert_eq(json_integer_value(json_object_get(sh, "total")), 2, "%s", r.body);
	cr_assert_eq(json_integer_value(json_object_get(sh, "ok")), 1, "%s", r.body);
	cr_assert_eq(json_integer_value(json_object_get(sh, "failed")), 1, "%s", r.body);
	json_t *res = results(&r);
	cr_assert_gt(json_array_size(res), 0, "no results from shard 0: %s", r.body);
	cr_assert_lt(json_array_size(res), N, "%s", r.body);
	size_t i;
	json_t *x;
	json_array_foreach(res, i, x)
		cr_assert_eq(json_integer_value(json_object_get(x, "page_id")) % 2, 0,
			     "a page of the missing shard: %s", r.body);
	resp_free(&r);
	r = get("/healthz");
	cr_assert_eq(r.status, 503, "%s", r.body);
	resp_free(&r);
	r = get("/v1/" WIKI "/complete?q=wombat");
	cr_assert_eq(r.status, 503, "%s", r.body);
	resp_free(&r);

	/* Back: whole answers again, without a restart. */
	cr_assert_eq(rename(moved, s1), 0, "%s", strerror(errno));
	r = get("/v1/" WIKI "/search?q=wombat&limit=50");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_eq(json_array_size(results(&r)), N, "%s", r.body);
	resp_free(&r);
	r = get("/healthz");
	cr_assert_eq(r.status, 200, "%s", r.body);
	resp_free(&r);
	daemon_term();
}

/* Polls the search for q until a result titled title shows (or not). */
static bool wait_for(const char *q, const char *title, double secs)
{
	double end = now_s() + secs;
	while (now_s() < end) {
		struct resp r = get("/v1/" WIKI "/search?q=%s", q);
		bool found = r.status == 200 && has_title(results(&r), title);
		resp_free(&r);
		if (found)
			return true;
		msleep(200);
	}
	return false;
}

Test(searchd, follows_worker_commits_and_rebuilds, .init = setup_events,
     .fini = teardown)
{
	const char *titles[] = { "Numbat notes", "Quoll notes" };
	const char *texts[] = { "The numbat eats termites.", "The quoll hunts at night." };
	mw_seed(E.mw, 2, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();
	cr_assert(wait_for("numbat", "Numbat notes", 5));

	/* An edit through MediaWiki, applied by the worker, shows up. */
	char wlog[600];
	snprintf(wlog, sizeof wlog, "%s/worker.log", E.dir);
	const char *none[] = { NULL };
	E.worker = spawn("freshet-worker", wlog, none);
	mw_edit(E.mw, "Numbat notes", "The numbat was zebrafied.", NULL, NULL);
	cr_assert(wait_for("zebrafied", "Numbat notes", 60),
		  "the worker's commit never showed; logs in %s", E.dir);
	kill(E.worker, SIGTERM);
	waitpid(E.worker, NULL, 0);
	E.worker = 0;

	/* A change only a rebuild brings (no worker runs), swapped in. */
	char gen_link[600], before[256] = "", after[256] = "";
	snprintf(gen_link, sizeof gen_link, "%s/" WIKI "/current", E.data);
	cr_assert_gt(readlink(gen_link, before, sizeof before - 1), 0);
	mw_edit(E.mw, "Quoll notes", "The quoll was quokkafied.", NULL, NULL);
	struct resp r = get("/v1/" WIKI "/search?q=quokkafied");
	cr_assert_eq(json_array_size(results(&r)), 0, "%s", r.body);
	resp_free(&r);
	cr_assert_eq(run("reindex-page", "--wiki", WIKI, "--rebuild", NULL), 0,
		     "rebuild failed; log in %s", E.dir);
	cr_assert_gt(readlink(gen_link, after, sizeof after - 1), 0);
	cr_assert_str_neq(before, after, "current did not move");
	cr_assert(wait_for("quokkafied", "Quoll notes", 10),
		  "the rebuilt generation is not served");
	r = get("/v1/" WIKI "/search?q=zebrafied");
	cr_assert(has_title(results(&r), "Numbat notes"), "%s", r.body);
	resp_free(&r);
	/* A thread whose first reader opened the new generation has not
	 * reopened anything; the threads that served before the rebuild
	 * reopen when a request reaches them, and which thread takes a
	 * connection is up to the kernel: ask until one has. */
	bool reopened = false;
	for (int i = 0; i < 50 && !reopened; i++) {
		r = get("/v1/" WIKI "/search?q=zebrafied");
		resp_free(&r);
		r = get("/metrics");
		reopened = strstr(r.body, "freshet_searchd_shard_reopens_total{wiki=\"" WIKI "\"}");
		resp_free(&r);
	}
	cr_assert(reopened, "no reader counted a reopen after the swap");
	daemon_term();
}

/* Slow clients: each sends its request one byte per second. */
struct loris {
	int port;
	int fds[5];
	volatile bool stop;
};

static void *loris_main(void *arg)
{
	struct loris *l = arg;
	const char *req = "GET /v1/" WIKI "/search?q=okapi HTTP/1.1\r\nHost: x\r\n"
			  "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	for (size_t k = 0; k < strlen(req) && !l->stop; k++) {
		for (int i = 0; i < 5; i++)
			if (l->fds[i] >= 0 && send(l->fds[i], req + k, 1, MSG_NOSIGNAL) != 1) {
				close(l->fds[i]);
				l->fds[i] = -1;
			}
		for (int t = 0; t < 10 && !l->stop; t++)
			msleep(100);
	}
	return NULL;
}

Test(searchd, concurrent_and_slow_clients, .init = setup_wiki, .fini = teardown)
{
	const char *titles[] = { "Okapi", "Okapi page 1", "Zebra" };
	const char *texts[] = { "The okapi is shy.", "The okapi number 1.",
				"The zebra has stripes like the okapi." };
	mw_seed(E.mw, 3, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();

	struct loris l = { .port = E.port };
	for (int i = 0; i < 5; i++) {
		l.fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(E.port),
					 .sin_addr.s_addr = htonl(0x7f000001) };
		cr_assert_eq(connect(l.fds[i], (struct sockaddr *)&a, sizeof a), 0);
	}
	pthread_t lt;
	pthread_create(&lt, NULL, loris_main, &l);
	msleep(1500);

	/* With the slow clients connected, a request is answered at once. */
	double t0 = now_s();
	struct resp r = get("/v1/" WIKI "/search?q=okapi");
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert_lt(now_s() - t0, 2.0, "a request waited behind slow clients");
	resp_free(&r);

	/* 200 clients at once, for 10 seconds: every answer a 200 with the
	 * three results. */
	enum { C = 200 };
	CURLM *m = curl_multi_init();
	CURL *e[C];
	struct buf bodies[C];
	char url[256];
	const char *qs[] = { "okapi", "zebra", "okapi%20shy" };
	long ok = 0, bad = 0;
	for (int i = 0; i < C; i++) {
		bodies[i] = (struct buf)BUF_INIT;
		snprintf(url, sizeof url, "/v1/" WIKI "/search?q=%s", qs[i % 3]);
		e[i] = multi_get(m, url, &bodies[i], i, 20000);
	}
	double end = now_s() + 10;
	int running = C;
	while (running || now_s() < end) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		long st;
		int i;
		while ((msg = multi_done(m, &st, &i))) {
			CURL *h = msg->easy_handle;
			bool good = msg->data.result == CURLE_OK && st == 200 &&
				    bodies[i].data && strstr(bodies[i].data, "\"results\"");
			if (good)
				ok++;
			else
				bad++;
			cr_assert(good, "request failed: curl %d, status %ld: %s",
				  msg->data.result, st, bodies[i].data ? bodies[i].data : "");
			buf_release(&bodies[i]);
			curl_multi_remove_handle(m, h);
			if (now_s() < end) {
				/* Again, on the same (kept-alive) handle. */
				curl_multi_add_handle(m, h);
				running++;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
		else if (now_s() < end)
			msleep(10);
	}
	for (int i = 0; i < C; i++) {
		curl_easy_cleanup(e[i]);
		buf_release(&bodies[i]);
	}
	curl_multi_cleanup(m);
	cr_assert_eq(bad, 0);
	cr_assert_gt(ok, C, "only %ld answers", ok);

	l.stop = true;
	pthread_join(lt, NULL);
	for (int i = 0; i < 5; i++)
		if (l.fds[i] >= 0)
			close(l.fds[i]);
	/* SIGTERM while idle keep-alive and slow connections are open. */
	daemon_term();
}

Test(searchd, token_and_listen_rules, .init = setup_bare, .fini = teardown)
{
	char tok[600];
	snprintf(tok, sizeof tok, "%s/token", E.dir);
	FILE *f = fopen(tok, "w");
	cr_assert_not_null(f);
	fputs("s3cret-token\n", f);
	fclose(f);
	char extra[700];
	snprintf(extra, sizeof extra, "token_file = %s\n", tok);
	write_conf(extra);
	daemon_start();
	struct resp r = get("/v1/" WIKI "/search?q=x");
	assert_error(&r, 401, "unauthorized");
	resp_free(&r);
	r = http("GET", "/v1/" WIKI "/search?q=x", "Authorization: Bearer wrong");
	assert_error(&r, 401, "unauthorized");
	resp_free(&r);
	/* With the token: no index yet, so every shard failed: 503. */
	r = http("GET", "/v1/" WIKI "/search?q=x", "Authorization: Bearer s3cret-token");
	cr_assert_eq(r.status, 503, "%s", r.body);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r.json, "shards"),
							"failed")), 2, "%s", r.body);
	resp_free(&r);
	r = get("/healthz");
	cr_assert_eq(r.status, 503, "%s", r.body);
	resp_free(&r);
	daemon_term();

	/* No token: a non-loopback address is refused (exit 2). */
	write_conf(NULL);
	cr_assert_eq(run("freshet-searchd", "--listen", "0.0.0.0:1", NULL), 2);
	char log[700];
	snprintf(log, sizeof log, "%s/freshet-searchd.log", E.dir);
	char *t = test_read_file(log, NULL);
	cr_assert(t && strstr(t, "allow_anonymous"), "%s", t ? t : "");
	free(t);
	cr_assert_eq(run("freshet-searchd", "--help", NULL), 0);
	cr_assert_eq(run("freshet-searchd", "--listen", "nonsense", NULL), 2);
}

/* Starts xapian-tcpsrv serving dir on 127.0.0.1:port, in its own process
 * group (it forks a server per connection: stopping the group stops them
 * all), and waits until it accepts connections. */
static pid_t tcpsrv_start(const char *dir, int port)
{
	char ps[16];
	snprintf(ps, sizeof ps, "%d", port);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execlp("xapian-tcpsrv", "xapian-tcpsrv", "--port", ps, "--interface",
		       "127.0.0.1", "--quiet", dir, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
		if (fd >= 0)
			close(fd);
		if (up)
			return pid;
		msleep(50);
	}
	cr_assert_fail("xapian-tcpsrv on port %d did not start", port);
	return 0;
}

/* Stops a tcpsrv started by tcpsrv_start(): its whole group, SIGKILL. */
static void tcpsrv_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(-*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* The page ids of a result list, in order, as "1,3,2". */
static void result_ids(struct resp *r, char *out, size_t cap)
{
	size_t i, o = 0;
	json_t *x;
	out[0] = '\0';
	json_array_foreach(results(r), i, x)
		o += (size_t)snprintf(out + o, o < cap ? cap - o : 0, "%s%lld", i ? "," : "",
				      (long long)json_integer_value(json_object_get(x, "page_id")));
}

Test(searchd, remote_shards_answer_like_local_ones, .init = setup_wiki, .fini = teardown)
{
	enum { N = 8 };
	const char *titles[N], *texts[N];
	char tb[N][64], xb[N][128];
	for (int i = 0; i < N; i++) {
		snprintf(tb[i], sizeof tb[i], "Numbat %d", i);
		snprintf(xb[i], sizeof xb[i], "The numbat number %d eats %s termites.", i,
			 i % 3 ? "many" : "a few");
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	mw_seed(E.mw, N, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();
	struct resp r = get("/v1/" WIKI "/search?q=numbat%%20termites&limit=50");
	cr_assert_eq(r.status, 200, "%s", r.body);
	char local[512], remote[512];
	result_ids(&r, local, sizeof local);
	cr_assert_eq(json_array_size(results(&r)), N, "%s", r.body);
	resp_free(&r);
	daemon_term();

	/* Each shard served by its own xapian-tcpsrv. */
	pid_t srv[2];
	int ports[2];
	for (int i = 0; i < 2; i++) {
		char dir[700];
		snprintf(dir, sizeof dir, "%s/" WIKI "/current/shard-%d", E.data, i);
		ports[i] = test_free_port();
		srv[i] = tcpsrv_start(dir, ports[i]);
	}
	FILE *f = fopen(E.conf, "a");
	cr_assert_not_null(f);
	fprintf(f, "search = remote 127.0.0.1:%d, 127.0.0.1:%d\nremote_timeout_ms = 1000\n",
		ports[0], ports[1]);
	fclose(f);
	daemon_start();
	r = get("/v1/" WIKI "/search?q=numbat%%20termites&limit=50");
	cr_assert_eq(r.status, 200, "%s", r.body);
	result_ids(&r, remote, sizeof remote);
	cr_assert_str_eq(remote, local, "remote answer differs: %s", r.body);
	resp_free(&r);

	/* Shard 1's server hangs (its process group stopped, the child that
	 * serves the daemon's connection included: the kernel still accepts
	 * connections, nothing answers), then dies.  Each time: 503 with
	 * shard 0's results, within remote_timeout_ms and a margin. */
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			cr_assert_eq(kill(-srv[1], SIGSTOP), 0);
		else
			tcpsrv_kill(&srv[1]);
		double t0 = now_s();
		r = get("/v1/" WIKI "/search?q=numbat%%20termites&limit=50");
		double took = now_s() - t0;
		const char *what = round == 0 ? "hung" : "dead";
		assert_error(&r, 503, "shards_unavailable");
		json_t *sh = json_object_get(r.json, "shards");
		cr_assert_eq(json_integer_value(json_object_get(sh, "failed")), 1, "%s: %s", what,
			     r.body);
		cr_assert_eq(json_integer_value(json_object_get(sh, "ok")), 1, "%s: %s", what,
			     r.body);
		size_t i;
		json_t *x;
		cr_assert_gt(json_array_size(results(&r)), 0, "%s: %s", what, r.body);
		json_array_foreach(results(&r), i, x)
			cr_assert_eq(json_integer_value(json_object_get(x, "page_id")) % 2, 0,
				     "a page of the %s shard: %s", what, r.body);
		cr_assert_lt(took, 5.0, "%s shard: the answer took %.1f s", what, took);
		resp_free(&r);
	}
	daemon_term();
	tcpsrv_kill(&srv[0]);
}

/* Reads from fd until the HTTP answer in b is whole (headers and
 * Content-Length bytes of body) or the peer closes; returns the body's
 * offset in b, or 0 when the answer is not whole. */
static size_t read_answer(int fd, struct buf *b)
{
	char chunk[4096];
	for (;;) {
		const char *hdr_end = b->data ? strstr(b->data, "\r\n\r\n") : NULL;
		if (hdr_end) {
			const char *cl = strcasestr(b->data, "\r\ncontent-length:");
			size_t body = (size_t)(hdr_end + 4 - b->data);
			if (cl && cl < hdr_end && b->len >= body + strtoul(cl + 17, NULL, 10))
				return body;
		}
		ssize_t n = recv(fd, chunk, sizeof chunk, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		buf_add(b, chunk, (size_t)n);
	}
}

Test(searchd, sigterm_finishes_the_request_in_flight, .init = setup_wiki,
     .fini = teardown)
{
	enum { N = 5 };
	const char *titles[N], *texts[N];
	char tb[N][64], xb[N][128];
	for (int i = 0; i < N; i++) {
		snprintf(tb[i], sizeof tb[i], "Kinkajou %d", i);
		snprintf(xb[i], sizeof xb[i], "The kinkajou number %d climbs.", i);
		titles[i] = tb[i];
		texts[i] = xb[i];
	}
	mw_seed(E.mw, N, titles, texts, NULL, NULL);
	reindex_all();
	daemon_start();

	/* A client slow to send its request: the headers now, the body (a
	 * body the daemon reads and discards) later.  "Expect: 100-continue"
	 * makes the daemon say when it has taken the request in hand, so the
	 * request is in flight, not merely connected, when SIGTERM comes. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(E.port),
				 .sin_addr.s_addr = htonl(0x7f000001) };
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "%s",
		     strerror(errno));
	const char *req = "GET /v1/" WIKI "/search?q=kinkajou&limit=100 HTTP/1.1\r\n"
			  "Host: 127.0.0.1\r\nContent-Length: 5\r\n"
			  "Expect: 100-continue\r\n\r\n";
	cr_assert_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	struct buf b = BUF_INIT;
	char c;
	while (!strstr(b.data, "\r\n\r\n")) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		cr_assert_eq(poll(&pfd, 1, 30000), 1, "no 100 Continue within 30 s");
		cr_assert_eq(recv(fd, &c, 1, 0), 1, "closed before 100 Continue");
		buf_addch(&b, c);
	}
	cr_assert(strncmp(b.data, "HTTP/1.1 100", 12) == 0, "%s", b.data);
	buf_reset(&b);

	kill(E.daemon, SIGTERM);
	/* The daemon waits for the request rather than cutting it. */
	msleep(1500);
	int ws;
	cr_assert_eq(waitpid(E.daemon, &ws, WNOHANG), 0,
		     "freshet-searchd exited with a request in flight (status %d); "
		     "log in %s", ws, E.log);

	/* The rest of the request: a whole 200 answer with every page. */
	cr_assert_eq(send(fd, "hello", 5, MSG_NOSIGNAL), 5);
	size_t body = read_answer(fd, &b);
	close(fd);
	cr_assert_gt(body, 0, "the answer was cut after %zu bytes: %s", b.len, b.data);
	cr_assert(strncmp(b.data, "HTTP/1.1 200", 12) == 0, "%.200s", b.data);
	json_t *j = json_loadb(b.data + body, b.len - body, 0, NULL);
	cr_assert_not_null(j, "the body is not JSON: %s", b.data + body);
	json_t *res = json_object_get(j, "results");
	cr_assert_eq(json_array_size(res), N, "%s", b.data + body);
	for (int i = 0; i < N; i++)
		cr_assert(has_title(res, tb[i]), "%s missing", tb[i]);
	json_decref(j);
	buf_release(&b);
	/* Then it exits 0 on its own, nothing cut. */
	daemon_term();
	char *log = test_read_file(E.log, NULL);
	cr_assert(log && !strstr(log, "requests_cut"), "%s", log ? log : "");
	free(log);
}

/* Searches wait in one queue for the search threads.  SIGTERM with the
 * queue full and no time to drain (shutdown_timeout_ms = 0, one thread):
 * every request still gets a whole answer, its results or 503
 * shutting_down, and the daemon exits 0 (libmicrohttpd aborts when it is
 * stopped with a connection still suspended). */
Test(searchd, sigterm_answers_the_queued_searches, .init = setup_wiki, .fini = teardown)
{
	const char *titles[] = { "Quokka", "Quokka island" };
	const char *texts[] = { "The quokka smiles.", "Rottnest has many a quokka." };
	mw_seed(E.mw, 2, titles, texts, NULL, NULL);
	reindex_all();
	write_conf("threads = 1\nshutdown_timeout_ms = 0\n");
	daemon_start();

	enum { C = 100 };
	CURLM *m = curl_multi_init();
	CURL *e[C];
	struct buf bodies[C];
	for (int i = 0; i < C; i++) {
		bodies[i] = (struct buf)BUF_INIT;
		e[i] = multi_get(m, "/v1/" WIKI "/search?q=quokka&limit=100", &bodies[i], i, 30000);
	}
	int running = C, done = 0, found = 0, refused = 0;
	bool termed = false;
	while (running) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		long st;
		int i;
		while ((msg = multi_done(m, &st, &i))) {
			struct buf *b = &bodies[i];
			cr_assert_eq(msg->data.result, CURLE_OK, "request %d cut: curl %d", done,
				     msg->data.result);
			json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
			cr_assert_not_null(j, "not JSON (status %ld): %s", st,
					   b->data ? b->data : "");
			if (st == 200) {
				cr_assert_eq(json_array_size(json_object_get(j, "results")), 2,
					     "%s", b->data);
				found++;
			} else {
				cr_assert_eq(st, 503, "%s", b->data);
				json_t *err = json_object_get(j, "error");
				cr_assert_str_eq(jstr(err, "code"), "shutting_down", "%s", b->data);
				refused++;
			}
			json_decref(j);
			done++;
			/* The first answer is in: the others are queued or
			 * being read.  Stop now. */
			if (!termed) {
				kill(E.daemon, SIGTERM);
				termed = true;
			}
		}
		if (running)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	for (int i = 0; i < C; i++) {
		curl_multi_remove_handle(m, e[i]);
		curl_easy_cleanup(e[i]);
		buf_release(&bodies[i]);
	}
	curl_multi_cleanup(m);
	cr_assert_eq(done, C);
	cr_assert_gt(found, 0);
	/* Signalled already: waits for the exit, 0, and a clean log. */
	daemon_term();
	cr_log_info("%d answered, %d refused while stopping", found, refused);
}
