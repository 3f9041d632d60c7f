/* SPDX-License-Identifier: MIT */
/*
 * test-extract.c: the HTML field extractor on fixture and hand-made HTML,
 * offline.
 */
#include "extract.h"
#include "fetch.h"
#include "buf.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* True if s (n bytes) is valid UTF-8 without NUL. */
static bool valid_utf8(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		uint32_t cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 2;
			cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 3;
			cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 4;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + k > n)
			return false;
		for (size_t j = 1; j < k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && cp < 0x10000) || cp > 0x10FFFF ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += k;
	}
	return true;
}

/* Renders the HTML fields the way the .expected fixtures spell them. */
static char *render(const struct extract_doc *d)
{
	struct buf b = BUF_INIT;
	buf_addf(&b, "text: %s\nopening_text: %s\n", d->text, d->opening_text);
	for (size_t i = 0; i < d->heading.n; i++)
		buf_addf(&b, "heading: %s\n", d->heading.v[i]);
	for (size_t i = 0; i < d->auxiliary_text.n; i++)
		buf_addf(&b, "auxiliary_text: %s\n", d->auxiliary_text.v[i]);
	return buf_detach(&b, NULL);
}

/* Extracts html (NUL-terminated) with default limits. */
static void run(const char *html, struct extract_doc *d)
{
	struct extract *x = extract_new(NULL);
	cr_assert_eq(extract_html(x, html, strlen(html), d), STATUS_OK);
	extract_free(x);
	cr_assert(valid_utf8(d->text, d->text_len), "text is not valid UTF-8");
}

static void expect_text(const char *html, const char *text)
{
	struct extract_doc d;
	run(html, &d);
	cr_expect_str_eq(d.text, text, "for %s", html);
	extract_doc_release(&d);
}

Test(extract, fixture_article_gives_cirrussearch_fields)
{
	char *path = test_srcpath("tests/fixtures/html/article.html");
	char *epath = test_srcpath("tests/fixtures/html/article.expected");
	size_t len;
	char *html = test_read_file(path, &len);
	char *want = test_read_file(epath, NULL);
	cr_assert_not_null(html);
	cr_assert_not_null(want);
	struct extract *x = extract_new(NULL);
	struct extract_doc d;
	cr_assert_eq(extract_html(x, html, len, &d), STATUS_OK);
	char *got = render(&d);
	cr_expect_str_eq(got, want);
	cr_expect_not(d.truncated);
	free(got);
	extract_doc_release(&d);
	extract_free(x);
	free(html);
	free(want);
	free(path);
	free(epath);
}

/* tests/fixtures/html/equiv/: five man pages as MediaWiki renders them
 * (bench/make-corpus.sh) and hand-made pages aimed at the attribute
 * stripping of the nesting pre-pass (every attribute syntax, duplicates,
 * character references in class and id, and the constructs after which the
 * pre-pass stops stripping).  Each .expected was written by the extractor
 * as it was before the stripping (commit 83b1b5e), so this proves that the
 * fields did not change. */
Test(extract, fixture_pages_give_the_same_fields_as_before)
{
	char *dir = test_srcpath("tests/fixtures/html/equiv");
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	struct extract *x = extract_new(NULL);
	struct dirent *e;
	size_t pages = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l < 6 || strcmp(e->d_name + l - 5, ".html") != 0)
			continue;
		char *path, *epath;
		cr_assert(asprintf(&path, "%s/%s", dir, e->d_name) > 0);
		cr_assert(asprintf(&epath, "%s/%.*s.expected", dir,
				   (int)(l - 5), e->d_name) > 0);
		size_t len;
		char *html = test_read_file(path, &len);
		char *want = test_read_file(epath, NULL);
		cr_assert_not_null(html, "%s", path);
		cr_assert_not_null(want, "%s", epath);
		struct extract_doc doc;
		cr_assert_eq(extract_html(x, html, len, &doc), STATUS_OK);
		char *got = render(&doc);
		cr_expect_str_eq(got, want, "%s", e->d_name);
		free(got);
		extract_doc_release(&doc);
		free(html);
		free(want);
		free(path);
		free(epath);
		pages++;
	}
	closedir(d);
	extract_free(x);
	free(dir);
	cr_expect_geq(pages, 20, "only %zu fixture pages", pages);
}

Test(extract, block_elements_are_word_breaks)
{
	expect_text("<p>end.</p><p>Next</p>", "end. Next");
	expect_text("<div>a</div><div>b</div>", "a b");
	expect_text("a<br>b<br/>c", "a b c");
	expect_text("<ul><li>x</li><li>y</li></ul>z", "x y z");
	expect_text("in<b>line</b><i>s</i> stay", "inlines stay");
	expect_text("<p>one</p>\n\n<p>\n two </p>", "one two");
}

