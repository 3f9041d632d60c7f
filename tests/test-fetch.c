/* SPDX-License-Identifier: MIT */
/*
 * test-fetch.c: the fetcher against a hostile local HTTP server
 * (tests/lib/hostile.c): timeouts, status codes, byte caps, redirects,
 * malformed answers, API error objects, and the per-wiki bounds.
 */
#include "config.h"
#include "fetch.h"
#include "hostile.h"
#include "pagelist.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct hostile *srv;

static void setup(void)
{
	cr_assert_eq(fetch_global_init(), STATUS_OK);
	srv = hostile_start();
	cr_assert_not_null(srv, "hostile server did not start");
}

static void teardown(void)
{
	hostile_stop(srv);
	srv = NULL;
}

TestSuite(fetch, .init = setup, .fini = teardown, .timeout = 60);

/* A wiki whose api is the given route of the hostile server. */
static struct fetch_wiki *wiki(const char *route, struct fetch_wiki_config *base)
{
	struct fetch_wiki_config cfg;
	if (base)
		cfg = *base;
	else
		fetch_wiki_config_init(&cfg);
	char *api = hostile_api(srv, route);
	cfg.name = "hostilewiki";
	cfg.api = api;
	cfg.rate = base ? base->rate : 0;
	char *err = NULL;
	struct fetch_wiki *w = fetch_wiki_new(&cfg, &err);
	cr_assert_not_null(w, "%s", err ? err : "");
	free(api);
	return w;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fetches page 42 from route with cfg (NULL: defaults); returns the result. */
static struct fetch_result *get(const char *route, struct fetch_wiki_config *cfg,
				uint64_t expected_rev, struct fetch_wiki **wout)
{
	struct fetch_wiki *w = wiki(route, cfg);
	struct fetch *f = fetch_new();
	struct fetch_result *r = fetch_one(f, w, 42, expected_rev);
	fetch_free(f);
	*wout = w;
	return r;
}

#define EXPECT_CLASS(r, c) \
	cr_expect_eq((r)->cls, (c), "class %s, want %s (%s)", \
		     fetch_class_str((r)->cls), fetch_class_str(c), \
		     (r)->error ? (r)->error : "no message")

static void expect_class(const char *route, enum fetch_class c,
			 const char *msg_part)
{
	struct fetch_wiki *w;
	struct fetch_result *r = get(route, NULL, 0, &w);
	EXPECT_CLASS(r, c);
	if (msg_part) {
		cr_assert_not_null(r->error, "%s: no message", route);
		cr_expect(strstr(r->error, msg_part) != NULL,
			  "%s: message \"%s\" lacks \"%s\"", route, r->error,
			  msg_part);
	}
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, ok_page_has_revid_fields_language_and_namespace)
{
	struct fetch_wiki *w;
	struct fetch_result *r = get("ok", NULL, 10, &w);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect_null(r->error);
	cr_expect_eq(r->page_id, 42);
	cr_expect_eq(r->rev_id, 10);
	cr_expect_eq(r->latest_rev, 10);
	cr_expect_eq(r->ns, 0);
	cr_expect_str_eq(r->language, "de");
	cr_expect_str_eq(r->title, "Hostile");
	cr_expect_str_eq(r->display_title_html, "<i>Hostile</i>");
	cr_assert_not_null(r->html);
	cr_expect(strstr(r->html, "<h2>Part</h2>") != NULL);
	cr_expect_eq(r->html_len, strlen(r->html));
	cr_assert_eq(r->n_categories, 1);
	cr_expect_str_eq(r->categories[0].name, "Some cat");
	cr_assert_eq(r->n_links, 1);
	cr_expect_str_eq(r->links[0].title, "Other page");
	cr_expect(r->links[0].exists);
	cr_expect_eq(r->n_templates, 0);
	cr_expect_eq(r->http_status, 200);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, older_revision_than_the_event_is_lagging)
{
	struct fetch_wiki *w;
	struct fetch_result *r = get("lag", NULL, 7, &w);
	EXPECT_CLASS(r, FETCH_LAGGING);
	cr_expect_eq(r->rev_id, 5);
	cr_expect_eq(r->retry_after_ms, 2000);
	cr_expect(strstr(r->error, "older") != NULL, "%s", r->error);
	fetch_result_free(r);
	fetch_wiki_free(w);

	/* Same or newer than the event: ok. */
	r = get("lag", NULL, 5, &w);
	EXPECT_CLASS(r, FETCH_OK);
	fetch_result_free(r);
	fetch_wiki_free(w);
	r = get("ok", NULL, 11, &w);
	EXPECT_CLASS(r, FETCH_LAGGING);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, slow_body_times_out)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.timeout_ms = 1500;
	struct fetch_wiki *w;
	double t0 = now();
	struct fetch_result *r = get("slow", &cfg, 0, &w);
	double dt = now() - t0;
	EXPECT_CLASS(r, FETCH_TRANSIENT);
	cr_expect(strstr(r->error, "timeout") != NULL, "%s", r->error);
	cr_expect_lt(dt, 5.0, "took %.1f s", dt);
	cr_expect_geq(dt, 1.4, "took %.1f s", dt);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, slow_body_hits_the_low_speed_limit)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.low_speed_bytes = 1000; /* the server sends 50 B/s */
	cfg.low_speed_time_s = 1;
	struct fetch_wiki *w;
	double t0 = now();
	struct fetch_result *r = get("slow", &cfg, 0, &w);
	double dt = now() - t0;
	EXPECT_CLASS(r, FETCH_TRANSIENT);
	cr_expect_lt(dt, 5.0, "took %.1f s", dt);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

