/* SPDX-License-Identifier: MIT */
/*
 * test-query.c: the query builder (query.h) against real shards: pages
 * built by document_build() with the real analyzer plugins
 * ($FRESHET_ANALYZER_DIR), written to a two-shard generation in a scratch
 * directory, searched through shard_set_search().  Stemming, stopwords,
 * phrases, exclusions, namespaces, several languages at once (stems of a
 * language on its own pages, exact above stem-only), the term cap,
 * snippets, and the titles of redirects (indexed into their target's
 * document).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "document.h"
#include "fetch.h"
#include "language.h"
#include "loader.h"
#include "query.h"
#include "search.h"
#include "shard.h"
#include "testsupport.h"
#include "xapian-shim.h"

struct page {
	uint64_t id;
	int ns;
	const char *lang;
	const char *title;
	const char *html;
};

static const struct page pages[] = {
	{ 1, 0, "en", "River otters",
	  "<p>The otters were swimming in the river near the old mill.</p>" },
	{ 2, 0, "en", "Mountain goats", "<p>Goats climb the steep mountain &amp; eat grass.</p>" },
	{ 3, 0, "en", "Otter kits",
	  "<p>A young otter swims with its mother in the lake.</p>"
	  "<h2>Food</h2><p>Fish and crabs.</p>" },
	{ 4, 1, "en", "Talk:River otters", "<p>Discussion about otters and rivers.</p>" },
	{ 5, 0, "ru", "Копирование файлов", "<p>Программа копирует каталоги и файлы.</p>" },
	{ 6, 0, "el", "Θάλασσα", "<p>Η θάλασσα είναι γαλάζια.</p>" },
	{ 7, 0, "de", "Alte Bauten",
	  "<p>Die Häuser am Markt sind alt. Manche Gifte wirken langsam.</p>" },
	{ 8, 0, "fr", "Le village", "<p>Nous avons visité l'église du village.</p>" },
	{ 9, 0, "zh", "城市", "<p>我昨天在图书馆看书。</p>" },
	{ 10, 0, "en-gb", "Birthday", "<p>Gifts were wrapped for her birthday party.</p>" },
};
#define N_PAGES (sizeof pages / sizeof pages[0])

/* The redirects that point at page 2, as the info query lists them. */
static struct fetch_redirect goat_redirects[] = {
	{ 102, 0, (char *)"Capra hircus" },
	{ 104, 0, (char *)"École des chèvres" },
};

static char *tmpdir;
static struct loader *ld;
static struct analyzer *en, *ru, *el, *de, *fr, *zh;
static struct shard_set *set;

/* Builds every page with the real analyzers and writes it to its shard of
 * a new generation, which becomes `current`. */
static void write_pages(void)
{
	struct document_builder *b = document_builder_new(ld);
	char *gen = shard_generation_name();
	cr_assert_eq(shard_set_create(set, gen, 2), STATUS_OK, "%s", shard_set_errmsg(set));
	struct shard *sh[2];
	for (unsigned n = 0; n < 2; n++) {
		char *path = shard_set_path(set, gen, n);
		sh[n] = shard_new();
		cr_assert_eq(shard_open(sh[n], path, 0), STATUS_OK, "%s", shard_errmsg(sh[n]));
		free(path);
	}
	for (size_t i = 0; i < N_PAGES; i++) {
		const struct page *p = &pages[i];
		struct fetch_result r = {
			.cls = FETCH_OK, .page_id = p->id, .rev_id = 10 + p->id,
			.title = (char *)p->title, .ns = p->ns,
			.language = (char *)p->lang, .html = (char *)p->html,
			.html_len = strlen(p->html),
		};
		if (p->id == 2) {
			r.redirects = goat_redirects;
			r.n_redirects = 2;
		}
		struct shard_doc *doc = NULL;
		struct document_analysis info;
		cr_assert_eq(document_build(b, &r, "http://wiki.test/w/api.php",
					    1700000000, &doc, &info), STATUS_OK,
			     "%s", document_builder_errmsg(b));
		struct shard *w = sh[shard_route(p->id, 2)];
		cr_assert_eq(shard_check_analyzer(w, info.language, info.name,
						  info.version), STATUS_OK);
		cr_assert_eq(shard_replace(w, doc), STATUS_OK, "%s", shard_errmsg(w));
		shard_doc_free(doc);
	}
	for (unsigned n = 0; n < 2; n++) {
		cr_assert_eq(shard_commit(sh[n], 1), STATUS_OK, "%s", shard_errmsg(sh[n]));
		shard_free(sh[n]);
	}
	cr_assert_eq(shard_set_swap(set, gen), STATUS_OK, "%s", shard_set_errmsg(set));
	free(gen);
	document_builder_free(b);
}

static struct analyzer *open_analyzer(const char *lang)
{
	struct analyzer *an = NULL;
	char *msg = NULL;
	cr_assert_eq(analyzer_open(ld, lang, NULL, &an, &msg), STATUS_OK, "%s", msg);
	return an;
}

static void setup(void)
{
	tmpdir = test_mkdtemp("query");
	ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
	en = open_analyzer("en");
	ru = open_analyzer("ru");
	el = open_analyzer("el");
	de = open_analyzer("de");
	fr = open_analyzer("fr");
	zh = open_analyzer("zh");
	set = shard_set_new(tmpdir, "querywiki");
	write_pages();
	cr_assert_eq(shard_set_open(set), STATUS_OK, "%s", shard_set_errmsg(set));
}

