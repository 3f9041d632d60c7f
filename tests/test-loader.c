/* SPDX-License-Identifier: MIT */
/*
 * test-loader.c: plugin discovery, refusal of broken plugins with a reason,
 * duplicates, and language fallback (de-ch -> de -> generic).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "testsupport.h"
#include "xmalloc.h"

static char *builddir(const char *rel)
{
	const char *b = getenv("FRESHET_BUILDDIR");
	cr_assert(b, "FRESHET_BUILDDIR must be set (make check sets it)");
	return xasprintf("%s/%s", b, rel);
}

/* A directory with the good plugins and the broken ones side by side. */
static char *mixed_dir(void)
{
	char *d = test_mkdtemp("loader");
	const char *good[] = { "generic", "snowball", "cjk", "sea" };
	const char *bad[] = { "noentry", "badabi", "small" };
	for (size_t i = 0; i < 4; i++) {
		char *src = xasprintf("%s/%s.so", loader_default_dir(NULL), good[i]);
		char *dst = xasprintf("%s/%s.so", d, good[i]);
		cr_assert_eq(symlink(src, dst), 0);
		free(src);
		free(dst);
	}
	for (size_t i = 0; i < 3; i++) {
		char *rel = xasprintf("tests/plugins/.libs/%s.so", bad[i]);
		char *src = builddir(rel);
		char *dst = xasprintf("%s/%s.so", d, bad[i]);
		cr_assert_eq(symlink(src, dst), 0, "%s", src);
		free(rel);
		free(src);
		free(dst);
	}
	/* Not a shared object at all. */
	char *junk = xasprintf("%s/junk.so", d);
	FILE *f = fopen(junk, "w");
	fputs("not an ELF file\n", f);
	fclose(f);
	free(junk);
	return d;
}

static const char *refusal(struct loader *ld, const char *file)
{
	for (size_t i = 0; i < loader_refused_count(ld); i++)
		if (strstr(loader_refused(ld, i), file))
			return loader_refused(ld, i);
	return NULL;
}

Test(loader, broken_plugins_are_refused_with_reason_others_load)
{
	char *d = mixed_dir();
	struct loader *ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, d), STATUS_OK);
	cr_expect_eq(loader_count(ld), 4, "the four good plugins load");
	cr_expect_eq(loader_refused_count(ld), 4);
	const char *r;
	r = refusal(ld, "noentry.so");
	cr_expect(r && strstr(r, "no entry symbol freshet_analyzer_entry"), "%s", r ? r : "none");
	r = refusal(ld, "badabi.so");
	cr_expect(r && strstr(r, "ABI version 999"), "%s", r ? r : "none");
	r = refusal(ld, "small.so");
	cr_expect(r && strstr(r, "too small"), "%s", r ? r : "none");
	r = refusal(ld, "junk.so");
	cr_expect(r && strstr(r, "dlopen failed"), "%s", r ? r : "none");
	struct analyzer *an;
	cr_expect_eq(analyzer_open(ld, "en", NULL, &an, NULL), STATUS_OK);
	analyzer_close(an);
	loader_free(ld);
	test_rmtree(d);
	free(d);
}

Test(loader, single_file_status)
{
	struct loader *ld = loader_new();
	char *p = builddir("tests/plugins/.libs/badabi.so");
	cr_expect_eq(loader_load_file(ld, p), STATUS_VERSION);
	cr_expect(strstr(loader_errmsg(ld), "badabi.so: ABI version 999, this program needs 1"),
	          "%s", loader_errmsg(ld));
	free(p);
	p = builddir("tests/plugins/.libs/noentry.so");
	cr_expect_eq(loader_load_file(ld, p), STATUS_INVALID);
	free(p);
	loader_free(ld);
}

Test(loader, duplicates_are_refused)
{
	struct loader *ld = loader_new();
	char *p = xasprintf("%s/snowball.so", loader_default_dir(NULL));
	cr_assert_eq(loader_load_file(ld, p), STATUS_OK);
	cr_expect_eq(loader_load_file(ld, p), STATUS_INVALID);
	cr_expect(strstr(loader_errmsg(ld), "duplicate plugin name snowball"), "%s",
	          loader_errmsg(ld));
	cr_expect_eq(loader_count(ld), 1);
	free(p);
	loader_free(ld);
}