Test(extract, entities_are_decoded)
{
	expect_text("&amp; &lt;x&gt; &eacute;t&eacute; &#x1F600; &#233; &quot;q&quot;",
		    "& <x> été 😀 é \"q\"");
	expect_text("a&nbsp;b&#160;&#160;c", "a b c");
}

Test(extract, white_space_is_collapsed)
{
	expect_text("  a \n\t b  ", "a b");
	expect_text("<p>  </p><p> x </p>  ", "x");
	expect_text("", "");
}

Test(extract, invalid_utf8_becomes_replacement_characters)
{
	expect_text("a\xff\xfe" "b", "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
	expect_text("x\xc0\xaf" "y", "x\xEF\xBF\xBD\xEF\xBF\xBD" "y");
	expect_text("s\xed\xa0\x80" "t", "s\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "t");
	expect_text("cut \xe2\x82", "cut \xEF\xBF\xBD\xEF\xBF\xBD");
	expect_text("ok \xe2\x82\xac", "ok \xe2\x82\xac");
	/* A charset declaration must not make libxml2 reinterpret bytes. */
	expect_text("<meta charset=\"iso-8859-1\"><p>caf\xc3\xa9 \xe9</p>",
		    "caf\xc3\xa9 \xEF\xBF\xBD");
}

Test(extract, nul_and_control_bytes_are_not_passed_on)
{
	const char html[] = "a\0b\x01" "c";
	struct extract *x = extract_new(NULL);
	struct extract_doc d;
	cr_assert_eq(extract_html(x, html, sizeof(html) - 1, &d), STATUS_OK);
	cr_expect_str_eq(d.text, "a b c");
	extract_doc_release(&d);
	extract_free(x);
}

Test(extract, excluded_elements_and_classes)
{
	expect_text("a<sup class=\"reference\">[1]</sup> b", "a b");
	expect_text("a<span class=\"reference\">kept</span>", "akept");
	expect_text("x<script>bad()</script><style>.c{}</style>y", "xy");
	expect_text("x<span class=\"mw-editsection\">[edit]</span>y", "xy");
	expect_text("<div class=\"a navigation-not-searchable b\">nav</div>t", "t");
	expect_text("<video>v</video><audio>a</audio>t", "t");
	expect_text("<table class=\"navigation-not-searchable\"><tr><td>n</td></tr>"
		    "</table>t", "t");
	/* An excluded element's inner structure does not matter. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "<sup class=\"reference\">");
	for (int i = 0; i < 1000; i++)
		buf_adds(&b, "<b>");
	buf_adds(&b, "hidden");
	for (int i = 0; i < 1000; i++)
		buf_adds(&b, "</b>");
	buf_adds(&b, "</sup>visible");
	expect_text(b.data, "visible");
	buf_release(&b);
}

Test(extract, headings_and_opening_text)
{
	struct extract_doc d;
	run("<p>Intro <b>here</b>.</p><h2><span class=\"mw-headline\">A</span>"
	    "<span class=\"mw-editsection\">edit</span></h2><p>Body</p>"
	    "<h2>See also</h2><p>More</p><h4>Deep <i>one</i></h4>", &d);
	cr_expect_str_eq(d.opening_text, "Intro here.");
	cr_expect_str_eq(d.text, "Intro here. Body More");
	cr_assert_eq(d.heading.n, 2);
	cr_expect_str_eq(d.heading.v[0], "A");
	cr_expect_str_eq(d.heading.v[1], "Deep one");
	extract_doc_release(&d);

	run("<p>No headings at all.</p>", &d);
	cr_expect_str_eq(d.opening_text, d.text);
	cr_expect_eq(d.heading.n, 0);
	extract_doc_release(&d);
}

Test(extract, auxiliary_text_entries)
{
	struct extract_doc d;
	run("<div class=\"rellink\">Main article: X</div><p>t</p>"
	    "<table><tr><td>a<table><tr><td>inner</td></tr></table></td></tr></table>"
	    "<div class=\"thumbcaption\">cap</div>", &d);
	cr_expect_str_eq(d.text, "t");
	cr_assert_eq(d.auxiliary_text.n, 3);
	cr_expect_str_eq(d.auxiliary_text.v[0], "Main article: X");
	cr_expect_str_eq(d.auxiliary_text.v[1], "a inner");
	cr_expect_str_eq(d.auxiliary_text.v[2], "cap");
	extract_doc_release(&d);
}

Test(extract, malformed_html_still_gives_text)
{
	expect_text("<p>a<table><td>x</p>y", "a");
	struct extract_doc d;
	run("<div><p>unclosed <b>bold <i>both</div> after <<>> & &bogus; </", &d);
	cr_expect(strstr(d.text, "unclosed bold both") != NULL, "got %s", d.text);
	cr_expect(strstr(d.text, "after") != NULL, "got %s", d.text);
	extract_doc_release(&d);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

Test(extract, deep_nesting_is_bounded, .timeout = 60)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < 100000; i++)
		buf_adds(&b, "<div><span>");
	buf_adds(&b, "deep text");
	for (int i = 0; i < 50000; i++)
		buf_adds(&b, "</i></div>");
	struct extract_limits lim = { .max_depth = 64 };
	struct extract *x = extract_new(&lim);
	struct extract_doc d;
	double t0 = now();
	cr_assert_eq(extract_html(x, b.data, b.len, &d), STATUS_OK);
	double dt = now() - t0;
	cr_expect_str_eq(d.text, "deep text");
	cr_expect_lt(dt, 20.0, "took %.1f s", dt);
	extract_doc_release(&d);

	/* Past the bound, a script's body still is not text. */
	buf_reset(&b);
	for (int i = 0; i < 100; i++)
		buf_adds(&b, "<div>");
	buf_adds(&b, "<script>var hidden = 1;</script>shown");
	cr_assert_eq(extract_html(x, b.data, b.len, &d), STATUS_OK);
	cr_expect_str_eq(d.text, "shown");
	extract_doc_release(&d);
	extract_free(x);
	buf_release(&b);
}

Test(extract, output_is_capped_on_a_character_boundary)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "<p>");
	for (int i = 0; i < 200000; i++)
		buf_adds(&b, "é€😀 ");
	struct extract_limits lim = { .max_output = 1001 };
	struct extract *x = extract_new(&lim);
	struct extract_doc d;
	cr_assert_eq(extract_html(x, b.data, b.len, &d), STATUS_OK);
	cr_expect(d.truncated);
	cr_expect_leq(d.text_len, 1001);
	cr_expect_geq(d.text_len, 990);
	cr_expect(valid_utf8(d.text, d.text_len));
	cr_expect(valid_utf8(d.opening_text, strlen(d.opening_text)));
	extract_doc_release(&d);
	extract_free(x);
	buf_release(&b);
}