static void teardown(void)
{
	shard_set_free(set);
	analyzer_close(en);
	analyzer_close(ru);
	analyzer_close(el);
	analyzer_close(de);
	analyzer_close(fr);
	analyzer_close(zh);
	loader_free(ld);
	test_rmtree(tmpdir);
	free(tmpdir);
}

TestSuite(query, .init = setup, .fini = teardown);

/* The page ids q finds, ascending, as "1 3" ("" for none, "-" for no
 * query).  Valid until the fourth call after. */
static const char *found(const struct xquery *q)
{
	static char ring[4][128];
	static unsigned next;
	char *out = ring[next++ % 4];
	if (!q)
		return strcpy(out, "-");
	struct xmset *ms = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 100, &ms), STATUS_OK, "%s",
		     shard_set_errmsg(set));
	int seen[N_PAGES + 1] = { 0 };
	for (size_t i = 0; i < xmset_size(ms); i++) {
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(ms, i, &h), STATUS_OK);
		json_t *d = json_loadb(h.data, h.data_len, JSON_DISABLE_EOF_CHECK, NULL);
		cr_assert_not_null(d);
		json_int_t id = json_integer_value(json_object_get(d, "page_id"));
		cr_assert(id >= 1 && id <= (json_int_t)N_PAGES, "page id %lld", (long long)id);
		seen[id]++;
		json_decref(d);
	}
	xmset_free(ms);
	out[0] = '\0';
	for (size_t id = 1; id <= N_PAGES; id++) {
		cr_assert(seen[id] <= 1, "page %zu found twice", id);
		if (seen[id])
			snprintf(out + strlen(out), 128 - strlen(out), "%s%zu",
				 out[0] ? " " : "", id);
	}
	return out;
}

/* Builds text's query with an, which must succeed.  Caller frees. */
static struct xquery *build(struct analyzer *an, const char *text)
{
	struct xquery *q = NULL;
	char *msg = NULL;
	cr_assert_eq(query_build(an, text, strlen(text), 0, &q, &msg), STATUS_OK,
		     "%s: %s", text, msg);
	return q;
}

/* The page ids text finds with an (see found()). */
static const char *search(struct analyzer *an, const char *text)
{
	struct xquery *q = build(an, text);
	const char *r = found(q);
	xquery_free(q);
	return r;
}

Test(query, stemmed_query_finds_inflected_words)
{
	/* swimming and swims both stem to swim; otters and otter to otter. */
	cr_assert_str_eq(search(en, "swimming"), "1 3");
	cr_assert_str_eq(search(en, "swims"), "1 3");
	cr_assert_str_eq(search(en, "otter"), "1 3 4");
	/* Title and headings count: "kits" is only in a title, "food" only in
	 * a heading. */
	cr_assert_str_eq(search(en, "kit"), "3");
	cr_assert_str_eq(search(en, "food"), "3");
	/* Every word must match. */
	cr_assert_str_eq(search(en, "otters mother"), "3");
	cr_assert_str_eq(search(en, "otters goats"), "");
}

Test(query, stopword_does_not_drop_results)
{
	/* "the" is an English stopword: the stemmed view drops it, its plain
	 * form still has to match (page 4 has no "the"). */
	cr_assert_str_eq(search(en, "the"), "1 2 3");
	cr_assert_str_eq(search(en, "the otters"), "1 3");
	cr_assert_str_eq(search(en, "in the lake"), "3");
}

/* A query of stopwords alone has plain forms and no stem at all (an
 * empty list, which the fuzzer caught being offset as a null pointer):
 * it still finds the pages holding the words, in every language. */
Test(query, query_of_stopwords_only_finds_their_pages)
{
	cr_assert_str_eq(search(en, "the in"), "1 3");
	cr_assert_str_eq(search(de, "die am"), "7");
	cr_assert_str_eq(search(fr, "du"), "8");
	cr_assert_str_eq(search(ru, "и"), "5");
}

Test(query, phrases_match_in_order)
{
	cr_assert_str_eq(search(en, "\"old mill\""), "1");
	cr_assert_str_eq(search(en, "\"mill old\""), "");
	/* A phrase matches plain forms only: no stemming inside quotes. */
	cr_assert_str_eq(search(en, "\"otter swimming\""), "");
	cr_assert_str_eq(search(en, "\"young otter\" fish"), "3");
	/* A missing closing quote ends the phrase at the end. */
	cr_assert_str_eq(search(en, "\"old mill"), "1");
}

Test(query, minus_excludes)
{
	cr_assert_str_eq(search(en, "otters -lake"), "1 4");
	cr_assert_str_eq(search(en, "otters -\"old mill\""), "3 4");
	/* The excluded word is analyzed too: -swim excludes "swimming". */
	cr_assert_str_eq(search(en, "otters -swim"), "4");
	/* A '-' inside a word or before a space does not exclude. */
	cr_assert_str_eq(search(en, "otters - lake"), "3");
}

