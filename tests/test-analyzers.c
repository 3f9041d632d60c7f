/* SPDX-License-Identifier: MIT */
/*
 * test-analyzers.c: the analyzer plugins, run through the loader, on real
 * sentences: exact terms and positions for both views, per plugin family.
 * A term is written "term@pos"; stopwords leave gaps in the text view.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>
#include <unicode/utf16.h>

#include "buf.h"
#include "loader.h"

static struct loader *ld;

static void setup(void)
{
	ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
}

static void teardown(void)
{
	loader_free(ld);
}

TestSuite(analyzers, .init = setup, .fini = teardown);

static int add_term(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct buf *b = ctx;
	(void)s;
	(void)e;
	cr_assert_eq(strlen(t), n, "term must be NUL-terminated at len");
	buf_addf(b, "%s%s@%u", b->len ? " " : "", t, pos);
	return 0;
}

static int add_offsets(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct buf *b = ctx;
	buf_addf(b, "%s%.*s@%u[%zu,%zu)", b->len ? " " : "", (int)n, t, pos, s, e);
	return 0;
}

/* Analyzes text in lang and view; returns the "term@pos ..." string (malloc'd). */
static char *run(const char *lang, enum freshet_view view, const char *text, const char **plugin)
{
	struct analyzer *an = NULL;
	char *err = NULL;
	cr_assert_eq(analyzer_open(ld, lang, NULL, &an, &err), STATUS_OK, "%s", err ? err : "");
	if (plugin)
		*plugin = analyzer_name(an);
	struct buf b = BUF_INIT;
	cr_assert_eq(analyzer_run(an, view, 0, text, strlen(text), add_term, &b), STATUS_OK);
	analyzer_close(an);
	return buf_detach(&b, NULL);
}

static void check(const char *lang, const char *plugin, const char *text,
                  const char *want_text, const char *want_plain)
{
	const char *p = NULL;
	char *t = run(lang, FRESHET_VIEW_TEXT, text, &p);
	cr_expect_str_eq(p, plugin, "%s served by %s", lang, p);
	cr_expect_str_eq(t, want_text, "%s text view of \"%s\"", lang, text);
	free(t);
	char *pl = run(lang, FRESHET_VIEW_PLAIN, text, NULL);
	cr_expect_str_eq(pl, want_plain, "%s plain view of \"%s\"", lang, text);
	free(pl);

	/* The one-pass call the document builder uses gives the same terms,
	 * positions and offsets in each view. */
	struct analyzer *an = NULL;
	char *err = NULL;
	cr_assert_eq(analyzer_open(ld, lang, NULL, &an, &err), STATUS_OK, "%s", err ? err : "");
	struct buf bt = BUF_INIT, bp = BUF_INIT, ot = BUF_INIT, op = BUF_INIT;
	cr_assert_eq(analyzer_run_both(an, 0, text, strlen(text), add_term, &bt,
	                               add_term, &bp), STATUS_OK);
	cr_expect_str_eq(bt.data, want_text, "%s one-pass text view of \"%s\"", lang, text);
	cr_expect_str_eq(bp.data, want_plain, "%s one-pass plain view of \"%s\"", lang, text);
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_TEXT, 0, text, strlen(text), add_offsets, &ot), STATUS_OK);
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, 0, text, strlen(text), add_offsets, &op), STATUS_OK);
	buf_reset(&bt);
	buf_reset(&bp);
	cr_assert_eq(analyzer_run_both(an, 0, text, strlen(text), add_offsets, &bt,
	                               add_offsets, &bp), STATUS_OK);
	cr_expect_str_eq(bt.data, ot.data, "%s one-pass text offsets", lang);
	cr_expect_str_eq(bp.data, op.data, "%s one-pass plain offsets", lang);
	buf_release(&bt);
	buf_release(&bp);
	buf_release(&ot);
	buf_release(&op);
	analyzer_close(an);
}

Test(analyzers, english_possessive_stopwords_stemming)
{
	check("en", "snowball", "John's dog was running to the Café.",
	      "john@0 dog@1 run@3 cafe@6",
	      "john@0 dog@1 was@2 running@3 to@4 the@5 café@6");
}

Test(analyzers, german_mueller_meets_in_text_view_only)
{
	check("de", "snowball", "Müller, Mueller und Muller gehen über die Straße",
	      "mull@0 mull@1 mull@3 geh@4 strass@7",
	      "müller@0 mueller@1 und@2 muller@3 gehen@4 über@5 die@6 straße@7");
}

Test(analyzers, french_elision)
{
	check("fr", "snowball", "L’église et l'hôpital d'Aujourd'hui, aujourd'hui qu'il",
	      "eglis@0 hopital@2 aujourd'hui@3 aujourd'hui@4",
	      "église@0 et@1 hôpital@2 aujourd'hui@3 aujourd'hui@4 il@5");
}

Test(analyzers, italian_elision)
{
	check("it", "snowball", "Dell'amico all'università",
	      "amic@0 univers@1", "amico@0 università@1");
}