Test(loader, missing_directory)
{
	struct loader *ld = loader_new();
	cr_expect_eq(loader_load_dir(ld, "/nonexistent/freshet"), STATUS_IO);
	cr_expect(strstr(loader_errmsg(ld), "/nonexistent/freshet"));
	loader_free(ld);
}

static void expect_pick(struct loader *ld, const char *code, const char *plugin, const char *lang)
{
	const struct freshet_analyzer_api *api;
	char out[64];
	cr_assert_eq(loader_pick(ld, code, &api, out, sizeof out), STATUS_OK, "%s", code);
	cr_expect_str_eq(api->name, plugin, "%s", code);
	cr_expect_str_eq(out, lang, "%s", code);
}

Test(loader, language_fallback)
{
	struct loader *ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
	cr_assert_eq(loader_refused_count(ld), 0);
	expect_pick(ld, "de-ch", "snowball", "de");
	expect_pick(ld, "en-gb", "snowball", "en");
	expect_pick(ld, "pt-br", "snowball", "pt");
	expect_pick(ld, "sr-el", "snowball", "sr");
	expect_pick(ld, "zh-hans", "cjk", "zh");
	expect_pick(ld, "ZH_Hant", "cjk", "zh");
	expect_pick(ld, "th", "sea", "th");
	expect_pick(ld, "nds-nl", "generic", "nds-nl");
	expect_pick(ld, "cy", "generic", "cy");
	const struct freshet_analyzer_api *api;
	char out[64];
	cr_expect_eq(loader_pick(ld, "", &api, out, sizeof out), STATUS_INVALID);
	loader_free(ld);
}

Test(loader, no_generic_no_fallback)
{
	struct loader *ld = loader_new();
	char *p = xasprintf("%s/snowball.so", loader_default_dir(NULL));
	cr_assert_eq(loader_load_file(ld, p), STATUS_OK);
	const struct freshet_analyzer_api *api;
	char out[64];
	cr_expect_eq(loader_pick(ld, "cy", &api, out, sizeof out), STATUS_NOT_FOUND);
	free(p);
	loader_free(ld);
}

/* After loading, lookups and analyzer_open run from many threads at once;
 * each thread uses its own analyzer and gets the same terms. */
struct thread_arg {
	struct loader *ld;
	const char *lang;
	size_t terms;
	enum status st;
};

static int count(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	(void)t; (void)n; (void)s; (void)e; (void)pos;
	(*(size_t *)ctx)++;
	return 0;
}

static void *thread_main(void *p)
{
	struct thread_arg *a = p;
	const char *text = "Die Müllers gehen über die Straße; 北京大学; ภาษาไทย; Tschüss";
	for (int i = 0; i < 50; i++) {
		struct analyzer *an;
		a->st = analyzer_open(a->ld, a->lang, NULL, &an, NULL);
		if (a->st != STATUS_OK)
			return NULL;
		size_t n = 0;
		a->st = analyzer_run(an, FRESHET_VIEW_TEXT, 0, text, strlen(text), count, &n);
		analyzer_close(an);
		if (a->st != STATUS_OK)
			return NULL;
		if (i == 0)
			a->terms = n;
		else if (n != a->terms)
			a->st = STATUS_CORRUPT;
	}
	return NULL;
}

Test(loader, lookups_are_thread_safe)
{
	struct loader *ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
	const char *langs[] = { "de", "de-at", "zh", "th", "cy", "en-gb" };
	pthread_t th[6];
	struct thread_arg args[6];
	for (int i = 0; i < 6; i++) {
		args[i] = (struct thread_arg){ ld, langs[i], 0, STATUS_OK };
		cr_assert_eq(pthread_create(&th[i], NULL, thread_main, &args[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(args[i].st, STATUS_OK, "%s: %s", langs[i], status_str(args[i].st));
		cr_expect_gt(args[i].terms, 5u, "%s", langs[i]);
	}
	cr_expect_eq(args[0].terms, args[1].terms, "de-at analyzes as de");
	loader_free(ld);
}
