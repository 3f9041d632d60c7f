/* SPDX-License-Identifier: MIT */
/*
 * test-browser.c: a wiki's search as a reader sees it, in a real browser.
 *
 * Each test starts a real MediaWiki (tests/lib/mw.h) whose search is
 * freshet's ($wgSearchType = 'freshet', the Freshet extension asking the
 * real freshet-searchd over shards the real reindex-page built), with
 * $wgDisableSearchUpdate = true so that MediaWiki's own index stays empty
 * and every hit the page shows can only come from freshet.  It seeds the
 * wiki and runs tests/browser/search.py, which drives Debian's headless
 * Chromium through
 * chromium-driver: it types a prefix into the skin's search box, waits for
 * the type-ahead suggestions, submits, and reads Special:Search's result
 * list, saving a screenshot of each step.  The driver writes a JSON report
 * of what the page showed; this file is the judge: it asserts the driver's
 * exit status and, from the report, the titles suggested, the titles
 * listed and the words highlighted (span.searchmatch), so the suite fails
 * when the page is wrong, not only when the driver says so.
 *
 * Screenshots and reports go to tests/output/browser/ in the build
 * directory ($FRESHET_BUILDDIR), one pair per test, kept after the run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
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
#include "testsupport.h"

#define WIKI "browserwiki"

struct env {
	char *dir;
	char conf[512];
	int port;               /* freshet-searchd's */
	pid_t daemon;
	struct test_redis *redis;
	struct mw *mw;
};

static struct env E;

/* The pages every test searches, in the languages the test wiki has:
 * several start with "Okapi", none is titled "Okapi" or "Elan" itself (so
 * that submitting a prefix lists results instead of going to a page).
 * "Élan vital" is what only freshet suggests for "elan": MediaWiki's own
 * completion matches the title's first letter as typed. */
static const char *const seed_titles[] = {
	"Élan vital",
	"Okapi facts",
	"Okapi habitat",
	"Giraffe",
	"Okapi (Deutsch)",
	"Okapi (français)",
	"Окапи",
};
static const char *const seed_texts[] = {
	"Bergson wrote of the élan vital, the vital impetus of living things.",
	"The okapi is a forest giraffe of the Congo with striped legs.",
	"The okapi lives in the Ituri rainforest and eats leaves.",
	"The giraffe is the tallest land animal and a relative of the okapi.",
	"Das Okapi ist eine Waldgiraffe aus dem Kongo.",
	"L'okapi est une girafe de forêt du Congo.",
	"Окапи живёт в лесах Конго.",
};
#define NSEED (sizeof seed_titles / sizeof seed_titles[0])

/* Runs a built program with --config E.conf and args (at most 12);
 * returns its exit status (-1 if killed).  Its output goes to
 * E.dir/<prog>.log. */
