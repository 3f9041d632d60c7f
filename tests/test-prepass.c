/* SPDX-License-Identifier: MIT */
/*
 * test-prepass.c: the HTML pre-pass on its own, on small hand-made inputs
 * and on the fixture pages: what it drops, what it keeps, where it stops
 * stripping, the nesting bound and the UTF-8 rule.  That the extracted
 * fields do not change is test-extract's part.
 */
#include "prepass.h"
#include "buf.h"
#include "testsupport.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps no class or id. */
static bool keep_none(const char *attr, const char *value, size_t n)
{
	(void)attr;
	(void)value;
	(void)n;
	return false;
}

/* Keeps every class and id. */
static bool keep_all(const char *attr, const char *value, size_t n)
{
	(void)attr;
	(void)value;
	(void)n;
	return true;
}

/* Keeps class="keep" and id="toc", as the extractor keeps its classes. */
static bool keep_some(const char *attr, const char *value, size_t n)
{
	if (!strcmp(attr, "class"))
		return n == 4 && !memcmp(value, "keep", 4);
	cr_assert_str_eq(attr, "id");
	return n == 3 && !memcmp(value, "toc", 3);
}

/* Runs the pre-pass on html (NUL-terminated) and returns a NUL-terminated
 * copy of its output; caller frees. */
static char *pass(unsigned max_depth, prepass_keep_fn keep, const char *html)
{
	struct prepass *pp = prepass_new(max_depth, keep);
	size_t n;
	const char *out = prepass_run(pp, html, strlen(html), &n);
	char *s = strndup(out, n);
	cr_assert_not_null(s);
	cr_assert_eq(strlen(s), n, "NUL in the output of %s", html);
	prepass_free(pp);
	return s;
}

static void expect(unsigned max_depth, prepass_keep_fn keep, const char *html,
		   const char *want)
{
	char *got = pass(max_depth, keep, html);
	cr_expect_str_eq(got, want, "for %s", html);
	free(got);
}

Test(prepass, attributes_are_stripped)
{
	expect(256, keep_none, "<p class=\"a\" id=\"b\" title=\"t\">x</p>",
	       "<p >x</p>");
	/* Every value syntax: single quotes, unquoted, no value, blanks
	 * around '=', upper case names. */
	expect(256, keep_none,
	       "<a href='/w' TITLE = \"T\" hidden data-x=1\tCLASS=c>y</a>",
	       "<a >y</a>");
	/* A self-closing tag keeps its slash, a void element its name. */
	expect(256, keep_none, "<img src=\"x.png\" alt=\"\"/><br class=\"c\">",
	       "<img /><br >");
	/* Text is not touched, even when it looks like an attribute. */
	expect(256, keep_none, "<p>class=\"a\" title=\"b\"</p>",
	       "<p>class=\"a\" title=\"b\"</p>");
}

Test(prepass, class_and_id_are_kept_when_keep_says_so)
{
	expect(256, keep_some,
	       "<div title=\"t\" class=\"keep\" data-x=1 id=\"toc\">z</div>",
	       "<div class=\"keep\" id=\"toc\">z</div>");
	expect(256, keep_some, "<p class=\"other\" id=\"intro\">z</p>", "<p >z</p>");
	/* libxml2 keeps only the first class: a repeat always goes, and
	 * must go when the first did, or it would take its place. */
	expect(256, keep_some, "<p class=\"keep\" class=\"keep\">z</p>",
	       "<p class=\"keep\" >z</p>");
	expect(256, keep_some, "<p class=\"no\" class=\"keep\">z</p>", "<p >z</p>");
	/* A value with a character reference is kept without asking: its
	 * decoded text is not known to the pre-pass. */
	expect(256, keep_none, "<p class=\"a&amp;b\" title=\"t\">z</p>",
	       "<p class=\"a&amp;b\" >z</p>");
	/* Other attributes go whatever keep() says. */
	expect(256, keep_all, "<p title=\"t\" class=\"c\" lang=en>z</p>",
	       "<p class=\"c\" >z</p>");
}

Test(prepass, meta_keeps_its_attributes)
{
	expect(256, keep_none,
	       "<meta charset=\"iso-8859-1\" class=\"c\"><p title=\"t\">a</p>",
	       "<meta charset=\"iso-8859-1\" class=\"c\"><p >a</p>");
}

Test(prepass, an_unchanged_document_is_not_copied)
{
	const char *html[] = {
		"<p>plain <b>text</b></p>",
		"<p class=\"c\" id=\"i\">kept</p>",
		"<!-- <p title=\"x\"> --><!DOCTYPE html>caf\xc3\xa9\t\n",
		"",
	};
	for (size_t i = 0; i < sizeof(html) / sizeof(html[0]); i++) {
		struct prepass *pp = prepass_new(256, keep_all);
		size_t n;
		const char *out = prepass_run(pp, html[i], strlen(html[i]), &n);
		cr_expect_eq(out, html[i], "copied %s", html[i]);
		cr_expect_eq(n, strlen(html[i]));
		prepass_free(pp);
	}
}