/* A fetch handle keeps finished easy handles for its next requests: one
 * set up for another wiki must not carry that wiki's limits over. */
Test(fetch, reused_handles_take_each_wikis_own_limits)
{
	struct fetch_wiki_config slow;
	fetch_wiki_config_init(&slow);
	slow.timeout_ms = 1500;
	struct fetch_wiki *lax = wiki("ok", NULL), *strict = wiki("slow", &slow);
	struct fetch *f = fetch_new();
	for (int round = 0; round < 2; round++) {
		struct fetch_result *r = fetch_one(f, lax, 42, 0);
		EXPECT_CLASS(r, FETCH_OK);
		fetch_result_free(r);
		/* The handle the "ok" wiki used (30 s timeout) serves this one. */
		double t0 = now();
		r = fetch_one(f, strict, 42, 0);
		double dt = now() - t0;
		EXPECT_CLASS(r, FETCH_TRANSIENT);
		cr_expect_lt(dt, 5.0, "round %d took %.1f s", round, dt);
		fetch_result_free(r);
	}
	fetch_free(f);
	fetch_wiki_free(lax);
	fetch_wiki_free(strict);
}

Test(fetch, stalled_connection_times_out)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.timeout_ms = 1000;
	struct fetch_wiki *w;
	double t0 = now();
	struct fetch_result *r = get("stall", &cfg, 0, &w);
	double dt = now() - t0;
	EXPECT_CLASS(r, FETCH_TRANSIENT);
	cr_expect(strstr(r->error, "timeout") != NULL, "%s", r->error);
	cr_expect_lt(dt, 4.0, "took %.1f s", dt);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, server_errors_are_transient_with_retry_after)
{
	struct { const char *route; long status, delay_ms; } cases[] = {
		{ "500", 500, 1000 }, /* no Retry-After: the default */
		{ "503", 503, 5000 },
		{ "429", 429, 7000 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fetch_wiki *w;
		struct fetch_result *r = get(cases[i].route, NULL, 0, &w);
		EXPECT_CLASS(r, FETCH_TRANSIENT);
		cr_expect_eq(r->http_status, cases[i].status);
		cr_expect_eq(r->retry_after_ms, cases[i].delay_ms, "%s: %ld",
			     cases[i].route, r->retry_after_ms);
		fetch_result_free(r);
		fetch_wiki_free(w);
	}
}

/* Resident set size of this process in bytes. */
static long rss_bytes(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	cr_assert_not_null(f);
	cr_assert_eq(fscanf(f, "%ld %ld", &size, &resident), 2);
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static void expect_capped(const char *route)
{
	long before = rss_bytes();
	struct fetch_wiki *w;
	struct fetch_result *r = get(route, NULL, 0, &w);
	long grown = rss_bytes() - before;
	EXPECT_CLASS(r, FETCH_PERMANENT);
	cr_expect(strstr(r->error, "exceeds 8388608 bytes") != NULL, "%s",
		  r->error);
	/* Under ASan freed blocks sit in quarantine and have shadow memory,
	 * which is still far below the 50 MiB / 1 GiB the server sent. */
	cr_expect_lt(grown, 64L << 20, "%s: RSS grew by %ld MiB", route,
		     grown >> 20);
	fetch_result_free(r);
	fetch_wiki_free(w);
}

Test(fetch, chunked_50mib_body_is_cut_at_the_cap)
{
	expect_capped("chunked");
}

Test(fetch, gzip_bomb_is_cut_at_the_cap_after_decoding)
{
	expect_capped("gzipbomb");
}

Test(fetch, redirects_are_limited)
{
	expect_class("redir-file", FETCH_PERMANENT, "not http or https");
	expect_class("redir-host", FETCH_PERMANENT, "another host");
	expect_class("redir-loop", FETCH_PERMANENT, "more than 3 redirects");
	expect_class("redir-ok", FETCH_OK, NULL);
}

Test(fetch, redirects_keep_the_scheme_host_and_port_of_the_api)
{
	/* A second server that would answer well: only the rule refuses it. */
	struct hostile *other = hostile_start();
	cr_assert_not_null(other);
	char route[64];
	snprintf(route, sizeof route, "redir-port-%d", hostile_port(other));
	expect_class(route, FETCH_PERMANENT, "another port");
	expect_class("redir-scheme", FETCH_PERMANENT, "another scheme");
	cr_expect_eq(hostile_requests(other), 0);
	hostile_stop(other);
}

Test(fetch, redirect_rule_compares_scheme_host_and_port)
{
	const char *api = "http://Wiki.Example:80/w/api.php";
	cr_expect_null(fetch_redirect_refusal(api, "http://wiki.example/w/api.php?x=1"));
	cr_expect_null(fetch_redirect_refusal(api, "HTTP://WIKI.EXAMPLE:80/other"));
	cr_expect_str_eq(fetch_redirect_refusal(api, "https://wiki.example/w/api.php"),
			 "another scheme");
	cr_expect_str_eq(fetch_redirect_refusal(api, "http://wiki.example:8080/w/api.php"),
			 "another port");
	cr_expect_str_eq(fetch_redirect_refusal(api, "http://other.example/w/api.php"),
			 "another host");
	cr_expect_str_eq(fetch_redirect_refusal(api, "file:///etc/passwd"),
			 "not http or https");
	cr_expect_str_eq(fetch_redirect_refusal("https://w.example/api.php",
						"http://w.example:443/api.php"),
			 "another scheme");
}

/* Lists page 7 through pagelist at route; returns its status and sets
 * *msg to its message (caller frees). */
static enum status list_one(const char *route, char **msg, struct pagelist_entries *out)
{
	char *api = hostile_api(srv, route);
	struct pagelist *pl = pagelist_new(api, NULL);
	const int64_t ids[] = { 7 };
	enum status st = pagelist_by_ids(pl, ids, 1, out);
	*msg = strdup(pagelist_errmsg(pl));
	pagelist_free(pl);
	free(api);
	return st;
}

Test(fetch, listings_follow_the_same_redirect_rule)
{
	struct hostile *other = hostile_start();
	cr_assert_not_null(other);
	struct pagelist_entries e = { 0 };
	char *msg;
	char route[64];
	snprintf(route, sizeof route, "redir-port-%d", hostile_port(other));
	cr_expect_eq(list_one(route, &msg, &e), STATUS_PERMANENT, "%s", msg);
	cr_expect(strstr(msg, "refused redirect to http://127.0.0.1:") &&
		  strstr(msg, ": another port"), "%s", msg);
	free(msg);
	cr_expect_eq(hostile_requests(other), 0);
	cr_expect_eq(list_one("redir-scheme", &msg, &e), STATUS_PERMANENT, "%s", msg);
	cr_expect(strstr(msg, "refused redirect to https://127.0.0.1:") &&
		  strstr(msg, ": another scheme"), "%s", msg);
	free(msg);
	cr_expect_eq(list_one("redir-host", &msg, &e), STATUS_PERMANENT, "%s", msg);
	cr_expect(strstr(msg, ": another host"), "%s", msg);
	free(msg);
	cr_expect_eq(list_one("redir-loop", &msg, &e), STATUS_PERMANENT, "%s", msg);
	cr_expect(strstr(msg, "more than 3 redirects"), "%s", msg);
	free(msg);
	cr_expect_eq(e.n, 0);
	/* A redirect on the API's own origin is followed. */
	cr_expect_eq(list_one("redir-ok", &msg, &e), STATUS_OK, "%s", msg);
	free(msg);
	cr_assert_eq(e.n, 1);
	cr_expect_eq(e.v[0].page_id, 7);
	cr_expect_str_eq(e.v[0].title, "Hostile");
	pagelist_entries_free(&e);
	hostile_stop(other);
}

Test(fetch, bad_bodies_are_permanent_with_a_clear_message)
{
	expect_class("html", FETCH_PERMANENT, "response is HTML, not JSON");
	expect_class("truncated", FETCH_PERMANENT, "not a JSON object");
	expect_class("noparse", FETCH_PERMANENT, "no \"parse\" object");
	expect_class("nosuchroute", FETCH_PERMANENT, "HTTP 404");
}

Test(fetch, api_error_objects_are_classified)
{
	expect_class("err-nosuchpageid", FETCH_MISSING, "API error nosuchpageid");
	expect_class("err-missingtitle", FETCH_MISSING, "missingtitle");
	expect_class("err-permissiondenied", FETCH_HIDDEN, "permissiondenied");
	expect_class("err-maxlag", FETCH_TRANSIENT, "maxlag");
	expect_class("err-badvalue", FETCH_PERMANENT,
		     "API error badvalue: Something about badvalue.");
	expect_class("infomissing", FETCH_MISSING, "missing");
}

Test(fetch, error_header_classifies_without_a_usable_body)
{
	/* MediaWiki-API-Error: maxlag over an HTML body (as an exception
	 * page may be): the header's code decides. */
	expect_class("hdr-maxlag", FETCH_TRANSIENT, "API error maxlag");
	expect_class("hdr-nosuchpageid", FETCH_MISSING,
		     "API error nosuchpageid");
	expect_class("hdr-badvalue", FETCH_PERMANENT, "API error badvalue");
}

Test(fetch, error_object_without_the_header_is_still_classified)
{
	expect_class("noh-nosuchpageid", FETCH_MISSING, "API error nosuchpageid");
	expect_class("noh-permissiondenied", FETCH_HIDDEN, "permissiondenied");
	expect_class("noh-badvalue", FETCH_PERMANENT,
		     "API error badvalue: Something about badvalue.");
}

/* Decodes r on another thread. */
static void *decode_main(void *arg)
{
	fetch_result_decode(arg);
	return NULL;
}

Test(fetch, parse_answer_is_decoded_by_the_consumer_on_any_thread)
{
	struct fetch_wiki *w = wiki("lag", NULL);
	struct fetch *f = fetch_new();
	uint64_t want[2] = { 5, 7 }; /* the wiki gives revision 5 */
	for (int i = 0; i < 2; i++)
		cr_assert_eq(fetch_submit(f, w, 42 + (uint64_t)i, want[i], &want[i]),
			     STATUS_OK);
	struct fetch_result *got[2] = { NULL, NULL };
	for (int n = 0, spins = 0; n < 2 && spins < 300; spins++) {
		cr_assert_eq(fetch_run(f, 100), STATUS_OK);
		struct fetch_result *r;
		while ((r = fetch_next(f)))
			got[(uint64_t *)r->userdata - want] = r, n++;
	}
	fetch_free(f); /* results outlive the handle */
	for (int i = 0; i < 2; i++) {
		struct fetch_result *r = got[i];
		cr_assert_not_null(r);
		/* Out of fetch_next(): provisionally ok, info query done,
		 * JSON still raw. */
		EXPECT_CLASS(r, FETCH_OK);
		cr_expect(fetch_result_undecoded(r));
		cr_expect_null(r->html);
		cr_expect_eq(r->rev_id, 0);
		cr_expect_eq(r->ns, 0);
		cr_expect_str_eq(r->language, "de");
		cr_expect_gt(r->raw_len, 0);
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, decode_main, r), 0);
		pthread_join(t, NULL);
		cr_expect_not(fetch_result_undecoded(r));
		cr_expect_eq(r->rev_id, 5);
	}
	EXPECT_CLASS(got[0], FETCH_OK);
	cr_assert_not_null(got[0]->html);
	cr_expect(strstr(got[0]->html, "<h2>Part</h2>") != NULL);
	cr_expect_str_eq(got[0]->title, "Hostile");
	cr_expect_eq(got[0]->latest_rev, 10);
	/* Older than the event's revision: lagging only once decoded. */
	EXPECT_CLASS(got[1], FETCH_LAGGING);
	cr_expect_eq(got[1]->retry_after_ms, 2000);
	cr_expect_eq(got[1]->latest_rev, 0);
	cr_expect_null(got[1]->html);
	/* Idempotent. */
	fetch_result_decode(got[0]);
	fetch_result_decode(got[1]);
	EXPECT_CLASS(got[0], FETCH_OK);
	EXPECT_CLASS(got[1], FETCH_LAGGING);
	cr_expect(strstr(got[0]->html, "<h2>Part</h2>") != NULL);
	for (int i = 0; i < 2; i++)
		fetch_result_free(got[i]);
	/* A result freed undecoded leaks nothing (ASan checks). */
	f = fetch_new();
	struct fetch_result *r = NULL;
	cr_assert_eq(fetch_submit(f, w, 42, 0, NULL), STATUS_OK);
	for (int spins = 0; !r && spins < 300; spins++) {
		cr_assert_eq(fetch_run(f, 100), STATUS_OK);
		r = fetch_next(f);
	}
	cr_assert_not_null(r);
	cr_expect(fetch_result_undecoded(r));
	fetch_result_free(r);
	fetch_free(f);
	fetch_wiki_free(w);
}