static int run(const char *prog, const char *const *args)
{
	char log[600];
	snprintf(log, sizeof log, "%s/%s.log", E.dir, prog);
	const char *argv[16] = { "--config", E.conf };
	for (size_t i = 0, n = 2; args[i] && n < 15; i++)
		argv[n++] = args[i];
	pid_t pid = test_spawn(prog, argv, log);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A wiki searched by freshet: Redis, MediaWiki with the extension and the
 * search settings, the seeded pages indexed by reindex-page, and
 * freshet-searchd answering. */
static void setup(void)
{
	memset(&E, 0, sizeof E);
	E.dir = test_mkdtemp("browser");
	snprintf(E.conf, sizeof E.conf, "%s/freshet.conf", E.dir);
	E.port = test_free_port();
	E.redis = test_redis_start();
	char settings[1024];
	snprintf(settings, sizeof settings,
		 "$wgSearchType = 'freshet';\n"
		 "$wgSearchTypeAlternatives = [ 'SearchSqlite' ];\n"
		 "$wgDisableSearchUpdate = true;\n"
		 "$wgFreshetSearchUrl = 'http://127.0.0.1:%d';\n", E.port);
	struct mw_opts o = { .wiki_id = WIKI, .lang = "en", .freshet = true,
			     .redis_socket = E.redis->socket, .partitions = 2,
			     .settings = settings };
	E.mw = mw_start(&o);
	mw_seed(E.mw, NSEED, seed_titles, seed_texts, NULL, NULL);

	FILE *f = fopen(E.conf, "w");
	cr_assert_not_null(f);
	fprintf(f,
		"[redis]\nurl = unix://%s\n\n"
		"[worker]\ndata_dir = %s/data\n\n"
		"[searchd]\nlisten = 127.0.0.1:%d\nthreads = 2\n\n"
		"[wiki " WIKI "]\napi = %s\nlanguage = en\nshards = 2\nrate = 0\n",
		E.redis->socket, E.dir, E.port, mw_api_url(E.mw));
	fclose(f);
	const char *all[] = { "--wiki", WIKI, "--all", "--quiet", NULL };
	cr_assert_eq(run("reindex-page", all), 0, "reindex-page --all failed; log in %s",
		     E.dir);

	char log[600];
	snprintf(log, sizeof log, "%s/freshet-searchd.log", E.dir);
	const char *args[] = { "--config", E.conf, NULL };
	E.daemon = test_spawn("freshet-searchd", args, log);
	char health[64];
	snprintf(health, sizeof health, "http://127.0.0.1:%d/healthz", E.port);
	test_wait_http(health, E.daemon, log);
}

static void teardown(void)
{
	test_stop_pid(&E.daemon);
	mw_stop(E.mw);
	test_redis_stop(E.redis);
	if (!getenv("FRESHET_TEST_KEEP"))
		test_rmtree(E.dir);
	free(E.dir);
}

/* One timeout for the whole suite (Criterion wants one per suite);
 * a browser run under a loaded machine takes a while. */
TestSuite(browser, .init = setup, .fini = teardown, .timeout = 300);

/* tests/output/browser in the build directory, created if needed.
 * Caller frees. */
static char *output_dir(void)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	char *d;
	cr_assert(asprintf(&d, "%s/tests/output", b && *b ? b : ".") > 0);
	mkdir(d, 0755);
	free(d);
	cr_assert(asprintf(&d, "%s/tests/output/browser", b && *b ? b : ".") > 0);
	cr_assert(mkdir(d, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", d,
		  strerror(errno));
	return d;
}

/* What one run of the driver gave. */
struct run {
	int status;       /* the driver's exit status; -1 if it was killed */
	json_t *report;   /* its JSON report (owned) */
	char *log;        /* its stderr and stdout (owned) */
};

static void run_free(struct run *r)
{
	json_decref(r->report);
	free(r->log);
}

/* Runs tests/browser/search.py against the wiki with the arguments given
 * (NULL-terminated), naming its screenshots and report after name. */
static struct run drive(const char *name, ...)
{
	char *script = test_srcpath("tests/browser/search.py");
	char *out = output_dir();
	char *report, *logpath, *url;
	cr_assert(asprintf(&report, "%s/%s.json", out, name) > 0);
	cr_assert(asprintf(&logpath, "%s/%s.log", out, name) > 0);
	cr_assert(asprintf(&url, "http://127.0.0.1:%d/index.php/Main_Page", mw_port(E.mw)) > 0);
	unlink(report);

	const char *argv[48];
	size_t n = 0;
	/* Debian's Python, which has python3-selenium (not a python3 that
	 * may come first in PATH). */
	argv[n++] = "/usr/bin/python3";
	argv[n++] = script;
	argv[n++] = "--url";
	argv[n++] = url;
	argv[n++] = "--out";
	argv[n++] = out;
	argv[n++] = "--name";
	argv[n++] = name;
	argv[n++] = "--report";
	argv[n++] = report;
	va_list ap;
	va_start(ap, name);
	const char *a;
	while ((a = va_arg(ap, const char *)) && n < 46)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;

	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);

	struct run r = { .status = WIFEXITED(st) ? WEXITSTATUS(st) : -1 };
	r.log = test_read_file(logpath, NULL);
	if (!r.log)
		r.log = strdup("");
	json_error_t err;
	r.report = json_load_file(report, 0, &err);
	cr_assert_not_null(r.report, "no report from the driver (exit %d): %s\n%s",
			   r.status, err.text, r.log);
	free(script);
	free(out);
	free(report);
	free(logpath);
	free(url);
	return r;
}

static bool has_string(json_t *arr, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x)
		if (json_is_string(x) && strcmp(json_string_value(x), s) == 0)
			return true;
	return false;
}

/* The result titled title in the report, or NULL. */
static json_t *result(json_t *report, const char *title)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(report, "results"), i, x)
		if (strcmp(json_string_value(json_object_get(x, "title")), title) == 0)
			return x;
	return NULL;
}

/* True if the result shows word (any case) inside span.searchmatch. */
static bool highlighted(json_t *res, const char *word)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(res, "searchmatch"), i, x)
		if (strcasecmp(json_string_value(x), word) == 0)
			return true;
	return false;
}

/* Asserts that both screenshots of a run are PNG images of some size. */
static void assert_screenshots(json_t *report)
{
	json_t *shots = json_object_get(report, "screenshots");
	cr_assert_eq(json_array_size(shots), 2, "screenshots: %s",
		     json_dumps(shots, 0));
	size_t i;
	json_t *x;
	json_array_foreach(shots, i, x) {
		size_t len = 0;
		char *png = test_read_file(json_string_value(x), &len);
		cr_assert_not_null(png, "no screenshot %s", json_string_value(x));
		cr_assert(len > 4096 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0,
			  "%s is not a PNG screenshot (%zu bytes)", json_string_value(x), len);
		free(png);
	}
}

