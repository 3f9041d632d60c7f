/* SPDX-License-Identifier: MIT */
/*
 * test-analyzers-cjk.c: the CJK plugin's run cache and fast paths give the
 * terms, positions and offsets that plain ICU segmentation gives.
 *
 * The cjk plugin keeps ICU's segmentation of each run of Han/kana it has
 * seen and replays it when the run comes back (analyzers/chain.c); the
 * option "runcache=0" turns that off.  Each test analyzes real manual pages
 * (tests/fixtures/analyzers) and a text of edge cases (runs starting with
 * a prolonged sound mark, runs next to ExtendNumLet, marks, variation
 * selectors, Hangul, Thai, invalid UTF-8, runs too long to cache...) on one
 * instance, twice over (the second time from the cache), through both
 * one-view calls and the one-pass call, and compares every term, position
 * and byte offset with an instance without the cache.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "loader.h"
#include "testsupport.h"

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

TestSuite(analyzers_cjk, .init = setup, .fini = teardown);

/* Edge cases around runs, each more than once so that the cache replays
 * them, and the runs first alone so that a run cached alone would be
 * replayed where a neighbour joins it (invalid UTF-8 at the end). */
static const char edge[] =
	"カタカナ 漢字 テスト ひらがな カ キ 城 ー ﾀ "
	"ーカタカナ とーー ｰｶﾀ ﾞカタ カタカナ_abc abc_カタカナ カタカナ＿テスト "
	"漢字\xf3\xa0\x84\x80漢字 葛\xef\xb8\x80城 か\xe3\x82\x99き ぱ\xe3\x82\x9aぴ "
	"人々 々 〆切 𠮷野家 𠮷 㐀㐁 漢字한국어漢字 日本ไทย語 ゝゞヽヾ 〱〲 カ゛キ゜ "
	"㋐㌀ 漢字\xe2\x80\x8d漢字 漢字\xc2\xad漢字   多  重  空白   \t\t漢字　　漢字 "
	"ＡＢＣ１２３漢字１２３ＡＢＣ "
	"東京都千代田区丸の内一丁目東京駅八重洲口前広場再開発事業計画書第二版改訂"
	"東京都千代田区丸の内一丁目東京駅八重洲口前広場再開発事業計画書第二版改訂 "
	"あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよ"
	"らりるれろわをん ファイルシステムのマウントポイントを指定する。"
	"ディレクトリが存在しない場合は作成されます。"
	"我们在北京大学学习中文，并且使用计算机处理文本。 Ａｐｐｌｅの発表 iPhoneを買った。"
	" ＳＱＬデータベース 3.14円 100％ 第1章 第一章 「引用」『書名』（注釈）"
	"【見出し】・中黒 ー ーカ カー\xff漢字 漢字\xfe";

static int add(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct buf *b = ctx;
	cr_assert_eq(strlen(t), n, "term must be NUL-terminated at len");
	buf_addf(b, "%s@%u[%zu,%zu)\n", t, pos, s, e);
	return 0;
}

struct out {
	struct buf text, plain, both_text, both_plain;
};

static void analyze(struct analyzer *an, const char *p, size_t n, struct out *o)
{
	o->text = o->plain = o->both_text = o->both_plain = (struct buf)BUF_INIT;
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_TEXT, 0, p, n, add, &o->text), STATUS_OK);
	cr_assert_eq(analyzer_run(an, FRESHET_VIEW_PLAIN, 0, p, n, add, &o->plain), STATUS_OK);
	cr_assert_eq(analyzer_run_both(an, 0, p, n, add, &o->both_text, add, &o->both_plain),
	             STATUS_OK);
}

static void out_release(struct out *o)
{
	buf_release(&o->text);
	buf_release(&o->plain);
	buf_release(&o->both_text);
	buf_release(&o->both_plain);
}

static void expect_same(const struct buf *got, const struct buf *want, const char *what,
                        const char *lang, size_t doc, int pass)
{
	cr_expect(got->len == want->len && memcmp(got->data, want->data, got->len) == 0,
	          "%s %s, document %zu, pass %d: the run cache changed the output",
	          lang, what, doc, pass);
}

/* Splits the fixture (form feeds) and the edge text into documents and
 * compares cached and uncached output on each, twice. */
static void compare(const char *lang, const char *fixture)
{
	char *path = test_srcpath(fixture);
	size_t len;
	char *all = test_read_file(path, &len);
	cr_assert(all, "%s", path);
	free(path);
	struct analyzer *cached = NULL, *plain = NULL;
	char *err = NULL;
	cr_assert_eq(analyzer_open(ld, lang, NULL, &cached, &err), STATUS_OK, "%s", err ? err : "");
	cr_assert_str_eq(analyzer_name(cached), "cjk");
	cr_assert_eq(analyzer_open(ld, lang, "runcache=0", &plain, &err), STATUS_OK, "%s",
	             err ? err : "");
	size_t docs = 0, terms = 0;
	for (int pass = 0; pass < 2; pass++) {
		const char *p = all, *end = all + len;
		for (size_t doc = 0; p <= end; doc++) {
			const char *q = memchr(p, '\f', (size_t)(end - p));
			size_t n = q ? (size_t)(q - p) : (size_t)(end - p);
			bool last = !q;
			if (last) {
				/* The edge cases come after the last page. */
				p = edge;
				n = sizeof edge - 1;
			}
			struct out c, u;
			analyze(cached, p, n, &c);
			analyze(plain, p, n, &u);
			expect_same(&c.text, &u.text, "text view", lang, doc, pass);
			expect_same(&c.plain, &u.plain, "plain view", lang, doc, pass);
			expect_same(&c.both_text, &u.text, "one-pass text view", lang, doc, pass);
			expect_same(&c.both_plain, &u.plain, "one-pass plain view", lang, doc, pass);
			for (size_t i = 0; i < u.text.len; i++)
				terms += u.text.data[i] == '\n';
			out_release(&c);
			out_release(&u);
			docs++;
			if (last)
				break;
			p = q + 1;
		}
	}
	/* Real text, many terms: the comparison is not vacuous. */
	cr_expect_gt(docs, 4);
	cr_expect_gt(terms, 5000);
	analyzer_close(cached);
	analyzer_close(plain);
	free(all);
}

Test(analyzers_cjk, japanese_run_cache_matches_icu)
{
	compare("ja", "tests/fixtures/analyzers/ja-man.txt");
}

Test(analyzers_cjk, chinese_run_cache_matches_icu)
{
	compare("zh", "tests/fixtures/analyzers/zh-man.txt");
}

Test(analyzers_cjk, run_cache_option)
{
	struct analyzer *an = NULL;
	char *err = NULL;
	cr_expect_eq(analyzer_open(ld, "ja", "runcache=0,stopwords=0", &an, &err), STATUS_OK,
	             "%s", err ? err : "");
	analyzer_close(an);
	an = NULL;
	free(err);
	err = NULL;
	cr_expect_neq(analyzer_open(ld, "ja", "runcache=2", &an, &err), STATUS_OK);
	cr_expect(an == NULL);
	free(err);
}