Test(fetch, connection_refused_is_transient)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.name = "closed";
	char api[64];
	snprintf(api, sizeof(api), "http://127.0.0.1:%d/api.php", test_free_port());
	cfg.api = api;
	struct fetch_wiki *w = fetch_wiki_new(&cfg, NULL);
	struct fetch *f = fetch_new();
	struct fetch_result *r = fetch_one(f, w, 1, 0);
	EXPECT_CLASS(r, FETCH_TRANSIENT);
	cr_expect_eq(r->retry_after_ms, 1000);
	fetch_result_free(r);
	fetch_free(f);
	fetch_wiki_free(w);
}

Test(fetch, only_http_apis_with_a_host_are_accepted)
{
	const char *bad[] = {
		"file:///etc/passwd", "ftp://example.org/api.php",
		"http:///api.php", "http://h/api.php?action=x",
		"gopher://h/", "", "/w/api.php",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fetch_wiki_config cfg;
		fetch_wiki_config_init(&cfg);
		cfg.name = "x";
		cfg.api = bad[i];
		char *err = NULL;
		struct fetch_wiki *w = fetch_wiki_new(&cfg, &err);
		cr_expect_null(w, "%s accepted", bad[i]);
		cr_expect_not_null(err);
		cr_expect(err && strstr(err, "api") != NULL, "%s", err);
		free(err);
		fetch_wiki_free(w);
	}
	struct fetch *f = fetch_new();
	struct fetch_wiki *w = wiki("ok", NULL);
	cr_expect_eq(fetch_submit(f, w, 0, 0, NULL), STATUS_INVALID);
	fetch_free(f);
	fetch_wiki_free(w);
}