/* The reader types "elan": the skin's type-ahead suggests "Élan vital",
 * which only freshet's completion finds (accents and case folded), and
 * Enter lists the page on Special:Search, which only freshet can do here. */
Test(browser, freshet_suggests_and_lists)
{
	struct run r = drive("freshet-elan", "--prefix", "elan",
			     "--expect-suggestion", "Élan vital",
			     "--expect-result", "Élan vital", NULL);
	char *rep = json_dumps(r.report, JSON_INDENT(1));
	cr_assert_eq(r.status, 0, "driver exit %d; report:\n%s\n%s", r.status, rep, r.log);
	cr_assert(json_is_true(json_object_get(r.report, "ok")), "%s", rep);
	cr_assert(strstr(json_string_value(json_object_get(r.report, "skin")), "skin-vector"),
		  "not the Vector skin: %s", rep);
	json_t *sugg = json_object_get(r.report, "suggestions");
	cr_assert(has_string(sugg, "Élan vital"), "suggestions: %s", rep);
	cr_assert(!has_string(sugg, "Okapi facts"), "a title without the prefix suggested: %s",
		  rep);
	cr_assert_str_eq(json_string_value(json_object_get(r.report, "results_page")),
			 "Special:Search", "not on Special:Search: %s", rep);
	cr_assert_not_null(result(r.report, "Élan vital"), "Élan vital not listed: %s", rep);
	cr_assert_null(result(r.report, "Okapi facts"), "a page without the word listed: %s",
		       rep);
	assert_screenshots(r.report);

	/* MediaWiki's own index knows nothing: the page came from freshet. */
	json_t *own = mw_api(E.mw, false,
			     "action=query&list=search&srsearch=elan&srbackend=SearchSqlite");
	json_t *own_hits = json_object_get(json_object_get(own, "query"), "search");
	cr_assert(json_is_array(own_hits) && json_array_size(own_hits) == 0,
		  "MediaWiki's own search found it: %s", json_dumps(own, 0));
	json_decref(own);
	free(rep);
	run_free(&r);
}

/* The reader types "okapi": the type-ahead suggests the Okapi pages, and
 * Enter lists them, in every language, with the typed word highlighted
 * (span.searchmatch) in their snippets; a page that has the word only in
 * its text is listed too. */
Test(browser, results_highlight_the_typed_word)
{
	struct run r = drive("freshet-okapi", "--prefix", "okapi",
			     "--expect-suggestion", "Okapi facts",
			     "--expect-suggestion", "Okapi habitat",
			     "--expect-result", "Okapi facts",
			     "--match", "okapi", NULL);
	char *rep = json_dumps(r.report, JSON_INDENT(1));
	cr_assert_eq(r.status, 0, "driver exit %d; report:\n%s\n%s", r.status, rep, r.log);
	json_t *sugg = json_object_get(r.report, "suggestions");
	cr_assert(has_string(sugg, "Okapi facts") && has_string(sugg, "Okapi habitat"),
		  "suggestions: %s", rep);
	cr_assert(!has_string(sugg, "Giraffe"), "a title without the prefix suggested: %s",
		  rep);
	const char *listed[] = { "Okapi facts", "Okapi habitat", "Giraffe",
				 "Okapi (Deutsch)", "Okapi (français)" };
	for (size_t i = 0; i < sizeof listed / sizeof listed[0]; i++) {
		json_t *hit = result(r.report, listed[i]);
		cr_assert_not_null(hit, "%s not listed: %s", listed[i], rep);
		cr_assert(highlighted(hit, "okapi"), "okapi not highlighted in %s: %s",
			  listed[i], rep);
	}
	cr_assert_null(result(r.report, "Élan vital"), "a page without the word listed: %s",
		       rep);
	assert_screenshots(r.report);
	free(rep);
	run_free(&r);
}

/* The judge can say no: a suggestion the wiki cannot make is reported
 * missing, by name, with exit status 1 and screenshots still taken. */
Test(browser, missing_suggestion_fails_the_driver)
{
	struct run r = drive("freshet-missing", "--prefix", "Okapi",
			     "--expect-suggestion", "Okapi nowhere",
			     "--timeout", "10", NULL);
	char *rep = json_dumps(r.report, JSON_INDENT(1));
	cr_assert_eq(r.status, 1, "driver exit %d; report:\n%s\n%s", r.status, rep, r.log);
	cr_assert(json_is_false(json_object_get(r.report, "ok")), "%s", rep);
	json_t *f = json_array_get(json_object_get(r.report, "failures"), 0);
	cr_assert(json_is_string(f) && strstr(json_string_value(f), "Okapi nowhere"),
		  "failure does not name the title: %s", rep);
	/* What it did see is still reported. */
	cr_assert(has_string(json_object_get(r.report, "suggestions"), "Okapi facts"),
		  "%s", rep);
	assert_screenshots(r.report);
	free(rep);
	run_free(&r);
}
