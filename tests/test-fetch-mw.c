/* SPDX-License-Identifier: MIT */
/*
 * test-fetch-mw.c: the fetcher and the extractor against a real MediaWiki
 * (Debian's package, started privately by tests/lib/mw.h).
 */
#include "extract.h"
#include "fetch.h"
#include "mw.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct mw *mw;
static struct fetch_wiki *wiki;
static struct fetch *fetch;

static void start(void)
{
	cr_assert_eq(fetch_global_init(), STATUS_OK);
	mw = mw_start(NULL);
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.name = mw_wiki_id(mw);
	cfg.api = mw_api_url(mw);
	cfg.user_agent_contact = "freshet tests";
	char *err = NULL;
	wiki = fetch_wiki_new(&cfg, &err);
	cr_assert_not_null(wiki, "%s", err);
	fetch = fetch_new();
}

static void stop(void)
{
	fetch_free(fetch);
	fetch_wiki_free(wiki);
	mw_stop(mw);
}

TestSuite(fetch_mw, .init = start, .fini = stop, .timeout = 120);

#define EXPECT_CLASS(r, c) \
	cr_expect_eq((r)->cls, (c), "class %s, want %s (%s)", \
		     fetch_class_str((r)->cls), fetch_class_str(c), \
		     (r)->error ? (r)->error : "no message")

static const char *rich_text =
	"{{Note}}Intro paragraph with a [[Linked page]] and a "
	"reference.<sup class=\"reference\">[1]</sup>\n"
	"\n"
	"{| class=\"wikitable\"\n"
	"! Head !! Value\n"
	"|-\n"
	"| Cell one || Cell two\n"
	"|}\n"
	"\n"
	/* Uploads are off: MediaWiki renders the frame, a link named after
	 * the missing file (body text, as in CirrusSearch) and the caption. */
	"[[File:Missing picture.jpg|thumb|A caption for the picture]]\n"
	"\n"
	"== First section ==\n"
	"Section text with [[Other page|a label]].<script>x</script>\n" /* escaped */
	"\n"
	"=== Sub ''section'' ===\n"
	"More text &amp; an&nbsp;entity.\n"
	"<div class=\"navigation-not-searchable\">Navigation noise</div>\n"
	"\n"
	"== See also ==\n"
	"* [[Third page]]\n"
	"\n"
	"[[Category:Test pages]]\n"
	"[[Category:Freshet fields]]\n";

static void list_eq(const struct extract_list *l, size_t n, const char *const *want,
		    const char *what)
{
	cr_expect_eq(l->n, n, "%s: %zu entries, want %zu", what, l->n, n);
	for (size_t i = 0; i < n && i < l->n; i++)
		cr_expect_str_eq(l->v[i], want[i], "%s[%zu]: %s", what, i, l->v[i]);
}

