/* SPDX-License-Identifier: MIT */
/*
 * test-snowball-voc.c: every Snowball stemmer the snowball plugin uses,
 * run through the plugin (loader, analyzer_run, FRESHET_ANALYZE_STEM_ONLY),
 * reproduces the Snowball project's own vocabulary: for each word of
 * /usr/share/snowball/data/<algorithm>/voc.txt the stem must equal the same
 * line of output.txt (either file may be gzipped; read through zcat).
 *
 * STEM_ONLY is used because the full chain case folds and accent folds:
 * voc.txt words are already lowercase, but folding would change some of
 * them (Greek final sigma, Turkish dotless i, German ß), and the test is
 * about the stemmer stage, which STEM_ONLY runs alone inside the plugin.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "xmalloc.h"

/* Inline arrays, not pointers: Criterion runs each parameter in a fresh
 * process image where the parent's pointers mean nothing. */
struct voc_case {
	char lang[8];
	char algo[16];
};

static struct voc_case cases[] = {
	{ "ar", "arabic" }, { "hy", "armenian" }, { "eu", "basque" },
	{ "ca", "catalan" }, { "da", "danish" }, { "nl", "dutch" },
	{ "en", "english" }, { "fi", "finnish" }, { "fr", "french" },
	{ "de", "german" }, { "el", "greek" }, { "hi", "hindi" },
	{ "hu", "hungarian" }, { "id", "indonesian" }, { "ga", "irish" },
	{ "it", "italian" }, { "lt", "lithuanian" }, { "ne", "nepali" },
	{ "no", "norwegian" }, { "pt", "portuguese" }, { "ro", "romanian" },
	{ "ru", "russian" }, { "sr", "serbian" }, { "es", "spanish" },
	{ "sv", "swedish" }, { "ta", "tamil" }, { "tr", "turkish" },
	{ "yi", "yiddish" },
};

/* Opens data/<algo>/<name> or its .gz as a stream. */
static FILE *open_data(const char *algo, const char *name, bool *piped)
{
	char *p = xasprintf("/usr/share/snowball/data/%s/%s", algo, name);
	FILE *f = fopen(p, "r");
	*piped = false;
	if (!f) {
		char *cmd = xasprintf("zcat '%s.gz'", p);
		char *gz = xasprintf("%s.gz", p);
		cr_assert(access(gz, R_OK) == 0, "neither %s nor %s.gz (install snowball-data)", p, p);
		f = popen(cmd, "r");
		*piped = true;
		free(cmd);
		free(gz);
	}
	free(p);
	return f;
}

struct got {
	char term[FRESHET_ANALYZER_MAX_TERM + 1];
	int n;
};

static int take(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	struct got *g = ctx;
	(void)s;
	(void)e;
	(void)pos;
	memcpy(g->term, t, n + 1);
	g->n++;
	return 0;
}

ParameterizedTestParameters(voc, stemmer_matches_snowball_output)
{
	return cr_make_param_array(struct voc_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct voc_case *c, voc, stemmer_matches_snowball_output, .timeout = 120)
{
	struct loader *ld = loader_new();
	cr_assert_eq(loader_load_dir(ld, loader_default_dir(NULL)), STATUS_OK);
	struct analyzer *an;
	char *err = NULL;
	cr_assert_eq(analyzer_open(ld, c->lang, NULL, &an, &err), STATUS_OK, "%s", err);
	cr_assert_str_eq(analyzer_name(an), "snowball");
	bool pv, po;
	FILE *voc = open_data(c->algo, "voc.txt", &pv);
	FILE *out = open_data(c->algo, "output.txt", &po);
	char *w = NULL, *s = NULL;
	size_t wc = 0, sc = 0;
	ssize_t wl, sl;
	long words = 0, bad = 0;
	while ((wl = getline(&w, &wc, voc)) > 0) {
		sl = getline(&s, &sc, out);
		cr_assert(sl > 0, "%s: output.txt shorter than voc.txt", c->algo);
		while (wl && (w[wl - 1] == '\n' || w[wl - 1] == '\r'))
			w[--wl] = 0;
		while (sl && (s[sl - 1] == '\n' || s[sl - 1] == '\r'))
			s[--sl] = 0;
		words++;
		if (wl == 0 || wl > FRESHET_ANALYZER_MAX_TERM)
			continue;
		struct got g = { .n = 0 };
		cr_assert_eq(analyzer_run(an, FRESHET_VIEW_TEXT, FRESHET_ANALYZE_STEM_ONLY,
		                          w, (size_t)wl, take, &g), STATUS_OK);
		/* An empty stem gives no term (see FRESHET_ANALYZE_STEM_ONLY). */
		bool ok = sl == 0 ? g.n == 0 : g.n == 1 && strcmp(g.term, s) == 0;
		if (!ok) {
			if (bad++ < 5)
				cr_log_error("%s: %s -> %s, Snowball says %s", c->algo, w,
				             g.n ? g.term : "(nothing)", s);
		}
	}
	free(w);
	free(s);
	pv ? pclose(voc) : fclose(voc);
	po ? pclose(out) : fclose(out);
	cr_expect_gt(words, 1000, "%s: vocabulary read", c->algo);
	cr_expect_eq(bad, 0, "%s: %ld of %ld words stem differently", c->algo, bad, words);
	analyzer_close(an);
	loader_free(ld);
}