Test(prepass, comments_are_not_rewritten)
{
	expect(256, keep_none, "<!-- <p title=\"x\"> --><p title=\"y\">t</p>",
	       "<!-- <p title=\"x\"> --><p >t</p>");
	/* A doctype without quoted literals is read alike by both. */
	expect(256, keep_none, "<!DOCTYPE html><p title=\"y\">t</p>",
	       "<!DOCTYPE html><p >t</p>");
}

/* libxml2 2.9.14 ends a comment at "--!>", the pre-pass at "-->": after
 * such a comment they could disagree on what is a tag, so nothing more is
 * stripped, but the nesting bound goes on. */
Test(prepass, a_comment_holding_bang_ends_the_stripping)
{
	expect(256, keep_none,
	       "<p title=\"a\">x</p><!-- c --!><p title=\"b\">y</p>-->"
	       "<p title=\"c\">z</p>",
	       "<p >x</p><!-- c --!><p title=\"b\">y</p>--><p title=\"c\">z</p>");
	expect(1, keep_none,
	       "<p title=\"a\">x</p><!-- --!> --><div title=\"c\"><b>z</b></div>",
	       "<p >x</p><!-- --!> --><div title=\"c\"> z </div>");
}

/* Every construct the pre-pass may read unlike libxml2 ends the stripping
 * for the rest of the document; the tags before it stay stripped. */
Test(prepass, constructs_read_unlike_libxml2_end_the_stripping)
{
	const char *odd[] = {
		"<!-- c --!> -->",
		"<!DOCTYPE html PUBLIC \"-//W3C//DTD HTML 4.01//EN\">",
		"<?php echo 1 ?>",
		"<!bogus comment>",
		"<p>q</p foo>",
		"<p title=a\"b>q</p>",
		"<p title = \"a>b\">q</p>",
		"<script>if (a</b) x();</script>",
		"<style>a</b {}</style>",
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		char *html, *want;
		cr_assert(asprintf(&html, "<p title=\"a\">x</p>%s"
				   "<p title=\"b\">y</p>", odd[i]) > 0);
		char *got = pass(256, keep_none, html);
		cr_expect(!strncmp(got, "<p >x</p>", 9), "%s gave %s", odd[i], got);
		cr_assert(asprintf(&want, "<p title=\"b\">y</p>") > 0);
		size_t gl = strlen(got), wl = strlen(want);
		cr_expect(gl >= wl && !strcmp(got + gl - wl, want),
			  "%s gave %s", odd[i], got);
		free(want);
		free(got);
		free(html);
	}
	/* Scripts read alike by both go on being stripped after. */
	expect(256, keep_none,
	       "<script type=\"t\">if (a < b) x();</script><p title=\"b\">y</p>",
	       "<script >if (a < b) x();</script><p >y</p>");
}

Test(prepass, nesting_is_bounded)
{
	/* The third <div> is past the bound, so is the unmatched </div>. */
	expect(2, keep_all, "<div><div><div>x</div></div></div>",
	       "<div><div> x</div></div> ");
	/* An end tag that closes nothing becomes a word break. */
	expect(256, keep_all, "<b>a</i>b</b>", "<b>a b</b>");
	/* Past the bound a script goes with its body; text stays. */
	expect(1, keep_all, "<div><script>hidden()</script>t</div>",
	       "<div> t</div>");
	/* Void elements and self-closing tags take no room on the stack. */
	expect(1, keep_all, "<div><br><img/><hr>t</div>",
	       "<div><br><img/><hr>t</div>");
	/* End tags match start tags whatever their case. */
	expect(1, keep_all, "<DIV>t</div><p>u</P>", "<DIV>t</div><p>u</P>");
}