Test(fetch_mw, rich_page_yields_exactly_the_expected_fields)
{
	mw_edit(mw, "Template:Note",
		"<div class=\"hatnote\">For other uses, see elsewhere.</div>",
		NULL, NULL);
	mw_edit(mw, "Category:Test pages", "__HIDDENCAT__", NULL, NULL);
	long page_id, rev_id;
	mw_edit(mw, "Rich page", rich_text, &page_id, &rev_id);

	struct fetch_result *r = fetch_one(fetch, wiki, (uint64_t)page_id,
					   (uint64_t)rev_id);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect_eq(r->rev_id, (uint64_t)rev_id);
	cr_expect_eq(r->latest_rev, (uint64_t)rev_id);
	cr_expect_eq(r->ns, 0);
	cr_expect_str_eq(r->language, "en");
	cr_expect_str_eq(r->title, "Rich page");
	/* The revision's own time, as MediaWiki records it. */
	char params[128];
	snprintf(params, sizeof params,
		 "action=query&prop=revisions&rvprop=timestamp&revids=%ld", rev_id);
	json_t *a = mw_api(mw, false, params);
	const char *ts = json_string_value(json_object_get(json_array_get(json_object_get(
		json_array_get(json_object_get(json_object_get(a, "query"), "pages"), 0),
		"revisions"), 0), "timestamp"));
	cr_assert_not_null(ts, "no timestamp for rev %ld", rev_id);
	struct tm tm = { 0 };
	cr_assert_not_null(strptime(ts, "%Y-%m-%dT%H:%M:%SZ", &tm));
	cr_expect_eq(fetch_result_rev_timestamp(r), (int64_t)timegm(&tm), "rev time %s", ts);
	json_decref(a);

	struct extract *x = extract_new(NULL);
	struct extract_doc d;
	cr_assert_eq(extract_page(x, r, &d), STATUS_OK);
	cr_expect_str_eq(d.text,
			 "Intro paragraph with a Linked page and a reference. "
			 "File:Missing picture.jpg Section text with a label.<script>x</script> More text "
			 "& an entity. "
			 "Third page");
	cr_expect_str_eq(d.opening_text,
			 "Intro paragraph with a Linked page and a reference. "
			 "File:Missing picture.jpg");
	const char *headings[] = { "First section", "Sub section" };
	list_eq(&d.heading, 2, headings, "heading");
	const char *aux[] = { "For other uses, see elsewhere.",
			      "Head Value Cell one Cell two",
			      "A caption for the picture" };
	list_eq(&d.auxiliary_text, 3, aux, "auxiliary_text");
	cr_expect_str_eq(d.display_title, "Rich page");
	/* MediaWiki's tracking category for the missing file comes first;
	 * hidden categories are indexed too, as CirrusSearch does. */
	const char *cats[] = { "Pages with broken file links", "Test pages",
			       "Freshet fields" };
	list_eq(&d.category, 3, cats, "category");
	cr_assert_eq(r->n_categories, 3);
	cr_expect_not(r->categories[0].hidden);
	cr_expect(r->categories[1].hidden);
	const char *links[] = { "Linked page", "Other page", "Third page" };
	list_eq(&d.outgoing_link, 3, links, "outgoing_link");
	const char *tpls[] = { "Template:Note" };
	list_eq(&d.template_, 1, tpls, "template");
	extract_doc_release(&d);
	extract_free(x);
	fetch_result_free(r);
}

Test(fetch_mw, deleted_page_is_missing)
{
	long page_id;
	mw_edit(mw, "Short lived", "Soon gone.", &page_id, NULL);
	mw_delete(mw, "Short lived");
	struct fetch_result *r = fetch_one(fetch, wiki, (uint64_t)page_id, 0);
	EXPECT_CLASS(r, FETCH_MISSING);
	cr_expect(strstr(r->error, "nosuchpageid") != NULL, "%s", r->error);
	fetch_result_free(r);

	r = fetch_one(fetch, wiki, 987654, 0); /* never existed */
	EXPECT_CLASS(r, FETCH_MISSING);
	fetch_result_free(r);
}

Test(fetch_mw, revision_ids_decide_ok_or_lagging)
{
	long page_id, rev1, rev2;
	mw_edit(mw, "Edited twice", "First version.", &page_id, &rev1);
	mw_edit(mw, "Edited twice", "Second version.", NULL, &rev2);
	cr_assert_gt(rev2, rev1);

	/* An event for the first revision, fetched after the second edit: ok,
	 * and the newer revision is what gets indexed. */
	struct fetch_result *r = fetch_one(fetch, wiki, (uint64_t)page_id,
					   (uint64_t)rev1);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect_eq(r->rev_id, (uint64_t)rev2);
	cr_expect(strstr(r->html, "Second version.") != NULL);
	fetch_result_free(r);

	/* The event's own revision: ok. */
	r = fetch_one(fetch, wiki, (uint64_t)page_id, (uint64_t)rev2);
	EXPECT_CLASS(r, FETCH_OK);
	fetch_result_free(r);

	/* An event newer than what the API serves (a lagging replica). */
	r = fetch_one(fetch, wiki, (uint64_t)page_id, (uint64_t)rev2 + 5);
	EXPECT_CLASS(r, FETCH_LAGGING);
	cr_expect_eq(r->rev_id, (uint64_t)rev2);
	cr_expect_gt(r->retry_after_ms, 0);
	fetch_result_free(r);
}