Test(query, no_positive_term_gives_no_query)
{
	cr_assert_str_eq(search(en, "-otters"), "-");
	cr_assert_str_eq(search(en, "!! ..."), "-");
	cr_assert_str_eq(search(en, ""), "-");
	/* len bounds the text: "otters" cut to nothing. */
	struct xquery *q = (struct xquery *)1;
	cr_assert_eq(query_build(en, "otters", 0, 0, &q, NULL), STATUS_OK);
	cr_assert_null(q);
}

Test(query, unknown_flag_is_refused)
{
	struct xquery *q = NULL;
	char *msg = NULL;
	cr_assert_eq(query_build(en, "otters", 6, 0x80, &q, &msg), STATUS_INVALID);
	cr_assert_null(q, "no query on failure");
	cr_assert_not_null(msg);
	cr_assert(strstr(msg, "flag"), "%s", msg);
	free(msg);
	cr_assert_eq(query_build_multi(NULL, 0, "otters", 6, 0, &q, NULL), STATUS_INVALID);
}

Test(query, namespaces_filter_without_weight)
{
	struct xquery *q = build(en, "otters");
	int talk[] = { 1 }, main_ns[] = { 0 }, both[] = { 0, 1 };
	struct xquery *a = build(en, "otters"), *b = build(en, "otters"),
		      *c = build(en, "otters");
	query_filter_namespaces(&a, talk, 1);
	query_filter_namespaces(&b, main_ns, 1);
	query_filter_namespaces(&c, both, 2);
	cr_assert_str_eq(found(a), "4");
	cr_assert_str_eq(found(b), "1 3");
	cr_assert_str_eq(found(c), "1 3 4");

	/* No namespace: the query as it was.  No query: still none. */
	struct xquery *same = q;
	query_filter_namespaces(&q, NULL, 0);
	cr_assert_eq(q, same);
	struct xquery *none = NULL;
	query_filter_namespaces(&none, talk, 1);
	cr_assert_null(none);

	/* The filter adds no weight: the talk page scores as without it. */
	struct xmset *m1 = NULL, *m2 = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 10, &m1), STATUS_OK);
	cr_assert_eq(shard_set_search(set, c, 0, 10, &m2), STATUS_OK);
	cr_assert_eq(xmset_size(m1), xmset_size(m2));
	for (size_t i = 0; i < xmset_size(m1); i++) {
		struct xmset_hit h1, h2;
		cr_assert_eq(xmset_hit(m1, i, &h1), STATUS_OK);
		cr_assert_eq(xmset_hit(m2, i, &h2), STATUS_OK);
		cr_assert_eq(h1.docid, h2.docid);
		cr_assert_float_eq(h1.weight, h2.weight, 1e-9);
	}
	xmset_free(m1);
	xmset_free(m2);
	xquery_free(q);
	xquery_free(a);
	xquery_free(b);
	xquery_free(c);
}

Test(query, title_matches_weigh_more)
{
	/* The same word, once in a title (page 3, "kits") and once in a body
	 * only (page 3, "crabs"): the title match weighs more. */
	double w[2];
	const char *words[] = { "kits", "crabs" };
	for (int i = 0; i < 2; i++) {
		struct xquery *q = build(en, words[i]);
		struct xmset *ms = NULL;
		cr_assert_eq(shard_set_search(set, q, 0, 10, &ms), STATUS_OK);
		cr_assert_eq(xmset_size(ms), 1, "%s", words[i]);
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(ms, 0, &h), STATUS_OK);
		w[i] = h.weight;
		xmset_free(ms);
		xquery_free(q);
	}
	cr_assert_gt(w[0], w[1], "title %f, body %f", w[0], w[1]);
}

Test(query, each_language_of_the_shards)
{
	/* "каталогами" is an inflection of "каталоги" only Russian stemming
	 * sees: the English analysis misses page 5, the Russian one and the
	 * two together find it. */
	cr_assert_str_eq(search(en, "каталогами"), "");
	cr_assert_str_eq(search(ru, "каталогами"), "5");
	struct analyzer *both[] = { en, ru };
	struct xquery *q = NULL;
	const char *text = "каталогами";
	cr_assert_eq(query_build_multi(both, 2, text, strlen(text), 0, &q, NULL),
		     STATUS_OK);
	cr_assert_str_eq(found(q), "5");
	xquery_free(q);

	/* Words of the other languages still match as before. */
	text = "swimming";
	cr_assert_eq(query_build_multi(both, 2, text, strlen(text), 0, &q, NULL),
		     STATUS_OK);
	cr_assert_str_eq(found(q), "1 3");
	xquery_free(q);

	/* An exclusion counts in any language: English alone does not see
	 * that "-каталогами" names page 5, the pair does. */
	text = "файлы -каталогами";
	cr_assert_str_eq(search(en, text), "5");
	cr_assert_eq(query_build_multi(both, 2, text, strlen(text), 0, &q, NULL),
		     STATUS_OK);
	cr_assert_str_eq(found(q), "");
	xquery_free(q);

	/* One analyzer: the same as query_build(). */
	struct xquery *one = NULL;
	text = "otters -lake";
	cr_assert_eq(query_build_multi(&en, 1, text, strlen(text), 0, &one, NULL),
		     STATUS_OK);
	q = build(en, text);
	char *d1 = xquery_describe(one), *d2 = xquery_describe(q);
	cr_assert_str_eq(d1, d2);
	free(d1);
	free(d2);
	xquery_free(one);
	xquery_free(q);
}