Test(analyzers, spanish_keeps_enye)
{
	check("es", "snowball", "El niño y la señora",
	      "niñ@1 señor@4", "el@0 niño@1 y@2 la@3 señora@4");
}

Test(analyzers, portuguese_and_brazilian_fallback)
{
	check("pt-br", "snowball", "As crianças estão brincando",
	      "crianc@1 brinc@3", "as@0 crianças@1 estão@2 brincando@3");
}

Test(analyzers, dutch)
{
	check("nl", "snowball", "De fietsen van mijn vrienden",
	      "fiets@1 vriend@4", "de@0 fietsen@1 van@2 mijn@3 vrienden@4");
}

Test(analyzers, russian_keeps_short_i_folds_yo)
{
	check("ru", "snowball", "Йошкар-Ола ёлка Ёжик",
	      "йошкар@0 ол@1 елк@2 ежик@3", "йошкар@0 ола@1 ёлка@2 ёжик@3");
}

Test(analyzers, swedish_keeps_a_ring)
{
	check("sv", "snowball", "Årets möte på skärgården",
	      "året@0 möt@1 skärgård@3", "årets@0 möte@1 på@2 skärgården@3");
}

Test(analyzers, finnish)
{
	check("fi", "snowball", "Hyvää päivää ystävät",
	      "hyvä@0 päivä@1 ystäv@2", "hyvää@0 päivää@1 ystävät@2");
}

Test(analyzers, turkish_dotted_capital_i)
{
	check("tr", "snowball", "İstanbul’da IŞIK ılık ve bir",
	      "istanbul@0 ışık@1 ılık@2 bir@4",
	      "istanbul@0 ışık@1 ılık@2 ve@3 bir@4");
}

Test(analyzers, greek)
{
	check("el", "snowball", "Η γλώσσα των Ελλήνων",
	      "η@0 γλωσσ@1 τ@2 ελλην@3", "η@0 γλώσσα@1 των@2 ελλήνων@3");
}

Test(analyzers, arabic)
{
	check("ar", "snowball", "اللغة العربية", "اللغ@0 عرب@1", "اللغة@0 العربية@1");
}

Test(analyzers, hindi_keeps_its_marks)
{
	check("hi", "snowball", "हिन्दी भाषा", "हिन्द@0 भाष@1", "हिन्दी@0 भाषा@1");
}

Test(analyzers, chinese_dictionary_segmentation)
{
	check("zh-hans", "cjk", "我们在北京大学学习中文",
	      "我们@0 在@1 北京@2 大学@3 学习@4 中文@5",
	      "我们@0 在@1 北京@2 大学@3 学习@4 中文@5");
}

Test(analyzers, japanese_dictionary_and_width_folding)
{
	check("ja", "cjk", "日本語の文章を分割します。ｶﾀｶﾅ ＡＢＣ",
	      "日本語@0 の@1 文章@2 を@3 分割@4 し@5 ます@6 カタカナ@7 abc@8",
	      "日本語@0 の@1 文章@2 を@3 分割@4 し@5 ます@6 カタカナ@7 abc@8");
}

Test(analyzers, korean_bigrams)
{
	check("ko", "cjk", "한국어를 배웁니다",
	      "한국@0 국어@1 어를@2 배웁@3 웁니@4 니다@5",
	      "한국@0 국어@1 어를@2 배웁@3 웁니@4 니다@5");
}

Test(analyzers, thai_dictionary_segmentation)
{
	check("th", "sea", "ภาษาไทยเป็นภาษาที่",
	      "ภาษา@0 ไทย@1 เป็น@2 ภาษา@3 ที่@4", "ภาษา@0 ไทย@1 เป็น@2 ภาษา@3 ที่@4");
}

Test(analyzers, language_without_plugin_falls_back_to_generic)
{
	/* Welsh has no stemmer: generic, accents folded in the text view only. */
	check("cy", "generic", "Mae'r ddraig goch yn hedfan dros Gymru — Éire",
	      "mae'r@0 ddraig@1 goch@2 yn@3 hedfan@4 dros@5 gymru@6 eire@7",
	      "mae'r@0 ddraig@1 goch@2 yn@3 hedfan@4 dros@5 gymru@6 éire@7");
}

struct offsets {
	size_t s[4], e[4];
	int n;
};

static int rec(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct offsets *o = ctx;
	(void)t;
	(void)n;
	(void)pos;
	if (o->n < 4) {
		o->s[o->n] = s;
		o->e[o->n] = e;
	}
	o->n++;
	return 0;
}

Test(analyzers, offsets_point_at_the_words)
{
	struct analyzer *an;
	cr_assert_eq(analyzer_open(ld, "fr", NULL, &an, NULL), STATUS_OK);
	const char *text = "Voir l’église";
	struct offsets o = { .n = 0 };
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, 0, text, strlen(text), rec, &o),
	             STATUS_OK);
	cr_assert_eq(o.n, 2);
	cr_expect_eq(o.s[0], 0u);
	cr_expect_eq(o.e[0], 4u);
	cr_expect_eq(o.s[1], 9u, "l’ is elided: église starts after the apostrophe");
	cr_expect_eq(o.e[1], strlen(text));
	analyzer_close(an);
}

