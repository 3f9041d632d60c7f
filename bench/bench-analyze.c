/* SPDX-License-Identifier: MIT */
/*
 * bench-analyze.c: analyzer throughput per core on real text.
 *
 * For each of the en, de, ru, ja and zh chains it renders Debian's manual
 * pages in that language with `mandoc -T utf8` (packages manpages,
 * manpages-de, manpages-ru, manpages-ja, manpages-zh), strips the
 * overstrike sequences, keeps up to CORPUS_MAX bytes, and analyzes each page
 * as one document through the loader: the text view, the plain view, and
 * both through analyzer_run_both() (one pass, what the indexer's
 * document.c calls); "ICU break" is segmentation alone.  Each of these
 * rounds runs on a new analyzer instance, whose caches (the stem cache,
 * the CJK run cache) start empty; "both again" runs both views on one
 * instance that has seen the pages once (a page analysed again after an
 * edit).  It prints MB of input per CPU second of this one thread (= MB/s
 * per core).
 *
 * Usage: bench-analyze [rounds [lang [view]]]   (plugins from
 * FRESHET_ANALYZER_DIR).  view is one of seg, text, plain, both, again:
 * only that figure is measured (after an untimed round of both views on
 * another instance, in which ICU loads its data), so that
 * `valgrind --tool=callgrind` counts one path; with --collect-atstart=no
 * callgrind counts only the timed passes.
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#endif
#endif
#ifndef CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_TOGGLE_COLLECT
#endif

#include "buf.h"
#include "loader.h"
#include "xmalloc.h"

#define CORPUS_MAX (3u << 20)

struct page {
	size_t off, len;
};

struct corpus {
	struct buf text;
	struct page *pages;
	size_t npages;
};

/* Renders one page and appends it with overstrike (x\bx, _\bx) removed. */
static void render(struct corpus *c, const char *path)
{
	char *cmd = xasprintf("mandoc -T utf8 '%s' 2>/dev/null", path);
	FILE *f = popen(cmd, "r");
	free(cmd);
	if (!f)
		return;
	size_t start = c->text.len;
	int ch;
	while ((ch = getc(f)) != EOF) {
		if (ch == '\b') {
			/* Drop the previous character (one UTF-8 sequence). */
			while (c->text.len > start &&
			       ((unsigned char)c->text.data[c->text.len - 1] & 0xC0) == 0x80)
				c->text.len--;
			if (c->text.len > start)
				c->text.len--;
			c->text.data[c->text.len] = 0;
			continue;
		}
		buf_addch(&c->text, (char)ch);
	}
	pclose(f);
	if (c->text.len > start) {
		c->pages = xrealloc(c->pages, (c->npages + 1) * sizeof *c->pages);
		c->pages[c->npages++] = (struct page){ start, c->text.len - start };
	}
}

static void load(struct corpus *c, const char *dir)
{
	char *pat = xasprintf("/usr/share/man/%s/man[1-8]/*.gz", dir);
	glob_t g;
	if (glob(pat, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc && c->text.len < CORPUS_MAX; i++)
			render(c, g.gl_pathv[i]);
		globfree(&g);
	}
	free(pat);
}