/* The page ids text finds analyzed in every language of the shards. */
static const char *search_all(const char *text)
{
	struct analyzer *all[] = { en, ru, el, de, fr, zh };
	struct xquery *q = NULL;
	char *msg = NULL;
	cr_assert_eq(query_build_multi(all, 6, text, strlen(text), 0, &q, &msg), STATUS_OK,
		     "%s: %s", text, msg);
	const char *r = found(q);
	xquery_free(q);
	return r;
}

/* The page ids of text's hits in rank order, as "3 1". */
static char *ranked(struct analyzer *const *an, size_t n, const char *text)
{
	struct xquery *q = NULL;
	char *msg = NULL;
	cr_assert_eq(query_build_multi(an, n, text, strlen(text), 0, &q, &msg), STATUS_OK, "%s: %s",
		     text, msg);
	struct xmset *ms = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 100, &ms), STATUS_OK);
	static char out[128];
	out[0] = '\0';
	for (size_t i = 0; i < xmset_size(ms); i++) {
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(ms, i, &h), STATUS_OK);
		json_t *d = json_loadb(h.data, h.data_len, JSON_DISABLE_EOF_CHECK, NULL);
		snprintf(out + strlen(out), sizeof out - strlen(out), "%s%lld", out[0] ? " " : "",
			 (long long)json_integer_value(json_object_get(d, "page_id")));
		json_decref(d);
	}
	xmset_free(ms);
	xquery_free(q);
	return out;
}

Test(query, stems_match_their_own_language_only)
{
	/* German stems "swims" to swim, as English does; page 3 (en) holds
	 * "swims" itself, page 1 only "swimming".  Analyzed as German, the
	 * stem is looked up on German pages only: page 1 is not found. */
	cr_assert_str_eq(search(en, "swims"), "1 3");
	cr_assert_str_eq(search(de, "swims"), "3");
	/* In every language: the inflected forms of each language's pages. */
	cr_assert_str_eq(search_all("каталогами"), "5");
	cr_assert_str_eq(search_all("Haus"), "7");
	cr_assert_str_eq(search(en, "Haus"), "");
	/* A regional code (en-gb) is searched by its language's stems. */
	cr_assert_str_eq(search(en, "gift"), "10");
}

Test(query, shard_set_lists_its_languages)
{
	/* The analyzers' languages: en-gb's pages were analyzed as en. */
	char **codes = NULL;
	size_t n = 0;
	cr_assert_eq(shard_set_languages(set, &codes, &n), STATUS_OK, "%s", shard_set_errmsg(set));
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	for (size_t i = 0; i < n; i++) {
		buf_addf(&b, "%s%s", i ? " " : "", codes[i]);
		free(codes[i]);
	}
	free(codes);
	cr_assert_str_eq(b.data, "de el en fr ru zh");
	buf_release(&b);
}

Test(query, accents_fold_and_cjk_segments)
{
	/* The stemmed view folds accents (doc/analyzers.md): "eglise" finds
	 * "l'église" through the French analysis. */
	cr_assert_str_eq(search_all("eglise"), "8");
	cr_assert_str_eq(search_all("église"), "8");
	/* A Chinese word inside an unsegmented sentence. */
	cr_assert_str_eq(search_all("图书馆"), "9");
	cr_assert_str_eq(search_all("看书"), "9");
}

Test(query, exact_matches_rank_above_stem_only)
{
	/* Page 3 holds "swims", page 1 "swimming": each query ranks the page
	 * holding its very word first. */
	struct analyzer *one[] = { en };
	cr_assert_str_eq(ranked(one, 1, "swims"), "3 1");
	cr_assert_str_eq(ranked(one, 1, "swimming"), "1 3");
	/* An English word whose German stem is a German word's stem: the
	 * German page (Gifte) matches through German alone and ranks below
	 * the English page holding the word; English alone never finds it. */
	struct analyzer *all[] = { en, ru, el, de, fr, zh };
	cr_assert_str_eq(ranked(all, 6, "gifts"), "10 7");
	cr_assert_str_eq(search(en, "gifts"), "10");
	/* The same word in several languages weighs once: adding languages
	 * does not change an English page's weight for an English word. */
	struct xquery *q1 = NULL, *q2 = NULL;
	cr_assert_eq(query_build_multi(one, 1, "mill", 4, 0, &q1, NULL), STATUS_OK);
	cr_assert_eq(query_build_multi(all, 6, "mill", 4, 0, &q2, NULL), STATUS_OK);
	struct xmset *m1 = NULL, *m2 = NULL;
	cr_assert_eq(shard_set_search(set, q1, 0, 10, &m1), STATUS_OK);
	cr_assert_eq(shard_set_search(set, q2, 0, 10, &m2), STATUS_OK);
	cr_assert_eq(xmset_size(m1), 1);
	cr_assert_eq(xmset_size(m2), 1);
	struct xmset_hit h1, h2;
	cr_assert_eq(xmset_hit(m1, 0, &h1), STATUS_OK);
	cr_assert_eq(xmset_hit(m2, 0, &h2), STATUS_OK);
	cr_assert_float_eq(h1.weight, h2.weight, 1e-9);
	/* One language: its matching terms carry the weights (each posting
	 * list opened once); several: boolean matching, weights on top. */
	char *d1 = xquery_describe(q1), *d2 = xquery_describe(q2);
	cr_assert_null(strstr(d1, "AND_MAYBE"), "%s", d1);
	cr_assert_not_null(strstr(d2, "AND_MAYBE"), "%s", d2);
	free(d1);
	free(d2);
	xmset_free(m1);
	xmset_free(m2);
	xquery_free(q1);
	xquery_free(q2);
	/* A word met again weighs once there too. */
	cr_assert_eq(query_build_multi(one, 1, "mill Mill", 9, 0, &q1, NULL), STATUS_OK);
	cr_assert_eq(shard_set_search(set, q1, 0, 10, &m1), STATUS_OK);
	cr_assert_eq(xmset_size(m1), 1);
	struct xmset_hit h3;
	cr_assert_eq(xmset_hit(m1, 0, &h3), STATUS_OK);
	cr_assert_float_eq(h1.weight, h3.weight, 1e-9);
	xmset_free(m1);
	xquery_free(q1);
}