Test(fetch, user_agent_names_freshet_and_the_contact)
{
	char *ua = fetch_user_agent("ops@example.org");
	cr_expect_str_eq(ua, "freshet/" PACKAGE_VERSION " (ops@example.org)");
	free(ua);
}

/* Runs n fetches of route; returns the most seen in flight at once. */
static size_t run_many(struct fetch_wiki *w, int n, double *secs, int *oks)
{
	struct fetch *f = fetch_new();
	for (int i = 0; i < n; i++)
		cr_assert_eq(fetch_submit(f, w, (uint64_t)i + 1, 0, NULL), STATUS_OK);
	size_t most = 0;
	*oks = 0;
	double t0 = now();
	int got = 0;
	while (got < n) {
		cr_assert_eq(fetch_run(f, 100), STATUS_OK);
		if (fetch_in_flight(f) > most)
			most = fetch_in_flight(f);
		struct fetch_result *r;
		while ((r = fetch_next(f))) {
			fetch_result_decode(r);
			if (r->cls == FETCH_OK)
				(*oks)++;
			got++;
			fetch_result_free(r);
		}
		cr_assert_lt(now() - t0, 30.0, "stuck at %d of %d", got, n);
	}
	*secs = now() - t0;
	cr_expect_eq(fetch_pending(f), 0);
	fetch_free(f);
	return most;
}