Test(fetch_mw, namespace_and_page_language_come_back)
{
	long talk_id, de_id, en_id;
	mw_edit(mw, "Talk:Discussion", "Let us talk.", &talk_id, NULL);
	mw_edit(mw, "Deutsche Seite", "Ein Text auf Deutsch.", &de_id, NULL);
	mw_set_language(mw, "Deutsche Seite", "de");
	mw_edit(mw, "English page", "Some text.", &en_id, NULL);

	/* Submitted together: one batched info query serves them all. */
	uint64_t ids[3] = { (uint64_t)talk_id, (uint64_t)de_id, (uint64_t)en_id };
	for (int i = 0; i < 3; i++)
		cr_assert_eq(fetch_submit(fetch, wiki, ids[i], 0, &ids[i]),
			     STATUS_OK);
	struct fetch_result *got[3] = { NULL, NULL, NULL };
	int n = 0;
	for (int spins = 0; n < 3 && spins < 600; spins++) {
		cr_assert_eq(fetch_run(fetch, 100), STATUS_OK);
		struct fetch_result *r;
		while ((r = fetch_next(fetch))) {
			fetch_result_decode(r);
			got[(uint64_t *)r->userdata - ids] = r, n++;
		}
	}
	cr_assert_eq(n, 3);
	for (int i = 0; i < 3; i++)
		EXPECT_CLASS(got[i], FETCH_OK);
	cr_expect_eq(got[0]->ns, 1);
	cr_expect_str_eq(got[0]->title, "Talk:Discussion");
	cr_expect_str_eq(got[0]->language, "en");
	cr_expect_eq(got[1]->ns, 0);
	cr_expect_str_eq(got[1]->language, "de");
	cr_expect_eq(got[2]->ns, 0);
	cr_expect_str_eq(got[2]->language, "en");
	for (int i = 0; i < 3; i++)
		fetch_result_free(got[i]);
}

Test(fetch_mw, redirects_and_their_targets)
{
	long target = 0, alias = 0, other = 0, dbl = 0, broken = 0, talk = 0;
	mw_edit(mw, "Redirect target", "The page redirects point at.", &target, NULL);
	mw_edit(mw, "Alias of target", "#REDIRECT [[Redirect target]]", &alias, NULL);
	mw_edit(mw, "Talk:Other alias", "#REDIRECT [[Redirect target]]", &talk, NULL);
	mw_edit(mw, "Double alias", "#REDIRECT [[Alias of target]]", &dbl, NULL);
	mw_edit(mw, "Broken alias", "#REDIRECT [[No such page here]]", &broken, NULL);
	mw_edit(mw, "Plain page", "No redirect points here.", &other, NULL);

	/* The target lists its direct redirects (not the double one), with
	 * their page ids and namespaces; it is no redirect itself. */
	struct fetch_result *r = fetch_one(fetch, wiki, (uint64_t)target, 0);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect_not(r->is_redirect);
	cr_assert_eq(r->n_redirects, 2);
	int seen = 0;
	for (size_t i = 0; i < r->n_redirects; i++) {
		const struct fetch_redirect *rd = &r->redirects[i];
		if (rd->page_id == (uint64_t)alias) {
			cr_expect_str_eq(rd->title, "Alias of target");
			cr_expect_eq(rd->ns, 0);
			seen |= 1;
		} else if (rd->page_id == (uint64_t)talk) {
			cr_expect_str_eq(rd->title, "Talk:Other alias");
			cr_expect_eq(rd->ns, 1);
			seen |= 2;
		}
	}
	cr_expect_eq(seen, 3);
	fetch_result_free(r);

	r = fetch_one(fetch, wiki, (uint64_t)other, 0);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect_eq(r->n_redirects, 0);
	cr_expect_not(r->is_redirect);
	fetch_result_free(r);

	/* A redirect knows its target's page id and namespace. */
	r = fetch_one(fetch, wiki, (uint64_t)alias, 0);
	EXPECT_CLASS(r, FETCH_OK);
	cr_expect(r->is_redirect);
	cr_expect_eq(r->redirect_target, (uint64_t)target);
	cr_expect_eq(r->redirect_target_ns, 0);
	cr_expect_eq(r->n_redirects, 1); /* "Double alias" points at it */
	fetch_result_free(r);

	/* A double redirect and a broken one point at no document. */
	long ids[] = { dbl, broken };
	for (int i = 0; i < 2; i++) {
		r = fetch_one(fetch, wiki, (uint64_t)ids[i], 0);
		EXPECT_CLASS(r, FETCH_OK);
		cr_expect(r->is_redirect, "page %ld", ids[i]);
		cr_expect_eq(r->redirect_target, 0, "page %ld", ids[i]);
		fetch_result_free(r);
	}
}