/* "otters" followed by n exclusions "-xN" (and "-lake" last). */
static char *many_exclusions(size_t n)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "otters");
	for (size_t i = 0; i < n; i++)
		buf_addf(&b, " -x%zu", i);
	buf_adds(&b, " -lake");
	return buf_detach(&b, NULL);
}

Test(query, term_cap_refuses_long_queries)
{
	struct xquery *q = NULL;
	char *msg = NULL;
	char *text = many_exclusions(3999);
	/* 4,001 terms against the default cap of 32. */
	cr_assert_eq(query_build(en, text, strlen(text), 0, &q, &msg), STATUS_INVALID);
	cr_assert_null(q);
	cr_assert_str_eq(msg, "too many terms (4001 > 32)");
	free(msg);
	msg = NULL;
	/* Raised, the cap lets it through (in linear time: joining the
	 * exclusions two at a time took seconds), with every exclusion in it.
	 * Running it is another matter: 4,000 exclusions are 32,000 terms to
	 * look up, the reason for the cap. */
	struct query_options opt = { .flags = 0, .max_terms = 5000 };
	cr_assert_eq(query_build_opts(&en, 1, text, strlen(text), &opt, &q, &msg), STATUS_OK, "%s",
		     msg);
	char *d = xquery_describe(q);
	cr_assert(strstr(d, "Zx0") && strstr(d, "x3998") && strstr(d, "lake"), "%.200s", d);
	free(d);
	xquery_free(q);
	free(text);
	/* 32 terms exactly pass the default cap; a phrase is one term. */
	text = many_exclusions(30);
	cr_assert_eq(query_build(en, text, strlen(text), 0, &q, NULL), STATUS_OK);
	cr_assert_str_eq(found(q), "1 4");
	xquery_free(q);
	free(text);
	const char *phr =
		"\"old mill\" a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6";
	cr_assert_eq(query_build(en, phr, strlen(phr), 0, &q, &msg), STATUS_INVALID);
	cr_assert_str_eq(msg, "too many terms (33 > 32)");
	free(msg);
}

/* The snippet of the only or first hit of text's query with an. */
static char *snippet_of(struct analyzer *an, const char *text, const char *lang,
			unsigned flags)
{
	struct xquery *q = build(an, text);
	struct xmset *ms = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 1, &ms), STATUS_OK);
	cr_assert_eq(xmset_size(ms), 1, "%s: no hit", text);
	struct xmset_hit h;
	cr_assert_eq(xmset_hit(ms, 0, &h), STATUS_OK);
	struct shard_data sd;
	cr_assert_eq(shard_data_decode(h.data, h.data_len, &sd), STATUS_OK);
	char *s = query_snippet(ms, sd.text, sd.text_len, lang, 200, "[", "]", flags);
	cr_assert_not_null(s);
	shard_data_release(&sd);
	xmset_free(ms);
	xquery_free(q);
	return s;
}

Test(query, snippets_light_up_stemmed_and_exact_words)
{
	/* English stemming: "swims" lights up for "swimming". */
	char *s = snippet_of(en, "mother swimming", "en", 0);
	cr_assert(strstr(s, "[swims]"), "snippet: %s", s);
	cr_assert(strstr(s, "[mother]"), "snippet: %s", s);
	free(s);

	/* Plain text by default, escaped on request. */
	s = snippet_of(en, "goats", "en", 0);
	cr_assert(strstr(s, "mountain & eat"), "snippet: %s", s);
	free(s);
	s = snippet_of(en, "goats", "en", QUERY_SNIPPET_HTML);
	cr_assert(strstr(s, "mountain &amp; eat"), "snippet: %s", s);
	free(s);

	/* Greek has a stemmer in the plugins (the table) that Xapian may
	 * lack: the snippet still lights up the exact word. */
	const struct language *l = language_find("el");
	cr_assert_not_null(l);
	cr_assert_str_eq(l->stemmer, "greek");
	s = snippet_of(el, "θάλασσα", "el", 0);
	cr_assert(strstr(s, "[θάλασσα]"), "snippet: %s", s);
	free(s);

	/* A language without a stemmer, or none at all: exact words. */
	s = snippet_of(en, "mill", "zh", 0);
	cr_assert(strstr(s, "[mill]"), "snippet: %s", s);
	free(s);
	s = snippet_of(en, "mill", "", 0);
	cr_assert(strstr(s, "[mill]"), "snippet: %s", s);
	free(s);
}