Test(fetch, concurrency_is_bounded_and_info_queries_are_batched)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.concurrency = 4;
	cfg.rate = 0;
	struct fetch_wiki *w = wiki("ok", &cfg);
	long before = hostile_requests(srv);
	double secs;
	int oks;
	size_t most = run_many(w, 200, &secs, &oks);
	long requests = hostile_requests(srv) - before;
	cr_expect_eq(oks, 200);
	cr_expect_leq(most, 4, "%zu in flight", most);
	cr_expect_geq(most, 2, "%zu in flight", most);
	/* 200 parses plus fewer than 200 info queries: unbatched would be
	 * 400 requests.  (An unbounded wiki gathers for 5 ms only, so the
	 * batch size depends on the machine's speed.) */
	cr_expect_lt(requests, 200 + 100, "%ld requests", requests);
	fetch_wiki_free(w);
}

Test(fetch, rate_is_bounded)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.concurrency = 16;
	cfg.rate = 20; /* a burst of 20, then 20 per second */
	struct fetch_wiki *w = wiki("ok", &cfg);
	long before = hostile_requests(srv);
	double secs;
	int oks;
	run_many(w, 30, &secs, &oks);
	long requests = hostile_requests(srv) - before;
	cr_expect_eq(oks, 30);
	/* On a rate-bounded wiki info queries gather longer: few of them. */
	cr_expect_leq(requests, 30 + 6, "%ld requests", requests);
	/* At least (requests - 20) / 20 seconds. */
	double floor_s = (double)(requests - 20) / 20.0 - 0.05;
	cr_expect_geq(secs, floor_s, "%ld requests in %.2f s", requests, secs);
	fetch_wiki_free(w);
}

Test(fetch, free_with_requests_in_flight_leaks_nothing)
{
	struct fetch_wiki *w = wiki("stall", NULL);
	struct fetch *f = fetch_new();
	for (int i = 0; i < 5; i++)
		fetch_submit(f, w, (uint64_t)i + 1, 0, NULL);
	for (int i = 0; i < 3; i++)
		fetch_run(f, 50);
	cr_expect_eq(fetch_pending(f), 5);
	cr_expect_gt(fetch_in_flight(f), 0);
	fetch_free(f);
	fetch_wiki_free(w);
}