Test(extract, strip_html_for_display_titles)
{
	char *s = extract_strip_html("<i>Foo</i> <span style=\"x\">bar&amp;baz</span>",
				     45);
	cr_expect_str_eq(s, "Foo bar&baz");
	free(s);
	s = extract_strip_html("plain", 5);
	cr_expect_str_eq(s, "plain");
	free(s);
}

Test(extract, page_fields_from_an_api_result)
{
	struct fetch_wiki_config cfg;
	fetch_wiki_config_init(&cfg);
	cfg.name = "testwiki";
	cfg.api = "http://127.0.0.1:1/api.php";
	struct fetch_wiki *w = fetch_wiki_new(&cfg, NULL);
	cr_assert_not_null(w);
	struct fetch_category cats[] = { { "Living people", false },
					 { "Hidden one", true } };
	struct fetch_title links[] = { { 0, "Other page", true },
				       { 1, "Talk:Foo", false } };
	struct fetch_title tpls[] = { { 10, "Template:Infobox", true } };
	char html[] = "<p>Body</p>";
	struct fetch_result r = {
		.cls = FETCH_OK, .wiki = w, .page_id = 3, .rev_id = 9,
		.title = "Foo", .ns = 0, .language = "en",
		.display_title_html = "<span class=\"x\"><i>Foo</i></span>",
		.html = html, .html_len = strlen(html),
		.categories = cats, .n_categories = 2,
		.links = links, .n_links = 2,
		.templates = tpls, .n_templates = 1,
	};
	struct extract *x = extract_new(NULL);
	struct extract_doc d;
	cr_assert_eq(extract_page(x, &r, &d), STATUS_OK);
	cr_expect_str_eq(d.text, "Body");
	cr_expect_str_eq(d.display_title, "Foo");
	cr_assert_eq(d.category.n, 2);
	cr_expect_str_eq(d.category.v[0], "Living people");
	cr_expect_str_eq(d.category.v[1], "Hidden one");
	cr_assert_eq(d.outgoing_link.n, 2);
	cr_expect_str_eq(d.outgoing_link.v[1], "Talk:Foo");
	cr_assert_eq(d.template_.n, 1);
	cr_expect_str_eq(d.template_.v[0], "Template:Infobox");
	extract_doc_release(&d);

	r.cls = FETCH_MISSING;
	cr_expect_eq(extract_page(x, &r, &d), STATUS_INVALID);
	cr_expect_neq(extract_errmsg(x)[0], '\0');
	extract_doc_release(&d);
	extract_free(x);
	fetch_wiki_free(w);
}