Test(query, language_table_lookups)
{
	/* The primary subtag stands for a regional code. */
	cr_assert_str_eq(language_find("pt-br")->stemmer, "portuguese");
	cr_assert_str_eq(language_find("de_CH")->stemmer, "german");
	cr_assert_str_eq(language_find("nb")->stemmer, "norwegian");
	cr_assert_str_eq(language_find("ja")->plugin, "cjk");
	cr_assert_null(language_find("ja")->stemmer);
	cr_assert_null(language_find("xx"));
	cr_assert_null(language_find(""));
	cr_assert_null(language_find(NULL));

	/* Each loaded plugin serves exactly the codes its rows name. */
	for (size_t i = 0; i < loader_count(ld); i++) {
		const struct freshet_analyzer_api *api = loader_plugin(ld, i);
		if (strcmp(api->name, "generic") == 0)
			continue;
		const char *codes[64];
		size_t n = language_codes(api->name, codes, 64);
		cr_assert_gt(n, 0, "%s", api->name);
		size_t k = 0;
		for (; api->languages[k]; k++) {
			cr_assert_lt(k, n, "%s serves more than its rows", api->name);
			cr_assert_str_eq(api->languages[k], codes[k]);
		}
		cr_assert_eq(k, n, "%s serves fewer than its rows", api->name);
	}
}

/* The data of page id's document in the open shard set (caller frees). */
static char *page_data(uint64_t id)
{
	char term[32];
	snprintf(term, sizeof term, "Q%llu", (unsigned long long)id);
	struct xquery *q = xquery_term(term, strlen(term), 1);
	struct xmset *ms = NULL;
	cr_assert_eq(shard_set_search(set, q, 0, 1, &ms), STATUS_OK);
	xquery_free(q);
	cr_assert_eq(xmset_size(ms), 1);
	struct xmset_hit h;
	cr_assert_eq(xmset_hit(ms, 0, &h), STATUS_OK);
	char *data = strdup(h.data);
	xmset_free(ms);
	return data;
}

/* The terms under prefix, each cut after its SHARD_COMPLETION_SEP, into
 * out (1024 bytes); each must end with 8 hex digits after it. */
static int on_term_under(void *ctx, const char *term, size_t len, uint64_t docs)
{
	char *out = ctx;
	(void)docs;
	const char *sep = memchr(term, '|', len);
	cr_assert_not_null(sep, "%.*s", (int)len, term);
	cr_assert_eq(term + len - sep, 9, "%.*s", (int)len, term);
	for (const char *p = sep + 1; p < term + len; p++)
		cr_assert(strchr("0123456789abcdef", *p), "%.*s", (int)len, term);
	size_t n = strlen(out);
	snprintf(out + n, 1024 - n, "%.*s", (int)(sep + 1 - term), term);
	return 0;
}

static const char *terms_under(const char *prefix, char *out)
{
	out[0] = '\0';
	cr_assert_eq(xdb_terms(shard_set_db(set), prefix, 0, on_term_under, out), STATUS_OK);
	return out;
}

/* Keeps the weights (hex after the separator) in rising byte order. */
static int on_weight(void *ctx, const char *term, size_t len, uint64_t docs)
{
	unsigned long *w = ctx;
	(void)docs;
	unsigned long v = strtoul(term + len - 8, NULL, 16);
	cr_assert_geq(v, w[1], "%.*s", (int)len, term);
	w[0]++;
	w[1] = v;
	return 0;
}

/* The number of terms under prefix, asserting their inverted weights
 * rise (the pages' lengths fall). */
static unsigned long terms_weights(const char *prefix, char *unused)
{
	(void)unused;
	unsigned long w[2] = { 0, 0 };
	cr_assert_eq(xdb_terms(shard_set_db(set), prefix, 0, on_weight, w), STATUS_OK);
	return w[0];
}

Test(query, redirect_titles_find_their_target)
{
	/* Words only in a redirect's title find the target, and only it. */
	cr_assert_str_eq(search(en, "capra"), "2");
	cr_assert_str_eq(search(en, "hircus goats"), "2");
	cr_assert_str_eq(search(en, "\"capra hircus\""), "2");
	cr_assert_str_eq(search(en, "\"hircus capra\""), "");
	cr_assert_str_eq(search(en, "chèvres"), "2");
	cr_assert_str_eq(search(en, "otters -capra"), "1 3 4");
	/* Two redirect titles are two fields: no phrase across them. */
	cr_assert_str_eq(search(en, "\"hircus école\""), "");
}