Test(prepass, non_utf8_input_becomes_valid_utf8)
{
	expect(256, keep_all, "a\xff\xfe" "b", "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
	expect(256, keep_all, "x\xc0\xaf" "y", "x\xEF\xBF\xBD\xEF\xBF\xBD" "y");
	expect(256, keep_all, "s\xed\xa0\x80" "t",
	       "s\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "t");
	expect(256, keep_all, "cut \xe2\x82", "cut \xEF\xBF\xBD\xEF\xBF\xBD");
	expect(256, keep_all, "ok \xe2\x82\xac \xf0\x9f\x98\x80",
	       "ok \xe2\x82\xac \xf0\x9f\x98\x80");
	/* Control characters other than white space become spaces. */
	expect(256, keep_all, "a\x01" "b\x1f" "c\td\re\ff\n", "a b c\td\re\ff\n");
	/* Both steps on one document: cleaned, then stripped. */
	expect(256, keep_none, "<p title=\"\xff\">caf\xe9</p>",
	       "<p >caf\xEF\xBF\xBD</p>");

	/* NUL bytes, which a C string cannot hold. */
	const char html[] = "a\0b";
	struct prepass *pp = prepass_new(256, keep_all);
	size_t n;
	const char *out = prepass_run(pp, html, sizeof(html) - 1, &n);
	cr_expect_eq(n, 3);
	cr_expect(!memcmp(out, "a b", 3));
	prepass_free(pp);

	/* prepass_utf8_clean() appends to what the buffer holds. */
	struct buf b = BUF_INIT;
	buf_adds(&b, "t: ");
	prepass_utf8_clean(&b, "\xe9t\xc3\xa9", 4);
	cr_expect_str_eq(b.data, "t: \xEF\xBF\xBDt\xc3\xa9");
	buf_release(&b);
}

Test(prepass, one_prepass_serves_many_documents)
{
	struct prepass *pp = prepass_new(2, keep_none);
	for (int round = 0; round < 3; round++) {
		size_t n;
		const char *a = "<div><div><div title=\"x\">a</div></div></div>";
		const char *out = prepass_run(pp, a, strlen(a), &n);
		cr_expect_eq(n, strlen("<div><div> a</div></div> "));
		cr_expect(!memcmp(out, "<div><div> a</div></div> ", n));
		const char *b = "<p title=\"y\">b\xff</p>";
		out = prepass_run(pp, b, strlen(b), &n);
		cr_expect_eq(n, strlen("<p >b\xEF\xBF\xBD</p>"));
		cr_expect(!memcmp(out, "<p >b\xEF\xBF\xBD</p>", n));
		prepass_release(pp);
	}
	prepass_free(pp);
	prepass_free(NULL);
}

/* The element names, in order, of every start and end tag in s. */
static char *tag_names(const char *s, size_t n)
{
	struct buf b = BUF_INIT;
	for (size_t i = 0; i + 1 < n; i++) {
		if (s[i] != '<')
			continue;
		size_t k = i + 1 + (s[i + 1] == '/');
		while (k < n && ((s[k] >= 'a' && s[k] <= 'z') ||
				 (s[k] >= 'A' && s[k] <= 'Z') ||
				 (s[k] >= '0' && s[k] <= '9')))
			buf_addch(&b, s[k++]);
		buf_addch(&b, ' ');
	}
	return buf_detach(&b, NULL);
}

static char *fixture(const char *rel, size_t *len)
{
	char *path = test_srcpath(rel);
	char *html = test_read_file(path, len);
	cr_assert_not_null(html, "%s", path);
	free(path);
	return html;
}

/* The article and the man pages as MediaWiki renders them: every
 * attribute goes, every tag stays. */
Test(prepass, fixture_pages_lose_their_attributes_and_keep_their_tags)
{
	const char *pages[] = {
		"tests/fixtures/html/article.html",
		"tests/fixtures/html/equiv/man-clang-tblgen-14.1.html",
		"tests/fixtures/html/equiv/man-dpkg-scansources.1.html",
		"tests/fixtures/html/equiv/man-gapplication.1.html",
	};
	struct prepass *pp = prepass_new(256, keep_none);
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		size_t len, n;
		char *html = fixture(pages[i], &len);
		const char *out = prepass_run(pp, html, len, &n);
		cr_expect_lt(n, len, "%s", pages[i]);
		char *got = strndup(out, n);
		cr_expect_null(strstr(got, " class="), "%s", pages[i]);
		cr_expect_null(strstr(got, " href="), "%s", pages[i]);
		char *tin = tag_names(html, len), *tout = tag_names(out, n);
		cr_expect_str_eq(tout, tin, "%s", pages[i]);
		free(tin);
		free(tout);
		free(got);
		free(html);
	}
	prepass_free(pp);
}

/* tests/fixtures/html/equiv/odd-*.html: each has one construct the
 * pre-pass may read unlike libxml2, after a paragraph <p class="a" id="b">
 * and before a paragraph with a title attribute.  The first is stripped,
 * the second kept, except where the construct is one the pre-pass reads
 * as libxml2 does (many attributes, <meta>). */
Test(prepass, odd_fixtures_stop_the_stripping_where_libxml2_may_differ)
{
	char *dir = test_srcpath("tests/fixtures/html/equiv");
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	struct prepass *pp = prepass_new(256, keep_none);
	struct dirent *e;
	size_t pages = 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (strncmp(e->d_name, "odd-", 4) != 0 || l < 6 ||
		    strcmp(e->d_name + l - 5, ".html") != 0)
			continue;
		char *rel;
		cr_assert(asprintf(&rel, "tests/fixtures/html/equiv/%s",
				   e->d_name) > 0);
		size_t len, n;
		char *html = fixture(rel, &len);
		const char *out = prepass_run(pp, html, len, &n);
		char *got = strndup(out, n);
		cr_expect(strstr(got, "<p >Before.</p>") != NULL, "%s: %s",
			  e->d_name, got);
		bool same = strstr(e->d_name, "many-attributes") ||
			    strstr(e->d_name, "meta");
		const char *after = same ? "<p >After.</p>"
					 : "<p class=\"x\" title=\"y\">After.</p>";
		cr_expect(strstr(got, after) != NULL, "%s: %s", e->d_name, got);
		free(got);
		free(html);
		free(rel);
		pages++;
	}
	closedir(d);
	prepass_free(pp);
	free(dir);
	cr_expect_geq(pages, 15, "only %zu odd fixtures", pages);
}