static int count_term(void *ctx, const char *t, size_t n, size_t s, size_t e, uint32_t pos)
{
	(void)t; (void)n; (void)s; (void)e; (void)pos;
	(*(size_t *)ctx)++;
	return 0;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Returns MB per CPU second for the given views over all pages.  Each round
 * runs on a new instance of the analyzer (opened and closed untimed), so
 * that its caches start empty: the figure counts only what a worker gains
 * from text repeating within the corpus.  With warm, the rounds run on the
 * one instance an, after a first untimed round on it: pages analysed again
 * (a page edited again). */
static double run(struct loader *ld, struct analyzer *an, const struct corpus *c,
                  int rounds, bool text, bool plain, bool warm, size_t *terms)
{
	/* Neither view: ICU segmentation alone (every segment emitted raw). */
	unsigned seg = !text && !plain ? FRESHET_ANALYZE_SEGMENTS : 0;
	double dt = 0;
	*terms = 0;
	for (int r = -1; r < rounds; r++) {
		if (r < 0 && !warm)
			continue;
		struct analyzer *fresh = NULL;
		if (!warm) {
			char *err = NULL;
			if (analyzer_open(ld, analyzer_language(an), NULL, &fresh, &err) !=
			    STATUS_OK) {
				fprintf(stderr, "bench-analyze: %s\n", err);
				exit(1);
			}
		}
		struct analyzer *a = warm ? an : fresh;
		if (r >= 0)
			CALLGRIND_TOGGLE_COLLECT;
		double t0 = cpu_now();
		for (size_t i = 0; i < c->npages; i++) {
			const char *p = c->text.data + c->pages[i].off;
			if (text && plain) {
				analyzer_run_both(a, 0, p, c->pages[i].len, count_term, terms,
				                  count_term, terms);
				continue;
			}
			if (text)
				analyzer_run(a, FRESHET_VIEW_TEXT, 0, p, c->pages[i].len, count_term, terms);
			if (plain || seg)
				analyzer_run(a, FRESHET_VIEW_PLAIN, seg, p, c->pages[i].len, count_term, terms);
		}
		if (r >= 0) {
			dt += cpu_now() - t0;
			CALLGRIND_TOGGLE_COLLECT;
		}
		analyzer_close(fresh);
	}
	return (double)c->text.len * rounds / 1e6 / dt;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 2;
	static const struct { const char *lang, *dir; } langs[] = {
		{ "en", "." }, { "de", "de" }, { "ru", "ru" }, { "ja", "ja" }, { "zh", "zh_CN" },
	};
	struct loader *ld = loader_new();
	if (loader_load_dir(ld, loader_default_dir(NULL)) != STATUS_OK) {
		fprintf(stderr, "bench-analyze: %s\n", loader_errmsg(ld));
		return 1;
	}
	printf("%-4s %-9s %6s %6s %9s %10s %10s %10s %10s\n", "lang", "plugin", "pages",
	       "MB", "ICU break", "text MB/s", "plain MB/s", "both MB/s", "both again");
	for (size_t i = 0; i < sizeof langs / sizeof langs[0]; i++) {
		if (argc > 2 && strcmp(argv[2], langs[i].lang) != 0)
			continue;
		struct corpus c = { BUF_INIT, NULL, 0 };
		load(&c, langs[i].dir);
		if (c.text.len == 0) {
			fprintf(stderr, "bench-analyze: no manual pages for %s\n", langs[i].lang);
			return 1;
		}
		struct analyzer *an;
		char *err = NULL;
		if (analyzer_open(ld, langs[i].lang, NULL, &an, &err) != STATUS_OK) {
			fprintf(stderr, "bench-analyze: %s\n", err);
			return 1;
		}
		size_t nt, np, nb, ns;
		/* One untimed round on a first instance: ICU loads its rules and
		 * dictionaries lazily, once per process. */
		struct analyzer *first;
		if (analyzer_open(ld, langs[i].lang, NULL, &first, &err) != STATUS_OK) {
			fprintf(stderr, "bench-analyze: %s\n", err);
			return 1;
		}
		run(ld, first, &c, 0, true, true, true, &nb);
		analyzer_close(first);
		const char *only = argc > 3 ? argv[3] : NULL;
		double sg = 0, t = 0, p = 0, b = 0, w = 0;
		if (!only || strcmp(only, "seg") == 0)
			sg = run(ld, an, &c, rounds, false, false, false, &ns);
		if (!only || strcmp(only, "text") == 0)
			t = run(ld, an, &c, rounds, true, false, false, &nt);
		if (!only || strcmp(only, "plain") == 0)
			p = run(ld, an, &c, rounds, false, true, false, &np);
		if (!only || strcmp(only, "both") == 0)
			b = run(ld, an, &c, rounds, true, true, false, &nb);
		if (!only || strcmp(only, "again") == 0)
			w = run(ld, an, &c, rounds, true, true, true, &nb);
		printf("%-4s %-9s %6zu %6.2f %9.1f %10.1f %10.1f %10.1f %10.1f\n",
		       langs[i].lang, analyzer_name(an), c.npages, c.text.len / 1e6, sg, t, p,
		       b, w);
		analyzer_close(an);
		buf_release(&c.text);
		free(c.pages);
	}
	loader_free(ld);
	return 0;
}