Test(query, redirect_matches_weigh_like_the_title)
{
	/* On the same page, a word only in a redirect title ("hircus") and
	 * one only in the body ("grass"): the redirect match weighs more. */
	double w[2];
	const char *words[] = { "hircus", "grass" };
	for (int i = 0; i < 2; i++) {
		struct xquery *q = build(en, words[i]);
		struct xmset *ms = NULL;
		cr_assert_eq(shard_set_search(set, q, 0, 10, &ms), STATUS_OK);
		cr_assert_eq(xmset_size(ms), 1, "%s", words[i]);
		struct xmset_hit h;
		cr_assert_eq(xmset_hit(ms, 0, &h), STATUS_OK);
		w[i] = h.weight;
		xmset_free(ms);
		xquery_free(q);
	}
	cr_assert_gt(w[0], w[1], "redirect %f, body %f", w[0], w[1]);
}

Test(query, redirect_data_terms_and_completion)
{
	char *data = page_data(2);
	json_t *d = json_loads(data, JSON_DISABLE_EOF_CHECK, NULL);
	cr_assert_not_null(d);
	json_t *rds = json_object_get(d, "redirects");
	cr_assert_eq(json_array_size(rds), 2);
	cr_assert_str_eq(json_string_value(json_array_get(rds, 0)), "Capra hircus");
	cr_assert_str_eq(json_string_value(json_array_get(rds, 1)), "École des chèvres");
	json_decref(d);
	free(data);
	/* Pages without redirects have an empty list. */
	data = page_data(1);
	cr_assert(strstr(data, "\"redirects\":[]"), "%s", data);
	free(data);
	/* The boolean terms: which document holds each redirect page, and
	 * the completion terms, folded (lowercase, Latin accents stripped). */
	const char *terms[] = { "XRI102", "XRI104", "XRTcapra hircus",
				"XRTecole des chevres" };
	for (size_t i = 0; i < 4; i++) {
		struct xquery *q = xquery_term(terms[i], strlen(terms[i]), 1);
		cr_assert_str_eq(found(q), "2", "%s", terms[i]);
		xquery_free(q);
	}
	/* The completion prefix terms: one per leading character of the
	 * folded title (at most SHARD_COMPLETION_CHARS), each with the
	 * page's weight, as many for each redirect. */
	char got[1024];
	cr_assert_str_eq(terms_under("XPmo|", got), "XPmo|");
	cr_assert_str_eq(terms_under("XPmountain goats|", got), "XPmountain goats|");
	cr_assert_str_eq(terms_under("XRPc|", got), "XRPc|");
	cr_assert_str_eq(terms_under("XRPcapra hircus|", got), "XRPcapra hircus|");
	/* "ecole des chevres" is 17 characters: 16 are kept. */
	cr_assert_str_eq(terms_under("XRPecole des chevre", got), "XRPecole des chevre|");
	cr_assert_str_eq(terms_under("XRPecole des chevres", got), "");
	/* Byte order is weight order, heaviest first: "Talk:River otters"
	 * (ns 1, folded without its namespace) is the shorter page. */
	cr_assert_str_eq(terms_under("XPriver|", got), "XPriver|XPriver|");
	cr_assert_eq(terms_weights("XPriver|", got), 2);
	struct shard_redirect_holder *h = NULL;
	size_t n = 0;
	cr_assert_eq(shard_set_redirect_holders(set, 104, &h, &n), STATUS_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(h[0].page_id, 2);
	cr_assert_eq(h[0].ns, 0);
	free(h);
	cr_assert_eq(shard_set_redirect_holders(set, 999, &h, &n), STATUS_OK);
	cr_assert_eq(n, 0);
	cr_assert_null(h);
}

Test(query, redirect_page_has_no_document)
{
	struct document_builder *b = document_builder_new(ld);
	const char *html = "<p>Redirect to: Mountain goats</p>";
	struct fetch_result r = {
		.cls = FETCH_OK, .page_id = 102, .rev_id = 5,
		.title = (char *)"Capra hircus", .language = (char *)"en",
		.html = (char *)html, .html_len = strlen(html),
		.is_redirect = true, .redirect_target = 2,
	};
	struct shard_doc *doc = NULL;
	cr_assert_eq(document_build(b, &r, "http://wiki.test/w/api.php", 0, &doc, NULL),
		     STATUS_INVALID);
	cr_assert_null(doc);
	cr_assert(strstr(document_builder_errmsg(b), "redirect"), "%s",
		  document_builder_errmsg(b));
	document_builder_free(b);
}

Test(query, which_redirect_a_hit_came_through)
{
	char *data = page_data(2);
	struct shard_data sd;
	cr_assert_eq(shard_data_decode(data, strlen(data), &sd), STATUS_OK);
	const json_t *fields = sd.fields;
	struct {
		const char *q, *want;
	} cases[] = {
		{ "capra", "Capra hircus" },
		{ "hircus capra", "Capra hircus" },
		{ "chèvres", "École des chèvres" },
		{ "goats", NULL },          /* the title holds it */
		{ "mountain hircus", NULL }, /* as many words in the title */
		{ "grass", NULL },          /* the body, not a redirect */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = query_redirect_match(en, cases[i].q, strlen(cases[i].q), fields);
		if (cases[i].want)
			cr_assert(got && strcmp(got, cases[i].want) == 0,
				  "%s: got %s", cases[i].q, got ? got : "(null)");
		else
			cr_assert_null(got, "%s: got %s", cases[i].q, got);
		free(got);
	}
	shard_data_release(&sd);
	free(data);
	/* A page without redirects, and fields without any. */
	data = page_data(1);
	cr_assert_eq(shard_data_decode(data, strlen(data), &sd), STATUS_OK);
	cr_assert_null(query_redirect_match(en, "otters", 6, sd.fields));
	shard_data_release(&sd);
	free(data);
	json_t *empty = json_object();
	cr_assert_null(query_redirect_match(en, "capra", 5, empty));
	json_decref(empty);
}

/* The titles of a completion, "|"-separated, into out (256 bytes). */
static const char *complete_titles(struct searcher *se, const char *q, int ns, char *out)
{
	struct complete_request rq = { .wiki = "querywiki",
				       .query = q,
				       .query_len = strlen(q),
				       .ns = &ns,
				       .n_ns = ns >= 0,
				       .limit = 10 };
	struct complete_result res;
	cr_assert_eq(searcher_complete(se, &rq, &res), STATUS_OK, "%s", searcher_errmsg(se));
	out[0] = '\0';
	for (size_t i = 0; i < res.n_hits; i++)
		snprintf(out + strlen(out), 256 - strlen(out), "%s%s%s%s", i ? "|" : "",
			 res.hits[i].title, res.hits[i].redirect_title ? " via " : "",
			 res.hits[i].redirect_title ? res.hits[i].redirect_title : "");
	complete_result_release(&res);
	return out;
}

Test(query, completion_walks_postings_skips_dead_and_reads_schema_2)
{
	char *text = NULL;
	cr_assert(asprintf(&text,
			   "[worker]\ndata_dir = %s\n\n[wiki querywiki]\n"
			   "api = http://127.0.0.1:9/api.php\nlanguage = en\n"
			   "shards = 2\n",
			   tmpdir) > 0);
	struct conf *cfg = conf_new();
	cr_assert_eq(conf_load_string(cfg, "test.conf", text), STATUS_OK, "%s", conf_errmsg(cfg));
	free(text);
	struct searcher *se = searcher_new(cfg, ld, 0);
	char out[256];
	/* Ranked from the postings: the longer page first; a namespace
	 * filter; a redirect's title. */
	cr_assert_str_eq(complete_titles(se, "river", -1, out), "River otters|Talk:River otters");
	cr_assert_str_eq(complete_titles(se, "RIVER", 1, out), "Talk:River otters");
	cr_assert_str_eq(complete_titles(se, "capra", -1, out), "Mountain goats via Capra hircus");
	cr_assert_str_eq(complete_titles(se, "zebra", -1, out), "");
	/* Through the prefix terms up to SHARD_COMPLETION_CHARS (16)
	 * characters, by ranking the folded redirect titles beyond. */
	cr_assert_str_eq(complete_titles(se, "ecole des chevre", -1, out),
			 "Mountain goats via École des chèvres");
	cr_assert_str_eq(complete_titles(se, "École des chèvres", -1, out),
			 "Mountain goats via École des chèvres");
	cr_assert_str_eq(complete_titles(se, "ecole des chevresx", -1, out), "");
	/* Exact title first, whatever the weights. */
	cr_assert_str_eq(complete_titles(se, "river otters", -1, out),
			 "River otters|Talk:River otters");

	/* Page 1 deleted (a dead mark), and a document as schema 2 stored
	 * it (one JSON object, no value 5) beside it. */
	struct shard *sh = shard_new();
	char *path = shard_set_path(set, NULL, shard_route(1, 2));
	cr_assert_eq(shard_open(sh, path, 0), STATUS_OK, "%s", shard_errmsg(sh));
	free(path);
	cr_assert_eq(shard_delete(sh, 1), STATUS_OK, "%s", shard_errmsg(sh));
	struct xdoc *d = xdoc_new();
	const char *old =
		"{\"page_id\":11,\"title\":\"Zebra crossing\",\"namespace\":0,"
		"\"url\":\"http://wiki.test/Zebra\",\"redirects\":[],"
		"\"text\":\"stripes\"}";
	cr_assert_eq(xdoc_add_term(d, NULL, "Q11", 3, 0), STATUS_OK);
	cr_assert_eq(xdoc_add_term(d, SHARD_PREFIX_TITLE_FOLDED, "zebra crossing", 14, 0),
		     STATUS_OK);
	cr_assert_eq(xdoc_set_data(d, old, strlen(old)), STATUS_OK);
	cr_assert_eq(xdb_replace(shard_xdb(sh), "Q11", d), STATUS_OK);
	xdoc_free(d);
	cr_assert_eq(shard_commit(sh, 1), STATUS_OK, "%s", shard_errmsg(sh));
	shard_free(sh);
	cr_assert_str_eq(complete_titles(se, "river", -1, out), "Talk:River otters");
	cr_assert_str_eq(complete_titles(se, "zebra", -1, out), "Zebra crossing");
	struct complete_request rq = {
		.wiki = "querywiki", .query = "zeb", .query_len = 3, .limit = 1
	};
	struct complete_result res;
	cr_assert_eq(searcher_complete(se, &rq, &res), STATUS_OK);
	cr_assert_eq(res.n_hits, 1);
	cr_assert_eq(res.hits[0].page_id, 11);
	cr_assert_str_eq(res.hits[0].url, "http://wiki.test/Zebra");
	complete_result_release(&res);
	searcher_free(se);
	conf_free(cfg);
}