/* More redirects in one info batch than the API lists in one answer
 * (rdlimit=max is 500 for a normal user): the fetcher continues the
 * query until both pages have every one. */
Test(fetch_mw, redirect_lists_longer_than_one_answer)
{
	enum { PER = 260 };
	long t1 = 0, t2 = 0;
	mw_edit(mw, "Many redirects one", "First target.", &t1, NULL);
	mw_edit(mw, "Many redirects two", "Second target.", &t2, NULL);
	char **titles = calloc(2 * PER, sizeof *titles);
	char **texts = calloc(2 * PER, sizeof *texts);
	for (int i = 0; i < 2 * PER; i++) {
		titles[i] = malloc(64);
		texts[i] = malloc(64);
		snprintf(titles[i], 64, "Alias %d of %s", i % PER, i < PER ? "one" : "two");
		snprintf(texts[i], 64, "#REDIRECT [[Many redirects %s]]",
			 i < PER ? "one" : "two");
	}
	mw_seed(mw, 2 * PER, (const char *const *)titles, (const char *const *)texts,
		NULL, NULL);
	for (int i = 0; i < 2 * PER; i++) {
		free(titles[i]);
		free(texts[i]);
	}
	free(titles);
	free(texts);

	/* Both in one handle, so that one info query asks for both. */
	cr_assert_eq(fetch_submit(fetch, wiki, (uint64_t)t1, 0, NULL), STATUS_OK);
	cr_assert_eq(fetch_submit(fetch, wiki, (uint64_t)t2, 0, NULL), STATUS_OK);
	struct fetch_result *got[2] = { NULL, NULL };
	int n = 0;
	time_t end = time(NULL) + 60;
	while (n < 2 && time(NULL) < end) {
		cr_assert_eq(fetch_run(fetch, 100), STATUS_OK);
		struct fetch_result *r;
		while ((r = fetch_next(fetch)))
			got[n++] = r;
	}
	cr_assert_eq(n, 2);
	for (int i = 0; i < 2; i++) {
		fetch_result_decode(got[i]);
		EXPECT_CLASS(got[i], FETCH_OK);
		cr_expect_eq(got[i]->n_redirects, PER, "page %llu: %zu redirects",
			     (unsigned long long)got[i]->page_id, got[i]->n_redirects);
		const char *which = got[i]->page_id == (uint64_t)t1 ? "one" : "two";
		for (size_t k = 0; k < got[i]->n_redirects; k++)
			cr_expect(strstr(got[i]->redirects[k].title, which), "%s in %s",
				  got[i]->redirects[k].title, which);
		fetch_result_free(got[i]);
	}
}