static int stop_after_one(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	(void)t; (void)n; (void)s; (void)e; (void)pos;
	(*(int *)ctx)++;
	return 1;
}

Test(analyzers, nonzero_callback_return_stops)
{
	struct analyzer *an;
	cr_assert_eq(analyzer_open(ld, "en", NULL, &an, NULL), STATUS_OK);
	int calls = 0;
	const char *text = "one two three four";
	cr_expect_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, 0, text, strlen(text),
	                          stop_after_one, &calls), STATUS_SKIPPED);
	cr_expect_eq(calls, 1);
	analyzer_close(an);
}

Test(analyzers, query_terms_match_document_terms)
{
	struct analyzer *an;
	cr_assert_eq(analyzer_open(ld, "de", NULL, &an, NULL), STATUS_OK);
	cr_expect_str_eq(analyzer_name(an), "snowball");
	cr_expect_str_eq(analyzer_version(an), "1.0");
	cr_expect_str_eq(analyzer_language(an), "de");
	struct analyzer_terms t, p;
	const char *q = "Mueller über Straßen";
	cr_assert_eq(analyzer_query_terms(an, q, strlen(q), &t, &p), STATUS_OK);
	cr_assert_eq(t.count, 2);
	cr_expect_str_eq(t.v[0].term, "mull");
	cr_expect_str_eq(t.v[1].term, "strass");
	cr_expect_eq(t.v[1].pos, 2u, "the stopword über leaves a gap");
	cr_assert_eq(p.count, 3);
	cr_expect_str_eq(p.v[0].term, "mueller");
	cr_expect_str_eq(p.v[1].term, "über");
	cr_expect_str_eq(p.v[2].term, "straßen");
	analyzer_terms_release(&t);
	analyzer_terms_release(&p);
	analyzer_close(an);
}

Test(analyzers, invalid_utf8_gives_no_bad_terms)
{
	struct analyzer *an;
	cr_assert_eq(analyzer_open(ld, "en", NULL, &an, NULL), STATUS_OK);
	const char text[] = "ab\xff\xfe cd \xc3 ef\xe2\x82";
	struct buf b = BUF_INIT;
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_TEXT, 0, text, sizeof text - 1,
	                          add_term, &b), STATUS_OK);
	cr_expect_str_eq(b.data, "ab@0 cd@1 ef@2");
	buf_release(&b);
	analyzer_close(an);
}

Test(analyzers, unknown_option_is_refused)
{
	struct analyzer *an = NULL;
	char *err = NULL;
	cr_expect_eq(analyzer_open(ld, "en", "bogus=1", &an, &err), STATUS_INVALID);
	cr_expect(err && strstr(err, "bogus=1"), "message names the option: %s", err);
	free(err);
}

/* The chain folds ASCII, Latin-1, basic Cyrillic, kana, CJK and Hangul
 * without ICU; every such code point must fold exactly as NFKC_Casefold. */
Test(analyzers, fast_case_folding_agrees_with_icu)
{
	struct analyzer *an;
	cr_assert_eq(analyzer_open(ld, "und", NULL, &an, NULL), STATUS_OK);
	UErrorCode e = U_ZERO_ERROR;
	const UNormalizer2 *nf = unorm2_getNFKCCasefoldInstance(&e);
	cr_assert(U_SUCCESS(e));
	static const UChar32 ranges[][2] = {
		{ 0x41, 0x5A }, { 0xC0, 0xFF }, { 0x400, 0x45F }, { 0x3041, 0x3096 },
		{ 0x30A1, 0x30FC }, { 0x4E00, 0x4E40 }, { 0xAC00, 0xAC40 },
	};
	int checked = 0;
	for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
		for (UChar32 c = ranges[r][0]; c <= ranges[r][1]; c++) {
			if (!u_isalpha(c))
				continue;
			UChar in[2], out[16];
			int32_t il = 0;
			U16_APPEND_UNSAFE(in, il, c);
			e = U_ZERO_ERROR;
			int32_t ol = unorm2_normalize(nf, in, il, out, 16, &e);
			char want[64];
			int32_t wl = 0;
			e = U_ZERO_ERROR;
			u_strToUTF8(want, sizeof want, &wl, out, ol, &e);
			char text[8];
			int32_t tl = 0;
			U8_APPEND_UNSAFE(text, tl, c);
			struct buf b = BUF_INIT;
			cr_assert_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, 0, text, (size_t)tl,
			                          add_term, &b), STATUS_OK);
			char expect[80];
			snprintf(expect, sizeof expect, "%s@0", want);
			cr_expect_str_eq(b.data, expect, "U+%04X", (unsigned)c);
			buf_release(&b);
			checked++;
		}
	}
	cr_expect_gt(checked, 400);
	analyzer_close(an);
}
